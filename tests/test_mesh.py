"""Tests for facelab.mesh: normals, connectivity, Laplacians, kNN graphs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from facelab.mesh import (
    _knn_brute,
    boundary_vertices,
    face_normals,
    knn_graph,
    laplacian,
    laplacian_smoothing_loss,
    mesh_edges,
    vertex_adjacency,
    vertex_neighbors,
)
from facelab.normals.torch_ref import vertex_normals_torch as vertex_normals

DTYPES = [torch.float32, torch.float64]


# --------------------------------------------------------------------------------- meshes
def centred_cube():
    """Cube [-1, 1]^3, each square split into 4 triangles around its centre (14 V, 24 F).

    Symmetric triangulation, so area-weighted corner normals are exactly (±1, ±1, ±1)/√3.
    Winding: corners c + (-t1-t2, t1-t2, t1+t2, -t1+t2) with t1 x t2 = n are counter-clockwise
    seen from outside.
    """
    corners = {}
    verts, faces = [], []

    def corner(p):
        key = tuple(round(float(c)) for c in p)
        if key not in corners:
            corners[key] = len(verts)
            verts.append(key)
        return corners[key]

    for axis in range(3):
        for sign in (-1, 1):
            n = np.zeros(3)
            n[axis] = sign
            t1 = np.zeros(3)
            t1[(axis + 1) % 3] = 1
            t2 = np.cross(n, t1)
            assert np.allclose(np.cross(t1, t2), n)
            ring = [corner(n + a * t1 + b * t2) for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            centre = len(verts)
            verts.append(tuple(n))
            for k in range(4):
                faces.append((centre, ring[k], ring[(k + 1) % 4]))
    return np.array(verts, dtype=np.float64), np.array(faces, dtype=np.int64)


def grid(n=5, jitter=0.0, seed=0):
    """Planar n x n grid in z = 0, triangles counter-clockwise seen from +z."""
    ys, xs = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64),
                         indexing="ij")
    verts = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], axis=1)
    if jitter:
        rng = np.random.default_rng(seed)
        interior = (xs.ravel() % (n - 1) != 0) & (ys.ravel() % (n - 1) != 0)
        verts[interior, :2] += rng.uniform(-jitter, jitter, (int(interior.sum()), 2))
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j + 1, (i + 1) * n + j
            faces += [(a, b, c), (a, c, d)]
    return verts, np.array(faces, dtype=np.int64)


def tri_lattice(n=7, jitter=0.0, seed=0):
    """Planar lattice of (nearly) equilateral triangles, counter-clockwise seen from +z."""
    s = math.sqrt(3.0) / 2
    verts = np.array([(j + 0.5 * (i % 2), i * s, 0.0) for i in range(n) for j in range(n)])
    if jitter:
        verts[:, :2] += np.random.default_rng(seed).uniform(-jitter, jitter, (n * n, 2))
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            faces += [(a, b, c), (b, d, c)] if i % 2 == 0 else [(a, d, c), (a, b, d)]
    return verts, np.array(faces, dtype=np.int64)


def sphere():
    s = trimesh.creation.icosphere(subdivisions=3)  # unit sphere, outward winding
    return np.asarray(s.vertices, dtype=np.float64), np.asarray(s.faces, dtype=np.int64)


def as_batch(verts, dtype):
    return torch.as_tensor(verts, dtype=dtype)[None]


# -------------------------------------------------------------------------------- normals
@pytest.mark.parametrize("dtype", DTYPES)
def test_face_normal_orientation_single_triangle(dtype):
    verts = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=dtype)
    faces = torch.tensor([[0, 1, 2]])  # counter-clockwise seen from +z
    n = face_normals(verts, faces)
    assert n.shape == (1, 1, 3) and n.dtype == dtype
    torch.testing.assert_close(n, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=dtype))
    torch.testing.assert_close(face_normals(verts, faces.flip(1)), -n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cube_normals_analytic(dtype):
    v, f = centred_cube()
    verts = as_batch(v, dtype).repeat(2, 1, 1)
    fn = face_normals(verts, torch.as_tensor(f))
    assert fn.shape == (2, 24, 3)
    centroids = torch.as_tensor(v[f].mean(axis=1), dtype=dtype)
    expected_fn = torch.zeros_like(centroids)
    axis = centroids.abs().argmax(dim=1)
    expected_fn[torch.arange(24), axis] = torch.sign(centroids[torch.arange(24), axis])
    torch.testing.assert_close(fn[0], expected_fn)
    vn = vertex_normals(verts, torch.as_tensor(f))
    assert vn.shape == (2, 14, 3) and vn.dtype == dtype
    p = torch.as_tensor(v, dtype=dtype)
    expected = torch.where(p.abs().sum(1, keepdim=True) == 3, p / math.sqrt(3.0), p)
    torch.testing.assert_close(vn[0], expected)
    torch.testing.assert_close(vn[1], expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sphere_normals_radial(dtype):
    v, f = sphere()
    vn = vertex_normals(as_batch(v, dtype), torch.as_tensor(f))[0]
    radial = torch.as_tensor(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=dtype)
    cos = (vn * radial).sum(-1)
    assert float(cos.min()) > math.cos(math.radians(1.0))  # outward, within 1 degree
    torch.testing.assert_close(vn.norm(dim=-1), torch.ones(len(v), dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_normals_unit_at_metre_scale(dtype):
    # A 2 mm triangle expressed in metres must still get a unit normal (eps is tiny).
    v, f = sphere()
    small = as_batch(v, dtype) * 0.01  # radius 1 cm, edges about 2 mm, in metres
    torch.testing.assert_close(vertex_normals(small, torch.as_tensor(f)).norm(dim=-1),
                               torch.ones(1, len(v), dtype=dtype))
    torch.testing.assert_close(face_normals(small, torch.as_tensor(f)).norm(dim=-1),
                               torch.ones(1, len(f), dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_plane_normals(dtype):
    v, f = grid(5, jitter=0.2)
    vn = vertex_normals(as_batch(v, dtype), torch.as_tensor(f))[0]
    torch.testing.assert_close(vn, torch.tensor([0.0, 0.0, 1.0], dtype=dtype).expand(25, 3))


def test_normals_numpy_in_numpy_out():
    v, f = centred_cube()
    out = vertex_normals(v[None], f)
    assert isinstance(out, np.ndarray) and out.shape == (1, 14, 3)
    assert isinstance(face_normals(v[None].astype(np.float32), f), np.ndarray)


def test_degenerate_and_isolated_give_zero_and_finite_gradients():
    verts = torch.tensor(
        [[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0],  # collinear face
          [0.0, 1.0, 0.0],  # face (0, 3, 3) repeats a vertex
          [5.0, 5.0, 5.0]]],  # isolated vertex
        dtype=torch.float64, requires_grad=True,
    )
    faces = torch.tensor([[0, 1, 2], [0, 3, 3]])
    fn = face_normals(verts, faces)
    vn = vertex_normals(verts, faces)
    assert torch.equal(fn, torch.zeros_like(fn))
    assert torch.equal(vn, torch.zeros_like(vn))
    (fn.sum() + vn.sum() + (vn * torch.randn_like(vn)).sum()).backward()
    assert torch.isfinite(verts.grad).all()


def test_cancelling_neighbourhood_is_zero():
    # The same triangle with both windings: the face normals cancel at every vertex.
    verts = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [0.0, 1, 0]]], requires_grad=True)
    vn = vertex_normals(verts, torch.tensor([[0, 1, 2], [0, 2, 1]]))
    assert torch.equal(vn, torch.zeros_like(vn))
    vn.square().sum().backward()
    assert torch.isfinite(verts.grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_faces(dtype):
    verts = torch.randn(2, 4, 3, dtype=dtype)
    faces = torch.zeros(0, 3, dtype=torch.int64)
    assert face_normals(verts, faces).shape == (2, 0, 3)
    vn = vertex_normals(verts, faces)
    assert vn.shape == (2, 4, 3) and torch.equal(vn, torch.zeros_like(vn))
    assert mesh_edges(faces, 4).shape == (0, 2)
    assert not boundary_vertices(faces, 4).any()
    assert torch.equal(laplacian(faces, 4).to_dense(), torch.zeros(4, 4))
    offsets, indices = vertex_neighbors(faces, 4)
    assert torch.equal(offsets, torch.zeros(5, dtype=torch.int64)) and indices.numel() == 0


def test_normals_gradcheck():
    torch.manual_seed(0)
    v, f = sphere()
    keep = f[:12]
    used = np.unique(keep)
    remap = np.full(len(v), -1)
    remap[used] = np.arange(len(used))
    faces = torch.as_tensor(remap[keep])
    verts = (torch.as_tensor(v[used])[None] + 0.05 * torch.randn(1, len(used), 3,
                                                                 dtype=torch.float64))
    verts.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: vertex_normals(x, faces), (verts,))
    assert torch.autograd.gradcheck(lambda x: face_normals(x, faces), (verts,))


def test_normals_two_triangle_gradcheck():
    verts = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0.1], [1.0, 1, 0], [0.0, 1, 0.3]]],
                         dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert torch.autograd.gradcheck(lambda x: vertex_normals(x, faces), (verts,))


def test_normals_bad_input():
    verts = torch.zeros(1, 3, 3)
    faces = torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match=r"verts: expected \(B, V, 3\), got \(3, 3\)"):
        vertex_normals(verts[0], faces)
    with pytest.raises(TypeError, match="verts: expected float32 or float64"):
        vertex_normals(verts.long(), faces)
    with pytest.raises(ValueError, match="verts: expected finite"):
        vertex_normals(torch.full((1, 3, 3), float("nan")), faces)
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 3\)"):
        vertex_normals(verts, torch.tensor([[0, 1, 3]]))
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 3\)"):
        face_normals(verts, torch.tensor([[0, -1, 2]]))
    with pytest.raises(TypeError, match="faces: expected an integer dtype"):
        face_normals(verts, faces.float())
    with pytest.raises(ValueError, match=r"faces: expected \(F, 3\), got \(1, 4\)"):
        face_normals(verts, torch.tensor([[0, 1, 2, 0]]))
    with pytest.raises(TypeError, match=r"verts: expected a torch\.Tensor"):
        vertex_normals([[[0.0, 0, 0]]], faces)


# --------------------------------------------------------------------------- connectivity
def test_edges_tetrahedron_and_euler():
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    e = mesh_edges(faces)
    expected = torch.tensor([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    assert e.dtype == torch.int64 and torch.equal(e, expected)
    v, f = sphere()
    e = mesh_edges(f, len(v))
    assert isinstance(e, np.ndarray) and (e[:, 0] < e[:, 1]).all()
    assert len(v) - len(e) + len(f) == 2  # closed genus-0 surface
    assert len(np.unique(e, axis=0)) == len(e)


def test_edges_bad_input():
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 2\)"):
        mesh_edges(torch.tensor([[0, 1, 2]]), 2)
    with pytest.raises(ValueError, match="num_vertices: expected an int >= 0"):
        mesh_edges(torch.tensor([[0, 1, 2]]), -1)
    with pytest.raises(TypeError, match="num_vertices: expected an int"):
        vertex_adjacency(torch.tensor([[0, 1, 2]]), 3.0)


def test_adjacency_and_neighbors_agree():
    _, f = grid(4)
    adj = vertex_adjacency(f, 16)
    assert adj.is_sparse and adj.shape == (16, 16) and adj.dtype == torch.float32
    dense = adj.to_dense()
    assert torch.equal(dense, dense.T) and torch.all(dense.diagonal() == 0)
    assert set(dense.unique().tolist()) == {0.0, 1.0}
    offsets, indices = vertex_neighbors(torch.as_tensor(f), 17)  # vertex 16 isolated
    assert offsets.shape == (18,) and offsets[-1] == indices.numel() == 2 * len(mesh_edges(f))
    assert offsets[16] == offsets[17]
    for i in range(16):
        ring = indices[offsets[i]:offsets[i + 1]]
        assert torch.equal(ring, torch.nonzero(dense[i]).flatten())
    # Corner 0 of the grid touches 1, 4 and 5; an interior vertex has valence 6.
    assert indices[offsets[0]:offsets[1]].tolist() == [1, 4, 5]
    assert int(offsets[6] - offsets[5]) == 6
    o_np, i_np = vertex_neighbors(f, 16)
    assert isinstance(o_np, np.ndarray) and isinstance(i_np, np.ndarray)


def test_boundary_vertices():
    _, f = grid(5)
    b = boundary_vertices(f, 25)
    assert isinstance(b, np.ndarray) and b.dtype == bool
    ij = np.stack(np.meshgrid(np.arange(5), np.arange(5), indexing="ij"), -1).reshape(-1, 2)
    assert np.array_equal(b, (ij == 0).any(1) | (ij == 4).any(1))
    vs, fs = sphere()
    assert not boundary_vertices(torch.as_tensor(fs), len(vs)).any()
    tri = boundary_vertices(torch.tensor([[0, 1, 2]]), 4)
    assert tri.tolist() == [True, True, True, False]


# ----------------------------------------------------------------------------- Laplacians
def test_uniform_laplacian_is_d_minus_a():
    v, f = sphere()
    n = len(v)
    L = laplacian(torch.as_tensor(f), n)
    assert L.is_sparse and L.shape == (n, n) and L.dtype == torch.float32
    dense = L.to_dense()
    a = vertex_adjacency(f, n).to_dense()
    torch.testing.assert_close(dense, torch.diag(a.sum(1)) - a)
    assert torch.allclose(dense.sum(1), torch.zeros(n))
    # Sign: positive semi-definite; (L x)_i = deg_i x_i - sum_j x_j points outward on a sphere.
    x = torch.as_tensor(v, dtype=torch.float32)
    lx = dense @ x
    assert ((lx * x).sum(1) > 0).all()
    vc, fc = centred_cube()
    cube = laplacian(fc, len(vc), dtype=torch.float64).to_dense()
    assert float(torch.linalg.eigvalsh(cube).min()) > -1e-9


@pytest.mark.parametrize("dtype", DTYPES)
def test_cotangent_laplacian_golden_square(dtype):
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [1.0, 1, 0], [0.0, 1, 0]], dtype=dtype)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    L = laplacian(faces, 4, "cotangent", verts)
    assert L.dtype == dtype
    h = 0.5  # cot(45°) / 2 on the sides; the diagonal faces two right angles: cot(90°) = 0
    expected = torch.tensor([[2 * h, -h, 0, -h], [-h, 2 * h, -h, 0],
                             [0, -h, 2 * h, -h], [-h, 0, -h, 2 * h]], dtype=dtype)
    torch.testing.assert_close(L.to_dense(), expected)


def test_cotangent_laplacian_clamps_obtuse_and_degenerate():
    # Angle of 120° at vertex 0: the opposite edge (1, 2) would get cot(120°)/2 < 0 -> 0.
    s = math.sqrt(3.0) / 2
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [-0.5, s, 0],
                          [0.0, 0, 1], [1.0, 0, 1], [2.0, 0, 1]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])  # second face is degenerate (collinear)
    dense = laplacian(faces, 6, "cotangent", verts).to_dense()
    assert dense[1, 2] == 0 and dense[2, 1] == 0
    torch.testing.assert_close(dense[0, 1], torch.tensor(-0.5 / math.tan(math.radians(30)),
                                                         dtype=torch.float64))
    assert torch.equal(dense[3:, 3:], torch.zeros(3, 3, dtype=torch.float64))
    assert torch.isfinite(dense).all() and (dense - torch.diag(dense.diagonal()) <= 0).all()
    # Gradients stay finite through clamped and degenerate corners (incl. a repeated vertex).
    v = verts.clone().requires_grad_(True)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [3, 3, 4]])
    (laplacian(faces, 6, "cotangent", v).to_dense() ** 2).sum().backward()
    assert torch.isfinite(v.grad).all()


def test_cotangent_linear_precision_on_plane():
    # The cotangent Laplacian vanishes on linear functions at interior vertices of a planar
    # mesh (linear precision) as long as no angle is obtuse (no clamping kicks in).
    v, f = tri_lattice(7, jitter=0.08, seed=3)
    fn = face_normals(torch.as_tensor(v)[None], torch.as_tensor(f))
    assert (fn[..., 2] > 0.99).all()  # every lattice triangle is counter-clockwise
    L = laplacian(f, len(v), "cotangent", torch.as_tensor(v))
    lx = (L.to_dense() @ torch.as_tensor(v))[~torch.as_tensor(boundary_vertices(f, len(v)))]
    torch.testing.assert_close(lx, torch.zeros_like(lx))


def test_cotangent_gradcheck_and_batch_squeeze():
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0.1], [1.0, 1, 0], [0.0, 1, 0.3]],
                         dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert torch.autograd.gradcheck(
        lambda x: laplacian(faces, 4, "cotangent", x).to_dense(), (verts,))
    torch.testing.assert_close(laplacian(faces, 4, "cotangent", verts[None]).to_dense(),
                               laplacian(faces, 4, "cotangent", verts).to_dense())


def test_laplacian_bad_input():
    faces = torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match="kind: expected 'uniform' or 'cotangent'"):
        laplacian(faces, 3, "graph")
    with pytest.raises(ValueError, match="verts: expected"):
        laplacian(faces, 3, "cotangent")
    with pytest.raises(ValueError, match=r"verts: expected \(V, 3\) with V=3"):
        laplacian(faces, 3, "cotangent", torch.zeros(4, 3))
    with pytest.raises(ValueError, match="verts: expected finite"):
        laplacian(faces, 3, "cotangent", torch.full((3, 3), float("inf")))
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 2\)"):
        laplacian(faces, 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_smoothing_loss_values(dtype):
    v, f = sphere()
    n = len(v)
    L = laplacian(f, n)
    verts = torch.as_tensor(v, dtype=dtype)[None].repeat(3, 1, 1)
    verts[1] *= 2.0
    verts[2] += torch.tensor([10.0, -4.0, 3.0], dtype=dtype)  # translation: same loss as [0]
    loss = laplacian_smoothing_loss(verts, L)
    assert loss.shape == (3,) and loss.dtype == dtype
    expected = ((L.to_dense().to(dtype) @ verts[0]) ** 2).sum(-1).mean()
    torch.testing.assert_close(loss[0], expected)
    torch.testing.assert_close(loss[1], 4.0 * expected)
    torch.testing.assert_close(loss[2], loss[0])
    # A noisy sphere is rougher than the sphere.
    noisy = verts[:1] + 0.05 * torch.randn(1, n, 3, dtype=dtype)
    assert laplacian_smoothing_loss(noisy, L) > loss[0]
    assert isinstance(laplacian_smoothing_loss(v[None], L), np.ndarray)


def test_smoothing_loss_gradcheck_and_bad_input():
    verts = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    L = laplacian(faces, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: laplacian_smoothing_loss(x, L), (verts,))
    with pytest.raises(ValueError, match=r"L: expected \(V, V\) with V=4"):
        laplacian_smoothing_loss(verts, laplacian(faces, 5))
    with pytest.raises(TypeError, match="L: expected a torch sparse or dense"):
        laplacian_smoothing_loss(verts, np.eye(4))
    with pytest.raises(ValueError, match=r"verts: expected \(B, V, 3\)"):
        laplacian_smoothing_loss(verts[0], L)


# ------------------------------------------------------------------------------------ kNN
def brute_knn(x: np.ndarray, k: int) -> np.ndarray:
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("dtype", DTYPES)
def test_knn_matches_brute_force(dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    idx = knn_graph(torch.as_tensor(x, dtype=dtype), 10)
    assert idx.shape == (200, 10) and idx.dtype == torch.int64
    assert np.array_equal(idx.numpy(), brute_knn(x, 10))
    assert not (idx == torch.arange(200)[:, None]).any()
    # The torch.cdist path used off the CPU gives the same graph.
    assert np.array_equal(_knn_brute(torch.as_tensor(x), 10).numpy(), brute_knn(x, 10))


def test_knn_batched_numpy_features_and_duplicates():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(2, 50, 6))  # Fan et al.: [position, colour]
    idx = knn_graph(feats, 4)
    assert isinstance(idx, np.ndarray) and idx.shape == (2, 50, 4)
    for b in range(2):
        assert np.array_equal(idx[b], brute_knn(feats[b], 4))
    dup = np.zeros((5, 3))  # all points identical: any other point is a nearest neighbour
    idx = knn_graph(dup, 4)
    for i in range(5):
        assert sorted(idx[i].tolist()) == [j for j in range(5) if j != i]


def test_knn_bad_input():
    x = torch.randn(5, 3)
    with pytest.raises(ValueError, match=r"k: expected 1 <= k <= V - 1 = 4, got 5"):
        knn_graph(x, 5)
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        knn_graph(x, 0)
    with pytest.raises(ValueError, match=r"points: expected \(V, D\) or \(B, V, D\)"):
        knn_graph(x[0], 1)
    with pytest.raises(TypeError, match="points: expected float32 or float64"):
        knn_graph(x.long(), 2)
    with pytest.raises(ValueError, match="points: expected finite"):
        knn_graph(torch.full((5, 3), float("nan")), 2)
