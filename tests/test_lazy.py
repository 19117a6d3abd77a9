"""The lazy path a large image folder takes (the README's ImageNet command): a folder over `--max-memory-gb` is
decoded by worker processes as batches are drawn; the k-NN monitor works on a bounded sample decoded once; a run
killed mid-epoch resumes exactly. Shown with the limit at 0 on a folder of the bundled sample's JPEGs."""
import subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import kill_after_first_checkpoint
from mst_nb.data import ASSETS


@pytest.fixture(scope='module')
def jpeg_folder(tmp_path_factory) -> Path:
    "train/ and val/ class folders of real JPEGs: 192 and 64 of the bundled sample, as their original bytes"
    root = tmp_path_factory.mktemp('jpegs')
    classes = (ASSETS/'classes.txt').read_text().split()
    for split, n in (('train', 192), ('val', 64)):
        z = np.load(ASSETS/f'imagenette64_sample_{split}.npz')
        pick = np.random.default_rng(0).choice(len(z['labels']), n, replace=False)
        for i in pick:
            d = root/split/classes[z['labels'][i]]; d.mkdir(parents=True, exist_ok=True)
            (d/f'{i}.jpg').write_bytes(z['jpeg'][z['offsets'][i]:z['offsets'][i + 1]].tobytes())
    return root


def _args(root: Path, out: Path, workers: int) -> list[str]:
    return [sys.executable, '-m', 'mst_nb.train', '--device', 'cpu', '--data', f'folder:{root}', '--max-memory-gb', '0',
            '--num-workers', str(workers), '--epochs', '3', '--knn-every', '1', '--out', str(out)]


@pytest.mark.parametrize('workers', [0, 2])
def test_lazy_folder_trains_monitors_and_resumes_exactly(jpeg_folder, tmp_path, workers):
    whole = subprocess.run(_args(jpeg_folder, tmp_path/'whole', workers), capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    rows = (tmp_path/'whole'/'log.csv').read_text().splitlines()[1:]
    assert len(rows) == 3 and all(r.split(',')[6] and r.split(',')[8] for r in rows)   # k-NN and its random init
    assert 'random init' in whole.stdout and 'raw pixels' in whole.stdout

    out = tmp_path/'killed'
    proc = subprocess.Popen(_args(jpeg_folder, out, workers), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_first_checkpoint(proc, out)
    resumed = subprocess.run(_args(jpeg_folder, out, workers) + ['--resume', 'auto'], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = load_file(tmp_path/'whole'/'backbone'/'model.safetensors'), load_file(out/'backbone'/'model.safetensors')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), 'killed + resumed != uninterrupted'
