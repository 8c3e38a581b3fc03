"""Tests for facelab.widgets.neighbors: the interactive MRF neighbourhood view."""

import pytest
import torch

from facelab.methods.dualnet import mrf_neighbors, neighbor_weights
from facelab.widgets.neighbors import NeighborGraphView, neighborhood_colors


def _mesh():
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.meshgrid(torch.arange(5.0), torch.arange(5.0), indexing="ij")
    verts = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.zeros(25)], 1) * 10
    faces = []
    for i in range(4):
        for j in range(4):
            a = i * 5 + j
            faces += [[a, a + 5, a + 1], [a + 1, a + 5, a + 6]]
    colors = torch.rand(25, 3, generator=g)
    return verts, torch.tensor(faces), colors


def test_colours_mark_the_vertex_and_weight_its_neighbours():
    verts, _, colors = _mesh()
    nbrs = mrf_neighbors(verts, colors, 4, color_scale=0.0)
    w = neighbor_weights(4)
    c = neighborhood_colors(colors, nbrs, 12, w)
    torch.testing.assert_close(c[12], torch.tensor([1.0, 0.1, 0.1]))  # the picked vertex
    far = [i for i in range(25) if i not in nbrs[12].tolist()]
    torch.testing.assert_close(c[far], (0.4 * colors[far] + 0.3).clamp(0, 1))
    # the heaviest other neighbour (delta 0.5) is brighter than the last one (delta 0)
    assert float(c[nbrs[12, 1]].sum()) > float(c[nbrs[12, 3]].sum())
    with pytest.raises(ValueError, match="index"):
        neighborhood_colors(colors, nbrs, 25, w)


def test_view_follows_slider_and_presets():
    pytest.importorskip("pythreejs")
    verts, faces, colors = _mesh()
    nbrs = mrf_neighbors(verts, colors, 4, color_scale=10.0)
    view = NeighborGraphView(verts, faces, colors, nbrs, neighbor_weights(4),
                             color_scale=10.0, presets={"centre": 12, "corner": 0}, index=3)
    assert view.index == 3 and view.slider.value == 3
    view.preset.value = "centre"
    assert view.index == 12 and "vertex 12" in view.table.value
    view.slider.value = 7
    assert view.index == 7
    d = view.distances(7)
    assert float(d[0]) == 0.0 and bool((d[1:] >= d[:-1] - 1e-6).all())  # sorted by w
    assert "facelab-neighbor-view" in view.widget._dom_classes
    with pytest.raises(ValueError, match="presets"):
        NeighborGraphView(verts, faces, colors, nbrs, neighbor_weights(4), presets={"x": 99})
    with pytest.raises(ValueError, match="neighbors"):
        NeighborGraphView(verts, faces, colors, nbrs[:10], neighbor_weights(4))
