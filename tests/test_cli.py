"""The command line as users meet it: a bad value ends in one `error:` line naming the field, not a traceback, and
leaves the output folder untouched."""
import subprocess, sys
from pathlib import Path

import pytest


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
