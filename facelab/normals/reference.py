"""Area-weighted vertex normals (MoFA Sec. 4, "one-ring") — the NumPy reference.

Plain NumPy, readable, the definition of correct that the Numba kernels (``cpu.py``) and the
CUDA kernels (``kernels/vertex_normals.cu``) are tested against; the same values as
:func:`facelab.normals.torch_ref.vertex_normals_torch`. For a triangle f = (v0, v1, v2),
counter-clockwise seen from the front, and a vertex i::

    c_f = (v1 − v0) × (v2 − v0)             face cross product, |c_f| = 2 · area, toward +z
    s_i = Σ_{f ∋ i} c_f                      area-weighted one-ring sum
    n_i = s_i / sqrt(|s_i|² + ε),  ε = 1e-20  (zero for an isolated vertex, never NaN)

Backward, for g_i = ∂L/∂n_i and r_i = 1 / sqrt(|s_i|² + ε)::

    ∂L/∂s_i  = r_i (g_i − (n_i · g_i) n_i)                 normalisation Jacobian
    G_f      = Σ_{corners k} ∂L/∂s_{f_k}                    ∂L/∂c_f
    ∂L/∂v_k += (v_{k+1} − v_{k+2}) × G_f   (corner indices mod 3)

the last line because c_f = v0 × v1 + v1 × v2 + v2 × v0, so ∂(G · c_f)/∂v_k = (v_{k+1} − v_{k+2})
× G. A face listing a vertex twice (degenerate) counts it twice, as ``index_add`` does.

The compiled kernels use the *gather* form of these sums (no races, no atomics): the
vertex → incident-face table :func:`vertex_face_csr` lists, for every vertex, the faces it
belongs to and its corner in each.

Shapes: verts (B, V, 3), faces (F, 3) → normals (B, V, 3), inv_norm r (B, V).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NORMAL_EPS",
    "face_cross",
    "vertex_face_csr",
    "vertex_normals_backward",
    "vertex_normals_forward",
]

# ε of facelab.mesh._NORMAL_EPS: added to |s|² under the square root (see facelab.mesh).
NORMAL_EPS = 1e-20


def vertex_face_csr(faces: np.ndarray, num_vertices: int):
    """Vertex → incident-face table in CSR form.

    faces: (F, 3) integer, indices in [0, V). num_vertices: V.
    Returns ``(offsets, face_ids, corners)``, all int32: offsets (V+1,), face_ids (3F,),
    corners (3F,). Vertex i is corner ``corners[j]`` of face ``face_ids[j]`` for
    j in ``range(offsets[i], offsets[i+1])``, faces in increasing order; an isolated vertex
    has an empty range, a degenerate face listing i twice appears twice.
    """
    flat = np.asarray(faces, dtype=np.int64).reshape(-1)  # (3F,): slot 3f + k holds vertex f_k
    order = np.argsort(flat, kind="stable")  # slots grouped by vertex, faces ascending
    counts = np.bincount(flat, minlength=num_vertices)  # (V,) valence (with multiplicity)
    offsets = np.zeros(num_vertices + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(counts)
    return offsets, (order // 3).astype(np.int32), (order % 3).astype(np.int32)


def face_cross(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """c_f = (v1 − v0) × (v2 − v0): verts (B, V, 3), faces (F, 3) → (B, F, 3)."""
    tri = verts[:, faces]  # (B, F, 3 corners, 3 xyz)
    return np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])


def vertex_normals_forward(verts: np.ndarray, faces: np.ndarray):
    """Unit area-weighted vertex normals and the inverse norms r (scatter form, the definition).

    verts: (B, V, 3) float32/float64; faces: (F, 3) integer.
    Returns ``(normals (B, V, 3), inv_norm (B, V))`` in the dtype of ``verts``.
    """
    faces = np.asarray(faces, dtype=np.int64)
    cross = face_cross(verts, faces)  # (B, F, 3)
    summed = np.zeros_like(verts)  # s: (B, V, 3)
    for k in range(3):
        np.add.at(summed, (slice(None), faces[:, k]), cross)  # s_i += c_f for f ∋ i
    inv_norm = 1.0 / np.sqrt((summed * summed).sum(-1) + NORMAL_EPS)  # r: (B, V)
    return (summed * inv_norm[..., None]).astype(verts.dtype), inv_norm.astype(verts.dtype)


def vertex_normals_backward(verts, faces, normals, inv_norm, grad_out):
    """∂L/∂verts (B, V, 3) for g = ∂L/∂normals (B, V, 3), given the forward's outputs."""
    faces = np.asarray(faces, dtype=np.int64)
    n_dot_g = (normals * grad_out).sum(-1, keepdims=True)  # (B, V, 1)
    grad_sum = inv_norm[..., None] * (grad_out - n_dot_g * normals)  # ∂L/∂s: (B, V, 3)
    grad_cross = grad_sum[:, faces].sum(2)  # G_f: (B, F, 3)
    tri = verts[:, faces]  # (B, F, 3, 3)
    grad = np.zeros_like(verts)
    for k in range(3):
        edge = tri[:, :, (k + 1) % 3] - tri[:, :, (k + 2) % 3]  # v_{k+1} − v_{k+2}: (B, F, 3)
        np.add.at(grad, (slice(None), faces[:, k]), np.cross(edge, grad_cross))
    return grad.astype(verts.dtype)
