"""The rasterizer's per-pixel arithmetic in vector lanes, bit for bit the scalar arithmetic.

Everything here evaluates the reference's definitions (:mod:`facelab.raster.reference`:
1-3 the edge functions and the top-left inside test, 4 barycentrics and depth) with LLVM
vector instructions built in Numba intrinsics: each lane runs the same IEEE operations in the
same order as the scalar code of :func:`facelab.raster.cpu.rasterize_bands` does for one
pixel, with no fast-math flags (LLVM may neither reassociate, contract into FMAs nor replace a
division by a reciprocal), so every lane holds the scalar result bit for bit, inf and NaN
included (the NumPy error model the kernels are compiled with). Numba does not vectorise this
itself: its SLP vectoriser leaves the three divisions of a pixel apart, and a row's few
pixels (about 3 per triangle row on the teaching model at 512²) are too few for its loop
vectoriser, which also cannot prove the output arrays distinct.

* :func:`div4`: four divisions as one ``fdiv <4 x T>``; perspective-correct definition 4
  (:func:`bary_depth4`) takes three instead of ten per pixel.
* :func:`row_run`: the inside test of 16 consecutive pixels of a row as one bit mask.
* :func:`row_bary`: definition 4 for those 16 pixels at once, into a (4, 16) scratch.

The last two make the rasterizer's vector row path (boxes 5-16 pixels wide): teaching model
at 512², 1 thread, hot loop 1.35 -> 1.06 ms linear, 1.66 -> 1.15 ms perspective; interleaved
with the peers (``benchmarks/bench_raster_peers.py``) 1.12x [1.04, 1.24] and 1.29x
[1.17, 1.40]. Tried and not kept: :func:`div4` on the linear path (no faster: three scalar
divisions overlap) and in the gradient of ``interpolate`` (5.4 -> 5.8 ms).

Each function is also a plain Python function (the scalar loop it replaces), which is what
runs under ``NUMBA_DISABLE_JIT=1`` or when the kernel's ``py_func`` is called; compiled, an
``@overload`` routes it to the intrinsic.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload, register_jitable

__all__: list[str] = []


def div4(a0, a1, a2, a3, d0, d1, d2, d3):
    """``(a0 / d0, a1 / d1, a2 / d2, a3 / d3)``, one correctly rounded division per lane."""
    return a0 / d0, a1 / d1, a2 / d2, a3 / d3


@intrinsic
def _fdiv4(typingctx, a0, a1, a2, a3, d0, d1, d2, d3):
    """LLVM ``fdiv`` of two 4-lane vectors built from eight scalars of one float type."""
    args = (a0, a1, a2, a3, d0, d1, d2, d3)
    if not isinstance(a0, types.Float) or any(t != a0 for t in args):
        return None
    sig = types.UniTuple(a0, 4)(*args)

    def codegen(context, builder, signature, values):
        vec = ir.VectorType(context.get_value_type(a0), 4)
        num, den = ir.Constant(vec, ir.Undefined), ir.Constant(vec, ir.Undefined)
        for k in range(4):
            lane = ir.Constant(ir.IntType(32), k)
            num = builder.insert_element(num, values[k], lane)
            den = builder.insert_element(den, values[4 + k], lane)
        quotient = builder.fdiv(num, den)  # no fast-math flags: IEEE division per lane
        lanes = [builder.extract_element(quotient, ir.Constant(ir.IntType(32), k))
                 for k in range(4)]
        return context.make_tuple(builder, signature.return_type, lanes)

    return sig, codegen


@overload(div4, jit_options={"inline": "always"})
def _div4_compiled(a0, a1, a2, a3, d0, d1, d2, d3):
    args = (a0, a1, a2, a3, d0, d1, d2, d3)
    if isinstance(a0, types.Float) and all(t == a0 for t in args):
        return lambda a0, a1, a2, a3, d0, d1, d2, d3: _fdiv4(a0, a1, a2, a3, d0, d1, d2, d3)
    return lambda a0, a1, a2, a3, d0, d1, d2, d3: (a0 / d0, a1 / d1, a2 / d2, a3 / d3)


@register_jitable
def bary_depth4(w0, w1, w2, z0, z1, z2, perspective_correct, one):
    """:func:`facelab.raster.edges.barycentrics_and_depth` (reference definition 4) with its
    perspective-correct ten divisions in the lanes of three vector divisions (:func:`div4`: the
    same IEEE quotients bit for bit; teaching model 512², 1 thread: 1.69 -> 1.56 ms). For the
    kernel's scanning loops; the vectorised triangle pass keeps the scalar one, as vector
    instructions in a loop stop LLVM's loop vectoriser."""
    total = w0 + w1 + w2
    if not perspective_correct:  # three scalar divisions: as fast here as one vector division
        b0 = w0 / total
        b1 = w1 / total
        b2 = w2 / total
        return b0, b1, b2, b0 * z0 + b1 * z1 + b2 * z2
    b0, b1, b2, _ = div4(w0, w1, w2, w2, total, total, total, total)  # one vector division
    q0, q1, q2, _ = div4(b0, b1, b2, b2, z0, z1, z2, z2)
    q = q0 + q1 + q2
    return div4(q0, q1, q2, one, q, q, q, q)


