"""Tests for facelab.methods.dualnet.mrf: the k-NN graph, delta weights, grouped networks."""

import pytest
import torch

from facelab.methods.dualnet import (
    MRFConfig,
    VertexMLPs,
    mrf_features,
    mrf_neighbors,
    neighbor_weights,
    train_mrf,
    vertex_mlps_loop,
)


def test_neighbor_weights_are_one_minus_k_over_K():
    w = neighbor_weights(10)
    torch.testing.assert_close(w, torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1,
                                                0.0]))
    assert float(neighbor_weights(1)[0]) == 0.0
    with pytest.raises(ValueError, match="k"):
        neighbor_weights(0)


def test_neighbors_in_xyz_rgb_match_brute_force():
    g = torch.Generator().manual_seed(0)
    verts = torch.randn(2, 40, 3, generator=g, dtype=torch.float64) * 10
    colors = torch.rand(2, 40, 3, generator=g, dtype=torch.float64)
    idx = mrf_neighbors(verts, colors, 6, color_scale=20.0)
    assert idx.shape == (2, 40, 6)
    assert bool((idx[..., 0] == torch.arange(40)).all())  # j_1 is the vertex itself (w = 0)
    f = torch.cat([verts, 20.0 * colors], -1)
    d = torch.cdist(f, f)
    brute = d.argsort(-1)[..., :6]
    assert torch.equal(idx, brute)
    # colour matters: with scale 0 the graph is the xyz graph
    xyz = mrf_neighbors(verts, colors, 6, color_scale=0.0)
    assert torch.equal(xyz, torch.cdist(verts, verts).argsort(-1)[..., :6])
    assert not torch.equal(xyz, idx)
    single = mrf_neighbors(verts[0], colors[0], 1)
    assert torch.equal(single[:, 0], torch.arange(40))


def test_features_hand_computed():
    verts = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [5, 0, 0]]])
    colors = torch.tensor([[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]])
    idx = mrf_neighbors(verts, colors, 2, color_scale=1.0)
    assert idx[0].tolist() == [[0, 1], [1, 0], [2, 1]]
    F = mrf_features(verts, colors, idx)
    assert F.shape == (1, 3, 12)
    # K = 2: delta = (0.5, 0); vertex 0's feature is [0.5 f_0, 0 f_1]
    torch.testing.assert_close(F[0, 0, :6], 0.5 * torch.tensor([0.0, 0, 0, 0.1, 0.2, 0.3]))
    assert float(F[0, :, 6:].abs().max()) == 0.0


def test_grouped_networks_equal_a_per_vertex_loop():
    g = torch.Generator().manual_seed(1)
    V, D, H = 7, 12, 5
    net = VertexMLPs(D, H, V, vertices=torch.tensor([0, 2, 3, 6]), seed=3)
    with torch.no_grad():
        net.w2.copy_(torch.randn(net.w2.shape, generator=g))
        net.b2.copy_(torch.randn(net.b2.shape, generator=g))
    feats = torch.randn(4, V, D, generator=g)
    net.set_normalization(feats)
    template = torch.randn(4, V, 3, generator=g)
    out = net(feats, template)
    ref = vertex_mlps_loop(net, feats, template)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # vertices without a network pass through
    torch.testing.assert_close(out[:, [1, 4, 5]], template[:, [1, 4, 5]])
    assert not torch.allclose(out[:, 0], template[:, 0])


def test_untrained_networks_return_the_template():
    net = VertexMLPs(6, 4, 5)
    t = torch.randn(2, 5, 3)
    torch.testing.assert_close(net(torch.randn(2, 5, 6), t), t)


def test_training_learns_a_local_rule():
    """Each vertex's target is its template moved by a function of its own colour: the
    per-vertex networks must learn it (the error falls far below the template's)."""
    g = torch.Generator().manual_seed(2)
    M, V = 64, 6
    verts = torch.randn(M, V, 3, generator=g) * 5
    colors = torch.rand(M, V, 3, generator=g)
    target = verts + 3.0 * (colors[..., :1] - 0.5) * torch.tensor([0.0, 0.0, 1.0])
    cfg = MRFConfig(k=3, hidden=16, epochs=60, batch_size=16, lr=1e-2, color_scale=1.0)
    feats = mrf_features(verts, colors, mrf_neighbors(verts, colors, 3, color_scale=1.0))
    net = train_mrf(feats, verts, target, cfg)
    with torch.no_grad():
        err = (net(feats, verts) - target).norm(dim=-1).mean()
    base = (verts - target).norm(dim=-1).mean()
    assert float(err) < 0.35 * float(base)


def test_validation():
    v = torch.zeros(1, 5, 3)
    with pytest.raises(ValueError, match="colors"):
        mrf_neighbors(v, torch.zeros(1, 4, 3), 2)
    with pytest.raises(ValueError, match="k"):
        mrf_neighbors(v, v, 6)
    with pytest.raises(ValueError, match="color_scale"):
        mrf_neighbors(v, v, 2, color_scale=-1.0)
    with pytest.raises(ValueError, match="neighbors"):
        mrf_features(v, v, torch.zeros(1, 4, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="vertices"):
        VertexMLPs(6, 4, 5, vertices=torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="features"):
        train_mrf(torch.zeros(2, 5, 12), v.expand(2, -1, -1), v.expand(2, -1, -1),
                  MRFConfig(k=3))
    with pytest.raises(TypeError, match="config"):
        train_mrf(torch.zeros(2, 5, 18), v.expand(2, -1, -1), v.expand(2, -1, -1), {"k": 3})
    with pytest.raises(ValueError, match="hidden"):
        MRFConfig(hidden=0)
