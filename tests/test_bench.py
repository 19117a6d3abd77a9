"""bench/sweep.py's plan: a sweep folder grows by new arms without losing its earlier runs from the table, and a
reused name or another base is refused before anything runs; bench/supervised.py's labelled reference;
bench/attention.py's table of attention measures, mask placement and features; bench/host_reads.py's count of the
host waits in a real training step and its batch window."""
import csv, importlib.util, json, math, os, signal, subprocess, sys, time, warnings
from pathlib import Path

import pytest

from mst_nb.core import MSTConfig
from mst_nb.data import load_sample
from mst_nb.eval import random_init_backbone
from mst_nb.knn import extract_features, knn_top1
from mst_nb.model import load_pretrained


def _bench_module(name):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent.parent/'bench'/f'{name}.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module

sweep, supervised, attention = _bench_module('sweep'), _bench_module('supervised'), _bench_module('attention')
arms_table, host_reads = _bench_module('arms_table'), _bench_module('host_reads')


def test_plan_runs_names_arms_axes_and_seeds():
    assert sweep.plan_runs(['lr=1e-3,2e-2'], [], [0], 'oat') == {'base': [], 'lr=1e-3': ['--lr', '1e-3'], 'lr=2e-2': ['--lr', '2e-2']}
    assert sweep.plan_runs([], ['b32=--batch-size 32'], [0, 1], 'oat') == {
        'b32_seed0': ['--batch-size', '32', '--seed', '0'], 'b32_seed1': ['--batch-size', '32', '--seed', '1']}


def test_extend_plan_keeps_the_earlier_runs(tmp_path):
    plan = tmp_path/'plan.json'
    first = sweep.plan_runs([], ['base=', 'local6=--n-local-crops 6'], [0], 'oat')
    assert sweep.extend_plan(plan, '--epochs 2', first) == first                 # a new sweep: its own runs
    plan.write_text(json.dumps(dict(base='--epochs 2', runs=first)))
    more = sweep.plan_runs([], ['b32=--batch-size 32'], [0], 'oat')
    assert list(sweep.extend_plan(plan, '--epochs 2', more)) == ['base', 'local6', 'b32']
    assert sweep.extend_plan(plan, '--epochs 2', first) == first                 # the same runs again add nothing
    assert sweep.extend_plan(plan, '--epochs 2', {'base': []}, given=False) == first   # --collect-only: the whole plan


@pytest.mark.parametrize('base, runs, says', [('--epochs 3', {'b32': ['--batch-size', '32']}, 'extend it with the same --base'),
                                              ('--epochs 2', {'local6': ['--n-local-crops', '4']}, "already has run 'local6'")])
def test_extend_plan_refuses_a_clash(tmp_path, base, runs, says):
    plan = tmp_path/'plan.json'
    plan.write_text(json.dumps(dict(base='--epochs 2', runs={'base': [], 'local6': ['--n-local-crops', '6']})))
    with pytest.raises(SystemExit, match=says): sweep.extend_plan(plan, base, runs)


def test_a_sweep_launched_twice_is_refused(tmp_path):
    out = tmp_path/'sweep_twice'
    with sweep.FolderLock(out, 'sweep'):   # the first launch, still running
        with pytest.raises(SystemExit, match=f'{out} is in use by a sweep'):
            sweep.main(['--name', 'twice', '--out', str(out), '--arm', 'b32=--batch-size 32'])
    assert not (out/'plan.json').exists()  # the second wrote nothing


def _fake_run(folder, seed, knn):
    folder.mkdir(parents=True)
    (folder/'config.json').write_text(json.dumps(dict(seed=seed, epochs=2, out_dim=1024)))
    (folder/'summary.json').write_text(json.dumps(dict(knn_top1=knn, knn_student=knn, knn_random_init=25.0, knn_raw_pixels=29.0,
                                                       knn_gain_over_random_init=knn - 25.0, images_per_s=100.0, wall_seconds=9.0)))
    (folder/'log.csv').write_text('epoch,knn_top1,teacher_entropy,kl_teacher_student,seconds\n'
                                  f'0,26.0,6.0,0.5,4.0\n1,{knn},5.5,0.4,4.0\n')


