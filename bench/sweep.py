"""Short training runs over a grid of settings, one table and one figure: how the k-NN of a recipe compares with its
own random init and with raw pixels.

    python bench/sweep.py --name lr --base '--data sample --epochs 15' --vary lr=1e-3,5e-3,2e-2
    python bench/sweep.py --name ablation --base '--preset cpu --data npz:DIR' --seeds 0 1 \\
        --arm mst= --arm random='--mask-strategy random' --arm dino='--mask-strategy none --use-decoder false'

Every run is `python -m mst_nb.train` in its own process (the base flags, then the run's own), writing to
`OUT/runs/NAME` (default OUT: bench/results/sweep_<name>); `--jobs` runs that many at once with `--threads` torch
threads each (on 2 cores, 2 jobs of 1 thread train ~25% more images per second in all than 1 job of 2). A run whose
summary.json exists is not run again, so a sweep can be stopped (Ctrl-C or SIGTERM ends its running runs too, each
resuming from its last checkpoint next time), extended and rerun: new `--vary`/`--arm` runs with
the same `--base` (or none: the sweep's own) join the sweep's earlier ones in its `plan.json` (the same flags again add
nothing; a name reused with other flags, or another base, is an error). At the end (or with `--collect-only`, which without `--vary`/`--arm`
collects the whole plan) it writes `OUT/table.md`, `OUT/results.csv` and `OUT/sweep.png` (k-NN of every run by epoch with
the baselines, and the teacher's entropy as a fraction of ln K). `--evals linear dense attention` runs those
`python -m mst_nb.eval` commands on each run once it is trained (each once; a linear probe from before the solved
probe is redone), so their results are in the run's summary.json while its checkpoint is still there.

Axes: `--vary FIELD=V1,V2,...` (repeatable; a tuple field takes `V1a:V1b,...`). With `--mode oat` (the default) each
value of each axis is one run, all other fields at the base (one factor at a time, plus the base itself); with
`--mode grid` the runs are the product of all axes. `--arm NAME=FLAGS` adds named runs; `--seeds` repeats everything.
"""
import argparse, contextlib, csv, itertools, json, math, os, shlex, signal, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mst_nb.core import FolderInUseError, FolderLock
from mst_nb.runs import Run, arm_of

ROOT = Path(__file__).resolve().parent.parent


def _flag(field: str) -> str: return '--' + field.replace('_', '-')


def plan_runs(vary: list[str], arms: list[str], seeds: list[int], mode: str) -> dict[str, list[str]]:
    "Run name -> that run's own flags (added after the base flags)"
    axes = []
    for spec in vary:
        field, _, values = spec.partition('=')
        if not values: sys.exit(f'error: --vary {spec!r}: expected FIELD=V1,V2,...')
        axes.append([(field, v) for v in values.split(',')])
    def flags(pairs): return [a for f, v in pairs for a in (_flag(f), *v.split(':'))]
    def name(pairs): return '_'.join(f'{f}={v}' for f, v in pairs) or 'base'
    runs = {}
    if mode == 'grid' and axes: runs = {name(c): flags(c) for c in itertools.product(*axes)}
    else:
        if axes or not arms: runs['base'] = []      # named arms alone run only themselves (an arm may be called base)
        for axis in axes: runs.update({name([p]): flags([p]) for p in axis})
    for spec in arms:
        n, _, fl = spec.partition('=')
        runs[n] = shlex.split(fl)
    if len(seeds) > 1 or seeds != [0]:
        runs = {f'{n}_seed{s}': f + ['--seed', str(s)] for n, f in runs.items() for s in seeds}
    return runs


def extend_plan(path: Path, base: str, runs: dict[str, list[str]], given: bool = True) -> dict[str, list[str]]:
    "The sweep's earlier runs (its plan.json) followed by `runs`; without new axes or arms (`given`), the earlier plan"
    if not path.is_file(): return runs
    old = json.loads(path.read_text())
    if old['base'] != base:
        sys.exit(f"error: {path.parent} is a sweep with base flags {old['base']!r}; extend it with the same --base, "
                 f"or give the new runs another --name")
    if not given: return old['runs']
    clash = [n for n in runs if n in old['runs'] and old['runs'][n] != runs[n]]
    if clash:
        sys.exit(f"error: {path.parent} already has run {clash[0]!r} with flags {old['runs'][clash[0]]!r}; "
                 f"give the new arm another name")
    return {**old['runs'], **runs}


