"""JPEG folders at ImageNet size, end to end (issue 12, item 4). A folder of ~400-px JPEGs is made from the bundled
photos (upscaled: the same decode work as ImageNet's ~400 × 350 files, not their content), then read the way a
large folder is read in training — lazily, each file decoded in a loader worker (`mst_dls` with the memory limit at
0, so the folder takes the `LazyImages` path) — and timed:

- decode alone: the loader's batches and nothing else, per worker count: how many images/s the workers can feed;
- end to end: `mst_learner`'s fit on those batches (bench/loop.py's fastai loop), against the step alone on crops
  made once, in the same process;
- decode on the device (`--device-decode`): the workers only read each file's bytes, and
  `torchvision.io.decode_jpeg` decodes the whole batch on the training device (nvJPEG on a GPU, libjpeg-turbo on a
  CPU), then resizes and centre-crops it there: decode alone, and decode + the same training step.

    python bench/jpeg.py                                  # CPU: 384 photos, 0 and 2 workers, a small model at 224/96
    python bench/jpeg.py --device cuda --preset in1k_vit_small --images 4096 --workers 4 8 16 --device-decode

The CPU default shrinks the model (the smoke preset's 2-block, 64-wide ViT at patch 16: 196 tokens at 224 px) so
that the loader, not the model, is what is measured; the crops are ImageNet's (decode 256, 2 × 224 + 2 × 96).
"""
import argparse, io, platform, statistics, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from loop import _parts, _step, _sync, fastai_loop, step_alone   # the same step and loop as bench/loop.py

from mst_nb.augment import multi_crop
from mst_nb.core import MSTConfig, seed_everything
from mst_nb.data import list_folder, load_sample, mst_dls


