"""The package's modules form one map that runs one way, the order of the notebooks that export them: core → runs → data →
augment → vit → masking → decoder → losses → knn → model → attention → callbacks → checkpoint → learner → train → eval → viz →
report. A module imports only modules before it (at the top or inside a function alike), nothing imports the
training command line (`train`), and no private name (`_x`) is imported from another module."""
import ast, re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT/'mst_nb'


def module_map() -> list[str]:
    "The exported modules in the order of their notebooks (`nbs/NN_name.ipynb` with `#| default_exp`)"
    found = []
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        m = re.search(r'#\|\s*default_exp\s+(\w+)', nb.read_text(encoding='utf-8'))
        if m: found.append(m.group(1))
    return found


def package_imports(path: Path) -> list[tuple[str, str, int]]:
    "(module imported, name taken from it or '', line) for every import of this package in `path`, nested ones too"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: target = mod.split('.')[0]
            elif mod == 'mst_nb' or mod.startswith('mst_nb.'): target = mod.split('.')[1] if '.' in mod else ''
            else: continue
            if target: out += [(target, a.name, node.lineno) for a in node.names]
            else: out += [(a.name, '', node.lineno) for a in node.names]   # `from mst_nb import viz`
        elif isinstance(node, ast.Import):
            out += [(a.name.split('.')[1], '', node.lineno) for a in node.names if a.name.startswith('mst_nb.')]
    return out


MAP = module_map()


def test_the_map_holds_every_module():
    modules = {p.stem for p in PACKAGE.glob('*.py')} - {'__init__', '_modidx'}
    assert MAP[0] == 'core' and set(MAP) == modules, (MAP, modules)


@pytest.mark.parametrize('module', MAP)
def test_a_module_imports_only_what_sits_before_it(module):
    back = [f'{module}.py:{line} imports {target}{"." + name if name else ""}'
            for target, name, line in package_imports(PACKAGE/f'{module}.py')
            if target in MAP and (MAP.index(target) >= MAP.index(module) or target == 'train')]
    private = [f'{module}.py:{line} imports {target}.{name}' for target, name, line in package_imports(PACKAGE/f'{module}.py')
               if name.startswith('_') and name != '__version__']
    assert not back, 'imports that run back up the map (or into the training CLI): ' + '; '.join(back)
    assert not private, 'private names used outside their module: ' + '; '.join(private)


def test_the_check_sees_nested_and_back_imports(tmp_path):
    f = tmp_path/'m.py'
    f.write_text('from .core import MSTConfig\ndef g():\n    from mst_nb.viz import Previews\n    import mst_nb.eval\n')
    assert package_imports(f) == [('core', 'MSTConfig', 1), ('viz', 'Previews', 3), ('eval', '', 4)]
