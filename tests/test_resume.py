"""Exact resume across real processes: a run killed with SIGKILL mid-epoch and resumed ends with the same weights
as a run that was never interrupted (CPU, same seed). (The notebook 08_learner checks stop-after-an-epoch + resume.)"""
import json, shutil, subprocess, sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import kill_after_first_checkpoint

ARGS = ['--preset', 'smoke', '--epochs', '2', '--device', 'cpu']


def _train(out: Path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'mst_nb.train', *ARGS, '--out', str(out), *extra],
                          capture_output=True, text=True, timeout=600)


def test_killed_run_resumes_exactly(tmp_path):
    whole = _train(tmp_path/'whole')
    assert whole.returncode == 0, whole.stderr[-2000:]
    # outside a terminal (a pipe here; a log file, CI, nohup) one line per epoch, not a progress bar's redraws
    assert '\r' not in whole.stdout + whole.stderr and '█' not in whole.stdout + whole.stderr
    assert [l.split('  ')[0] for l in whole.stdout.splitlines() if l.startswith('epoch ')] == ['epoch 1/2', 'epoch 2/2']

    out = tmp_path/'killed'
    proc = subprocess.Popen([sys.executable, '-m', 'mst_nb.train', *ARGS, '--out', str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_first_checkpoint(proc, out)
    saved = torch.load(out/"checkpoint.pt", weights_only=True)     # the last good checkpoint is intact
    assert saved['epoch'] in (0, 1)
    assert not (out/'summary.json').exists()

    refused = _train(out)                                           # a finished-looking folder is never overwritten
    assert refused.returncode != 0 and 'already holds a run' in refused.stderr

    resumed = _train(out, '--resume', 'auto')
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = load_file(tmp_path/'whole'/'backbone'/'model.safetensors'), load_file(out/'backbone'/'model.safetensors')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(tmp_path/'whole'/'checkpoint.pt', weights_only=True)["model"]
    sb = torch.load(out/'checkpoint.pt', weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa), 'student, decoder or DINO centre differ after resume'
    epochs = [l.split(',')[0] for l in (out/'log.csv').read_text().splitlines()[1:]]
    assert epochs == ['0', '1'], epochs


def test_resume_with_other_settings_is_refused(tmp_path):
    first = _train(tmp_path/'run')
    assert first.returncode == 0, first.stderr[-2000:]
    other = _train(tmp_path/'run', '--resume', 'auto', '--mask-prob', '0.3')
    assert other.returncode != 0 and 'differs from this command' in other.stderr


def test_copied_run_folder_resumes(tmp_path):
    "A run folder copied elsewhere (its config.json names the old folder) goes on from its checkpoint, longer"
    first = _train(tmp_path/'run', '--epochs', '1')
    assert first.returncode == 0, first.stderr[-2000:]
    shutil.copytree(tmp_path/'run', tmp_path/'moved')
    shutil.rmtree(tmp_path/'run')
    more = _train(tmp_path/'moved', '--epochs', '2', '--resume', 'auto')
    assert more.returncode == 0, more.stderr[-2000:]
    assert json.loads((tmp_path/'moved'/'config.json').read_text())['out_dir'] == str(tmp_path/'moved')
    assert [l.split(',')[0] for l in (tmp_path/'moved'/'log.csv').read_text().splitlines()[1:]] == ['0', '1']
    assert not (tmp_path/'run').exists()


def test_damaged_checkpoint_resumes_from_the_previous_one(tmp_path):
    "A truncated checkpoint.pt is named and set aside, the run goes on from checkpoint.prev.pt; two bad ones stop it clearly"
    out = tmp_path/'run'
    first = _train(out, '--epochs', '2')
    assert first.returncode == 0, first.stderr[-2000:]
    ckpt = out/'checkpoint.pt'
    part = ckpt.read_bytes()[:ckpt.stat().st_size // 3]
    ckpt.write_bytes(part)                                          # a copy cut short
    more = _train(out, '--epochs', '3', '--resume', 'auto')
    assert more.returncode == 0, more.stderr[-2000:]
    assert f'{ckpt} is damaged' in more.stderr and 'resumes from the previous checkpoint' in more.stderr, more.stderr[-2000:]
    assert (out/'checkpoint.damaged.pt').read_bytes() == part     # nothing of the user's is deleted
    assert [l.split(',')[0] for l in (out/'log.csv').read_text().splitlines()[1:]] == ['0', '1', '2']
    assert torch.load(ckpt, weights_only=True)['epoch'] == 2

    for p in (ckpt, out/'checkpoint.prev.pt'): p.write_bytes(b'not a checkpoint')
    broken = _train(out, '--epochs', '4', '--resume', 'auto')
    assert broken.returncode != 0 and 'Traceback' not in broken.stderr, broken.stderr[-2000:]
    last = broken.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'damaged' in last and 'cannot be used either' in last, last


class _Payload:
    "Unpickling this runs code: it creates the file `marker`"
    def __init__(self, marker: Path): self.marker = marker
    def __reduce__(self): return (Path.touch, (self.marker,))


def test_checkpoint_carrying_code_is_refused(tmp_path):
    "A checkpoint someone sends that carries a pickled payload is refused by --resume and by eval, and nothing in it runs"
    marker, evil = tmp_path/'code-ran', tmp_path/'evil.pt'
    torch.save(dict(epoch=0, model={}, payload=_Payload(marker)), evil)
    runs = [_train(tmp_path/'run', '--resume', str(evil)),
            subprocess.run([sys.executable, '-m', 'mst_nb.eval', 'knn', '--ckpt', str(evil)], capture_output=True,
                           text=True, timeout=300)]
    for run in runs:
        assert run.returncode != 0 and 'Traceback' not in run.stderr, run.stderr[-2000:]
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith('error: ') and 'nothing in it ran' in last, last
    assert not marker.exists()
    torch.load(evil, weights_only=False)                            # the payload is live: a plain load runs it
    assert marker.exists()


def test_position_stats_resume_exactly(tmp_path):
    "The `position` control with debiased ranking and registers: its running per-position means travel in the checkpoint"
    extra = ['--mask-strategy', 'position', '--attention-debias', 'true', '--reg-tokens', '1']
    whole = _train(tmp_path/'whole', *extra)
    assert whole.returncode == 0, whole.stderr[-2000:]
    out = tmp_path/'killed'
    proc = subprocess.Popen([sys.executable, '-m', 'mst_nb.train', *ARGS, *extra, '--out', str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_first_checkpoint(proc, out)
    resumed = _train(out, *extra, '--resume', 'auto')
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    sa = torch.load(tmp_path/'whole'/'checkpoint.pt', weights_only=True)['model']
    sb = torch.load(out/'checkpoint.pt', weights_only=True)['model']
    stats = [k for k in sa if k.startswith('position_stats.')]
    assert stats == ['position_stats.attention', 'position_stats.candidates'], stats
    assert not torch.equal(sa['position_stats.attention'], torch.full_like(sa['position_stats.attention'], 1 / 64))  # it moved
    assert all(torch.equal(sa[k], sb[k]) for k in sa), [k for k in sa if not torch.equal(sa[k], sb[k])]
    # attention measures of the last epoch, logged by both
    rows = [l.split(',') for l in (out/'log.csv').read_text().splitlines()]
    head = rows[0]
    assert rows[-1][head.index('attn_follows')] != '' and rows[-1][head.index('attn_positional')] != ''
