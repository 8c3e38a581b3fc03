"""Numba kernels vs the NumPy reference: rasterize and interpolate, forward and backward."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from raster_bands import banded_and_serial, forced_bands
from test_raster_reference import fan_mesh, grid_mesh, random_mesh, sphere_mesh, to_screen

from facelab.raster import cpu
from facelab.raster.reference import (
    interpolate_backward_reference,
    interpolate_reference,
    pixel_barycentrics_reference,
    rasterize_reference,
    resolve_near,
)


def _both(verts, faces, H, W, pc=False, cull=False, near=None):
    verts = np.ascontiguousarray(verts)
    faces = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1, 3)
    ref = rasterize_reference(verts, faces, H, W, pc, cull, near)
    got = cpu.rasterize_numba(verts, faces, H, W, pc, cull, resolve_near(near, pc))
    return ref, got


def _assert_same(ref, got):
    np.testing.assert_array_equal(got[0], ref[0])  # face_index: exact
    np.testing.assert_array_equal(got[1], ref[1])  # same formulas, same order: exact
    np.testing.assert_array_equal(got[2], ref[2])
    assert got[1].dtype == ref[1].dtype and got[2].dtype == ref[2].dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pc", [False, True])
@pytest.mark.parametrize("cull", [False, True])
def test_random_meshes_match_reference(dtype, pc, cull):
    rng = np.random.default_rng(7)
    verts, faces = random_mesh(rng, 2, 50, 90, 21, 27, dtype=dtype)
    _assert_same(*_both(verts, faces, 21, 27, pc, cull))


@pytest.mark.parametrize("case", ["grid", "grid_flipped", "fan", "sphere", "coplanar",
                                  "behind", "slivers", "huge", "off_screen", "empty"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_crafted_cases_match_reference(case, dtype):
    H = W = 34
    pc, near = False, None
    if case in ("grid", "grid_flipped"):
        v, f = grid_mesh(7, 5.0, flip=case == "grid_flipped")
    elif case == "fan":
        v, f = fan_mesh()
    elif case == "sphere":
        v, f = sphere_mesh(14)
        v = to_screen(v, H)
    elif case == "coplanar":
        tri = np.array([[1.0, 1.0, 2.0], [1.0, 30.0, 2.0], [30.0, 1.0, 2.0]])
        v, f = np.concatenate([tri, tri, tri]), np.array([[6, 7, 8], [3, 4, 5], [0, 1, 2]])
    elif case == "behind":
        v = np.array([[1.0, 1.0, 2.0], [1.0, 30.0, 2.0], [30.0, 1.0, -1.0],
                      [3.0, 3.0, 0.0], [3.0, 20.0, 1.0], [20.0, 3.0, 1.0],
                      [2.0, 2.0, 5.0], [2.0, 25.0, 5.0], [25.0, 2.0, 5.0]])
        f, pc = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]]), True
    elif case == "slivers":
        v = np.array([[1.5, 1.5, 1], [5.5, 5.5, 1], [9.5, 9.5, 1], [0.0, 0.0, 1],
                      [30.0, 30.0, 1], [30.0, 30.0 + 1e-4, 1], [2.5, 7.5, 1], [8.5, 3.5, 1]])
        f = np.array([[0, 1, 2], [3, 4, 5], [6, 6, 7], [3, 5, 4]])
    elif case == "huge":
        v = np.array([[-1e5, -1e5, 1.0], [-1e5, 3e5, 2.0], [3e5, -1e5, 3.0]])
        f = np.array([[0, 1, 2]])
    elif case == "off_screen":
        v = np.array([[-1e5, -1e5, 1.0], [-1e5, -5e4, 2.0], [-5e4, -1e5, 3.0],
                      [40.0, 1.0, 1.0], [50.0, 1.0, 1.0], [45.0, 30.0, 1.0]])
        f = np.array([[0, 1, 2], [3, 5, 4]])
    else:
        v, f = np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int64)
    verts = np.repeat(np.asarray(v, dtype=dtype)[None], 2, axis=0)
    ref, got = _both(verts, f, H, W, pc, False, near)
    _assert_same(ref, got)
    assert np.isfinite(got[1]).all() and np.isfinite(got[2]).all()
    if case in ("slivers", "empty", "off_screen"):
        assert (got[0] < 0).all()
    if case == "huge":
        assert (got[0] == 0).all()


@pytest.mark.parametrize("B", [1, 16])
def test_batch_sizes(B):
    rng = np.random.default_rng(B)
    verts, faces = random_mesh(rng, B, 30, 40, 12, 13)
    _assert_same(*_both(verts, faces, 12, 13))


def test_row_bands_match_exactly_with_ties(monkeypatch):
    """With fewer items than threads, each item's rows are split into bands (one task each)."""
    rng = np.random.default_rng(11)
    verts, faces = random_mesh(rng, 1, 400, 5000, 24, 24)
    verts[..., 2] = np.round(verts[..., 2])  # many equal depths: tie-breaking by id matters
    with forced_bands(monkeypatch, 2):  # 24 x 24 would run serial
        ref, got = _both(verts, faces, 24, 24)
    _assert_same(ref, got)


