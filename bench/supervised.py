"""What the same backbone reaches *with labels*: a reference ceiling for the self-supervised presets.

    python bench/supervised.py --preset cpu --data npz:../shared/data/imagenette64 --epochs 30

Trains the preset's ViT (the same `create_vit`, width, depth, patch and crop size) with a linear classifier on the
labelled train split, cross-entropy, on the same global crops the self-supervised runs see (`multi_crop`'s two global
views of each photo, colour settings from the preset), AdamW with a linear warm-up and a cosine decay. Every
`--eval-every` epochs it prints the classifier's val top-1 and the weighted k-NN (DINO's protocol, the k-NN monitor's
own functions) of the backbone's CLS features, beside the random-init backbone and raw pixels on the same splits.

It answers "what limits the k-NN": if labelled training of this backbone on this data in the same minutes does not go
far past the self-supervised runs, the model and the 32-px photos are the ceiling, not the recipe. It is a benchmark,
not part of the package: nothing here is used by training. `--save DIR` keeps the trained backbone, so that
`bench/attention.py --supervised DIR` can ask whether a backbone that must find the object to name it puts its CLS
attention there.
"""
import argparse, json, math, platform, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F

from mst_nb.augment import multi_crop
from mst_nb.core import MSTConfig
from mst_nb.eval import labelled_splits, random_init_backbone
from mst_nb.knn import extract_features, knn_top1, prepare_images, raw_pixel_knn
from mst_nb.model import TrainedMST, save_pretrained


def evaluate(backbone, head, cfg, train, val) -> dict:
    "Classifier val top-1 and the k-NN of the CLS features (%); one forward over val serves both"
    backbone.eval()
    with torch.no_grad(): cls = torch.cat([backbone(prepare_images(b, cfg))[:, 0] for b in val.images.split(256)])  # (m,D)
    top1 = (head(cls).argmax(1) == val.labels).float().mean().item() * 100
    knn = knn_top1(extract_features(backbone, train.images, cfg), train.labels, F.normalize(cls, dim=1), val.labels,
                   cfg.knn_k, cfg.knn_temp)
    backbone.train()
    return dict(top1=top1, knn=knn)


def main(argv:list[str]|None=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--preset', default='cpu'); ap.add_argument('--data', default='npz:../shared/data/imagenette64')
    ap.add_argument('--epochs', type=int, default=30); ap.add_argument('--warmup-epochs', type=int, default=2)
    ap.add_argument('--lr', type=float, default=1e-3, help='peak AdamW learning rate (batch 64; a common ViT value)')
    ap.add_argument('--weight-decay', type=float, default=0.05); ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--eval-every', type=int, default=5); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    ap.add_argument('--out', default=None, help='a JSON file for the per-epoch results')
    ap.add_argument('--save', default=None, help="a folder for the trained backbone (backbone.safetensors in fp16 and "
                    "backbone.json, as `save_pretrained` writes them) whose attention `bench/attention.py --supervised DIR` measures")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    cfg = MSTConfig.from_preset(a.preset, data=a.data, seed=a.seed, batch_size=a.batch_size, epochs=a.epochs,
                                n_local_crops=0, compile='off')
    train, val = labelled_splits(cfg.data, cfg)
    backbone = random_init_backbone(cfg)                     # the random init a self-supervised run starts from
    head = torch.nn.Linear(backbone.vit.embed_dim, len(train.classes or train.labels.unique()))
    base = evaluate(backbone, head, cfg, train, val)
    pixels = raw_pixel_knn(train.images, train.labels, val.images, val.labels, cfg.global_crop_size, cfg.knn_k, cfg.knn_temp)
    print(f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; {len(train)} train / '
          f'{len(val)} val; random init k-NN {base["knn"]:.2f}%, raw pixels {pixels:.2f}%', flush=True)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay)
    steps_per_epoch = len(train) // a.batch_size
    total, warm = a.epochs * steps_per_epoch, a.warmup_epochs * steps_per_epoch
    # warm-up then cosine, per step (fastai's combine_scheds(SchedLin, SchedCos) is the package's tool for this; one line
    # here keeps this stand-alone loop's figures in RESULTS.md reproducible as recorded)
    lr_at = lambda s: a.lr * (s + 1) / warm if s < warm else a.lr * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))
    g, step, rows, t0 = torch.Generator().manual_seed(cfg.seed), 0, [], time.perf_counter()
    for epoch in range(a.epochs):
        for idx in torch.randperm(len(train), generator=g)[:steps_per_epoch * a.batch_size].split(a.batch_size):
            images, labels = train.batch(idx)
            views = torch.cat(multi_crop(images, cfg, g))                        # (2B,3,s,s): both global views
            for group in opt.param_groups: group['lr'] = lr_at(step)
            loss = F.cross_entropy(head(backbone(views)[:, 0]), labels.repeat(2))
            opt.zero_grad(set_to_none=True); loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad); opt.step(); step += 1
        if (epoch + 1) % a.eval_every == 0 or epoch + 1 == a.epochs:
            r = dict(epoch=epoch + 1, loss=loss.item(), seconds=time.perf_counter() - t0, **evaluate(backbone, head, cfg, train, val))
            rows.append(r)
            print(f"epoch {r['epoch']}  loss {r['loss']:.3f}  val top-1 {r['top1']:.2f}%  k-NN {r['knn']:.2f}% "
                  f"(random init {base['knn']:.2f}, raw pixels {pixels:.2f})  {r['seconds']:.0f} s", flush=True)
    result = dict(args=vars(a), random_init_knn=base['knn'], random_init_top1=base['top1'], raw_pixels_knn=pixels, epochs=rows)
    if a.out: Path(a.out).write_text(json.dumps(result, indent=1))
    if a.save:   # the package's own format for a trained teacher: `load_pretrained(path=DIR/'backbone')` reads it back
        Path(a.save).mkdir(parents=True, exist_ok=True)
        info = dict(command=' '.join(['python bench/supervised.py', *(sys.argv[1:] if argv is None else argv)]),
                    data=cfg.data, epochs=a.epochs, run_knn_top1=rows[-1]['knn'], run_top1=rows[-1]['top1'],
                    run_knn_random_init=base['knn'], run_knn_raw_pixels=pixels)
        save_pretrained(TrainedMST(cfg, backbone.eval(), source='bench/supervised.py'), Path(a.save)/'backbone', info)
    return result


if __name__ == '__main__':
    main()
