"""The head's mouth: version 1's slit, and a deeper pouch behind it with room for the teeth.

The shell lattice's mouth row is split between the corners (the lower lip gets copies,
:func:`facelab.model.synthetic.mouth.split_slit`); a pouch of rings, a loop ``POUCH_HEIGHT``
high and ``2 POUCH_DEPTH`` deep, closes the slit from behind. The pouch is textured in two
mirror-image islands (``|u|``, angle round the pouch).
"""

from __future__ import annotations

import numpy as np

from facelab.model.head import shape as S
from facelab.model.head.islands import split_island_faces
from facelab.model.head.lattice import Lattice
from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic.mouth import KIND_POUCH, KIND_SLIT_LOW, pouch_faces, split_slit

POUCH_HEIGHT, POUCH_DEPTH = 13.0, 12.0  # half-height and half-depth of the pouch loop (mm)


def _psi_of(idx, psi_all, kind):
    """Angle round the pouch of vertices idx: 0 on the upper slit edge, 2 pi on the lower."""
    p = psi_all[idx].copy()
    p[kind[idx] == KIND_SLIT_LOW] = 2.0 * np.pi
    return p


def open_mouth(lat: Lattice) -> dict:
    """The shell's arrays with the mouth slit and pouch: ``verts`` (V, 3) design frame,
    ``faces``, ``uv_faces`` (F, 3), ``uv_gh`` (Vt, 2), ``uv_island`` (Vt,), ``kind``, ``u``,
    ``v``, ``psi`` (angle round the pouch), ``mirror`` (V,)."""
    n_lat, u, v, h = len(lat.u), lat.u, lat.v, lat.spacing
    faces, slit, copy_of, kind, mirror = split_slit(lat.faces, lat.rows, u, lat.mirror)
    uv_faces = lat.faces.copy()  # the copies share their originals' texture coordinates
    u = np.concatenate([u, u[slit]])
    v = np.concatenate([v, v[slit]])
    uv_gh = np.stack([lat.g, lat.hv], -1)
    uv_island = np.zeros(n_lat, np.int8)
    verts = S.skin_points(u, v)
    on_row = lat.rows == 0
    corner_r = int(np.nonzero(on_row & (u[:n_lat] == -A.MOUTH_HALF_WIDTH))[0][0])
    corner_l = int(np.nonzero(on_row & (u[:n_lat] == A.MOUTH_HALF_WIDTH))[0][0])

    # the pouch: rings from the upper lip round to the lower lip
    n_ring = max(8, round(60.0 / h))
    psi = 2.0 * np.pi * np.arange(1, n_ring) / n_ring
    su = u[slit]
    f = np.clip(1.0 - (su / A.MOUTH_HALF_WIDTH) ** 2, 0.0, 1.0)[:, None] ** 0.25
    base = verts[slit][:, None, :]
    pouch = np.empty((len(slit), n_ring - 1, 3))
    pouch[..., 0] = base[..., 0] * (1.0 - 0.05 * (1.0 - np.cos(psi)))
    pouch[..., 1] = base[..., 1] + POUCH_HEIGHT * f * np.sin(psi)
    pouch[..., 2] = base[..., 2] - POUCH_DEPTH * f * (1.0 - np.cos(psi))
    n0 = len(u)
    pouch_index = n0 + np.arange(pouch.size // 3).reshape(len(slit), n_ring - 1)
    pf = pouch_faces(slit, pouch_index, copy_of, corner_r, corner_l)
    n_pouch = pouch.size // 3
    verts = np.concatenate([verts, pouch.reshape(-1, 3)])
    kind = np.concatenate([kind, np.full(n_pouch, KIND_POUCH, np.int8)])
    psi_all = np.concatenate([np.zeros(n0), np.repeat(psi[None], len(slit), 0).ravel()])
    u = np.concatenate([u, np.repeat(su, n_ring - 1)])
    v = np.concatenate([v, np.full(n_pouch, A.MOUTH_V)])
    mirror = np.concatenate([mirror, pouch_index[::-1].ravel()])
    # pouch texture: an island per half (by the triangle's side), (|u|, psi) local coordinates
    pf_uv, pouch_uv = split_island_faces(
        pf, u, lambda idx: np.stack(
            [np.abs(u[idx]) / A.MOUTH_HALF_WIDTH, _psi_of(idx, psi_all, kind) / (2 * np.pi)], -1),
        first_uv=len(uv_gh))
    return {"verts": verts, "faces": np.concatenate([faces, pf]),
            "uv_faces": np.concatenate([uv_faces, pf_uv[0]]),
            "uv_gh": np.concatenate([uv_gh, pouch_uv]),
            "uv_island": np.concatenate([uv_island, pf_uv[1]]), "kind": kind, "u": u, "v": v,
            "psi": psi_all, "mirror": mirror}