@pytest.mark.parametrize("n_bands", [1, 2, 3, 7])
@pytest.mark.parametrize("H", [1, 5, 13])
def test_any_band_count_matches_reference(monkeypatch, n_bands, H):
    """Uneven and empty bands (more bands than rows) give the reference's fragments."""
    rng = np.random.default_rng(H)
    verts, faces = random_mesh(rng, 2, 60, 300, H, 11)
    with forced_bands(monkeypatch, n_bands, threads=None):  # parallel if 2+ threads
        _assert_same(*_both(verts, faces, H, 11))


def test_launch_plan():
    """Small calls run the serial twins (a parallel launch costs more than it saves); one image
    on 2+ threads is split by faces between the caller and helper threads (up to
    ``MAX_SPLIT_HELPERS``, 1) once the mesh has ``SPLIT_MIN_FACES`` faces, else it runs serially
    below ``BAND_MIN_PIXELS`` and in row bands above; a batch feeds the threads with items;
    the vertex pass goes parallel only for many vertices in a batch."""
    band = int(np.ceil(np.sqrt(cpu.BAND_MIN_PIXELS)))
    big, small = 37538, cpu.SPLIT_MIN_FACES - 1
    assert cpu._launch_plan(1, 19044, big, 64, 64, threads=2) == (1, 1, 1, 0)  # < 181²
    assert cpu._launch_plan(1, 19044, big, 224, 224, threads=2) == (1, 1, 1, 1)
    assert cpu._launch_plan(1, 19044, big, 512, 512, threads=8) == (1, 1, 1, 1)
    assert cpu._launch_plan(1, 19044, big, band, band, threads=2) == (1, 1, 1, 1)
    assert cpu._launch_plan(1, 19044, small, 512, 512, threads=2) == (1, 1, 1, 0)
    assert cpu._launch_plan(1, 19044, small, band, band, threads=2) == (1, 2, 2, 0)
    assert cpu._launch_plan(1, 0, big, 224, 224, threads=2) == (1, 1, 1, 0)  # no vertices
    assert cpu._launch_plan(1, 19044, big, 224, 224, threads=1) == (1, 1, 1, 0)
    assert cpu._launch_plan(16, 19044, big, 224, 224, threads=2) == (2, 2, 1, 0)
    assert cpu._launch_plan(2, 100, big, 224, 224, threads=2) == (1, 2, 1, 0)
    assert cpu._launch_plan(2, 100, big, 224, 224, threads=4) == (1, 4, 1, 0)
    assert cpu._launch_plan(2, 100, big, band, band, threads=4) == (1, 4, 2, 0)
    assert cpu._launch_plan(4, 10, big, 32, 32, threads=2) == (1, 1, 1, 0)  # 4 x 32² < min


