"""Does each run's teacher attention follow the photo, where do its masks fall, and what did it learn: one table.

    python bench/attention.py bench/results/sweep_attn_proxy/runs/* --out bench/results/attention_proxy
    python bench/attention.py --pretrained            # the teacher that ships with the package (and its random init)
    python bench/attention.py --supervised DIR        # a backbone trained with labels (bench/supervised.py --save DIR)
    python bench/attention.py --contrast              # the `contrast` strategy's score, pixel contrast: no teacher at all

For every run folder (its checkpoint.pt must be there): `mst_nb.eval.attention_eval` on 256 photos of the bundled
val split (positional share, grey image r, follows content r, border share, concentration — of the raw attention
and, for a run that ranks debiased attention, of that score), written into the run's summary.json; then, on the 39
bundled val photos with hand-drawn object boxes (`mst_nb.viz.object_boxes`), the object's share of the patches, of
the teacher's attention (and of its one head that gives them most) and of the patches the run's own masking would
hide (`mst`, or `position` / `contrast` for those controls; `mst` for the arms that mask otherwise), against random
masks of the same ratio and the `contrast` strategy's (`mst`'s rule on pixel contrast, no teacher: the raw-pixel
baseline of mask placement); and the k-NN and linear probe of summary.json with their random-init and raw-pixel baselines. Writes
OUT/table.md and OUT/attention.csv (which also holds `habits`: what the maps share beyond uniform, on the photos and
on the photos shuffled).
"""
import argparse, csv, math
from pathlib import Path

import torch

from mst_nb.attention import attention_measures, border_share, concentration, positional_share, ranking_scores, row_correlation
from mst_nb.augment import shuffle_patches
from mst_nb.core import eval_mode
from mst_nb.data import load_sample
from mst_nb.eval import attention_eval
from mst_nb.knn import prepare_images
from mst_nb.losses import attention_habit
from mst_nb.masking import patch_contrast, ranked_scores
from mst_nb.model import TrainedMST, load_pretrained
from mst_nb.vit import PRETRAINED, cls_attention
from mst_nb.runs import Run
from mst_nb.viz import object_boxes, object_shares


def placement(parts: TrainedMST) -> dict:
    "Object area, attention and mask shares on the 39 boxed photos (means over the photos)"
    cfg = parts.cfg
    idx, boxes = object_boxes()
    photos = load_sample('val', size=cfg.decode_size or cfg.global_crop_size).images[idx]
    stats = parts.position_stats
    raw = ranking_scores(parts.teacher, photos, cfg.replace(attention_debias=False))
    scores = ranked_scores(raw, cfg, None if stats is None else stats.attention.float().cpu())   # what the run ranks, from it
    strategy = cfg.mask_strategy if cfg.mask_strategy in ('position', 'contrast') else 'mst'
    rate = None if stats is None else stats.candidates
    crops = prepare_images(photos, cfg)
    shares = object_shares(scores, boxes, cfg.replace(mask_strategy='mst'), strategy=strategy, position_rate=rate, images=crops)
    contrast = object_shares(scores, boxes, cfg, strategy='contrast', images=crops)['masked']   # the no-teacher baseline
    with eval_mode(parts.teacher):   # does one head look at objects where their mean does not?
        heads = cls_attention(parts.teacher, crops, per_head=True, blocks=cfg.attention_blocks).float()
    best_head = max(object_shares(heads[:, h], boxes, cfg)['attention'].mean().item() for h in range(heads.shape[1]))
    return dict(area=shares['area'].mean().item(), attention_on_object=object_shares(raw, boxes, cfg)['attention'].mean().item(),
                best_head_on_object=best_head,
                score_on_object=shares['attention'].mean().item(), masked_on_object=shares['masked'].mean().item(),
                random_on_object=shares['random'].mean().item(), contrast_on_object=contrast.mean().item(), strategy=strategy)


