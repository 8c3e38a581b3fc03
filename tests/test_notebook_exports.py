"""Saved notebooks export with a picture wherever a widget is (HTML, GitHub, offline copies).

A widget's output stores ``application/vnd.jupyter.widget-view+json`` (the live view, which
needs the kernel or saved widget state) and, beside it, the widget's static ``image/png``.
nbconvert drops the widget entry when the notebook carries no widget state and shows the
picture; this test exports every notebook under ``notebooks/`` to HTML and checks that each
widget output became that picture, and that no ``VBox(children=...)`` text leaks into it.
It reads the saved outputs, so a notebook saved without them (or with stale widgets that
predate the static picture) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbconvert = pytest.importorskip("nbconvert")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


def widget_outputs(nb) -> list[tuple[int, dict]]:
    """(cell index, output) for every output that displays a widget."""
    return [(i, out) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if WIDGET in out.get("data", {})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_html_export_shows_a_picture_for_every_widget(path):
    nb = nbformat.read(path, as_version=4)
    widgets = widget_outputs(nb)
    for i, out in widgets:
        assert "image/png" in out["data"], f"{path.name} cell {i}: widget without a static PNG"
        assert "children=" not in out["data"].get("text/plain", ""), path.name
    nb.metadata.pop("widgets", None)  # as exported without the widget state
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    for i, out in widgets:
        png = "".join(out["data"]["image/png"].split())[:200]
        assert re.search(r'<img [^>]*src="data:image/png;base64,' + re.escape(png), html), \
            f"{path.name} cell {i}: the widget's picture is missing from the HTML export"
    assert "VBox(children" not in html and "HBox(children" not in html, path.name
    # every widget output became a picture: as many widget pictures as widgets
    assert html.count('<script type="application/vnd.jupyter.widget-view+json">') == 0


def test_notebooks_with_widgets_are_covered():
    """The course notebooks that show widgets (00: explorer, viewer, player; 01, 03: live
    plots, gradient view) really store them, so the export test above checks something."""
    counts = {p.stem: len(widget_outputs(nbformat.read(p, as_version=4))) for p in NOTEBOOKS}
    assert counts["00_foundations"] >= 3 and counts["01_mofa"] >= 2, counts
    assert counts["03_3ddfa_v2"] >= 1, counts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_training_loops_end_with_the_final_static_figure(path):
    """A loop reporting to a live ConvergencePlot (``callback=plot``) leaves the converged
    curves as a picture in its own cell's output (ConvergencePlot.on_end in Jupyter)."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "callback=plot" in cell.source:
            assert any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])), \
                f"{path.name} cell {i}: the loop's final figure is missing"
