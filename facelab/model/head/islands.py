"""UV islands of the head's separate parts: each part is drawn in two mirror-image islands.

The mouth pouch and each dental arch get an island per half (the subject's right and left),
so the texture layout stays mirror-symmetric about u = 0.5 (``texture.py`` places the islands).
"""

from __future__ import annotations

import numpy as np


def split_island_faces(faces, side_value, local_fn, first_uv, island_codes=(3, 13)):
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
