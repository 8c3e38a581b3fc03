"""Four IEEE divisions as one vector division, for the rasterizer's per-pixel barycentrics.

Reference definition 4 (:mod:`facelab.raster.reference`) divides three (linear) or ten numbers per
covered pixel: ``b_k = w_k / total`` (k = 0, 1, 2) and, perspective-correct, ``q_k = b_k / z_k``
then ``q_k / Q`` and ``1 / Q``. Compiled by Numba as written, each is a scalar ``divss`` /
``divsd`` (LLVM does not merge them: it cannot, without fast-math, replace them by a
reciprocal, and its SLP vectoriser leaves them apart). :func:`div4` issues the four as one
``fdiv <4 x float>`` (``<4 x double>``): every lane is the same correctly rounded IEEE
quotient as the scalar division (no fast-math flags, so LLVM may not approximate it), so
results are bit for bit those of the scalar formula, including inf / NaN on a zero divisor —
the NumPy error model the kernels are compiled with. One vector division costs about what one
scalar division does, so perspective-correct definition 4 takes three divisions per covered
pixel instead of ten (:func:`facelab.raster.cpu.barycentrics_and_depth`; teaching model at
512², 1 thread: 1.69 -> 1.56 ms in a hot loop, 1.03-1.04x interleaved with the peers). The
linear case keeps its three scalar divisions: one vector division measured no faster there
(the pixel loop is not bound by division throughput), and neither did it pay in the gradient
of ``interpolate`` (5.4 -> 5.8 ms: the lane shuffles sit on the scatter's dependency chain).

Run as plain Python (``NUMBA_DISABLE_JIT=1``, or a ``register_jitable`` helper called from
Python) :func:`div4` is the four scalar divisions.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

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
