"Shared settings for the test suite: offline, headless, and where the repository is."
import os, signal, time
from pathlib import Path

import psutil

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # no test downloads anything
os.environ.setdefault('MPLBACKEND', 'Agg')

ROOT = Path(__file__).resolve().parent.parent


def kill_after_first_checkpoint(proc, out: Path) -> list:
    """Wait until the training run `proc` writes `out/checkpoint.pt`, let it go one second into the next epoch, then
    SIGKILL it and all its children at once (torchrun's workers have their own sessions); returns the killed processes"""
    deadline = time.time() + 300
    while not (out/'checkpoint.pt').exists():
        assert proc.poll() is None and time.time() < deadline, 'the run ended before writing a checkpoint'
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None, 'the run finished before it could be killed'
    procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in procs: p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=30); proc.wait()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)
    return procs
