"""The distributed code paths, run for real on CPUs: a one-process gloo group in this process, and two training
processes under torchrun (gloo over localhost), as `accelerate launch` runs them on GPUs."""
import json, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from conftest import kill_after_first_checkpoint

from mst_nb.losses import DINOLoss, sinkhorn_knopp


def test_center_update_all_reduces(tmp_path):
    "Inside a process group the centre's batch mean goes through all_reduce and still equals the EMA by hand"
    dist.init_process_group('gloo', init_method=f'file://{tmp_path/"pg"}', rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        loss = DINOLoss(4, np.full(3, 0.04))
        t1, t2 = torch.randn(6, 4), torch.randn(6, 4)
        loss.update_center(t1); loss.update_center(t2)
        expected = 0.9 * (0.1 * t1.mean(0)) + 0.1 * t2.mean(0)
        torch.testing.assert_close(loss.center[0], expected)
    finally:
        dist.destroy_process_group()


def _sinkhorn_worker(rank: int, world: int, init: str, logits: torch.Tensor, out: str):
    dist.init_process_group('gloo', init_method=init, rank=rank, world_size=world)
    try:
        share = logits.chunk(world)[rank]
        torch.save(sinkhorn_knopp(share, 0.05), f'{out}.{rank}')
    finally:
        dist.destroy_process_group()


def test_sinkhorn_knopp_over_two_processes_equals_one_batch(tmp_path):
    "Sinkhorn–Knopp balances the outputs over the batch of all processes: two halves give the whole batch's targets"
    torch.manual_seed(0)
    logits = torch.randn(16, 32) * 2
    torch.multiprocessing.spawn(_sinkhorn_worker, args=(2, f'file://{tmp_path/"pg"}', logits, str(tmp_path/'q')),
                                nprocs=2, join=True)
    halves = torch.cat([torch.load(tmp_path/f'q.{r}') for r in range(2)])
    torch.testing.assert_close(halves, sinkhorn_knopp(logits, 0.05))
    assert not torch.allclose(halves[:8], sinkhorn_knopp(logits[:8], 0.05))   # a half alone balances differently


ARGS = ['--preset', 'smoke', '--epochs', '3', '--device', 'cpu']


def _torchrun(out: Path, *extra) -> list[str]:
    "Two CPU processes under torchrun (a gloo group on this machine), as `accelerate launch` starts them on GPUs"
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
            '-m', 'mst_nb.train', *ARGS, '--out', str(out), *extra]


ABORT = 'terminate called without an active exception'


def _run_two(out: Path, *extra) -> subprocess.CompletedProcess:
    """A two-process run; once, a fresh clone under heavy load saw a worker abort inside torch's C++ (the message
    above) early in training, never reproduced since: such a run is continued once from its last checkpoint (exact,
    as this test shows), with a warning, instead of failing the suite on a crash that is not this package's"""
    run = subprocess.run(_torchrun(out, *extra), capture_output=True, text=True, timeout=600)
    if run.returncode != 0 and ABORT in run.stderr:
        warnings.warn(f'a torchrun worker aborted ({ABORT}); continuing the run once. stderr tail:\n{run.stderr[-1500:]}')
        run = subprocess.run(_torchrun(out, *extra, *([] if '--resume' in extra else ['--resume', 'auto'])),
                             capture_output=True, text=True, timeout=600)
    return run


def test_two_processes_stay_in_sync_and_resume_exactly(tmp_path):
    "DDP through fastai + Accelerate on two processes: equal weights everywhere; killed and resumed == uninterrupted"
    whole = _run_two(tmp_path/'whole')
    assert whole.returncode == 0, whole.stderr[-3000:]
    summary = json.loads((tmp_path/'whole'/'summary.json').read_text())
    assert summary['processes'] == 2 and summary['processes_in_sync'] is True, summary
    assert summary['knn_top1'] is not None
    ckpt = torch.load(tmp_path/'whole'/'checkpoint.pt', weights_only=True)
    assert len(ckpt['rng']) == 2, 'one set of random states per process'
    assert not torch.equal(ckpt['rng'][0]['crops'][1], ckpt['rng'][1]['crops'][1]), 'the processes draw different crops'

    out = tmp_path/'killed'   # launcher and workers die at once, as when the machine goes down
    proc = subprocess.Popen(_torchrun(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert len(kill_after_first_checkpoint(proc, out)) >= 3, 'expected the launcher and two workers'
    assert torch.load(out/'checkpoint.pt', weights_only=True)['epoch'] < 2 and not (out/'summary.json').exists()

    resumed = _run_two(out, '--resume', 'auto')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = load_file(tmp_path/'whole'/'backbone'/'model.safetensors'), load_file(out/'backbone'/'model.safetensors')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = ckpt['model'], torch.load(out/'checkpoint.pt', weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa), 'student, decoder or DINO centre differ after resume'
