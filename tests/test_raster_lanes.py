"""``facelab.raster.lanes.div4``: one vector division, bit for bit the four scalar ones."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numba import njit
from raster_bands import banded_and_serial, forced_bands

from facelab.raster import cpu
from facelab.raster.lanes import RUN_LANES, RUN_MAX_COLUMN, bary_depth4, div4, row_bary, row_run


@njit(error_model="numpy")
def _div4_compiled(a, d, out):
    for k in range(a.shape[0]):
        out[k] = div4(a[k, 0], a[k, 1], a[k, 2], a[k, 3], d[k, 0], d[k, 1], d[k, 2], d[k, 3])


@njit(error_model="numpy")
def _div_scalar(a, d, out):
    for k in range(a.shape[0]):
        for lane in range(4):
            out[k, lane] = a[k, lane] / d[k, lane]


def _operands(dtype, n=4096):
    """Random magnitudes over the whole exponent range plus the special values."""
    rng = np.random.default_rng(3)
    info = np.finfo(dtype)
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, info.tiny, info.max,
                        info.smallest_subnormal, 3.0, 1 / 3], dtype=dtype)
    exp = rng.uniform(np.log2(float(info.smallest_subnormal)), np.log2(float(info.max)) - 1,
                      (n, 4))
    a = (rng.choice([-1.0, 1.0], (n, 4)) * np.exp2(exp)).astype(dtype)
    d = (rng.choice([-1.0, 1.0], (n, 4)) * np.exp2(rng.permutation(exp))).astype(dtype)
    pairs = np.array(np.meshgrid(special, special)).reshape(2, -1).T  # every special pair
    k = len(pairs) // 4 * 4
    a[:k // 4] = pairs[:k, 0].reshape(-1, 4)
    d[:k // 4] = pairs[:k, 1].reshape(-1, 4)
    return np.ascontiguousarray(a), np.ascontiguousarray(d)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_div4_is_the_scalar_division_bit_for_bit(dtype):
    a, d = _operands(dtype)
    vec = np.empty_like(a)
    ref = np.empty_like(a)
    _div4_compiled(a, d, vec)
    _div_scalar(a, d, ref)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        plain = a / d  # NumPy: IEEE division too
    np.testing.assert_array_equal(vec.view(f"u{a.itemsize}")[~np.isnan(ref)],
                                  ref.view(f"u{a.itemsize}")[~np.isnan(ref)])
    np.testing.assert_array_equal(np.isnan(vec), np.isnan(ref))  # NaN payloads may differ
    np.testing.assert_array_equal(vec, plain)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        py = div4(*(dtype(x) for x in a[7]), *(dtype(x) for x in d[7]))  # the Python function
    np.testing.assert_array_equal(np.array(py, dtype=dtype), plain[7])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_barycentrics_and_depth_python_equals_compiled(dtype):
    """The register_jitable helper run as Python (div4 the plain function) and compiled."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=(64, 3)).astype(dtype)
    z = rng.uniform(0.5, 4.0, size=(64, 3)).astype(dtype)
    w[0] = 0  # total == 0: inf / NaN in both
    one = dtype(1)

    @njit(error_model="numpy")
    def compiled(w, z, pc, out):
        for k in range(w.shape[0]):
            out[k] = bary_depth4(w[k, 0], w[k, 1], w[k, 2], z[k, 0], z[k, 1],
                                                z[k, 2], pc, one)

    for pc in (False, True):
        out = np.empty((64, 4), dtype)
        compiled(w, z, pc, out)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            py = np.array([bary_depth4(*w[k], *z[k], pc, one)
                           for k in range(64)], dtype=dtype)
        np.testing.assert_array_equal(out, py)
        assert not np.isfinite(out[0]).all()


def test_the_rasterizer_divides_in_vector_lanes():
    """The compiled kernel uses packed divisions (vdivps/divps) for definition 4 in float32."""
    rng = np.random.default_rng(2)
    verts = rng.uniform(0, 6, (1, 8, 3)).astype(np.float32)
    verts[..., 2] += 1
    faces = rng.integers(0, 8, (6, 3))
    cpu.rasterize_numba(verts, faces, 6, 7, True, False, 0.0)
    kernel = cpu._SERIAL[cpu.rasterize_bands]
    fresh = njit(error_model="numpy")(kernel.py_func)  # cached code cannot be inspected
    xs = cpu._pixel_centres(7, verts.dtype)
    fresh(verts, np.ascontiguousarray(faces, dtype=np.int64), xs, xs[:6], np.float32(0), False,
          True, np.float32(1), 1, 4, 4, 16, np.empty((1, 6, 7), np.float32),
          np.empty((1, 6, 7), np.int64), np.empty((1, 6, 7, 3), np.float32),
          np.empty((1, 6, 7), np.float32), np.empty(1, np.int64), cpu._NO_CTL,
          -1)
    asm = "\n".join(fresh.inspect_asm().values())
    assert re.search(r"\bv?divps\b", asm)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_bands", [1, 2, 4])
