"""CUDA launchers for area-weighted vertex normals (``kernels/vertex_normals.cu``).

On a GPU the kernels are compiled once per device with NVRTC (``cupy.RawModule``, see
:mod:`facelab.kernel_sources`) and launched on torch's current stream. With ``emulate=True``
the *same* source, compiled for the host through ``facelab_cuda.h``, runs on CPU tensors via
ctypes (each grid twice, in two thread orders that must agree; see :mod:`facelab.kernel_launch`)
— the tests use this to check the kernels' logic against the NumPy reference on machines
without a GPU.

One thread per (image, vertex), gather over the vertex → incident-face CSR table: no atomics,
deterministic. Backward is two launches: ∂L/∂s per vertex, then the gather of
(v_{k+1} − v_{k+2}) × G_f over the incident faces.
"""

from __future__ import annotations

import torch

from facelab.kernel_launch import declare_kernels, launch

__all__ = ["BLOCK", "KERNELS", "vertex_normals_backward", "vertex_normals_forward"]

# The kernels' parameter lists, declared once (format: facelab.kernel_launch).
KERNELS = declare_kernels("vertex_normals", {
    "vertex_normals_forward": "in T* verts, in i32* faces, in i32* offsets, in i32* face_ids, "
                              "out T* normals, out T* inv_norm, i32 V",
    "vertex_normals_grad_sum": "in T* normals, in T* inv_norm, in T* grad_out, out T* grad_sum, "
                               "i32 V",
    "vertex_normals_backward": "in T* verts, in i32* faces, in i32* offsets, in i32* face_ids, "
                               "in i32* corners, in T* grad_sum, out T* grad_verts, i32 V",
})

BLOCK = 256


def _kernel(stage: str, t: torch.Tensor):
    return KERNELS.for_dtype(f"vertex_normals_{stage}", t.dtype)


def _grid(n_img: int, n_vert: int) -> tuple:
    return (max(1, min(-(-n_vert // BLOCK), 65535)), n_img, 1)


def _int32(*tables):
    return tuple(t.detach().to(torch.int32).contiguous() for t in tables)


def vertex_normals_forward(verts, faces, offsets, face_ids, *, emulate: bool = False):
    """verts (B, V, 3); faces (F, 3), offsets (V+1,), face_ids (3F,) int32 on verts' device.

    Returns ``(normals (B, V, 3), inv_norm (B, V))``.
    """
    verts = verts.detach().contiguous()
    faces, offsets, face_ids = _int32(faces, offsets, face_ids)
    n_img, n_vert = verts.shape[0], verts.shape[1]
    normals = torch.empty_like(verts)
    inv_norm = torch.empty((n_img, n_vert), dtype=verts.dtype, device=verts.device)
    if n_img == 0 or n_vert == 0:
        return normals, inv_norm
    launch(_kernel("forward", verts), _grid(n_img, n_vert), (BLOCK, 1, 1),
           (verts, faces, offsets, face_ids, normals, inv_norm, n_vert), emulate=emulate)
    return normals, inv_norm


def vertex_normals_backward(verts, faces, offsets, face_ids, corners, normals, inv_norm,
                            grad_out, *, emulate: bool = False):
    """∂L/∂verts (B, V, 3) for grad_out = ∂L/∂normals (B, V, 3), given the forward's outputs."""
    verts, normals, inv_norm, grad_out = (
        t.detach().contiguous() for t in (verts, normals, inv_norm, grad_out)
    )
    faces, offsets, face_ids, corners = _int32(faces, offsets, face_ids, corners)
    n_img, n_vert = verts.shape[0], verts.shape[1]
    grad_verts = torch.empty_like(verts)
    if n_img == 0 or n_vert == 0:
        return grad_verts
    grad_sum = torch.empty_like(verts)  # ∂L/∂s: (B, V, 3)
    grid = _grid(n_img, n_vert)
    launch(_kernel("grad_sum", verts), grid, (BLOCK, 1, 1),
           (normals, inv_norm, grad_out, grad_sum, n_vert), emulate=emulate)
    launch(_kernel("backward", verts), grid, (BLOCK, 1, 1),
           (verts, faces, offsets, face_ids, corners, grad_sum, grad_verts, n_vert),
           emulate=emulate)
    return grad_verts

