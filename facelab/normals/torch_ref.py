"""The plain-torch definition of vertex normals: the differentiable-twice reference.

:func:`facelab.vertex_normals` (the compiled op) is what the library calls; this twin is built
from torch operations only, so autograd can differentiate it twice (a Hessian-vector product,
``torch.autograd.gradgradcheck``) and the tests compare the compiled op with it. Nothing in the
library needs a second derivative of the normals today; use this twin when you do.
"""

from __future__ import annotations

from facelab._checks import like_input

# the mesh module's validation and face-cross helpers: one definition of the cross product
from facelab.mesh import _face_cross, _faces_tensor, _safe_normalize, _verts_tensor

__all__ = ["vertex_normals_torch"]


def vertex_normals_torch(verts, faces):
    """Unit per-vertex normals from the one-ring, area weighted (MoFA Sec. 4, "one-ring").

    verts: (B, V, 3) float32/float64, model space (mm); NumPy in, NumPy out.
    faces: (F, 3) int64, counter-clockwise seen from the front (+z).
    Returns (B, V, 3): ``n_i = normalize(sum_{f ∋ i} (e1 x e2)_f)``; the unnormalised cross
    product has length twice the face area, so the sum is the area-weighted average of the
    incident face normals. Isolated vertices, cancelling neighbourhoods and F = 0 give the zero
    vector; values and gradients stay finite (eps inside the square root, see :func:`face_normals`).
    """
    v, was_numpy, d = _verts_tensor(verts)
    f, _ = _faces_tensor(faces, d["V"])
    f = f.to(v.device)
    b, n_verts = d["B"], d["V"]
    cross = _face_cross(v, f)  # (B, F, 3)
    summed = v.new_zeros(b, n_verts, 3)
    for corner in range(3):
        summed = summed.index_add(1, f[:, corner], cross)  # (B, V, 3)
    return like_input(_safe_normalize(summed), was_numpy)