def test_non_finite_barycentrics_match_reference(monkeypatch, dtype, n_bands):
    """Perspective-correct with no near plane: vertices at depth 0 and on both sides of it
    give inf / NaN lanes in the vector divisions; the kernel writes the reference's values
    (NaN where it has NaN), counts them, and the row bands (2 threads) agree bit for bit."""
    from facelab.raster.reference import rasterize_reference

    rng = np.random.default_rng(11 + n_bands)
    size = 29
    xy = rng.uniform(-4, size + 4, (90, 2))
    z = rng.choice([0.0, -1.0, 1.0, 2.0, 1e-30], (90, 1)) * rng.uniform(0.5, 1.5, (90, 1))
    verts = np.concatenate([xy, z], 1)[None].astype(dtype)
    faces = np.arange(90).reshape(-1, 3)
    ref = rasterize_reference(verts, faces, size, size, True, False, -np.inf)
    with forced_bands(monkeypatch, n_bands):
        got = cpu.rasterize_numba_counts(verts, faces, size, size, True, False, -np.inf)
    for a, b in zip(got[:3], ref, strict=True):
        np.testing.assert_array_equal(a, b)  # NaN where the reference has NaN
    assert not (np.isfinite(ref[1]).all() and np.isfinite(ref[2]).all())  # not vacuous
    assert got[4] > 0 and got[3] == 0 and got[5] == 0  # the non-finite writes are counted


# ------------------------------------------------------------------ row_run: one vector row test
def _edge_values(rng, n, dtype):
    """n random edges (ox, dy, c, m, t) plus ones whose value is exactly 0 at pixel centres
    (the top-left rule decides), horizontal ones (dy = 0) and NaN / inf row parts."""
    ox = rng.uniform(-20, 40, n).astype(dtype)
    dy = rng.choice([-3.0, -1.0, -0.25, 0.0, 0.5, 1.0, 7.0], n).astype(dtype)
    c = (rng.uniform(-60, 60, n)).astype(dtype)
    half = rng.random(n) < 0.3  # crossing exactly at a pixel centre: r == 0 there
    k = rng.integers(0, 24, n)
    ox[half] = (k[half] + 0.5).astype(dtype)
    c[half] = 0
    c[rng.random(n) < 0.03] = np.nan
    c[rng.random(n) < 0.03] = np.inf
    m = rng.choice([-1.0, 1.0], n).astype(dtype)
    t = rng.random(n) < 0.5
    return ox, dy, c, m, t


