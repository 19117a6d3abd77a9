"""Bad input never crashes a run: each case is a real file written here, loaded through the public entry points.

Either the file is skipped and counted in a `DataWarning`, or loading fails before training with an error that
names the path. The last tests read the real data sets in ../shared when it is there (skipped otherwise)."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import ROOT

from mst_nb.core import ConfigError, MSTConfig
from mst_nb.data import DataWarning, load_folder, load_images, load_npz, load_sample, mst_dls

SHARED = ROOT.parent/'shared'/'data'
SIZE = 32


@pytest.fixture(scope='module')
def photos():
    "Eight real photos of the bundled sample as (64,64,3) uint8 arrays"
    return [im.permute(1, 2, 0).numpy() for im in load_sample('train').images[::125]]


def _folder(root: Path, photos, n=4) -> Path:
    (root/'a').mkdir(parents=True); (root/'b').mkdir()
    for i in range(n): Image.fromarray(photos[i]).save(root/('a' if i % 2 else 'b')/f'{i}.jpg')
    return root


def _load(root):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', DataWarning)
        ds = load_folder(root, size=SIZE)
    return ds, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_truncated_jpeg_is_skipped_and_counted(tmp_path, photos):
    root = _folder(tmp_path, photos)
    good = (root/'a'/'1.jpg').read_bytes(); (root/'a'/'cut.jpg').write_bytes(good[:len(good) // 2])
    ds, msgs = _load(root)
    assert len(ds) == 4 and any('skipped, not decodable, 1 of 5' in m and 'cut.jpg' in m for m in msgs), msgs


def test_corrupt_bytes_are_skipped_and_counted(tmp_path, photos):
    root = _folder(tmp_path, photos)
    (root/'b'/'noise.jpg').write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    ds, msgs = _load(root)
    assert len(ds) == 4 and any('noise.jpg' in m for m in msgs), msgs


def test_text_file_with_image_extension_is_skipped(tmp_path, photos):
    root = _folder(tmp_path, photos)
    (root/'a'/'notes.png').write_text('this is not an image')
    ds, msgs = _load(root)
    assert len(ds) == 4 and any('notes.png: not an image' in m for m in msgs), msgs


@pytest.mark.parametrize('mode', ['L', 'P', 'CMYK', 'RGBA', 'LA', 'I;16'])
def test_every_image_mode_loads_as_rgb(tmp_path, photos, mode):
    root = _folder(tmp_path, photos, n=2)
    img = Image.fromarray(photos[5])
    if mode == 'I;16': img = Image.fromarray((np.asarray(img.convert('L')).astype(np.uint16) * 257))
    else: img = img.convert(mode)
    img.save(root/'a'/('odd.jpg' if mode == 'CMYK' else 'odd.png'))
    ds, msgs = _load(root)
    assert len(ds) == 3 and not msgs and ds.images.shape == (3, 3, SIZE, SIZE)
    odd = ds.images[[i for i in range(3) if ds.labels[i] == 0][-1]].float()  # class 'a' holds 1.jpg and odd.*
    if mode in ('L', 'LA', 'I;16'): assert (odd[0] == odd[1]).all() and (odd[1] == odd[2]).all()
    if mode == 'I;16':  # scaled from 16 bits, not clipped: same brightness as the 8-bit grayscale image
        ref = torch.from_numpy(np.asarray(Image.fromarray(photos[5]).convert('L').resize((SIZE, SIZE)))).float()
        assert abs(odd[0].mean() - ref.mean()) < 3


def test_transparent_pixels_become_white(tmp_path, photos):
    root = _folder(tmp_path, photos, n=2)
    rgba = Image.fromarray(photos[0]).convert('RGBA'); rgba.putalpha(0); rgba.save(root/'a'/'clear.png')
    ds, _ = _load(root)
    assert (ds.images == 255).all(dim=(1, 2, 3)).sum() == 1


def test_small_images_are_upscaled_and_counted(tmp_path, photos):
    root = _folder(tmp_path, photos, n=2)
    Image.fromarray(photos[3]).resize((12, 9)).save(root/'b'/'tiny.png')
    ds, msgs = _load(root)
    assert len(ds) == 3 and any('upscaled to 32 px' in m and 'tiny.png' in m for m in msgs), msgs


def test_folder_of_only_bad_images_is_an_error(tmp_path):
    (tmp_path/'x').mkdir(); (tmp_path/'x'/'a.jpg').write_bytes(b'\xff\xd8garbage')
    with pytest.raises(ValueError, match='none of the 1 images could be decoded'): load_folder(tmp_path, size=SIZE)


def test_empty_folder_is_an_error_naming_it(tmp_path):
    (tmp_path/'empty').mkdir(); (tmp_path/'empty'/'README.txt').write_text('no images here')
    with pytest.raises(FileNotFoundError, match=f'no images in {tmp_path/"empty"}'):
        mst_dls(MSTConfig.from_preset('smoke', data=f'folder:{tmp_path/"empty"}'), device='cpu')


def test_missing_path_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=f'data path not found: {tmp_path/"nope"}'):
        mst_dls(MSTConfig.from_preset('smoke', data=f'npz:{tmp_path/"nope"}'), device='cpu')


def test_malformed_spec_is_a_config_error():
    with pytest.raises(ConfigError, match="data must be one of"): load_images('imagenet')


def test_non_npz_file_is_an_error_naming_it(tmp_path):
    (tmp_path/'fake.npz').write_text('not a zip')
    with pytest.raises(ValueError, match='fake.npz is not a readable .npz file'): load_npz(tmp_path/'fake.npz')


def test_npz_without_images_is_an_error(tmp_path):
    np.savez(tmp_path/'other.npz', weights=np.zeros(3))
    with pytest.raises(ValueError, match="expected arrays 'jpeg' \\+ 'offsets'"): load_npz(tmp_path/'other.npz')



# labels that would give a wrong number (issue 29): each is refused where the data is loaded, naming the file

def _jpeg_shards(root: Path, photos, labels, n_images=None, classes=('a', 'b')) -> Path:
    "A folder of imagenette64-style shards: one train shard of real JPEGs with `labels`, and classes.txt"
    root.mkdir(exist_ok=True)
    blobs = []
    for p in photos[:n_images or len(labels)]:
        f = root/'one.jpg'; Image.fromarray(p).save(f); blobs.append(f.read_bytes())
    f.unlink()
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(root/'set_train_0.npz', jpeg=np.frombuffer(b''.join(blobs), np.uint8), offsets=offsets, labels=np.asarray(labels))
    (root/'classes.txt').write_text('\n'.join(classes) + '\n')
    return root


@pytest.mark.parametrize('labels, n_images, says', [
    ([0, 1, 1.5, 0], None, 'labels must be whole numbers, found \\[1.5\\]'),
    ([0, 1, np.nan, 0], None, 'labels must be whole numbers, found \\[nan\\]'),
    ([0, 1, 2, 0], None, 'labels must lie in 0..1 for the 2 classes named beside them; found 2'),
    ([0, -1, 1, 0], None, 'labels must lie in 0..1 .*; found -1'),
    ([0, 1, 10**9, 0], None, 'labels must lie in 0..1 .*; found 1000000000'),
    ([0, 1, 1, 0, 1, 0], 4, '6 labels \\(6,\\) for 4 images'),
    ([0, 1], 4, '2 labels \\(2,\\) for 4 images'),
])
def test_npz_labels_are_checked_where_loaded(tmp_path, photos, labels, n_images, says):
    root = _jpeg_shards(tmp_path/'shards', photos, labels, n_images)
    with pytest.raises(ValueError, match=f'set_train_0.npz: {says}'): load_npz(root, 'train', SIZE)


def test_npz_whole_float_labels_are_read_as_integers(tmp_path, photos):
    ds = load_npz(_jpeg_shards(tmp_path/'shards', photos, np.array([0, 1, 1, 0], np.float32)), 'train', SIZE)
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 1, 1, 0] and ds.classes == ['a', 'b']


def test_empty_npz_is_an_error_naming_it_not_a_batch_size(tmp_path):
    np.savez(tmp_path/'empty_train.npz', x=np.zeros((0, 32, 32, 3), np.uint8), y=np.zeros(0, np.int64))
    with pytest.raises(ValueError, match='no images in empty_train.npz'):
        mst_dls(MSTConfig.from_preset('smoke', data=f'npz:{tmp_path}'), device='cpu')


def _split_tree(root: Path, photos, val_classes=('a', 'b')) -> Path:
    for split, classes in (('train', ('a', 'b', 'c')), ('val', val_classes)):
        for c, cls in enumerate(classes):
            (root/split/cls).mkdir(parents=True)
            for i in range(2): Image.fromarray(photos[(2 * c + i) % len(photos)]).save(root/split/cls/f'{i}.jpg')
    return root


def test_val_labels_follow_train_classes_by_name(tmp_path, photos):
    "A val/ that lacks a class (here as an empty folder) keeps every other class's label: train's list, by name"
    root = _split_tree(tmp_path, photos, val_classes=('b', 'c'))
    (root/'val'/'a').mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', DataWarning)
        train, val = load_folder(root, 'train', SIZE), load_folder(root, 'val', SIZE)
    assert train.classes == val.classes == ['a', 'b', 'c'] and val.labels.tolist() == [1, 1, 2, 2]
    assert any('class folders without images ignored (a)' in str(w.message) for w in caught)
    dls = mst_dls(MSTConfig.from_preset('smoke', data=f'folder:{root}', batch_size=4), device='cpu', max_memory_gb=0)
    assert dls.valid.dataset.labels.tolist() == [1, 1, 2, 2]          # the lazily decoded folder too


def test_val_class_that_train_lacks_is_refused(tmp_path, photos):
    root = _split_tree(tmp_path, photos, val_classes=('a', 'zebra'))
    with pytest.raises(ValueError, match='class folders zebra are not classes of the train split'):
        load_folder(root, 'val', SIZE)


def test_a_link_back_into_the_tree_is_not_followed(tmp_path, photos):
    root = _split_tree(tmp_path, photos)
    (root/'train'/'loop').symlink_to(root/'train', target_is_directory=True)
    (root/'train'/'up').symlink_to(root, target_is_directory=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', DataWarning)
        train = load_folder(root, 'train', SIZE)
    assert train.classes == ['a', 'b', 'c'] and len(train) == 6
    assert sum('a link back into' in str(w.message) for w in caught) == 2


def test_a_linked_class_folder_outside_the_tree_is_read(tmp_path, photos):
    root = _split_tree(tmp_path/'tree', photos)
    elsewhere = tmp_path/'elsewhere'/'d'; elsewhere.mkdir(parents=True)
    Image.fromarray(photos[0]).save(elsewhere/'0.jpg')
    (root/'train'/'d').symlink_to(elsewhere, target_is_directory=True)
    assert load_folder(root, 'train', SIZE).classes == ['a', 'b', 'c', 'd']


def test_exif_orientation_is_applied_eager_and_lazy(tmp_path, photos):
    "A phone photo stored on its side with EXIF orientation 6 loads upright from a folder, eagerly and lazily"
    from mst_nb.data import LazyImages, list_folder
    upright = photos[0]
    stored = np.ascontiguousarray(np.rot90(upright, k=1))      # turned 90° anticlockwise: EXIF 6 turns it back
    (tmp_path/'a').mkdir()
    exif = Image.Exif(); exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path/'a'/'phone.jpg', exif=exif, quality=95)
    want = torch.from_numpy(upright.copy()).permute(2, 0, 1).float()
    eager = load_folder(tmp_path, size=64).images[0].float()
    lazy = LazyImages(*list_folder(tmp_path), 64, 'lazy')[0][0].float()
    for got in (eager, lazy): assert (got - want).abs().mean() < 12, (got - want).abs().mean()

def test_smoke_preset_loads_the_bundled_sample():
    dls = mst_dls(MSTConfig.from_preset('smoke'), device='cpu')
    xb, yb = dls.train.one_batch()
    assert xb.shape == (32, 3, 32, 32) and xb.dtype == torch.uint8 and len(dls.valid.dataset) == 500


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f'{SHARED} not present (the real data sets beside the repo)')


@needs_shared
def test_imagenette64_val_shards():
    ds = load_npz(SHARED/'imagenette64', 'val', size=64)
    assert len(ds) == 3925 and ds.classes[0] == 'tench' and torch.bincount(ds.labels).tolist()[0] == 387


@needs_shared
def test_cifar_style_arrays():
    train, test = load_npz(SHARED/'cifar10_tiny', 'train', 32), load_npz(SHARED/'cifar10_tiny', 'val', 32)
    assert (len(train), len(test)) == (2000, 500) and train.images.shape[1:] == (3, 32, 32)
    assert torch.bincount(test.labels).tolist() == [50] * 10


@needs_shared
def test_imagenet_style_folder():
    dls = mst_dls(MSTConfig.from_preset('smoke', data=f'folder:{SHARED/"imagenette_imagefolder_tiny"}'), device='cpu')
    assert (len(dls.train.dataset), len(dls.valid.dataset)) == (200, 100) and len(dls.train.dataset.classes) == 10
