"""iBUG-68 landmarks on the built-in models: the shared definitions of both versions.

A landmark is the vertex nearest a designed point in the unwrapped ``(u, v)`` coordinates
(several of which are snapped lattice vertices, :func:`facelab.model.synthetic.lattice.
snap_features`); the subject's left side is the mirror image of the right. Eyes and lips are
anatomical positions (:func:`inner_points`); each version places the jaw contour, brows and
nose its own way.
"""

from __future__ import annotations

import numpy as np

from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic.mouth import KIND_SKIN, KIND_SLIT_LOW, KIND_SLIT_UP

# iBUG-68 landmark pairs (subject's right <-> left), used for symmetry.
MIRROR_68 = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
     27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
     64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip


def nearest_vertex(u, v, cand, pu: float, pv: float) -> int:
    """The vertex of ``cand`` nearest (pu, pv) in (u, v); midline points stay on the midline."""
    if abs(pu) < 1e-9:
        cand = cand[u[cand] == 0.0]
    d = np.hypot(u[cand] - pu, v[cand] - pv)
    return int(cand[np.argmin(d)])


def inner_points(kind) -> dict:
    """{iBUG index: (candidate vertices, u, v)} of the eyes (36-41) and lips (48-67), right
    side: eye corners on the lower lid's corners, lid points at u = 27 and 37 mm from the
    midline, lip corners and borders, inner lips on the slit's edges. kind: (V,) int8."""
    skin = np.nonzero(kind == KIND_SKIN)[0]
    up = np.nonzero(kind == KIND_SLIT_UP)[0]
    low = np.nonzero(kind == KIND_SLIT_LOW)[0]
    eu_in, eu_out = A.EYE_U - A.EYE_HALF_WIDTH, A.EYE_U + A.EYE_HALF_WIDTH
    lid = lambda x: A.lid_curves(np.array(float(x)))  # noqa: E731
    lip = lambda x: A.lip_borders(np.array(float(x)))  # noqa: E731
    pts = {}
    eye = [(-eu_out, lid(-eu_out)[1]), (-37.0, lid(-37.0)[0]), (-27.0, lid(-27.0)[0]),
           (-eu_in, lid(-eu_in)[1]), (-27.0, lid(-27.0)[1]), (-37.0, lid(-37.0)[1])]
    for i, (x, y) in enumerate(eye):
        pts[36 + i] = (skin, x, y)
    pts[48] = (skin, -A.MOUTH_HALF_WIDTH, A.MOUTH_V)
    for i, x in enumerate((-15.0, -6.0, 0.0)):
        pts[49 + i] = (skin, x, lip(x)[0])
    for i, x in enumerate((0.0, -6.0, -15.0)):
        pts[57 + i] = (skin, x, lip(x)[1])
    pts[60] = (up, -A.MOUTH_HALF_WIDTH, A.MOUTH_V)
    pts[61], pts[62] = (up, -8.0, A.MOUTH_V), (up, 0.0, A.MOUTH_V)
    pts[66], pts[67] = (low, 0.0, A.MOUTH_V), (low, -8.0, A.MOUTH_V)
    return pts


def landmark_vertices(u, v, points: dict, mirror) -> np.ndarray:
    """(68,) int64 landmark vertices: the nearest vertex to each designed point of ``points``
    ({iBUG index: (candidates, u, v)}), the rest as mirror images (``mirror`` (V,))."""
    out = np.full(68, -1, dtype=np.int64)
    for i, (cand, x, y) in points.items():
        out[i] = nearest_vertex(u, v, cand, x, y)
    for i in range(68):
        if out[i] < 0:
            out[i] = mirror[out[MIRROR_68[i]]]
    return out
