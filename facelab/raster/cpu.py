"""Numba CPU kernels for rasterize / interpolate, matching ``reference.py`` formula for formula.

Each kernel is written as a plain Python function (``_name_py``, debuggable, runs under
``NUMBA_DISABLE_JIT=1``) and compiled from it with ``njit(cache=True)``; the small helpers
are ``register_jitable`` so they are plain functions in Python and inlined when compiled.

Arithmetic stays in the dtype of ``screen_verts`` (float32 or float64): constants such as
``one`` are passed in that dtype, because a Python literal would promote float32 to float64.

Parallelism is race-free by construction:
* ``rasterize_bands`` (``parallel=True``): one task per (batch item, band of rows); it owns
  those rows of the outputs and walks all triangles in increasing id (strict ``<`` on the
  float32 depth key, ties to the smaller id), writing barycentrics and depth where a
  triangle wins the depth test (one pass, no resolve), so the winner is exactly the
  reference's.
* One image on 2+ threads (batch 1): the serial kernel on the caller and helper threads,
  each over chunks of faces into buffers of its own, merged by (depth key, face id)
  (:mod:`facelab.raster.helpers`, :mod:`facelab.raster.claims`): the same winners.
* The interpolation kernels (:mod:`facelab.raster.interp_cpu`): one task per row or item.
"""

from __future__ import annotations

import functools
import time

import numpy as np
from numba import config as numba_config
from numba import njit, prange

from facelab._threads import parallel_threads
from facelab.numba_cache import serial_twin
from facelab.raster.buffers import _outputs, _zbuffer
from facelab.raster.claims import NO_CTL as _NO_CTL
from facelab.raster.claims import claim_back, claim_front
from facelab.raster.edges import _edge_setup, edge_function
from facelab.raster.helpers import rasterize_split, record_time, split_pays
from facelab.raster.interp_cpu import interpolate_backward, interpolate_forward, pixel_barycentrics
from facelab.raster.lanes import RUN_LANES, RUN_MAX_COLUMN, bary_depth4, row_bary, row_run
from facelab.raster.spans import _edge_k, _edge_side, _passes, _span_bound
from facelab.raster.triangles import (
    CANDIDATES,
    CHUNK,
    GENERAL,
    LOWEST_BIT,
    N_INTS,
    N_REALS,
    compact,
    gather_corners,
    triangle_pass,
)

__all__ = [
    "rasterize_numba",
    "rasterize_numba_counts",
    "pixel_barycentrics_numba",
    "interpolate_forward_numba",
    "interpolate_backward_numba",
]


_U_CHUNK = np.uintp(CHUNK)  # unsigned: no wrap-around tests


# --------------------------------------------------------------------------------- rasterize
def _bad_vertices_py(verts, limit):
    """How many vertices have a coordinate that is NaN, Inf or beyond ``limit`` in magnitude
    (the caller raises before rasterizing). Branch-free over a flat view of each item, which
    LLVM vectorises; at batch 1 this pass runs before the row bands split the work, so it is
    serial time on every thread count.
    """
    B, V = verts.shape[0], verts.shape[1]
    bad = 0
    for task in prange(B):
        flat = verts[task].reshape(-1)  # (3 V,) x, y, depth
        n_bad = 0
        for v in range(V):
            ok = (abs(np.float64(flat[3 * v])) <= limit) \
                & (abs(np.float64(flat[3 * v + 1])) <= limit) \
                & (abs(np.float64(flat[3 * v + 2])) <= limit)  # NaN: False
            n_bad += np.int64(not ok)
        bad += n_bad
    return bad