def habits(parts: TrainedMST, n: int) -> dict:
    """The habit penalty's h (`mst_nb.losses.attention_habit`: what the maps share beyond uniform) of the teacher's
    attention on the bundled val's first `n` photos, and on the same photos with their patches shuffled (what the maps
    share by position alone; `attention_habit_shuffled` charges that one)"""
    cfg = parts.cfg
    x = prepare_images(load_sample('val', size=cfg.decode_size or cfg.global_crop_size).images[:n], cfg)
    shuffled, _ = shuffle_patches(x, cfg.patch_size, torch.Generator().manual_seed(0))
    with eval_mode(parts.teacher):
        h = [attention_habit(cls_attention(parts.teacher, v, blocks=cfg.attention_blocks)).item() for v in (x, shuffled)]
    return dict(habit_photos=h[0], habit_shuffled=h[1])


def first_photos_measures(parts: TrainedMST, n: int) -> dict:
    """The measures of a teacher that has no run folder (the shipped one, a labelled backbone) on the bundled val's first
    `n` photos, as the shipped teacher's published measures were made (`attention_eval` takes a seeded subset)"""
    cfg = parts.cfg
    photos = load_sample('val', size=cfg.decode_size or cfg.global_crop_size).images[:n]
    m = dict(attention=attention_measures(parts.teacher, photos, cfg))
    if cfg.attention_debias:
        m['ranking'] = attention_measures(parts.teacher, photos, cfg, debiased=True, position_mean=parts.position_stats.attention)
    return m


def _get(d: dict, path: str):
    for k in path.split('.'):
        if not isinstance(d, dict) or k not in d: return None
        d = d[k]
    return d


def row(name: str, parts: TrainedMST, measured: dict, summary: dict, n: int) -> dict:
    "One table row: the measures of the ranked score (debiased runs) and of the raw attention, placement, k-NN, linear"
    score = measured.get('ranking', measured['attention'])
    raw = measured['attention']
    r = dict(run=name, ranks='debiased' if 'ranking' in measured else f"attention ({parts.cfg.attention_blocks} block(s))",
             positional=score['positional_share'], grey_r=score['grey_r'], follows=score['follows_content'],
             concentration=score['concentration'], border=score['border_share'],
             raw_positional=raw['positional_share'], raw_follows=raw['follows_content'], **placement(parts), **habits(parts, n))
    for key, path in [('knn', 'knn_top1'), ('knn_random', 'knn_random_init'), ('knn_pixels', 'knn_raw_pixels'),
                      ('linear', 'linear.top1'), ('linear_random', 'linear.random_init_top1'), ('linear_pixels', 'linear.raw_pixels_top1')]:
        r[key] = _get(summary, path)
    return r


def contrast_row(cfg, n: int) -> dict:
    """The measures of the `contrast` strategy's score — each patch's pixel contrast (`mst_nb.masking.patch_contrast`),
    as a map summing to 1 — on the bundled val's first `n` photos, and where it and its masks fall on the 39 boxed
    photos: the raw-pixel baseline of the attention measures and of mask placement (a grey image has no contrast, so
    no grey r)"""
    val = load_sample('val', size=cfg.decode_size or cfg.global_crop_size).images
    x = prepare_images(val[:n], cfg)
    shuffled, perm = shuffle_patches(x, cfg.patch_size, torch.Generator().manual_seed(0))   # as attention_measures does
    maps, moved = (s / s.sum(-1, keepdim=True) for s in (patch_contrast(x, cfg.patch_size), patch_contrast(shuffled, cfg.patch_size)))
    grid = (cfg.global_grid,) * 2
    idx, boxes = object_boxes()
    crops = prepare_images(val[idx], cfg)
    shares = object_shares(patch_contrast(crops, cfg.patch_size), boxes, cfg, strategy='contrast', images=crops)
    placed = dict(area=shares['area'].mean().item(), attention_on_object=shares['attention'].mean().item(),
                  score_on_object=shares['attention'].mean().item(), masked_on_object=shares['masked'].mean().item(),
                  random_on_object=shares['random'].mean().item(), contrast_on_object=shares['masked'].mean().item())
    return dict(run='pixel contrast (no teacher)', ranks='pixel contrast', positional=positional_share(maps), grey_r=None,
                follows=float(row_correlation(moved, maps.gather(1, perm)).mean()), concentration=concentration(maps),
                border=border_share(maps, grid), raw_positional=None, raw_follows=None, best_head_on_object=None,
                strategy='contrast', **placed, **dict.fromkeys(['habit_photos', 'habit_shuffled', 'knn', 'knn_random', 'knn_pixels',
                                                                 'linear', 'linear_random', 'linear_pixels']))


