"The package is its notebooks: exporting changes nothing, the notebooks are clean, the README is index.ipynb's."
import filecmp, shutil, subprocess, sys
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent


def _copy_project(dest: Path) -> Path:
    "The files nbdev reads and writes, copied to `dest`, so the checks never touch the working tree"
    for f in ['settings.ini', 'pyproject.toml', 'setup.py']:
        if (ROOT/f).exists(): shutil.copy2(ROOT/f, dest/f)
    shutil.copytree(ROOT/'nbs', dest/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc', '.quarto'))
    shutil.copytree(ROOT/'mst_nb', dest/'mst_nb', ignore=shutil.ignore_patterns('__pycache__'))
    return dest


def _differences(a: Path, b: Path, pattern: str) -> list[str]:
    names = {p.relative_to(a) for p in a.rglob(pattern)} | {p.relative_to(b) for p in b.rglob(pattern)}
    return sorted(str(n) for n in names if not ((a/n).exists() and (b/n).exists() and filecmp.cmp(a/n, b/n, shallow=False)))


def test_export_changes_nothing(tmp_path):
    proj = _copy_project(tmp_path)
    subprocess.run([BIN/'nbdev_export'], cwd=proj, check=True)
    diff = _differences(ROOT/'mst_nb', proj/'mst_nb', '*.py')
    assert not diff, f'mst_nb/ differs from what the notebooks export: {diff}. Run nbdev_export and commit both.'


def test_notebooks_are_clean(tmp_path):
    proj = _copy_project(tmp_path)
    subprocess.run([BIN/'nbdev_clean'], cwd=proj, check=True)
    diff = _differences(ROOT/'nbs', proj/'nbs', '*.ipynb')
    assert not diff, f'notebooks not clean: {diff}. Run nbdev_clean and commit.'


def test_export_check_catches_a_hand_edit(tmp_path):
    "The export check above can fail: a hand edit of the package is reported"
    proj = _copy_project(tmp_path)
    edited = tmp_path/'edited'; shutil.copytree(proj/'mst_nb', edited)
    (edited/'core.py').write_text((edited/'core.py').read_text() + '\n# edited by hand\n')
    subprocess.run([BIN/'nbdev_export'], cwd=proj, check=True)
    assert _differences(edited, proj/'mst_nb', '*.py') == ['core.py']


def test_readme_is_generated_from_index(tmp_path):
    sys.path.insert(0, str(ROOT/'tools'))
    import docs
    docs.readme(tmp_path)
    assert (tmp_path/'README.md').read_text() == (ROOT/'README.md').read_text(), \
        'README.md is out of date with nbs/index.ipynb: run `make readme` and commit'
    assert not _differences(tmp_path/'index_files', ROOT/'index_files', '*'), 'index_files/ is out of date: run `make readme`'