def _band_stress_mesh(rng, size):
    """(1, V, 3) float32 vertices and faces mixing everything the row bands must get right:
    triangle soup with integer depths (ties decided by the smaller id), large triangles (row
    spans) crossing every band boundary, degenerate ones (repeated vertex, collinear),
    off-screen ones and ones with a vertex behind the camera (culled with near=0)."""
    soup, soup_f = random_mesh(rng, 1, 300, 3000, size, size)
    soup[..., 2] = np.round(soup[..., 2])
    span, span_f = _span_cases(rng, size)
    extra = np.array([[2.5, 2.5, 2.0], [9.5, 9.5, 2.0], [20.5, 20.5, 2.0],  # collinear
                      [-50.0, -50.0, 1.0], [-40.0, -60.0, 1.0], [-45.0, -30.0, 1.0],  # off
                      [1.0, 1.0, 2.0], [size - 1.0, 3.0, -1.0], [5.0, size - 1.0, 2.0]],
                     dtype=np.float32)  # one vertex behind the camera
    parts = [soup[0], span[0].astype(np.float32), extra]
    offsets = np.cumsum([0] + [len(p) for p in parts])
    faces = np.concatenate([soup_f, span_f + offsets[1],
                            np.array([[0, 1, 2], [0, 0, 1], [3, 4, 5], [6, 7, 8]]) + offsets[2]])
    order = rng.permutation(len(faces))  # interleave the kinds in id order
    return np.concatenate(parts)[None], faces[order]


@pytest.mark.parametrize("n_bands", [2, 3, 4])
@pytest.mark.parametrize("pc", [False, True])
def test_bands_bit_identical_to_serial(monkeypatch, n_bands, pc):
    """Batch 1 on 2 threads: the banded parallel kernel gives the serial twin's and the
    reference's face ids, barycentrics and depth bit for bit (ties, band-crossing and large
    triangles, degenerate, off-screen and behind-camera ones)."""
    rng = np.random.default_rng(20 + n_bands)
    size = 37  # bands of 19/18, 13/13/11, 10/10/10/7 rows
    verts, faces = _band_stress_mesh(rng, size)
    near = 0.0 if pc else None
    ref = rasterize_reference(verts, faces, size, size, pc, False, near)
    banded, serial = banded_and_serial(monkeypatch, verts, faces, size, pc, near, n_bands)
    _assert_same(ref, banded)
    _assert_same(ref, serial)
    covered = banded[0] >= 0
    assert covered.mean() > 0.5 and len(np.unique(banded[0][covered])) > 30


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 2e12])
def test_bad_vertices_rejected_on_the_band_path(monkeypatch, bad):
    """The vectorised vertex pass counts NaN/Inf/too-large coordinates at batch 1 on any
    thread count, so nothing is rasterized from them."""
    rng = np.random.default_rng(4)
    verts, faces = random_mesh(rng, 1, 200, 400, 120, 120)
    monkeypatch.setattr(cpu, "PARALLEL_MIN_PIXELS", 0)
    monkeypatch.setattr(cpu, "BAND_MIN_PIXELS", 0)
    for k in range(3):
        v = verts.copy()
        v[0, 17, k] = bad
        out = cpu.rasterize_numba_counts(v, faces, 120, 120, False, False, -np.inf, 1e12)
        assert out[3] == 1
    assert cpu.rasterize_numba_counts(verts, faces, 120, 120, False, False, -np.inf,
                                      1e12)[3] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_exit_after_the_covered_run_is_exact(dtype):
    """The kernel leaves a row at its first uncovered pixel after a covered one. Large
    triangles, slivers one pixel wide, and edges through pixel centres (where only the
    top-left rule decides) cover the same pixels as the reference, which tests every pixel
    of each box; and a pixel covered after a gap in its row would be missed."""
    rng = np.random.default_rng(5)
    size = 48
    tris = []
    for _ in range(60):  # big triangles with vertices on pixel centres and on corners
        tris.append(rng.integers(-8, size + 8, (3, 2)) + rng.choice([0.0, 0.5], (3, 2)))
    for _ in range(60):  # slivers: long, about one pixel wide, in every direction
        a = rng.uniform(0, size, 2)
        d = rng.normal(size=2)
        d *= rng.uniform(10, 40) / np.linalg.norm(d)
        n = np.array([-d[1], d[0]]) / np.linalg.norm(d) * rng.uniform(0.2, 1.5)
        tris.append(np.stack([a, a + d, a + d / 2 + n]))
    xy = np.concatenate(tris)
    verts = np.concatenate([xy, rng.uniform(1, 2, (len(xy), 1))], 1)[None].astype(dtype)
    faces = np.arange(len(xy)).reshape(-1, 3)
    ref, got = _both(verts, faces, size, size)
    _assert_same(ref, got)
    assert (ref[0] >= 0).mean() > 0.5  # the case is not vacuous