def fmt(v, spec='.2f'):
    return '—' if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def table(rows: list[dict]) -> str:
    head = ('| run | ranks | positional share | grey r | follows content r | 60% on | border (44% of area) | raw attention: '
            'positional / follows | object area | attention on object (best head) | masks on object (random, pixel contrast) | k-NN (random init, pixels) | linear |')
    lines = [head, '|' + '---|' * head.count(' | ') + '---|']
    for r in rows:
        lines.append(f"| {r['run']} | {r['ranks']} | {fmt(r['positional'])} | {fmt(r['grey_r'])} | {fmt(r['follows'])} | "
                     f"{fmt(r['concentration'], '.0%')} | {fmt(r['border'], '.0%')} | {fmt(r['raw_positional'])} / {fmt(r['raw_follows'])} | "
                     f"{fmt(r['area'], '.0%')} | {fmt(r['attention_on_object'], '.0%')} ({fmt(r['best_head_on_object'], '.0%')}) | {fmt(r['masked_on_object'], '.0%')} "
                     f"({fmt(r['random_on_object'], '.0%')}, {fmt(r.get('contrast_on_object'), '.0%')}) | {fmt(r['knn'])} ({fmt(r['knn_random'])}, {fmt(r['knn_pixels'])}) | "
                     f"{fmt(r['linear'])} |")
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('runs', nargs='*', type=Path, help='run folders (with checkpoint.pt and summary.json)')
    ap.add_argument('--pretrained', action='store_true', help='also the shipped teacher and its random init')
    ap.add_argument('--supervised', type=Path, action='append', default=[],
                    help='a folder written by bench/supervised.py --save (repeatable): a backbone trained with labels')
    ap.add_argument('--contrast', action='store_true',
                    help="also the `contrast` strategy's score (pixel contrast, no teacher): the raw-pixel baseline of the measures")
    ap.add_argument('--out', type=Path, default=None, help='write table.md and attention.csv here')
    ap.add_argument('--n', type=int, default=256, help='bundled val photos for the measures')
    a = ap.parse_args()
    rows = []
    stems = [('shipped teacher', PRETRAINED)] if a.pretrained else []
    stems += [(f'supervised ({folder.name})', folder/'backbone') for folder in a.supervised]
    for name, stem in stems:   # teachers without a run folder: their json records their own k-NN and baselines
        parts = load_pretrained(path=stem)
        summary = {k: parts.info.get(f'run_{k}') for k in ('knn_top1', 'knn_random_init', 'knn_raw_pixels', 'linear')}
        rows.append(row(name, parts, first_photos_measures(parts, a.n), summary, a.n))
        if stem == PRETRAINED:
            init = load_pretrained(random_init=True)
            rows.append(row('shipped, random init', init, first_photos_measures(init, a.n), {}, a.n))
    if a.contrast: rows.append(contrast_row(load_pretrained().cfg, a.n))   # the shipped teacher's crops and patches
    for run in map(Run, a.runs):
        if run.latest_checkpoint() is None: print(f'skipped {run.path}: no checkpoint'); continue
        measured = attention_eval(run.path, 'sample', a.n)   # kept in its summary.json
        parts = run.trained()                                # for the mask placement
        rows.append(row(run.name, parts, measured, run.summary() or {}, a.n))
        print(f'measured {run}', flush=True)
    text = table(rows)
    print(text)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out/'table.md').write_text(text + '\n')
        with open(a.out/'attention.csv', 'w', newline='') as f:
            w = csv.DictWriter(f, list(dict.fromkeys(k for r in rows for k in r))); w.writeheader(); w.writerows(rows)


if __name__ == '__main__':
    torch.set_grad_enabled(False)
    main()
