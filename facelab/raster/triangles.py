"""The CPU rasterizer's data-parallel triangle pass (:func:`facelab.raster.cpu.rasterize_bands`).

A face mesh at a typical crop size is *per-triangle bound*: the 38k-triangle face grid at 224²
has 1.7 bounding-box pixels and 0.83 covered pixels per triangle, so a scalar loop that
branches per triangle (empty box? behind the near plane? degenerate? which way does each edge
run?) and per box pixel (inside?) spends most of its time in mispredicted branches. Here the
triangles are handled CHUNK at a time, in three loops:

1. :func:`gather_corners` (scalar): each face's three corners (x, y, depth) into a
   structure-of-arrays chunk buffer, so that the next loop reads only contiguous memory (AVX
   gathers with 64-bit indices measured no faster than scalar loads here, and they halve the
   vector width). A face indexing outside [0, V) counts and gets vertex 0 three times (area
   0: culled; the caller raises anyway).
2. :func:`triangle_pass` (two loops, each vectorised by LLVM, 16 float32 or 8 float64
   lanes: straight-line code, selects instead of branches, unit-stride loads and stores,
   unsigned indices, compiled with ``noalias`` arguments so that no run-time overlap checks
   are needed): first per face the pixel box (in the working dtype; exact after the clamps,
   see below), the verdict (empty box, behind the near plane, zero area, back face when
   culling) and the edge set-up of reference definition 1; then, for c = 0..3, candidate
   pixel c of every box of at most ``CANDIDATES`` pixels (1x1 to 1x4, 2x2: every triangle
   of the face grid at 224²): the inside test and, where inside, the barycentrics and depth
   (reference definition 4, ``barycentrics_and_depth`` as in the scan). The candidate loops
   run only up to the chunk's largest small box (one at 120², none when no box is small).
   Per face one int32 *mask*: bits 0-3 the covered candidates, ``GENERAL`` a kept face with
   a larger box (the kernel scans it), ``SMALL`` a kept face with a small box, then the
   top-left flags of its three edges.
3. :func:`compact` (scalar, branch-free): the faces with a covered candidate or GENERAL, in
   increasing id.

The kernel then walks the compacted faces in increasing id, writing each covered candidate
where it wins the depth test (strict ``<`` on the float32 key: ties keep the smaller id, as
before) and scanning the box of each GENERAL face (its edges set up again from the chunk's
corners: faster there than loading the stored set-up). Every value is computed by the same
expression on the same operands as in the scan (LLVM neither reassociates nor contracts
without fast-math), so the outputs are bit-identical; tests compare them with the reference
and with the scan of every box (``cpu.SMALL_BOX_PIXELS = 0``).

The box in the working dtype: ``_pixel_range`` computes ``ceil(lo - 0.5)`` in float64. In
float32, ``x - 0.5`` is exact for 0 <= x < 2^23; for negative x any rounding stays below
zero, where the clamps give 0 (first) and -1 (last) either way; for x >= 2^23 every result
is clamped to the image (sizes < 2^23). So the clamped ends are the float64 ones.

Measured (38k grid at 224², one thread): serial kernel 0.72 -> 0.42 ms thread CPU time in a
tight loop, about 3.2 ns per triangle gathering, 3 ns in the vectorised loops, 0.5 ns
compacting and 4 ns per written fragment. ``benchmarks/bench_raster_peers.py --threads 1
--rounds 30 --shuffle --sim3dr DIR`` (load 1.2-1.6, 2 shared cores), Sim3DR time / kernel
time, median [p10, p90], before -> after: 224² 1.53 [1.40, 1.66] -> 2.49 [2.18, 2.81]
(0.81 -> 0.48 ms); 120² 1.31 -> 2.60; batch 16 at 224² 1.54 -> 2.67 per frame; the "bfm"
model at 224² 1.47 -> 2.46; the teaching model and head at 512² (boxes of 36-56 pixels, all
scanned) unchanged (2.29 -> 2.30, 2.82 -> 2.84).

Not paid: AVX-512 gathers inside the vectorised loop (64-bit indices halve the lanes: 0.27 vs
0.22 ms for gather + pass); corners stored face by face (cheaper gather, 0.076 ms, but the
stride-9 loads cost more: 0.26 ms in all); barycentrics for every candidate with one
compaction entry per covered candidate (0.49 vs 0.40 ms: the compaction cost more than the
scan it saved); the GENERAL scan loading the set-up the pass stored (teaching 512² 1.74 vs
1.59 ms with the set-up recomputed); the gather vectorised (16 lanes, faces read as 32-bit
words: 0.115 vs 0.069 ms scalar); 128 or 512 faces per chunk instead of 256 (within noise).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core.compiler import Compiler
from numba.extending import overload, register_jitable

from facelab.raster.edges import _edge_setup, barycentrics_and_depth, edge_function

__all__: list[str] = []

#: faces per chunk: the chunk buffers (about 40 values per face) stay in the L1 cache.
CHUNK = 256
#: largest box (in pixels) whose candidates the vectorised pass resolves.
CANDIDATES = 4
#: mask bits: 0-3 the covered candidates of a small box, then a kept face with a larger box
#: (the kernel scans it), a kept face with a small box, and the top-left flags of its edges.
GENERAL, SMALL, TOP_LEFT = 16, 32, 64
#: the lowest set bit of a 4-bit mask (the next covered candidate).
LOWEST_BIT = np.array([0, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0], dtype=np.int64)

# Rows of the per-chunk buffers (each CHUNK long, indexed row * CHUNK + k, k the face in
# the chunk; separate arrays where one loop writes and another reads, so that LLVM sees no
# overlap). corners: x, y, depth of corner 0, 1, 2. ints (int32): the mask, the box (i0, i1,
# j0, j1; band rows clipped), the pixel count of a kept small box (else 0). reals: the edge
# set-up (origin x, y, direction x, y, sign g of edge 0, then 1, then 2) and the orientation
# s. pixels (int32): candidate c's flat index i * W + j (-1 outside). frags: candidate c's
# b0, b1, b2, depth in rows 4c..4c+3.
I_MASK, I_BOX, I_CANDIDATES = 0, 1, 5
N_INTS = I_CANDIDATES + 1
R_EDGE, R_SIGN = 0, 15
N_REALS = R_SIGN + 1


class _NoAliasCompiler(Compiler):
    """Numba's pipeline with ``noalias`` on the arguments' pointers: the pass writes only
    its chunk buffers, which never overlap what it reads. Without it LLVM must check the
    arrays for overlap at run time, which it refuses for this many arrays (the loop then
    stays scalar). ``Flags.noalias`` is what Numba's own parfor kernels use; should a Numba
    version drop it, the loops stay scalar: slower, the results the same."""

    def define_pipelines(self):
        self.state.flags.noalias = True
        return super().define_pipelines()


def cast_like(like, value):
    """``value`` converted to the type of ``like`` (np.float32 / np.float64)."""
    return type(like)(value)


@overload(cast_like)
def _cast_like_compiled(like, value):
    from numba.np.numpy_support import as_dtype

    to = as_dtype(like).type
    return lambda like, value: to(value)


def _gather_corners_py(verts, faces, f_lo, n, corners):
    """corners[(3 * corner + axis) * CHUNK + k] = verts[faces[f_lo + k, corner], axis].

    verts: (3 V,) flat, V >= 1; faces: (3 F,) flat int64. Returns how many faces have an
    index outside [0, V): they get vertex 0 three times (zero area, never drawn)."""
    nv = np.uintp(verts.shape[0] // 3)
    three, u1, u2 = np.uintp(3), np.uintp(1), np.uintp(2)
    n_bad = 0
    for k in range(n):
        uk = np.uintp(k)
        uf = np.uintp(f_lo + k) * three
        a0, a1, a2 = np.uintp(faces[uf]), np.uintp(faces[uf + u1]), np.uintp(faces[uf + u2])
        if a0 >= nv or a1 >= nv or a2 >= nv:  # negative ones wrap around: caught too
            n_bad += 1
            a0 = a1 = a2 = np.uintp(0)
        p0, p1, p2 = a0 * three, a1 * three, a2 * three
        corners[uk] = verts[p0]
        corners[np.uintp(CHUNK) + uk] = verts[p0 + u1]
        corners[np.uintp(2 * CHUNK) + uk] = verts[p0 + u2]
        corners[np.uintp(3 * CHUNK) + uk] = verts[p1]
        corners[np.uintp(4 * CHUNK) + uk] = verts[p1 + u1]
        corners[np.uintp(5 * CHUNK) + uk] = verts[p1 + u2]
        corners[np.uintp(6 * CHUNK) + uk] = verts[p2]
        corners[np.uintp(7 * CHUNK) + uk] = verts[p2 + u1]
        corners[np.uintp(8 * CHUNK) + uk] = verts[p2 + u2]
    return n_bad


@register_jitable
def _inside(px, py, ox, oy, dx, dy, m, t):
    """The kernel's edge value at (px, py) and its inside test (top-left rule on 0)."""
    r = (px - ox) * dy - (py - oy) * dx
    return r, (m * r > 0) | ((r == 0) & t)


