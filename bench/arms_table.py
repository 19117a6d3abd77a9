"""One markdown table of an ablation's arms over seeds: global (k-NN, solved linear probe) and dense (mosaic probes)
top-1, each as mean ± standard deviation over the arm's seeds, with the same seeds' random init and raw pixels.

    python bench/arms_table.py bench/results/sweep_dense_proxy/runs --arms mst dino none random position

Reads each run's summary.json as `python -m mst_nb.train` and `python -m mst_nb.eval linear|dense` (or
`bench/sweep.py --evals linear dense`) wrote it; runs are grouped by arm and seed by `mst_nb.runs.seed_runs`.
A figure an arm's runs lack is shown as '—'.
"""
import argparse, statistics
from pathlib import Path

from mst_nb.runs import seed_summaries


def _get(s: dict, *path):
    for k in path:
        if not isinstance(s, dict) or k not in s: return None
        s = s[k]
    return s


def _dense(s: dict, *path):
    "A figure of the run's one dense entry (the data spec it was probed on)"
    d = s.get('dense') or {}
    if len(d) > 1: raise SystemExit(f'a run was probed on several data specs ({list(d)}): say which with --data')
    return _get(next(iter(d.values())), *path) if d else None


def _stat(values: list) -> str:
    v = [x for x in values if x is not None]
    if len(v) < len(values) or not v: return '—'
    return f'{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}' if len(v) > 1 else f'{v[0]:.2f}'


COLUMNS = {  # header: (the run's figure, its random init's, raw pixels')
    'k-NN': (lambda s: s.get('knn_top1'), lambda s: s.get('knn_random_init'), lambda s: s.get('knn_raw_pixels')),
    'linear (solved)': (lambda s: _get(s, 'linear', 'top1') if _get(s, 'linear', 'solver') == 'lbfgs' else None,
                        lambda s: _get(s, 'linear', 'random_init_top1') if _get(s, 'linear', 'solver') == 'lbfgs' else None,
                        lambda s: _get(s, 'linear', 'raw_pixels_top1') if _get(s, 'linear', 'solver') == 'lbfgs' else None),
    'dense linear acc.': (lambda s: _dense(s, 'linear', 'accuracy'), lambda s: _dense(s, 'random_init', 'linear', 'accuracy'),
                          lambda s: _dense(s, 'raw_pixels', 'linear', 'accuracy')),
    'dense linear mIoU': (lambda s: _dense(s, 'linear', 'miou'), lambda s: _dense(s, 'random_init', 'linear', 'miou'),
                          lambda s: _dense(s, 'raw_pixels', 'linear', 'miou')),
    'dense k-NN acc.': (lambda s: _dense(s, 'knn', 'accuracy'), lambda s: _dense(s, 'random_init', 'knn', 'accuracy'),
                        lambda s: _dense(s, 'raw_pixels', 'knn', 'accuracy')),
    'dense k-NN mIoU': (lambda s: _dense(s, 'knn', 'miou'), lambda s: _dense(s, 'random_init', 'knn', 'miou'),
                        lambda s: _dense(s, 'raw_pixels', 'knn', 'miou')),
}


def table(runs_dir: Path, arms: list[str]) -> str:
    by_seed = {a: seed_summaries(runs_dir, arm=a) for a in arms}
    groups = {a: list(runs.values()) for a, runs in by_seed.items()}
    missing = [a for a, runs in groups.items() if not runs]
    if missing: raise SystemExit(f'no finished runs of arm(s) {missing} in {runs_dir}')
    lines = ['| arm | seeds | ' + ' | '.join(COLUMNS) + ' |', '|---|---|' + '---|' * len(COLUMNS)]
    for a, runs in groups.items():
        lines.append(f'| {a} | {len(runs)} | ' + ' | '.join(_stat([f(s) for s in runs]) for f, _, _ in COLUMNS.values()) + ' |')
    # the arms' runs of one seed start from the same backbone, so their baselines are one figure per seed, measured by
    # whichever of them did (`bench/sweep.py --eval-baselines once` measures them on the first run of each seed only)
    seeds = sorted({seed for runs in by_seed.values() for seed in runs})
    def per_seed(f): return [next((v for runs in by_seed.values() if seed in runs for v in [f(runs[seed])] if v is not None), None)
                             for seed in seeds]
    lines.append(f'| random init (the same seeds) | {len(seeds)} | ' + ' | '.join(_stat(per_seed(f)) for _, f, _ in COLUMNS.values()) + ' |')
    lines.append('| raw pixels | — | ' + ' | '.join(_stat(per_seed(f)[:1]) for _, _, f in COLUMNS.values()) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('runs', type=Path, help="a sweep's runs folder (runs named ARM_seedN or ARM)")
    ap.add_argument('--arms', nargs='+', required=True)
    a = ap.parse_args(argv)
    print(table(a.runs, a.arms))


if __name__ == '__main__': main()
