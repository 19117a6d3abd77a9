"""Every notebook runs, cell by cell, as `nbdev_test` runs it: one pytest test per notebook.

Cells flagged with a test flag of settings.ini (`slow`, `cuda`) are skipped like nbdev_test skips them; `cuda` cells
run when a GPU is present, and MST_TEST_FLAGS="slow" runs the slow ones too."""
import configparser, os

import pytest
import torch
import nbdev.test
from conftest import ROOT

NOTEBOOKS = sorted((ROOT/'nbs').glob('*.ipynb'))


def _flags():
    ini = configparser.ConfigParser(delimiters=['=']); ini.read(ROOT/'settings.ini')
    skip = set(ini['DEFAULT'].get('tst_flags', '').split())
    force = set(os.environ.get('MST_TEST_FLAGS', '').split()) | ({'cuda'} if torch.cuda.is_available() else set())
    return sorted(skip - force), sorted(force)


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {'index.ipynb', '00_core.ipynb'}


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook(nb):
    skip, force = _flags()
    ok, secs = nbdev.test.test_nb(nb, skip_flags=skip, force_flags=force, basepath=ROOT, showerr=True)
    assert ok, f'{nb.name} failed: the cell and its traceback are in the captured stderr above'
