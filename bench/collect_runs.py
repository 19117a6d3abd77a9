"""One markdown table from training runs: k-NN top-1 along the way and at the end, throughput, memory, wall time.

    python bench/collect_runs.py runs/mst runs/none runs/random runs/dino

Reads each run's `log.csv` (one row per epoch), `config.json` and, when the run finished, `summary.json`. A run that
was stopped early (killed at a deadline) still shows the epochs it logged, marked as unfinished.
"""
import argparse, statistics
from pathlib import Path

from mst_nb.runs import Run


def describe(cfg: dict) -> str:
    mask = cfg['mask_strategy'] if cfg['mask_strategy'] != 'none' else 'no masking'
    return f"{mask} + {'decoder' if cfg['use_decoder'] else 'no decoder'}"


def row(run: Run) -> dict:
    cfg, log, summary = run.saved_config(), run.log_rows(), run.summary()
    knn = [(int(r['epoch']) + 1, float(r['knn_top1'])) for r in log if r.get('knn_top1')]
    best = max(knn, key=lambda t: t[1]) if knn else None
    return dict(run=run.name, arm=describe(cfg), epochs=f"{len(log)}/{cfg['epochs']}" + ('' if summary else ' (stopped)'),
                knn_curve=', '.join(f'{e}: {k:.1f}' for e, k in knn) or '—',
                final=f'{knn[-1][1]:.2f}%' if knn else '—', best=f'{best[1]:.2f}% (ep {best[0]})' if best else '—',
                ips=f"{statistics.median(float(r['images_per_s']) for r in log[1:] or log):.0f}" if log else '—',
                mem=f"{summary['peak_memory_mb']:.0f} MB" if summary else '—',
                wall=f"{summary['wall_seconds']:.0f} s" if summary else f"{sum(float(r['seconds']) for r in log):.0f} s (epochs)",
                restore=log[-1].get('restore') or '—', entropy=log[-1].get('teacher_entropy', '—'))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('runs', nargs='+', type=Path)
    a = ap.parse_args()
    cols = [('run', 'run'), ('arm', 'arm'), ('epochs', 'epochs logged'), ('final', 'k-NN top-1 (last)'),
            ('best', 'best'), ('knn_curve', 'k-NN by epoch'), ('ips', 'images/s (median epoch)'), ('mem', 'peak memory'),
            ('wall', 'wall'), ('restore', 'L1 (last)'), ('entropy', 'teacher entropy')]
    print('| ' + ' | '.join(h for _, h in cols) + ' |')
    print('|' + '---|' * len(cols))
    for run in map(Run, a.runs):
        if not run.config_path.is_file(): print(f'| {run.name} | (no run: {run.config_path} missing) |'); continue
        r = row(run)
        print('| ' + ' | '.join(str(r[k]) for k, _ in cols) + ' |')


if __name__ == '__main__': main()
