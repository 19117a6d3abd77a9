"""The command line as users meet it: a bad value ends in one `error:` line naming the field, not a traceback, and
leaves the output folder untouched."""
import json, shutil, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT


def _train(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'mst_nb.train', '--device', 'cpu', *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('arch, says', [('resnet50', 'must be a timm VisionTransformer'),
                                        ('no_such_model', 'is not a model timm knows')])
def test_non_vit_arch_is_a_one_line_error(tmp_path, arch, says):
    run = _train('--arch', arch, '--epochs', '1', '--out', str(tmp_path/'run'))
    assert run.returncode != 0
    assert 'Traceback' not in run.stderr, run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and f"arch='{arch}'" in last and says in last, last
    assert not (tmp_path/'run').exists()


@pytest.mark.parametrize('script, says', [('mst-train', 'usage: mst-train'), ('mst-eval', 'usage: mst-eval')])
def test_console_scripts_are_installed(script, says):
    "settings.ini's console_scripts: `mst-train` and `mst-eval` beside the interpreter, as `pip install` puts them"
    exe = Path(sys.executable).parent/script
    assert exe.is_file(), f'{exe} missing: reinstall the package (make install)'
    run = subprocess.run([str(exe), '--help'], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith(says), run.stdout[:300] + run.stderr[-1000:]


def test_help_shows_the_chosen_presets_values():
    run = subprocess.run([sys.executable, '-m', 'mst_nb.train', '--preset', 'cpu', '--help'], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0
    text = ' '.join(run.stdout.split())
    assert 'cpu: 64; MSTConfig default: 100' in text and 'cpu: 64; MSTConfig default: 64' not in text   # --epochs: the preset's 64 and the default; --batch-size: no default beside an equal preset value


# issue 29: what goes wrong says so in one line, keeps the run folder usable, and never gives a wrong number

FAST = ['--epochs', '1', '--knn-every', '0', '--preview-every', '0']   # the smoke model, no monitors: seconds an epoch


def _last_line(run) -> str:
    assert 'Traceback' not in run.stderr, run.stderr[-3000:]
    return run.stderr.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    "A finished one-epoch smoke run"
    out = tmp_path_factory.mktemp('finished')/'run'
    run = _train(*FAST, '--out', str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    return out


def test_failed_resume_writes_nothing_and_names_the_fields(finished, tmp_path):
    "A resume with other settings is refused before anything is written, naming each field; the run resumes after"
    run = tmp_path/'run'; shutil.copytree(finished, run)
    (run/'config.json').unlink()                                  # the file the comparison used to rely on
    bad = _train(*FAST, '--out', str(run), '--resume', 'auto', '--embed-dim', '32', '--epochs', '2')
    assert bad.returncode != 0
    last = _last_line(bad)
    assert last.startswith('error: ') and 'embed_dim (run: 64, command: 32)' in last, last
    assert not (run/'config.json').exists()                       # nothing written by the refused command
    other = tmp_path/'new'                                        # the checkpoint resumed into a new folder: the same
    bad = _train(*FAST, '--out', str(other), '--resume', str(run/'checkpoint.pt'), '--embed-dim', '32')
    assert bad.returncode != 0 and 'embed_dim (run: 64' in _last_line(bad) and not other.exists()
    good = _train(*FAST, '--out', str(run), '--resume', 'auto', '--epochs', '2')
    assert good.returncode == 0, good.stderr[-2000:]
    assert json.loads((run/'config.json').read_text())['epochs'] == 2


@pytest.mark.parametrize('sig, says, code', [(signal.SIGINT, 'interrupted (Ctrl-C)', 130),
                                             (signal.SIGTERM, 'stopped (SIGTERM)', 143)])
def test_a_stopped_run_says_what_it_kept_and_how_to_continue(tmp_path, sig, says, code):
    out = tmp_path/'run'
    args = [sys.executable, '-m', 'mst_nb.train', '--device', 'cpu', *FAST, '--epochs', '20', '--out', str(out)]
    # a shell's background job (CI, nohup) starts with Ctrl-C ignored, and Python then keeps it ignored: give the run
    # the default disposition, as a terminal's foreground job has
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not (out/'checkpoint.pt').exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.1)
    time.sleep(1.0); proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert 'Traceback' not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f'error: {says}; the checkpoint after epoch ') and f'of 20 is kept in {out}' in last, last
    assert last.endswith(f'continue with: python -m mst_nb.train --device cpu {" ".join(FAST)} --epochs 20 --out {out} --resume auto'), last


def test_out_that_is_a_file_is_one_line(tmp_path):
    (tmp_path/'file').write_text('not a folder')
    for out in (tmp_path/'file', tmp_path/'file'/'run'):
        run = _train(*FAST, '--out', str(out))
        assert run.returncode != 0 and 'is a file (or lies under one), not a folder' in _last_line(run), run.stderr[-1500:]
    assert (tmp_path/'file').read_text() == 'not a folder'


def test_non_finite_loss_is_one_line_naming_the_fields(tmp_path):
    run = _train(*FAST, '--lr', '1e30', '--out', str(tmp_path/'run'))
    last = _last_line(run)
    assert run.returncode != 0 and last.startswith('error: non-finite') and '--lr 1e+30' in last, last


def test_debug_shows_the_traceback(tmp_path):
    run = _train(*FAST, '--lr', '1e30', '--out', str(tmp_path/'run'), '--debug')
    assert run.returncode != 0 and 'Traceback' in run.stderr and 'NonFiniteError' in run.stderr


def test_bad_labels_are_one_line(tmp_path):
    np.savez(tmp_path/'set_train.npz', x=np.zeros((40, 32, 32, 3), np.uint8), y=np.full(40, 0.5))
    run = _train(*FAST, '--data', f'npz:{tmp_path}', '--out', str(tmp_path/'run'))
    last = _last_line(run)
    assert run.returncode != 0 and last.startswith('error: ') and 'labels must be whole numbers' in last, last


def test_one_class_skips_the_knn_and_says_why(tmp_path):
    "A k-NN over one class is 100% and measures nothing: skipped with a warning, not reported"
    from mst_nb.data import load_sample
    photos = load_sample('train').images[:48]
    for split, n in (('train', 40), ('val', 8)):
        (tmp_path/'data'/split/'tench').mkdir(parents=True)
        for i in range(n): Image.fromarray(photos[i + (40 if split == 'val' else 0)].permute(1, 2, 0).numpy()).save(
            tmp_path/'data'/split/'tench'/f'{i}.jpg')
    run = _train('--epochs', '1', '--batch-size', '16', '--data', f'folder:{tmp_path/"data"}', '--out', str(tmp_path/'run'))
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'a k-NN over one class is 100% and measures nothing' in run.stderr
    assert json.loads((tmp_path/'run'/'summary.json').read_text())['knn_top1'] is None
    assert 'k-NN: not measured' in run.stdout


def test_no_warning_before_the_first_line():
    "fastai's import-time torch.jit.script warning is silenced where fastai is first imported (mst_nb.core)"
    run = subprocess.run([sys.executable, '-m', 'mst_nb.train', '--help'], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and 'jit.script' not in run.stderr and run.stderr == '', run.stderr[-1000:]
    for module in sorted((ROOT/'mst_nb').glob('*.py')):   # every module imports core before fastai, so any can come first
        lines = module.read_text().splitlines()
        fastai = next((i for i, l in enumerate(lines) if l.startswith(('from fastai', 'import fastai'))), None)
        core = next((i for i, l in enumerate(lines) if l.startswith('from .core import')), None)
        if fastai is not None and module.name != 'core.py':
            assert core is not None and core < fastai, f'{module.name}: import .core before fastai (line {fastai + 1})'
