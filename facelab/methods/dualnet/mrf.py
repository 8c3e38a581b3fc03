"""The learnable MRF prior of Fan et al. (Sec. III-B 2-4, Eqs. 5-6): one shallow net per vertex.

Each vertex v_0^i of the personalised template S_0 gets a local graph: its K nearest
neighbours in the joint space [xyz, rgb] under the distance

    w^{i,j} = | [v_0^i, C(v_0^i)] - [v_0^j, C(v_0^j)] |^2                     (Sec. III-B 3)

sorted so that w^{i,j_1} <= ... <= w^{i,j_K}. The vertex itself has w = 0 and is j_1 (the
feature then carries the vertex's own position and colour); :func:`mrf_neighbors` returns it
first, then the K - 1 nearest others. Its feature is

    F^i = [delta^{i,j_1} f^{i,j_1}, ..., delta^{i,j_K} f^{i,j_K}],  f^{i,j} = [v_0^j, C(v_0^j)],
    delta^{i,j_k} = 1 - k / K                                                (Sec. III-B 3)

(:func:`neighbor_weights`, :func:`mrf_features`), and its own network T_P^i (one hidden layer,
50 units) maps F^i to the refined vertex (Eq. 6, the training objective of Sec. III-B 4).

:class:`VertexMLPs` holds all V networks as grouped weights (V, D, H), (V, H), (V, H, 3), (V, 3)
and evaluates them at once with ``einsum`` -- the same arithmetic as V separate ``nn.Linear``
pairs (:func:`vertex_mlps_loop` is that loop, the reference the tests compare with).

The k-NN search is scipy's cKDTree (through :func:`facelab.mesh.knn_graph`), not a compiled op:
profiled on one core, the graph of 100 templates (K = 10) takes 0.65 s and one training epoch over
the same faces 2.8 s, so the search is ~1.5 % of a 15-epoch run (the einsums are the hot part).

Two implementation choices, stated where they differ from the text: the network predicts the
refined vertex as ``v_0^i + T_P^i(F^i)`` (a skip connection; the paper's net outputs the vertex
directly, which is the same function class up to the output bias), with its output layer
initialised at zero so training starts from the template; and the inputs are standardised per
vertex with statistics of the training set (the raw coordinates are ~100 mm, the colours ~0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from facelab._checks import as_tensor, check_finite, check_floating, check_int, check_shape
from facelab.mesh import knn_graph

__all__ = ["MRFConfig", "VertexMLPs", "mrf_features", "mrf_neighbors", "neighbor_weights",
           "train_mrf", "vertex_mlps_loop"]


def neighbor_weights(k: int, *, dtype=torch.float32) -> torch.Tensor:
    """delta^{i,j_k} = 1 - k / K for k = 1..K (Sec. III-B 3): (K,), from 1 - 1/K down to 0."""
    k = check_int(k, name="k", minimum=1)
    return 1.0 - torch.arange(1, k + 1, dtype=dtype) / k


def mrf_neighbors(verts, colors, k: int = 10, *, color_scale: float = 50.0):
    """The K-nearest-neighbour graph of the template in [xyz, rgb] (Sec. III-B 3).

    verts: (B, V, 3) or (V, 3) float template vertices S_0 (mm).
    colors: the same shape, per-vertex colours C(v_0) in [0, 1] (0 where invisible).
    k: K >= 1 (the vertex itself counts as its first neighbour j_1, w = 0).
    color_scale: mm per unit of colour in the distance (the paper concatenates the two without
        stating units; 50 makes a full colour swing weigh like 50 mm).
    Returns (B, V, K) (or (V, K)) int64: column 0 is the vertex itself, columns 1..K-1 its
    nearest other vertices by increasing w (:func:`facelab.mesh.knn_graph`, scipy's cKDTree).
    """
    v, was_numpy = as_tensor(verts, name="verts")
    c, _ = as_tensor(colors, name="colors")
    if v.ndim not in (2, 3):
        raise ValueError(f"verts: expected (B, V, 3) or (V, 3), got {tuple(v.shape)}")
    batched = v.ndim == 3
    vb, cb = (v, c) if batched else (v[None], c[None])
    dims = check_shape(vb, "B V 3", name="verts")
    check_shape(cb, "B V 3", name="colors", dims=dims)
    for t, name in ((vb, "verts"), (cb, "colors")):
        check_floating(t, name=name)
        check_finite(t, name=name)
    k = check_int(k, name="k", minimum=1)
    if k > dims["V"]:
        raise ValueError(f"k: expected 1 <= k <= V = {dims['V']}, got {k}")
    if isinstance(color_scale, bool) or not isinstance(color_scale, (int, float)) \
            or not math.isfinite(color_scale) or color_scale < 0:
        raise ValueError(f"color_scale: expected a finite number >= 0, got {color_scale!r}")
    points = torch.cat([vb, color_scale * cb.to(vb.dtype)], dim=-1)  # (B, V, 6)
    own = torch.arange(dims["V"]).expand(dims["B"], -1)[..., None]  # (B, V, 1)
    idx = own if k == 1 else torch.cat([own, knn_graph(points, k - 1)], dim=-1)  # (B, V, K)
    idx = idx if batched else idx[0]
    return idx.numpy() if was_numpy else idx


def mrf_features(verts, colors, neighbors) -> torch.Tensor:
    """F^i for every vertex (Sec. III-B 3): (B, V, 6 K) float.

    verts: (B, V, 3) template S_0 (mm); colors: (B, V, 3) C(v_0); neighbors: (B, V, K) from
    :func:`mrf_neighbors`. Row i is [delta_1 f^{i,j_1}, ..., delta_K f^{i,j_K}] with
    f = [x, y, z, r, g, b] and delta_k = 1 - k / K (so the K-th neighbour is weighted 0).
    """
    v, _ = as_tensor(verts, name="verts")
    dims = check_shape(v, "B V 3", name="verts")
    c, _ = as_tensor(colors, name="colors")
    check_shape(c, "B V 3", name="colors", dims=dims)
    idx, _ = as_tensor(neighbors, name="neighbors")
    check_shape(idx, "B V K", name="neighbors", dims=dims)
    f = torch.cat([v, c.to(v.dtype)], dim=-1)  # (B, V, 6)
    B, V, K = idx.shape
    gathered = torch.gather(f, 1, idx.reshape(B, V * K, 1).expand(-1, -1, 6).long())
    gathered = gathered.reshape(B, V, K, 6)  # (B, V, K, 6)
    delta = neighbor_weights(K, dtype=v.dtype).to(v.device)
    return (gathered * delta[:, None]).reshape(B, V, K * 6)


class VertexMLPs(nn.Module):
    """V shallow networks T_P^i, one per vertex, as grouped weights (Sec. III-B 3-4).

    in_features: D = 6 K; hidden: H (50 in the paper); num_vertices: V.
    vertices: optional (R,) int64 indices of the vertices that get a network (e.g. the face
        region); the others pass through unchanged. Default: all V.
    ``forward(features (B, V, D), template (B, V, 3)) -> (B, V, 3)``:
    ``v^i = v_0^i + W2^i relu(W1^i norm^i(F^i) + b1^i) + b2^i`` for every i at once, where
    ``norm^i`` standardises with per-vertex statistics (:meth:`set_normalization`).
    Parameters: w1 (R, D, H), b1 (R, H), w2 (R, H, 3), b2 (R, 3); w2, b2 start at 0.
    """

    def __init__(self, in_features: int, hidden: int, num_vertices: int, *, vertices=None,
                 seed: int = 0):
        super().__init__()
        d = check_int(in_features, name="in_features", minimum=1)
        h = check_int(hidden, name="hidden", minimum=1)
        nv = check_int(num_vertices, name="num_vertices", minimum=1)
        if vertices is None:
            vertices = torch.arange(nv)
        vertices, _ = as_tensor(vertices, name="vertices")
        check_shape(vertices, "R", name="vertices")
        from facelab._checks import check_indices

        check_indices(vertices, nv, name="vertices")
        self.num_vertices = nv
        self.register_buffer("vertices", vertices.long().clone())
        n = int(vertices.shape[0])
        g = torch.Generator().manual_seed(check_int(seed, name="seed", minimum=0))
        bound = 1.0 / math.sqrt(d)  # nn.Linear's default init, per vertex
        self.w1 = nn.Parameter((torch.rand(n, d, h, generator=g) * 2 - 1) * bound)
        self.b1 = nn.Parameter((torch.rand(n, h, generator=g) * 2 - 1) * bound)
        self.w2 = nn.Parameter(torch.zeros(n, h, 3))
        self.b2 = nn.Parameter(torch.zeros(n, 3))
        self.register_buffer("mu", torch.zeros(n, d))
        self.register_buffer("sd", torch.ones(n, d))

    @torch.no_grad()
    def set_normalization(self, features: torch.Tensor) -> None:
        """Per-vertex mean and std of training features (B, V, D) (std floored at 1e-3)."""
        check_shape(features, "B V D", name="features",
                    dims={"V": self.num_vertices, "D": self.mu.shape[1]})
        x = features[:, self.vertices]  # (B, R, D)
        self.mu.copy_(x.mean(0))
        self.sd.copy_(x.std(0).clamp_min(1e-3))

    def forward(self, features: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        dims = check_shape(features, "B V D", name="features",
                           dims={"V": self.num_vertices, "D": self.mu.shape[1]})
        check_shape(template, "B V 3", name="template", dims=dims)
        x = (features[:, self.vertices] - self.mu) / self.sd  # (B, R, D)
        hid = torch.relu(torch.einsum("brd,rdh->brh", x, self.w1) + self.b1)  # (B, R, H)
        delta = torch.einsum("brh,rho->bro", hid, self.w2) + self.b2  # (B, R, 3)
        out = template.clone()
        out[:, self.vertices] = template[:, self.vertices] + delta
        return out


def vertex_mlps_loop(net: VertexMLPs, features: torch.Tensor,
                     template: torch.Tensor) -> torch.Tensor:
    """:class:`VertexMLPs` evaluated one vertex at a time with ``nn.Linear`` (the reference).

    Builds V separate two-layer networks from the grouped weights and applies each to its
    vertex; equal to ``net(features, template)`` up to round-off. O(V) Python calls: tests only.
    """
    out = template.clone()
    for r, i in enumerate(net.vertices.tolist()):
        lin1 = nn.Linear(net.w1.shape[1], net.w1.shape[2])
        lin2 = nn.Linear(net.w2.shape[1], 3)
        with torch.no_grad():
            lin1.weight.copy_(net.w1[r].T)
            lin1.bias.copy_(net.b1[r])
            lin2.weight.copy_(net.w2[r].T)
            lin2.bias.copy_(net.b2[r])
            x = (features[:, i] - net.mu[r]) / net.sd[r]
            out[:, i] = template[:, i] + lin2(torch.relu(lin1(x.to(lin1.weight.dtype))))
    return out


@dataclass(frozen=True)
class MRFConfig:
    """Settings of the MRF networks (paper: K = 10, H = 50; Sec. IV-B, Fig. 3).

    k: neighbourhood size K; hidden: H; color_scale: mm per colour unit in w^{i,j};
    epochs, batch_size, lr (Adam), weight_decay: the CPU-scale training; seed: init and order.
    """

    k: int = 10
    hidden: int = 50
    color_scale: float = 50.0
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        check_int(self.k, name="k", minimum=1)
        check_int(self.hidden, name="hidden", minimum=1)
        check_int(self.epochs, name="epochs", minimum=1)
        check_int(self.batch_size, name="batch_size", minimum=1)
        check_int(self.seed, name="seed", minimum=0)
        for name in ("lr", "color_scale"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name}: expected a finite number >= 0, got "
                                 f"{getattr(self, name)}")


def train_mrf(features: torch.Tensor, template: torch.Tensor, target: torch.Tensor,
              config: MRFConfig, *, vertices=None) -> VertexMLPs:
    """Fit the V shallow networks: min sum_m |T_P^i(F^i_m) - v_hat^i_m|^2 (Sec. III-B 4).

    features: (M, V, 6K) from :func:`mrf_features`; template: (M, V, 3) S_0; target: (M, V, 3)
    ground-truth S_hat (mm). vertices: optional (R,) indices that get a network (default all;
    e.g. the face region). Adam over mini-batches of faces; every vertex's network sees only
    its own rows.
    Returns the trained :class:`VertexMLPs` (eval mode, no grad needed to apply it).
    """
    dims = check_shape(features, "M V D", name="features")
    check_shape(template, "M V 3", name="template", dims=dims)
    check_shape(target, "M V 3", name="target", dims=dims)
    if not isinstance(config, MRFConfig):
        raise TypeError(f"config: expected an MRFConfig, got {type(config).__name__}")
    if features.shape[2] != 6 * config.k:
        raise ValueError(f"features: expected (M, V, {6 * config.k}) for k={config.k}, got "
                         f"{tuple(features.shape)}")
    torch.manual_seed(config.seed)
    net = VertexMLPs(features.shape[2], config.hidden, dims["V"], vertices=vertices,
                     seed=config.seed)
    net.set_normalization(features)
    rows = net.vertices
    features, template, target = features[:, rows], template[:, rows], target[:, rows]
    inner = VertexMLPs(features.shape[2], config.hidden, len(rows), seed=config.seed)
    inner.load_state_dict({**net.state_dict(), "vertices": torch.arange(len(rows))})
    opt = torch.optim.Adam(inner.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    rng = np.random.default_rng(config.seed)
    M = dims["M"]
    for _ in range(config.epochs):
        order = torch.as_tensor(rng.permutation(M))
        for s in range(0, M, config.batch_size):
            b = order[s:s + config.batch_size]
            pred = inner(features[b], template[b])
            loss = ((pred - target[b]) ** 2).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    net.load_state_dict({**inner.state_dict(), "vertices": net.vertices})
    net.eval()
    return net
