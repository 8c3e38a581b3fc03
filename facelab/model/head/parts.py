"""The head's separate closed parts: two eyeballs and two dental arches.

* **Eyeballs**: spheres of ``EYE_RADIUS`` (rings about +z) at ``shape.eye_centres()``; the
  sclera, iris and pupil live in the albedo texture (island coordinates: the angle from the
  pupil maps to the radius).
* **Teeth**: an upper and a lower arch, each a closed swept tube with a rounded-rectangle
  profile, behind the lips (room for them in the mouth pouch).

:func:`add_parts` appends them to a shell's arrays with their kinds, mirror map and UV islands.
"""

from __future__ import annotations

import numpy as np

from facelab.model.head import shape as S
from facelab.model.head.islands import split_island_faces
from facelab.model.synthetic import anatomy as A

KIND_EYE_RIGHT, KIND_EYE_LEFT, KIND_TEETH_UP, KIND_TEETH_LOW = 4, 5, 6, 7


def eyeball(n_az: int, n_ring: int, centre: np.ndarray, side: int, first: int):
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


def teeth(n_arch: int, n_prof: int, anchor: np.ndarray, upper: bool, first: int):
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


def part_sizes(n_vertices: int) -> dict[str, int]:
    """Ring and sweep counts of the parts for a head of about ``n_vertices`` vertices, and the
    vertices they take (``n_parts``)."""
    n_eye_az = 2 * int(np.clip(round(np.sqrt(n_vertices) / 6.0), 8, 36))
    n_eye_ring = n_eye_az // 2
    n_arch, n_prof = int(np.clip(n_eye_az, 12, 40)), int(np.clip(n_eye_az // 3, 6, 16))
    n_eye = 2 * (2 + (n_eye_ring - 1) * n_eye_az)
    return {"n_eye_az": n_eye_az, "n_eye_ring": n_eye_ring, "n_arch": n_arch, "n_prof": n_prof,
            "n_parts": n_eye + 2 * (n_arch * n_prof + 2)}


def add_parts(a: dict, sizes: dict) -> dict:
    """Append the eyeballs and the teeth to the shell's arrays ``a`` (a dict of ``verts``,
    ``faces``, ``uv_faces``, ``uv_gh``, ``uv_island``, ``kind``, ``u``, ``v``, ``psi``,
    ``mirror``); adds ``eye_dir`` (each eyeball vertex's unit direction from its centre,
    else 0). Returns the new dict."""
    a = dict(a)
    n_eye_az, n_eye_ring = sizes["n_eye_az"], sizes["n_eye_ring"]
    n_arch, n_prof = sizes["n_arch"], sizes["n_prof"]

    def append(key, x):
        a[key] = np.concatenate([a[key], x])

    a["eye_dir"] = np.zeros_like(a["verts"])
    for side, k_eye, island in ((-1, KIND_EYE_RIGHT, 1), (1, KIND_EYE_LEFT, 2)):
        centre = S.eye_centres()[0 if side < 0 else 1]
        ev, ef, ed, euv, euvf = eyeball(n_eye_az, n_eye_ring, centre, side, len(a["verts"]))
        append("uv_faces", euvf + len(a["uv_gh"]))
        append("uv_gh", euv)
        append("uv_island", np.full(len(euv), island, np.int8))
        append("faces", ef)
        append("verts", ev)
        append("eye_dir", ed)
        append("kind", np.full(len(ev), k_eye, np.int8))
        for key in ("u", "v", "psi"):
            append(key, np.zeros(len(ev)))
    right_eye = np.nonzero(a["kind"] == KIND_EYE_RIGHT)[0]
    left_eye = np.nonzero(a["kind"] == KIND_EYE_LEFT)[0]
    # the ring vertex at azimuth beta mirrors to azimuth pi - beta
    append("mirror", _eyeball_mirror(n_eye_az, n_eye_ring, right_eye, left_eye))
    mouth_mid = S.skin_points(np.array(0.0), np.array(A.MOUTH_V))
    for upper, k_teeth in ((True, KIND_TEETH_UP), (False, KIND_TEETH_LOW)):
        n0 = len(a["verts"])
        tv, tf, tt, tq = teeth(n_arch, n_prof, mouth_mid, upper, n0)
        tf_uv, tuv = split_island_faces(
            tf - n0, np.sign(tv[:, 0]) * 1.0,
            lambda idx, tt=tt, tq=tq: np.stack([np.abs(tt[idx]), tq[idx] / (2 * np.pi)], -1),
            first_uv=len(a["uv_gh"]), island_codes=(4, 14))
        append("uv_faces", tf_uv[0])
        append("uv_gh", tuv)
        append("uv_island", tf_uv[1] + (0 if upper else 1))
        append("faces", tf)
        append("verts", tv)
        append("eye_dir", np.zeros_like(tv))
        append("kind", np.full(len(tv), k_teeth, np.int8))
        for key in ("u", "v", "psi"):
            append(key, np.zeros(len(tv)))
        body = np.arange(n_arch * n_prof).reshape(n_arch, n_prof)[::-1].ravel()
        append("mirror", n0 + np.concatenate([body, [len(tv) - 1, len(tv) - 2]]))
    return a
