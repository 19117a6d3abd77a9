"""Stepping through the notebooks in a real frontend: JupyterLab, started headless on localhost, runs the masking
notebook in headless Chromium, and the mask widget redraws its figure when a slider moves.

Needs chromium and chromedriver like the docs browser test (`make browser`); skipped with a message without them,
except in CI (CI=true), where a missing browser is a failure. Flagged `slow`, and run by `make test`."""
import json, os, shutil, socket, subprocess, sys, time, urllib.request

import pytest
from conftest import ROOT

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')
NOTEBOOK = ROOT/'nbs'/'04_masking.ipynb'
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "JupyterLab serving a copy of the masking notebook (so the repository's notebook is never written to)"
    if not (CHROMIUM and CHROMEDRIVER):
        msg = 'chromium/chromedriver not installed: run `make browser` as root (Debian: apt-get install chromium chromium-driver)'
        if os.environ.get('CI'): pytest.fail(msg)
        pytest.skip(msg)
    root, home = tmp_path_factory.mktemp('lab'), tmp_path_factory.mktemp('home')
    nb = json.loads(NOTEBOOK.read_text())
    # the notebook's last cell runs nbdev_export, which needs the repository around it: not part of stepping through
    nb['cells'] = [c for c in nb['cells'] if 'nbdev_export()' not in ''.join(c['source'])]
    (root/NOTEBOOK.name).write_text(json.dumps(nb))
    port, token = _free_port(), 'mst-nb-test'
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'}   # the kernel draws inline, as for a user
    env.update(PATH=f'{os.path.dirname(sys.executable)}{os.pathsep}{env.get("PATH", "")}',
               JUPYTER_CONFIG_DIR=str(home/'config'), JUPYTER_RUNTIME_DIR=str(home/'runtime'),
               JUPYTERLAB_SETTINGS_DIR=str(home/'settings'), JUPYTERLAB_WORKSPACES_DIR=str(home/'workspaces'),
               IPYTHONDIR=str(home/'ipython'))
    news = home/'settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings'
    news.parent.mkdir(parents=True); news.write_text('{"fetchNews": "false"}')   # no "get news?" prompt (offline)
    log = open(home/'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', f'--port={port}', '--ip=127.0.0.1',
                             f'--ServerApp.root_dir={root}', f'--IdentityProvider.token={token}',
                             '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
                             '--LabApp.extension_manager=readonly', *(['--allow-root'] if os.geteuid() == 0 else [])],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f'http://127.0.0.1:{port}'
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2); break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill(); pytest.fail(f'JupyterLab did not start:\n{(home/"lab.log").read_text()[-3000:]}')
            time.sleep(0.5)
    yield base, token, root, home/'lab.log'
    proc.terminate()
    try: proc.wait(30)
    except subprocess.TimeoutExpired: proc.kill()
    log.close()


@pytest.fixture(scope='module')
def chrome(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync', '--window-size=1400,1000',
              f'--user-data-dir={tmp_path_factory.mktemp("chromium")}']: opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def _widget_figure(driver):
    "The src of the figure inside the mask widget's output area, or None while there is none"
    return driver.execute_script(
        "const i = document.querySelector('.widget-vbox .widget-output img'); return i && i.complete && i.naturalWidth ? i.src : null")


def test_masking_notebook_runs_and_the_widget_redraws(lab, chrome):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    base, token, root, log = lab
    chrome.get(f'{base}/lab/tree/{NOTEBOOK.name}?token={token}')
    wait = WebDriverWait(chrome, 180, poll_frequency=0.5)
    try:
        # the notebook is open and its kernel is idle
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '.jp-NotebookPanel .jp-Cell')) > 10)   # the notebook is open
        # Run → Run All Cells, through the menu as a user would
        run_menu = wait.until(lambda d: next((m for m in d.find_elements(By.CSS_SELECTOR, '.lm-MenuBar-item')
                                              if m.text.strip() == 'Run'), None))
        run_menu.click()
        wait.until(lambda d: next((i for i in d.find_elements(By.CSS_SELECTOR, '.lm-Menu-item')
                                   if i.text.strip().startswith('Run All Cells')), None)).click()
        failed = lambda d: d.find_elements(By.CSS_SELECTOR, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
        wait.until(lambda d: _widget_figure(d) or failed(d))       # the widget's figure, or a cell's traceback
        assert not failed(chrome), f'a cell failed: {failed(chrome)[0].text[:2000]}'
        first = _widget_figure(chrome)
        sliders = chrome.find_elements(By.CSS_SELECTOR, '.widget-vbox .widget-slider')
        assert len(sliders) >= 5, 'the widget has lost its sliders'
        image = next(s for s in sliders if s.find_element(By.CSS_SELECTOR, '.widget-label').text.strip() == 'image')
        readout = lambda: image.find_element(By.CSS_SELECTOR, '.widget-readout').text.strip()
        before = int(readout())
        handle = image.find_element(By.CSS_SELECTOR, '.noUi-handle')
        handle.click(); handle.send_keys(Keys.ARROW_RIGHT)        # move the image slider by one step
        wait.until(lambda d: readout() == str(before + 1))
        second = wait.until(lambda d: (s := _widget_figure(d)) and s != first and s)
        assert second != first, 'the figure did not redraw'
    except Exception:
        print(f'JupyterLab log:\n{log.read_text()[-4000:]}')
        chrome.save_screenshot(str(root/'failure.png')); print(f'screenshot: {root/"failure.png"}')
        raise
