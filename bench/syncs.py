"""Where a training step makes the CPU wait for the GPU: CUDA synchronisations per step, by source line.

    python bench/syncs.py                      # the imagenette64 preset on the bundled sample, 6 training batches
    python bench/syncs.py --preset smoke --batches 10
    python bench/syncs.py --data npz:.data/imagenette64     # whole epochs of imagenette64 at batch 256

A launch-bound step (a small ViT) is fast only while the CPU can queue kernels ahead of the GPU;
each synchronisation (a `.item()`, a host-to-device copy from pageable memory, a `nonzero`, printing a tensor)
drains that queue. This runs the real fastai training loop (`mst_learner`: multi-crop, masking, losses, every
callback) under `torch.cuda.set_sync_debug_mode('warn')` and counts the warnings per batch, grouped by the line of
this package (or of fastai) that triggered them. The first batches are skipped (first-call allocations and caches).

Without a GPU it counts the ops that would wait on one (`bench/host_reads.py`: scalar reads, `nonzero`,
boolean-mask indexing) in the same loop on the CPU, and says which of them wait only there.
"""
import argparse, collections, linecache, warnings
from pathlib import Path

import torch

from mst_nb.core import MSTConfig, seed_everything
from mst_nb.data import mst_dls
from host_reads import HOST_ONLY, BatchWindow, host_reads_per_step, package_frame
from mst_nb.learner import mst_learner


def source_line(frame) -> str:
    "'file.py:line  code' of a frame (`package_frame`: the innermost of mst_nb, fastai or fastprogress)"
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()[:90]
    return f'{Path(frame.f_code.co_filename).name}:{frame.f_lineno}  {code}'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--preset', default='imagenette64'); ap.add_argument('--batches', type=int, default=6)
    ap.add_argument('--data', default='sample', help='a data spec; enough images for skip + batches batches in one epoch')
    ap.add_argument('--skip', type=int, default=3); ap.add_argument('--batch-size', type=int, default=None)
    a = ap.parse_args()
    cfg = MSTConfig.from_preset(a.preset, data=a.data, epochs=100, warmup_epochs=0, freeze_last_layer_epochs=0, knn_every=0,
                                **({'batch_size': a.batch_size} if a.batch_size else {}))
    seed_everything(cfg.seed)
    if not torch.cuda.is_available(): return cpu_proxy(cfg, a)
    window = BatchWindow(a.skip, a.batches, lambda: torch.cuda.set_sync_debug_mode('warn'), lambda: torch.cuda.set_sync_debug_mode(0))
    learn = mst_learner(cfg, mst_dls(cfg), cbs=[window])
    where = collections.Counter()
    def record(message, category, filename, lineno, file=None, line=None):
        if window.active and 'synchroniz' in str(message): where[source_line(package_frame(1))] += 1
    with warnings.catch_warnings():
        warnings.simplefilter('always'); warnings.showwarning = record
        with learn.no_bar(), learn.no_logging(): learn.fit(cfg.epochs)
    total = sum(where.values())
    print(f'# {torch.cuda.get_device_name()}, torch {torch.__version__}, preset {a.preset}, batch {cfg.batch_size}: '
          f'{total / a.batches:.1f} synchronisations per training batch ({a.batches} batches after {a.skip})\n')
    print('| per batch | where |\n|---|---|')
    for line, n in where.most_common(): print(f'| {n / a.batches:.1f} | `{line}` |')


def cpu_proxy(cfg, a):
    "No GPU: the ops of the same loop that wait for a GPU, per training batch, counted on the CPU"
    learn = mst_learner(cfg, mst_dls(cfg, device='cpu'), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); reads = host_reads_per_step(learn, a.skip, a.batches)
    gpu = sum(v for (op, where), v in reads.items() if where not in HOST_ONLY)
    print(f'# no GPU: CPU proxy (HostReads), torch {torch.__version__}, preset {a.preset}, batch {cfg.batch_size}: '
          f'{gpu:.1f} reads per training batch that would wait on a GPU ({a.batches} batches after {a.skip})\n')
    print('| per batch | op | where | on a GPU |\n|---|---|---|---|')
    for (op, where), n in reads.items(): print(f'| {n:.1f} | `{op}` | `{where}` | {"no: " + HOST_ONLY[where] if where in HOST_ONLY else "waits"} |')


if __name__ == '__main__': main()