def _rasterize_bands_py(verts, faces, xs, ys, near, cull_backfaces, perspective_correct, one,
                        n_bands, span_min, small_max, run_max, zbuffer, face_index, bary,
                        depth, nonfinite, ctl, slot):
    """One pass: depth test, and where a triangle wins, its barycentrics and depth.

    One task per (batch item, band of rows); a task owns its rows of all four buffers
    (zbuffer (B, H, W) float32 keys, face_index (B, H, W), bary (B, H, W, 3), depth (B, H, W)),
    clears them, and walks every triangle in increasing id, skipping those whose rows miss its
    band (strict ``<`` on the float32 depth key keeps the smaller id on ties). So each pixel's
    winner is exactly the sequential reference's, with no private buffers and no merge.
    nonfinite[task] (B * n_bands,) counts winning writes with a NaN/Inf barycentric or depth
    (0 means every output is finite, so the caller needs no pass over the outputs).
    Returns how many (triangle, task) pairs had a vertex index outside [0, V) (those
    triangles are skipped; the caller raises): the check is one unsigned compare per index
    and, unlike a validation cached per faces tensor, also sees edits that torch's version
    counter misses (through NumPy or ``.data``), which would otherwise read out of bounds.
    ``slot`` -1: the chunks in order (``ctl`` unused). Otherwise (batch 1, one band, serial
    twin; :mod:`facelab.raster.helpers`) chunks are claimed from the shared range ``ctl[0]``
    (:mod:`facelab.raster.claims`): slot 0 is the caller, claiming from the front (increasing
    ids) and writing the outputs; a helper claims from the back (decreasing: the depth test
    orders (key, id), so the winner does not depend on the order), writes its own buffers,
    clears only its z-buffer, on its first claim, and stores how many chunks it claimed in
    ``ctl[4 slot - 2]`` (tried: the
    caller clearing only its z-buffer and the merge filling the uncovered pixels, in parallel
    with the helper: 2 threads ÷ 1 fell from 1.07 to 0.93 on the 38k grid at 224², where
    every merge block is mixed, and was no faster at 512²).

    The triangles come CHUNK at a time from :mod:`facelab.raster.triangles`: a vectorised
    pass decides which to skip and resolves the boxes of at most ``small_max`` (<= 4) pixels
    (38k face grid at 224²: all; serial kernel 0.72 -> 0.42 ms); this loop writes those
    fragments where they win and scans the larger boxes (``GENERAL``).
    Array indices are unsigned (``np.uintp``): a signed index taken from data costs Numba a
    wrap-around test for negative values on every access (faces, pixel loops).
    A row is left at its first uncovered pixel after a covered one (exact): each edge value is
    monotone in j
    along a row *as rounded* (p.x - o.x, the product with dy and the subtraction are each
    monotone), so each inside test holds on a half-line of j and the row's covered pixels are
    one contiguous run (teaching model at 512²: 198k box pixels for 88k covered).
    Boxes ``span_min`` + 1 to ``run_max`` pixels wide (at most ``lanes.RUN_LANES``) test a row
    in one vector evaluation (:func:`~facelab.raster.lanes.row_run`) and compute definition 4
    for all its pixels in vector lanes (:func:`~facelab.raster.lanes.row_bary`), the same IEEE
    operations per lane as here per pixel, then write the covered ones: 1.3x faster on the
    teaching model at 512² (1.27 -> 0.98 ms hot, linear; 1.57 -> 1.04 ms perspective). Wider
    boxes scan each row only from its analytic span (:mod:`facelab.raster.spans`: float64 edge
    crossings, kept only when the bounding edge's exact test fails just outside, so
    bit-identical): teaching head, 1.2x. The scans' definition 4 divides in vector lanes too
    (``lanes.bary_depth4``: 3 instead of 10 divisions per pixel, perspective-correct).
    """
    B, F = verts.shape[0], faces.shape[0]
    H, W = face_index.shape[1], face_index.shape[2]
    rows = -(-H // n_bands)
    zero = one - one
    run_w = min(run_max, RUN_LANES)  # boxes up to this wide: one vector row test (docstring)
    scratch = np.empty((B * n_bands, 4, RUN_LANES), dtype=xs.dtype)  # a task's own rows
    bad_faces = 0
    for task in prange(B * n_bands):
        nonfinite[task] = 0
        b = task // n_bands
        r_lo = (task - b * n_bands) * rows
        r_hi = min(H, r_lo + rows) - 1  # inclusive; empty when r_lo > r_hi
        if r_lo > r_hi:
            continue
        bu = np.uintp(b)
        lb = scratch[task]  # (4, RUN_LANES): one row's b0, b1, b2, depth in vector lanes
        vb, zb, fi, ba, de = verts[bu], zbuffer[bu], face_index[bu], bary[bu], depth[bu]
        # this item's (V, 3), (H, W), (H, W), (H, W, 3), (H, W)
        for i in range(r_lo, r_hi + 1):  # one array at a time: memset-like loops (512²: 0.13
            ui = np.uintp(i)  # ms instead of 0.20 for all four in one loop; NumPy fill: 0.13)
            if slot > 0:
                break  # a helper: its z-buffer only, on its first claim (below)
            for j in range(W):
                zb[ui, np.uintp(j)] = np.inf
            for j in range(W):
                fi[ui, np.uintp(j)] = -1
            for j in range(W):
                for c in range(3):
                    ba[ui, np.uintp(j), np.uintp(c)] = zero
            for j in range(W):
                de[ui, np.uintp(j)] = zero
        if vb.shape[0] == 0:
            bad_faces += F  # every index is outside [0, 0)
            continue
        corners, events = np.empty(9 * CHUNK, vb.dtype), np.empty(CHUNK, np.int64)
        ints, reals = np.empty(N_INTS * CHUNK, np.int32), np.empty(N_REALS * CHUNK, vb.dtype)
        pixels = np.empty(CANDIDATES * CHUNK, np.int32)
        frags = np.empty(4 * CANDIDATES * CHUNK, vb.dtype)
        vflat, fflat = vb.reshape(-1), faces.reshape(-1)
        zf, ff, bf, df = zb.reshape(-1), fi.reshape(-1), ba.reshape(-1), de.reshape(-1)
        base = after = n_ev = ev = claimed = 0
        while True:  # one compacted face per turn, in increasing id
            if ev == n_ev:  # the next chunk: gather, vectorised pass, compaction
                if slot < 0:
                    base = after
                else:  # the split (docstring): the caller from the front, helpers from the back
                    chunk = claim_front(ctl) if slot == 0 else claim_back(ctl)
                    base = F if chunk < 0 else chunk * CHUNK
                if base >= F:
                    break
                if slot > 0 and claimed == 0:  # a helper's first chunk: clear its z-buffer
                    zf[:] = np.inf  # (its other buffers are read only where it wrote)
                claimed += 1
                after = min(F, base + CHUNK)
                bad_faces += gather_corners(vflat, fflat, base, after - base, corners)
                triangle_pass(corners, after - base, r_lo, r_hi, W, near, cull_backfaces,
                              perspective_correct, one, small_max, ints, reals, pixels,
                              frags)
                n_ev, ev = compact(ints, after - base, events), 0
                continue
            k = np.uintp(events[ev])
            ev += 1
            f = base + np.int64(k)
            mask = ints[k]  # I_MASK = 0
            if not mask & GENERAL:  # a small box: its covered candidates, bits 0-3
                cand = mask & 15
                while cand:
                    c = np.uintp(LOWEST_BIT[cand])
                    cand &= cand - 1
                    p = np.uintp(pixels[c * _U_CHUNK + k])  # i * W + j
                    q = c * np.uintp(4 * CHUNK) + k  # b0, b1, b2, depth: rows 4c..4c+3
                    d = frags[q + np.uintp(3 * CHUNK)]
                    key = np.float32(d)
                    if key < zf[p] or (key == zf[p] and f < ff[p]):  # (key, id) order
                        b0, b1 = frags[q], frags[q + _U_CHUNK]
                        b2 = frags[q + np.uintp(2 * CHUNK)]
                        zf[p] = key
                        ff[p] = f
                        bf[np.uintp(3) * p] = b0
                        bf[np.uintp(3) * p + np.uintp(1)] = b1
                        bf[np.uintp(3) * p + np.uintp(2)] = b2
                        df[p] = d
                        if not np.isfinite(b0 + b1 + b2 + d):  # NaN/Inf in any of them
                            nonfinite[task] += 1
                continue
            # a larger box (GENERAL), scanned below: its edges set up again from the corners
            # (measured faster than loading the set-up the pass stored: teaching model at
            # 512², 1.59 vs 1.74 ms)
            x0, y0, z0 = corners[k], corners[k + _U_CHUNK], corners[k + np.uintp(2 * CHUNK)]
            x1, y1 = corners[k + np.uintp(3 * CHUNK)], corners[k + np.uintp(4 * CHUNK)]
            z1 = corners[k + np.uintp(5 * CHUNK)]
            x2, y2 = corners[k + np.uintp(6 * CHUNK)], corners[k + np.uintp(7 * CHUNK)]
            z2 = corners[k + np.uintp(8 * CHUNK)]
            i0, i1 = ints[k + _U_CHUNK], ints[k + np.uintp(2 * CHUNK)]  # I_BOX = 1
            j0, j1 = ints[k + np.uintp(3 * CHUNK)], ints[k + np.uintp(4 * CHUNK)]
            area = edge_function(x1, y1, x2, y2, x0, y0)
            s = one if area > 0 else -one
            ox0, oy0, dx0, dy0, g0, t0 = _edge_setup(x1, y1, x2, y2, s, one)
            ox1, oy1, dx1, dy1, g1, t1 = _edge_setup(x2, y2, x0, y0, s, one)
            ox2, oy2, dx2, dy2, g2, t2 = _edge_setup(x0, y0, x1, y1, s, one)
            m0, m1, m2 = s * g0, s * g1, s * g2
            if j1 - j0 < span_min:  # narrow box: scan it (the same loop, no span set-up;
                for i in range(i0, i1 + 1):  # one loop for both cost ~4 % at 224²)
                    ui = np.uintp(i)
                    py = ys[ui]
                    c0 = (py - oy0) * dx0
                    c1 = (py - oy1) * dx1
                    c2 = (py - oy2) * dx2
                    ja, jb = j0, j1
                    seen = False  # a covered pixel met in this row
                    for j in range(ja, jb + 1):
                        uj = np.uintp(j)
                        px = xs[uj]
                        r0 = (px - ox0) * dy0 - c0
                        r1 = (px - ox1) * dy1 - c1
                        r2 = (px - ox2) * dy2 - c2
                        if not ((m0 * r0 > 0 or (r0 == 0 and t0))
                                and (m1 * r1 > 0 or (r1 == 0 and t1))
                                and (m2 * r2 > 0 or (r2 == 0 and t2))):
                            if seen:
                                break  # convex: a row's covered pixels are contiguous (docstring)
                            continue
                        seen = True
                        # g * r is edge_function(...) bit for bit (same products, exact negation),
                        # so these are the values the reference's resolve step computes
                        b0, b1, b2, d = bary_depth4(g0 * r0, g1 * r1, g2 * r2, z0, z1, z2,
                                                    perspective_correct, one)
                        key = np.float32(d)
                        if key < zb[ui, uj] or (key == zb[ui, uj] and f < fi[ui, uj]):
                            zb[ui, uj] = key
                            fi[ui, uj] = f
                            ba[ui, uj, 0] = b0
                            ba[ui, uj, 1] = b1
                            ba[ui, uj, 2] = b2
                            de[ui, uj] = d
                            if not np.isfinite(b0 + b1 + b2 + d):  # NaN/Inf in any of them
                                nonfinite[task] += 1
                continue
            if j1 - j0 < run_w and j1 < RUN_MAX_COLUMN:  # one vector test per row
                for i in range(i0, i1 + 1):
                    ui, py = np.uintp(i), ys[np.uintp(i)]
                    c0, c1, c2 = (py - oy0) * dx0, (py - oy1) * dx1, (py - oy2) * dx2
                    first, last, bits = row_run(j0, j1 - j0 + 1, ox0, dy0, c0, m0, t0, ox1, dy1,
                                                c1, m1, t1, ox2, dy2, c2, m2, t2)
                    if last < first:
                        continue
                    row_bary(lb, j0, ox0, dy0, c0, g0, ox1, dy1, c1, g1, ox2, dy2, c2, g2, z0,
                             z1, z2, perspective_correct, one)  # all lanes, vector divisions
                    for j in range(j0 + first, j0 + last + 1):  # inline: a helper taking the
                        if not (bits >> (j - j0)) & 1:  # arrays costs refcounts (8 %); never
                            continue  # taken (the covered run is contiguous), exact regardless
                        uj, lane = np.uintp(j), np.uintp(j - j0)
                        b0, b1, b2, d = lb[0, lane], lb[1, lane], lb[2, lane], lb[3, lane]
                        key = np.float32(d)
                        if key < zb[ui, uj] or (key == zb[ui, uj] and f < fi[ui, uj]):
                            zb[ui, uj] = key
                            fi[ui, uj] = f
                            ba[ui, uj, 0] = b0
                            ba[ui, uj, 1] = b1
                            ba[ui, uj, 2] = b2
                            de[ui, uj] = d
                            if not np.isfinite(b0 + b1 + b2 + d):  # NaN/Inf in any of them
                                nonfinite[task] += 1
                continue
            # wide box: scan each row from its analytic span (docstring)
            e0, e1, e2 = _edge_side(m0, dy0), _edge_side(m1, dy1), _edge_side(m2, dy2)
            inv0 = 1.0 / np.float64(dy0) if e0 != 0 else 0.0
            inv1 = 1.0 / np.float64(dy1) if e1 != 0 else 0.0
            inv2 = 1.0 / np.float64(dy2) if e2 != 0 else 0.0
            for i in range(i0, i1 + 1):
                ui = np.uintp(i)
                py = ys[ui]
                c0 = (py - oy0) * dx0  # per-row part of each edge function
                c1 = (py - oy1) * dx1
                c2 = (py - oy2) * dx2
                ja, jb = j0, j1
                xl, kl, xr, kr = _span_bound(e0, ox0, inv0, c0, 0, -np.inf, -1, np.inf, -1)
                xl, kl, xr, kr = _span_bound(e1, ox1, inv1, c1, 1, xl, kl, xr, kr)
                xl, kl, xr, kr = _span_bound(e2, ox2, inv2, c2, 2, xl, kl, xr, kr)
                first = np.ceil(xl - 0.5)  # first centre right of the left crossing
                if kl >= 0 and first > j0:  # NaN compares false: full row
                    ja = int(min(first, j1 + 1.0))
                    if _passes(xs[np.uintp(ja - 1)], *_edge_k(kl, ox0, dy0, c0, m0, t0, ox1, dy1,
                                                              c1, m1, t1, ox2, dy2, c2, m2, t2)):
                        ja = j0  # certificate failed (rounding): scan the whole row
                last = np.floor(xr - 0.5)
                if kr >= 0 and last < j1:
                    jb = int(max(last, j0 - 1.0))
                    if _passes(xs[np.uintp(jb + 1)], *_edge_k(kr, ox0, dy0, c0, m0, t0, ox1, dy1,
                                                              c1, m1, t1, ox2, dy2, c2, m2, t2)):
                        jb = j1
                seen = False  # a covered pixel met in this row
                for j in range(ja, jb + 1):
                    uj = np.uintp(j)
                    px = xs[uj]
                    r0 = (px - ox0) * dy0 - c0
                    r1 = (px - ox1) * dy1 - c1
                    r2 = (px - ox2) * dy2 - c2
                    if not ((m0 * r0 > 0 or (r0 == 0 and t0))
                            and (m1 * r1 > 0 or (r1 == 0 and t1))
                            and (m2 * r2 > 0 or (r2 == 0 and t2))):
                        if seen:
                            break  # convex: a row's covered pixels are contiguous (docstring)
                        continue
                    seen = True
                    # g * r is edge_function(...) bit for bit (same products, exact negation),
                    # so these are the values the reference's resolve step computes
                    b0, b1, b2, d = bary_depth4(g0 * r0, g1 * r1, g2 * r2, z0, z1, z2,
                                                perspective_correct, one)
                    key = np.float32(d)
                    if key < zb[ui, uj] or (key == zb[ui, uj] and f < fi[ui, uj]):
                        zb[ui, uj] = key
                        fi[ui, uj] = f
                        ba[ui, uj, 0] = b0
                        ba[ui, uj, 1] = b1
                        ba[ui, uj, 2] = b2
                        de[ui, uj] = d
                        if not np.isfinite(b0 + b1 + b2 + d):  # NaN/Inf in any of them
                            nonfinite[task] += 1
        if slot > 0:
            ctl[4 * slot - 2] = claimed  # read by the caller after the helper's release
    return bad_faces


bad_vertices = njit(cache=True, parallel=True)(_bad_vertices_py)
rasterize_bands = njit(cache=True, parallel=True)(_rasterize_bands_py)
# Serial twins (prange runs as range): used when one task or one thread would run anyway,
# since a parallel launch on Numba's workqueue layer costs ~40 µs (facelab._threads). They
# use NumPy's error model, as parallel=True does, so a degenerate triangle gives inf/NaN
# (which the public functions turn into a ValueError) in both, never a ZeroDivisionError.
# Compiled without the GIL: the face split's helper threads run the rasterizer's at once.
_SERIAL = {k: serial_twin(getattr(k, "py_func", k), error_model="numpy", nogil=True) for k in (
    bad_vertices, rasterize_bands, interpolate_forward, pixel_barycentrics,
    interpolate_backward)}




def _variant(kernel, n_tasks: int, threads: int | None = None):
    """``kernel`` (parallel) or its serial twin when n_tasks <= 1 or on one Numba thread
    (threads: ``parallel_threads()`` when None)."""
    if n_tasks <= 1:
        return _SERIAL[kernel]
    threads = parallel_threads() if threads is None else threads
    return _SERIAL[kernel] if threads == 1 else kernel


# --------------------------------------------------------------------------------- drivers
@functools.lru_cache(maxsize=16)
def _pixel_centres(n: int, dtype) -> np.ndarray:
    """(n,) centres k + 0.5 in ``dtype``, cached: the kernels only read them (~5 us a call)."""
    return np.arange(n, dtype=dtype) + dtype.type(0.5)


def _band_count(batch: int, threads: int | None = None) -> int:
    """Row bands per item: enough tasks for every thread (``parallel_threads()`` if None)."""
    threads = parallel_threads() if threads is None else threads
    return 1 if batch >= threads else -(-threads // batch)


#: A parallel launch of the rasterizer (~45 µs on workqueue) pays only from about this many
#: pixels in the call (B x H x W); below it the serial twin runs whatever the thread count.
PARALLEL_MIN_PIXELS = 32_768
#: Rows are split into bands (fewer items than threads, when the face split below does not
#: apply) only from this many pixels per image: each band redoes the triangle pass, and two
#: tasks of one workqueue launch do not run side by side here: the pool's workers are woken
#: while the caller sleeps (a vectorised loop: 0.49 ms as two tasks against 0.25 ms as one;
#: 2 threads ÷ 1 at batch 1 was 0.67 at 224² in bands; omp, whose caller works and whose
#: workers spin: 1.0x; two processes: 1.0x). So images up to 1024² run serially there.
BAND_MIN_PIXELS = 1 << 20
#: The vertex pass (``bad_vertices``, ~0.5 ns per vertex since it vectorises) runs one
#: task per item in parallel only from this many vertices in the call (B x V): below it a
#: ~45 µs launch costs more than the whole pass. At batch 1 it is always serial.
PARALLEL_MIN_VERTICES = 1 << 17


#: At batch 1 on several threads, meshes of at least this many faces (and images of at least
#: ``PARALLEL_MIN_PIXELS``) are split by faces between the caller and up to
#: ``MAX_SPLIT_HELPERS`` helper threads (:mod:`facelab.raster.helpers`), while that pays. One
#: helper: the only count measured here (2 cores); it shares the merge with the caller, while
#: further helpers' buffers are merged by the caller alone (exact, tested, not measured).
SPLIT_MIN_FACES = 8 * CHUNK
MAX_SPLIT_HELPERS = 1


def _launch_plan(B: int, V: int, F: int, height: int, width: int,
                 threads: int | None = None):
    """``(vertex_threads, raster_threads, n_bands, split_helpers)`` for one
    ``rasterize_numba_counts`` call: the thread counts handed to ``_variant`` (1 picks the
    serial twin), the row bands per item (1 below ``BAND_MIN_PIXELS`` per image), and the
    helper threads of a face split at batch 1 (0: none; then the other three apply).
    threads: ``parallel_threads()`` when None."""
    threads = parallel_threads() if threads is None else threads
    vertex_threads = threads if B > 1 and B * V >= PARALLEL_MIN_VERTICES else 1
    raster_threads = threads if B * height * width >= PARALLEL_MIN_PIXELS else 1
    if (B == 1 and raster_threads > 1 and F >= SPLIT_MIN_FACES and V > 0
            and not numba_config.DISABLE_JIT):  # helpers would run plain Python
        return 1, 1, 1, min(raster_threads - 1, MAX_SPLIT_HELPERS)
    if height * width < BAND_MIN_PIXELS:  # no row bands: only the items feed the threads
        return vertex_threads, raster_threads if B > 1 else 1, 1, 0
    return vertex_threads, raster_threads, _band_count(B, raster_threads), 0


#: Bounding boxes at least this many pixels wider than one column scan each row from an
#: analytic span (``_rasterize_bands_py``); narrower ones scan the box (set-up not worth it).
SPAN_MIN_WIDTH = 4
#: Boxes of at most this many pixels (<= ``triangles.CANDIDATES``) are resolved by the
#: vectorised triangle pass; 0 sends every kept face through the scan (tests compare both).
SMALL_BOX_PIXELS = CANDIDATES
#: Bounding boxes ``SPAN_MIN_WIDTH`` + 1 to this many pixels wide (at most ``lanes.RUN_LANES``)
#: take the vector row path (``_rasterize_bands_py``, ``lanes.row_run``/``row_bary``); 0: off.
RUN_MAX_WIDTH = RUN_LANES

def rasterize_numba_counts(verts: np.ndarray, faces: np.ndarray, height: int, width: int,
                           perspective_correct: bool, cull_backfaces: bool, near: float,
                           coord_limit: float = np.inf):
    """``rasterize_numba`` that also checks values on the way, for the public API.

    Returns ``(face_index, bary, depth, bad_vertices, nonfinite_writes, bad_faces)``:
    bad_vertices counts vertices with a NaN/Inf coordinate or one beyond ``coord_limit`` (then
    nothing was rasterized and the outputs are undefined: the caller raises); nonfinite_writes
    > 0 when some pixel may hold a non-finite barycentric or depth (the caller checks the
    outputs); bad_faces > 0 when a face indexes a vertex outside [0, V) (those faces were
    skipped: the caller raises).
    The vertex pass counts bad vertices (one vectorised pass) and the rasterizer counts
    non-finite winners as it writes them, so no extra pass over the outputs is needed.
    """
    dtype = verts.dtype
    one = dtype.type(1)
    B = verts.shape[0]
    faces = np.ascontiguousarray(faces)  # the kernel reads it flat (no copy when it is)
    face_index, bary, depth = _outputs(B, height, width, dtype)
    vertex_threads, raster_threads, n_bands, split_helpers = _launch_plan(
        B, verts.shape[1], faces.shape[0], height, width)
    bad = _variant(bad_vertices, B, vertex_threads)(verts, float(coord_limit))
    if bad:
        return face_index, bary, depth, int(bad), 0, 0
    xs, ys = _pixel_centres(width, dtype), _pixel_centres(height, dtype)
    nonfinite = np.empty(B * n_bands, dtype=np.int64)
    args = (verts, faces, xs, ys, dtype.type(near), cull_backfaces, perspective_correct, one,
            n_bands, SPAN_MIN_WIDTH, SMALL_BOX_PIXELS, RUN_MAX_WIDTH,
            _zbuffer((B, height, width)), face_index, bary, depth, nonfinite)
    if split_helpers:  # batch 1 on the caller and helper threads while that pays
        kind, t0 = (height, width, faces.shape[0], dtype.str), time.perf_counter()
        if split_pays(kind):
            bad_faces, nonfinite_writes = rasterize_split(_SERIAL[rasterize_bands], args,
                                                          split_helpers)
            record_time(kind, True, time.perf_counter() - t0)
            return face_index, bary, depth, 0, nonfinite_writes, bad_faces
    bad_faces = _variant(rasterize_bands, B * n_bands, raster_threads)(*args, _NO_CTL, -1)
    if split_helpers:
        record_time(kind, False, time.perf_counter() - t0)
    return face_index, bary, depth, 0, int(nonfinite.sum()), int(bad_faces)


def rasterize_numba(verts: np.ndarray, faces: np.ndarray, height: int, width: int,
                    perspective_correct: bool, cull_backfaces: bool, near: float):
    """Numba rasterizer on validated NumPy inputs (same contract as ``rasterize_reference``).

    verts: (B, V, 3) float32/float64 C-contiguous; faces: (F, 3) int64; near: resolved
    (``reference.resolve_near``). Returns ``(face_index, bary, depth)`` NumPy arrays, new or
    recycled from an earlier call that nobody refers to any more (``_outputs``).
    One pass over the triangles (no resolve pass). On several threads a batch is spread by
    item; one image is split by faces between the caller and a helper thread while that pays
    (:mod:`facelab.raster.helpers`), and otherwise large images of a small batch by rows
    (bands, one task each, which all walk the triangle list and skip those outside their
    rows): each race-free and exactly the sequential winner.
    """
    *out, _, _, bad_faces = rasterize_numba_counts(verts, faces, height, width,
                                                   perspective_correct, cull_backfaces, near)
    if bad_faces:
        raise ValueError(f"faces: expected indices in [0, {verts.shape[1]}), got faces "
                         "indexing outside it")
    return tuple(out)


def pixel_barycentrics_numba(verts, face_index, faces, perspective_correct):
    """(B, H, W, 3) barycentrics recomputed from ``verts`` for the given face assignment."""
    dtype = verts.dtype
    B, H, W = face_index.shape
    bary = np.empty((B, H, W, 3), dtype=dtype)
    _variant(pixel_barycentrics, B * H)(verts, face_index, faces, _pixel_centres(W, dtype),
                       _pixel_centres(H, dtype), perspective_correct, dtype.type(1), bary)
    return bary


def interpolate_forward_numba(attrs, face_index, bary, faces):
    """(B, H, W, C) interpolated attributes; all inputs NumPy, bary in attrs' dtype."""
    B, H, W = face_index.shape
    out = np.empty((B, H, W, attrs.shape[2]), dtype=attrs.dtype)
    _variant(interpolate_forward, B * H)(attrs, face_index, bary, faces, out)
    return out


def interpolate_backward_numba(grad_out, attrs, face_index, bary, faces, verts,
                               perspective_correct, need_attrs, need_verts):
    """``(grad_attrs (B, V, C) or None, grad_verts (B, V, 3) or None)``."""
    dtype = attrs.dtype
    B, H, W = face_index.shape
    grad_attrs = np.zeros(attrs.shape if need_attrs else (1, 1, 1), dtype=dtype)
    if need_verts:
        grad_verts = np.zeros(verts.shape, dtype=dtype)
    else:
        verts = np.zeros((1, 1, 3), dtype=dtype)
        grad_verts = np.zeros((1, 1, 3), dtype=dtype)
    _variant(interpolate_backward, B)(grad_out, attrs, face_index, bary, faces, verts,
                                      _pixel_centres(W, dtype), _pixel_centres(H, dtype),
                                      perspective_correct, need_attrs, need_verts, grad_attrs,
                                      grad_verts)
    return (grad_attrs if need_attrs else None), (grad_verts if need_verts else None)
