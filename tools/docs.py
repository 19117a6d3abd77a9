"""Build mst_nb's docs site and README from the notebooks, offline; run the notebooks to store their outputs.

    python tools/docs.py site [--out _docs]   # static site (MkDocs Material) from nbdev's processed notebooks
    python tools/docs.py readme               # README.md (+ index_files/) from nbs/index.ipynb
    python tools/docs.py execute [NB ...]     # run notebooks and store their outputs (then run nbdev_clean)

Why not `nbdev_docs`: it renders with Quarto, which cannot be installed offline here; it keeps working
wherever Quarto exists, from the same notebooks and nbs/_quarto.yml. Why not mkdocs-jupyter: it renders raw
notebooks and knows none of nbdev's `#|` directives (hide, echo, output, include) nor its frontmatter. So nbdev's
own processors (the ones `nbdev_docs` runs: show_doc pages, hidden cells removed, links) prepare each notebook,
nbconvert turns it into Markdown, and MkDocs Material builds the site. Only the glue between them is written here.
"""
from __future__ import annotations
import argparse, configparser, json, os, re, shutil, subprocess, sys, tempfile
from pathlib import Path

import nbformat, yaml
from execnb.nbio import nb2dict, read_nb, write_nb
from execnb.shell import CaptureShell
from nbconvert import MarkdownExporter
from nbdev.frontmatter import FrontmatterProc
from nbdev.process import NBProcessor
from nbdev.processors import FilterDefaults

ROOT = Path(__file__).resolve().parent.parent


def settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(delimiters=['='])
    cfg.read(ROOT/'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']


def notebooks() -> list[Path]:
    "The documented notebooks, index first, then in file order (nbdev's numbering)"
    nbs = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
    return sorted(nbs, key=lambda p: p.stem != 'index')


# ---------------------------------------------------------------- executing notebooks, as nbdev_test does

def _skip_cell(cell, skip_flags: set) -> bool:
    "nbdev_test's rule: skip `eval: false` cells and cells flagged with a test flag that is not forced"
    if cell.cell_type != 'code': return True
    if 'nbdev_export' + '(' in cell.source: return True
    d = getattr(cell, 'directives_', {}) or {}
    return d.get('eval:', [''])[0].lower() == 'false' or bool(skip_flags & d.keys())


def execute(paths: list[Path], force_flags: set):
    "Run each notebook in its folder and store the outputs in it; stop at the first error"
    skip = set(settings().get('tst_flags', '').split()) - force_flags
    for path in paths:
        path = path.resolve()
        nb = read_nb(path)
        flagged = NBProcessor(path, procs=FrontmatterProc, process=True).nb.cells  # same cells, directives parsed
        by_id = {c.id: getattr(c, 'directives_', {}) for c in flagged}
        for c in nb.cells: c.directives_ = by_id.get(c.id, {})
        print(f'executing {path.relative_to(ROOT)}', flush=True)
        cwd = os.getcwd(); os.chdir(path.parent)
        shell = CaptureShell(path)
        try: shell.run_all(nb, exc_stop=True, preproc=lambda c: _skip_cell(c, skip))
        except Exception:
            sys.exit(f'{path.name} failed; nothing was written:\n{shell.prettytb(fname=path)}')
        finally: os.chdir(cwd)
        write_nb(nb, path)


# ---------------------------------------------------------------- notebook -> Markdown

def processed(path: Path):
    "The notebook as `nbdev_docs` would hand it to Quarto: show_doc cells added, hidden cells gone, links added"
    path = Path(path).resolve()
    cwd = os.getcwd(); os.chdir(path.parent)  # show_doc cells import the package and run where the notebook lives
    try:
        nb = read_nb(path)
        FilterDefaults()(nb)
    finally: os.chdir(cwd)
    return nb


def _frontmatter(nb) -> dict:
    "Pop nbdev's YAML frontmatter cell (title, description) from `nb`"
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'raw' and c.source.lstrip().startswith('---'):
            nb.cells.pop(i)
            return yaml.safe_load(c.source.strip().strip('-')) or {}
    return {}


def _quarto_options(source: str) -> dict:
    "`#| key: value` lines left in a processed cell (nbdev adds `echo: false` to show_doc cells after parsing)"
    return {m[1] + ':': [m[2]] for m in re.finditer(r'^\s*#\|\s*([\w-]+):\s*(.*?)\s*$', source, re.M)}


def _visible_cells(nb):
    "Apply Quarto's cell options, as nbdev writes them, to a processed notebook"
    for c in nb.cells:
        d = {**(getattr(c, 'directives_', {}) or {}), **_quarto_options(c.source)}
        opt = lambda k: (d.get(k + ':') or [''])[0].strip().lower()
        if opt('include') == 'false': continue
        c.source = '\n'.join(l for l in c.source.splitlines() if not re.match(r'\s*#\|', l)).strip()
        if c.cell_type == 'code':
            if opt('output') == 'false': c.outputs = []
            # a live widget needs a kernel: a static page would only show its repr
            c.outputs = [o for o in c.get('outputs', []) if 'application/vnd.jupyter.widget-view+json' not in o.get('data', {})]
            if opt('echo') == 'false': c.source = ''
            if not c.source and not c.get('outputs'): continue
        elif not c.source: continue
        yield c


