"""bench/sweep.py's plan: a sweep folder grows by new arms without losing its earlier runs from the table, and a
reused name or another base is refused before anything runs."""
import importlib.util, json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location('sweep', Path(__file__).parent.parent/'bench'/'sweep.py')
sweep = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(sweep)


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
