"""The rasterizer's vectorised triangle pass (facelab.raster.triangles): boxes of at most 4
pixels resolved in the pass give, bit for bit, what the scan of every box gives
(``SMALL_BOX_PIXELS = 0`` sends every kept face through the scan) and what the reference
gives, on the cases that decide exactness: ties, edges through pixel centres, degenerate and
edge-on triangles, the near plane, off-screen boxes, chunk boundaries, bad indices,
non-finite results, empty meshes, row bands on 2 threads and the plain-Python kernel."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from raster_bands import forced_bands
from test_raster_cpu import _assert_same

from facelab.raster import cpu, triangles
from facelab.raster.reference import rasterize_reference, resolve_near


def _small_box_mesh(rng, size, dtype=np.float32):
    """(1, V, 3) vertices and faces of small triangles (1-4 box pixels mostly), in more than
    two chunks: vertices on pixel centres and corners (edges through centres: the top-left
    rule decides), three depth levels and repeated triangles with later ids, same or opposite
    winding (depth ties: the smaller id must win, across chunk boundaries too), repeated and
    collinear vertices (zero area), off-screen and partly off-screen boxes, some big ones."""
    tris = []
    for _ in range(260):  # on the half-pixel lattice: centres and corners
        a = rng.integers(-3, 2 * size + 3, 2) / 2.0
        tris.append([a, a + rng.integers(-4, 5, 2) / 2.0, a + rng.integers(-4, 5, 2) / 2.0])
    for _ in range(200):  # anywhere, about a pixel across
        a = rng.uniform(-1.5, size + 1.5, 2)
        tris.append([a, a + rng.uniform(-2, 2, 2), a + rng.uniform(-2, 2, 2)])
    for _ in range(20):  # zero area: a repeated vertex, three collinear ones
        a, d = rng.integers(0, 2 * size, 2) / 2.0, rng.integers(-2, 3, 2) / 2.0
        tris.append([a, a, a + d] if rng.random() < 0.5 else [a, a + d, a + 2 * d])
    for _ in range(10):  # big boxes (the scan) between the small ones
        a = rng.uniform(0, size, 2)
        tris.append([a, a + rng.uniform(-9, 9, 2), a + rng.uniform(-9, 9, 2)])
    xy = np.asarray(tris, dtype=float).reshape(-1, 2)
    z = rng.choice([1.0, 1.5, 2.0], size=(len(xy), 1))
    faces = np.arange(len(xy)).reshape(-1, 3)[rng.permutation(len(tris))]
    faces = np.concatenate([faces, faces[::7], faces[::5, ::-1]])  # ties with later ids
    assert len(faces) > 2 * triangles.CHUNK
    return np.concatenate([xy, z], 1)[None].astype(dtype), faces


def _run(verts, faces, size, pc=False, cull=False, near=None, counts=False):
    near_z = resolve_near(near, pc)
    if counts:
        return cpu.rasterize_numba_counts(verts, faces, size, size, pc, cull, near_z)
    return [a.copy() for a in cpu.rasterize_numba(verts, faces, size, size, pc, cull, near_z)]


def _scan_only(monkeypatch, fn, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(cpu, "SMALL_BOX_PIXELS", 0)
        return fn(*args, **kwargs)


def test_the_mesh_exercises_the_pass():
    """Most faces of the test mesh have boxes of 1-4 pixels (resolved by the pass)."""
    verts, faces = _small_box_mesh(np.random.default_rng(0), 24)
    t = verts[0][faces].astype(np.float64)
    first = np.clip(np.ceil(t[..., :2].min(1) - 0.5), 0, 24)
    last = np.clip(np.floor(t[..., :2].max(1) - 0.5), -1, 23)
    n_box = np.prod(np.maximum(last - first + 1, 0), axis=1)
    assert ((n_box >= 1) & (n_box <= 4)).mean() > 0.5 and (n_box > 4).sum() >= 10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pc", [False, True])
@pytest.mark.parametrize("cull", [False, True])
def test_pass_matches_scan_and_reference(monkeypatch, dtype, pc, cull):
    """Small boxes resolved in the pass == every box scanned == the reference, bit for bit
    (face ids, barycentrics, depth), with a near plane that cuts through the depth levels."""
    rng = np.random.default_rng(1 + 2 * pc + cull)
    size = 24
    verts, faces = _small_box_mesh(rng, size, dtype)
    near = 1.2 if pc else None  # pc: the 1.0 level is behind the near plane
    ref = rasterize_reference(verts, faces, size, size, pc, cull, near)
    got = _run(verts, faces, size, pc, cull, near)
    scan = _scan_only(monkeypatch, _run, verts, faces, size, pc, cull, near)
    _assert_same(ref, got)
    _assert_same(ref, scan)
    covered = got[0] >= 0
    assert covered.sum() > 25 and len(np.unique(got[0][covered])) > 25  # not vacuous


@pytest.mark.parametrize("n_bands", [2, 3, 4])
def test_row_bands_on_two_threads(monkeypatch, n_bands):
    """Batch 1 split into 2-4 row bands on 2 threads (each band clips the pass's boxes to
    its rows): the serial twin's and the reference's results bit for bit."""
    rng = np.random.default_rng(10 + n_bands)
    size = 29  # bands of 15/14, 10/10/9, 8/8/8/5 rows
    verts, faces = _small_box_mesh(rng, size)
    ref = rasterize_reference(verts, faces, size, size, False, False, None)
    with forced_bands(monkeypatch, n_bands):
        banded = _run(verts, faces, size)
        numba.set_num_threads(1)
        serial = _run(verts, faces, size)
    _assert_same(ref, banded)
    _assert_same(ref, serial)


def test_batch_items_are_independent(monkeypatch):
    """A batch of different poses: each item == that item alone, pass and scan alike."""
    rng = np.random.default_rng(5)
    size = 20
    verts, faces = _small_box_mesh(rng, size)
    batch = np.concatenate([verts, verts[:, ::-1] * np.float32([1, 1, 0.5])], 0)[:, :, :]
    batch = np.ascontiguousarray(batch)
    got = _run(batch, faces, size)
    scan = _scan_only(monkeypatch, _run, batch, faces, size)
    for b in range(2):
        alone = _run(np.ascontiguousarray(batch[b:b + 1]), faces, size)
        _assert_same(alone, [a[b:b + 1] for a in got])
        _assert_same(alone, [a[b:b + 1] for a in scan])


def test_bad_face_indices_counted_on_both_paths(monkeypatch):
    """Indices outside [0, V) (negative, V, huge) are counted, not read, by the gather; the
    public rasterize raises for them."""
    rng = np.random.default_rng(6)
    verts, faces = _small_box_mesh(rng, 16)
    faces = faces.copy()
    V = verts.shape[1]
    faces[[3, 300, 600], [0, 1, 2]] = [-1, V, 2**40]
    got = _run(verts, faces, 16, counts=True)
    scan = _scan_only(monkeypatch, _run, verts, faces, 16, counts=True)
    assert got[5] == scan[5] == 3
    import torch

    import facelab as fl

    with pytest.raises(ValueError, match="faces"):
        fl.rasterize(torch.from_numpy(verts), torch.from_numpy(faces), 16, 16)


def test_non_finite_results_counted_alike(monkeypatch):
    """Perspective-correct barycentrics of triangles at depth ~1e-44 overflow (1/z): both
    paths write the same NaN/Inf values and count them."""
    rng = np.random.default_rng(7)
    verts, faces = _small_box_mesh(rng, 16)
    verts = verts.copy()
    verts[0, ::5, 2] = 1e-44  # subnormal: 1 / z overflows
    got = _run(verts, faces, 16, pc=True, near=0.0, counts=True)
    scan = _scan_only(monkeypatch, _run, verts, faces, 16, pc=True, near=0.0, counts=True)
    assert got[4] > 0 and got[4] == scan[4]
    for a, b in zip(got[:3], scan[:3], strict=True):
        np.testing.assert_array_equal(a, b)  # NaN == NaN here
    assert not np.isfinite(got[1]).all()


@pytest.mark.parametrize("V, F", [(0, 0), (5, 0), (0, 4)])
def test_empty_meshes(V, F):
    """No faces: empty outputs; faces but no vertex: every face counted as bad."""
    verts = np.ones((1, V, 3), np.float32)
    faces = np.zeros((F, 3), np.int64)
    fi, bary, depth, bad, nonfinite, bad_faces = _run(verts, faces, 8, counts=True)
    assert (fi == -1).all() and (bary == 0).all() and (depth == 0).all()
    assert (bad, nonfinite, bad_faces) == (0, 0, F)


def test_plain_python_kernel_gives_the_compiled_results(monkeypatch):
    """The undecorated kernel with the undecorated pass (as under NUMBA_DISABLE_JIT) computes
    what the compiled ones compute, small boxes and large."""
    rng = np.random.default_rng(8)
    size = 10
    verts, faces = _small_box_mesh(rng, size)
    faces = faces[:300]
    expected = _run(verts, faces, size)
    monkeypatch.setattr(cpu, "gather_corners", triangles._gather_corners_py)
    monkeypatch.setattr(cpu, "triangle_pass", triangles._triangle_pass_py)
    monkeypatch.setattr(cpu, "compact", triangles._compact_py)
    xs = cpu._pixel_centres(size, verts.dtype)
    out = (np.empty((1, size, size), np.int64), np.empty((1, size, size, 3), verts.dtype),
           np.empty((1, size, size), verts.dtype))
    nonfinite = np.empty(1, np.int64)
    bad = cpu._rasterize_bands_py(verts, faces, xs, xs, verts.dtype.type(-np.inf), False, False,
                                  verts.dtype.type(1), 1, 4, 4, cpu.RUN_MAX_WIDTH,
                                  np.empty((1, size, size), np.float32), *out, nonfinite,
                                  cpu._NO_CTL, -1)
    assert bad == 0 and nonfinite[0] == 0
    _assert_same(expected, out)
    assert (out[0] >= 0).mean() > 0.3
