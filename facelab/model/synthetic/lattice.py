"""The triangular lattice both built-in models are meshed from (version 1's face, version 2's head).

A lattice of equilateral triangles of side ``h`` lies over a 2-D design plane (version 1: the
unwrapped face ``(u, v)``; version 2: the warped texture plane ``(G, H)``), one row on the
mouth line, odd rows shifted by ``h / 2``. It is kept as a grid: rows ``k`` (``ks``), columns
``j``, a bool ``ok`` (R, C) of the vertices inside the domain, and triangles as (row, col)
index triples. Features are made crisp by *snapping* a few vertices onto designed curves (lid
margins, lip borders, eye and mouth corners, :func:`snap_features`); snaps or border moves that
leave a triangle a sliver are undone (:func:`undo_slivers`).
"""

from __future__ import annotations

import numpy as np

from facelab.model.synthetic import anatomy as A


def lattice_faces(ks: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Lattice triangles inside the domain as (row, col) index triples, CCW in the plane.

    ks: (R,) row numbers (row ``k`` sits at ``k * h * sqrt(3) / 2`` from the mouth line; even
    rows at columns ``j h``, odd rows at ``(j + 1/2) h``); ok: (R, C) bool inside mask.
    Returns (F, 3, 2) int64.
    """
    R, C = ok.shape
    tris = []
    for r in range(R - 1):
        c = np.arange(C - 1)
        if ks[r] % 2 == 0:  # row r at u = j h, row r+1 at (j + 1/2) h
            up = [(r, c), (r, c + 1), (r + 1, c)]
            down = [(r, c + 1), (r + 1, c + 1), (r + 1, c)]
        else:  # row r at (j + 1/2) h, row r+1 at j h
            up = [(r, c), (r, c + 1), (r + 1, c + 1)]
            down = [(r, c), (r + 1, c + 1), (r + 1, c)]
        for tri in (up, down):
            keep = ok[tri[0]] & ok[tri[1]] & ok[tri[2]]
            tris.append(np.stack([np.stack([t[0] * np.ones_like(c), t[1]], -1)[keep]
                                  for t in tri], axis=1))  # (n, 3, 2)
    return np.concatenate(tris, axis=0)


def border_vertices(tri_rc: np.ndarray, shape) -> np.ndarray:
    """Flat grid indices (row * C + col) of the vertices on the lattice's boundary edges.

    tri_rc: (F, 3, 2) from :func:`lattice_faces`; shape: the grid's (R, C).
    """
    e = np.concatenate([tri_rc[:, [0, 1]], tri_rc[:, [1, 2]], tri_rc[:, [2, 0]]])  # (3F, 2, 2)
    flat = e[..., 0] * shape[1] + e[..., 1]  # (3F, 2)
    key = np.sort(flat, axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    return np.unique(uniq[counts == 1].ravel())


def snap_features(uu, vv, ok, ks, h) -> None:
    """Move lattice vertices onto the designed curves, in place (version 1's rule).

    uu, vv: (R, C) unwrapped coordinates (mm) of the grid; ok: (R, C) inside mask; ks: (R,)
    row numbers; h: lattice spacing. The mouth corners go onto the mouth row; vertices within
    half a row of a lid margin (away from the eye corners) or a lip border go onto it; the
    vertex nearest each eye corner goes exactly onto the corner.
    """
    dv = h * np.sqrt(3.0) / 2.0
    u0, v0 = uu.copy(), vv.copy()
    r0 = int(np.nonzero(ks == 0)[0][0])
    for side in (-1.0, 1.0):  # mouth corners on the mouth row
        c = np.argmin(np.where(ok[r0], np.abs(uu[r0] - side * A.MOUTH_HALF_WIDTH), np.inf))
        uu[r0, c] = side * A.MOUTH_HALF_WIDTH
    not_mouth_row = np.ones_like(ok)
    not_mouth_row[r0] = False
    xi = A.eye_local(u0)  # |xi| < 0.9 only within an eye's width
    up, low = A.lid_curves(u0)
    snapped = np.zeros_like(ok)
    for curve in (up, low):
        span = (np.abs(xi) < 0.9) & (up - low > 0.9 * dv)
        sel = ok & span & (np.abs(v0 - curve) < 0.5 * dv) & ~snapped
        vv[sel] = curve[sel]
        snapped |= sel
    lu, ll = A.lip_borders(u0)
    for curve in (lu, ll):
        span = (np.abs(u0) < A.MOUTH_HALF_WIDTH - 3.0) & (np.abs(curve - A.MOUTH_V) > 1.2 * dv)
        sel = ok & span & not_mouth_row & (np.abs(v0 - curve) < 0.5 * dv) & ~snapped
        vv[sel] = curve[sel]
        snapped |= sel
    for side in (-1.0, 1.0):  # eye corners: the nearest vertex moved exactly onto each
        for cu in (A.EYE_U - A.EYE_HALF_WIDTH, A.EYE_U + A.EYE_HALF_WIDTH):
            cv = A.lid_curves(np.array(side * cu))[1]
            d = np.where(ok & ~snapped, np.hypot(u0 - side * cu, v0 - cv), np.inf)
            idx = np.unravel_index(np.argmin(d), d.shape)
            uu[idx], vv[idx] = side * cu, cv
            snapped[idx] = True


def tri_area(xy: np.ndarray, tri_rc: np.ndarray) -> np.ndarray:
    """(F,) signed areas of the lattice triangles; xy: (R, C, 2) grid coordinates."""
    tri = xy[tri_rc[..., 0], tri_rc[..., 1]]  # (F, 3, 2)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                  - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def undo_slivers(xx, yy, x0, y0, tri_rc, h, border=None, iterations: int = 20) -> None:
    """Undo vertex moves that made a lattice triangle a sliver, in place.

    xx, yy: (R, C) the moved grid coordinates; x0, y0: (R, C) the unmoved ones; tri_rc: (F, 3,
    2); h: spacing. A triangle under 20 % of the lattice's area has its moved vertices put
    back; ``border`` ((R, C) bool, optional) vertices are kept unless the triangle falls under
    2 % (a border row meeting a cut at a shallow angle makes thin but harmless triangles).
    Raises RuntimeError when the moves cannot be reconciled or a triangle is inverted.
    """
    full = np.sqrt(3.0) / 4.0 * h * h
    if border is None:
        border = np.zeros(xx.shape, bool)
    for _ in range(iterations):
        area = tri_area(np.stack([xx, yy], -1), tri_rc)
        rc = tri_rc.reshape(-1, 2)
        moved = ((xx[rc[:, 0], rc[:, 1]] != x0[rc[:, 0], rc[:, 1]])
                 | (yy[rc[:, 0], rc[:, 1]] != y0[rc[:, 0], rc[:, 1]])).reshape(-1, 3)
        fixed = border[rc[:, 0], rc[:, 1]].reshape(-1, 3)
        revert = moved & (((area < 0.2 * full)[:, None] & ~fixed) | (area < 0.02 * full)[:, None])
        if not revert.any():
            if (area <= 0).any():
                raise RuntimeError("synthetic mesh: a lattice triangle is inverted")
            return
        rc = tri_rc[revert]
        xx[rc[:, 0], rc[:, 1]] = x0[rc[:, 0], rc[:, 1]]
        yy[rc[:, 0], rc[:, 1]] = y0[rc[:, 0], rc[:, 1]]
    raise RuntimeError("synthetic mesh: could not place the border and feature vertices "
                       "without slivers")


def lattice_mirror(ks, js, ok, grid_index) -> np.ndarray:
    """(n,) index of each inside vertex's mirror image under u -> -u (the lattice's symmetry).

    ks: (R,) rows; js: (C,) columns; ok: (R, C); grid_index: (R, C) vertex index or -1.
    """
    jj = np.broadcast_to(js[None, :], ok.shape)
    mj = np.where(np.broadcast_to(ks[:, None] % 2 == 0, ok.shape), -jj, -jj - 1)
    return grid_index[np.nonzero(ok)[0], (mj + (-js[0]))[ok]]