def test_over_seeds_a_run_without_a_seed_suffix_joins_its_arm(tmp_path):
    for name, seed, knn in [('gscale', 0, 31.0), ('gscale_seed1', 1, 33.0), ('gscale_seed2', 2, 35.0), ('b32', 0, 30.0)]:
        _fake_run(tmp_path/'runs'/name, seed, knn)
    sweep.collect(tmp_path, ['gscale', 'gscale_seed1', 'gscale_seed2', 'b32'], 'test', '--epochs 2')
    table = (tmp_path/'table.md').read_text()
    assert '| gscale | 3 | 33.00 ± 2.00 | 8.00 ± 2.00 | 4.00 ± 2.00 |' in table     # seeds 0, 1 and 2 together
    assert '| b32 | 1 |' not in table                                               # one seed: no over-seeds line


def test_collect_only_takes_the_sweeps_own_base(tmp_path):
    _fake_run(tmp_path/'runs'/'b32', 0, 30.0)
    (tmp_path/'plan.json').write_text(json.dumps(dict(base='--epochs 2', runs={'b32': ['--batch-size', '32']})))
    sweep.main(['--name', 'x', '--out', str(tmp_path), '--collect-only'])   # no --base: the plan's
    assert 'Base flags: `--epochs 2`' in (tmp_path/'table.md').read_text()
    assert json.loads((tmp_path/'plan.json').read_text())['base'] == '--epochs 2'


def test_a_sweep_holds_its_folder_while_it_runs(tmp_path, monkeypatch):
    _fake_run(tmp_path/'runs'/'b32', 0, 30.0)   # finished: not run again
    held = []
    monkeypatch.setattr(sweep, 'collect', lambda out, *_: held.append(sweep.FolderLock(out).holder()))
    sweep.main(['--name', 'x', '--out', str(tmp_path), '--base', '--epochs 2', '--arm', 'b32=--batch-size 32'])
    assert held[0]['what'] == 'sweep' and held[0]['pid'] == os.getpid()
    with sweep.FolderLock(tmp_path, 'sweep'): pass   # and lets it go at the end


_STOPPABLE = '''
import importlib.util, sys
spec = importlib.util.spec_from_file_location('sweep', sys.argv[1]); sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)
# each "run" records its pid and sleeps: a stand-in for training that only a signal ends
sweep._train_cmd = lambda argv, run_dir, threads: [sys.executable, '-c',
    f'import os, time; open({str(run_dir) + ".pid"!r}, "w").write(str(os.getpid())); time.sleep(120)']
sweep.main(['--name', 'x', '--out', sys.argv[2], '--base', '', '--jobs', '1', '--arm', 'a=', '--arm', 'b=', '--arm', 'c='])
'''


def test_sigterm_stops_the_sweep_and_its_runs(tmp_path):
    proc = subprocess.Popen([sys.executable, '-c', _STOPPABLE, str(Path(sweep.__file__)), str(tmp_path)],
                            stderr=subprocess.PIPE, text=True)
    pid_file = tmp_path/'runs'/'a.pid'
    for _ in range(200):
        if pid_file.is_file() and pid_file.read_text(): break
        time.sleep(0.05)
    else: pytest.fail(f'the stand-in run never started: {proc.stderr.read() if proc.poll() is not None else "still waiting"}')
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 1
    assert 'stopped: 1 running run(s) ended, the rest not started' in proc.stderr.read()
    with pytest.raises(ProcessLookupError): os.kill(child, 0)   # the run went with the sweep
    assert not (tmp_path/'runs'/'b.log').exists() and not (tmp_path/'runs'/'c.log').exists()   # no other run started
    with sweep.FolderLock(tmp_path, 'sweep'): pass   # and the folder is free


