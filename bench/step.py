"""Time of one MST training step against the same step without MST's pieces (plain DINO), same model and crops.

    python bench/step.py                                   # CPU: the smoke and imagenette64 models
    python bench/step.py --device cuda --presets in1k_vit_small --batch 64 --precision bf16   # the paper-scale setting
    python bench/step.py --device cuda --compile reduce-overhead     # student, teacher, decoder compiled (--compile)

A step is what training does per batch: teacher forward, student forward, losses, backward, gradient clipping,
AdamW, EMA update of the teacher. MST adds the teacher's last-block CLS attention, mask drawing, the mask token,
the decoder and the L1 loss; DINO is the same code with mask_strategy='none' and no decoder. Crops are synthetic
tensors already on the device (as in the reference step measurements), so only the step is timed. The two steps alternate, and the
median over the timed steps is reported.
"""
import argparse, platform, statistics, time, types, warnings

import torch

from mst_nb.core import MSTConfig, autocast_dtype, resolve_precision
from mst_nb.decoder import GlobalDecoder
from mst_nb.losses import DINOLoss
from mst_nb.model import compile_parts, mst_forward
from mst_nb.vit import ViTWithHead


def make_step(cfg: MSTConfig, device: str, with_mst: bool):
    "A closure running one full training step on given crops"
    torch.manual_seed(0)
    cfg = cfg if with_mst else cfg.replace(mask_strategy='none', use_decoder=False)
    student = ViTWithHead.from_config(cfg).to(device)
    teacher = ViTWithHead.from_config(cfg, drop_path_rate=0.0).to(device)
    teacher.load_state_dict(student.state_dict()); teacher.requires_grad_(False).eval()
    decoder = GlobalDecoder.from_config(cfg, student.backbone.vit.embed_dim).to(device) if cfg.use_decoder else None
    loss_fn = DINOLoss.from_config(cfg).to(device)
    compile_parts(types.SimpleNamespace(student=student, teacher=teacher, decoder=decoder, dino_loss=loss_fn), cfg.compile, device)   # as mst_learner does
    params = [p for m in (student, decoder) if m is not None for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.scaled_lr(), weight_decay=cfg.weight_decay)
    s_params = [p for p in student.parameters()]
    t_params = [p for p in teacher.parameters()]
    dtype = autocast_dtype(cfg.precision, device)
    gen = torch.Generator(device).manual_seed(0)

    def step(crops):
        with torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None):
            out = mst_forward(student, teacher, decoder, loss_fn, crops, cfg, gen)
        opt.zero_grad(set_to_none=True)
        out['loss'].backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        opt.step()
        with torch.no_grad():  # EMA teacher, momentum at its starting value
            torch._foreach_mul_(t_params, cfg.teacher_momentum)
            torch._foreach_add_(t_params, s_params, alpha=1 - cfg.teacher_momentum)
        return out['loss']
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--presets', nargs='+', default=['smoke', 'imagenette64'])
    ap.add_argument('--batch', type=int, default=None, help='default: 32 for smoke, 16 for the others on a CPU')
    ap.add_argument('--precision', default='auto'); ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=2, help='untimed steps first (with --compile: the build happens here)')
    ap.add_argument('--compile', default='off', help="MSTConfig.compile: off, default, reduce-overhead, max-autotune, aot_eager")
    a = ap.parse_args()
    sync = torch.cuda.synchronize if a.device.startswith('cuda') else (lambda: None)
    dev = torch.cuda.get_device_name() if a.device.startswith('cuda') else platform.machine()
    print(f'# {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, {resolve_precision(a.precision, a.device)}, '
          f'median of {a.steps} steps after {a.warmup} warm-up, compile={a.compile}\n')
    print('| preset | model | batch | views | DINO step (ms) | MST step (ms) | MST / DINO | MST img/s |')
    print('|---|---|---|---|---|---|---|---|')
    for name in a.presets:
        bs = a.batch or (32 if name == 'smoke' else 16)
        cfg = MSTConfig.from_preset(name, batch_size=bs, precision=a.precision, compile=a.compile)
        crops = [torch.randn(bs, 3, cfg.global_crop_size, cfg.global_crop_size, device=a.device) for _ in range(2)] + \
                [torch.randn(bs, 3, cfg.local_crop_size, cfg.local_crop_size, device=a.device) for _ in range(cfg.n_local_crops)]
        steps = {'dino': make_step(cfg, a.device, False), 'mst': make_step(cfg, a.device, True)}
        times = {k: [] for k in steps}
        for i in range(a.warmup + a.steps):
            for k, step in steps.items():
                sync(); t0 = time.perf_counter(); step(crops); sync()
                if i >= a.warmup: times[k].append(time.perf_counter() - t0)
        d, m = statistics.median(times['dino']), statistics.median(times['mst'])
        model = f'{cfg.arch.split("_patch")[0]}/{cfg.patch_size}' + (f' D={cfg.embed_dim} depth={cfg.depth}' if cfg.embed_dim else '')
        views = f'2×{cfg.global_crop_size} + {cfg.n_local_crops}×{cfg.local_crop_size}'
        print(f'| {name} | {model} | {bs} | {views} | {d * 1e3:.1f} | {m * 1e3:.1f} | {m / d:.2f}× | {bs / m:.0f} |')


if __name__ == '__main__':
    warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
    main()
