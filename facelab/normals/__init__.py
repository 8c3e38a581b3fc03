"""Compiled area-weighted vertex normals (MoFA Sec. 4, "one-ring"): NumPy reference, Numba,
CUDA, autograd.

``vertex_normals(verts (B,V,3), faces (F,3)) -> (B,V,3)``, built on a race-free gather over a
cached vertex → incident-face table; the one vertex-normals op the library calls.

Submodules: ``reference`` (NumPy, the definition of correct), ``cpu`` (Numba),
``cuda`` (CuPy launchers for ``kernels/vertex_normals.cu``), ``autograd`` (torch Function),
``torch_ref`` (:func:`~facelab.normals.torch_ref.vertex_normals_torch`, plain torch,
differentiable twice: the reference for gradients and second derivatives).
"""

from facelab.normals.autograd import (
    VertexFaceTable,
    VertexNormals,
    vertex_face_table,
    vertex_normals,
)
from facelab.numba_cache import repair_numba_cache

repair_numba_cache()  # a truncated cache file would break the kernels: rebuild them

__all__ = ["VertexFaceTable", "VertexNormals", "vertex_face_table", "vertex_normals"]
