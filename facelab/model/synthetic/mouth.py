"""The mouth of both built-in models: the slit, the pouch behind it, the jaw's split.

* **Slit.** The lattice row on the mouth line is split between the mouth corners: the upper
  lip keeps the row's vertices, the lower lip gets copies (:func:`split_slit`).
* **Pouch.** Rings of vertices from the upper slit edge round to the lower one close the slit
  from behind (the dark mouth interior when the jaw opens); :func:`pouch_faces` triangulates
  them (each model places the rings itself: version 1 a shallow pouch, version 2 a deeper one
  with room for the teeth).
* **Jaw weight.** The jaw's skinning weight, a smooth split along the mouth line
  (:func:`jaw_weights`).

Vertex kinds: 0 skin, 1/2 upper/lower edge of the slit, 3 pouch.
"""

from __future__ import annotations

import numpy as np

from facelab.model.synthetic import anatomy as A

KIND_SKIN, KIND_SLIT_UP, KIND_SLIT_LOW, KIND_POUCH = 0, 1, 2, 3


def split_slit(faces, rows, u, mirror):
    """Open the slit: the lower lip's triangles take copies of the mouth row's vertices.

    faces: (F, 3) lattice triangles; rows: (n,) lattice row of each vertex (0 the mouth
    row); u: (n,) unwrapped horizontal coordinate; mirror: (n,) mirror index.
    Returns (faces (F, 3) with the triangles between rows -1 and 0 re-indexed, slit (m,)
    the mouth-row vertices between the corners sorted by u, copy_of (n,) the copy of each slit
    vertex (-1 elsewhere; copies are numbered n, n + 1, ...), kind (n + m,) int8, mirror
    (n + m,) extended to the copies).
    """
    n = len(u)
    slit = np.nonzero((rows == 0) & (np.abs(u) < A.MOUTH_HALF_WIDTH - 1e-9))[0]
    slit = slit[np.argsort(u[slit])]
    copy_of = np.full(n, -1, dtype=np.int64)
    copy_of[slit] = n + np.arange(len(slit))
    below = (rows[faces] == -1).any(axis=1)  # triangles between rows -1 and 0
    f_low = faces[below]
    swap = copy_of[f_low] >= 0
    f_low[swap] = copy_of[f_low[swap]]
    faces = faces.copy()
    faces[below] = f_low
    kind = np.concatenate([np.zeros(n, np.int8), np.full(len(slit), KIND_SLIT_LOW, np.int8)])
    kind[slit] = KIND_SLIT_UP
    mirror = np.concatenate([mirror, copy_of[mirror[slit]]])
    return faces, slit, copy_of, kind, mirror


def pouch_faces(slit, pouch_index, copy_of, corner_r: int, corner_l: int) -> np.ndarray:
    """Triangles of the pouch: quads between neighbouring columns, fans at the corners.

    slit: (m,) upper-edge vertices; pouch_index: (m, K - 1) the ring vertices of each column
    (from the upper edge round to the lower); copy_of: the lower-edge copy of each slit vertex;
    corner_r, corner_l: the mouth-corner vertices. Returns (2 (m - 1) K + 2 K, 3) int64.
    """
    n_ring = pouch_index.shape[1] + 1
    cols = np.concatenate([slit[:, None], pouch_index, copy_of[slit][:, None]], axis=1)
    a, b = cols[:-1, :-1], cols[:-1, 1:]
    c, d = cols[1:, :-1], cols[1:, 1:]
    m = np.arange(n_ring)
    return np.concatenate([
        np.stack([a, b, d], -1).reshape(-1, 3),
        np.stack([a, d, c], -1).reshape(-1, 3),
        np.stack([np.full(n_ring, corner_r), cols[0, m + 1], cols[0, m]], -1),
        np.stack([np.full(n_ring, corner_l), cols[-1, m], cols[-1, m + 1]], -1),
    ])


def jaw_weights(u, v, kind, psi, fade=None) -> np.ndarray:
    """(V,) skinning weight of the jaw: 1 below the mouth line, 0 above, smooth at the sides.

    u, v: (V,) unwrapped coordinates; kind: (V,) vertex kinds; psi: (V,) angle round the
    pouch (0 upper edge ... 2 pi lower edge). fade: optional function ``w -> w`` applied
    before the slit and pouch are set (version 2 fades the weight behind the jaw and down the
    throat).
    """
    au = np.abs(u)
    line = A.MOUTH_V + 0.55 * np.maximum(au - A.MOUTH_HALF_WIDTH, 0.0)
    width = 0.05 + 8.0 * A._smoothstep(18.0, 42.0, au) + 0.35 * np.maximum(au - 42.0, 0.0)
    w = 0.5 * (1.0 + np.tanh((line - v) / width))
    w = w * (1.0 - A._smoothstep(-25.0, -5.0, v))
    if fade is not None:
        w = fade(w)
    w = np.where(kind == KIND_SLIT_UP, 0.0, w)
    w = np.where(kind == KIND_SLIT_LOW, 1.0, w)
    return np.where(kind == KIND_POUCH, A._smoothstep(0.3, 0.7, psi / (2.0 * np.pi)), w)
