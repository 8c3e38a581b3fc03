"""Row spans for the CPU rasterizer's wide triangles (:func:`facelab.raster.cpu.rasterize_bands`).

Along a pixel row each edge function of a triangle is linear in x, so the inside test of one
edge holds on a half-line of the row: a *left* edge bounds the covered run from the left, a
*right* edge from the right, a horizontal edge is constant along the row. The crossing
x = o.x + c / dy of each edge, in float64, estimates the run; the kernel scans from the
first pixel centre right of the largest left crossing to the last one left of the smallest
right crossing. Float rounding makes the kernel's own (float32) edge values differ from the
exact ones, so the estimate is only accepted with a *certificate*: the bounding edge's exact
inside test (the kernel's arithmetic, :func:`_passes`) must fail at the pixel just outside
the span. The rounded edge value is monotone in x (p.x - o.x, the product with dy and the
subtraction each are), so it then fails on every pixel beyond, and the scan covers every
pixel the box scan would: the outputs are bit-identical. When the certificate fails (far-out
vertices, where float32 rounds p.x - o.x to steps of pixels) that side of the row is scanned
from the box edge as before.

The helpers are ``register_jitable``: plain functions in Python, inlined when compiled.
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

__all__: list[str] = []


@register_jitable
def _edge_side(m, dy):
    """+1: the edge's inside test holds on a right half-line of each row (a left boundary),
    -1: on a left half-line (a right boundary), 0: horizontal (constant along a row)."""
    if dy == 0:
        return 0
    return 1 if m * dy > 0 else -1


@register_jitable
def _passes(px, ox, dy, c, m, t):
    """The kernel's inside test of one edge at pixel-centre x ``px`` (row part ``c``)."""
    r = (px - ox) * dy - c
    return m * r > 0 or (r == 0 and t)


@register_jitable
def _edge_k(k, ox0, dy0, c0, m0, t0, ox1, dy1, c1, m1, t1, ox2, dy2, c2, m2, t2):
    """Edge k's (ox, dy, c, m, t) of the three."""
    if k == 0:
        return ox0, dy0, c0, m0, t0
    if k == 1:
        return ox1, dy1, c1, m1, t1
    return ox2, dy2, c2, m2, t2


@register_jitable
def _span_bound(side, ox, inv, c, k, xl, kl, xr, kr):
    """Fold edge k's crossing x = ox + c / dy (float64) into the row's span estimate
    [xl, xr] (kl, kr: the edges that bound it, -1 for none)."""
    if side > 0:
        x = np.float64(ox) + np.float64(c) * inv
        if x > xl:
            return x, k, xr, kr
    elif side < 0:
        x = np.float64(ox) + np.float64(c) * inv
        if x < xr:
            return xl, kl, x, k
    return xl, kl, xr, kr
