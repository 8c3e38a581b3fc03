"""Numba CPU kernels for ``interpolate`` and its gradient, and the barycentrics of a given face
assignment, matching ``reference.py`` formula for formula (the drivers and serial twins are in
:mod:`facelab.raster.cpu`, beside the rasterizer's).

Race-free by construction: ``pixel_barycentrics`` / ``interpolate_forward`` run one task per
(batch item, row), each writing only its own row; ``interpolate_backward`` one task per batch
item (gradients of different items never share memory; pixels of one item scatter into shared
vertices, so they stay sequential).
"""

from __future__ import annotations

from numba import njit, prange
from numba.extending import register_jitable

from facelab.raster.edges import barycentrics_and_depth, edge_function

__all__: list[str] = []


def _interpolate_forward_py(attrs, face_index, bary, faces, out):
    """out[b, i, j] = (b0 a0 + b1 a1) + b2 a2; 0 where empty. out: (B, H, W, C)."""
    B, H, W = face_index.shape
    C = attrs.shape[2]
    for task in prange(B * H):
        b = task // H
        i = task - b * H
        for j in range(W):
            f = face_index[b, i, j]
            if f < 0:
                for c in range(C):
                    out[b, i, j, c] = 0
                continue
            v0, v1, v2 = faces[f, 0], faces[f, 1], faces[f, 2]
            b0, b1, b2 = bary[b, i, j, 0], bary[b, i, j, 1], bary[b, i, j, 2]
            for c in range(C):
                out[b, i, j, c] = (b0 * attrs[b, v0, c] + b1 * attrs[b, v1, c]) \
                    + b2 * attrs[b, v2, c]


def _pixel_barycentrics_py(verts, face_index, faces, xs, ys, perspective_correct, one, bary):
    """Barycentrics of each pixel centre in its given triangle, no inside test (B, H, W, 3)."""
    B, H, W = face_index.shape
    for task in prange(B * H):
        b = task // H
        i = task - b * H
        py = ys[i]
        for j in range(W):
            f = face_index[b, i, j]
            if f < 0:
                bary[b, i, j, 0] = 0
                bary[b, i, j, 1] = 0
                bary[b, i, j, 2] = 0
                continue
            px = xs[j]
            v0, v1, v2 = faces[f, 0], faces[f, 1], faces[f, 2]
            x0, y0, z0 = verts[b, v0, 0], verts[b, v0, 1], verts[b, v0, 2]
            x1, y1, z1 = verts[b, v1, 0], verts[b, v1, 1], verts[b, v1, 2]
            x2, y2, z2 = verts[b, v2, 0], verts[b, v2, 1], verts[b, v2, 2]
            w0 = edge_function(x1, y1, x2, y2, px, py)
            w1 = edge_function(x2, y2, x0, y0, px, py)
            w2 = edge_function(x0, y0, x1, y1, px, py)
            b0, b1, b2, _ = barycentrics_and_depth(w0, w1, w2, z0, z1, z2,
                                                   perspective_correct, one)
            bary[b, i, j, 0] = b0
            bary[b, i, j, 1] = b1
            bary[b, i, j, 2] = b2


@register_jitable
def _edge_backward(gw, ax, ay, bx, by, px, py, grad_verts, b, va, vb):
    """dL/da, dL/db (x, y) from dL/dE for E(a, b, p)."""
    grad_verts[b, va, 0] += gw * (py - by)
    grad_verts[b, va, 1] += gw * (bx - px)
    grad_verts[b, vb, 0] += gw * (ay - py)
    grad_verts[b, vb, 1] += gw * (px - ax)


def _interpolate_backward_py(grad_out, attrs, face_index, bary, faces, verts, xs, ys,
                             perspective_correct, need_attrs, need_verts, grad_attrs,
                             grad_verts):
    """Scatter dL/dattrs (B, V, C) and dL/dverts (B, V, 3) (see the reference's docstring)."""
    B, H, W = face_index.shape
    C = attrs.shape[2]
    for b in prange(B):
        for i in range(H):
            py = ys[i]
            for j in range(W):
                f = face_index[b, i, j]
                if f < 0:
                    continue
                v0, v1, v2 = faces[f, 0], faces[f, 1], faces[f, 2]
                if need_attrs:
                    for c in range(C):
                        g = grad_out[b, i, j, c]
                        grad_attrs[b, v0, c] += bary[b, i, j, 0] * g
                        grad_attrs[b, v1, c] += bary[b, i, j, 1] * g
                        grad_attrs[b, v2, c] += bary[b, i, j, 2] * g
                if not need_verts:
                    continue
                gb0 = gb1 = gb2 = grad_out[b, i, j, 0] * 0
                for c in range(C):
                    g = grad_out[b, i, j, c]
                    gb0 += attrs[b, v0, c] * g
                    gb1 += attrs[b, v1, c] * g
                    gb2 += attrs[b, v2, c] * g
                px = xs[j]
                x0, y0, z0 = verts[b, v0, 0], verts[b, v0, 1], verts[b, v0, 2]
                x1, y1, z1 = verts[b, v1, 0], verts[b, v1, 1], verts[b, v1, 2]
                x2, y2, z2 = verts[b, v2, 0], verts[b, v2, 1], verts[b, v2, 2]
                w0 = edge_function(x1, y1, x2, y2, px, py)
                w1 = edge_function(x2, y2, x0, y0, px, py)
                w2 = edge_function(x0, y0, x1, y1, px, py)
                total = w0 + w1 + w2
                s0, s1, s2 = w0 / total, w1 / total, w2 / total
                if perspective_correct:
                    q0, q1, q2 = s0 / z0, s1 / z1, s2 / z2
                    q = q0 + q1 + q2
                    dot = (gb0 * q0 + gb1 * q1 + gb2 * q2) / q
                    gq0, gq1, gq2 = (gb0 - dot) / q, (gb1 - dot) / q, (gb2 - dot) / q
                    grad_verts[b, v0, 2] -= gq0 * q0 / z0
                    grad_verts[b, v1, 2] -= gq1 * q1 / z1
                    grad_verts[b, v2, 2] -= gq2 * q2 / z2
                    gb0, gb1, gb2 = gq0 / z0, gq1 / z1, gq2 / z2
                dot = gb0 * s0 + gb1 * s1 + gb2 * s2
                _edge_backward((gb0 - dot) / total, x1, y1, x2, y2, px, py, grad_verts, b,
                               v1, v2)
                _edge_backward((gb1 - dot) / total, x2, y2, x0, y0, px, py, grad_verts, b,
                               v2, v0)
                _edge_backward((gb2 - dot) / total, x0, y0, x1, y1, px, py, grad_verts, b,
                               v0, v1)


interpolate_forward = njit(cache=True, parallel=True)(_interpolate_forward_py)
pixel_barycentrics = njit(cache=True, parallel=True)(_pixel_barycentrics_py)
interpolate_backward = njit(cache=True, parallel=True)(_interpolate_backward_py)
