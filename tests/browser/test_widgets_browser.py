"""facelab.widgets in a real browser: JupyterLab 4 + headless Chromium (SwiftShader WebGL).

Writes a temporary notebook that shows every widget, opens it in JupyterLab through Playwright
driving Debian's /usr/bin/chromium (never a downloaded browser), runs all cells, screenshots
each widget into ``$FACELAB_SCREENSHOTS`` (default: a pytest tmp folder; the path is printed),
and checks that every 3D canvas shows something (pixel variance) and changes after a slider
(or toggle) moves. Skips only when Playwright or Chromium is missing.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from lab_server import CHROMIUM_FLAGS, start_lab

pytestmark = pytest.mark.browser

SETUP = """\
import numpy as np
import torch
import ipywidgets as w
from IPython.display import display
from facelab.model.registry import load_model
from facelab.progress import track
from facelab.widgets import (ConvergencePlot, GradientView, ModelExplorer, MotionPlayer,
                             show_mesh, vertex_gradient)
from facelab.widgets.static import mesh_image
torch.set_num_threads(1)
m = load_model("synthetic", resolution="teaching")
"""

VIEWER = """\
view = show_mesh(m.mean_shape, m.faces, m.mean_albedo, landmarks=m.landmarks)
scale = w.FloatSlider(value=1.0, min=0.5, max=1.5, description="x scale")
scale.add_class("test-viewer-slider")
scale.observe(lambda c: view.update(m.mean_shape * torch.tensor([c["new"], 1.0, 1.0])),
              names="value")
box = w.VBox([scale, view.widget])
box.add_class("test-viewer")
box
"""

EXPLORER = """\
explorer = ModelExplorer(m, image_size=192)
explorer.widget.add_class("test-explorer")
explorer
"""

GRADIENTS = """\
# Landmark residuals from 0.1 to 6 mm, so the magnitudes span decades (log scale shows it).
target = m.mean_shape[m.landmarks] + torch.logspace(-1, np.log10(6.0), 68)[:, None]
def landmark_loss(v):
    return ((v[m.landmarks] - target) ** 2).sum()
# Stand-in for a re-parameterization: the same gradient seen through a smooth linear basis.
basis = m.id_basis[..., :20].reshape(-1, 20)  # (3V, 20)
g = vertex_gradient(landmark_loss, m.mean_shape).reshape(-1)
through_basis = (basis @ (basis.T @ g)).reshape(-1, 3)
gv = GradientView(m.mean_shape, m.faces, [landmark_loss, through_basis],
                  ["direct (landmark loss)", "through identity basis"], shared_scale=False)
gv.widget.add_class("test-gradients")
gv
"""

CONVERGENCE = """\
plot = ConvergencePlot(show_image=True, min_interval=0.1, title="toy fit")
plot.widget.add_class("test-convergence")
display(plot)
a = torch.zeros(1, 10, requires_grad=True)
opt = torch.optim.Adam([a], lr=0.1)
goal = m.shape(torch.randn(1, 10, generator=torch.Generator().manual_seed(0)))
progress = track(range(120), callback=plot)
for step in progress:
    opt.zero_grad()
    v = m.shape(a)
    fit, prior = (v - goal).pow(2).mean(), 1e-3 * a.pow(2).sum()
    (fit + prior).backward()
    opt.step()
    image = mesh_image(v[0].detach(), m.faces, height=96, width=96) if step % 40 == 0 else None
    progress.log({"vertex": fit, "prior": prior}, state={"image": image})
"""

MOTION = """\
t = np.sin(np.pi * np.linspace(0.0, 1.0, 16))
jaw = torch.cat([m.pose_jaw(m.mean_shape[None], torch.tensor([[0.45 * s, 0.0, 0.0]]))
                 for s in t])
smile = torch.cat([m.shape(torch.zeros(1, 1), float(s) * m.expression("smile")[None])
                   for s in t])
player = MotionPlayer([jaw, smile], m.faces, fps=8, titles=["jaw", "smile"])
player.widget.add_class("test-motion")
player
"""

DONE = 'print("FACELAB_" + "DONE")'

WIDGETS = ("viewer", "explorer", "gradients", "convergence", "motion")


def write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src)
                for src in (SETUP, VIEWER, EXPLORER, GRADIENTS, CONVERGENCE, MOTION, DONE)]
    nbformat.write(nb, str(path))


def pixels(locator) -> np.ndarray:
    """Screenshot an element -> (H, W, 3) uint8 array."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"))


def variance(img: np.ndarray) -> float:
    return float(img.astype(np.float64).mean(axis=2).var())


