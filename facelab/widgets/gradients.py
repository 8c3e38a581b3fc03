"""``GradientView``: where on the mesh a loss pushes, as a colour map and an image-space heat map.

NeuFace (Fig. 3) compares the per-vertex gradient of the fitting loss under direct parameter
optimisation with that under neural re-parameterization: the first is sparse (only vertices
that a loss term touches receive gradient), the second spread over the face. This view shows
``|dL/dq_v|`` for a per-vertex quantity ``q`` (vertices by default) on the 3D mesh and,
rasterized and interpolated over a front view, as an image; several panels sit side by side,
optionally on one colour scale so their magnitudes compare.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_int, check_shape
from facelab.widgets import static
from facelab.widgets.viewer import MeshView

__all__ = ["GradientView", "colorbar_png", "gradient_magnitude", "robust_range", "vertex_gradient"]


def vertex_gradient(loss_fn: Callable, quantity) -> torch.Tensor:
    """Gradient of a scalar loss with respect to a per-vertex quantity.

    loss_fn: maps a tensor shaped like ``quantity`` to a scalar (0-d) tensor.
    quantity: (V, C), (V,) or (1, V, C) float32/float64, e.g. vertices (V, 3) in mm; torch or
        NumPy (a copy that requires grad is made; the input is not modified).
    Returns dL/dquantity, same shape and dtype as ``quantity`` (torch, detached).
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a callable returning a scalar tensor, "
                        f"got {type(loss_fn).__name__}")
    q, _ = as_tensor(quantity, name="quantity")
    check_floating(q, name="quantity")
    check_finite(q, name="quantity")
    q = q.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(q)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"loss_fn: expected a scalar tensor, got "
                             f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else loss!r}")
        (grad,) = torch.autograd.grad(loss.reshape(()), q, allow_unused=True)
    return torch.zeros_like(q) if grad is None else grad.detach()


def gradient_magnitude(grad, num_vertices: int | None = None) -> torch.Tensor:
    """Per-vertex magnitude: |g| for (V,), the Euclidean norm over C for (V, C) or (1, V, C).

    Returns (V,) float (torch; NumPy in gives torch out, since this feeds the views).
    """
    g, _ = as_tensor(grad, name="grad")
    check_floating(g, name="grad")
    check_finite(g, name="grad")
    dims = {} if num_vertices is None else {"V": num_vertices}
    if g.ndim == 1:
        check_shape(g, "V", name="grad", dims=dims)
        return g.detach().abs()
    if g.ndim == 3:
        check_shape(g, "1 V C", name="grad", dims=dims)
        g = g[0]
    check_shape(g, "V C", name="grad", dims=dims)
    return g.detach().norm(dim=-1)  # (V,)


def _colormap(values: np.ndarray, cmap: str) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps[cmap](np.clip(values, 0.0, 1.0))[..., :3].astype(np.float32)


def robust_range(magnitudes: Sequence[np.ndarray], percentile: float = 99.0,
                 log_decades: float | None = None) -> tuple[float, float]:
    """Colour-scale limits (lo, hi) for per-vertex magnitudes, robust to a few huge values.

    magnitudes: one or more (V,) arrays (>= 0). hi is the ``percentile`` of the non-zero
    magnitudes (a gradient is often zero almost everywhere: the percentile of all vertices
    would be 0), so a handful of outliers saturate instead of washing the map out.
    log_decades: None for a linear scale (lo = 0); else lo = hi / 10**log_decades.
    """
    values = np.concatenate([np.asarray(m, np.float64).reshape(-1) for m in magnitudes])
    nonzero = values[values > 0]
    hi = float(np.percentile(nonzero, percentile)) if nonzero.size else 1.0
    hi = max(hi, 1e-30)
    lo = 0.0 if log_decades is None else hi / 10.0 ** float(log_decades)
    return lo, hi


def _normalise(m: np.ndarray, lo: float, hi: float, log: bool) -> np.ndarray:
    """(V,) magnitudes -> [0, 1] on a linear or log10 scale between lo and hi (clipped)."""
    if log:
        return (np.log10(np.clip(m, lo, hi)) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))
    return np.clip(m / hi, 0.0, 1.0)