def test_a_runs_log_is_appended_to_not_rewritten(tmp_path, monkeypatch):
    (tmp_path/'runs').mkdir(); (tmp_path/'runs'/'a.log').write_text('the first attempt\n')
    monkeypatch.setattr(sweep, '_train_cmd', lambda argv, run_dir, threads: [sys.executable, '-c', 'print("again")'])
    assert sweep.run_one('a', [], tmp_path, 1)[1] == 0
    log = (tmp_path/'runs'/'a.log').read_text()
    assert log.startswith('the first attempt\n') and log.endswith('again\n')


def test_a_trained_run_gets_only_the_evaluations_it_lacks(tmp_path, monkeypatch):
    "--evals: a summary with the attention measures and an AdamW-era linear probe gets the solved probe and the dense one"
    run = tmp_path/'runs'/'a'; run.mkdir(parents=True)
    (run/'summary.json').write_text(json.dumps({'linear': {'top1': 40.0}, 'attention_eval': {}}))
    monkeypatch.setattr(sweep, '_eval_cmd', lambda what, run_dir, threads, baselines=True: [sys.executable, '-c', f'print("eval {what}")'])
    assert sweep.pending_evals(run, ['linear', 'dense', 'attention']) == ['linear', 'dense']
    assert sweep.run_one('a', [], tmp_path, 1, ['linear', 'dense', 'attention'])[1] == 0
    log = (tmp_path/'runs'/'a.log').read_text()
    assert 'eval linear' in log and 'eval dense' in log and 'eval attention' not in log
    (run/'summary.json').write_text(json.dumps({'linear': {'solver': 'lbfgs'}, 'dense': {}}))
    assert sweep.pending_evals(run, ['linear', 'dense']) == []


def test_the_arms_table_is_mean_and_spread_over_seeds(tmp_path):
    "bench/arms_table.py: each arm's seeds as mean ± sd, an AdamW-era linear probe left out ('—'), the baselines' rows"
    def run(name, knn, dense, solver='lbfgs'):
        (tmp_path/name).mkdir()
        d = dict(linear=dict(accuracy=dense, miou=dense / 2), knn=dict(accuracy=dense + 1, miou=dense / 2 + 1))
        (tmp_path/name/'summary.json').write_text(json.dumps(dict(
            knn_top1=knn, knn_random_init=30.0, knn_raw_pixels=36.0,
            linear=dict(top1=knn + 2, random_init_top1=34.0, raw_pixels_top1=40.0, **({'solver': solver} if solver else {})),
            dense={'npz:x': dict(d, random_init=dict(d, linear=dict(accuracy=20.0, miou=10.0)), raw_pixels=d)})))
    run('mst_seed0', 40.0, 25.0); run('mst_seed1', 42.0, 27.0)
    run('dino_seed0', 38.0, 24.0, solver=None); run('dino_seed1', 38.0, 24.0)
    lines = arms_table.table(tmp_path, ['mst', 'dino']).splitlines()
    assert lines[2].startswith('| mst | 2 | 41.00 ± 1.41 | 43.00 ± 1.41 | 26.00 ± 1.41 | 13.00 ± 0.71 |')
    assert lines[3].startswith('| dino | 2 | 38.00 ± 0.00 | — | 24.00 ± 0.00 |')
    assert lines[4].startswith('| random init (the same seeds) | 2 | 30.00 ± 0.00 | 34.00 ± 0.00 | 20.00 ± 0.00 | 10.00 ± 0.00 |')
    assert lines[5].startswith('| raw pixels | — | 36.00 | 40.00 | 25.00 |')
    with pytest.raises(SystemExit, match='no finished runs'): arms_table.table(tmp_path, ['random'])


def test_eval_baselines_once_measures_them_on_the_first_run_of_each_seed():
    runs = sweep.plan_runs([], ['mst=', 'dino=--use-decoder false'], [0, 1], 'oat')
    assert sweep.baseline_runs(runs) == {'mst_seed0', 'mst_seed1'}
    assert sweep.baseline_runs({'a': [], 'b': ['--seed', '0'], 'c': ['--seed', '3', '--seed', '2']}) == {'a', 'c'}
    assert sweep._eval_cmd('dense', Path('r'), 1, baselines=False)[-1] == '--no-baselines'
    assert sweep._eval_cmd('attention', Path('r'), 1, baselines=False)[-1] == 'r'   # its random init is cheap and has no flag


