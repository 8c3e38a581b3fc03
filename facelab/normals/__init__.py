"""Compiled area-weighted vertex normals (MoFA Sec. 4, "one-ring"): NumPy reference, Numba,
CUDA, autograd.

``vertex_normals(verts (B,V,3), faces (F,3)) -> (B,V,3)`` — the compiled twin of
:func:`facelab.mesh.vertex_normals` (same values and gradients), built on a race-free gather
over a cached vertex → incident-face table.

Submodules: ``reference`` (NumPy, the definition of correct), ``cpu`` (Numba),
``cuda`` (CuPy launchers for ``kernels/vertex_normals.cu``), ``autograd`` (torch Function).
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
