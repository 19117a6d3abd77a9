"""The command line as users meet it: a bad value ends in one `error:` line naming the field, not a traceback, and
leaves the output folder untouched."""
import subprocess, sys

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