#: Pixels one row test covers (:func:`row_run`): 16 float32 lanes fill one AVX-512 register.
RUN_LANES = 16
#: Pixel centres ``k + 0.5`` are computed in the lanes from k; exact (and so equal to the
#: kernel's ``xs[k]``) below 2**23 in float32, so the vector test runs only left of this column.
RUN_MAX_COLUMN = 1 << 23


def row_run(j0, n, ox0, dy0, c0, m0, t0, ox1, dy1, c1, m1, t1, ox2, dy2, c2, m2, t2):
    """The covered pixels among ``j0 .. j0 + min(n, RUN_LANES) - 1`` of one row of a triangle:
    ``(first, last, bits)``, bit l of ``bits`` set when pixel ``j0 + l`` passes all three edge
    tests, ``first``/``last`` the lowest/highest set bit (64 and -1 when none).

    Each edge (origin x ``ox``, direction y ``dy``, row part ``c``, sign ``m``, top-left flag
    ``t``) is the kernel's inside test, evaluated with the same operations in the same order:
    ``r = (px - ox) * dy - c`` at ``px = k + 0.5``, inside when ``m * r > 0`` or (``r == 0`` and
    ``t``) (reference definitions 1-3). Compiled it is one vector evaluation of all lanes
    (``_row_run``); here, the scalar loop it replaces.
    """
    bits = 0
    real = type(ox0)
    half = real(0.5)
    for lane in range(min(n, RUN_LANES)):
        px = real(j0 + lane) + half
        inside = True
        for ox, dy, c, m, t in ((ox0, dy0, c0, m0, t0), (ox1, dy1, c1, m1, t1),
                                (ox2, dy2, c2, m2, t2)):
            r = (px - ox) * dy - c
            inside = inside and (m * r > 0 or (r == 0 and t))
        if inside:
            bits |= 1 << lane
    if not bits:
        return 64, -1, 0
    return (bits & -bits).bit_length() - 1, bits.bit_length() - 1, bits


