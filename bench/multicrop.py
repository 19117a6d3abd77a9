"""Images/s of `mst_nb.augment.multi_crop` against DINO's per-image PIL pipeline, on the same machine and images.

    python bench/multicrop.py                       # CPU, both presets
    python bench/multicrop.py --device cuda         # on a GPU (the reference pipeline still runs on the CPU)
    python bench/multicrop.py --device cuda --batch 64 256 --compile default --step   # issue 12: crops' share of a step

The reference is DINO's `DataAugmentationDINO` rebuilt from torchvision transforms on PIL images (bicubic random
resized crops, flip, colour jitter, grayscale, PIL Gaussian blur, solarisation, to-tensor, normalise), one image at a
time as a DataLoader worker runs it; its throughput is measured in one process and multiplied by the number of cores
(perfect scaling over workers, an upper bound). `multi_crop` gets the same decoded images as one uint8 batch and
uses all cores through torch's threads. Decoding is excluded from both: both start from decoded pixels.

With `--compile MODE` the same batches are also rendered through `render_fn(MODE)` (what `--compile` trains with),
timed after a warm-up that includes the build, and the largest difference from the eager views is printed. With
`--step` the MST training step of `bench/step.py` is timed at the same batch (compiled with the same MODE) and the
crops' share of crops + step is printed: issue 12's target is under 10% at 224/96 px.
"""
import argparse, os, platform, random, statistics, sys, time, warnings
from pathlib import Path

import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps

from mst_nb.augment import multi_crop
from mst_nb.core import MSTConfig
from mst_nb.data import DataWarning, load_sample


class PILBlur:
    "DINO's GaussianBlur: PIL's filter with a random radius, applied with probability p"
    def __init__(self, p, lo, hi): self.p, self.lo, self.hi = p, lo, hi
    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(random.uniform(self.lo, self.hi))) if random.random() < self.p else img


class PILSolarize:
    def __init__(self, p): self.p = p
    def __call__(self, img): return ImageOps.solarize(img) if random.random() < self.p else img


def reference_pipeline(cfg: MSTConfig):
    "DataAugmentationDINO with `cfg`'s sizes and probabilities: a function image -> list of 2 + N tensors"
    jitter = T.Compose([T.RandomHorizontalFlip(cfg.flip_p),
                        T.RandomApply([T.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)], p=cfg.color_jitter_p),
                        T.RandomGrayscale(cfg.grayscale_p)])
    norm = T.Compose([T.ToTensor(), T.Normalize(cfg.norm_mean, cfg.norm_std)])
    rrc = lambda size, scale: T.RandomResizedCrop(size, scale=scale, ratio=cfg.crop_ratio, interpolation=T.InterpolationMode.BICUBIC)
    g1 = T.Compose([rrc(cfg.global_crop_size, cfg.global_crop_scale), jitter, PILBlur(cfg.blur_p[0], *cfg.blur_sigma), norm])
    g2 = T.Compose([rrc(cfg.global_crop_size, cfg.global_crop_scale), jitter, PILBlur(cfg.blur_p[1], *cfg.blur_sigma),
                    PILSolarize(cfg.solarize_p[1]), norm])
    lc = T.Compose([rrc(cfg.local_crop_size, cfg.local_crop_scale), jitter, PILBlur(cfg.blur_p[2], *cfg.blur_sigma), norm])
    return lambda img: [g1(img), g2(img)] + [lc(img) for _ in range(cfg.n_local_crops)]


def bench_reference(images, cfg, seconds=4.0):
    f, pil = reference_pipeline(cfg), [Image.fromarray(im.permute(1, 2, 0).numpy()) for im in images]
    f(pil[0]); n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds: f(pil[n % len(pil)]); n += 1
    return n / (time.perf_counter() - t0)


def _timed(f, iters, sync):
    "Median seconds of `f()` over `iters` calls, after one untimed call (with compile: the build)"
    f(); sync(); times = []
    for _ in range(iters):
        t0 = time.perf_counter(); f(); sync(); times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--batch', type=int, nargs='+', default=[64])
    ap.add_argument('--iters', type=int, default=5); ap.add_argument('--presets', nargs='+', default=['imagenette64', 'in1k_vit_small'])
    ap.add_argument('--compile', default='off', help='also render through render_fn(MODE): default, reduce-overhead, max-autotune, aot_eager')
    ap.add_argument('--step', action='store_true', help="time bench/step.py's MST step at the same batch (compiled with --compile)")
    ap.add_argument('--no-reference', action='store_true', help="skip DINO's PIL pipeline")
    a = ap.parse_args()
    cores = os.cpu_count()
    cuda = a.device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    dev = torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine()
    print(f'# {dev}, {cores} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, median of {a.iters} '
          f'batches after one warm-up, compile={a.compile}\n')
    print('| preset | views | source px | batch | reference PIL × cores (img/s) | multi_crop (img/s) | ratio '
          '| multi_crop (ms) | compiled (ms) | compiled / eager | max abs diff | MST step (ms) | crops / (crops + step) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    if a.step:
        sys.path.insert(0, str(Path(__file__).parent)); from step import make_step
    for name in a.presets:
        src = 64 if name == 'imagenette64' else 256  # imagenette64's own size; ImageNet-like decode size for in1k
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DataWarning)  # the 64 px photos are upscaled for the 256 px case
            pool = load_sample('train', size=src).images
        ref = None if a.no_reference else bench_reference(pool[:64], MSTConfig.from_preset(name)) * cores
        for bs in a.batch:
            cfg = MSTConfig.from_preset(name, batch_size=bs)
            x = pool[torch.arange(bs) % len(pool)].to(a.device)
            crop = lambda c: multi_crop(x, c, torch.Generator(a.device).manual_seed(0))
            eager = _timed(lambda: crop(cfg), a.iters, sync)
            comp = diff = '—'
            if a.compile != 'off':
                ccfg = cfg.replace(compile=a.compile)
                t = _timed(lambda: crop(ccfg), a.iters, sync)
                diff = f'{max((u - v).abs().max().item() for u, v in zip(crop(ccfg), crop(cfg))):.1e}'
                comp = f'{t * 1e3:.1f} | {t / eager:.2f}×'
            else: t = eager
            step_ms = share = '—'
            if a.step:
                views = crop(cfg)
                step = make_step(cfg.replace(compile=a.compile), a.device, True)
                s = _timed(lambda: step(views), a.iters, sync)
                step_ms, share = f'{s * 1e3:.1f}', f'{t / (t + s):.1%}'
            views = f'2×{cfg.global_crop_size} + {cfg.n_local_crops}×{cfg.local_crop_size}'
            ref_s = '—' if ref is None else f'{ref:.0f}'
            ratio = '—' if ref is None else f'{bs / eager / ref:.1f}×'
            comp = comp if a.compile != 'off' else '— | —'
            print(f'| {name} | {views} | {src} | {bs} | {ref_s} | {bs / eager:.0f} | {ratio} | {eager * 1e3:.1f} | {comp} '
                  f'| {diff} | {step_ms} | {share} |', flush=True)


if __name__ == '__main__': main()
