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

__all__ = ["GradientView", "gradient_magnitude", "vertex_gradient"]


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


class GradientView:
    """Per-vertex gradient magnitude on the mesh and as an image-space heat map, side by side.

    verts: (V, 3) or (1, V, 3) float, model space (mm); torch or NumPy. One mesh for all panels.
    faces: (F, 3) int.
    gradients: one panel or a list of panels; each is a (V,) magnitude / signed value, a (V, C)
        gradient (norm over C), or a callable ``loss_fn(verts) -> scalar`` whose gradient with
        respect to ``verts`` is taken (:func:`vertex_gradient`).
    titles: one label per panel (e.g. ``["direct parameters", "neural reparam."]``).
    shared_scale: one colour scale for all panels (compare magnitudes) or one per panel.
    log_scale: colour by log10 of the magnitude (spans decades; floor at 1e-6 of the max).
    image_size: heat-map size (pixels). cmap: matplotlib colour map name.

    State: ``magnitudes`` (list of (V,) float32 NumPy), ``views`` (one :class:`MeshView` per
    panel), ``heatmaps`` (list of (H, W, 3) float32 images), ``image_widgets``, ``widget``;
    ``log_toggle`` / ``shared_toggle`` checkboxes re-colour in place. :meth:`update` takes new
    gradients (e.g. from a training callback) without creating widgets.
    """

    def __init__(self, verts, faces, gradients, titles: Sequence[str] | None = None, *,
                 shared_scale: bool = True, log_scale: bool = False, image_size: int = 256,
                 cmap: str = "inferno", view_size: int = 260):
        import ipywidgets as w

        self.verts, self.faces = static.as_mesh(verts, faces)
        self.image_size = check_int(image_size, name="image_size", minimum=8)
        self.cmap = cmap
        panels = list(gradients) if isinstance(gradients, (list, tuple)) else [gradients]
        if not panels:
            raise ValueError("gradients: expected at least one panel, got an empty list")
        if titles is not None and len(titles) != len(panels):
            raise ValueError(f"titles: expected {len(panels)} titles, got {len(titles)}")
        self.titles = list(titles) if titles is not None else [f"panel {i}"
                                                                for i in range(len(panels))]
        self.framing = static.frame_mesh(self.verts, self.image_size, self.image_size)
        screen = static.screen_vertices(self.verts, self.framing)  # (1, V, 3)
        from facelab.raster import rasterize

        self._frags = rasterize(screen, self.faces, self.image_size, self.image_size)
        self._mask = (self._frags.face_index >= 0)[0].numpy()  # (H, W)
        self.magnitudes = self._magnitudes(panels)
        self.log_toggle = w.Checkbox(value=bool(log_scale), description="log scale")
        self.shared_toggle = w.Checkbox(value=bool(shared_scale), description="shared scale")
        self.views: list[MeshView] = []
        self.image_widgets = []
        self.heatmaps: list[np.ndarray] = []
        self.scale_label = w.HTML()
        for i, n in enumerate(self._normalised()):
            self.views.append(MeshView(self.verts, self.faces, _colormap(n, self.cmap),
                                       width=view_size, height=view_size, lit=True))
            img = w.Image(value=b"", format="png", width=view_size, height=view_size)
            img.add_class("facelab-image")
            self.image_widgets.append(img)
            self.heatmaps.append(np.zeros((self.image_size, self.image_size, 3), np.float32))
            self._set_heatmap(i, n)
        self._set_label()
        self.log_toggle.observe(lambda _c: self._recolor(), names="value")
        self.shared_toggle.observe(lambda _c: self._recolor(), names="value")
        columns = [w.VBox([w.HTML(f"<b>{t}</b>"), w.HBox([v.widget, im])])
                   for t, v, im in zip(self.titles, self.views, self.image_widgets, strict=True)]
        self.widget = w.VBox([w.HBox([self.log_toggle, self.shared_toggle, self.scale_label]),
                              w.HBox(columns, layout=w.Layout(flex_flow="row wrap"))])

    # -------------------------------------------------------------- internals
    def _magnitudes(self, panels) -> list[np.ndarray]:
        V = self.verts.shape[0]
        out = []
        for i, p in enumerate(panels):
            if callable(p):
                g = vertex_gradient(p, self.verts.double())
            else:
                g, _ = as_tensor(p, name=f"gradients[{i}]")
                check_floating(g, name=f"gradients[{i}]")
            out.append(gradient_magnitude(g, V).cpu().numpy().astype(np.float32))
        return out

    def _normalised(self) -> list[np.ndarray]:
        """Magnitudes mapped to [0, 1] by the current scale settings."""
        mags = self.magnitudes
        if self.log_toggle.value:
            top = max(float(m.max()) for m in mags) if self.shared_toggle.value else None
            res = []
            for m in mags:
                hi = max(top if top is not None else float(m.max()), 1e-30)
                lo = hi * 1e-6
                res.append((np.log10(np.maximum(m, lo)) - np.log10(lo)) / 6.0)
            return res
        if self.shared_toggle.value:
            hi = max(max(float(m.max()) for m in mags), 1e-30)
            return [m / hi for m in mags]
        return [m / max(float(m.max()), 1e-30) for m in mags]

    def _set_heatmap(self, i: int, values: np.ndarray) -> None:
        """Rasterize + interpolate the (V,) normalised magnitude, then colour-map per pixel."""
        from facelab.raster import interpolate

        attrs = torch.from_numpy(np.ascontiguousarray(values, np.float32))[None, :, None]
        img = interpolate(attrs, self._frags, self.faces)[0, :, :, 0].numpy()  # (H, W)
        bg = np.asarray(static.BACKGROUND, np.float32)
        self.heatmaps[i] = np.where(self._mask[..., None], _colormap(img, self.cmap), bg)
        self.image_widgets[i].value = static.png_bytes(self.heatmaps[i])

    def _set_label(self) -> None:
        maxima = ", ".join(f"{t}: max {float(m.max()):.3g}"
                           for t, m in zip(self.titles, self.magnitudes, strict=True))
        self.scale_label.value = f"<code>{maxima}</code>"

    def _recolor(self) -> None:
        for i, n in enumerate(self._normalised()):
            self.views[i].update(colors=_colormap(n, self.cmap))
            self._set_heatmap(i, n)
        self._set_label()

    # ----------------------------------------------------------------- public
    def update(self, gradients) -> None:
        """Show new gradients (same number of panels, same forms as at construction)."""
        panels = list(gradients) if isinstance(gradients, (list, tuple)) else [gradients]
        if len(panels) != len(self.views):
            raise ValueError(f"gradients: expected {len(self.views)} panels, got {len(panels)}")
        self.magnitudes = self._magnitudes(panels)
        self._recolor()

    def static(self):
        """A matplotlib figure: per panel, the coloured mesh (front view) and the heat map."""
        images, titles = [], []
        for i, t in enumerate(self.titles):
            images.append(static.mesh_image(self.verts, self.faces, self.views[i].colors,
                                            height=self.image_size, width=self.image_size))
            images.append(self.heatmaps[i])
            titles += [f"{t}: mesh", f"{t}: image space"]
        return static.mesh_figure(images, titles, ncols=2)

    def save(self, path) -> str:
        """Write :meth:`static` to ``path`` (PNG by extension); returns the path."""
        return static.save_figure(self.static(), path)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