def test_the_supervised_reference_learns_from_labels(tmp_path, monkeypatch):
    """bench/supervised.py on the bundled sample: its random init is the k-NN monitor's, and labels lift it above chance;
    the backbone it keeps is the one it evaluated, and bench/attention.py --supervised measures it"""
    out = tmp_path/'sup.json'
    r = supervised.main(['--preset', 'smoke', '--data', 'sample', '--epochs', '2', '--warmup-epochs', '1',
                         '--eval-every', '1', '--out', str(out), '--save', str(tmp_path/'sup')])
    cfg = MSTConfig.from_preset('smoke', data='sample')
    tr, va = load_sample('train', 32), load_sample('val', 32)
    bb = random_init_backbone(cfg)
    assert abs(r['random_init_knn'] - knn_top1(extract_features(bb, tr.images, cfg), tr.labels,
                                               extract_features(bb, va.images, cfg), va.labels)) < 1e-6
    assert [e['epoch'] for e in r['epochs']] == [1, 2] and json.loads(out.read_text())['epochs'] == r['epochs']
    assert r['epochs'][-1]['top1'] > 15   # 10 balanced classes: chance is 10% (1 epoch reaches ~20%)
    saved = load_pretrained(path=tmp_path/'sup'/'backbone')   # the package's format: the teacher alone, in fp16
    assert saved.student is None and saved.info['run_knn_top1'] == r['epochs'][-1]['knn']
    assert saved.info['command'].startswith('python bench/supervised.py --preset smoke')
    knn = knn_top1(extract_features(saved.teacher, tr.images, cfg), tr.labels, extract_features(saved.teacher, va.images, cfg), va.labels)
    assert abs(knn - r['epochs'][-1]['knn']) <= 200 / len(va)   # the evaluated backbone, up to fp16 (two photos)
    monkeypatch.setattr(sys, 'argv', ['attention.py', '--supervised', str(tmp_path/'sup'), '--out', str(tmp_path/'table'), '--n', '64'])
    attention.main()
    row, = csv.DictReader(open(tmp_path/'table'/'attention.csv'))
    assert row['run'] == 'supervised (sup)' and float(row['knn']) == r['epochs'][-1]['knn'] and 0 <= float(row['positional']) <= 1


def test_the_attention_table_has_a_no_teacher_baseline(tmp_path, monkeypatch):
    "`--contrast`: pixel contrast as a score follows the photo exactly, and its masks avoid the boxed objects"
    monkeypatch.setattr(sys, 'argv', ['attention.py', '--contrast', '--out', str(tmp_path/'table'), '--n', '64'])
    attention.main()
    row, = csv.DictReader(open(tmp_path/'table'/'attention.csv'))
    assert row['run'] == 'pixel contrast (no teacher)' and row['strategy'] == 'contrast' and row['grey_r'] == '' and row['knn'] == ''
    assert abs(float(row['follows']) - 1) < 1e-4 and 0 <= float(row['positional']) < 0.35   # a patch's own pixels, wherever it is
    assert float(row['masked_on_object']) == float(row['contrast_on_object']) < float(row['random_on_object'])
    assert float(row['attention_on_object']) > float(row['area'])
    assert '| pixel contrast (no teacher) | pixel contrast |' in (tmp_path/'table'/'table.md').read_text()