@intrinsic
def _row_run(typingctx, j0, n, ox0, dy0, c0, m0, t0, ox1, dy1, c1, m1, t1, ox2, dy2, c2, m2,
             t2):
    """``row_run`` as RUN_LANES-wide LLVM vector operations (IEEE, no fast-math flags)."""
    args = (j0, n, ox0, dy0, c0, m0, t0, ox1, dy1, c1, m1, t1, ox2, dy2, c2, m2, t2)
    floats = args[2:4] + args[4:6] + args[7:11] + args[12:16]
    if (not isinstance(j0, types.Integer) or not isinstance(n, types.Integer)
            or not isinstance(ox0, types.Float) or any(t != ox0 for t in floats)
            or any(t != types.boolean for t in (t0, t1, t2))):
        return None
    sig = types.UniTuple(types.int64, 3)(*args)

    def codegen(context, builder, signature, values):
        i1, i32, i64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
        real = ir.VectorType(context.get_value_type(ox0), RUN_LANES)
        ints = ir.VectorType(i64, RUN_LANES)
        splat_mask = ir.Constant(ir.VectorType(i32, RUN_LANES), [0] * RUN_LANES)

        def splat(x, vec):
            one = builder.insert_element(ir.Constant(vec, ir.Undefined), x, ir.Constant(i32, 0))
            return builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined), splat_mask)

        first = context.cast(builder, values[0], signature.args[0], types.int64)
        count = context.cast(builder, values[1], signature.args[1], types.int64)
        lane = ir.Constant(ints, list(range(RUN_LANES)))
        px = builder.fadd(builder.sitofp(builder.add(splat(first, ints), lane), real),
                          ir.Constant(real, [0.5] * RUN_LANES))  # k + 0.5, exact below 2**23
        zero = ir.Constant(real, [0.0] * RUN_LANES)
        inside = builder.icmp_signed("<", lane, splat(count, ints))
        for k in range(3):
            ox, dy, c, m, t = values[2 + 5 * k:7 + 5 * k]
            r = builder.fsub(builder.fmul(builder.fsub(px, splat(ox, real)), splat(dy, real)),
                             splat(c, real))
            positive = builder.fcmp_ordered(">", builder.fmul(splat(m, real), r), zero)
            on_edge = builder.and_(builder.fcmp_ordered("==", r, zero),
                                   splat(t, ir.VectorType(i1, RUN_LANES)))
            inside = builder.and_(inside, builder.or_(positive, on_edge))
        bits = builder.zext(builder.bitcast(inside, ir.IntType(RUN_LANES)), i64)
        low = builder.cttz(bits, ir.Constant(i1, 0))  # 64 when no bit is set
        high = builder.sub(ir.Constant(i64, 63), builder.ctlz(bits, ir.Constant(i1, 0)))
        return context.make_tuple(builder, signature.return_type, [low, high, bits])

    return sig, codegen


@overload(row_run)
def _row_run_compiled(j0, n, ox0, dy0, c0, m0, t0, ox1, dy1, c1, m1, t1, ox2, dy2, c2, m2, t2):
    def impl(j0, n, ox0, dy0, c0, m0, t0, ox1, dy1, c1, m1, t1, ox2, dy2, c2, m2, t2):
        return _row_run(j0, n, ox0, dy0, c0, m0, t0, ox1, dy1, c1, m1, t1, ox2, dy2, c2, m2, t2)
    return impl


def row_bary(out, j0, ox0, dy0, c0, g0, ox1, dy1, c1, g1, ox2, dy2, c2, g2, z0, z1, z2,
             perspective_correct, one):
    """Barycentrics and depth of the pixels ``j0 .. j0 + RUN_LANES - 1`` of one row of a
    triangle, into ``out`` (4, RUN_LANES) in the working dtype: b0, b1, b2, depth.

    Edge k's value is ``g * ((px - ox) * dy - c)`` at ``px = k + 0.5`` (what the kernel's
    scanning loops compute, ``g * r``), then definition 4 (:func:`bary_depth4`): compiled, every
    lane runs the same IEEE operations in the same order as one scalar pixel does (vector
    divisions included), so each lane holds the scalar result bit for bit. Lanes whose pixel
    is not covered hold values nobody reads.
    """
    real = type(ox0)
    half = real(0.5)
    for lane in range(RUN_LANES):
        px = real(j0 + lane) + half
        out[:, lane] = bary_depth4(
            g0 * ((px - ox0) * dy0 - c0), g1 * ((px - ox1) * dy1 - c1),
            g2 * ((px - ox2) * dy2 - c2), z0, z1, z2, perspective_correct, one)


