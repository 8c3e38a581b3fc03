"""The per-edge and per-pixel formulas of the CPU rasterizer, shared by its kernels
(:mod:`facelab.raster.cpu`) and its vectorised triangle pass (:mod:`facelab.raster.triangles`).

Each is written once so that every path computes a value by the same expression on the same
operands (bit-identical outputs); ``register_jitable``: plain functions in Python, inlined
when compiled.
"""

from __future__ import annotations

from numba.extending import register_jitable

__all__: list[str] = []


@register_jitable
def edge_function(ax, ay, bx, by, px, py):
    """E(a, b, p), evaluated from the (y, x)-smaller endpoint (reference definition 1)."""
    if ay > by or (ay == by and ax > bx):
        return -((px - bx) * (ay - by) - (py - by) * (ax - bx))
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


@register_jitable
def barycentrics_and_depth(w0, w1, w2, z0, z1, z2, perspective_correct, one):
    """Reference definition 4; ``one`` is 1 in the working dtype."""
    total = w0 + w1 + w2
    b0 = w0 / total
    b1 = w1 / total
    b2 = w2 / total
    if not perspective_correct:
        return b0, b1, b2, b0 * z0 + b1 * z1 + b2 * z2
    q0 = b0 / z0
    q1 = b1 / z1
    q2 = b2 / z2
    q = q0 + q1 + q2
    return q0 / q, q1 / q, q2 / q, one / q


@register_jitable
def _edge_setup(ax, ay, bx, by, s, one):
    """Per-edge constants: origin, direction, sign of the evaluation, top-left flag.

    E(a, b, p) == sign * ((p.x - ox) * dy - (p.y - oy) * dx) exactly as edge_function does.
    """
    if ay > by or (ay == by and ax > bx):
        ox, oy, dx, dy, sign = bx, by, ax - bx, ay - by, -one
    else:
        ox, oy, dx, dy, sign = ax, ay, bx - ax, by - ay, one
    tdx = s * (bx - ax)
    tdy = s * (by - ay)
    top_left = tdy > 0 or (tdy == 0 and tdx < 0)
    return ox, oy, dx, dy, sign, top_left
