"""The iW-Net correction widget in a real browser: JupyterLab on localhost, headless Chromium driven by Playwright,
two clicks on the rendered axial view of a real LIDC-IDRI-0001 nodule, and the kernel's corrected mask checked
against `lungrepro.iwnet.correct` for the voxels clicked.

Chromium is Debian's package (`scripts/test` installs it when missing); Playwright's own browser download is not used.
Every wait is on a condition, with generous limits for a busy 2-core machine; nothing asserts on time.
Environment: LUNGREPRO_WIDGET_MODEL (a checkpoint to use instead of a model fitted in seconds) and
LUNGREPRO_WIDGET_SCREENSHOT (where to copy the screenshot; the README's figures/iwnet_widget.png is made so).
"""
import io, json, os, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import numpy as np
import pytest
import torch
from conftest import ROOT

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
WAIT = int(os.environ.get('LUNGREPRO_BROWSER_WAIT', 300))                                  # seconds for any one condition
RED, BLUE = (255, 0, 0), (0, 191, 255)       # the first block's and the corrected contour (LAYER_COLOURS)

NOTEBOOK = [
    """import json
import numpy as np
from lungrepro.core import save_npz
from lungrepro.iwnet import correct, predict, evaluation_clicks
from lungrepro.iwnet_widget import correct_widget, load_iwnet
ref_net = load_iwnet('model.pth')

def record(w):
    "After each change: the points, the widget's masks, and iwnet.correct's for the same points (same precision and threads)."
    blank = np.zeros(w.cube['image'].shape, np.float32)
    ref, ref_prob = w.initial, blank
    if len(w.points) == 2:
        with w.corrector.modes():
            ref, ref_prob = correct(ref_net, w.cube['image'], *w.points), predict(ref_net, w.cube['image'], *w.points)[1]
    save_npz('state.npz', points=np.array(w.points, np.int32).reshape(-1, 3), initial=w.initial, mask=w.mask,
             prob=blank if w.corrected_prob is None else w.corrected_prob, reference=ref, reference_prob=ref_prob)

w = correct_widget('cube.npz', 'model.pth', on_change=record, out_dir='.')
clicks = evaluation_clicks(w.cube['masks'][ANNOTATOR])
w.sliders[0].value = clicks[0][0]
w""",
    """nudged = (clicks[1][0], clicks[1][1], clicks[1][2] - 1)      # one voxel beside the second point: for the latency clicks
json.dump(dict(points=clicks, xy=[w.pixel_xy('axial', p) for p in clicks], nudged_xy=w.pixel_xy('axial', nudged),
               size=[w.fig.bbox.width, w.fig.bbox.height], message=w.model_message), open('targets.json', 'w'))""",
]

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def _wait(cond, what: str, timeout: float = WAIT, on_timeout=lambda: ''):
    "Poll `cond` until it returns something true; fail after `timeout` s, naming `what`."
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (r := cond()): return r
        time.sleep(0.25)
    pytest.fail(f'waited {timeout} s for {what}. {on_timeout()}')

def _state(root: Path, n_points: int):
    "The kernel's recorded state once it holds `n_points` points."
    f = root/'state.npz'
    if not f.exists(): return None
    with np.load(f) as z: s = {k: z[k] for k in z.files}
    return s if len(s['points']) == n_points else None

def _pixels(locator) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert('RGB')).astype(int)

def _count(px: np.ndarray, rgb, tol: int = 60) -> int:
    "Pixels within `tol` (sum of channel differences) of colour `rgb`."
    return int((np.abs(px - np.array(rgb)).sum(-1) < tol).sum())

