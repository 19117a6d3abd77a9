"""Training throughput three ways, same model, data, batch and device: the step alone, a plain PyTorch loop, and
fastai's loop with every MST callback (what `python -m mst_nb.train` runs).

    python bench/loop.py                                                  # CPU: the smoke preset, bundled sample
    python bench/loop.py --device cuda --preset imagenette64 --data npz:.data/imagenette64   # a GPU

- step alone: the training step on crops already made (`bench/step.py`'s setting): teacher, masks, student,
  decoder, losses, backward, per-parameter clipping, AdamW, EMA;
- plain loop: the same step fed by the real loader and `multi_crop` from uint8 batches, written as a plain PyTorch
  loop (torch's AdamW, no callbacks): what a hand-written trainer would do;
- fastai loop: `mst_learner(cfg, dls)` as training runs it (schedules, guards, monitors, fastai's Adam, Recorder).

The targets: end to end (fastai loop) ≥ 0.9× the step alone, and fastai's loop within 3% of the plain
loop. Each way runs `--batches` timed batches after `--warmup`; the three alternate `--rounds` times and the
median images/s per way is printed, with the ratios.
"""
import argparse, platform, statistics, time, warnings

import torch

from mst_nb.augment import multi_crop
from mst_nb.callbacks import clip_per_parameter, ema_update
from mst_nb.model import StudentTeacher
from mst_nb.core import MSTConfig, autocast_dtype, seed_everything
from mst_nb.data import mst_dls
from host_reads import BatchWindow
from mst_nb.learner import mst_learner


def _sync(device):
    if torch.device(device).type == 'cuda': torch.cuda.synchronize(device)


def _parts(cfg, device):
    module = StudentTeacher(cfg).to(device).train()
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.scaled_lr(), weight_decay=cfg.weight_decay, betas=(0.9, 0.999), eps=1e-8)
    return module, params, opt


def _step(module, params, opt, crops, cfg, device):
    with torch.autocast(torch.device(device).type, dtype=autocast_dtype(cfg.precision, device),
                        enabled=autocast_dtype(cfg.precision, device) is not None):
        out = module(crops)
    opt.zero_grad(set_to_none=True)
    out['loss'].backward()
    clip_per_parameter(params, cfg.clip_grad)
    opt.step()
    ema_update(module.teacher, module.student, cfg.teacher_momentum)


def step_alone(cfg, dls, device, warmup, batches) -> float:
    "Images/s of the step on crops made once, before timing"
    module, params, opt = _parts(cfg, device)
    images, _ = dls.train.one_batch()
    crops = multi_crop(images, cfg, torch.Generator(images.device).manual_seed(0))
    for i in range(warmup): _step(module, params, opt, crops, cfg, device)
    _sync(device); t0 = time.perf_counter()
    for i in range(batches): _step(module, params, opt, crops, cfg, device)
    _sync(device)
    return batches * cfg.batch_size / (time.perf_counter() - t0)


def plain_loop(cfg, dls, device, warmup, batches) -> float:
    "Images/s of loader → multi_crop → step, in a plain loop"
    module, params, opt = _parts(cfg, device)
    gen, t0, n = None, None, 0
    while True:
        for images, _ in dls.train:
            if gen is None: gen = torch.Generator(images.device).manual_seed(0)
            if n == warmup: _sync(device); t0 = time.perf_counter()
            _step(module, params, opt, multi_crop(images, cfg, gen), cfg, device)
            n += 1
            if n == warmup + batches:
                _sync(device)
                return batches * cfg.batch_size / (time.perf_counter() - t0)


def fastai_loop(cfg, dls, device, warmup, batches) -> float:
    "Images/s of `mst_learner`'s fit (every callback of a real run; no checkpoints or log files)"
    marks = []   # the window's start and end, the device drained at both
    clock = BatchWindow(warmup, batches, *[lambda: (_sync(device), marks.append(time.perf_counter()))] * 2)
    learn = mst_learner(cfg, dls, cbs=[clock])
    with learn.no_bar(), learn.no_logging(): learn.fit(max(1, cfg.epochs))
    return batches * cfg.batch_size / (marks[1] - marks[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--preset', default='smoke')
    ap.add_argument('--data', default='sample'); ap.add_argument('--batch-size', type=int, default=None)
    ap.add_argument('--warmup', type=int, default=3); ap.add_argument('--batches', type=int, default=12)
    ap.add_argument('--rounds', type=int, default=3)
    a = ap.parse_args()
    warnings.filterwarnings('ignore', category=UserWarning)
    cfg = MSTConfig.from_preset(a.preset, data=a.data, epochs=100, warmup_epochs=0, freeze_last_layer_epochs=0,
                                knn_every=0, **({'batch_size': a.batch_size} if a.batch_size else {}))
    seed_everything(cfg.seed)
    dls = mst_dls(cfg, device=a.device)
    dev = torch.cuda.get_device_name() if a.device.startswith('cuda') else platform.machine()
    print(f'# {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, preset {a.preset} '
          f'(batch {cfg.batch_size}, {cfg.precision}), data {a.data}; median of {a.rounds} rounds of {a.batches} '
          f'batches after {a.warmup}\n')
    ways = {'step alone': step_alone, 'plain loop': plain_loop, 'fastai loop': fastai_loop}
    ips = {k: [] for k in ways}
    for r in range(a.rounds):
        for k, f in ways.items(): ips[k].append(f(cfg, dls, a.device, a.warmup, a.batches))
    med = {k: statistics.median(v) for k, v in ips.items()}
    print('| way | images/s | ÷ step alone |\n|---|---|---|')
    for k, v in med.items(): print(f'| {k} | {v:.0f} | {v / med["step alone"]:.2f}× |')
    print(f'\nfastai loop ÷ plain loop: {med["fastai loop"] / med["plain loop"]:.3f}×   '
          f'(targets: fastai loop ≥ 0.9× step alone; fastai within 3% of plain)')


if __name__ == '__main__': main()
