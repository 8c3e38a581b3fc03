"""The course notebooks in a real browser: JupyterLab 4 + headless Chromium (SwiftShader WebGL).

Each notebook in ``notebooks/`` (00, 01, 03, 07 and any later one) is copied into a throw-away
JupyterLab, opened through Playwright driving Debian's /usr/bin/chromium (never a downloaded
browser) and run with "Run All Cells" once its kernel reports idle; the test checks that the
first cell actually started (and retries once if it did not), waits until every code cell has
an execution count, and fails on any traceback, any stderr output and any browser console
error. While training loops run, the live convergence plot must show at least two distinct
frames drawn during a loop (the widget marks those; the final frame after a loop does not
count). Then every control group of every widget on the page is exercised — each slider tab of
the explorer, the light and its advanced section, orbiting by mouse drag, preset views and
"reset view", the landmark and wireframe toggles, randomise / reset / save, the gradient view's
scale toggles, the motion player's play button and its linked views — and each must change
what the browser shows. Screenshots of every widget go to ``$FACELAB_SCREENSHOTS`` (default
``build/browser-screenshots/``; the path is printed).

These tests must run outside the ``-n 2`` xdist pool (``make test`` runs them in a second,
serial pytest pass); in a pool worker they skip with that message.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from lab_server import CHROMIUM_FLAGS, start_lab

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUN_TIMEOUT = 420.0  # seconds per notebook, Run All to the last cell, on a loaded 2-core box
START_TIMEOUT = 30.0  # seconds for the first cell to start after "Run All Cells"
# The class a ConvergencePlot's image carries on a frame drawn while a loop runs, and not on
# the final frame after the loop (facelab.widgets.convergence.LIVE_CLASS; not imported here,
# which would load torch into the test process).
LIVE_CLASS = "facelab-live"


# ------------------------------------------------------------------------ helpers
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
    while time.monotonic() < deadline:
        last = predicate()
        if last is not None and last is not False:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def expect_change(locator, before: np.ndarray, what: str, share: float = 0.001,
                  timeout: float = 30.0) -> np.ndarray:
    """Wait until the element's pixels differ from ``before``; returns the new pixels."""
    return wait_for(lambda: (lambda p: p if changed(before, p) > share else None)(
        pixels(locator)), timeout, what)


def settled(locator, what: str, timeout: float = 60.0, quiet: int = 3) -> np.ndarray:
    """Wait until the element's pixels stop changing (``quiet`` identical screenshots in a
    row): a 3D view keeps updating while the kernel's first arrays arrive (a 5k-vertex head
    takes longer than a 3k-vertex face), so a reference image taken earlier is a half-drawn
    state. Returns the settled pixels."""
    last, same = pixels(locator), 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = pixels(locator)
        same = same + 1 if changed(last, now) == 0.0 else 0
        if same >= quiet:
            return now
        last = now
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} to settle")


def drag(page, locator, dx: float = 90.0, dy: float = 25.0) -> None:
    """Orbit a 3D view: hover (a pythreejs view takes its WebGL context and attaches its
    controls when the mouse enters), press in the middle, move in steps, release.
    ``locator``: the view's canvas (the widget's div may be wider than the canvas)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 5, y - 5)
    page.mouse.move(x, y, steps=3)
    page.wait_for_timeout(400)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=25)
    page.mouse.up()


def set_slider(page, scope, slider_class: str, value: str) -> None:
    """Type a value into an ipywidgets slider's editable readout and commit it."""
    readout = scope.locator(f".{slider_class} .widget-readout").first
    readout.scroll_into_view_if_needed()
    readout.fill(value)
    readout.press("Enter")


NOTEBOOK_STATE_JS = """(live) => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  return cells.map((c) => ({
    code: c.classList.contains('jp-CodeCell'),
    prompt: ((c.querySelector('.jp-InputArea-prompt') || {}).textContent || '').trim(),
    plots: [...c.querySelectorAll('img.facelab-convergence')].map(
      (im) => ({src: im.src, live: im.classList.contains(live)})),
    images: c.querySelectorAll('.jp-OutputArea-output img:not(.widget-image)').length,
  }));
}"""


def notebook_state(page) -> list[dict]:
    return page.evaluate(NOTEBOOK_STATE_JS, LIVE_CLASS)


def executing_index(cells: list[dict]) -> int | None:
    """The cell now running: the first one showing ``[*]`` (queued cells show it too)."""
    return next((i for i, c in enumerate(cells) if c["code"] and c["prompt"] == "[*]:"), None)