def test_the_attention_table_measures_a_run(tmp_path, monkeypatch, capsys):
    "A debiased `position` run: its ranked score and raw attention measured, its own masks placed, its k-NN read"
    from mst_nb.train import main as train_main
    run = tmp_path/'pos'
    train_main(['--preset', 'smoke', '--epochs', '1', '--device', 'cpu', '--mask-strategy', 'position',
                '--attention-debias', 'true', '--out', str(run)])
    monkeypatch.setattr(sys, 'argv', ['attention.py', str(run), str(tmp_path/'absent'), '--out', str(tmp_path/'table'), '--n', '64'])
    attention.main()
    rows = list(csv.DictReader(open(tmp_path/'table'/'attention.csv')))
    assert [r['run'] for r in rows] == ['pos'] and rows[0]['ranks'] == 'debiased' and rows[0]['strategy'] == 'position'
    assert 0 <= float(rows[0]['positional']) <= 1 and 0 < float(rows[0]['random_on_object']) < 1
    assert float(rows[0]['contrast_on_object']) < float(rows[0]['random_on_object'])   # flat patches: mostly background
    # the mean map's share on objects is the heads' mean share, so the best head's is at least it
    assert float(rows[0]['best_head_on_object']) >= float(rows[0]['attention_on_object']) - 1e-6
    assert abs(float(rows[0]['habit_photos'])) < 0.1 and abs(float(rows[0]['habit_shuffled'])) < 0.1   # one epoch: no habit yet
    summary = json.loads((run/'summary.json').read_text())
    assert float(rows[0]['knn']) == summary['knn_top1'] and summary['attention_eval']['sample']['n_photos'] == 64
    assert 'skipped' in capsys.readouterr().out and '| pos | debiased |' in (tmp_path/'table'/'table.md').read_text()


def _reads(progress, **kw):
    "Host reads per training step of the smoke learner (those that would not wait on a GPU left out)"
    from mst_nb.core import seed_everything
    from mst_nb.data import mst_dls
    from mst_nb.learner import mst_learner
    seed_everything(0)
    c = MSTConfig.from_preset('smoke', epochs=100, knn_every=0, preview_every=0, batch_size=16, **kw)
    learn = mst_learner(c, mst_dls(c, device='cpu'), progress=progress)
    if progress: learn.progress.every = math.inf   # ThrottledProgress: never after the first batch
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); r = host_reads.host_reads_per_step(learn)
    return {k: v for k, v in r.items() if k[1] not in host_reads.HOST_ONLY}


@pytest.mark.parametrize('progress, arm', [(False, {}), (True, {}), (False, dict(mask_strategy='random', use_decoder=False)),
                                           (False, dict(mask_strategy='none', centering='center'))])
def test_a_training_step_reads_the_device_once(progress, arm):
    # fastai's schedule and the CPU-only blur choice read host tensors (HOST_ONLY); what remains is the non-finite guard's
    # one check of loss and gradients, with the bar (read at most once a second) or without, in every arm
    assert _reads(progress, **arm) == {('_local_scalar_dense', 'callbacks.py:NonFiniteGuard.before_step'): 1.0}


def test_the_batch_window_opens_and_closes_across_epochs():
    from fastai.callback.core import Callback
    from fastai.test_utils import synth_learner
    seen = []
    class Batches(Callback):
        def before_batch(self): seen.append(self.train_iter if self.training else 'valid')
    learn = synth_learner(n_trn=10, cbs=[Batches()])   # any fastai Learner: 10 batches an epoch
    n, nv = len(learn.dls.train), len(learn.dls.valid)   # its validation batches are not counted
    window = host_reads.BatchWindow(n - 1, 3, lambda: seen.append('open'), lambda: seen.append('close'))  # across 2 epochs
    learn.add_cb(window)
    with learn.no_logging(), learn.no_bar(): learn.fit(100)
    assert seen[-6 - nv:] == [n - 2, 'open', n - 1, *['valid'] * nv, n, n + 1, 'close']   # three whole batches, then the end
    assert (window.active, learn.train_iter) == (False, n + 2)
    learn.remove_cb(window); seen.clear()
    learn.add_cb(host_reads.BatchWindow(n - 1, 5, lambda: seen.append('open'), lambda: seen.append('close')))
    with learn.no_logging(), learn.no_bar(): learn.fit(1)    # the fit ends inside the window: it still closes
    assert seen[-3 - nv:] == ['open', n - 1, *['valid'] * nv, 'close']