def _triangle_pass_py(corners, n, r_lo, r_hi, width, near, cull, pc, one, small_max, ints,
                      reals, pixels, frags):
    """The vectorised pass over faces 0..n-1 of a chunk (module docstring); rows r_lo..r_hi
    (the task's band) are the only ones a box may cover; boxes of at most ``small_max``
    (<= CANDIDATES) pixels are resolved here, the rest are GENERAL (0: every kept face, the
    tests' way of comparing both paths). Two loops, each vectorised: the verdict and set-up
    of every face, then candidate c of every small box, for c = 0..3."""
    half = one / (one + one)
    zero = one - one
    w_hi = cast_like(one, width)
    lo_row, hi_row = cast_like(one, r_lo), cast_like(one, r_hi)
    n_max = cast_like(one, min(small_max, CANDIDATES))
    for k in range(n):
        x0, y0, z0 = corners[k], corners[CHUNK + k], corners[2 * CHUNK + k]
        x1, y1, z1 = corners[3 * CHUNK + k], corners[4 * CHUNK + k], corners[5 * CHUNK + k]
        x2, y2, z2 = corners[6 * CHUNK + k], corners[7 * CHUNK + k], corners[8 * CHUNK + k]
        # _pixel_range of the bounding box, rows clipped to the band (module docstring)
        j0 = min(max(np.ceil(min(x0, min(x1, x2)) - half), zero), w_hi)
        j1 = max(min(np.floor(max(x0, max(x1, x2)) - half), w_hi - one), -one)
        i0 = min(max(np.ceil(min(y0, min(y1, y2)) - half), lo_row), hi_row + one)
        i1 = max(min(np.floor(max(y0, max(y1, y2)) - half), hi_row), lo_row - one)
        area = edge_function(x1, y1, x2, y2, x0, y0)
        keep = (i0 <= i1) & (j0 <= j1) & ~(min(z0, min(z1, z2)) <= near) & (area != 0) \
            & ~(cull & (area < 0))
        s = one if area > 0 else -one
        ox0, oy0, dx0, dy0, g0, t0 = _edge_setup(x1, y1, x2, y2, s, one)
        ox1, oy1, dx1, dy1, g1, t1 = _edge_setup(x2, y2, x0, y0, s, one)
        ox2, oy2, dx2, dy2, g2, t2 = _edge_setup(x0, y0, x1, y1, s, one)
        n_box = (j1 - j0 + one) * (i1 - i0 + one)
        small = n_box <= n_max
        mask = (np.int32(SMALL) if small else np.int32(GENERAL)) if keep else np.int32(0)
        ints[I_CANDIDATES * CHUNK + k] = np.int32(n_box) if keep & small else np.int32(0)
        mask |= (np.int32(TOP_LEFT) if t0 else np.int32(0)) \
            | (np.int32(TOP_LEFT << 1) if t1 else np.int32(0)) \
            | (np.int32(TOP_LEFT << 2) if t2 else np.int32(0))
        ints[I_MASK * CHUNK + k] = mask
        ints[I_BOX * CHUNK + k] = np.int32(i0)
        ints[(I_BOX + 1) * CHUNK + k] = np.int32(i1)
        ints[(I_BOX + 2) * CHUNK + k] = np.int32(j0)
        ints[(I_BOX + 3) * CHUNK + k] = np.int32(j1)
        reals[R_EDGE * CHUNK + k] = ox0
        reals[(R_EDGE + 1) * CHUNK + k] = oy0
        reals[(R_EDGE + 2) * CHUNK + k] = dx0
        reals[(R_EDGE + 3) * CHUNK + k] = dy0
        reals[(R_EDGE + 4) * CHUNK + k] = g0
        reals[(R_EDGE + 5) * CHUNK + k] = ox1
        reals[(R_EDGE + 6) * CHUNK + k] = oy1
        reals[(R_EDGE + 7) * CHUNK + k] = dx1
        reals[(R_EDGE + 8) * CHUNK + k] = dy1
        reals[(R_EDGE + 9) * CHUNK + k] = g1
        reals[(R_EDGE + 10) * CHUNK + k] = ox2
        reals[(R_EDGE + 11) * CHUNK + k] = oy2
        reals[(R_EDGE + 12) * CHUNK + k] = dx2
        reals[(R_EDGE + 13) * CHUNK + k] = dy2
        reals[(R_EDGE + 14) * CHUNK + k] = g2
        reals[R_SIGN * CHUNK + k] = s
    most = 0  # the most candidates of a kept face: 1 at 120², 0 (skip) at 512²
    for k in range(n):
        most = max(most, ints[I_CANDIDATES * CHUNK + k])
    for c in range(most):  # row-major in the box
        cf = cast_like(one, c)
        pc_row, fc_row = np.uintp(c * CHUNK), np.uintp(4 * c * CHUNK)  # unsigned: LLVM then
        for k in range(n):  # sees a plain stride (no wrap-around select), vectorises
            mask = ints[I_MASK * CHUNK + k]
            i0 = cast_like(one, ints[I_BOX * CHUNK + k])
            i1 = cast_like(one, ints[(I_BOX + 1) * CHUNK + k])
            j0 = cast_like(one, ints[(I_BOX + 2) * CHUNK + k])
            w = cast_like(one, ints[(I_BOX + 3) * CHUNK + k]) - j0 + one
            di = ((one if cf >= w else zero) + (one if cf >= w + w else zero)) \
                + (one if cf >= w + w + w else zero)  # whole numbers: exact
            dj = cf - di * w
            py = (i0 + di) + half  # the pixel centre, = ys[i] (k + 0.5 is exact)
            px = (j0 + dj) + half
            s = reals[R_SIGN * CHUNK + k]
            ox0, oy0 = reals[R_EDGE * CHUNK + k], reals[(R_EDGE + 1) * CHUNK + k]
            dx0, dy0 = reals[(R_EDGE + 2) * CHUNK + k], reals[(R_EDGE + 3) * CHUNK + k]
            g0 = reals[(R_EDGE + 4) * CHUNK + k]
            ox1, oy1 = reals[(R_EDGE + 5) * CHUNK + k], reals[(R_EDGE + 6) * CHUNK + k]
            dx1, dy1 = reals[(R_EDGE + 7) * CHUNK + k], reals[(R_EDGE + 8) * CHUNK + k]
            g1 = reals[(R_EDGE + 9) * CHUNK + k]
            ox2, oy2 = reals[(R_EDGE + 10) * CHUNK + k], reals[(R_EDGE + 11) * CHUNK + k]
            dx2, dy2 = reals[(R_EDGE + 12) * CHUNK + k], reals[(R_EDGE + 13) * CHUNK + k]
            g2 = reals[(R_EDGE + 14) * CHUNK + k]
            r0, in0 = _inside(px, py, ox0, oy0, dx0, dy0, s * g0, (mask & TOP_LEFT) != 0)
            r1, in1 = _inside(px, py, ox1, oy1, dx1, dy1, s * g1, (mask & (TOP_LEFT << 1)) != 0)
            r2, in2 = _inside(px, py, ox2, oy2, dx2, dy2, s * g2, (mask & (TOP_LEFT << 2)) != 0)
            ins = in0 & in1 & in2 & ((mask & SMALL) != 0) & (cf < w * (i1 - i0 + one))
            z0, z1, z2 = corners[2 * CHUNK + k], corners[5 * CHUNK + k], corners[8 * CHUNK + k]
            # g * r is edge_function(...) bit for bit; outside, harmless values (no 0 / 0)
            b0, b1, b2, d = barycentrics_and_depth(
                g0 * r0 if ins else one, g1 * r1 if ins else one, g2 * r2 if ins else one,
                z0 if ins else one, z1 if ins else one, z2 if ins else one, pc, one)
            uk = np.uintp(k)
            ints[uk] = mask | (np.int32(1 << c) if ins else np.int32(0))  # I_MASK = 0
            pixels[pc_row + uk] = np.int32((i0 + di) * w_hi + (j0 + dj)) if ins \
                else np.int32(-1)
            frags[fc_row + uk] = b0
            frags[fc_row + np.uintp(CHUNK) + uk] = b1
            frags[fc_row + np.uintp(2 * CHUNK) + uk] = b2
            frags[fc_row + np.uintp(3 * CHUNK) + uk] = d


def _compact_py(ints, n, events):
    """events[:m] = the faces 0..n-1 of the chunk with a non-zero mask, increasing; returns m."""
    m = 0
    for k in range(n):
        events[m] = k
        m += (ints[I_MASK * CHUNK + k] & (GENERAL | 15)) != 0
    return m


gather_corners = njit(cache=True, error_model="numpy")(_gather_corners_py)
triangle_pass = njit(cache=True, error_model="numpy", pipeline_class=_NoAliasCompiler)(
    _triangle_pass_py)
compact = njit(cache=True, error_model="numpy")(_compact_py)
