"""Write the bundled sample: a class-balanced subset of imagenette64 carried inside the package.

    python tools/make_sample.py ../shared/data/imagenette64

The first 100 train and 50 val images of each class, in shard order, keeping their original JPEG bytes (no
re-encoding) in imagenette64's own npz format, so the sample is read by the same code as the full set.
"""
import sys
from pathlib import Path
import numpy as np

PER_CLASS = {'train': 100, 'val': 50}
DEST = Path(__file__).resolve().parent.parent/'mst_nb'/'assets'


def subset(src: Path, split: str, per_class: int):
    jpegs, labels, names, counts = [], [], [], {}
    for shard in sorted(src.glob(f'imagenette64_{split}_*.npz')):
        d = np.load(shard); b, o, y, n = d['jpeg'], d['offsets'], d['labels'], d['names']
        for i in range(len(y)):
            if counts.get(int(y[i]), 0) < per_class:
                counts[int(y[i])] = counts.get(int(y[i]), 0) + 1
                jpegs.append(b[o[i]:o[i+1]]); labels.append(y[i]); names.append(n[i])
    assert len(counts) == 10 and set(counts.values()) == {per_class}, counts
    offsets = np.concatenate([[0], np.cumsum([len(j) for j in jpegs])]).astype(np.int64)
    return dict(jpeg=np.concatenate(jpegs), offsets=offsets, labels=np.array(labels, np.uint8), names=np.array(names))


if __name__ == '__main__':
    src = Path(sys.argv[1] if len(sys.argv) > 1 else '../shared/data/imagenette64')
    if not src.is_dir(): sys.exit(f'imagenette64 not found at {src}: pass its folder')
    DEST.mkdir(parents=True, exist_ok=True)
    for split, n in PER_CLASS.items():
        np.savez(DEST/f'imagenette64_sample_{split}.npz', **subset(src, split, n))
    (DEST/'classes.txt').write_bytes((src/'classes.txt').read_bytes())
    print(*(f'{p.name}: {p.stat().st_size/1e6:.2f} MB' for p in sorted(DEST.iterdir())), sep='\n')
