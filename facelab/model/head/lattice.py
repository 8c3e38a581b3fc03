"""The head shell's lattice: triangles regular in texture space, clipped to the unwrapped head.

A triangular lattice (:mod:`facelab.model.synthetic.lattice`), equilateral in the warped
coordinates ``(G, H) = (warp_u(u), warp_v(v))`` — i.e. in texture space — is clipped to the
unwrapped head: ``|G| <= warp_u(half_perimeter(v))`` (the back seam), ``v <= V_REF`` (the
crown, a lattice vertex) and above the neck cut. One row sits on the mouth line; vertices are
snapped onto the lid margins, lip borders and eye/mouth corners as in version 1, and the
border vertices are moved onto the seam or the neck cut (:func:`facelab.model.head.seam.
project_border`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelab.model.head import seam
from facelab.model.head import shape as S
from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic.lattice import (
    border_vertices,
    lattice_faces,
    lattice_mirror,
    snap_features,
    undo_slivers,
)


@dataclass
class Lattice:
    """The placed lattice (design frame, float64), n vertices.

    spacing: edge length h (warped mm); faces (F, 3) CCW in (G, H); rows (n,) lattice row (0
    the mouth row); mirror (n,) mirror-image index; g, hv (n,) warped texture-plane
    coordinates; u, v (n,) unwrapped coordinates; on_seam (n,) bool, on the back seam.
    """

    spacing: float
    faces: np.ndarray
    rows: np.ndarray
    mirror: np.ndarray
    g: np.ndarray
    hv: np.ndarray
    u: np.ndarray
    v: np.ndarray
    on_seam: np.ndarray


def _h_top():
    return float(S.warp_v(S.v_ref()))


def _h_mouth():
    return float(S.warp_v(A.MOUTH_V))


def _grid(h):
    """Rows k, columns j, warped (G, H), unwrapped (u, v) and the inside mask of the lattice."""
    dv = h * np.sqrt(3.0) / 2.0
    k_top = round((_h_top() - _h_mouth()) / dv)
    k_lo = int(np.floor((float(S.warp_v(S.v_bottom(0.0))) - 2.0 * dv - _h_mouth()) / dv))
    ks = np.arange(k_lo, k_top + 1)
    g_max = float(S.warp_u(S.tables()["arc"][:, -1].max()))
    j_max = int(np.ceil(g_max / h)) + 2
    js = np.arange(-j_max - 1, j_max + 1)
    kk, jj = np.meshgrid(ks, js, indexing="ij")
    gg = (jj + 0.5 * (kk % 2)) * h
    hh = _h_mouth() + kk * dv
    hh[kk == k_top] = _h_top()
    uu, vv = S.unwarp_u(gg), np.minimum(S.unwarp_v(hh), S.v_ref())
    seam_g = S.warp_u(S.half_perimeter(vv))
    theta = S.theta_of(uu, vv)
    ok = (np.abs(gg) <= seam_g + 1e-9) & (vv >= S.v_bottom(theta) - 1e-9)
    return ks, js, gg, hh, uu, vv, ok


def spacing_for(n_shell: int) -> float:
    """Lattice spacing (warped mm) whose lattice has about ``n_shell`` vertices; the crown sits
    on an even row (u = 0 is a lattice column there)."""
    h = 5.0
    for _ in range(4):
        h *= np.sqrt(int(_grid(h)[6].sum()) / n_shell)
        dv = h * np.sqrt(3.0) / 2.0
        k = max(2, 2 * round((_h_top() - _h_mouth()) / dv / 2.0))
        h = (_h_top() - _h_mouth()) / k * 2.0 / np.sqrt(3.0)
    return float(h)


def place_lattice(n_shell: int) -> Lattice:
    """The clipped, snapped lattice of about ``n_shell`` vertices (see the module docstring)."""
    h = spacing_for(n_shell)
    ks, js, gg, hh, uu, vv, ok = _grid(h)
    g0, h0 = gg.copy(), hh.copy()
    snap_features(uu, vv, ok, ks, h)
    moved = (uu != S.unwarp_u(g0)) | (vv != np.minimum(S.unwarp_v(h0), S.v_ref()))
    gg = np.where(moved, S.warp_u(uu), g0)
    hh = np.where(moved, S.warp_v(vv), h0)
    tri_rc = lattice_faces(ks, ok)
    seam_flags = seam.project_border(gg, hh, ok, tri_rc, h)
    border = np.zeros(ok.shape, bool)
    br, bc = np.divmod(border_vertices(tri_rc, ok.shape), ok.shape[1])
    border[br, bc] = True
    undo_slivers(gg, hh, g0, h0, tri_rc, h, border)
    seam_flags &= (gg != g0) | (hh != h0) | (np.abs(np.abs(gg) - S.warp_u(
        S.half_perimeter(np.minimum(S.unwarp_v(hh), S.v_ref())))) < 1e-6)
    grid_index = np.full(ok.shape, -1, dtype=np.int64)
    grid_index[ok] = np.arange(int(ok.sum()))
    g, hv = gg[ok], hh[ok]
    u = S.unwarp_u(g)
    return Lattice(
        spacing=h, faces=grid_index[tri_rc[..., 0], tri_rc[..., 1]],
        rows=np.broadcast_to(ks[:, None], ok.shape)[ok],
        mirror=lattice_mirror(ks, js, ok, grid_index), g=g, hv=hv,
        u=np.where(np.abs(g) < 1e-12, 0.0, u), v=np.minimum(S.unwarp_v(hv), S.v_ref()),
        on_seam=seam_flags[ok],
    )