def test_face_model_matches_reference():
    registry = pytest.importorskip("facelab.model.registry")
    model = registry.load_model("synthetic", resolution="teaching", version=1)
    v = model.mean_shape.double().numpy()
    scale = 40 / (v[:, 0].max() - v[:, 0].min())
    poses = []
    for yaw in (0.0, 0.6, -1.2):  # rotations about y, then the camera's y flip
        c, s = np.cos(yaw), np.sin(yaw)
        rv = v @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
        poses.append(to_screen(rv, 48, scale=scale, depth=500.0))
    faces = model.faces.numpy()
    for H, dtype in ((48, np.float32), (20, np.float64)):
        verts = np.stack(poses) * np.array([H / 48, H / 48, 1.0])
        ref, got = _both(verts.astype(dtype), faces, H, H, cull=True)
        _assert_same(ref, got)
        assert (got[0] >= 0).mean() > 0.2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pc", [False, True])
def test_interpolate_forward_backward_match_reference(dtype, pc):
    rng = np.random.default_rng(5)
    verts, faces = random_mesh(rng, 2, 30, 40, 14, 15, dtype=dtype)
    fi, bary, _ = rasterize_reference(verts, faces, 14, 15, pc)
    attrs = rng.normal(size=(2, 30, 4)).astype(dtype)
    out = cpu.interpolate_forward_numba(attrs, fi, bary, faces)
    np.testing.assert_array_equal(out, interpolate_reference(attrs, fi, bary, faces))
    np.testing.assert_array_equal(cpu.pixel_barycentrics_numba(verts, fi, faces, pc),
                                  pixel_barycentrics_reference(verts, fi, faces, pc))
    grad = rng.normal(size=out.shape).astype(dtype)
    ga, gv = cpu.interpolate_backward_numba(grad, attrs, fi, bary, faces, verts, pc, True, True)
    ra, rv = interpolate_backward_reference(grad, attrs, fi, bary, faces, verts, pc)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(ga, ra, rtol=tol, atol=tol)
    np.testing.assert_allclose(gv, rv, rtol=tol, atol=tol * np.abs(rv).max())
    assert ga.dtype == dtype and gv.dtype == dtype
    ga2, gv2 = cpu.interpolate_backward_numba(grad, attrs, fi, bary, faces, None, pc, True, False)
    assert gv2 is None and np.array_equal(ga2, ga)


