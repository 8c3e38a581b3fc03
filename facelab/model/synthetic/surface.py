"""Mean geometry and topology of the synthetic face.

How the mesh is made (read with ``anatomy.py``):

1. **Unwrap.** The base surface is cut into horizontal rows; along each row we
   tabulate arc length ``u`` against the angle ``theta``, so that a point of the
   face is named by ``(u, v)`` with both coordinates in millimetres of surface.
2. **Lattice.** A triangular lattice (equilateral triangles of side ``h``) is
   laid over the ``(u, v)`` plane and clipped to the face-shaped domain (forehead,
   in front of the ears, a band under the jaw line). One lattice row sits exactly
   on the mouth line. A few lattice vertices are *snapped* onto designed curves
   (lid margins, eye and mouth corners, lip borders) so features are crisp even at
   3k vertices.
3. **Lift.** Each vertex goes to 3-D through ``P(u, v) = base + relief * radial``.
4. **Mouth.** The lattice row on the mouth line is split between the corners (the
   upper lip keeps the original vertices, the lower lip gets copies), opening a
   real slit, which is closed from behind by a *mouth pouch*: a tube of rings
   through the slit that forms the dark mouth interior when the jaw opens.
5. **Annotations.** iBUG-68 landmarks are the vertices nearest designed points
   (several of which are snapped exactly), the face mask drops the border band and
   the mouth interior, and the jaw weights are a smooth split along the mouth line.

Orientation: triangles are counter-clockwise in ``(u, v)`` and therefore seen
from +z (front-facing). Vertex kinds: 0 skin/eyes, 1 upper side of the slit,
2 lower side of the slit, 3 mouth pouch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic import ibug
from facelab.model.synthetic.ibug import MIRROR_68
from facelab.model.synthetic.lattice import (
    border_vertices,
    lattice_faces,
    lattice_mirror,
    snap_features,
    undo_slivers,
)
from facelab.model.synthetic.mouth import (
    KIND_POUCH,
    KIND_SKIN,
    KIND_SLIT_LOW,
    KIND_SLIT_UP,
    jaw_weights,
    pouch_faces,
    split_slit,
)
from facelab.model.synthetic.rows import interp_rows

__all__ = ["KIND_POUCH", "KIND_SKIN", "KIND_SLIT_LOW", "KIND_SLIT_UP", "MIRROR_68", "OFFSET",
           "Surface", "build_surface", "spacing_for", "surface_points", "theta_of", "u_of_theta"]

# Shift from the design frame to model space: centre of the bounding box at 0.
OFFSET = np.array([0.0, 8.0, -69.0])



@dataclass(frozen=True)
class Surface:
    """The mean mesh and the per-vertex design coordinates the bases are built on.

    verts: (V, 3) float64 model space (mm). faces: (F, 3) int64, CCW from +z.
    u, v: (V,) unwrapped coordinates (mm; pouch vertices carry their slit column's).
    theta: (V,) horizontal angle of the base. kind: (V,) int8 (see module doc).
    psi: (V,) angle round the mouth pouch (0 upper lip ... 2 pi lower lip), 0 elsewhere.
    landmarks: (68,) int64. face_mask: (V,) bool. jaw_joint: (3,). jaw_weights: (V,).
    mirror: (V,) int64 index of each vertex's left/right mirror image.
    spacing: lattice edge length h (mm).
    """

    verts: np.ndarray
    faces: np.ndarray
    u: np.ndarray
    v: np.ndarray
    theta: np.ndarray
    kind: np.ndarray
    psi: np.ndarray
    landmarks: np.ndarray
    face_mask: np.ndarray
    jaw_joint: np.ndarray
    jaw_weights: np.ndarray
    mirror: np.ndarray
    spacing: float


# ------------------------------------------------------------ the unwrapping
_V_MIN, _V_MAX, _DV = -130.0, 96.0, 0.5
_N_THETA = 1537


def _arc_tables():
    """Cumulative arc length S[j, i] along row v_j at angles theta_i >= 0."""
    vs = np.arange(_V_MIN, _V_MAX + _DV / 2, _DV)  # (R,)
    th = np.linspace(0.0, 0.5 * np.pi, _N_THETA)  # (T,)
    pts = A.base_xyz(th[None, :], vs[:, None])  # (R, T, 3)
    seg = np.linalg.norm(np.diff(pts, axis=1), axis=-1)  # (R, T-1)
    s = np.concatenate([np.zeros((len(vs), 1)), np.cumsum(seg, axis=1)], axis=1)
    return vs, th, s


_TABLES = None


def _row_interp(v):
    """The arc-length table's row j (V) below ``v`` and the fraction a towards row j + 1."""
    vs, _, _ = _arc_tables_cached()
    pos = np.clip((np.asarray(v, float) - _V_MIN) / _DV, 0.0, len(vs) - 1.000001)
    j = np.floor(pos).astype(np.int64)
    return j, pos - j


def theta_of(u, v):
    """Angle theta of the base point at arc length ``u`` along row ``v`` (arrays)."""
    _, th, s = _arc_tables_cached()
    u = np.asarray(u, float)
    j, a = _row_interp(v)
    return np.sign(u) * interp_rows(np.abs(u), j, a, s, th)


def u_of_theta(theta, v):
    """Arc length ``u`` of the base point at angle ``theta`` on row ``v`` (inverse of theta_of)."""
    _, th, s = _arc_tables_cached()
    theta = np.asarray(theta, float)
    j, a = _row_interp(v)
    return np.sign(theta) * interp_rows(np.abs(theta), j, a, th, s)


def _project_border(uu, vv, ok, tri_rc, h):
    """Move the lattice's boundary vertices onto the domain border (smooth outline)."""
    r, c = np.divmod(border_vertices(tri_rc, ok.shape), ok.shape[1])
    u, v = uu[r, c], vv[r, c]
    theta = theta_of(u, v)
    d_top = A.top_border(theta) - v
    d_bot = v - A.bottom_border(theta)
    side_u = u_of_theta(np.where(u < 0, -A.THETA_SIDE, A.THETA_SIDE), v)
    d_side = np.abs(side_u) - np.abs(u)
    which = np.argmin(np.stack([d_top, d_bot, d_side]), axis=0)
    new_u, new_v = u.copy(), v.copy()
    for _ in range(4):  # the border height depends on theta, which depends on v
        th = theta_of(new_u, new_v)
        new_v = np.where(which == 0, A.top_border(th), np.where(which == 1, A.bottom_border(th),
                                                                new_v))
    new_u = np.where(which == 2, side_u, new_u)
    move = np.hypot(new_u - u, new_v - v) < 1.2 * h
    uu[r[move], c[move]] = new_u[move]
    vv[r[move], c[move]] = new_v[move]


def surface_points(u, v, openness=(1.0, 1.0)):
    """Model-space points (..., 3) of the skin at unwrapped coordinates (u, v).

    openness: (right, left) eye openness; 0 closes that eye (used by blendshapes).
    """
    u = np.asarray(u, float)
    v = np.asarray(v, float)
    theta = theta_of(u, v)
    y, r = A.base_point(theta, v)
    r = r + A.relief(u, v, openness)
    return np.stack([r * np.sin(theta), y, r * np.cos(theta)], axis=-1) + OFFSET


# ----------------------------------------------------------------- lattice
def _inside(u, v):
    theta = theta_of(u, v)
    return (
        (np.abs(theta) <= A.THETA_SIDE)
        & (v <= A.top_border(theta))
        & (v >= A.bottom_border(theta))
    )


def _lattice(h):
    """Rows k, columns j, coordinates (u, v) of the clipped lattice, as a grid."""
    dv = h * np.sqrt(3.0) / 2.0
    k_lo = int(np.floor((_V_MIN + 2.0 - A.MOUTH_V) / dv))
    k_hi = int(np.ceil((A.TOP_V + 1.0 - A.MOUTH_V) / dv))
    ks = np.arange(k_lo, k_hi + 1)
    j_max = int(np.ceil(125.0 / h)) + 1
    js = np.arange(-j_max - 1, j_max + 1)
    kk, jj = np.meshgrid(ks, js, indexing="ij")  # (R, C)
    uu = (jj + 0.5 * (kk % 2)) * h
    vv = A.MOUTH_V + kk * dv
    ok = _inside(uu, vv) & (np.abs(uu) < 124.0)
    return ks, js, uu, vv, ok


def _count(h):
    return int(_lattice(h)[4].sum()) + _pouch_size(h)


def _pouch_size(h):
    n = int(2 * A.MOUTH_HALF_WIDTH / h)
    return max(n - 1, 1) * (_ring_count(h) - 1)


def _ring_count(h):
    return max(6, round(40.0 / h))


def spacing_for(n_vertices: int) -> float:
    """Lattice spacing h (mm) that gives about ``n_vertices`` vertices."""
    h = np.sqrt(2.0 * 36000.0 / (np.sqrt(3.0) * n_vertices))
    for _ in range(3):
        h *= np.sqrt(_count(h) / n_vertices)
    return float(h)


def _jaw_contour():
    """(9, 2) points (u, v) of landmarks 0..8 on the subject's right (u < 0)."""
    _, th, s = _arc_tables_cached()
    theta_c = 1.2
    vj = float(A.jaw_line(theta_c))
    side = np.stack([np.full(40, theta_c), np.linspace(14.0, vj, 40)], -1)
    bottom_t = np.linspace(theta_c, 0.0, 120)
    bottom = np.stack([bottom_t, A.jaw_line(bottom_t)], -1)
    pts = np.concatenate([side, bottom[1:]])  # (N, 2) theta, v
    u = np.array([np.interp(t, th, s[round((pv - _V_MIN) / _DV)]) for t, pv in pts])
    uv = np.stack([-u, pts[:, 1]], -1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(uv, axis=0), axis=1))])
    targets = np.linspace(0.0, arc[-1], 9)
    out = np.stack([np.interp(targets, arc, uv[:, 0]), np.interp(targets, arc, uv[:, 1])], -1)
    out[8, 0] = 0.0
    return out


