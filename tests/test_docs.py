"""The docs site builds offline from the notebooks and renders in a real browser (headless Chromium).

Needs Debian's chromium and chromium-driver: `make test` installs them when run as root. Elsewhere the browser
checks are skipped with a message, except in CI (CI=true), where a missing browser is a failure."""
import functools, http.server, os, shutil, sys, threading

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT/'tools'))
import docs

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    docs.site(out)
    return out


def test_site_has_every_page(site):
    for page in ['index.html', 'core.html', 'data.html', 'augment.html', 'vit.html', 'masking.html', 'decoder.html',
                 'losses.html', 'knn.html', 'callbacks.html', 'learner.html', 'train.html', 'eval.html', 'viz.html', 'report.html',
                 'search/search_index.json']:
        assert (site/page).is_file(), page
    html = (site/'core.html').read_text()
    assert 'MSTConfig' in html and 'mask_prob' in html
    for hidden in ['#| export', 'default_exp', 'nbdev_export', "show_doc reads a dataclass"]:
        assert hidden not in html, f'hidden cell content leaked into the docs: {hidden!r}'
    assert 'show_doc(' not in html, 'show_doc calls must be replaced by their output'
    assert not any('fonts.googleapis' in p.read_text(errors='ignore') for p in site.glob('*.html')), 'site needs the network'


@pytest.fixture(scope='module')
def browser(site, tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        msg = 'chromium/chromedriver not installed: run `make browser` as root (Debian: apt-get install chromium chromium-driver)'
        if os.environ.get('CI'): pytest.fail(msg)
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync', '--window-size=1280,1000',
              f'--user-data-dir={tmp_path_factory.mktemp("chromium")}']: opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.base = f'http://127.0.0.1:{server.server_address[1]}'
    yield driver
    driver.quit(); server.shutdown()


def _errors(driver): return [e for e in driver.get_log('browser') if e['level'] == 'SEVERE']


def test_index_page_renders(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + '/index.html')
    h1 = browser.find_element(By.CSS_SELECTOR, 'article h1')
    assert h1.is_displayed() and h1.text.strip() == 'mst_nb'
    article = browser.find_element(By.TAG_NAME, 'article').text
    assert 'attention-guided masking' in article and 'make test' in article
    fig = browser.find_element(By.CSS_SELECTOR, 'article img[src*="index_files"]')
    assert fig.is_displayed() and browser.execute_script('return arguments[0].naturalWidth', fig) > 500, 'figure not loaded'
    nav = [a.get_attribute('href') for a in browser.find_elements(By.CSS_SELECTOR, 'nav a')]
    assert any(h and h.endswith('/core.html') for h in nav), 'the core page is missing from the navigation'
    assert not _errors(browser)


def test_core_page_shows_the_api(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + '/core.html')
    heading = browser.find_element(By.ID, 'mstconfig')
    assert heading.is_displayed() and heading.text.startswith('MSTConfig')
    code = [c.text for c in browser.find_elements(By.CSS_SELECTOR, 'article pre') if c.is_displayed()]
    sig = next((c for c in code if c.startswith('def MSTConfig(')), '')
    assert "mask_prob:float=0.5, # each candidate is masked with this probability" in sig, 'docments missing'
    text = browser.find_element(By.TAG_NAME, 'article').text
    for shown in ['MSTConfig.from_preset', 'MSTConfig.save', 'seed_everything', 'autocast_dtype', 'Presets']:
        assert shown in text, shown
    assert 'nbdev_export' not in text and 'from mst_nb.core import MSTConfig' not in text
    assert not _errors(browser)


def _figures_load(browser, page):
    "Every figure of `page` is displayed and loaded; returns the article's text"
    from selenium.webdriver.common.by import By
    browser.get(browser.base + page)
    figs = [f for f in browser.find_elements(By.CSS_SELECTOR, 'article img') if f.is_displayed()]
    assert figs and all(browser.execute_script('return arguments[0].naturalWidth', f) > 300 for f in figs)
    assert not _errors(browser)
    return browser.find_element(By.TAG_NAME, 'article').text


def test_augment_lesson_figure_renders(browser):
    "The lesson figure (real photos and their 2 + N views) is on the augment page and loads"
    from selenium.webdriver.common.by import By
    _figures_load(browser, '/augment.html')
    assert browser.find_element(By.ID, 'multi_crop').is_displayed()


def test_masking_widget_figure_renders(browser):
    "The widget's figure (image, attention, mask, masked input) is on the masking page; the live widget is not"
    text = _figures_load(browser, '/masking.html')
    assert 'mask_widget' in text and 'VBox(children' not in text


@pytest.fixture(scope='module')
def run_report(site, tmp_path_factory):
    "The report of a real (short) smoke run with previews, written where the browser's server can reach it"
    from mst_nb.report import write_report
    from mst_nb.train import main as train_main
    run = tmp_path_factory.mktemp('report')/'run'
    train_main(['--epochs', '2', '--knn-every', '1', '--preview-every', '1', '--out-dir', str(run), '--device', 'cpu'])
    return write_report(run, site/'run_report.html')


def test_run_report_renders(browser, run_report):
    "python -m mst_nb.report's page: every section, every image loaded from the page itself, no console errors"
    from selenium.webdriver.common.by import By
    browser.get(browser.base + '/' + run_report.name)
    text = browser.find_element(By.TAG_NAME, 'body').text
    for section in ['Summary', 'Config', 'Training curves', 'Previews during training', "The teacher's attention",
                    'Masks of every strategy', 'What the decoder restores', 'Nearest neighbours']:
        assert section in text, section
    assert 'k-NN of random init' in text and 'k-NN of raw pixels' in text
    imgs = browser.find_elements(By.TAG_NAME, 'img')
    assert len(imgs) >= 7
    for img in imgs:
        src = img.get_attribute('src')
        assert src.startswith('data:image/png;base64,'), f'an image is fetched from {src[:80]}'
        loaded = browser.execute_script('return arguments[0].complete && arguments[0].naturalWidth', img)
        assert loaded and loaded > 50, f'an image did not load: {img.get_attribute("alt")}'
    shown = [i for i in imgs if i.is_displayed()]
    assert all(browser.execute_script('return arguments[0].getBoundingClientRect().width', i) > 100 for i in shown)
    assert not _errors(browser)