def _train_cmd(argv: list[str], run_dir: Path, threads: int) -> list[str]:
    code = f'import torch; torch.set_num_threads({threads}); from mst_nb.train import main; main()'
    return [sys.executable, '-c', code, *argv, '--out', str(run_dir), '--resume', 'auto']


# `--evals`: the evaluation a run's summary.json already holds (the linear probe only if solved with L-BFGS)
EVALS = {'linear': lambda s: s.get('linear', {}).get('solver') == 'lbfgs',
         'dense': lambda s: 'dense' in s,
         'attention': lambda s: 'attention_eval' in s}


def pending_evals(run_dir: Path, evals: list[str]) -> list[str]:
    "Those of `evals` that the trained run in `run_dir` has no result of yet"
    summary = Run(run_dir).summary()
    return [e for e in evals if not EVALS[e](summary)]


def _eval_cmd(what: str, run_dir: Path, threads: int, baselines: bool = True) -> list[str]:
    code = f'import torch; torch.set_num_threads({threads}); from mst_nb.eval import main; main()'
    return [sys.executable, '-c', code, what, '--ckpt', str(run_dir)] + ([] if baselines or what == 'attention' else ['--no-baselines'])


def baseline_runs(runs: dict[str, list[str]]) -> set[str]:
    "The first run of each seed in plan order: with `--eval-baselines once`, the only ones whose evaluations measure the baselines"
    # random init and raw pixels depend on the seed and the data, not on the arm: once per seed is enough when the
    # arms share the architecture (an arm that changes it, e.g. --depth, needs `--eval-baselines all`)
    first = {}
    for name, flags in runs.items():
        seed = next((flags[i + 1] for i in range(len(flags) - 2, -1, -1) if flags[i] == '--seed'), '0')   # the last --seed wins
        first.setdefault(seed, name)
    return set(first.values())


# the training processes now running, and whether the sweep is stopping (Ctrl-C or SIGTERM): one lock for both, so no
# run starts after the stop has ended the others
_live, _stopping, _live_lock = set(), threading.Event(), threading.Lock()


def run_one(name: str, argv: list[str], out: Path, threads: int, evals: list[str] = (),
            baselines: bool = True) -> tuple[str, int | None, float]:
    "Train one run in its own process and then evaluate it (`evals`), the output appended to out/runs/NAME.log"
    run_dir, t0 = out/'runs'/name, time.perf_counter()
    if not Run(run_dir).finished:
        rc = _run_process(name, _train_cmd(argv, run_dir, threads), out, threads)
        if rc != 0: return name, rc, time.perf_counter() - t0
    for what in pending_evals(run_dir, list(evals)) if evals else []:
        rc = _run_process(name, _eval_cmd(what, run_dir, threads, baselines), out, threads)
        if rc != 0: return name, rc, time.perf_counter() - t0
    return name, 0, time.perf_counter() - t0


def _run_process(name: str, cmd: list[str], out: Path, threads: int) -> int | None:
    "Run `cmd` in its own process, its output appended to out/runs/NAME.log; its exit code, None if not started (stopping)"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1', HF_HUB_OFFLINE='1')
    (out/'runs').mkdir(parents=True, exist_ok=True)
    # appended, not rewritten: a resumed run keeps the log of its earlier attempt, and a stray second process (refused
    # by the run folder's lock) cannot wipe the log of the one that holds it
    with open(out/'runs'/f'{name}.log', 'a') as log:
        with _live_lock:
            if _stopping.is_set(): return None
            log.write(' '.join(shlex.quote(c) for c in cmd) + '\n'); log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
            _live.add(proc)
        try: rc = proc.wait()
        finally: _live.discard(proc)
    return rc


def _stop_runs() -> int:
    "End the running training processes (each resumes from its last checkpoint when the sweep is run again)"
    with _live_lock:
        _stopping.set(); procs = list(_live)
    for p in procs: p.terminate()
    for p in procs: p.wait()
    return len(procs)


def _raise_interrupt(signum, frame): raise KeyboardInterrupt


def _read_run(run_dir: Path) -> dict | None:
    run = Run(run_dir)
    if not run.finished: return None
    s, cfg, log = run.summary(), run.saved_config(), run.log_rows()
    knn = [(int(r['epoch']) + 1, float(r['knn_top1'])) for r in log if r.get('knn_top1')]
    ent = [(int(r['epoch']) + 1, float(r['teacher_entropy']) / math.log(cfg['out_dim'])) for r in log]
    kl = [float(r['kl_teacher_student']) for r in log if r.get('kl_teacher_student')]
    train_s = sum(float(r['seconds']) for r in log)
    return dict(name=run_dir.name, summary=s, cfg=cfg, knn=knn, entropy=ent, kl=kl, train_seconds=train_s)


