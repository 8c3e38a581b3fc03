"""CUDA launchers for SH shading (``kernels/sh_shade.cu``), MoFA Eq. (4).

On a GPU the kernels are compiled once per device with NVRTC (``cupy.RawModule``, see
:mod:`facelab.kernel_sources`) and launched on torch's current stream. With
``emulate=True`` the *same* source, compiled for the host through ``facelab_cuda.h``, runs
on CPU tensors via ctypes (each grid twice, in two thread orders that must agree; see
:mod:`facelab.kernel_launch`) — the tests use this to check the kernels' logic against the
NumPy reference on machines without a GPU.

Gradient of the lighting: each thread writes its partial sum (B, T_img, 9, 3) and torch sums
over T_img — no atomics, deterministic.
"""

from __future__ import annotations

import torch

from facelab.kernel_launch import declare_kernels, launch

__all__ = ["KERNELS", "sh_shade_backward", "sh_shade_forward"]

# The kernels' parameter lists, declared once (format: facelab.kernel_launch).
KERNELS = declare_kernels("sh_shade", {
    "sh_shade_forward": "in T* albedo, in T* normals, in T* gamma, out T* out, i32 V",
    "sh_shade_backward": "in T* albedo, in T* normals, in T* gamma, in T* grad_out, "
                         "out T* grad_albedo, out T* grad_normals, out T* gamma_partial, i32 V, "
                         "i32 need_albedo, i32 need_normals, i32 need_gamma",
})

BLOCK = 256
VERTS_PER_THREAD = 8  # backward: vertices per thread, so that the ∂L/∂γ partials stay small
MAX_BLOCKS_BACKWARD = 64


def _dummy(like: torch.Tensor) -> torch.Tensor:
    return torch.empty(1, dtype=like.dtype, device=like.device)


def sh_shade_forward(albedo, normals, gamma, *, emulate: bool = False) -> torch.Tensor:
    """albedo (B, V, 3), normals (B, V, 3), gamma (B, 9, 3), one dtype/device → (B, V, 3)."""
    albedo, normals, gamma = (t.detach().contiguous() for t in (albedo, normals, gamma))
    n_img, n_vert = albedo.shape[0], albedo.shape[1]
    out = torch.empty_like(albedo)
    if n_img == 0 or n_vert == 0:
        return out
    gx = min(-(-n_vert // BLOCK), 65535)
    launch(KERNELS.for_dtype("sh_shade_forward", albedo.dtype), (gx, n_img, 1), (BLOCK, 1, 1),
           (albedo, normals, gamma, out, n_vert), emulate=emulate)
    return out


def sh_shade_backward(albedo, normals, gamma, grad_out, needs=(True, True, True), *,
                      emulate: bool = False):
    """(grad_albedo, grad_normals, grad_gamma) for grad_out (B, V, 3); None where not needed."""
    albedo, normals, gamma, grad_out = (
        t.detach().contiguous() for t in (albedo, normals, gamma, grad_out)
    )
    n_img, n_vert = albedo.shape[0], albedo.shape[1]
    if not any(needs):
        return None, None, None
    if n_img == 0 or n_vert == 0:
        zeros = (torch.zeros_like(albedo), torch.zeros_like(normals), torch.zeros_like(gamma))
        return tuple(z if need else None for z, need in zip(zeros, needs, strict=True))
    gx = max(1, min(-(-n_vert // (BLOCK * VERTS_PER_THREAD)), MAX_BLOCKS_BACKWARD))
    grad_albedo = torch.empty_like(albedo) if needs[0] else _dummy(albedo)
    grad_normals = torch.empty_like(normals) if needs[1] else _dummy(albedo)
    partial = (torch.empty((n_img, gx * BLOCK, 9, 3), dtype=albedo.dtype, device=albedo.device)
               if needs[2] else _dummy(albedo))
    launch(KERNELS.for_dtype("sh_shade_backward", albedo.dtype), (gx, n_img, 1), (BLOCK, 1, 1),
           (albedo, normals, gamma, grad_out, grad_albedo, grad_normals, partial, n_vert,
            needs[0], needs[1], needs[2]), emulate=emulate)
    return (grad_albedo if needs[0] else None, grad_normals if needs[1] else None,
            partial.sum(dim=1) if needs[2] else None)
