"""Pick a vertex, see its MRF neighbourhood: the k-NN graph of Fan et al. (Sec. III-B 3).

:class:`NeighborGraphView` shows a mesh (unlit, in its colour map) in an orbitable
:class:`~facelab.widgets.MeshView`, a vertex slider and a drop-down of named vertices. The
picked vertex is drawn red, its neighbours j_1..j_K coloured by their weight
delta^{i,j_k} = 1 - k / K (bright = heavy), and a table lists each neighbour's index, its
distance w^{i,j} in [xyz, rgb] and its weight.
"""

from __future__ import annotations

import html

import numpy as np
import torch

from facelab._checks import as_tensor, check_indices, check_int, check_shape
from facelab.widgets import static
from facelab.widgets.viewer import MeshView

__all__ = ["NeighborGraphView", "neighborhood_colors"]

_PICKED = (1.0, 0.1, 0.1)


def neighborhood_colors(base, neighbors, index: int, weights) -> torch.Tensor:
    """Per-vertex colours (V, 3) that show one vertex's neighbourhood on a colour map.

    base: (V, 3) colours in [0, 1] (dimmed to 40 % grey-blended); neighbors: (V, K) int;
    index: the picked vertex; weights: (K,) delta_k in [0, 1] (yellow for 1, dark blue for 0).
    The picked vertex is red (drawn last, over its own first-neighbour entry).
    """
    b, _ = as_tensor(base, name="base")
    dims = check_shape(b, "V 3", name="base")
    n, _ = as_tensor(neighbors, name="neighbors")
    check_shape(n, "V K", name="neighbors", dims=dims)
    w, _ = as_tensor(weights, name="weights")
    check_shape(w, "K", name="weights", dims=dims)
    index = check_int(index, name="index", minimum=0)
    if index >= dims["V"]:
        raise ValueError(f"index: expected a vertex in [0, {dims['V']}), got {index}")
    out = 0.4 * b.float() + 0.6 * 0.5
    cold = torch.tensor([0.15, 0.2, 0.6])
    hot = torch.tensor([1.0, 0.9, 0.1])
    ring = n[index].long()
    out[ring] = cold + w.float()[:, None].clamp(0, 1) * (hot - cold)
    out[index] = torch.tensor(_PICKED)
    return out.clamp(0, 1)


class NeighborGraphView:
    """Interactive k-NN graph on a mesh: a vertex slider, presets, the 3D view, a table.

    verts: (V, 3) template vertices (mm); faces: (F, 3); colors: (V, 3) its colour map C(v);
    neighbors: (V, K) int64 from :func:`facelab.methods.dualnet.mrf_neighbors` (column 0 is the
    vertex itself); weights: (K,) delta_k; color_scale: mm per colour unit used in w^{i,j};
    presets: name -> vertex index for the drop-down; index: the vertex shown first.
    ``select(i)`` picks a vertex from code; ``.widget`` is what Jupyter displays.
    """

    def __init__(self, verts, faces, colors, neighbors, weights, *, color_scale: float = 50.0,
                 presets: dict | None = None, index: int = 0, width: int = 420,
                 height: int = 420):
        import ipywidgets as W

        v, _ = as_tensor(verts, name="verts")
        dims = check_shape(v, "V 3", name="verts")
        c, _ = as_tensor(colors, name="colors")
        check_shape(c, "V 3", name="colors", dims=dims)
        n, _ = as_tensor(neighbors, name="neighbors")
        check_shape(n, "V K", name="neighbors", dims=dims)
        check_indices(n, dims["V"], name="neighbors")
        w, _ = as_tensor(weights, name="weights")
        check_shape(w, "K", name="weights", dims=dims)
        self.verts, self.colors = v.detach().float(), c.detach().float()
        self.neighbors, self.weights = n.long(), w.detach().float()
        self.color_scale = float(color_scale)
        self.presets = dict(presets or {})
        for name, i in self.presets.items():
            if not 0 <= int(i) < dims["V"]:
                raise ValueError(f"presets: vertex {i} of {name!r} is outside [0, {dims['V']})")
        self.view = MeshView(v, faces, self.colors, width=width, height=height, lit=False)
        self.slider = W.IntSlider(value=0, min=0, max=dims["V"] - 1, description="vertex",
                                  continuous_update=False, layout=W.Layout(width="380px"))
        self.preset = W.Dropdown(options=["(slider)", *self.presets], value="(slider)",
                                 description="preset")
        self.table = W.HTML()
        self.slider.observe(lambda ch: self.select(int(ch["new"])), names="value")
        self.preset.observe(self._on_preset, names="value")
        self.widget = W.VBox([W.HBox([self.slider, self.preset]),
                              W.HBox([self.view.widget, self.table])])
        self.widget.add_class("facelab-neighbor-view")
        self.index = -1
        self.select(check_int(index, name="index", minimum=0))

    def _on_preset(self, change) -> None:
        if change["new"] in self.presets:
            self.slider.value = int(self.presets[change["new"]])

    def distances(self, index: int) -> torch.Tensor:
        """w^{i,j_k} = |[v_i, s C_i] - [v_j, s C_j]|^2 for the K neighbours of ``index``: (K,)."""
        f = torch.cat([self.verts, self.color_scale * self.colors], dim=1)  # (V, 6)
        return ((f[self.neighbors[index]] - f[index]) ** 2).sum(-1)

    def select(self, index: int) -> None:
        """Show vertex ``index``'s neighbourhood (slider, 3D colours and table follow)."""
        index = check_int(index, name="index", minimum=0)
        if index >= self.verts.shape[0]:
            raise ValueError(f"index: expected a vertex in [0, {self.verts.shape[0]}), got "
                             f"{index}")
        if index == self.index:
            return
        self.index = index
        if self.slider.value != index:
            self.slider.value = index  # re-enters select(), which returns at once
        self.view.update(colors=neighborhood_colors(self.colors, self.neighbors, index,
                                                    self.weights))
        rows = "".join(
            f"<tr><td>{k + 1}</td><td>{int(j)}</td><td>{float(d):.1f}</td>"
            f"<td>{float(wk):.2f}</td></tr>"
            for k, (j, d, wk) in enumerate(zip(self.neighbors[index], self.distances(index),
                                               self.weights, strict=True)))
        self.table.value = (
            f"<b>vertex {index}</b><table style='font-size:12px'>"
            "<tr><th>k</th><th>j<sub>k</sub></th><th>w (mm&sup2;)</th><th>&delta;</th></tr>"
            f"{rows}</table><small>{html.escape('k = 1 is the vertex itself (w = 0)')}</small>")

    def image(self) -> np.ndarray:
        """The current 3D view, front, as an (H, W, 3) image."""
        return self.view.image()

    def static(self):
        """A matplotlib figure of the current state (front view and the weights)."""
        return static.mesh_figure([self.image()], [f"vertex {self.index}: K = "
                                                   f"{self.neighbors.shape[1]} neighbours"])

    def save(self, path) -> str:
        """Write :meth:`static` as an image file (PNG by extension); returns the path."""
        return static.save_figure(self.static(), path)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        return static.display_bundle(self.widget, self.static(),
                                     "NeighborGraphView (pick a vertex)", include, exclude)
