"""``ConvergencePlot``: live loss curves (and the current render) for any facelab training loop.

It implements :class:`facelab.progress.Callback`, so every fitting or training loop accepts it::

    plot = ConvergencePlot()
    display(plot)                       # in Jupyter; outside, nothing is drawn live
    fit(..., callback=plot)             # loops call plot.on_step(step, losses, state)
    plot.save("convergence.png")        # static figure, anywhere

Redraws are throttled so the loop is not slowed down: about once a second (``min_interval``)
and, adaptively, no more often than keeps drawing time under ``max_overhead`` (5 %) of wall
time: the interval is ``max(min_interval, cost / max_overhead)`` with ``cost`` the mean of
the last five redraw times (~30-50 ms on a laptop core, so the 1 s cadence holds). Recording
a step costs microseconds. The figure is a plain matplotlib ``Figure`` drawn by Agg into an
``ipywidgets.Image`` (no pyplot state, works in JupyterLab and classic notebook); its lines,
legend and layout are built once and only their data change, which keeps a redraw cheap.

Terms reported at only some steps (validation errors, terms logged every k steps) are drawn
as markers — a line through NaN gaps would be invisible — and terms never reported are left
out; the legend sits outside the axes. When a loop ends inside Jupyter, the final static
figure is displayed below the loop's cell, so saved notebooks and HTML exports show it.

Each frame tells whether it was drawn while a loop ran: the plot's image carries the CSS class
``facelab-live`` (:data:`LIVE_CLASS`) on a frame drawn during a loop and not on the final frame
drawn after it (nor on the empty axes or a redraw after a log-scale toggle between loops). The
frame and its class travel in one widget message, so a page never shows one with the other's
mark; a style, or a test checking that the curves move while a loop runs, can tell them apart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from facelab.progress import History
from facelab.widgets import static

__all__ = ["LIVE_CLASS", "ConvergencePlot", "in_notebook"]

#: CSS class of the plot image while it shows a frame drawn during a loop (module docstring).
LIVE_CLASS = "facelab-live"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _image_from_state(state: Mapping[str, Any] | None) -> np.ndarray | None:
    """state["image"] as (H, W, 3) float NumPy (first item of a batch), or None."""
    if not state or state.get("image") is None:
        return None
    img = state["image"]
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
    img = np.asarray(img)
    if img.ndim == 4:
        img = img[0]
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"state['image']: expected (H, W, 3) or (B, H, W, 3), got {img.shape}")
    return img


class ConvergencePlot:
    """Live loss curves with a log-scale toggle and, optionally, the current render.

    terms: names of the loss terms to plot (None: every term the loop reports).
    log_scale: start with a logarithmic y axis (a checkbox toggles it).
    show_image: show ``state["image"]`` ((H, W, 3) or (B, H, W, 3) in [0, 1]) next to the
        curves; it is copied (never referenced), at most every ``min_interval`` seconds.
    min_interval: seconds between redraws at least; max_overhead: the share of wall time
        redraws may take (adaptive throttle).
    title: figure title. interactive: build and update widgets (None: only inside Jupyter).
    show_final: display the final static figure in the loop's cell when a loop ends (inside
        Jupyter only), so exported notebooks show the converged curves.

    State: ``history`` (a :class:`facelab.progress.History` of every step), ``redraws`` (count),
    ``draw_seconds`` (total time spent drawing during loops), ``loop_seconds`` (wall time of
    the loops so far), ``redraw_times`` (perf_counter time of each redraw during a loop),
    ``plot_widget`` / ``image_widget`` / ``log_toggle`` / ``widget`` (None when not
    interactive). :meth:`cadence` summarises the redraw interval and the drawing overhead.
    """

    def __init__(self, terms: Sequence[str] | None = None, *, log_scale: bool = True,
                 show_image: bool = False, min_interval: float = 1.0,
                 max_overhead: float = 0.05, title: str | None = None,
                 interactive: bool | None = None, show_final: bool = True):
        from facelab._checks import check_positive

        self.terms = None if terms is None else [str(t) for t in terms]
        self.min_interval = check_positive(min_interval, name="min_interval")
        self.max_overhead = check_positive(max_overhead, name="max_overhead")
        self.title = title
        self.show_image = bool(show_image)
        self.history = History()
        self.image: np.ndarray | None = None
        self.redraws = 0
        self.draw_seconds = 0.0
        self.loop_seconds = 0.0
        self.redraw_times: list[float] = []
        self.show_final = bool(show_final)
        self._loop_start = None
        self._yscale = None
        self._legend_terms: tuple = ()
        self._last_draw = -np.inf
        self._last_cost = 0.0
        self._layout_changed = False
        self._costs: list[float] = []
        self._running = False
        self._last_capture = -np.inf
        self._image_dirty = False
        self._log = bool(log_scale)
        self._fig = self._ax = self._canvas = None
        self._lines: dict = {}
        self.interactive = in_notebook() if interactive is None else bool(interactive)
        self.widget = self.plot_widget = self.image_widget = self.log_toggle = None
        if self.interactive:
            self._build_widgets()

    # ----------------------------------------------------------------- widgets
    def _build_widgets(self) -> None:
        import ipywidgets as w

        self.log_toggle = w.Checkbox(value=self._log, description="log scale")
        self.log_toggle.observe(self._on_log, names="value")
        self.plot_widget = w.Image(format="png", value=b"")
        self.plot_widget.add_class("facelab-convergence")
        self.status = w.HTML(value="<code>waiting for the first step</code>")
        row = [self.plot_widget]
        if self.show_image:
            self.image_widget = w.Image(format="jpeg", value=b"", width=256, height=256)
            self.image_widget.add_class("facelab-image")
            row.append(self.image_widget)
        self.widget = w.VBox([w.HBox([self.log_toggle, self.status]), w.HBox(row)])
        self.widget.add_class("facelab-convergence-plot")
        # Draw the empty axes now: the first Agg draw in a process loads fonts (~1 s), which
        # belongs to construction, not to the loop.
        # A second, timed draw seeds the adaptive throttle with this machine's redraw cost.
        self._fig, self._canvas, self._ax, _ = self._figure(False, live=True)
        self._lay_out_terms()
        for _ in range(2):
            t0 = time.perf_counter()
            self._canvas.draw()
            rgba = np.asarray(self._canvas.buffer_rgba())  # (h, w, 4) uint8
            self.plot_widget.value = static.png_bytes(rgba[..., :3])
            self._last_cost = time.perf_counter() - t0
            self._costs.append(self._last_cost)  # seeds the mean of redraw costs

    def _lay_out_terms(self) -> None:
        """With the terms named, lay the live figure out before any loop runs: an (empty)
        line and legend entry per term, the legend measured, the y scale set — the once-per-
        figure work that would otherwise land in the loop's first redraw (~5x a data redraw).
        A term the loop never reports, or reports sparsely, changes the layout once later."""
        if not self.terms:
            return
        ax = self._ax
        for name in self.terms:
            (self._lines[name],) = ax.plot([], [], label=name, linewidth=1.4)
        self._layout_key = tuple((name, False) for name in self.terms)
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9,
                           frameon=False, borderaxespad=0.0)
        self._fit_legend(ax, legend)
        scale = "log" if self._log else "linear"
        ax.set_yscale(scale)
        ax._facelab_scale = scale

    def _on_log(self, change) -> None:
        self._log = bool(change["new"])
        if self._ax is not None:
            self._redraw()

    def _figure(self, with_image: bool, live: bool = False):
        """A fresh figure: the curves' axes (legend room on the right) and an image axes.

        The layout is fixed (no tight/constrained layout per draw): margins leave room for
        the tick labels, the axis labels, the title and a legend outside the axes.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        dpi = 96 if live else static.FIGURE_DPI
        width = 6.4 if live else (9.6 if with_image else 6.8)
        fig = Figure(figsize=(width, 3.3), dpi=dpi)
        canvas = FigureCanvasAgg(fig)
        curves_right = 0.47 if with_image else 0.70  # legend between curves and image
        top = 0.86 if self.title else 0.95
        ax = fig.add_axes((0.11, 0.15, curves_right - 0.11, top - 0.15))
        img_ax = None
        if with_image:
            img_ax = fig.add_axes((0.70, 0.10, 0.28, top - 0.10))
            img_ax.set_axis_off()
        ax.set_xlabel("step", fontsize=10)
        ax.set_ylabel("loss", fontsize=10)
        ax.tick_params(labelsize=9)
        ax.grid(True, alpha=0.3)
        if self.title:
            fig.suptitle(self.title, fontsize=11)
        return fig, canvas, ax, img_ax

    def _plot_terms(self) -> list[str]:
        """Terms to draw: the requested ones that were reported at least once."""
        names = [n for n, v in self.history.losses.items() if np.isfinite(v).any()]
        return names if self.terms is None else [t for t in self.terms if t in names]

    @staticmethod
    def _is_sparse(y: np.ndarray) -> bool:
        """Reported at fewer than half the steps: a line would vanish between NaN gaps."""
        return bool(np.isfinite(y).mean() < 0.5)

    def _update_axes(self, ax, lines: dict) -> None:
        n = len(self.history.steps)  # a snapshot: lists only grow
        steps = np.asarray(self.history.steps[:n])
        data = {}
        for name in self._plot_terms():
            y = np.asarray(self.history.losses[name][:n], dtype=np.float64)
            sparse = self._is_sparse(y)
            if sparse:  # only the reported points, as markers
                keep = np.isfinite(y)
                data[name] = (steps[keep], y[keep], sparse)
            else:
                data[name] = (steps, y, sparse)
        key = tuple((name, d[2]) for name, d in data.items())
        laid_out = lines is self._lines and getattr(self, "_layout_key", None) is not None
        if laid_out and key != self._layout_key:  # the pre-made layout does not fit: redo
            for line in lines.values():
                line.remove()
            lines.clear()
            self._layout_key = None
        for name, (x_plot, y_plot, sparse) in data.items():
            if name not in lines:
                label = f"{name} (sparse)" if sparse else name
                style = dict(marker="o", markersize=3.5, linestyle="none") if sparse \
                    else dict(linewidth=1.4)
                (lines[name],) = ax.plot(x_plot, y_plot, label=label, **style)
            else:
                lines[name].set_data(x_plot, y_plot)
        terms = tuple(lines)
        if laid_out and self._layout_key is not None:
            ax._facelab_legend = terms  # the legend made by _lay_out_terms still fits
        if terms != getattr(ax, "_facelab_legend", ()):
            self._layout_changed = True
            legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9,
                               frameon=False, borderaxespad=0.0)
            ax._facelab_legend = terms
            self._fit_legend(ax, legend)
        scale = "log" if self._log else "linear"
        if getattr(ax, "_facelab_scale", None) != scale:  # set_yscale rebuilds the tickers
            self._layout_changed = True
            ax.set_yscale(scale)
            ax._facelab_scale = scale
        ax.relim()
        ax.autoscale_view()

    @staticmethod
    def _fit_legend(ax, legend) -> None:
        """Narrow the curves' axes so the legend (outside, on the right) fits in the figure
        and stops before the image panel, whatever the length of the term names."""
        fig = ax.figure
        renderer = fig.canvas.get_renderer()
        width = legend.get_window_extent(renderer).width / fig.bbox.width  # figure fraction
        others = [a.get_position().x0 for a in fig.axes if a is not ax]
        limit = (min(others) if others else 1.0) - 0.01
        box = ax.get_position()
        gap = 0.02 * box.width + 0.01  # bbox_to_anchor x = 1.02 plus a margin
        right = min(box.x1, limit - width - gap)
        ax.set_position((box.x0, box.y0, max(right - box.x0, 0.25), box.height))

    def _redraw(self) -> None:
        t0 = time.perf_counter()
        if self._ax is None:
            self._fig, self._canvas, self._ax, _ = self._figure(False, live=True)
        self._update_axes(self._ax, self._lines)
        self._canvas.draw()
        rgba = np.asarray(self._canvas.buffer_rgba())  # (h, w, 4) uint8
        with self.plot_widget.hold_sync():  # the frame and its live mark: one message
            self.plot_widget.value = static.png_bytes(rgba[..., :3])
            if self._running:  # add/remove_class send nothing when the mark is unchanged
                self.plot_widget.add_class(LIVE_CLASS)
            else:
                self.plot_widget.remove_class(LIVE_CLASS)
        if self.show_image and self._image_dirty:
            self.image_widget.value = static.jpeg_bytes(self.image)
            self._image_dirty = False
        if self.history.steps:
            last = ", ".join(f"{k} {v[-1]:.4g}" for k, v in self.history.losses.items())
            self.status.value = f"<code>step {self.history.steps[-1]}: {last}</code>"
        cost = time.perf_counter() - t0
        # The mean of the last five redraws: drawing stays ~max_overhead of the loop on
        # average, while one slow draw (a busy machine) only widens the next few intervals by
        # a fifth of its cost / max_overhead instead of stalling the plot. A redraw that laid
        # the figure out anew (the legend measured against the renderer, the y scale's tickers
        # rebuilt: ~5x a plain data redraw) happens once per loop, not every interval, so it
        # counts towards the overhead but does not set the pace of the next redraws.
        if not self._layout_changed:
            self._costs = [*self._costs[-4:], cost]
            self._last_cost = float(np.mean(self._costs))
        self._layout_changed = False
        self._last_draw = time.perf_counter()
        self.redraws += 1
        if self._running:
            self.draw_seconds += cost
            self.redraw_times.append(self._last_draw)

    # ---------------------------------------------------------------- callback
    def on_step(self, step: int, losses: Mapping[str, float],
                state: Mapping[str, Any] | None = None) -> None:
        """Record a step; redraw when the throttle allows (see the class docstring)."""
        self.history.on_step(step, losses, state)
        now = time.perf_counter()
        if self.show_image and state and state.get("image") is not None and (
                self.image is None or now - self._last_capture >= self.min_interval):
            self._capture(state)  # a copy, at most every min_interval seconds
            self._last_capture = now
        if not self._running:  # first step of a loop: start the clock, draw min_interval later
            self._running = True
            self._last_draw = now
            self._loop_start = now
            return
        interval = max(self.min_interval, self._last_cost / self.max_overhead)
        if self.interactive and now - self._last_draw >= interval:
            self._redraw()

    def _capture(self, state) -> None:
        image = _image_from_state(state)
        self.image = image.astype(np.float32, copy=True)
        self._image_dirty = True

    def on_end(self) -> None:
        """Final redraw, so the figure shows every step.

        Inside a Jupyter kernel the redraw is scheduled on the kernel's event loop, so it runs
        right after the cell's loop returns and costs the loop nothing; elsewhere it is
        synchronous.
        """
        self.history.on_end()
        if self._running and self._loop_start is not None:
            self.loop_seconds += time.perf_counter() - self._loop_start
        self._running = False  # a later loop reusing this plot starts a fresh clock
        if not (self.interactive and self.history.steps):
            return
        if in_notebook():
            import asyncio

            if self.show_final:
                from IPython.display import Image, display

                display(Image(data=self.png(), format="png"))
            try:
                asyncio.get_running_loop().call_soon(self._redraw)
                return
            except RuntimeError:  # no running loop: draw now
                pass
        self._redraw()

    def cadence(self) -> dict:
        """How the live plot kept up: ``redraws`` during loops, ``mean_interval_s`` between
        them, ``max_interval_s``, ``overhead`` (drawing time / loop wall time)."""
        t = np.asarray(self.redraw_times)
        gaps = np.diff(t) if t.size > 1 else np.zeros(0)
        return {"redraws": int(t.size),
                "mean_interval_s": float(gaps.mean()) if gaps.size else float("nan"),
                "max_interval_s": float(gaps.max()) if gaps.size else float("nan"),
                "overhead": self.draw_seconds / self.loop_seconds if self.loop_seconds else 0.0}

    # ---------------------------------------------------------------- fallback
    def static(self):
        """A matplotlib figure of the curves (and the last image) at full resolution."""
        image = self.image
        fig, _, ax, img_ax = self._figure(self.show_image and image is not None)
        self._update_axes(ax, {})
        if img_ax is not None:
            img_ax.imshow(np.clip(image, 0.0, 1.0))
            img_ax.set_title("current render", fontsize=10)
        return fig

    def save(self, path) -> str:
        """Write :meth:`static` to ``path`` (PNG by extension); returns the path."""
        return static.save_figure(self.static(), path)

    def png(self) -> bytes:
        """:meth:`static` as PNG bytes."""
        return static.figure_png(self.static())

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        return static.display_bundle(self.widget, self.static(), repr(self), include, exclude)

    def __repr__(self) -> str:
        return (f"ConvergencePlot(steps={len(self.history)}, terms={list(self.history.losses)}, "
                f"redraws={self.redraws})")