# In the page: time from the next mousedown on the figure to the first frame whose canvas pixels differ (a sampled hash of
# the image canvas, checked every animation frame): click → redrawn contour as the user sees it, browser work included.
LATENCY_PROBE = """() => {
  const div = document.querySelector('.jupyter-matplotlib-canvas-div'), c = div.querySelector('canvas'), ctx = c.getContext('2d');
  const sig = () => { const d = ctx.getImageData(0, 0, c.width, c.height).data; let h = 0;
                      for (let i = 0; i < d.length; i += 61) h = (h * 31 + d[i]) | 0; return h; };
  const before = sig(); let t0 = null; window.__clickMs = null;
  div.addEventListener('mousedown', () => { t0 = performance.now(); }, {capture: true, once: true});
  const tick = () => { if (t0 !== null && sig() !== before) { window.__clickMs = performance.now() - t0; return; }
                       requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""
LATENCY_CLICKS = 7

def _write_notebook(path: Path, annotator: int):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.replace('ANNOTATOR', str(annotator))) for c in NOTEBOOK])
    nb.metadata['kernelspec'] = dict(name='python3', display_name='Python 3', language='python')
    nbformat.write(nb, path)

@pytest.fixture
def lab(tmp_path, lidc_fixtures):
    "A JupyterLab server on a free localhost port with a token, its root holding the cube, the model and the notebook."
    if not Path(CHROMIUM).exists():
        if os.environ.get('CI'): pytest.fail(f'{CHROMIUM} is missing in CI: scripts/test installs Debian\'s chromium')
        pytest.skip('no chromium (bash scripts/test installs it)')
    from lungrepro.core import save_npz
    from lungrepro.iwnet_widget import nodule_cube, quick_iwnet
    root = tmp_path/'lab'; root.mkdir()
    cube = nodule_cube('LIDC-IDRI-0001', 0, 'lidc', 32, lidc_path=lidc_fixtures)
    save_npz(root/'cube.npz', image=cube['image'], masks=cube['masks'], spacing=cube['spacing'],
             center_mm=cube['origin'] + 15.5 * cube['spacing'], patient_id=np.str_('LIDC-IDRI-0001'), nodule=np.int32(0),
             source=np.str_('lidc'))
    if os.environ.get('LUNGREPRO_WIDGET_MODEL'): shutil.copy(os.environ['LUNGREPRO_WIDGET_MODEL'], root/'model.pth')
    else: torch.save(quick_iwnet([cube]).state_dict(), root/'model.pth')
    _write_notebook(root/'widget.ipynb', annotator=1)
    quiet = tmp_path/'settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings'
    quiet.parent.mkdir(parents=True)
    quiet.write_text(json.dumps(dict(fetchNews='false', doNotDisturbMode=True)))   # no news toast over the widget
    port, token = _free_port(), secrets.token_hex(16)
    env = os.environ | {k: str(tmp_path/d) for k, d in [('JUPYTER_CONFIG_DIR', 'config'), ('JUPYTER_DATA_DIR', 'data'),
                                                      ('JUPYTER_RUNTIME_DIR', 'runtime'), ('JUPYTERLAB_SETTINGS_DIR', 'settings'),
                                                      ('JUPYTERLAB_WORKSPACES_DIR', 'workspaces'), ('LUNGREPRO_RUNS', 'runs'),
                                                      ('LUNGREPRO_CACHE', 'cache')]}
    log = open(tmp_path/'jupyterlab.log', 'w')
    server = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1',
                               f'--ServerApp.port={port}', '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}',
                               f'--ServerApp.root_dir={root}', '--LabApp.expose_app_in_browser=True', '--allow-root'],
                              cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    def up():
        try: return urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=5).status == 200
        except OSError: return server.poll() is not None and pytest.fail(f'JupyterLab exited: {(tmp_path/"jupyterlab.log").read_text()[-3000:]}')
    try:
        _wait(up, 'JupyterLab to answer', on_timeout=lambda: (tmp_path/'jupyterlab.log').read_text()[-3000:])
        yield dict(url=url, token=token, root=root, log=tmp_path/'jupyterlab.log', shot=tmp_path/'widget.png')
    finally:
        try: urllib.request.urlopen(urllib.request.Request(f'{url}/api/shutdown', method='POST',
                                                            headers={'Authorization': f'token {token}'}), timeout=30)
        except OSError: pass
        try: server.wait(60)
        except subprocess.TimeoutExpired:
            server.terminate()
            try: server.wait(30)
            except subprocess.TimeoutExpired: server.kill()
        log.close()

def test_two_clicks_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright
    root = lab['root']
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'])
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 1100}, device_scale_factor=1)
            page.set_default_timeout(WAIT * 1000)
            def errors() -> str:
                "The notebook's error outputs, the server log's tail and a screenshot of the page, for a failure message."
                texts = page.locator('[data-mime-type="application/vnd.jupyter.stderr"], .jp-RenderedText[data-mime-type*="error"]').all_inner_texts()
                page.screenshot(path=str(lab['shot'].with_name('page-at-failure.png')))
                return (f"notebook errors: {texts[-3:]}; screenshot: {lab['shot'].with_name('page-at-failure.png')}; "
                        f"server log: {lab['log'].read_text()[-2000:]}")
            page.goto(f"{lab['url']}/lab/tree/widget.ipynb?token={lab['token']}", wait_until='domcontentloaded')
            page.wait_for_function("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                                   " return !!(w && w.sessionContext && w.content && w.content.widgets && w.content.widgets.length === 2); }")
            page.evaluate("async () => { const nb = window.jupyterapp.shell.currentWidget;"
                          " await nb.context.ready; await nb.sessionContext.ready;"
                          " window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            targets = _wait(lambda: (root/'targets.json').exists() and json.loads((root/'targets.json').read_text()),
                            'the notebook to run and write targets.json', on_timeout=errors)
            assert 'model.pth' in targets['message'], targets['message']
            canvas = page.locator('.jupyter-matplotlib-canvas-div').first
            _wait(lambda: canvas.count() and canvas.is_visible(), 'the figure on the page', on_timeout=errors)
            _wait(lambda: _count(_pixels(canvas), RED) > 20, "the first block's red contour on the canvas", on_timeout=errors)
            box = canvas.bounding_box()
            scale = box['width'] / targets['size'][0]
            for k, (x, y) in enumerate(targets['xy']):
                page.mouse.click(box['x'] + x * scale, box['y'] + y * scale)
                state = _wait(lambda: _state(root, k + 1), f'the kernel to register click {k + 1}', on_timeout=errors)
            _wait(lambda: _count(_pixels(canvas), BLUE) > 20, 'the corrected blue contour on the canvas', on_timeout=errors)
            widget = page.locator('.jp-OutputArea-output .widget-vbox').first
            widget.screenshot(path=str(lab['shot']))
            # a benchmark, not a check: moving the second point back and forth, click → changed canvas in the browser
            latency_ms = []
            for k in range(LATENCY_CLICKS):
                x, y = targets['nudged_xy'] if k % 2 == 0 else targets['xy'][1]
                page.evaluate(LATENCY_PROBE)
                page.mouse.click(box['x'] + x * scale, box['y'] + y * scale)
                try: page.wait_for_function('() => window.__clickMs !== null', timeout=60_000)
                except Exception: continue          # not measured (a busy machine): reported as missing, never a failure
                latency_ms.append(page.evaluate('() => window.__clickMs'))
        finally: browser.close()
    test_eq = np.testing.assert_array_equal
    test_eq(state['points'], np.array(targets['points']))        # the clicks landed on the intended voxels
    assert (state['mask'] != state['initial']).any(), 'the two clicks did not change the segmentation'
    # the widget's mask is iwnet.correct's for those points, run at the widget's precision and thread count: the same calls,
    # so the same numbers; a voxel whose probability lies within 0.01 of the threshold may be the only exception
    band = np.abs(state['reference_prob'] - 0.5) < 0.01
    test_eq(state['mask'][~band], state['reference'][~band])
    assert np.abs(state['prob'] - state['reference_prob']).max() < 0.02
    print(f"browser test: {int((state['mask'] != state['reference']).sum())} voxels differ from iwnet.correct's mask "
          f"({int(state['mask'].sum())} in it), {int((state['mask'] != state['initial']).sum())} changed by the clicks")
    from PIL import Image
    shot = np.asarray(Image.open(lab['shot']).convert('RGB')).astype(int)
    assert shot.std() > 20, 'blank screenshot'
    assert _count(shot, RED) > 20 and _count(shot, BLUE) > 20, 'the contours are not in the screenshot'
    print(f"click → redrawn canvas in the browser: {len(latency_ms)} of {LATENCY_CLICKS} clicks measured, "
          f"median {np.median(latency_ms) if latency_ms else float('nan'):.0f} ms, range {np.round(latency_ms).astype(int).tolist()} ms")
    if os.environ.get('LUNGREPRO_WIDGET_SCREENSHOT'):
        out = Path(os.environ['LUNGREPRO_WIDGET_SCREENSHOT'])
        shutil.copy(lab['shot'], out)
        import pandas as pd
        from lungrepro.core import save_table, cpu_peak
        cpu = cpu_peak()
        save_table(pd.DataFrame([dict(what='click → redrawn canvas in headless Chromium (JupyterLab, ipympl)', clicks=LATENCY_CLICKS,
                                      measured=len(latency_ms), median_ms=round(float(np.median(latency_ms)), 1) if latency_ms else None,
                                      min_ms=round(min(latency_ms), 1) if latency_ms else None, max_ms=round(max(latency_ms), 1) if latency_ms else None)]),
                   out.stem + '_browser_latency', out.parent, 'iW-Net widget: click → redrawn contour as the browser shows it',
                   'lidc (fixture LIDC-IDRI-0001, 32³ cube)', 'the model in LUNGREPRO_WIDGET_MODEL', seed='n/a',
                   notes=f"From tests/test_widget_browser.py: the second point moved back and forth by one voxel on the axial view; "
                         f"time from the mousedown to the first animation frame whose canvas differs (includes the kernel's correction "
                         f"and drawing, the transfer, and the browser's decoding and painting). {cpu['model']}, {os.cpu_count()} cores; "
                         f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}. Target of issue 10: ≤ 300 ms.")
