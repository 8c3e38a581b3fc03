"""The NumPy reference rasterizer: the definition every compiled variant must match.

Readable first (notebook 00 walks through it); loops over batch items and triangles, and
vectorised only over the pixels of one triangle's bounding box. The Numba kernels
(``cpu.py``) and the CUDA kernels (``kernels/rasterize.cu``, ``kernels/interpolate.cu``)
implement exactly these formulas, in the same order, so that they agree bit for bit on
``face_index`` and to rounding on the rest.

Conventions (DESIGN.md):
* screen space: x right, y down, in pixels; pixel (i, j) is sampled at its centre
  p = (j + 0.5, i + 0.5); depth grows away from the camera and the nearest surface wins.
* a triangle is (v0, v1, v2) = screen_verts[b, faces[f]], each v = (x, y, depth).

The definitions, in order:

1. Edge function of the directed edge a -> b at a point p (twice the signed area of a, b, p)::

       E(a, b, p) = (p.x - a.x) * (b.y - a.y) - (p.y - a.y) * (b.x - a.x)

   It is evaluated from the endpoint that comes first in (y, x) order and negated when the
   edge runs the other way, so E(b, a, p) == -E(a, b, p) *bit for bit*: two triangles
   sharing an edge see exactly opposite values and a pixel centre can never fall into a
   rounding crack between them (watertightness).

2. Per triangle: w0 = E(v1, v2, p), w1 = E(v2, v0, p), w2 = E(v0, v1, p) and the signed
   doubled area A = E(v1, v2, v0). A == 0 (degenerate or edge-on) never hits.
   Winding: model faces are counter-clockwise seen from +z; the camera's y-flip
   (diag(1, -1, -1), model -> camera) keeps them counter-clockwise *as seen on screen*,
   which in y-down pixel coordinates gives A > 0. So **front-facing <=> A > 0**;
   ``cull_backfaces`` drops A < 0. With s = sign(A), the pixel centre is covered when,
   for each edge, s * w > 0, or w == 0 and the edge is a *top-left* edge.

3. Top-left fill rule (Direct3D/OpenGL): orient the edge so the triangle is counter-
   clockwise on screen, d = s * (b - a); it is a *left* edge when d.y > 0 and a *top* edge
   when d.y == 0 and d.x < 0. A pixel centre exactly on a shared edge is then owned by
   exactly one of the two triangles (the edge runs in opposite directions in them).

4. Barycentrics and depth (screen-space weights b; perspective-correct weights as 1/z)::

       b_k = w_k / (w0 + w1 + w2)                    (sum of the w's == A, so sum(b) == 1)
       linear:      depth = b0 z0 + b1 z1 + b2 z2,   bary = b
       perspective: q_k = b_k / z_k, Q = q0 + q1 + q2, depth = 1 / Q, bary_k = q_k / Q

   With ``perspective_correct`` the x, y are already projected (u = fx x/z + cx) and depth
   is the camera z, interpolated as 1/z.

5. Near plane: triangles with any vertex depth <= ``near`` (rounded to the vertices' dtype)
   are culled. ``near=None`` means
   0 when ``perspective_correct`` (only triangles wholly in front of the camera) and no
   culling otherwise (orthographic depths may have any sign).

6. Depth test: the key is (float32(depth), face id), smallest wins: nearer first, and
   equal float32 depths go to the smaller face id. This is the order of the GPU's packed
   64-bit atomicMin word (order-preserving depth bits << 32 | face id); the sequential
   loop over faces in increasing order with a strict ``<`` gives the same winner.

7. Empty pixels: face_index -1, bary 0, depth 0.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "edge_function",
    "is_top_left",
    "barycentrics_and_depth",
    "resolve_near",
    "rasterize_reference",
    "pixel_barycentrics_reference",
    "interpolate_reference",
    "interpolate_backward_reference",
    "vertex_visibility_reference",
]


def edge_function(ax, ay, bx, by, px, py):
    """E(a, b, p) = (p.x - a.x)(b.y - a.y) - (p.y - a.y)(b.x - a.x), antisymmetric bit for bit.

    a, b: the edge's endpoints (scalars); px, py: scalars or arrays of sample points.
    Positive when p is to the right of a -> b in y-down screen space.
    """
    if (ay, ax) > (by, bx):  # evaluate from the (y, x)-smaller endpoint, then flip the sign
        return -((px - bx) * (ay - by) - (py - by) * (ax - bx))
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


def is_top_left(dx, dy) -> bool:
    """Top-left rule for an edge direction (dx, dy) of a counter-clockwise-on-screen triangle."""
    return bool(dy > 0 or (dy == 0 and dx < 0))


def _covers(w, s, ax, ay, bx, by):
    """Inside test of one edge (a -> b) with value(s) w, for a triangle of orientation s."""
    top_left = is_top_left(s * (bx - ax), s * (by - ay))
    return (s * w > 0) | ((w == 0) & top_left)


def barycentrics_and_depth(w0, w1, w2, z0, z1, z2, perspective_correct: bool):
    """Barycentric weights and depth from the three edge values (definition 4 above)."""
    total = w0 + w1 + w2  # == A, the doubled signed area
    b0, b1, b2 = w0 / total, w1 / total, w2 / total
    if not perspective_correct:
        return b0, b1, b2, b0 * z0 + b1 * z1 + b2 * z2
    q0, q1, q2 = b0 / z0, b1 / z1, b2 / z2  # attributes / z are linear in screen space
    q = q0 + q1 + q2
    return q0 / q, q1 / q, q2 / q, 1 / q


def resolve_near(near, perspective_correct: bool) -> float:
    """The near-plane depth used for culling (definition 5): -inf means no culling."""
    if near is not None:
        return float(near)
    return 0.0 if perspective_correct else -math.inf


def _pixel_range(lo, hi, size):
    """Indices k whose centres k + 0.5 lie in [lo, hi], clamped to [0, size - 1].

    Computed in float64 (exact for float32 inputs) in every implementation; it only bounds
    the search, the inside test decides coverage.
    """
    first = max(math.ceil(float(lo) - 0.5), 0)
    last = min(math.floor(float(hi) - 0.5), size - 1)
    return first, last


def rasterize_reference(screen_verts, faces, height: int, width: int,
                        perspective_correct: bool = False, cull_backfaces: bool = False,
                        near=None):
    """Rasterize triangles by brute force over each bounding box (definitions 1-7).

    screen_verts: (B, V, 3) float32/float64 NumPy, (x_pix, y_pix, depth), already validated.
    faces: (F, 3) integer NumPy, indices into V.
    Returns NumPy ``(face_index (B, H, W) int64, bary (B, H, W, 3), depth (B, H, W))`` in
    the dtype of ``screen_verts``.
    """
    verts = np.asarray(screen_verts)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    dt = verts.dtype.type
    half = dt(0.5)
    B, H, W = verts.shape[0], int(height), int(width)
    near_z = dt(resolve_near(near, perspective_correct))  # compared in the vertices' dtype
    face_index = np.full((B, H, W), -1, dtype=np.int64)
    bary = np.zeros((B, H, W, 3), dtype=verts.dtype)
    depth = np.zeros((B, H, W), dtype=verts.dtype)
    zbuffer = np.full((B, H, W), np.inf, dtype=np.float32)  # float32 depth keys
    xs = np.arange(W, dtype=verts.dtype) + half  # (W,) pixel-centre x
    ys = np.arange(H, dtype=verts.dtype) + half  # (H,) pixel-centre y
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for b in range(B):
            for f in range(faces.shape[0]):
                (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = verts[b, faces[f]]  # (3, 3)
                if min(z0, z1, z2) <= near_z:
                    continue  # at or behind the near plane
                area = edge_function(x1, y1, x2, y2, x0, y0)  # A, doubled signed area
                if area == 0 or (cull_backfaces and area < 0):
                    continue  # degenerate / edge-on, or back-facing
                s = dt(1) if area > 0 else dt(-1)
                j0, j1 = _pixel_range(min(x0, x1, x2), max(x0, x1, x2), W)
                i0, i1 = _pixel_range(min(y0, y1, y2), max(y0, y1, y2), H)
                if j0 > j1 or i0 > i1:
                    continue  # no pixel centre inside the (clipped) bounding box
                px = xs[None, j0:j1 + 1]  # (1, w)
                py = ys[i0:i1 + 1, None]  # (h, 1)
                w0 = edge_function(x1, y1, x2, y2, px, py)  # (h, w), edge opposite v0
                w1 = edge_function(x2, y2, x0, y0, px, py)
                w2 = edge_function(x0, y0, x1, y1, px, py)
                inside = (_covers(w0, s, x1, y1, x2, y2) & _covers(w1, s, x2, y2, x0, y0)
                          & _covers(w2, s, x0, y0, x1, y1))
                b0, b1, b2, d = barycentrics_and_depth(w0, w1, w2, z0, z1, z2,
                                                       perspective_correct)
                key = d.astype(np.float32)
                zb = zbuffer[b, i0:i1 + 1, j0:j1 + 1]  # views into the buffers
                win = inside & (key < zb)  # strict: on equal keys the earlier (smaller) id stays
                zb[win] = key[win]
                face_index[b, i0:i1 + 1, j0:j1 + 1][win] = f
                out = bary[b, i0:i1 + 1, j0:j1 + 1]
                out[win] = np.stack([b0, b1, b2], axis=-1)[win]
                depth[b, i0:i1 + 1, j0:j1 + 1][win] = d[win]
    return face_index, bary, depth


def pixel_barycentrics_reference(screen_verts, face_index, faces, perspective_correct=False):
    """Barycentrics of each pixel centre in its (given) triangle, recomputed from the vertices.

    No inside test: this is the function whose derivative carries positional gradients.
    For unchanged vertices it reproduces ``rasterize_reference``'s ``bary`` exactly.
    Returns (B, H, W, 3) in the dtype of ``screen_verts``; 0 where face_index is -1.
    """
    verts = np.asarray(screen_verts)
    dt = verts.dtype.type
    B, H, W = face_index.shape
    bary = np.zeros((B, H, W, 3), dtype=verts.dtype)
    for b, i, j in zip(*np.nonzero(face_index >= 0), strict=True):
        (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = verts[b, faces[face_index[b, i, j]]]
        px, py = dt(j) + dt(0.5), dt(i) + dt(0.5)
        w0 = edge_function(x1, y1, x2, y2, px, py)
        w1 = edge_function(x2, y2, x0, y0, px, py)
        w2 = edge_function(x0, y0, x1, y1, px, py)
        bary[b, i, j] = barycentrics_and_depth(w0, w1, w2, z0, z1, z2, perspective_correct)[:3]
    return bary


def interpolate_reference(attrs, face_index, bary, faces):
    """out[b, i, j] = (b0 a0 + b1 a1) + b2 a2 with a_k = attrs[b, faces[face_index, k]].

    attrs: (B, V, C); face_index: (B, H, W); bary: (B, H, W, 3); faces: (F, 3).
    Returns (B, H, W, C) in the dtype of ``attrs``; 0 on empty pixels.
    """
    attrs = np.asarray(attrs)
    bary = np.asarray(bary).astype(attrs.dtype)
    hit = face_index >= 0  # (B, H, W)
    corner = faces[np.where(hit, face_index, 0)]  # (B, H, W, 3) vertex ids
    batch = np.arange(attrs.shape[0])[:, None, None]  # (B, 1, 1)
    a0, a1, a2 = (attrs[batch, corner[..., k]] for k in range(3))  # (B, H, W, C) each
    out = (bary[..., 0:1] * a0 + bary[..., 1:2] * a1) + bary[..., 2:3] * a2
    return np.where(hit[..., None], out, 0).astype(attrs.dtype)


def _edge_backward(grad_w, ax, ay, bx, by, px, py, grad_a, grad_b):
    """Accumulate dL/da, dL/db from dL/dE for E(a, b, p) (x, y components only)."""
    grad_a[0] += grad_w * (py - by)  # dE/da.x
    grad_a[1] += grad_w * (bx - px)  # dE/da.y
    grad_b[0] += grad_w * (ay - py)  # dE/db.x
    grad_b[1] += grad_w * (px - ax)  # dE/db.y


def interpolate_backward_reference(grad_out, attrs, face_index, bary, faces,
                                   screen_verts=None, perspective_correct=False):
    """Gradients of :func:`interpolate_reference` (pixel loops, for testing).

    grad_out: (B, H, W, C). Returns ``(grad_attrs (B, V, C), grad_verts (B, V, 3) or None)``;
    ``grad_verts`` (only when ``screen_verts`` is given) differentiates the barycentrics of
    definition 4 with respect to the vertices, the face assignment held fixed::

        dL/dw_k = (dL/db_k - sum_i dL/db_i b_i) / (w0 + w1 + w2)
        perspective: dL/dq_k = (dL/dbary_k - sum_i dL/dbary_i bary_i) / Q,
                     dL/db_k = dL/dq_k / z_k,  dL/dz_k = -dL/dq_k q_k / z_k
    """
    attrs = np.asarray(attrs)
    g = np.asarray(grad_out)
    grad_attrs = np.zeros_like(attrs)
    grad_verts = None if screen_verts is None else np.zeros_like(np.asarray(screen_verts))
    for b, i, j in zip(*np.nonzero(face_index >= 0), strict=True):
        corner = faces[face_index[b, i, j]]  # (3,)
        gp = g[b, i, j]  # (C,)
        for k in range(3):
            grad_attrs[b, corner[k]] += bary[b, i, j, k] * gp
        if grad_verts is None:
            continue
        v = np.asarray(screen_verts)[b, corner]  # (3, 3)
        dt = v.dtype.type
        px, py = dt(j) + dt(0.5), dt(i) + dt(0.5)
        edges = ((1, 2), (2, 0), (0, 1))  # w_k = E(v_a, v_b, p), the edge opposite v_k
        w = np.array([edge_function(v[a, 0], v[a, 1], v[c, 0], v[c, 1], px, py)
                      for a, c in edges])
        total = w.sum()
        bs = w / total  # screen-space barycentrics
        gbary = attrs[b, corner] @ gp  # (3,) dL/dbary_k = <a_k, g>
        gv = np.zeros((3, 3), dtype=v.dtype)
        if perspective_correct:
            q = bs / v[:, 2]
            bp = q / q.sum()
            gq = (gbary - gbary @ bp) / q.sum()
            gv[:, 2] = -gq * q / v[:, 2]
            gbs = gq / v[:, 2]
        else:
            gbs = gbary
        gw = (gbs - gbs @ bs) / total
        for k, (a, c) in enumerate(edges):
            _edge_backward(gw[k], v[a, 0], v[a, 1], v[c, 0], v[c, 1], px, py, gv[a], gv[c])
        np.add.at(grad_verts[b], corner, gv)
    return grad_attrs, grad_verts


def vertex_visibility_reference(screen_verts, faces, height, width, tolerance=0.02,
                                perspective_correct=False, near=None):
    """(B, V) bool: in the image, on a front-facing triangle, and not occluded.

    Occlusion test: depth_v <= zbuffer(pixel under v) + tolerance * extent, where the
    z-buffer is rendered with back faces culled and extent is the item's vertex depth range
    (its largest |depth| when that range is 0). An empty pixel occludes nothing.
    """
    verts = np.asarray(screen_verts)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    face_index, _, depth = rasterize_reference(verts, faces, height, width,
                                               perspective_correct, True, near)
    near_z = verts.dtype.type(resolve_near(near, perspective_correct))
    B, V = verts.shape[:2]
    visible = np.zeros((B, V), dtype=bool)
    for b in range(B):
        front = np.zeros(V, dtype=bool)
        for f in range(faces.shape[0]):
            (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = verts[b, faces[f]]
            if min(z0, z1, z2) > near_z and edge_function(x1, y1, x2, y2, x0, y0) > 0:
                front[faces[f]] = True
        z = verts[b, :, 2]
        extent = float(z.max() - z.min()) if V else 0.0
        if extent == 0.0 and V:
            extent = float(np.abs(z).max())
        tol = tolerance * extent
        for v in range(V):
            x, y, zv = verts[b, v]
            if not (front[v] and 0 <= x < width and 0 <= y < height):
                continue
            i, j = int(np.floor(y)), int(np.floor(x))
            visible[b, v] = face_index[b, i, j] < 0 or float(zv) <= float(depth[b, i, j]) + tol
    return visible
