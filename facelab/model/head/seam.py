"""The back seam of the head shell: where the unwrapped head closes on itself.

The lattice (``lattice.py``) is cut along the back midline ``|u| = half_perimeter(v)``.
:func:`project_border` moves the lattice's border vertices onto that seam or onto the neck
cut; :func:`zip_seam` then merges each subject-right seam vertex (G < 0) into its mirror image
(G > 0), the same 3-D point, keeping both texture coordinates (``uv`` has more entries than the
vertices; ``uv_faces`` indexes it), and closes the small holes the zipper leaves at the crown.
The shell is then one connected surface whose only boundary is the neck cut.
"""

from __future__ import annotations

import numpy as np

from facelab.model.head import shape as S
from facelab.model.synthetic.lattice import border_vertices


def _seam_curve():
    """The seam in (G, H) on the positive side, finely sampled: (N, 2), from the crown down."""
    t = S.tables()
    v = t["rows"][::-1]
    v = v[v >= float(S.v_bottom(np.pi)) - 1e-9]
    return np.stack([S.warp_u(S.half_perimeter(v)), S.warp_v(v)], -1)


def project_border(gg, hh, ok, tri_rc, h):
    """Move the lattice's border vertices onto the seam or the neck cut; returns the flags
    (grid-shaped bool) of the vertices placed on the seam."""
    border = border_vertices(tri_rc, ok.shape)
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


def zip_seam(faces, uv_faces, mirror, right, per_vertex):
    """Merge the subject-right seam vertices ``right`` into their mirror images.

    faces, uv_faces: (F, 3); mirror: (V,) mirror index; right: (r,) the vertices to merge;
    per_vertex: a tuple of (V, ...) arrays re-indexed with the vertices. Triangles that
    collapse are dropped, the crown's small holes filled (:func:`_fill_small_holes`) and a
    vertex no triangle uses any more (a crown vertex) removed. Returns (faces, uv_faces,
    mirror, per_vertex) over the remaining vertices.
    """
    remap = np.arange(len(mirror))
    remap[right] = mirror[right]
    keep_v = np.ones(len(mirror), bool)
    keep_v[right] = False
    faces = remap[faces]
    good = ((faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
            & (faces[:, 0] != faces[:, 2]))
    faces, uv_faces = faces[good], uv_faces[good]
    new_index = np.cumsum(keep_v) - 1
    faces = new_index[faces]
    per_vertex = tuple(x[keep_v] for x in per_vertex)
    mirror = new_index[remap[mirror[keep_v]]]
    faces, uv_faces = _fill_small_holes(faces, uv_faces)
    # a crown vertex whose triangles all collapsed in the zipper is left over: drop it
    used = np.zeros(len(mirror), bool)
    used[faces.ravel()] = True
    if not used.all():
        if not np.array_equal(used, used[mirror]):
            raise RuntimeError("head mesh: the seam zipper broke the mirror symmetry")
        new_index = np.cumsum(used) - 1
        faces = new_index[faces]
        per_vertex = tuple(x[used] for x in per_vertex)
        mirror = new_index[mirror[used]]
    return faces, uv_faces, mirror, per_vertex


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


def _fill_small_holes(faces, uv_faces):
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