def make_folder(root: Path, n: int, side: int = 400, quality: int = 90) -> Path:
    "n JPEGs of side × (side·3/4) px in one folder per class, upscaled from the bundled sample's photos"
    photos = load_sample('train')
    for i in range(n):
        k = i % len(photos)
        d = root / 'train' / photos.classes[int(photos.labels[k])]
        d.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(photos.images[k].permute(1, 2, 0).numpy()).resize((side, side * 3 // 4), Image.BICUBIC)
        img.save(d / f'{i:05d}.jpg', quality=quality)
    return root


def decode_alone(dls, batches: int, warmup: int) -> float:
    "Images/s of the train loader alone (each batch moved to the device, nothing else)"
    n, t0 = 0, None
    while True:
        for images, _ in dls.train:
            if n == warmup: _sync(images.device); t0 = time.perf_counter()
            n += 1
            if n == warmup + batches:
                _sync(images.device)
                return batches * len(images) / (time.perf_counter() - t0)


class FileBytes(torch.utils.data.Dataset):
    "The encoded bytes of each file (the decoding happens on the device, a batch at a time)"
    def __init__(self, files): self.files = files
    def __len__(self): return len(self.files)
    def __getitem__(self, i): return torch.frombuffer(bytearray(Path(self.files[i]).read_bytes()), dtype=torch.uint8)


def device_decode(datas: list, size: int, device) -> torch.Tensor:
    "A batch of encoded JPEGs → (B,3,size,size) uint8 on `device`: decode_jpeg there, shorter side to size, centre crop"
    out = []
    for img in torchvision.io.decode_jpeg(datas, mode=torchvision.io.ImageReadMode.RGB, device=device):
        h, w = img.shape[-2:]
        s = size / min(h, w)
        img = F.interpolate(img[None].float(), size=(max(size, round(h * s)), max(size, round(w * s))), mode='bilinear',
                            antialias=True, align_corners=False)[0]
        t, l = (img.shape[-2] - size) // 2, (img.shape[-1] - size) // 2
        out.append(img[:, t:t + size, l:l + size].round_().clamp_(0, 255).to(torch.uint8))
    return torch.stack(out)


def device_decode_loop(files, cfg, device, workers: int, batches: int, warmup: int, train: bool) -> float:
    "Images/s of bytes → decode_jpeg on the device (→ multi_crop → the step, if `train`)"
    dl = torch.utils.data.DataLoader(FileBytes(files), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                                     num_workers=workers, collate_fn=list, persistent_workers=workers > 0)
    size = cfg.decode_size or cfg.global_crop_size
    module, params, opt = _parts(cfg, device) if train else (None, None, None)
    gen = torch.Generator(device).manual_seed(0)
    n, t0 = 0, None
    while True:
        for datas in dl:
            if n == warmup: _sync(device); t0 = time.perf_counter()
            images = device_decode(datas, size, device)
            if train: _step(module, params, opt, multi_crop(images, cfg, gen), cfg, device)
            n += 1
            if n == warmup + batches:
                _sync(device)
                return batches * cfg.batch_size / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--preset', default=None,
                    help='default: in1k_vit_small on a GPU; on a CPU the smoke model at patch 16 with ImageNet crops')
    ap.add_argument('--images', type=int, default=384); ap.add_argument('--side', type=int, default=400)
    ap.add_argument('--workers', type=int, nargs='+', default=[0, 2]); ap.add_argument('--batch-size', type=int, default=None)
    ap.add_argument('--batches', type=int, default=8); ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--device-decode', action='store_true', help='also decode on the device with torchvision.io.decode_jpeg')
    ap.add_argument('--folder', default=None, help='use (or make) the JPEG folder here; default: a temporary one')
    a = ap.parse_args()
    warnings.filterwarnings('ignore', category=UserWarning)
    cpu = not a.device.startswith('cuda')
    imagenet = dict(decode_size=256, global_crop_size=224, local_crop_size=96)
    if a.preset: cfg = MSTConfig.from_preset(a.preset, **imagenet)
    elif cpu: cfg = MSTConfig.from_preset('smoke', patch_size=16, batch_size=16, **imagenet)
    else: cfg = MSTConfig.from_preset('in1k_vit_small')
    root = Path(a.folder or tempfile.mkdtemp(prefix='jpeg_bench_'))
    if not list(root.glob('train/*/*.jpg')): make_folder(root, a.images, a.side)
    files, _, _ = list_folder(root / 'train')
    cfg = cfg.replace(data=f'folder:{root}', epochs=100, warmup_epochs=0, freeze_last_layer_epochs=0, knn_every=0,
                      preview_every=0, **({'batch_size': a.batch_size} if a.batch_size else {}))
    mb = sum(Path(f).stat().st_size for f in files) / 2**20
    dev = platform.machine() if cpu else torch.cuda.get_device_name()
    print(f'# {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads; {len(files)} JPEGs at {a.side} px '
          f'({mb / len(files) * 1024:.0f} KB each); {cfg.arch} patch {cfg.patch_size} D={cfg.embed_dim or "preset"}, '
          f'batch {cfg.batch_size}, decode {cfg.decode_size}, crops 2×{cfg.global_crop_size} + '
          f'{cfg.n_local_crops}×{cfg.local_crop_size}; {a.batches} batches after {a.warmup}\n')
    seed_everything(cfg.seed)
    rows = []
    for w in a.workers:
        dls = mst_dls(cfg, device=a.device, max_memory_gb=0, num_workers=w)   # the lazy path, whatever the folder's size
        rows.append((f'PIL in {w} workers', 'decode alone', decode_alone(dls, a.batches, a.warmup)))
        rows.append((f'PIL in {w} workers', 'end to end (fastai loop)', fastai_loop(cfg, dls, a.device, a.warmup, a.batches)))
    rows.append(('crops made once', 'step alone', step_alone(cfg, dls, a.device, a.warmup, a.batches)))
    if a.device_decode:
        for w in a.workers:
            for train in (False, True):
                rows.append((f'decode_jpeg on {a.device}, bytes read in {w} workers', 'decode + step' if train else 'decode alone',
                             device_decode_loop(files, cfg, a.device, w, a.batches, a.warmup, train)))
    step = rows[-1 - (2 * len(a.workers) if a.device_decode else 0)][2]
    print('| decoding | what | images/s | ÷ step alone |\n|---|---|---|---|')
    for how, what, ips in rows: print(f'| {how} | {what} | {ips:.0f} | {ips / step:.2f}× |')

if __name__ == '__main__': main()
