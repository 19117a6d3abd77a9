"""Images/s of `mst_nb.augment.multi_crop` against DINO's per-image PIL pipeline, on the same machine and images.

    python bench/multicrop.py                       # CPU, both presets
    python bench/multicrop.py --device cuda         # on a GPU (the reference pipeline still runs on the CPU)

The reference is DINO's `DataAugmentationDINO` rebuilt from torchvision transforms on PIL images (bicubic random
resized crops, flip, colour jitter, grayscale, PIL Gaussian blur, solarisation, to-tensor, normalise), one image at a
time as a DataLoader worker runs it; its throughput is measured in one process and multiplied by the number of cores
(perfect scaling over workers, an upper bound). `multi_crop` gets the same decoded images as one uint8 batch and
uses all cores through torch's threads. Decoding is excluded from both: both start from decoded pixels.
"""
import argparse, os, platform, random, time, warnings

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


def bench_multicrop(images, cfg, device, iters):
    x, g = images.to(device), torch.Generator(device).manual_seed(0)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    multi_crop(x, cfg, g); sync()
    t0 = time.perf_counter()
    for _ in range(iters): multi_crop(x, cfg, g)
    sync()
    return iters * len(x) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--iters', type=int, default=5); ap.add_argument('--presets', nargs='+', default=['imagenette64', 'in1k_vit_small'])
    a = ap.parse_args()
    cores = os.cpu_count()
    dev = torch.cuda.get_device_name() if a.device.startswith('cuda') else platform.processor() or platform.machine()
    print(f'# {dev}, {cores} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {a.batch}\n')
    print('| preset | views | source px | reference PIL, 1 process (img/s) | reference × cores (img/s) | multi_crop (img/s) | ratio |')
    print('|---|---|---|---|---|---|---|')
    for name in a.presets:
        cfg = MSTConfig.from_preset(name)
        src = 64 if name == 'imagenette64' else 256  # imagenette64's own size; ImageNet-like decode size for in1k
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DataWarning)  # the 64 px photos are upscaled for the 256 px case
            images = load_sample('train', size=src).images[:a.batch]
        ref = bench_reference(images, cfg)
        ours = bench_multicrop(images, cfg, a.device, a.iters)
        views = f'2×{cfg.global_crop_size} + {cfg.n_local_crops}×{cfg.local_crop_size}'
        print(f'| {name} | {views} | {src} | {ref:.0f} | {ref * cores:.0f} | {ours:.0f} | {ours / (ref * cores):.1f}× |')


if __name__ == '__main__': main()