@intrinsic
def _row_bary(typingctx, out, j0, ox0, dy0, c0, g0, ox1, dy1, c1, g1, ox2, dy2, c2, g2, z0, z1,
              z2, perspective_correct, one):
    """``row_bary`` as RUN_LANES-wide LLVM vector operations (IEEE, no fast-math flags)."""
    args = (out, j0, ox0, dy0, c0, g0, ox1, dy1, c1, g1, ox2, dy2, c2, g2, z0, z1, z2,
            perspective_correct, one)
    floats = (*args[2:17], one)
    if (not isinstance(out, types.Array) or out.ndim != 2 or out.layout != "C"
            or not isinstance(j0, types.Integer) or not isinstance(ox0, types.Float)
            or out.dtype != ox0 or any(t != ox0 for t in floats)
            or perspective_correct != types.boolean):
        return None
    sig = types.void(*args)

    def codegen(context, builder, signature, values):
        i32 = ir.IntType(32)
        elem = context.get_value_type(ox0)
        real = ir.VectorType(elem, RUN_LANES)
        splat_mask = ir.Constant(ir.VectorType(i32, RUN_LANES), [0] * RUN_LANES)

        def splat(x):
            v = builder.insert_element(ir.Constant(real, ir.Undefined), x, ir.Constant(i32, 0))
            return builder.shuffle_vector(v, ir.Constant(real, ir.Undefined), splat_mask)

        first = context.cast(builder, values[1], signature.args[1], types.int64)
        ints = ir.VectorType(ir.IntType(64), RUN_LANES)
        first_v = builder.shuffle_vector(
            builder.insert_element(ir.Constant(ints, ir.Undefined), first, ir.Constant(i32, 0)),
            ir.Constant(ints, ir.Undefined), splat_mask)
        px = builder.fadd(builder.sitofp(builder.add(first_v, ir.Constant(
            ints, list(range(RUN_LANES)))), real), ir.Constant(real, [0.5] * RUN_LANES))
        w = []
        for k in range(3):
            ox, dy, c, g = (splat(v) for v in values[2 + 4 * k:6 + 4 * k])
            w.append(builder.fmul(g, builder.fsub(builder.fmul(builder.fsub(px, ox), dy), c)))
        z = [splat(v) for v in values[14:17]]
        total = builder.fadd(builder.fadd(w[0], w[1]), w[2])
        b = [builder.fdiv(wk, total) for wk in w]
        data = context.make_array(signature.args[0])(context, builder, values[0]).data
        base = builder.bitcast(data, real.as_pointer())
        align = 4 if ox0 == types.float32 else 8

        def store(rows):
            for k, row in enumerate(rows):
                builder.store(row, builder.gep(base, [ir.Constant(i32, k)]), align=align)

        with builder.if_else(values[17]) as (perspective, linear):
            with perspective:
                q = [builder.fdiv(b[k], z[k]) for k in range(3)]
                qs = builder.fadd(builder.fadd(q[0], q[1]), q[2])
                store([*(builder.fdiv(q[k], qs) for k in range(3)),
                       builder.fdiv(splat(values[18]), qs)])
            with linear:
                store([*b, builder.fadd(builder.fadd(builder.fmul(b[0], z[0]),
                                                     builder.fmul(b[1], z[1])),
                                        builder.fmul(b[2], z[2]))])
        return context.get_dummy_value()

    return sig, codegen


@overload(row_bary)
def _row_bary_compiled(out, j0, ox0, dy0, c0, g0, ox1, dy1, c1, g1, ox2, dy2, c2, g2, z0, z1, z2,
                       perspective_correct, one):
    def impl(out, j0, ox0, dy0, c0, g0, ox1, dy1, c1, g1, ox2, dy2, c2, g2, z0, z1, z2,
             perspective_correct, one):
        _row_bary(out, j0, ox0, dy0, c0, g0, ox1, dy1, c1, g1, ox2, dy2, c2, g2, z0, z1, z2,
                  perspective_correct, one)
    return impl