def to_markdown(path: Path, assets: str) -> tuple[str, dict, dict]:
    "Markdown of notebook `path`, its output files (under `assets`/), and its frontmatter"
    nb = processed(path)
    fm = _frontmatter(nb)
    d = nb2dict({**nb, 'cells': list(_visible_cells(nb))})
    ntbk = nbformat.reads(json.dumps(d), as_version=4)  # nbformat joins the line lists and fills in defaults
    for c in ntbk.cells:
        if c.cell_type == 'code' and not c.source: c.metadata.transient = {'remove_source': True}  # `echo: false`
    ntbk.metadata.language_info = {'name': 'python'}  # code blocks are highlighted as Python
    exporter = MarkdownExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    body, res = exporter.from_notebook_node(ntbk, resources={'unique_key': path.stem, 'output_files_dir': assets})
    head = f"# {fm.get('title', path.stem)}\n\n" + (f"> {fm['description']}\n\n" if fm.get('description') else '')
    body = re.sub(r'<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->\s*', '', body)
    return head + body.strip() + '\n', res.get('outputs', {}), fm


def _write(files: dict, root: Path):
    for name, data in files.items():
        p = root/name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())


# ---------------------------------------------------------------- README

def readme(out_dir: Path = ROOT) -> Path:
    "README.md and its figures (index_files/) from nbs/index.ipynb, as `nbdev_readme` makes them with Quarto"
    md, files, _ = to_markdown(ROOT/'nbs'/settings().get('readme_nb', 'index.ipynb'), 'index_files')
    md = re.sub(r'\n(?:[ \t]*\n){2,}', '\n\n', md)   # the exporter's runs of blank lines around outputs: one blank line
    shutil.rmtree(out_dir/'index_files', ignore_errors=True)
    _write(files, out_dir)
    (out_dir/'README.md').write_text(md, encoding='utf-8')
    return out_dir/'README.md'


# ---------------------------------------------------------------- site

def _local_links(md: str, s) -> str:
    "Links nbdev points at the published site become links between the pages of this one"
    base = re.escape(s['doc_host'].rstrip('/') + '/' + s.get('doc_baseurl', '').strip('/') + '/')
    return re.sub(base + r'([\w.-]+)\.html', r'\1.md', md)


def mkdocs_config(s, pages: list[tuple[str, str]]) -> dict:
    return {
        # no repo_url: Material would call GitHub's API from every page, and the site must work with no network
        'site_name': s['lib_name'], 'site_description': s['description'],
        'docs_dir': 'md', 'use_directory_urls': False,
        'theme': {'name': 'material', 'font': False,  # no web fonts: the site must render with no network
                  'features': ['navigation.instant.prefetch', 'content.code.copy', 'toc.follow'],
                  'palette': {'primary': 'indigo'}},
        'markdown_extensions': ['tables', 'admonition', 'attr_list', 'md_in_html', 'pymdownx.details',
                                {'toc': {'permalink': True}}, 'pymdownx.superfences',
                                {'pymdownx.highlight': {'use_pygments': True}}],
        'nav': [{title: f'{name}.md'} for title, name in pages],
    }


def site(out: Path) -> Path:
    "Build the static site into `out`; return the path of its index page"
    s = settings()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pages = []
        for path in notebooks():
            md, files, fm = to_markdown(path, f'{path.stem}_files')
            name = Path(fm.get('output-file', path.stem + '.html')).stem  # nbdev's page name: core.html for 00_core
            _write(files, tmp/'md')
            (tmp/'md'/f'{name}.md').write_text(_local_links(md, s), encoding='utf-8')
            pages.append(('Home' if path.stem == 'index' else fm.get('title', path.stem), name))
        (tmp/'mkdocs.yml').write_text(yaml.safe_dump(mkdocs_config(s, pages), sort_keys=False))
        out = out.resolve()
        subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--quiet', '--clean', '-f', str(tmp/'mkdocs.yml'),
                        '-d', str(out)], check=True, env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})
    return out/'index.html'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('site', help='build the static docs site'); p.add_argument('--out', default=str(ROOT/'_docs'))
    sub.add_parser('readme', help='regenerate README.md from nbs/index.ipynb')
    p = sub.add_parser('execute', help='run notebooks, storing their outputs')
    p.add_argument('notebooks', nargs='*', help='default: every notebook in nbs/')
    p.add_argument('--flags', default='', help='test flags to run anyway, e.g. "slow cuda"')
    a = ap.parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    if a.cmd == 'site': print(f'site built: {site(Path(a.out))}')
    elif a.cmd == 'readme': print(f'written: {readme()}')
    else: execute([Path(n) for n in a.notebooks] or notebooks(), set(a.flags.split()))


if __name__ == '__main__': main()