def _mean_sd(xs):
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float('nan'))


def collect(out: Path, names: list[str], title: str, base: str) -> list[dict]:
    "Write table.md, results.csv and sweep.png from the runs' summaries and logs"
    runs = [r for n in names if (r := _read_run(out/'runs'/n)) is not None]
    if not runs: print('no finished runs yet'); return []
    def f(x, fmt='{:.2f}'): return '' if x is None else fmt.format(x)
    rows = []
    for r in runs:
        s = r['summary']
        best = max(r['knn'], key=lambda e: e[1]) if r['knn'] else (None, None)
        rows.append(dict(run=r['name'], seed=r['cfg'].get('seed', 0), knn=s['knn_top1'], student=s.get('knn_student'), random_init=s.get('knn_random_init'),
                         raw_pixels=s.get('knn_raw_pixels'), gain=s.get('knn_gain_over_random_init'),
                         over_pixels=None if s.get('knn_raw_pixels') is None else s['knn_top1'] - s['knn_raw_pixels'],
                         best=best[1], best_epoch=best[0], entropy_end=r['entropy'][-1][1] if r['entropy'] else None,
                         entropy_max=max(e for _, e in r['entropy']) if r['entropy'] else None,
                         kl_end=r['kl'][-1] if r['kl'] else None, epochs=r['cfg']['epochs'],
                         linear=s.get('linear', {}).get('top1'), linear_random_init=s.get('linear', {}).get('random_init_top1'),
                         linear_raw_pixels=s.get('linear', {}).get('raw_pixels_top1'),
                         train_s=r['train_seconds'], images_per_s=s.get('images_per_s'), wall_s=s.get('wall_seconds')))
    with open(out/'results.csv', 'w', newline='') as fh:
        w = csv.DictWriter(fh, list(rows[0])); w.writeheader(); w.writerows(rows)
    lines = [f'# {title}', '', f'Base flags: `{base}`', '',
             'k-NN: weighted 20-NN top-1 (%) on the teacher\'s CLS features, train → val, at the last epoch; gain: over '
             'the run\'s own random init; vs pixels: over raw 32×32 pixels; H/ln K: the teacher\'s mean entropy as a '
             'fraction of uniform (end of training, and its maximum); KL: mean KL(teacher ‖ student), last epoch.', '',
             '| run | k-NN | student | random init | gain | vs pixels | best (epoch) | H/ln K end (max) | KL end | train s | img/s |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in sorted(rows, key=lambda r: -(r['gain'] if r['gain'] is not None else -1e9)):
        lines.append(f"| {r['run']} | {f(r['knn'])} | {f(r['student'])} | {f(r['random_init'])} | {f(r['gain'], '{:+.2f}')} | "
                     f"{f(r['over_pixels'], '{:+.2f}')} | {f(r['best'])} ({r['best_epoch']}) | "
                     f"{f(r['entropy_end'])} ({f(r['entropy_max'])}) | {f(r['kl_end'])} | {r['train_s']:.0f} | {f(r['images_per_s'], '{:.0f}')} |")
    groups = {}
    for r in rows:   # `X_seed1` joins `X`, the run a sweep without --seeds named (seed 0); a seed counts once per arm
        g = groups.setdefault(arm_of(r['run'])[0], [])
        if r['seed'] not in (o['seed'] for o in g): g.append(r)
    if any(len(g) > 1 for g in groups.values()):
        keys = ['knn', 'gain', 'over_pixels', 'student', 'random_init', 'linear', 'linear_random_init', 'linear_raw_pixels']
        lines += ['', 'Over seeds (mean ± sd; linear: `python -m mst_nb.eval linear` on each run, with its baselines):', '',
                  '| arm | seeds | k-NN | gain over random init | vs raw pixels | student k-NN | random-init k-NN | linear | '
                  'linear, random init | linear, raw pixels |', '|---|---|---|---|---|---|---|---|---|---|']
        def cell(g, k):
            xs = [r[k] for r in g if r[k] is not None]
            return '' if not xs else '{:.2f} ± {:.2f}'.format(*_mean_sd(xs))
        for n, g in groups.items():
            if len(g) > 1: lines.append(f'| {n} | {len(g)} | ' + ' | '.join(cell(g, k) for k in keys) + ' |')
    (out/'table.md').write_text('\n'.join(lines) + '\n')
    _figure(out, runs, title)
    print('\n'.join(lines))
    return rows


def _figure(out: Path, runs: list[dict], title: str):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, r in enumerate(runs):
        c = plt.cm.tab20(i % 20)
        if r['knn']: a.plot(*zip(*r['knn']), marker='o', ms=3, color=c, label=r['name'])
        b.plot(*zip(*r['entropy']), color=c, label=r['name'])
    base = [r['summary'] for r in runs]
    ri = [s['knn_random_init'] for s in base if s.get('knn_random_init') is not None]
    px = [s['knn_raw_pixels'] for s in base if s.get('knn_raw_pixels') is not None]
    if ri: a.axhspan(min(ri), max(ri), color='grey', alpha=0.25, label=f'random init ({min(ri):.1f}–{max(ri):.1f})')
    if px: a.axhline(px[0], color='k', ls='--', label=f'raw pixels ({px[0]:.1f})')
    a.set(xlabel='epoch', ylabel='k-NN top-1 (%)', title='teacher k-NN, val split')
    b.set(xlabel='epoch', ylabel='H(teacher) / ln K', title='teacher entropy (1 = uniform)', ylim=(0, 1.02))
    a.legend(fontsize=6, ncol=2); fig.suptitle(title); fig.tight_layout()
    fig.savefig(out/'sweep.png', dpi=110); plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--name', required=True, help='the sweep; its folder is bench/results/sweep_NAME unless --out')
    p.add_argument('--out', default=None)
    p.add_argument('--base', default=None, help="flags of mst_nb.train shared by every run (default: an existing sweep's own)")
    p.add_argument('--vary', action='append', default=[], metavar='FIELD=V1,V2')
    p.add_argument('--arm', action='append', default=[], metavar='NAME=FLAGS')
    p.add_argument('--mode', choices=['oat', 'grid'], default='oat')
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--jobs', type=int, default=2, help='runs at once (2 on a 2-core machine)')
    p.add_argument('--threads', type=int, default=1, help='torch threads per run')
    p.add_argument('--evals', nargs='+', default=[], choices=list(EVALS),
                   help='python -m mst_nb.eval commands to run on each run once trained (results in its summary.json)')
    p.add_argument('--eval-baselines', choices=['all', 'once'], default='all',
                   help="'once': only the first run of each seed measures the random-init and raw-pixel baselines in its "
                        "evaluations (they do not depend on the arm when the arms share the architecture)")
    p.add_argument('--collect-only', action='store_true')
    a = p.parse_args(argv)
    out = Path(a.out or ROOT/'bench'/'results'/f'sweep_{a.name}')
    # a sweep holds its folder while it runs (a second launch stops here, naming the first); collecting alone does not
    try:
        with contextlib.nullcontext() if a.collect_only else FolderLock(out, 'sweep'): sweep(a, out)
    except FolderInUseError as e: sys.exit(f'error: {e}')


def sweep(a: argparse.Namespace, out: Path):
    "Plan (extending the folder's plan.json), run what is not finished, collect"
    plan = out/'plan.json'
    base = a.base if a.base is not None else json.loads(plan.read_text())['base'] if plan.is_file() else ''
    runs = extend_plan(plan, base, plan_runs(a.vary, a.arm, a.seeds, a.mode), given=bool(a.vary or a.arm or a.seeds != [0]))
    out.mkdir(parents=True, exist_ok=True)
    plan.write_text(json.dumps(dict(base=base, runs=runs), indent=1))
    if not a.collect_only:
        print(f'{len(runs)} runs, {a.jobs} at a time, {a.threads} thread(s) each, into {out}', flush=True)
        # SIGTERM stops the sweep as Ctrl-C does: the running runs are ended and no further one starts (by default a
        # SIGTERM ends the sweep alone and leaves its runs training)
        _stopping.clear(); previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            with ThreadPoolExecutor(a.jobs) as pool:
                try:
                    measuring = baseline_runs(runs) if a.eval_baselines == 'once' else set(runs)
                    for name, rc, secs in pool.map(lambda kv: run_one(kv[0], shlex.split(base) + kv[1], out, a.threads, a.evals,
                                                                      kv[0] in measuring), runs.items()):
                        print(f'{name}: {"done" if rc == 0 else f"FAILED (exit {rc}), see runs/{name}.log"} {secs:.0f} s',
                              flush=True)
                except KeyboardInterrupt:
                    n = _stop_runs()
                    sys.exit(f'stopped: {n} running run(s) ended, the rest not started; the same command resumes them')
        finally: signal.signal(signal.SIGTERM, previous)
    collect(out, list(runs), f'sweep {a.name}', base)


if __name__ == '__main__': main()