def all_done(cells: list[dict]) -> bool:
    return all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in cells if c["code"])


# ------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def shots_dir() -> Path:
    path = Path(os.environ.get("FACELAB_SCREENSHOTS", ROOT / "build" / "browser-screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, shots_dir):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("browser tests run outside the xdist pool: `pytest -p no:xdist -m browser "
                    "tests/browser` (make test runs them in a second, serial pass)")
    root = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, root / name)
    with start_lab(root, tmp_path_factory.mktemp("jupyter-state"), python_path=ROOT) as server:
        try:
            yield server
        finally:  # the server's log (kernel deaths, tracebacks) beside the screenshots
            shutil.copy(server.log_path, shots_dir / "jupyterlab.log")


@pytest.fixture(scope="module")
def browser(chromium_path, lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


# ------------------------------------------------------------------------ running
def open_notebook(page, lab, name: str) -> None:
    workspace = re.sub(r"[^a-z0-9]+", "-", name.lower())
    page.goto(lab.notebook_url(name, workspace=workspace), timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)


def dismiss_dialog(page) -> bool:
    """Accept a dialog if one is open (JupyterLab may ask which kernel to use, at any moment
    while a loaded machine opens the notebook). Returns whether one was open."""
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count() and dialog.first.is_visible():
        dialog.first.click()
        return True
    return False


# The notebook's panel and its kernel, read through JupyterLab's own API (window.jupyterapp).
PANEL_JS = """(name) => {
  const panel = [...window.jupyterapp.shell.widgets('main')].find(
    (w) => w.context && w.context.path.endsWith(name));
  if (!panel) return null;
  const ctx = panel.sessionContext;
  const kernel = ctx.session ? ctx.session.kernel : null;
  return {ready: ctx.isReady, status: kernel ? kernel.status : null,
          connection: kernel ? kernel.connectionStatus : null};
}"""

# Clear the saved outputs first (their prompts would look like a finished run), then run.
RUN_ALL_JS = """async (name) => {
  const panel = [...window.jupyterapp.shell.widgets('main')].find(
    (w) => w.context && w.context.path.endsWith(name));
  window.jupyterapp.shell.activateById(panel.id);
  await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
  window.jupyterapp.commands.execute('notebook:run-all-cells');  // not awaited: runs on
  return true;
}"""


def wait_kernel_idle(page, lab, name: str, timeout: float = 180.0) -> None:
    """The kernel is started and idle for the server (REST) and for the page (its session is
    ready, the kernel connected and idle)."""
    def idle():
        dismiss_dialog(page)
        panel = page.evaluate(PANEL_JS, name)
        return (panel is not None and panel["ready"] and panel["status"] == "idle"
                and panel["connection"] == "connected" and lab.kernel_state(name) == "idle")

    wait_for(idle, timeout, f"{name}'s kernel to be idle (server and page)")


def run_all(page, lab, name: str) -> int:
    """Run All Cells once the kernel is idle; retry once if the first code cell did not start
    within START_TIMEOUT. Returns the number of attempts."""
    for attempt in (1, 2):
        wait_kernel_idle(page, lab, name)
        page.evaluate(RUN_ALL_JS, name)

        def first_started():
            dismiss_dialog(page)
            first = next(c for c in notebook_state(page) if c["code"])
            return first["prompt"] == "[*]:" or re.fullmatch(r"\[\d+\]:", first["prompt"])

        try:
            wait_for(first_started, START_TIMEOUT, "the first cell to start")
            return attempt
        except AssertionError:
            if attempt == 2:
                raise
    return 2


def run_and_watch(page, lab, name: str, shots_dir: Path) -> dict:
    """Run the notebook and record each ConvergencePlot's distinct live frames: the frames the
    widget drew while a loop reporting to it ran, which carry ``LIVE_CLASS`` (set in the same
    widget message as the frame itself). Every loop of the notebook counts, for as long as it
    runs: a cell may run several loops on one plot (02: pre-training, then fine-tuning), each
    ending with its static figure below the cell. Not counted: the empty axes drawn at
    construction and the final frame each loop draws after it ends — a plot that draws only
    when its loop is over shows no live frame. Returns {plot cell index: number of frames}."""
    attempts = run_all(page, lab, name)
    frames: dict[int, set] = {}
    plots: set[int] = set()
    # for the log: how many static figures the running cell showed when each live frame was
    # first seen (one figure per finished loop: 0 = the cell's first loop, 1 = its second, ...)
    seen_after: dict[int, Counter] = {}
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        cells = notebook_state(page)
        e = executing_index(cells)
        for p, cell in enumerate(cells):
            for plot in cell["plots"]:
                plots.add(p)
                if plot["live"] and plot["src"] not in frames.setdefault(p, set()):
                    frames[p].add(plot["src"])
                    seen_after.setdefault(p, Counter())[
                        None if e is None else cells[e]["images"]] += 1
        if all_done(cells) and lab.kernel_state(name) == "idle":
            break
        if time.monotonic() > deadline:
            page.screenshot(path=str(shots_dir / f"{name}_timeout.png"), full_page=True)
            raise AssertionError(f"{name}: not finished after {RUN_TIMEOUT:.0f} s; prompts "
                                 f"{[c['prompt'] for c in cells if c['code']]}\n"
                                 f"{lab.log_tail()}")
        time.sleep(0.3)
    counts = {p: len(frames.get(p, ())) for p in sorted(plots)}
    print(f"{name}: Run All started on attempt {attempts}; live convergence frames {counts}; "
          f"by static figures already shown in the running cell "
          f"{ {p: dict(sorted(c.items(), key=str)) for p, c in seen_after.items()} }")
    return counts


# ------------------------------------------------------------------------ exercises
def exercise_explorer(page, box, shots: Path, tag: str) -> None:
    view = box.locator(".facelab-mesh-view canvas").first
    image = box.locator(".facelab-image").first
    box.scroll_into_view_if_needed()
    wait_for(lambda: variance(pixels(view)) > 25.0, 30, "the explorer's 3D view to render")
    view0, image0 = settled(view, "the explorer's 3D view"), settled(image, "its image")
    box.screenshot(path=str(shots / f"{tag}.png"))
    # orbit by mouse drag, then "reset view" brings the front view back
    drag(page, view)
    expect_change(view, view0, "the explorer's 3D view to orbit", share=0.01)
    box.locator(".facelab-button-reset_view").click()
    try:
        wait_for(lambda: changed(view0, pixels(view)) < 0.03, 30,
                 "reset view to restore the front")
    except AssertionError:  # keep both pictures for the post-mortem
        from PIL import Image

        Image.fromarray(view0).save(shots / f"{tag}_view_before.png")
        Image.fromarray(pixels(view)).save(shots / f"{tag}_view_after_reset.png")
        raise
    # preset view
    box.locator(".facelab-view-preset select").select_option("left profile")
    expect_change(view, view0, "the 'left profile' preset", share=0.01)
    box.locator(".facelab-button-reset_view").click()
    wait_for(lambda: changed(view0, pixels(view)) < 0.03, 30, "reset view after the preset")
    # toggles: landmarks (3D markers and image dots), wireframe
    box.locator(".facelab-toggle-landmarks input").check()
    expect_change(view, view0, "landmark markers in 3D")
    expect_change(image, image0, "landmark dots in the image")
    box.locator(".facelab-toggle-wireframe input").check()
    shot = expect_change(view, view0, "the wireframe", share=0.01)
    box.screenshot(path=str(shots / f"{tag}_toggles.png"))
    box.locator(".facelab-toggle-wireframe input").uncheck()
    box.locator(".facelab-toggle-landmarks input").uncheck()
    expect_change(view, shot, "the toggles to switch off")
    # every slider tab: move its first slider, the render changes
    tab_slider = {"Identity": "facelab-slider-id_0", "Expression": "facelab-slider-exp_0",
                  "Named expressions": "facelab-slider-expr_smile",
                  "Albedo": "facelab-slider-albedo_0", "Jaw & head pose": "facelab-slider-yaw",
                  "Light": "facelab-light-azimuth"}
    values = {"facelab-slider-yaw": "35", "facelab-light-azimuth": "70",
              "facelab-slider-expr_smile": "1.2"}
    def tab_of(name):  # exact: "Expression" must not match "Named expressions"
        return box.locator(".lm-TabBar-tab").filter(
            has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))

    present = [t for t in tab_slider if tab_of(t).count()]
    assert "Identity" in present and "Light" in present, present  # a model may lack the rest
    for tab in present:
        cls = tab_slider[tab]
        tab_of(tab).first.click()
        before = pixels(image)
        set_slider(page, box, cls, values.get(cls, "2.5"))
        expect_change(image, before, f"the render after the {tab} tab's slider")
    # the light's advanced section: raw SH coefficients
    tab_of("Light").first.click()
    box.get_by_text("advanced: the 27 raw SH coefficients").first.click()
    before = pixels(image)
    set_slider(page, box, "facelab-slider-sh_2_r", "-1.0")
    expect_change(image, before, "the render after a raw SH coefficient")
    box.screenshot(path=str(shots / f"{tag}_light.png"))
    # randomise, then reset all returns the starting picture; save a PNG
    before = pixels(image)
    box.locator(".facelab-button-randomise").click()
    expect_change(image, before, "randomise")
    settled(image, "the randomised render")  # the kernel has sent everything randomise made
    box.locator(".facelab-button-reset").click()
    try:
        wait_for(lambda: changed(image0, pixels(image)) < 0.005, 60,
                 "reset all to restore the render")
    except AssertionError:  # keep both pictures and the sliders' readouts for the post-mortem
        from PIL import Image

        Image.fromarray(image0).save(shots / f"{tag}_image_before.png")
        Image.fromarray(pixels(image)).save(shots / f"{tag}_image_after_reset.png")
        box.screenshot(path=str(shots / f"{tag}_after_reset.png"))
        raise
    box.locator(".facelab-button-save_png").click()
    wait_for(lambda: "saved" in box.inner_text(), 30, "'saved' after save PNG")


def exercise_gradients(page, box, shots: Path, tag: str) -> None:
    views = [box.locator(".facelab-mesh-view").nth(i).locator("canvas").first
             for i in range(box.locator(".facelab-mesh-view").count())]
    heat = [box.locator(".facelab-image").nth(i) for i in range(len(views))]
    assert views and box.locator(".facelab-colorbar").count() == len(views)
    box.scroll_into_view_if_needed()
    for v in views:
        wait_for(lambda v=v: variance(pixels(v)) > 25.0, 30, "a gradient 3D view to render")
    box.screenshot(path=str(shots / f"{tag}.png"))
    # log scale re-colours every panel; separate scales re-colour the panel(s) whose own
    # range differs from the shared one (the panel with the largest values keeps its colours)
    for toggle, needed in (("log scale", len(heat)), ("shared scale", 1)):
        before = [pixels(h) for h in heat]
        box.locator(".widget-checkbox", has_text=toggle).locator("input").first.click()
        wait_for(lambda b=before, needed=needed: sum(changed(x, pixels(h)) > 0.001
                                      for h, x in zip(heat, b, strict=True)) >= needed,
                 30, f"{needed} heat map(s) to change after '{toggle}'")
    before = pixels(views[0])
    drag(page, views[0])
    expect_change(views[0], before, "the gradient view to orbit", share=0.01)
    box.screenshot(path=str(shots / f"{tag}_after.png"))


def exercise_convergence(page, box, shots: Path, tag: str) -> None:
    plot = box.locator("img.facelab-convergence").first
    box.scroll_into_view_if_needed()
    wait_for(lambda: variance(pixels(plot)) > 25.0, 30, "the loss curves")
    box.screenshot(path=str(shots / f"{tag}.png"))
    before = pixels(plot)
    box.locator(".widget-checkbox", has_text="log scale").locator("input").first.click()
    expect_change(plot, before, "the curves after the log-scale toggle")


def exercise_motion(page, box, shots: Path, tag: str) -> None:
    views = [box.locator(".facelab-mesh-view").nth(i).locator("canvas").first
             for i in range(box.locator(".facelab-mesh-view").count())]
    box.scroll_into_view_if_needed()
    for v in views:
        wait_for(lambda v=v: variance(pixels(v)) > 25.0, 30, "a motion view to render")
    box.screenshot(path=str(shots / f"{tag}.png"))
    # scrub
    before = [pixels(v) for v in views]
    set_slider(page, box, "facelab-slider-frame", "12")
    for v, b in zip(views, before, strict=True):
        expect_change(v, b, "the views after scrubbing")
    # play: several distinct frames appear without any further input
    box.locator(".facelab-play button").first.click()
    seen = []

    def distinct_frames():
        shot = pixels(views[0])
        if all(changed(s, shot) > 0.001 for s in seen):
            seen.append(shot)
        return len(seen) >= 3

    wait_for(distinct_frames, 30, "three distinct frames while playing", interval=0.1)
    box.locator(".facelab-play button").nth(1).click()  # pause
    # linked cameras: orbiting the first view turns the others too
    time.sleep(0.5)
    before = [pixels(v) for v in views]
    drag(page, views[0], dx=120.0, dy=0.0)
    for i, (v, b) in enumerate(zip(views, before, strict=True)):
        expect_change(v, b, f"motion view {i} after orbiting view 0", share=0.01)
    box.screenshot(path=str(shots / f"{tag}_after.png"))


def exercise_mesh_view(page, view, shots: Path, tag: str) -> None:
    view.scroll_into_view_if_needed()
    wait_for(lambda: variance(pixels(view)) > 25.0, 30, "the mesh view to render")
    view.screenshot(path=str(shots / f"{tag}.png"))
    before = pixels(view)
    drag(page, view)
    expect_change(view, before, "the mesh view to orbit", share=0.01)


STANDALONE_VIEWS_JS = """() => [...document.querySelectorAll('.facelab-mesh-view')].map(
  (el) => el.closest('.facelab-explorer, .facelab-gradient-view, .facelab-motion') === null)"""


def exercise_widgets(page, name: str, shots: Path) -> dict[str, int]:
    """Exercise every facelab widget on the page; returns how many of each kind were found."""
    stem = name.removesuffix(".ipynb")
    found = {}
    for kind, selector, fn in (("explorer", ".facelab-explorer", exercise_explorer),
                               ("gradients", ".facelab-gradient-view", exercise_gradients),
                               ("convergence", ".facelab-convergence-plot",
                                exercise_convergence),
                               ("motion", ".facelab-motion", exercise_motion)):
        boxes = page.locator(selector)
        found[kind] = boxes.count()
        for i in range(found[kind]):
            fn(page, boxes.nth(i), shots, f"{stem}_{kind}_{i}")
    standalone = page.evaluate(STANDALONE_VIEWS_JS)
    views = page.locator(".facelab-mesh-view")
    found["mesh_view"] = sum(standalone)
    for i, alone in enumerate(standalone):
        if alone:
            exercise_mesh_view(page, views.nth(i).locator("canvas").first, shots,
                               f"{stem}_mesh_view_{i}")
    return found


# ------------------------------------------------------------------------ the test
# What each course notebook must show, at least (later notebooks: whatever they contain).
EXPECTED = {"00_foundations.ipynb": {"explorer": 1, "motion": 1, "mesh_view": 1},
            "01_mofa.ipynb": {"convergence": 1, "gradients": 1},
            "02_multilevel.ipynb": {"explorer": 1, "convergence": 1},
            "03_3ddfa_v2.ipynb": {"convergence": 1},
            "04_dual_mrf.ipynb": {"mesh_view": 1},
            "05_neuface.ipynb": {"convergence": 1, "gradients": 1, "motion": 1, "mesh_view": 1},
            "06_motion_prior.ipynb": {"convergence": 1, "motion": 1}}


ACTION_TIMEOUT_MS = 120_000


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_jupyterlab(name, lab, browser, shots_dir):
    t0 = time.monotonic()
    console: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    # Every click and wait polls for the element's real readiness; this is only the ceiling.
    # Playwright's 30 s default was hit on a 2-core machine at load 12 (six sessions sharing
    # it) while the kernel redrew a widget: the page was ready a little later.
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    try:
        open_notebook(page, lab, name)
        frames = run_and_watch(page, lab, name, shots_dir)
        t_run = time.monotonic() - t0
        tracebacks = page.locator(".jp-OutputArea-output:has-text('Traceback')")
        assert tracebacks.count() == 0, tracebacks.all_inner_texts()
        stderr = page.locator(".jp-OutputArea-output[data-mime-type="
                              "'application/vnd.jupyter.stderr']")
        assert stderr.count() == 0, f"{name}: stderr output: {stderr.all_inner_texts()}"
        # the loops reporting to a live plot showed at least two distinct frames drawn while
        # they ran (about one redraw a second; the plot's once-per-loop layout redraw does not
        # stretch the interval, see ConvergencePlot._redraw).
        for cell, n in frames.items():
            assert n >= 2, f"{name}: the convergence plot in cell {cell} showed {n} live " \
                           "frame(s) while its loops ran"
        found = exercise_widgets(page, name, shots_dir)
        for kind, n in EXPECTED.get(name, {}).items():
            assert found.get(kind, 0) >= n, f"{name}: expected {n} {kind} widget(s), {found}"
        assert len(frames) == found.get("convergence", 0)
        page.screenshot(path=str(shots_dir / f"{name.removesuffix('.ipynb')}_page.png"),
                        full_page=True)
        assert not console, f"{name}: browser console errors:\n" + "\n".join(console)
        print(f"{name}: ran in {t_run:.0f} s, widgets {found}, convergence frames {frames}, "
              f"total {time.monotonic() - t0:.0f} s; screenshots in {shots_dir}")
    finally:
        page.close()
        lab.shutdown_sessions()