def changed(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels whose colour changed by more than 10/255 in some channel."""
    if a.shape != b.shape:
        return 1.0
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 10).mean())


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last is not None and last is not False:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def set_slider(page, container, slider_class: str, value: str) -> None:
    """Type a value into an ipywidgets slider's editable readout and commit it."""
    readout = page.locator(f".{container} .{slider_class} .widget-readout").first
    readout.scroll_into_view_if_needed()
    readout.fill(value)
    readout.press("Enter")


def canvas_views(page, container: str):
    views = page.locator(f".{container} .facelab-mesh-view")
    return [views.nth(i) for i in range(views.count())]


def wait_nonblank(views, what: str, timeout: float = 30.0) -> list[np.ndarray]:
    shots = []
    for i, v in enumerate(views):
        v.scroll_into_view_if_needed()
        img = wait_for(lambda v=v: (lambda p: p if variance(p) > 25.0 else None)(pixels(v)),
                       timeout, f"{what} 3D view {i} to render")
        shots.append(img)
    return shots


def test_widgets_in_jupyterlab(chromium_path, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    t_start = time.monotonic()
    shots_dir = Path(os.environ.get("FACELAB_SCREENSHOTS", tmp_path / "screenshots"))
    shots_dir.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {shots_dir}")
    root = tmp_path / "lab"
    root.mkdir()
    write_notebook(root / "widgets.ipynb")
    console: list[str] = []

    with start_lab(root, tmp_path / "jupyter-state") as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True,
                                     args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.goto(lab.notebook_url("widgets.ipynb"), timeout=90_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            # JupyterLab 4.6 may ask which kernel to use on first open.
            try:
                page.wait_for_selector(".jp-Dialog", timeout=5_000)
                page.locator(".jp-Dialog .jp-mod-accept").first.click()
            except PlaywrightTimeout:  # no dialog shown: nothing to do
                pass
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            try:
                page.wait_for_selector(".jp-OutputArea-output:has-text('FACELAB_DONE')",
                                       timeout=150_000)
            except PlaywrightTimeout as err:
                page.screenshot(path=str(shots_dir / "timeout.png"), full_page=True)
                errors = [o for o in page.locator(".jp-OutputArea-output[data-mime-type="
                                                  "'application/vnd.jupyter.stderr']")
                          .all_inner_texts()]
                raise AssertionError(f"notebook did not finish: {errors}\n{lab.log_tail()}") \
                    from err
            tracebacks = page.locator(".jp-OutputArea-output:has-text('Traceback')")
            assert tracebacks.count() == 0, tracebacks.all_inner_texts()

            # --- every widget is on the page; every 3D view renders something -------------
            expected_views = {"viewer": 1, "explorer": 1, "gradients": 2, "convergence": 0,
                              "motion": 2}
            before = {}
            for name in WIDGETS:
                box = page.locator(f".test-{name}").first
                box.wait_for(state="visible", timeout=30_000)
                views = canvas_views(page, f"test-{name}")
                assert len(views) == expected_views[name], name
                before[name] = wait_nonblank(views, name)
                box.scroll_into_view_if_needed()
                box.screenshot(path=str(shots_dir / f"{name}.png"))

            # The convergence plot and the explorer's render are images, not canvases.
            plot_img = page.locator(".test-convergence .facelab-convergence").first
            wait_for(lambda: variance(pixels(plot_img)) > 25.0, 30, "the loss curves")
            fit_img = page.locator(".test-convergence .facelab-image").first
            wait_for(lambda: variance(pixels(fit_img)) > 25.0, 30, "the current render")
            render_img = page.locator(".test-explorer .facelab-image").first
            render_before = pixels(render_img)
            assert variance(render_before) > 25.0

            # --- interactions: each 3D view changes ------------------------------------
            def expect_change(name, shots, what):
                # > 0.1 % of the pixels: a sparse gradient map only changes its few hot spots.
                views = canvas_views(page, f"test-{name}")
                try:
                    for i, (v, old) in enumerate(zip(views, shots, strict=True)):
                        wait_for(lambda v=v, old=old: changed(old, pixels(v)) > 0.001, 30,
                                 f"{name} view {i} to change after {what}")
                finally:
                    page.locator(f".test-{name}").first.screenshot(
                        path=str(shots_dir / f"{name}_after.png"))

            set_slider(page, "test-viewer", "test-viewer-slider", "0.6")
            expect_change("viewer", before["viewer"], "the x-scale slider")

            set_slider(page, "test-explorer", "facelab-slider-id_0", "3")
            expect_change("explorer", before["explorer"], "the id 0 slider")
            wait_for(lambda: changed(render_before, pixels(render_img)) > 0.01, 30,
                     "the explorer's rendered image to change")

            page.locator(".test-gradients .widget-checkbox", has_text="log scale") \
                .locator("input").first.click()
            expect_change("gradients", before["gradients"], "the log-scale toggle")

            set_slider(page, "test-motion", "facelab-slider-frame", "8")
            expect_change("motion", before["motion"], "the frame slider")
            page.screenshot(path=str(shots_dir / "notebook.png"), full_page=True)
        finally:
            browser.close()
    elapsed = time.monotonic() - t_start
    print(f"browser test: {elapsed:.1f} s; screenshots in {shots_dir}")
    webgl_errors = [c for c in console if "webgl" in c.lower() and "error" in c.lower()]
    assert not webgl_errors, webgl_errors