@njit(error_model="numpy")
def _row_run_many(j0, n, ox, dy, c, m, t, out):
    for k in range(j0.shape[0]):
        out[k] = row_run(j0[k], n[k], ox[k, 0], dy[k, 0], c[k, 0], m[k, 0], t[k, 0],
                         ox[k, 1], dy[k, 1], c[k, 1], m[k, 1], t[k, 1],
                         ox[k, 2], dy[k, 2], c[k, 2], m[k, 2], t[k, 2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_run_vector_equals_scalar_tests(dtype):
    """Every lane of the vector test is the scalar inside test of the kernel at that pixel
    centre, including r == 0 (top-left rule), horizontal edges, NaN/inf row parts, partial
    rows (n < 16) and columns up to just below RUN_MAX_COLUMN."""
    rng = np.random.default_rng(9)
    N = 3000
    edges = [_edge_values(rng, 3 * N, dtype)]
    ox, dy, c, m, t = (a.reshape(N, 3) for a in edges[0])
    j0 = rng.integers(-3, 30, N)
    j0[:50] = RUN_MAX_COLUMN - RUN_LANES - rng.integers(0, 4, 50)
    ox[:50] += dtype(RUN_MAX_COLUMN - RUN_LANES - 4)  # edges near those far columns
    n = rng.integers(1, RUN_LANES + 1, N)
    got = np.empty((N, 3), np.int64)
    _row_run_many(j0, n, ox, dy, c, m, t, got)
    hits = 0
    with np.errstate(invalid="ignore", over="ignore"):
        for k in range(N):
            args = [j0[k], n[k]]
            for e in range(3):
                args += [ox[k, e], dy[k, e], c[k, e], m[k, e], bool(t[k, e])]
            want = row_run(*args)  # the plain-Python scalar loop
            bits = 0
            for lane in range(n[k]):  # and the kernel's own test at its centre k + 0.5
                px = dtype(j0[k] + lane) + dtype(0.5)
                if all(m[k, e] * ((px - ox[k, e]) * dy[k, e] - c[k, e]) > 0
                       or ((px - ox[k, e]) * dy[k, e] - c[k, e] == 0 and t[k, e])
                       for e in range(3)):
                    bits |= 1 << lane
            assert tuple(got[k]) == tuple(want), k
            assert got[k, 2] == bits, k
            hits += bits != 0
    assert hits > N // 10  # not vacuous
    # the lanes' centres k + 0.5 are the kernel's xs (cpu._pixel_centres) up to RUN_MAX_COLUMN
    xs = np.arange(RUN_MAX_COLUMN, dtype=dtype) + dtype(0.5)
    k = np.concatenate([np.arange(64), rng.integers(0, RUN_MAX_COLUMN, 4096),
                        RUN_MAX_COLUMN - 1 - np.arange(64)])
    np.testing.assert_array_equal(xs[k], k.astype(dtype) + dtype(0.5))


def _force_runs(monkeypatch, run=RUN_LANES):
    """Every box up to ``run`` pixels wide through the vector row test (no box scans)."""
    monkeypatch.setattr(cpu, "SPAN_MIN_WIDTH", 0)
    monkeypatch.setattr(cpu, "RUN_MAX_WIDTH", run)


@pytest.mark.parametrize("case", ["soup", "spans", "far", "crafted", "edges"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pc", [False, True])
def test_row_runs_match_reference(monkeypatch, case, dtype, pc):
    """Rows tested in vector lanes give the reference's fragments bit for bit: triangle soup
    with integer depths (ties), the row-span stress cases (slivers, near-horizontal edges,
    edges through pixel centres, off-screen), vertices 3e6 px out (float32 rounding of
    p.x - o.x), crafted degenerate / edge-on / behind-the-camera / off-screen / coplanar
    triangles, and boxes 15-18 pixels wide at the image edges (RUN_LANES boundary)."""
    from test_raster_cpu import _assert_same, _both, _span_cases
    from test_raster_reference import random_mesh

    rng = np.random.default_rng(31 + pc)
    size = 40
    if case == "soup":
        verts, faces = random_mesh(rng, 2, 120, 500, size, size)
        verts[..., 2] = np.round(verts[..., 2])
    elif case in ("spans", "far"):
        verts, faces = _span_cases(rng, size, 3e6 if case == "far" else 1.0)
    elif case == "crafted":
        verts = np.array([[1.0, 1.0, 2.0], [1.0, 14.0, 2.0], [14.0, 1.0, 2.0],  # coplanar x2
                          [2.5, 2.5, 2.0], [9.5, 9.5, 2.0], [20.5, 20.5, 2.0],  # collinear
                          [3.0, 3.0, 2.0], [3.0, 3.0, 2.0], [9.0, 5.0, 2.0],  # repeated vertex
                          [-50.0, -50.0, 1.0], [-40.0, -60.0, 1.0], [-45.0, -30.0, 1.0],
                          [1.0, 1.0, 2.0], [12.0, 3.0, -1.0], [5.0, 12.0, 2.0],  # behind
                          [30.5, 30.5, 1.0], [30.5, 30.5 + 1e-4, 1.0], [40.5, 30.5, 1.0]])
        faces = np.array([[0, 1, 2], [0, 1, 2], [2, 1, 0], [3, 4, 5], [6, 7, 8], [9, 10, 11],
                          [12, 13, 14], [15, 16, 17]])
        verts = verts[None]
    else:  # boxes 15-18 px wide, vertices on pixel centres and corners, at both image edges
        tris = []
        for w in (14.5, 15.0, 15.5, 16.0, 16.5, 17.0):
            for x in (-0.5, 0.0, 0.5, size - w - 0.5, size - w, size - w + 0.5):
                tris.append([[x, 2.0], [x + w, 9.5], [x + w / 2, 20.0]])
                tris.append([[x + w, 22.5], [x, 23.0], [x + 3.0, 38.5]])
        xy = np.array(tris).reshape(-1, 2)
        verts = np.concatenate([xy, rng.uniform(1, 2, (len(xy), 1))], 1)[None]
        faces = np.arange(len(xy)).reshape(-1, 3)
    verts = np.ascontiguousarray(verts, dtype=dtype)
    _force_runs(monkeypatch)
    near = 0.0 if pc else None
    ref, got = _both(verts, faces, size, size, pc, False, near)
    _assert_same(ref, got)
    monkeypatch.setattr(cpu, "RUN_MAX_WIDTH", 0)  # the same with row spans instead
    _assert_same(ref, _both(verts, faces, size, size, pc, False, near)[1])
    if case != "crafted":
        assert (ref[0] >= 0).mean() > 0.1  # not vacuous


@pytest.mark.parametrize("n_bands", [2, 3, 4])
@pytest.mark.parametrize("pc", [False, True])
def test_row_runs_on_bands_bit_identical_to_serial(monkeypatch, n_bands, pc):
    """Batch 1 on 2 threads, every box up to 16 px wide tested in vector lanes: the banded
    kernel, its serial twin and the reference agree bit for bit (ties, band-crossing,
    degenerate, off-screen and behind-camera triangles)."""
    from test_raster_cpu import _assert_same, _band_stress_mesh

    from facelab.raster.reference import rasterize_reference

    rng = np.random.default_rng(40 + n_bands)
    size = 37
    verts, faces = _band_stress_mesh(rng, size)
    near = 0.0 if pc else None
    ref = rasterize_reference(verts, faces, size, size, pc, False, near)
    _force_runs(monkeypatch)
    banded, serial = banded_and_serial(monkeypatch, verts, faces, size, pc, near, n_bands)
    _assert_same(ref, banded)
    _assert_same(ref, serial)


def test_row_runs_are_taken(monkeypatch):
    """The teaching-size case goes through the vector row test (counted on the plain-Python
    kernel, whose row_run is the scalar loop) and matches the reference."""
    from test_raster_cpu import _assert_same, _both
    from test_raster_reference import random_mesh

    rng = np.random.default_rng(6)
    verts, faces = random_mesh(rng, 1, 60, 80, 30, 30)
    calls = {"rows": 0}
    real = cpu.row_run

    def spy(*args):
        calls["rows"] += 1
        return real(*args)

    monkeypatch.setattr(cpu, "row_run", spy)
    monkeypatch.setattr(cpu, "rasterize_bands", cpu._rasterize_bands_py)
    monkeypatch.setattr(cpu, "_SERIAL", {cpu._rasterize_bands_py: cpu._rasterize_bands_py,
                                         **cpu._SERIAL})
    monkeypatch.setattr(cpu, "_variant",
                        lambda kernel, n, threads=None: cpu._SERIAL.get(kernel, kernel))
    ref, got = _both(verts, faces, 30, 30)
    _assert_same(ref, got)
    assert calls["rows"] > 50


@njit(error_model="numpy")
def _row_bary_many(j0, ox, dy, c, g, z, pc, one, out):
    for k in range(j0.shape[0]):
        row_bary(out[k], j0[k], ox[k, 0], dy[k, 0], c[k, 0], g[k, 0], ox[k, 1], dy[k, 1],
                 c[k, 1], g[k, 1], ox[k, 2], dy[k, 2], c[k, 2], g[k, 2], z[k, 0], z[k, 1],
                 z[k, 2], pc, one)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pc", [False, True])
def test_row_bary_vector_equals_scalar_definition_4(dtype, pc):
    """Every lane of the vector barycentrics is the scalar kernel's g * r edge values through
    barycentrics_and_depth, bit for bit, including zero totals (inf/NaN), zero and negative
    depths, and NaN row parts."""
    rng = np.random.default_rng(17 + pc)
    N = 400
    ox, dy, c, m, _ = (a.reshape(N, 3) for a in _edge_values(rng, 3 * N, dtype))
    g = m
    z = rng.choice([0.0, -1.0, 0.5, 1.0, 3.0, 1e-30], (N, 3)).astype(dtype)
    z *= rng.uniform(0.5, 2.0, (N, 3)).astype(dtype)
    j0 = rng.integers(-5, 40, N)
    one = dtype(1)
    got = np.empty((N, 4, RUN_LANES), dtype)
    _row_bary_many(j0, ox, dy, c, g, z, pc, one, got)
    want = np.empty_like(got)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        for k in range(N):
            row_bary(want[k], j0[k], ox[k, 0], dy[k, 0], c[k, 0], g[k, 0], ox[k, 1], dy[k, 1],
                     c[k, 1], g[k, 1], ox[k, 2], dy[k, 2], c[k, 2], g[k, 2], z[k, 0],
                     z[k, 1], z[k, 2], pc, one)  # the plain-Python scalar loop
    np.testing.assert_array_equal(got, want)  # NaN where NaN
    assert np.isfinite(got).mean() > 0.5 and not np.isfinite(got).all()