@pytest.mark.parametrize("run", [0, 16])
@pytest.mark.parametrize("pc", [False, True])
def test_undecorated_kernel_is_the_compiled_one(pc, run):
    """The plain-Python kernel (debuggable) computes what its njit twin computes (with pc,
    ``lanes.div4`` runs as four Python divisions in one and as one vector division in the
    other; with run, so does ``lanes.row_run``'s row test: a Python loop, one vector test)."""
    rng = np.random.default_rng(2)
    verts, faces = random_mesh(rng, 1, 8, 6, 6, 7)
    xs, ys = cpu._pixel_centres(7, verts.dtype), cpu._pixel_centres(6, verts.dtype)
    one = verts.dtype.type(1)
    out = []
    for fn in (cpu._rasterize_bands_py, cpu.rasterize_bands):
        zb = np.empty((1, 6, 7), np.float32)  # cleared by the kernel
        fi, bary, depth = (np.empty((1, 6, 7), np.int64), np.empty((1, 6, 7, 3), verts.dtype),
                           np.empty((1, 6, 7), verts.dtype))
        assert cpu.bad_vertices(verts, np.inf) == 0
        nonfinite = np.empty(2, np.int64)
        fn(verts, faces, xs, ys, verts.dtype.type(-np.inf), False, pc, one, 2, 0, 4, run, zb,
           fi, bary, depth, nonfinite, cpu._NO_CTL, -1)
        assert not nonfinite.any()
        out.append((fi, bary, depth))
    for a, b in zip(out[0], out[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert (out[0][0] >= 0).any()


@pytest.mark.slow
def test_no_out_of_bounds_access(tmp_path):
    """Run every kernel once with NUMBA_BOUNDSCHECK=1 in a fresh cache (subprocess)."""
    script = textwrap.dedent("""
        import numpy as np
        from facelab.raster import cpu
        rng = np.random.default_rng(0)
        B, V, F, H, W = 2, 20, 5000, 9, 11
        verts = np.stack([rng.uniform(-5, 16, (B, V)), rng.uniform(-5, 14, (B, V)),
                          rng.uniform(1, 3, (B, V))], -1).astype(np.float32)
        verts[0, :3] = [[-1e6, -1e6, 1], [1e6, -1e6, 1], [0, 1e6, 1]]  # huge, clipped
        faces = rng.integers(0, V, (F, 3))
        for pc in (False, True):
            fi, bary, depth = cpu.rasterize_numba(verts, faces, H, W, pc, True, 0.0)
            attrs = rng.normal(size=(B, V, 3)).astype(np.float32)
            out = cpu.interpolate_forward_numba(attrs, fi, bary, faces)
            b2 = cpu.pixel_barycentrics_numba(verts, fi, faces, pc)
            cpu.interpolate_backward_numba(out, attrs, fi, b2, faces, verts, pc, True, True)
        print("ok", int((fi >= 0).sum()))
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path),
               NUMBA_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")


@pytest.fixture
def one_numba_thread():
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


@pytest.mark.parametrize("pc", [False, True])
def test_serial_twins_match_reference(one_numba_thread, pc):
    """On one Numba thread every kernel runs its serial twin: the same results."""
    assert cpu._variant(cpu.rasterize_bands, 4) is cpu._SERIAL[cpu.rasterize_bands]
    test_random_meshes_match_reference(np.float64, pc, False)
    test_interpolate_forward_backward_match_reference(np.float32, pc)


def _span_cases(rng, size, scale=1.0):
    """(1, 3 N, 3) vertices of triangles that stress the row spans: big ones with vertices on
    pixel centres and corners, slivers, near-horizontal and near-vertical edges, edges
    through pixel centres, and triangles partly off-screen; ``scale`` pushes vertices far
    out (float32 rounding of p.x - o.x then exceeds a pixel: the span estimate can be wrong
    and only the exact certificate keeps the result exact)."""
    tris = []
    for _ in range(40):  # big, vertices on pixel centres and corners, some off-screen
        tris.append(rng.integers(-10, size + 10, (3, 2)) + rng.choice([0.0, 0.5], (3, 2)))
    for _ in range(40):  # slivers about one pixel wide, every direction
        a = rng.uniform(0, size, 2)
        d = rng.normal(size=2)
        d *= rng.uniform(10, 40) / np.linalg.norm(d)
        n = np.array([-d[1], d[0]]) / np.linalg.norm(d) * rng.uniform(0.2, 1.5)
        tris.append(np.stack([a, a + d, a + d / 2 + n]))
    for _ in range(30):  # near-horizontal and near-vertical long edges
        a = rng.uniform(-5, size + 5, 2)
        long = rng.uniform(15, 50) * rng.choice([-1, 1])
        tilt = rng.choice([0.0, 1e-6, 1e-3, 0.02]) * rng.choice([-1, 1])
        e = np.array([long, long * tilt])
        if rng.random() < 0.5:
            e = e[::-1]
        tris.append(np.stack([a, a + e, a + rng.uniform(-20, 20, 2)]))
    for _ in range(20):  # edges through pixel centres: integer + 0.5 endpoints, slopes 1, 2
        a = rng.integers(0, size, 2) + 0.5
        k = rng.integers(1, 3)
        tris.append(np.stack([a, a + np.array([10.0, 10.0 * k]), a + np.array([20.0 * k, 0.0])]))
    xy = np.concatenate(tris)
    if scale != 1.0:  # far-out vertices: every triangle's third vertex pushed away
        xy[2::3] = (xy[2::3] - size / 2) * scale + size / 2
    z = rng.uniform(1, 2, (len(xy), 1))
    return np.concatenate([xy, z], 1)[None], np.arange(len(xy)).reshape(-1, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 3e6, 4e8])
@pytest.mark.parametrize("pc", [False, True])
def test_row_spans_are_exact(monkeypatch, dtype, scale, pc):
    """Scanning each row from its analytic span (every triangle, SPAN_MIN_WIDTH = 0, no vector
    row tests) gives the reference's fragments bit for bit, and the box scan's (spans off)."""
    rng = np.random.default_rng(int(scale) % 1000 + pc)
    size = 48
    verts, faces = _span_cases(rng, size, scale)
    verts = verts.astype(dtype)
    monkeypatch.setattr(cpu, "SPAN_MIN_WIDTH", 0)
    monkeypatch.setattr(cpu, "RUN_MAX_WIDTH", 0)  # spans for every box, no vector row tests
    ref, got = _both(verts, faces, size, size, pc)
    got = [a.copy() for a in got]
    _assert_same(ref, got)
    monkeypatch.setattr(cpu, "SPAN_MIN_WIDTH", 10**9)
    _assert_same(ref, _both(verts, faces, size, size, pc)[1])
    assert (ref[0] >= 0).mean() > 0.5  # the case is not vacuous


def test_row_span_certificate_catches_wrong_estimates(monkeypatch):
    """With vertices ~1e7 px out, float32 rounds p.x - o.x to steps of a pixel or more, the
    float64 span estimate lands inside the covered run on some rows, and the certificate
    (the bounding edge must fail just outside the span) sends those rows to a full scan.
    Checked on the plain-Python kernel, counting certificate failures."""
    rng = np.random.default_rng(3)
    size = 24
    verts, faces = _span_cases(rng, size, 3e6)
    verts = verts.astype(np.float32)
    calls = {"fail": 0, "all": 0}
    real = cpu._passes

    def spy(px, ox, dy, c, m, t):
        out = real(px, ox, dy, c, m, t)
        calls["all"] += 1
        calls["fail"] += bool(out)
        return out

    monkeypatch.setattr(cpu, "_passes", spy)
    monkeypatch.setattr(cpu, "rasterize_bands", cpu._rasterize_bands_py)
    monkeypatch.setattr(cpu, "_SERIAL", {cpu._rasterize_bands_py: cpu._rasterize_bands_py,
                                         **cpu._SERIAL})
    monkeypatch.setattr(cpu, "_variant",
                        lambda kernel, n, threads=None: cpu._SERIAL.get(kernel, kernel))
    monkeypatch.setattr(cpu, "SPAN_MIN_WIDTH", 0)
    monkeypatch.setattr(cpu, "RUN_MAX_WIDTH", 0)
    ref, got = _both(verts, faces, size, size)
    _assert_same(ref, got)
    assert calls["all"] > 100 and calls["fail"] > 0


def test_the_ops_import_and_rasterize_as_plain_python_under_numba_disable_jit():
    """``NUMBA_DISABLE_JIT=1`` (stepping through a kernel in a debugger) runs the ``_name_py``
    functions as Python: every op package imports, and rasterize equals the reference."""
    code = textwrap.dedent("""
        import torch, facelab as fl
        import facelab.normals.cpu, facelab.shading.cpu, facelab.shaded_photometric.cpu
        import facelab.texture.cpu, facelab.vertex_losses.cpu
        from facelab.raster.reference import rasterize_reference
        verts = torch.tensor([[[10., 10., 1.], [100., 20., 2.], [30., 90., 3.], [60., 60., .5]]])
        faces = torch.tensor([[0, 1, 2], [1, 2, 3]])
        frag = fl.rasterize(verts, faces, 24, 24)
        ref = rasterize_reference(verts.numpy(), faces.numpy(), 24, 24)
        assert (frag.face_index.numpy() == ref[0]).all() and (frag.face_index >= 0).any()
        print("OK")
    """)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-2000:]
