"""Exact resume across real processes: a run killed with SIGKILL mid-epoch and resumed ends with the same weights
as a run that was never interrupted (CPU, same seed). (The notebook 08_learner checks stop-after-an-epoch + resume.)"""
import subprocess, sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import kill_after_first_checkpoint

ARGS = ['--preset', 'smoke', '--epochs', '3', '--device', 'cpu']


def _train(out: Path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'mst_nb.train', *ARGS, '--out', str(out), *extra],
                          capture_output=True, text=True, timeout=600)


def test_killed_run_resumes_exactly(tmp_path):
    whole = _train(tmp_path/'whole')
    assert whole.returncode == 0, whole.stderr[-2000:]
    # outside a terminal (a pipe here; a log file, CI, nohup) one line per epoch, not a progress bar's redraws
    assert '\r' not in whole.stdout + whole.stderr and '█' not in whole.stdout + whole.stderr
    assert [l.split('  ')[0] for l in whole.stdout.splitlines() if l.startswith('epoch ')] == ['epoch 1/3', 'epoch 2/3', 'epoch 3/3']

    out = tmp_path/'killed'
    proc = subprocess.Popen([sys.executable, '-m', 'mst_nb.train', *ARGS, '--out', str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_first_checkpoint(proc, out)
    saved = torch.load(out/'checkpoint.pt', weights_only=False)    # the last good checkpoint is intact
    assert saved['epoch'] in (0, 1)
    assert not (out/'summary.json').exists()

    refused = _train(out)                                           # a finished-looking folder is never overwritten
    assert refused.returncode != 0 and 'already holds a run' in refused.stderr

    resumed = _train(out, '--resume', 'auto')
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = load_file(tmp_path/'whole'/'backbone.safetensors'), load_file(out/'backbone.safetensors')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(tmp_path/'whole'/'checkpoint.pt', weights_only=False)['model']
    sb = torch.load(out/'checkpoint.pt', weights_only=False)['model']
    assert all(torch.equal(sa[k], sb[k]) for k in sa), 'student, decoder or DINO centre differ after resume'
    epochs = [l.split(',')[0] for l in (out/'log.csv').read_text().splitlines()[1:]]
    assert epochs == ['0', '1', '2'], epochs


def test_resume_with_other_settings_is_refused(tmp_path):
    first = _train(tmp_path/'run')
    assert first.returncode == 0, first.stderr[-2000:]
    other = _train(tmp_path/'run', '--resume', 'auto', '--mask-prob', '0.3')
    assert other.returncode != 0 and 'differs from this command' in other.stderr