def _arc_tables_cached():
    global _TABLES
    if _TABLES is None:
        _TABLES = _arc_tables()
    return _TABLES


def _landmarks(u, v, kind, mirror):
    """(68,) landmark vertices: :func:`ibug.inner_points` plus version 1's contour (along the
    jaw line), brows (on the brow curve) and nose points."""
    skin = np.nonzero(kind == KIND_SKIN)[0]
    pts = ibug.inner_points(kind)
    contour = _jaw_contour()
    for i in range(9):
        pts[i] = (skin, contour[i, 0], contour[i, 1])
    for i, x in enumerate((-56.0, -46.0, -36.0, -26.0, -16.0)):
        pts[17 + i] = (skin, x, float(A.brow_curve(x)))
    for i, y in enumerate((27.0, 15.0, 3.0, A.NOSE_TIP_V + 1.0)):
        pts[27 + i] = (skin, 0.0, y)
    for i, (x, y) in enumerate(((-10.0, -27.0), (-5.0, -29.0), (0.0, -30.5))):
        pts[31 + i] = (skin, x, y)
    return ibug.landmark_vertices(u, v, pts, mirror)


def build_surface(n_vertices: int) -> Surface:
    """Mean mesh of about ``n_vertices`` vertices (see the module docstring)."""
    h = spacing_for(n_vertices)
    ks, js, uu, vv, ok = _lattice(h)
    u0, v0 = uu.copy(), vv.copy()
    snap_features(uu, vv, ok, ks, h)
    tri_rc = lattice_faces(ks, ok)  # (F, 3, 2)
    _project_border(uu, vv, ok, tri_rc, h)
    undo_slivers(uu, vv, u0, v0, tri_rc, h)
    grid_index = np.full(ok.shape, -1, dtype=np.int64)
    grid_index[ok] = np.arange(int(ok.sum()))
    faces = grid_index[tri_rc[..., 0], tri_rc[..., 1]]  # (F, 3)
    rows = np.broadcast_to(ks[:, None], ok.shape)[ok]  # (V,)
    mirror = lattice_mirror(ks, js, ok, grid_index)  # the lattice's symmetry u -> -u
    u, v = uu[ok], vv[ok]
    n_lat = len(u)

    # -- the mouth slit: lower-lip copies of the mouth-row vertices between the corners
    faces, slit, copy_of, kind, mirror = split_slit(faces, rows, u, mirror)
    u = np.concatenate([u, u[slit]])
    v = np.concatenate([v, v[slit]])

    verts = surface_points(u, v)
    theta = theta_of(u, v)

    # -- the mouth pouch: rings through the slit, from the upper lip round to the lower lip
    corner_r = int(np.nonzero((rows == 0) & (u[:n_lat] == -A.MOUTH_HALF_WIDTH))[0][0])
    corner_l = int(np.nonzero((rows == 0) & (u[:n_lat] == A.MOUTH_HALF_WIDTH))[0][0])
    n_ring = _ring_count(h)
    psi = 2.0 * np.pi * np.arange(1, n_ring) / n_ring  # (K-1,)
    su = u[slit]
    f = np.sqrt(np.clip(1.0 - (su / A.MOUTH_HALF_WIDTH) ** 2, 0.0, 1.0))[:, None]  # (n, 1)
    base = verts[slit][:, None, :]  # (n, 1, 3)
    pouch = np.empty((len(slit), n_ring - 1, 3))
    pouch[..., 0] = base[..., 0] * (1.0 - 0.08 * (1.0 - np.cos(psi)))
    pouch[..., 1] = base[..., 1] + 7.0 * f * np.sin(psi)
    pouch[..., 2] = base[..., 2] - 8.0 * f * (1.0 - np.cos(psi)) - 5.0 * f * np.sin(0.5 * psi)
    n0 = len(u)
    pouch_index = n0 + np.arange(pouch.size // 3).reshape(len(slit), n_ring - 1)
    faces = np.concatenate([faces, pouch_faces(slit, pouch_index, copy_of, corner_r, corner_l)])
    verts = np.concatenate([verts, pouch.reshape(-1, 3)])
    n_pouch = pouch.size // 3
    kind = np.concatenate([kind, np.full(n_pouch, KIND_POUCH, np.int8)])
    psi_all = np.concatenate([np.zeros(n0), np.repeat(psi[None], len(slit), 0).ravel()])
    u = np.concatenate([u, np.repeat(su, n_ring - 1)])
    v = np.concatenate([v, np.full(n_pouch, A.MOUTH_V)])
    theta = np.concatenate([theta, np.repeat(theta[slit], n_ring - 1)])
    # pouch mirror: column i <-> column n-1-i, same ring position
    pm = pouch_index[::-1]
    mirror = np.concatenate([mirror, pm.ravel()])

    landmarks = _landmarks(u, v, kind, mirror)
    face_mask = (
        (kind != KIND_POUCH)
        & (np.abs(theta) < A.THETA_SIDE - 0.12)
        & (v < A.top_border(theta) - 5.0)
        & (v > A.jaw_line(theta) - 1.0)
    )
    jaw_joint = np.array([0.0, -10.0, 5.0]) + OFFSET
    return Surface(
        verts=verts, faces=faces.astype(np.int64), u=u, v=v, theta=theta, kind=kind,
        psi=psi_all, landmarks=landmarks, face_mask=face_mask, jaw_joint=jaw_joint,
        jaw_weights=jaw_weights(u, v, kind, psi_all), mirror=mirror.astype(np.int64), spacing=h,
    )