def _colorbar_axes(ax, lo: float, hi: float, log: bool, cmap: str, label: str) -> None:
    """Draw a horizontal colour bar for [lo, hi] (linear or log) into ``ax``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colorbar import Colorbar
    from matplotlib.colors import LogNorm, Normalize

    norm = LogNorm(lo, hi) if log else Normalize(lo, hi)
    Colorbar(ax, ScalarMappable(norm=norm, cmap=cmap), orientation="horizontal",
             extend="both" if log else "max", label=label)
    ax.tick_params(labelsize=8)
    ax.xaxis.label.set_size(9)


def colorbar_png(lo: float, hi: float, log: bool, cmap: str, label: str,
                 width_px: int = 260) -> bytes:
    """A stand-alone colour bar as PNG bytes (for the live widget), about ``width_px`` wide."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = static.FIGURE_DPI
    fig = Figure(figsize=(width_px / dpi, 0.75), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.06, 0.55, 0.88, 0.3))
    _colorbar_axes(ax, lo, hi, log, cmap, label)
    return static.figure_png(fig)


class GradientView:
    """Per-vertex gradient magnitude on the mesh and as an image-space heat map, side by side.

    verts: (V, 3) or (1, V, 3) float, model space (mm); torch or NumPy — one mesh for all
        panels — or a list with one mesh per panel (same V and faces), so each gradient is
        drawn on the shape it was taken at (e.g. the mean face and a predicted face).
    faces: (F, 3) int.
    gradients: one panel or a list of panels; each is a (V,) magnitude / signed value, a (V, C)
        gradient (norm over C), or a callable ``loss_fn(verts) -> scalar`` whose gradient with
        respect to that panel's ``verts`` is taken (:func:`vertex_gradient`).
    titles: one label per panel (e.g. ``["direct parameters", "neural reparam."]``).
    shared_scale: one colour scale for all panels (compare magnitudes) or one per panel.
    log_scale: colour by log10 of the magnitude over ``log_decades`` decades below the top.
    percentile: the top of the colour scale is this percentile of the non-zero magnitudes
        (:func:`robust_range`); larger values saturate (the bar's arrow).
    units: what the magnitude is measured in, for the colour bar's label (default: a loss's
        gradient with respect to vertices in mm, ``loss / mm``).
    image_size: heat-map size (pixels). cmap: matplotlib colour map name. The 3D views are
        unlit, so their colours are exactly the colour bar's.

    State: ``magnitudes`` (list of (V,) float32 NumPy), ``meshes`` (list of (V, 3) tensors),
    ``ranges`` (per panel (lo, hi) of the colour scale), ``views`` (one :class:`MeshView` per
    panel), ``heatmaps`` (list of (H, W, 3) float32 images), ``image_widgets``,
    ``colorbar_widgets``, ``widget``; ``log_toggle`` / ``shared_toggle`` checkboxes re-colour in
    place. :meth:`update` takes new gradients without creating widgets.
    """

    def __init__(self, verts, faces, gradients, titles: Sequence[str] | None = None, *,
                 shared_scale: bool = True, log_scale: bool = False, image_size: int = 256,
                 cmap: str = "inferno", view_size: int = 260, percentile: float = 99.0,
                 log_decades: float = 3.0, units: str = "loss / mm"):
        import ipywidgets as w

        from facelab.raster import rasterize

        panels = list(gradients) if isinstance(gradients, (list, tuple)) else [gradients]
        if not panels:
            raise ValueError("gradients: expected at least one panel, got an empty list")
        meshes = list(verts) if isinstance(verts, (list, tuple)) else [verts] * len(panels)
        if len(meshes) != len(panels):
            raise ValueError(f"verts: expected one mesh or {len(panels)} meshes (one per "
                             f"panel), got {len(meshes)}")
        self.meshes = []
        for i, v in enumerate(meshes):
            mv, self.faces = static.as_mesh(v, faces, name="verts" if len(meshes) == 1
                                            else f"verts[{i}]")
            if self.meshes and mv.shape != self.meshes[0].shape:
                raise ValueError(f"verts[{i}]: expected {tuple(self.meshes[0].shape)} like "
                                 f"verts[0], got {tuple(mv.shape)}")
            self.meshes.append(mv)
        self.verts = self.meshes[0]
        self.image_size = check_int(image_size, name="image_size", minimum=8)
        if not 0.0 < float(percentile) <= 100.0:
            raise ValueError(f"percentile: expected a number in (0, 100], got {percentile}")
        self.percentile = float(percentile)
        self.log_decades = float(log_decades)
        self.cmap = cmap
        self.units = str(units)
        if titles is not None and len(titles) != len(panels):
            raise ValueError(f"titles: expected {len(panels)} titles, got {len(titles)}")
        self.titles = list(titles) if titles is not None else [f"panel {i}"
                                                                for i in range(len(panels))]
        # One framing for every panel, so the heat maps line up and compare.
        self.framing = static.frame_mesh(torch.cat(self.meshes), self.image_size,
                                         self.image_size)
        self._frags, self._masks = [], []
        for mv in self.meshes:
            frags = rasterize(static.screen_vertices(mv, self.framing), self.faces,
                              self.image_size, self.image_size)
            self._frags.append(frags)
            self._masks.append((frags.face_index >= 0)[0].numpy())  # (H, W)
        self.magnitudes = self._magnitudes(panels)
        self.log_toggle = w.Checkbox(value=bool(log_scale), description="log scale")
        self.shared_toggle = w.Checkbox(value=bool(shared_scale), description="shared scale")
        self.views: list[MeshView] = []
        self.image_widgets, self.colorbar_widgets = [], []
        self.heatmaps: list[np.ndarray] = []
        self.ranges: list[tuple[float, float]] = []
        self.scale_label = w.HTML()
        for mv in self.meshes:
            self.views.append(MeshView(mv, self.faces, None, width=view_size,
                                       height=view_size, lit=False))
            img = w.Image(value=b"", format="png", width=view_size, height=view_size)
            img.add_class("facelab-image")
            self.image_widgets.append(img)
            bar = w.Image(value=b"", format="png")
            bar.add_class("facelab-colorbar")
            self.colorbar_widgets.append(bar)
            self.heatmaps.append(np.zeros((self.image_size, self.image_size, 3), np.float32))
        self._recolor()
        self.log_toggle.observe(lambda _c: self._recolor(), names="value")
        self.shared_toggle.observe(lambda _c: self._recolor(), names="value")

        def titled(title, child):
            return w.VBox([w.HTML(f"<span style='font-size: 12px'>{title}</span>"), child])

        columns = [w.VBox([w.HTML(f"<b>{t}</b>"),
                           w.HBox([titled("3D — drag to rotate", v.widget),
                                   titled("image space", im)]), bar],
                          layout=w.Layout(margin="0 16px 8px 0"))
                   for t, v, im, bar in zip(self.titles, self.views, self.image_widgets,
                                            self.colorbar_widgets, strict=True)]
        self.widget = w.VBox([w.HBox([self.log_toggle, self.shared_toggle, self.scale_label]),
                              w.HBox(columns, layout=w.Layout(flex_flow="row wrap"))])
        self.widget.add_class("facelab-gradient-view")

    # -------------------------------------------------------------- internals
    def _magnitudes(self, panels) -> list[np.ndarray]:
        V = self.verts.shape[0]
        out = []
        for i, p in enumerate(panels):
            if callable(p):
                g = vertex_gradient(p, self.meshes[i].double())
            else:
                g, _ = as_tensor(p, name=f"gradients[{i}]")
                check_floating(g, name=f"gradients[{i}]")
            out.append(gradient_magnitude(g, V).cpu().numpy().astype(np.float32))
        return out

    def _scales(self) -> list[tuple[float, float]]:
        """(lo, hi) per panel for the current toggles."""
        decades = self.log_decades if self.log_toggle.value else None
        if self.shared_toggle.value:
            return [robust_range(self.magnitudes, self.percentile, decades)] * len(self.magnitudes)
        return [robust_range([m], self.percentile, decades) for m in self.magnitudes]

    def _normalised(self) -> list[np.ndarray]:
        """Magnitudes mapped to [0, 1] by the current scale settings."""
        log = bool(self.log_toggle.value)
        return [_normalise(m, lo, hi, log)
                for m, (lo, hi) in zip(self.magnitudes, self._scales(), strict=True)]

    @property
    def label(self) -> str:
        """The colour bar's label: what is shown and in which units."""
        return f"|∂L/∂v|  ({self.units})"

    def _set_heatmap(self, i: int, values: np.ndarray) -> None:
        """Rasterize + interpolate the (V,) normalised magnitude, then colour-map per pixel."""
        from facelab.raster import interpolate

        attrs = torch.from_numpy(np.ascontiguousarray(values, np.float32))[None, :, None]
        img = interpolate(attrs, self._frags[i], self.faces)[0, :, :, 0].numpy()  # (H, W)
        bg = np.asarray(static.BACKGROUND, np.float32)
        self.heatmaps[i] = np.where(self._masks[i][..., None], _colormap(img, self.cmap), bg)
        self.image_widgets[i].value = static.png_bytes(self.heatmaps[i])

    def _recolor(self) -> None:
        log = bool(self.log_toggle.value)
        self.ranges = self._scales()
        for i, n in enumerate(self._normalised()):
            self.views[i].update(colors=_colormap(n, self.cmap))
            self._set_heatmap(i, n)
            if i == 0 or not self.shared_toggle.value:
                bar = colorbar_png(*self.ranges[i], log, self.cmap, self.label)
            self.colorbar_widgets[i].value = bar
        maxima = ", ".join(f"{t}: max {float(m.max()):.3g}"
                           for t, m in zip(self.titles, self.magnitudes, strict=True))
        self.scale_label.value = (f"<code>colour scale: {self.percentile:g}th percentile"
                                  f"{f', {self.log_decades:g} decades' if log else ''}; "
                                  f"{maxima}</code>")

    # ----------------------------------------------------------------- public
    def update(self, gradients) -> None:
        """Show new gradients (same number of panels, same forms as at construction)."""
        panels = list(gradients) if isinstance(gradients, (list, tuple)) else [gradients]
        if len(panels) != len(self.views):
            raise ValueError(f"gradients: expected {len(self.views)} panels, got {len(panels)}")
        self.magnitudes = self._magnitudes(panels)
        self._recolor()

    def static(self):
        """A matplotlib figure: per panel, the coloured mesh (front view), the heat map and
        the colour bar (scale and units)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(self.titles)
        fig = Figure(figsize=(5.6, 3.3 * n), dpi=static.FIGURE_DPI)
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(2 * n, 2, height_ratios=[10, 1] * n, hspace=0.5)
        log = bool(self.log_toggle.value)
        for i, t in enumerate(self.titles):
            mesh = static.mesh_image(self.meshes[i], self.faces, self.views[i].colors,
                                     framing=self.framing, shade=False)
            for j, (img, sub) in enumerate(((mesh, "3D (front)"),
                                            (self.heatmaps[i], "image space"))):
                ax = fig.add_subplot(grid[2 * i, j])
                ax.imshow(img)
                ax.set_axis_off()
                ax.set_title(f"{t}: {sub}", fontsize=9)
            _colorbar_axes(fig.add_subplot(grid[2 * i + 1, :]), *self.ranges[i], log,
                           self.cmap, self.label)
        fig.subplots_adjust(left=0.04, right=0.96, top=0.95, bottom=0.08)
        return fig

    def save(self, path) -> str:
        """Write :meth:`static` to ``path`` (PNG by extension); returns the path."""
        return static.save_figure(self.static(), path)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        return static.display_bundle(self.widget, self.static(),
                                     f"GradientView({', '.join(self.titles)})", include, exclude)
