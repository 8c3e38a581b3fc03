"""The NumPy reference rasterizer (the definition) and the public rasterize entry point.

The mesh helpers here are imported by the other raster test modules.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import facelab.raster as R
from facelab.raster import cpu
from facelab.raster.reference import (
    edge_function,
    interpolate_reference,
    rasterize_reference,
    vertex_visibility_reference,
)

# ----------------------------------------------------------------------------- mesh helpers


def grid_mesh(n: int, step: float, origin=(0.5, 0.5), flip=None, seed=0):
    """(V, 3) vertices on pixel centres (an n x n lattice, spacing ``step``) and (F, 3) faces.

    Front-facing on screen (positive E(v1, v2, v0)); diagonals chosen at random so edges
    run in every direction; depth 1. flip=True reverses every triangle (back-facing).
    """
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.arange(n) * step + origin[1], np.arange(n) * step + origin[0],
                         indexing="ij")
    verts = np.stack([xs, ys, np.ones_like(xs)], axis=-1).reshape(-1, 3)
    idx = np.arange(n * n).reshape(n, n)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = idx[i, j], idx[i, j + 1], idx[i + 1, j], idx[i + 1, j + 1]
            if rng.random() < 0.5:
                faces += [[a, c, b], [b, c, d]]
            else:
                faces += [[a, c, d], [a, d, b]]
    faces = np.array(faces, dtype=np.int64)
    if flip:
        faces = faces[:, [0, 2, 1]]
    return verts, faces


def fan_mesh(centre=(16.5, 16.5), radius=12.0, spokes=16):
    """A fan of triangles around a pixel centre whose spokes end on pixel centres."""
    angles = np.linspace(0, 2 * np.pi, spokes, endpoint=False)
    rim = np.stack([np.round(centre[0] + radius * np.cos(angles) - 0.5) + 0.5,
                    np.round(centre[1] + radius * np.sin(angles) - 0.5) + 0.5], axis=-1)
    verts = np.concatenate([[centre], rim])
    verts = np.concatenate([verts, np.full((len(verts), 1), 2.0)], axis=1)
    faces = np.array([[0, 1 + (k + 1) % spokes, 1 + k] for k in range(spokes)])
    area = [edge_function(*verts[f[1], :2], *verts[f[2], :2], *verts[f[0], :2]) for f in faces]
    if np.mean(area) < 0:
        faces = faces[:, [0, 2, 1]]
    return verts, faces


def sphere_mesh(n: int = 12):
    """Unit UV sphere in model space (y up), faces counter-clockwise seen from outside."""
    th = np.linspace(0, np.pi, n)
    ph = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    T, P = np.meshgrid(th, ph, indexing="ij")
    verts = np.stack([np.sin(T) * np.sin(P), np.cos(T), np.sin(T) * np.cos(P)], -1).reshape(-1, 3)
    idx = np.arange(n * 2 * n).reshape(n, 2 * n)
    faces = []
    for i in range(n - 1):
        for j in range(2 * n):
            a, b = idx[i, j], idx[i, (j + 1) % (2 * n)]
            c, d = idx[i + 1, j], idx[i + 1, (j + 1) % (2 * n)]
            faces += [[a, c, b], [b, c, d]]
    return verts, np.array(faces, dtype=np.int64)


def to_screen(model_verts, size, scale=None, depth=10.0):
    """Orthographic model (y up, +z toward camera) -> screen: the y flip and depth = D - z."""
    scale = size * 0.4 if scale is None else scale
    v = np.asarray(model_verts)
    return np.stack([v[..., 0] * scale + size / 2, -v[..., 1] * scale + size / 2,
                     depth - v[..., 2]], axis=-1)


def random_mesh(rng, B, V, F, H, W, zrange=(1.0, 5.0), dtype=np.float32):
    """Random triangle soup reaching past the image borders."""
    verts = np.stack([rng.uniform(-0.2 * W, 1.2 * W, (B, V)), rng.uniform(-0.2 * H, 1.2 * H, (B, V)),
                      rng.uniform(*zrange, (B, V))], axis=-1).astype(dtype)
    return verts, rng.integers(0, V, (F, 3))


def coverage_count(verts, faces, H, W, cull=False):
    """How many triangles cover each pixel centre (each rasterized alone), (H, W)."""
    count = np.zeros((H, W), dtype=np.int64)
    for f in faces:
        fi = rasterize_reference(verts[None], f[None], H, W, cull_backfaces=cull)[0]
        count += fi[0] >= 0
    return count


# ----------------------------------------------------------------------------- crafted cases


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_triangle_values(dtype):
    # right triangle with legs 8 px, pixel centres strictly inside have j + i <= 6 (i, j >= 0)
    v = np.array([[[0.0, 0.0, 1.0], [0.0, 8.0, 3.0], [8.0, 0.0, 5.0]]], dtype=dtype)
    f = np.array([[0, 1, 2]])
    fi, bary, depth = rasterize_reference(v, f, 10, 10)
    i, j = np.mgrid[0:10, 0:10]
    expected = (i + 0.5) + (j + 0.5) < 8  # centres on the hypotenuse (sum == 8) never occur
    np.testing.assert_array_equal(fi[0] == 0, expected)
    assert bary.dtype == dtype and depth.dtype == dtype
    # at pixel (2, 3): p = (3.5, 2.5); b1 = y/8, b2 = x/8, b0 = 1 - b1 - b2
    np.testing.assert_allclose(bary[0, 2, 3], [1 - 2.5 / 8 - 3.5 / 8, 2.5 / 8, 3.5 / 8], rtol=1e-6)
    np.testing.assert_allclose(depth[0, 2, 3], (1 - 6 / 8) * 1 + 2.5 / 8 * 3 + 3.5 / 8 * 5,
                               rtol=1e-6)
    np.testing.assert_allclose(bary[0].sum(-1)[expected], 1, rtol=1e-6)
    assert (bary[0][~expected] == 0).all() and (depth[0][~expected] == 0).all()


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_grid_on_pixel_centres_is_watertight(flip, seed):
    verts, faces = grid_mesh(5, 4.0, flip=flip, seed=seed)  # edges through pixel centres
    count = coverage_count(verts, faces, 20, 20)
    assert count.max() == 1, "double coverage"
    # the union equals the hull square rasterized as two triangles (same outer edges)
    hull = np.array([[0.5, 0.5, 1], [16.5, 0.5, 1], [0.5, 16.5, 1], [16.5, 16.5, 1]])
    hull_faces = np.array([[0, 2, 1], [1, 2, 3]])[:, [0, 2, 1] if flip else [0, 1, 2]]
    hull_count = coverage_count(hull, hull_faces, 20, 20)
    np.testing.assert_array_equal(count, hull_count)
    assert count[1:16, 1:16].min() == 1, "crack inside the mesh"


def test_fan_on_pixel_centres_is_watertight():
    verts, faces = fan_mesh()
    count = coverage_count(verts, faces, 33, 33)
    assert count.max() == 1
    assert count[16, 16] == 1  # the shared centre vertex is owned once
    inside = coverage_count(verts, faces[:, [0, 2, 1]], 33, 33)  # reversed winding, same set
    np.testing.assert_array_equal(count, inside)


def test_coplanar_overlap_smaller_id_wins():
    tri = np.array([[1.0, 1.0, 2.0], [1.0, 9.0, 2.0], [9.0, 1.0, 2.0]])
    verts = np.concatenate([tri, tri])[None]
    fi, _, _ = rasterize_reference(verts, np.array([[3, 4, 5], [0, 1, 2]]), 10, 10)
    assert set(np.unique(fi)) == {-1, 0}
    fi, _, _ = rasterize_reference(verts, np.array([[0, 1, 2], [3, 4, 5]]), 10, 10)
    assert set(np.unique(fi)) == {-1, 0}


def test_nearest_wins():
    near_tri = [[1.0, 1.0, 2.0], [1.0, 9.0, 2.0], [9.0, 1.0, 2.0]]
    far_tri = [[0.0, 0.0, 3.0], [0.0, 10.0, 3.0], [10.0, 0.0, 3.0]]
    verts = np.array([far_tri + near_tri])
    fi, _, depth = rasterize_reference(verts, np.array([[0, 1, 2], [3, 4, 5]]), 10, 10)
    assert fi[0, 2, 2] == 1 and depth[0, 2, 2] == 2.0
    assert fi[0, 0, 8] == 0  # only the far one reaches there


def test_winding_front_facing_after_camera_flip():
    # a model-space triangle, counter-clockwise seen from +z (y up), faces the camera
    model = np.array([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, 0.0]])
    assert np.cross(model[1] - model[0], model[2] - model[0])[2] > 0
    screen = to_screen(model, 20)[None]
    f = np.array([[0, 1, 2]])
    assert (rasterize_reference(screen, f, 20, 20, cull_backfaces=True)[0] >= 0).any()
    assert (rasterize_reference(screen, f[:, [0, 2, 1]], 20, 20, cull_backfaces=True)[0] < 0).all()
    assert (rasterize_reference(screen, f[:, [0, 2, 1]], 20, 20)[0] >= 0).any()


def test_sphere_culling_keeps_the_near_side():
    verts, faces = sphere_mesh()
    screen = to_screen(verts, 32)[None]
    culled = rasterize_reference(screen, faces, 32, 32, cull_backfaces=True)
    full = rasterize_reference(screen, faces, 32, 32)
    np.testing.assert_array_equal(culled[0], full[0])  # convex: nearest == front-facing
    assert (verts[faces[culled[0][culled[0] >= 0]]][..., 2].mean(-1) > 0).all()


def test_near_plane_and_behind_camera():
    tri = np.array([[[1.0, 1.0, 2.0], [1.0, 9.0, 2.0], [9.0, 1.0, -1.0]]])
    f = np.array([[0, 1, 2]])
    assert (rasterize_reference(tri, f, 10, 10, perspective_correct=True)[0] < 0).all()
    assert (rasterize_reference(tri, f, 10, 10)[0] >= 0).any()  # orthographic: no culling
    assert (rasterize_reference(tri, f, 10, 10, near=-1.0)[0] < 0).all()  # z <= near culled
    assert (rasterize_reference(tri, f, 10, 10, near=-1.5)[0] >= 0).any()
    at_zero = tri.copy()
    at_zero[0, 2, 2] = 0.0
    assert (rasterize_reference(at_zero, f, 10, 10, perspective_correct=True)[0] < 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_degenerate_and_slivers(dtype):
    verts = np.array([[[1.5, 1.5, 1], [5.5, 5.5, 1], [9.5, 9.5, 1],  # collinear on centres
                       [2.5, 7.5, 1], [2.5, 7.5, 1], [8.5, 3.5, 1],  # repeated vertex
                       [0.0, 0.0, 1], [10.0, 10.0, 1], [10.0, 10.0 + 1e-5, 1]]],  # sliver
                     dtype=dtype)
    fi, bary, depth = rasterize_reference(verts, np.array([[0, 1, 2], [3, 4, 5]]), 12, 12)
    assert (fi < 0).all()
    fi, bary, depth = rasterize_reference(verts, np.array([[6, 7, 8]]), 12, 12)
    assert np.isfinite(bary).all() and np.isfinite(depth).all()
    hit = fi >= 0
    assert (bary[hit] >= 0).all() and (bary[hit] <= 1).all()


def test_larger_than_image_and_off_screen():
    big = np.array([[[-1e4, -1e4, 1.0], [-1e4, 3e4, 1.0], [3e4, -1e4, 1.0]]])
    fi, bary, _ = rasterize_reference(big, np.array([[0, 1, 2]]), 8, 6)
    assert (fi == 0).all() and np.allclose(bary.sum(-1), 1)
    off = big + np.array([5e4, 0.0, 0.0])
    assert (rasterize_reference(off, np.array([[0, 1, 2]]), 8, 6)[0] < 0).all()


def test_empty_faces():
    verts = np.zeros((2, 3, 3), dtype=np.float32)
    fi, bary, _depth = rasterize_reference(verts, np.zeros((0, 3), np.int64), 4, 5)
    assert fi.shape == (2, 4, 5) and (fi == -1).all() and (bary == 0).all()


def test_perspective_correct_matches_ray_intersection():
    # a triangle in camera space (x right, y down, z forward), pinhole projection
    tri_cam = np.array([[-40.0, -30.0, 400.0], [50.0, -20.0, 700.0], [-10.0, 60.0, 500.0]])
    fx, cx, cy = 300.0, 32.0, 32.0
    uv = tri_cam[:, :2] * fx / tri_cam[:, 2:] + [cx, cy]
    screen = np.concatenate([uv, tri_cam[:, 2:]], axis=1)[None]
    fi, bary, depth = rasterize_reference(screen, np.array([[0, 1, 2]]), 64, 64,
                                          perspective_correct=True)
    for i, j in [(20, 30), (30, 30), (35, 25)]:
        assert fi[0, i, j] == 0
        ray = np.array([(j + 0.5 - cx) / fx, (i + 0.5 - cy) / fx, 1.0])
        # solve t * ray = b0 P0 + b1 P1 + b2 P2 with sum(b) = 1
        A = np.column_stack([tri_cam[0] - tri_cam[2], tri_cam[1] - tri_cam[2], -ray])
        b0, b1, t = np.linalg.solve(A, -tri_cam[2])
        np.testing.assert_allclose(bary[0, i, j], [b0, b1, 1 - b0 - b1], atol=1e-12)
        np.testing.assert_allclose(depth[0, i, j], t, rtol=1e-12)


def test_interpolate_reference_values():
    v = np.array([[[0.0, 0.0, 1.0], [0.0, 8.0, 1.0], [8.0, 0.0, 1.0]]])
    f = np.array([[0, 1, 2]])
    fi, bary, _ = rasterize_reference(v, f, 8, 8)
    attrs = v[..., :2]  # interpolating the positions gives the pixel centres
    out = interpolate_reference(attrs, fi, bary, f)
    hit = fi[0] >= 0
    i, j = np.nonzero(hit)
    np.testing.assert_allclose(out[0][hit], np.stack([j + 0.5, i + 0.5], -1), atol=1e-12)
    assert (out[0][~hit] == 0).all()


# ----------------------------------------------------------------------------- public entry


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rasterize_public_matches_reference(dtype):
    rng = np.random.default_rng(3)
    verts, faces = random_mesh(rng, 2, 40, 60, 16, 20, dtype=np.float64)
    frags = R.rasterize(torch.tensor(verts, dtype=dtype), torch.tensor(faces), 16, 20)
    fi, bary, depth = rasterize_reference(torch.tensor(verts, dtype=dtype).numpy(), faces, 16, 20)
    assert frags.face_index.dtype == torch.int64 and frags.bary.dtype == dtype
    assert frags.face_index.shape == (2, 16, 20) and frags.bary.shape == (2, 16, 20, 3)
    np.testing.assert_array_equal(frags.face_index.numpy(), fi)
    np.testing.assert_array_equal(frags.bary.numpy(), bary)
    np.testing.assert_array_equal(frags.depth.numpy(), depth)


def test_rasterize_numpy_in_numpy_out():
    v, f = grid_mesh(3, 4.0)
    frags = R.rasterize(v[None].astype(np.float32), f, 10, 10)
    assert isinstance(frags.face_index, np.ndarray) and frags.bary.dtype == np.float32


@pytest.mark.parametrize("bad, err, match", [
    (lambda v, f: (v[0], f, 8, 8), ValueError, r"screen_verts: expected \(B, V, 3\)"),
    (lambda v, f: (v.int(), f, 8, 8), TypeError, "screen_verts: expected float32 or float64"),
    (lambda v, f: (v.masked_fill(v > 3, float("nan")), f, 8, 8), ValueError, "NaN"),
    (lambda v, f: (v.masked_fill(v > 3, float("inf")), f, 8, 8), ValueError, "NaN/Inf"),
    (lambda v, f: (v.masked_fill(v > 3, 1e13), f, 8, 8), ValueError,
     r"screen_verts: expected \|coordinates\| <= 1e\+12, got a value of magnitude 1e\+13"),
    (lambda v, f: (v.masked_fill(v > 3, -1e13).double(), f, 8, 8), ValueError, "magnitude"),
    (lambda v, f: (v, f + 100, 8, 8), ValueError, r"faces: expected indices in \[0, 9\)"),
    (lambda v, f: (v, f - 5, 8, 8), ValueError, "faces"),
    (lambda v, f: (v, f[:, :2], 8, 8), ValueError, r"faces: expected \(F, 3\)"),
    (lambda v, f: (v, f.float(), 8, 8), TypeError, "faces: expected an integer dtype"),
    (lambda v, f: (v, f, 0, 8), ValueError, "height"),
    (lambda v, f: (v, f, 8, 2.5), TypeError, "width"),
    (lambda v, f: ([[0.0]], f, 8, 8), TypeError, "screen_verts"),
])
def test_rasterize_bad_input(bad, err, match):
    v, f = grid_mesh(3, 4.0)
    args = bad(torch.tensor(v)[None], torch.tensor(f))
    with pytest.raises(err, match=match):
        R.rasterize(*args)


def test_bad_vertices_raise_in_vertex_visibility_too():
    v, f = grid_mesh(3, 4.0)
    verts = torch.tensor(v)[None].masked_fill(torch.tensor(v)[None] > 3, float("nan"))
    with pytest.raises(ValueError, match="screen_verts: expected finite values"):
        R.vertex_visibility(verts, torch.tensor(f), 8, 8)


def test_outputs_held_by_a_caller_are_never_recycled():
    """The CPU path recycles output arrays only once nothing refers to them."""
    v, f = grid_mesh(3, 4.0)
    verts, faces = torch.tensor(v, dtype=torch.float32)[None], torch.tensor(f)
    first = R.rasterize(verts, faces, 10, 10)
    kept = first.bary[0, 2:]  # a view keeps the storage alive
    saved = kept.clone()
    ptr = first.bary.data_ptr()
    del first
    second = R.rasterize(verts + 0.3, faces, 10, 10)
    assert second.bary.data_ptr() != ptr  # still referenced through the view
    assert torch.equal(kept, saved)
    ptr2 = second.bary.data_ptr()
    del second
    third = R.rasterize(verts, faces, 10, 10)
    assert third.bary.data_ptr() == ptr2  # nobody held the second call's outputs: recycled
    fi, bary, depth = rasterize_reference(v[None].astype(np.float32), f, 10, 10)
    np.testing.assert_array_equal(third.face_index.numpy(), fi)
    np.testing.assert_array_equal(third.bary.numpy(), bary)
    np.testing.assert_array_equal(third.depth.numpy(), depth)


def test_face_indices_are_checked_on_every_call_whatever_the_edit():
    """Face indices are checked on every call (by the kernel on CPU): in-place edits, another
    V, edits torch's version counter does not see (through NumPy, through ``.data``) and a
    new tensor over the same memory all raise instead of reading out of bounds (a check
    cached per tensor and ``_version`` segfaulted on the NumPy and ``.data`` edits)."""
    v, f = grid_mesh(3, 4.0)
    verts, faces = torch.tensor(v)[None], torch.tensor(f)
    R.rasterize(verts, faces, 8, 8)  # valid
    R.rasterize(verts, faces, 8, 8)
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 4\)"):
        R.rasterize(verts[:, :4], faces, 8, 8)  # another V: checked again
    faces[0, 0] = 100  # in place: the version changes
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 9\)"):
        R.rasterize(verts, faces, 8, 8)
    faces.view(-1)[1] = -1  # through a view: shared version counter
    faces[0, 0] = 0
    with pytest.raises(ValueError, match="faces"):
        R.rasterize(verts, faces, 8, 8)
    array = np.array(f, dtype=np.int64)  # a copy: f stays the valid original
    shared = torch.from_numpy(array)
    R.rasterize(verts, shared, 8, 8)  # valid
    array[-1, 2] = 10**9  # through NumPy: torch's version counter does not change
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 9\), got values "
                                         r"in \[0, 1000000000\]"):
        R.rasterize(verts, shared, 8, 8)
    array[-1, 2] = f[-1, 2]
    R.rasterize(verts, shared, 8, 8)
    shared.data[0, 1] = -3  # through .data: not counted either
    with pytest.raises(ValueError, match=r"got values in \[-3, 8\]"):
        R.rasterize(verts, shared, 8, 8)
    shared.data[0, 1] = f[0, 1]
    again = torch.from_numpy(array)  # a new tensor over the same memory
    assert again.data_ptr() == shared.data_ptr()
    R.rasterize(verts, again, 8, 8)
    array[3, 0] = 9
    with pytest.raises(ValueError, match=r"\[0, 9\), got values in \[0, 9\]"):
        R.rasterize(verts, again, 8, 8)
    with pytest.raises(ValueError, match=r"\[0, 9\)"):
        R.vertex_visibility(verts, again, 8, 8)
    array[3, 0] = f[3, 0]
    for bad in (9, -1):  # the kernel's own check (validated-input entry point)
        array[0, 0] = bad
        with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 9\)"):
            cpu.rasterize_numba(verts.numpy(), array, 8, 8, False, False, -np.inf)


def test_rasterize_bad_near():
    v, f = grid_mesh(3, 4.0)
    with pytest.raises(ValueError, match="near"):
        R.rasterize(v[None], f, 8, 8, near=float("nan"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vertex_visibility_matches_reference(dtype):
    verts, faces = sphere_mesh(10)
    screen = np.stack([to_screen(verts, 40), to_screen(verts[:, [2, 1, 0]], 40)]).astype(dtype)
    vis = R.vertex_visibility(torch.tensor(screen), torch.tensor(faces), 40, 40)
    assert vis.dtype == torch.bool and vis.shape == (2, len(verts))
    np.testing.assert_array_equal(vis.numpy(),
                                  vertex_visibility_reference(screen, faces, 40, 40))
    # visible on the near hemisphere (away from the steep silhouette), never on the far one
    assert vis[0][verts[:, 2] > 0.5].all() and not vis[0][verts[:, 2] < -0.1].any()


def test_vertex_visibility_occlusion_and_image_bounds():
    front = [[2.0, 2.0, 1.0], [2.0, 18.0, 1.0], [18.0, 2.0, 1.0]]
    behind = [[5.5, 5.5, 3.0], [5.5, 8.5, 3.0], [8.5, 5.5, 3.0], [25.0, 5.0, 3.0]]
    verts = np.array([front + behind])
    faces = np.array([[0, 1, 2], [3, 4, 5], [4, 6, 5]])
    for f in faces:  # all front-facing
        assert edge_function(*verts[0, f[1], :2], *verts[0, f[2], :2], *verts[0, f[0], :2]) > 0
    vis = R.vertex_visibility(verts, faces, 20, 20)
    np.testing.assert_array_equal(vis[0], [True, True, True, False, False, False, False])
    vis = R.vertex_visibility(verts, faces, 20, 20, tolerance=1.0)  # slack beyond the gap
    np.testing.assert_array_equal(vis[0], [True, True, True, True, True, True, False])
    with pytest.raises(ValueError, match="tolerance"):
        R.vertex_visibility(verts, faces, 20, 20, tolerance=-1.0)
