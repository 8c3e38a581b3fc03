"""Topology of the full head: the shell lattice, the back seam, mouth, eyeballs and teeth.

How the mesh is made (read with ``shape.py``):

1. **Lattice.** A triangular lattice (equilateral in the warped coordinates
   ``(G, H) = (warp_u(u), warp_v(v))``, i.e. in texture space) is clipped to the unwrapped head:
   ``|G| <= warp_u(half_perimeter(v))`` (the back seam), ``v <= V_REF`` (the crown, a lattice
   vertex) and above the neck cut. One row sits on the mouth line; vertices are snapped onto
   the lid margins, lip borders and eye/mouth corners as in version 1, and the border vertices
   are moved onto the seam or the neck cut.
2. **Seam.** Each border vertex on the seam's subject-right side (G < 0) is the same 3-D point
   as its mirror image (G > 0): the two are merged, keeping both texture coordinates (``uv``
   has more entries than the vertices; ``uv_faces`` indexes it). The shell is then one
   connected surface whose only boundary is the neck cut.
3. **Mouth.** Version 1's slit and pouch: the mouth row between the corners is split (the lower
   lip gets copies) and a deeper pouch of rings closes it from behind (room for the teeth).
4. **Eyeballs** (two spheres of ``EYE_RADIUS`` rings about +z) and **teeth** (an upper and a
   lower arch, closed swept tubes) are separate closed components.

Vertex kinds (``kind``): 0 skin, 1/2 upper/lower edge of the mouth slit, 3 mouth pouch,
4/5 right/left eyeball, 6/7 upper/lower teeth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelab.model.head import shape as S
from facelab.model.synthetic import anatomy as A

KIND_SKIN, KIND_SLIT_UP, KIND_SLIT_LOW, KIND_POUCH = 0, 1, 2, 3
KIND_EYE_RIGHT, KIND_EYE_LEFT, KIND_TEETH_UP, KIND_TEETH_LOW = 4, 5, 6, 7

POUCH_HEIGHT, POUCH_DEPTH = 13.0, 12.0  # half-height and half-depth of the pouch loop (mm)


@dataclass
class Shell:
    """The head's mesh before annotations (design frame, float64).

    verts (V, 3), faces (F, 3) CCW seen from outside; u, v (V,) unwrapped coordinates
    (eyeball/teeth vertices carry 0); kind (V,) int8; psi (V,) angle round the pouch;
    mirror (V,) index of each vertex's mirror image; spacing: lattice edge (warped mm);
    uv_gh (Vt, 2) texture-space points in warped mm (shell) or island-local coordinates;
    uv_faces (F, 3); uv_island (Vt,) int8 (0 shell, 1/2 right/left eye, 3/13 right/left half
    of the pouch, 4/14 and 5/15 of the upper and lower teeth);
    eye_dir (V, 3) for eyeball vertices their unit direction from the eyeball centre (else 0).
    """

    verts: np.ndarray
    faces: np.ndarray
    u: np.ndarray
    v: np.ndarray
    kind: np.ndarray
    psi: np.ndarray
    mirror: np.ndarray
    spacing: float
    uv_gh: np.ndarray
    uv_faces: np.ndarray
    uv_island: np.ndarray
    eye_dir: np.ndarray


# ------------------------------------------------------------------ the lattice
def _h_top():
    return float(S.warp_v(S.v_ref()))


def _h_mouth():
    return float(S.warp_v(A.MOUTH_V))


def _lattice(h):
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
    seam = S.warp_u(S.half_perimeter(vv))
    theta = S.theta_of(uu, vv)
    ok = (np.abs(gg) <= seam + 1e-9) & (vv >= S.v_bottom(theta) - 1e-9)
    return ks, js, gg, hh, uu, vv, ok


def _spacing_for(n_shell: int) -> float:
    """Lattice spacing (warped mm) whose lattice has about ``n_shell`` vertices; the crown sits
    on an even row (u = 0 is a lattice column there)."""
    h = 5.0
    for _ in range(4):
        h *= np.sqrt(int(_lattice(h)[6].sum()) / n_shell)
        dv = h * np.sqrt(3.0) / 2.0
        k = max(2, 2 * round((_h_top() - _h_mouth()) / dv / 2.0))
        h = (_h_top() - _h_mouth()) / k * 2.0 / np.sqrt(3.0)
    return float(h)


def _lattice_faces(ks, ok):
    """Lattice triangles as (row, col) index triples, CCW in (G, H)."""
    R, C = ok.shape
    tris = []
    for r in range(R - 1):
        c = np.arange(C - 1)
        if ks[r] % 2 == 0:
            up = [(r, c), (r, c + 1), (r + 1, c)]
            down = [(r, c + 1), (r + 1, c + 1), (r + 1, c)]
        else:
            up = [(r, c), (r, c + 1), (r + 1, c + 1)]
            down = [(r, c), (r + 1, c + 1), (r + 1, c)]
        for tri in (up, down):
            keep = ok[tri[0]] & ok[tri[1]] & ok[tri[2]]
            tris.append(np.stack([np.stack([t[0] * np.ones_like(c), t[1]], -1)[keep]
                                  for t in tri], axis=1))
    return np.concatenate(tris, axis=0)


def _snap(uu, vv, ok, ks, h):
    """Move lattice vertices onto the designed curves (version 1's rule, in place)."""
    dv = h * np.sqrt(3.0) / 2.0
    u0, v0 = uu.copy(), vv.copy()
    r0 = int(np.nonzero(ks == 0)[0][0])
    for side in (-1.0, 1.0):
        c = np.argmin(np.where(ok[r0], np.abs(uu[r0] - side * A.MOUTH_HALF_WIDTH), np.inf))
        uu[r0, c] = side * A.MOUTH_HALF_WIDTH
    not_mouth_row = np.ones_like(ok)
    not_mouth_row[r0] = False
    xi = A.eye_local(u0)
    up, low = A.lid_curves(u0)
    snapped = np.zeros_like(ok)
    face = np.abs(u0) < 80.0
    for curve in (up, low):
        span = (np.abs(xi) < 0.9) & (up - low > 0.9 * dv) & face
        sel = ok & span & (np.abs(v0 - curve) < 0.5 * dv) & ~snapped
        vv[sel] = curve[sel]
        snapped |= sel
    lu, ll = A.lip_borders(u0)
    for curve in (lu, ll):
        span = (np.abs(u0) < A.MOUTH_HALF_WIDTH - 3.0) & (np.abs(curve - A.MOUTH_V) > 1.2 * dv)
        sel = ok & span & not_mouth_row & (np.abs(v0 - curve) < 0.5 * dv) & ~snapped
        vv[sel] = curve[sel]
        snapped |= sel
    for side in (-1.0, 1.0):
        for cu in (A.EYE_U - A.EYE_HALF_WIDTH, A.EYE_U + A.EYE_HALF_WIDTH):
            cv = A.lid_curves(np.array(side * cu))[1]
            d = np.where(ok & ~snapped, np.hypot(u0 - side * cu, v0 - cv), np.inf)
            idx = np.unravel_index(np.argmin(d), d.shape)
            uu[idx], vv[idx] = side * cu, cv
            snapped[idx] = True


def _tri_area(gh, tri_rc):
    tri = gh[tri_rc[..., 0], tri_rc[..., 1]]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                  - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def _undo_slivers(gg, hh, g0, h0, tri_rc, h, border=None):
    """Undo moves that made a lattice triangle a sliver in (G, H).

    A triangle under 20 % of the lattice's area has its moved feature vertices put back; the
    border's vertices (``border``, grid-shaped bool) are kept on the seam and the neck cut
    unless the triangle falls under 2 % (a border row meeting the cut at a shallow angle makes
    thin but harmless triangles).
    """
    full = np.sqrt(3.0) / 4.0 * h * h
    if border is None:
        border = np.zeros(gg.shape, bool)
    for _ in range(20):
        area = _tri_area(np.stack([gg, hh], -1), tri_rc)
        rc = tri_rc.reshape(-1, 2)
        moved = ((gg[rc[:, 0], rc[:, 1]] != g0[rc[:, 0], rc[:, 1]])
                 | (hh[rc[:, 0], rc[:, 1]] != h0[rc[:, 0], rc[:, 1]])).reshape(-1, 3)
        fixed = border[rc[:, 0], rc[:, 1]].reshape(-1, 3)
        revert = moved & (((area < 0.2 * full)[:, None] & ~fixed) | (area < 0.02 * full)[:, None])
        if not revert.any():
            if (area <= 0).any():
                raise RuntimeError("head mesh: a lattice triangle is inverted")
            return
        rc = tri_rc[revert]
        gg[rc[:, 0], rc[:, 1]] = g0[rc[:, 0], rc[:, 1]]
        hh[rc[:, 0], rc[:, 1]] = h0[rc[:, 0], rc[:, 1]]
    raise RuntimeError("head mesh: could not place the border and feature vertices")


def _border_vertices(tri_rc, shape):
    e = np.concatenate([tri_rc[:, [0, 1]], tri_rc[:, [1, 2]], tri_rc[:, [2, 0]]])
    flat = e[..., 0] * shape[1] + e[..., 1]
    key = np.sort(flat, axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    return np.unique(uniq[counts == 1].ravel())


def _seam_curve():
    """The seam in (G, H) on the positive side, finely sampled: (N, 2), from the crown down."""
    t = S.tables()
    v = t["rows"][::-1]
    v = v[v >= float(S.v_bottom(np.pi)) - 1e-9]
    return np.stack([S.warp_u(S.half_perimeter(v)), S.warp_v(v)], -1)


def _project_border(gg, hh, ok, tri_rc, h):
    """Move the lattice's border vertices onto the seam or the neck cut; returns the flags
    (grid-shaped bool) of the vertices placed on the seam."""
    border = _border_vertices(tri_rc, ok.shape)
    r, c = np.divmod(border, ok.shape[1])
    g, hv = gg[r, c], hh[r, c]
    seam = _seam_curve()  # (N, 2), G >= 0
    pts = np.stack([np.abs(g), hv], -1)
    d2 = ((pts[:, None, :] - seam[None, :, :]) ** 2).sum(-1)  # (B, N)
    nearest = np.argmin(d2, axis=1)
    d_seam = np.sqrt(d2[np.arange(len(g)), nearest])
    u = S.unwarp_u(g)
    new_h = hv.copy()
    for _ in range(4):  # the cut's height depends on theta, which depends on v
        th = S.theta_of(u, np.minimum(S.unwarp_v(new_h), S.v_ref()))
        new_h = S.warp_v(S.v_bottom(th))
    d_bot = np.abs(new_h - hv)
    on_seam = d_seam <= d_bot
    move = np.where(on_seam, d_seam < 1.2 * h, d_bot < 2.0 * h)
    sg = np.sign(g)
    sg[sg == 0] = 1.0
    tg = np.where(on_seam, sg * seam[nearest, 0], g)
    th_ = np.where(on_seam, seam[nearest, 1], new_h)
    flags = np.zeros(ok.shape, bool)
    gg[r[move], c[move]] = tg[move]
    hh[r[move], c[move]] = th_[move]
    flags[r[move & on_seam], c[move & on_seam]] = True
    # the corners where the seam meets the neck cut are vertices (one 3-D point once merged)
    corner = seam[-1]
    for sgn in (-1.0, 1.0):
        d = np.hypot(sgn * g - corner[0], hv - corner[1]) + np.where(sgn * g > 0, 0.0, np.inf)
        i = int(np.argmin(d))
        gg[r[i], c[i]], hh[r[i], c[i]] = sgn * corner[0], corner[1]
        flags[r[i], c[i]] = True
    return flags


# ------------------------------------------------------------------ components
def _eyeball(n_az: int, n_ring: int, centre: np.ndarray, side: int, first: int):
    """A sphere of rings about +z: (verts, faces, dirs, uv_local, uv_faces_local).

    uv_local: island coordinates in [-1, 1]^2: direction angle alpha from +z (the pupil) maps
    to radius (alpha / pi) ** 0.6 at the vertex's azimuth (mirrored in x for the left eye, so
    the two islands are mirror images).
    """
    alpha = np.pi * np.arange(1, n_ring) / n_ring  # (K-1,)
    beta = 2.0 * np.pi * np.arange(n_az) / n_az  # (M,)
    aa, bb = np.meshgrid(alpha, beta, indexing="ij")
    d = np.stack([np.sin(aa) * np.cos(bb), np.sin(aa) * np.sin(bb), np.cos(aa)], -1).reshape(-1, 3)
    dirs = np.concatenate([[[0.0, 0.0, 1.0]], d, [[0.0, 0.0, -1.0]]])
    verts = centre + S.EYE_RADIUS * dirs
    nr, m = n_ring - 1, n_az
    idx = 1 + np.arange(nr * m).reshape(nr, m)
    back = 1 + nr * m
    nxt = np.roll(np.arange(m), -1)
    faces = [np.stack([np.zeros(m, np.int64), idx[0], idx[0, nxt]], -1)]
    for k in range(nr - 1):
        a, b, c, e = idx[k], idx[k, nxt], idx[k + 1], idx[k + 1, nxt]
        faces += [np.stack([a, c, b], -1), np.stack([b, c, e], -1)]
    faces.append(np.stack([idx[-1], np.full(m, back), idx[-1, nxt]], -1))
    faces = np.concatenate(faces)
    # orientation: outward normals
    p = verts[faces]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    if (np.einsum("fi,fi->f", n, p.mean(1) - centre) < 0).mean() > 0.5:
        faces = faces[:, ::-1]
    rr = (np.concatenate([[0.0], aa.ravel(), [np.pi]]) / np.pi) ** 0.6
    bb_all = np.concatenate([[0.0], bb.ravel(), [0.0]])
    uv = np.stack([rr * np.cos(bb_all), rr * np.sin(bb_all)], -1)  # x with model x: mirrors
    # the back pole: one uv per fan triangle, at the triangle's mean azimuth on the rim
    uvf = faces.copy()
    fan = np.nonzero((faces == back).any(1))[0]
    mid = beta + np.pi / m
    extra = np.stack([np.cos(mid), np.sin(mid)], -1)
    uv = np.concatenate([uv, extra])
    for f in fan:
        col = int(np.nonzero(faces[f] == back)[0][0])
        az = np.arctan2(*(dirs[faces[f][faces[f] != back]].mean(0)[[1, 0]]))
        k = int(np.round((az - np.pi / m) / (2 * np.pi / m))) % m
        uvf[f, col] = len(dirs) + k
    return verts, faces + first, dirs, uv, uvf


def _teeth(n_arch: int, n_prof: int, anchor: np.ndarray, upper: bool, first: int):
    """One dental arch as a closed swept tube: (verts, faces, arch parameter t, profile q).

    anchor: (3,) the mouth line's midpoint (design frame). The upper arch's cutting edge sits
    2.5 mm below the mouth line (it shows under the upper lip when the mouth opens), 7 mm
    behind the lips; the lower arch's edge is at the mouth line, 2 mm further back.
    """
    t = np.linspace(-1.0, 1.0, n_arch)
    ang = 1.15 * t
    thick = 5.5
    scale = 1.0 if upper else 0.93
    back = 0.0 if upper else 2.0
    x = scale * 19.0 * np.sin(ang) / np.sin(1.15)
    z = anchor[2] - 7.0 - 0.5 * thick - back - 11.0 * (1.0 - np.cos(ang)) / (1.0 - np.cos(1.15))
    height = 9.0 - 4.0 * t**2
    sgn = 1.0 if upper else -1.0
    yc = anchor[1] + sgn * 0.5 * height - (2.5 if upper else 0.0)
    q = 2.0 * np.pi * np.arange(n_prof) / n_prof
    cy, sy = np.cos(q), np.sin(q)
    py = np.sign(cy) * np.abs(cy) ** 0.5  # rounded-rectangle profile
    pz = np.sign(sy) * np.abs(sy) ** 0.5
    tang = np.stack([np.gradient(x), np.zeros(n_arch), np.gradient(z)], -1)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    nrm = np.stack([-tang[:, 2], np.zeros(n_arch), tang[:, 0]], -1)  # (T, 3), +z at t = 0
    centre = np.stack([x, yc, z], -1)  # (T, 3)
    ey = np.array([0.0, 1.0, 0.0])
    verts = (centre[:, None, :] + (0.5 * height[:, None] * py[None, :])[..., None] * ey
             + (0.5 * thick * pz[None, :])[..., None] * nrm[:, None, :]).reshape(-1, 3)
    idx = np.arange(n_arch * n_prof).reshape(n_arch, n_prof)
    nxt = np.roll(np.arange(n_prof), -1)
    faces = []
    for i in range(n_arch - 1):
        a, b, c, d = idx[i], idx[i, nxt], idx[i + 1], idx[i + 1, nxt]
        faces += [np.stack([a, b, c], -1), np.stack([b, d, c], -1)]
    caps = len(verts) + np.arange(2)
    ends = np.stack([verts[idx[0]].mean(0), verts[idx[-1]].mean(0)])
    faces.append(np.stack([np.full(n_prof, caps[0]), idx[0, nxt], idx[0]], -1))
    faces.append(np.stack([np.full(n_prof, caps[1]), idx[-1], idx[-1, nxt]], -1))
    verts = np.concatenate([verts, ends])
    faces = np.concatenate(faces)
    p = verts[faces]  # orientation: positive signed volume (outward normals)
    vol = np.einsum("fi,fi->f", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6.0
    if vol < 0:
        faces = faces[:, ::-1]
    tt = np.concatenate([np.repeat(t, n_prof), [-1.0, 1.0]])
    qq = np.concatenate([np.tile(q, n_arch), [0.0, 0.0]])
    return verts, faces + first, tt, qq


def build_shell(n_vertices: int) -> Shell:
    """The whole head mesh at about ``n_vertices`` vertices (see the module docstring)."""
    n_eye_az = 2 * int(np.clip(round(np.sqrt(n_vertices) / 6.0), 8, 36))
    n_eye_ring = n_eye_az // 2
    n_eye = 2 * (2 + (n_eye_ring - 1) * n_eye_az)
    n_arch, n_prof = int(np.clip(n_eye_az, 12, 40)), int(np.clip(n_eye_az // 3, 6, 16))
    n_teeth = 2 * (n_arch * n_prof + 2)
    target = max(n_vertices - n_eye - n_teeth, 500)
    h = _spacing_for(int(target * 0.96))
    ks, js, gg, hh, uu, vv, ok = _lattice(h)
    g0, h0 = gg.copy(), hh.copy()
    _snap(uu, vv, ok, ks, h)
    moved = (uu != S.unwarp_u(g0)) | (vv != np.minimum(S.unwarp_v(h0), S.v_ref()))
    gg = np.where(moved, S.warp_u(uu), g0)
    hh = np.where(moved, S.warp_v(vv), h0)
    tri_rc = _lattice_faces(ks, ok)
    seam_flags = _project_border(gg, hh, ok, tri_rc, h)
    border = np.zeros(ok.shape, bool)
    br, bc = np.divmod(_border_vertices(tri_rc, ok.shape), ok.shape[1])
    border[br, bc] = True
    _undo_slivers(gg, hh, g0, h0, tri_rc, h, border)
    seam_flags &= (gg != g0) | (hh != h0) | (np.abs(np.abs(gg) - S.warp_u(
        S.half_perimeter(np.minimum(S.unwarp_v(hh), S.v_ref())))) < 1e-6)
    grid_index = np.full(ok.shape, -1, dtype=np.int64)
    grid_index[ok] = np.arange(int(ok.sum()))
    lat_faces = grid_index[tri_rc[..., 0], tri_rc[..., 1]]
    rows = np.broadcast_to(ks[:, None], ok.shape)[ok]
    jj = np.broadcast_to(js[None, :], ok.shape)
    mj = np.where(np.broadcast_to(ks[:, None] % 2 == 0, ok.shape), -jj, -jj - 1)
    mirror = grid_index[np.nonzero(ok)[0], (mj + (-js[0]))[ok]]
    g, hv = gg[ok], hh[ok]
    on_seam = seam_flags[ok]
    u = S.unwarp_u(g)
    v = np.minimum(S.unwarp_v(hv), S.v_ref())
    u = np.where(np.abs(g) < 1e-12, 0.0, u)
    n_lat = len(u)

    # -- the mouth slit (version 1): lower-lip copies of the mouth-row vertices
    slit = np.nonzero((rows == 0) & (np.abs(u) < A.MOUTH_HALF_WIDTH - 1e-9))[0]
    slit = slit[np.argsort(u[slit])]
    copy_of = np.full(n_lat, -1, dtype=np.int64)
    copy_of[slit] = n_lat + np.arange(len(slit))
    below = (rows[lat_faces] == -1).any(axis=1)
    f_low = lat_faces[below]
    swap = copy_of[f_low] >= 0
    f_low[swap] = copy_of[f_low[swap]]
    faces = lat_faces.copy()
    faces[below] = f_low
    uv_faces = lat_faces.copy()  # the copies share their originals' texture coordinates
    kind = np.concatenate([np.zeros(n_lat, np.int8), np.full(len(slit), KIND_SLIT_LOW, np.int8)])
    kind[slit] = KIND_SLIT_UP
    u = np.concatenate([u, u[slit]])
    v = np.concatenate([v, v[slit]])
    mirror = np.concatenate([mirror, copy_of[mirror[slit]]])
    uv_gh = np.stack([g, hv], -1)
    uv_island = np.zeros(n_lat, np.int8)

    verts = S.skin_points(u, v)
    corner_r = int(np.nonzero((rows == 0) & (u[:n_lat] == -A.MOUTH_HALF_WIDTH))[0][0])
    corner_l = int(np.nonzero((rows == 0) & (u[:n_lat] == A.MOUTH_HALF_WIDTH))[0][0])

    # -- the pouch: rings from the upper lip round to the lower lip (a loop POUCH_HEIGHT high)
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
    cols = np.concatenate([slit[:, None], pouch_index, copy_of[slit][:, None]], axis=1)
    a, b = cols[:-1, :-1], cols[:-1, 1:]
    c, d = cols[1:, :-1], cols[1:, 1:]
    m = np.arange(n_ring)
    pf = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3),
                         np.stack([a, d, c], -1).reshape(-1, 3),
                         np.stack([np.full(n_ring, corner_r), cols[0, m + 1], cols[0, m]], -1),
                         np.stack([np.full(n_ring, corner_l), cols[-1, m], cols[-1, m + 1]], -1)])
    n_pouch = pouch.size // 3
    verts = np.concatenate([verts, pouch.reshape(-1, 3)])
    kind = np.concatenate([kind, np.full(n_pouch, KIND_POUCH, np.int8)])
    psi_all = np.concatenate([np.zeros(n0), np.repeat(psi[None], len(slit), 0).ravel()])
    u = np.concatenate([u, np.repeat(su, n_ring - 1)])
    v = np.concatenate([v, np.full(n_pouch, A.MOUTH_V)])
    mirror = np.concatenate([mirror, pouch_index[::-1].ravel()])
    # pouch texture: an island per half (by the triangle's side), (|u|, psi) local coordinates
    pf_uv, pouch_uv = _split_island_faces(
        pf, np.concatenate([u, u[:0]]), lambda idx: np.stack(
            [np.abs(u[idx]) / A.MOUTH_HALF_WIDTH, _psi_of(idx, psi_all, kind) / (2 * np.pi)], -1),
        first_uv=len(uv_gh) + 0)
    faces = np.concatenate([faces, pf])
    uv_faces = np.concatenate([uv_faces, pf_uv[0]])
    uv_gh = np.concatenate([uv_gh, pouch_uv])
    uv_island = np.concatenate([uv_island, pf_uv[1]])

    # -- the seam: merge the subject-right seam vertices into their mirrors
    remap = np.arange(len(u))
    right = np.nonzero(on_seam & (g < -1e-9))[0]
    remap[right] = mirror[right]
    keep_v = np.ones(len(u), bool)
    keep_v[right] = False
    faces = remap[faces]
    good = ((faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
            & (faces[:, 0] != faces[:, 2]))
    faces, uv_faces = faces[good], uv_faces[good]
    new_index = np.cumsum(keep_v) - 1
    faces = new_index[faces]
    verts, u, v, kind, psi_all = (x[keep_v] for x in (verts, u, v, kind, psi_all))
    mirror = new_index[remap[mirror[keep_v]]]
    faces, uv_faces = _fill_small_holes(faces, uv_faces, verts)
    # a crown vertex whose triangles all collapsed in the zipper is left over: drop it
    used = np.zeros(len(verts), bool)
    used[faces.ravel()] = True
    if not used.all():
        if not np.array_equal(used, used[mirror]):
            raise RuntimeError("head mesh: the seam zipper broke the mirror symmetry")
        new_index = np.cumsum(used) - 1
        faces = new_index[faces]
        verts, u, v, kind, psi_all = (x[used] for x in (verts, u, v, kind, psi_all))
        mirror = new_index[mirror[used]]

    # -- eyeballs and teeth
    eye_dir = np.zeros_like(verts)
    for side, k_eye, island in ((-1, KIND_EYE_RIGHT, 1), (1, KIND_EYE_LEFT, 2)):
        centre = S.eye_centres()[0 if side < 0 else 1]
        ev, ef, ed, euv, euvf = _eyeball(n_eye_az, n_eye_ring, centre, side, len(verts))
        uv_faces = np.concatenate([uv_faces, euvf + len(uv_gh)])
        uv_gh = np.concatenate([uv_gh, euv])
        uv_island = np.concatenate([uv_island, np.full(len(euv), island, np.int8)])
        faces = np.concatenate([faces, ef])
        verts = np.concatenate([verts, ev])
        eye_dir = np.concatenate([eye_dir, ed])
        kind = np.concatenate([kind, np.full(len(ev), k_eye, np.int8)])
        u = np.concatenate([u, np.zeros(len(ev))])
        v = np.concatenate([v, np.zeros(len(ev))])
        psi_all = np.concatenate([psi_all, np.zeros(len(ev))])
    right_eye = np.nonzero(kind == KIND_EYE_RIGHT)[0]
    left_eye = np.nonzero(kind == KIND_EYE_LEFT)[0]
    eye_mirror = np.empty(2 * len(right_eye), np.int64)
    # the ring vertex at azimuth beta mirrors to azimuth pi - beta
    eye_mirror[:] = _eyeball_mirror(n_eye_az, n_eye_ring, right_eye, left_eye)
    mirror = np.concatenate([mirror, eye_mirror])
    mouth_mid = S.skin_points(np.array(0.0), np.array(A.MOUTH_V))
    for upper, k_teeth in ((True, KIND_TEETH_UP), (False, KIND_TEETH_LOW)):
        tv, tf, tt, tq = _teeth(n_arch, n_prof, mouth_mid, upper, len(verts))
        tf_uv, tuv = _split_island_faces(
            tf - len(verts), np.sign(tv[:, 0]) * 1.0,
            lambda idx, tt=tt, tq=tq: np.stack([np.abs(tt[idx]), tq[idx] / (2 * np.pi)], -1),
            first_uv=len(uv_gh), island_codes=(4, 14))
        uv_faces = np.concatenate([uv_faces, tf_uv[0]])
        uv_gh = np.concatenate([uv_gh, tuv])
        uv_island = np.concatenate([uv_island, tf_uv[1] + (0 if upper else 1)])
        faces = np.concatenate([faces, tf])
        verts = np.concatenate([verts, tv])
        eye_dir = np.concatenate([eye_dir, np.zeros_like(tv)])
        kind = np.concatenate([kind, np.full(len(tv), k_teeth, np.int8)])
        u = np.concatenate([u, np.zeros(len(tv))])
        v = np.concatenate([v, np.zeros(len(tv))])
        psi_all = np.concatenate([psi_all, np.zeros(len(tv))])
        n_arch_v = n_arch * n_prof
        tm = np.arange(len(tv)).reshape(-1)
        body = tm[:n_arch_v].reshape(n_arch, n_prof)[::-1].ravel()
        mirror = np.concatenate([mirror, len(verts) - len(tv) + np.concatenate(
            [body, [len(tv) - 1, len(tv) - 2]])])
    return Shell(verts=verts, faces=faces.astype(np.int64), u=u, v=v, kind=kind, psi=psi_all,
                 mirror=mirror.astype(np.int64), spacing=h, uv_gh=uv_gh,
                 uv_faces=uv_faces.astype(np.int64), uv_island=uv_island, eye_dir=eye_dir)


def _boundary_loops(faces):
    """Boundary loops as lists of vertices, each ordered along its faces' directed edges."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, axis=1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    bd = e[counts[inv.ravel()] == 1]
    nxt = dict(zip(bd[:, 0].tolist(), bd[:, 1].tolist(), strict=True))
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, a = [], start
        while a not in seen:
            seen.add(a)
            loop.append(a)
            a = nxt[a]
        loops.append(loop)
    return loops


def _fill_small_holes(faces, uv_faces, verts):
    """Close the small holes the seam zipper leaves at the crown (a fan over each loop).

    Every boundary loop except the neck cut (the loop with the most vertices) must have at most
    8 vertices; the fan's triangles reverse the loop's directed edges (consistent orientation)
    and reuse, per vertex, the texture coordinate of one of its existing corners.
    """
    loops = _boundary_loops(faces)
    if not loops:
        return faces, uv_faces
    loops.sort(key=len)
    corner_uv = {}
    for f, fu in zip(faces.ravel().tolist(), uv_faces.ravel().tolist(), strict=True):
        corner_uv.setdefault(f, fu)
    edges = {tuple(sorted(e)) for e in np.concatenate(
        [faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist()}
    new_f, new_uv = [], []
    for loop in loops[:-1]:
        if len(loop) > 8:
            raise RuntimeError(f"head mesh: a hole of {len(loop)} vertices besides the neck")
        for shift in range(len(loop)):  # a fan apex whose diagonals are not edges already
            rot = loop[shift:] + loop[:shift]
            if all(tuple(sorted((rot[0], rot[i]))) not in edges for i in range(2, len(rot) - 1)):
                loop = rot
                break
        else:
            raise RuntimeError("head mesh: cannot close a hole at the crown")
        for i in range(1, len(loop) - 1):
            tri = [loop[0], loop[i + 1], loop[i]]
            new_f.append(tri)
            new_uv.append([corner_uv[t] for t in tri])
    if not new_f:
        return faces, uv_faces
    return (np.concatenate([faces, np.array(new_f, np.int64)]),
            np.concatenate([uv_faces, np.array(new_uv, np.int64)]))


def _psi_of(idx, psi_all, kind):
    """Angle round the pouch of vertices idx: 0 on the upper slit edge, 2 pi on the lower."""
    p = psi_all[idx].copy()
    p[kind[idx] == KIND_SLIT_LOW] = 2.0 * np.pi
    return p


def _split_island_faces(faces, side_value, local_fn, first_uv, island_codes=(3, 13)):
    """Texture coordinates for a component drawn in two mirror-image islands.

    faces: (F, 3) vertex indices; side_value: (V,) signed value whose sign at a triangle's
    centroid picks the island (negative: the subject's right island); local_fn(idx) -> (n, 2)
    island-local coordinates (mirror-invariant, e.g. |u|); island_codes: (right, left) codes.
    Returns ((uv_faces (F, 3), island code per new uv (n,)), new uv local coordinates (n, 2)
    with the x coordinate signed by side: -|p| on the right island, +|p| on the left; a
    midline vertex gets one of each).
    """
    cen = side_value[faces].mean(1)
    right = cen < 0
    uv_list, codes, uv_faces = [], [], np.empty_like(faces)
    offset = first_uv
    for sel, sgn, code in ((right, -1.0, island_codes[0]), (~right, 1.0, island_codes[1])):
        used = np.unique(faces[sel])
        local = local_fn(used)
        local = np.stack([sgn * local[:, 0], local[:, 1]], -1)
        lut = np.full(int(faces.max()) + 1, -1, np.int64)
        lut[used] = offset + np.arange(len(used))
        uv_faces[sel] = lut[faces[sel]]
        uv_list.append(local)
        codes.append(np.full(len(used), code, np.int8))
        offset += len(used)
    return (uv_faces, np.concatenate(codes)), np.concatenate(uv_list)


def _eyeball_mirror(n_az, n_ring, right_eye, left_eye):
    """Mirror index for the eyeball vertices (right eye then left eye, as appended)."""
    nr = n_ring - 1
    local = np.arange(len(right_eye))
    out = local.copy()
    ring = local[1:1 + nr * n_az].reshape(nr, n_az)
    j = np.arange(n_az)
    mj = (n_az // 2 - j) % n_az if n_az % 2 == 0 else (-j) % n_az
    out[1:1 + nr * n_az] = ring[:, mj].ravel()
    return np.concatenate([left_eye[out], right_eye[out]])
