"""CUDA launchers for shading + photometric loss (``kernels/shaded_photometric.cu``), MoFA
Eqs. (4) + (8).

GPU: NVRTC via ``cupy.RawModule``, launched on torch's current stream. ``emulate=True``: the
same source compiled for the host (``facelab_cuda.h``) runs on CPU tensors via ctypes (each
grid twice, in two thread orders that must agree; see :mod:`facelab.kernel_launch`), for the
tests. The forward's per-image sums and the backward's ∂L/∂γ partials (one per thread) are
reduced by torch: deterministic, no atomics.
"""

from __future__ import annotations

import torch

from facelab.kernel_launch import declare_kernels, launch
from facelab.shaded_photometric.cpu import BASIS_CONSTANTS

__all__ = ["KERNELS", "shaded_photometric_backward", "shaded_photometric_forward"]

# The kernels' parameter lists, declared once (format: facelab.kernel_launch).
KERNELS = declare_kernels("shaded_photometric", {
    "shaded_photometric_forward": "in T* image, in T* positions, in T* albedo, in T* normals, "
                                  "in T* gamma_c, in T* weights, out T* err, out T* w_eff, "
                                  "i32 V, i32 H, i32 W, T eps",
    "shaded_photometric_backward": "in T* image, in T* positions, in T* albedo, in T* normals, "
                                   "in T* gamma_c, in T* weights, in T* scale, "
                                   "out T* grad_positions, out T* grad_albedo, "
                                   "out T* grad_normals, out T* gamma_partial, i32 V, i32 H, "
                                   "i32 W, T eps, i32 need_positions, i32 need_albedo, "
                                   "i32 need_normals, i32 need_gamma",
})

BLOCK = 256
VERTS_PER_THREAD = 8  # backward: vertices per thread, so that the ∂L/∂γ partials stay small
MAX_BLOCKS_BACKWARD = 64


def _constants(like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(BASIS_CONSTANTS, dtype=like.dtype, device=like.device)[:, None]


def _prepare(*tensors):
    return tuple(t.detach().contiguous() for t in tensors)


def shaded_photometric_forward(image, positions, albedo, normals, gamma, weights, eps: float, *,
                               emulate: bool = False):
    """Tensors of one dtype/device: image (B, H, W, 3), positions (B, V, 2), albedo, normals
    (B, V, 3), gamma (B, 9, 3), weights (B, V) → (loss (B,), count (B,))."""
    image, positions, albedo, normals, weights = _prepare(image, positions, albedo, normals,
                                                          weights)
    gamma_c = (gamma.detach() * _constants(gamma)).contiguous()  # (B, 9, 3)
    n_img, height, width = image.shape[:3]
    n_vert = positions.shape[1]
    err = torch.zeros_like(weights)
    w_eff = torch.zeros_like(weights)
    if n_img > 0 and n_vert > 0:
        launch(KERNELS.for_dtype("shaded_photometric_forward", albedo.dtype),
               (max(1, min(-(-n_vert // BLOCK), 65535)), n_img, 1), (BLOCK, 1, 1),
               (image, positions, albedo, normals, gamma_c, weights, err, w_eff, n_vert, height,
                width, eps), emulate=emulate)
    count = w_eff.sum(dim=1)
    total = err.sum(dim=1)
    safe = torch.where(count > 0, count, torch.ones_like(count))
    return torch.where(count > 0, total / safe, torch.zeros_like(count)), count


def shaded_photometric_backward(image, positions, albedo, normals, gamma, weights, eps: float,
                                count, grad_loss, needs=(True, True, True, True), *,
                                emulate: bool = False):
    """(grad_positions, grad_albedo, grad_normals, grad_gamma) for grad_loss (B,); None where
    ``needs`` (same order) is False."""
    if not any(needs):
        return None, None, None, None
    image, positions, albedo, normals, weights = _prepare(image, positions, albedo, normals,
                                                          weights)
    gamma_c = (gamma.detach() * _constants(gamma)).contiguous()
    n_img, height, width = image.shape[:3]
    n_vert = positions.shape[1]
    safe = torch.where(count > 0, count, torch.ones_like(count))
    scale = torch.where(count > 0, grad_loss / safe, torch.zeros_like(count))  # g_b / Σ w
    scale = scale.to(albedo.dtype).contiguous()
    gx = max(1, min(-(-n_vert // (BLOCK * VERTS_PER_THREAD)), MAX_BLOCKS_BACKWARD))
    dummy = torch.empty(1, dtype=albedo.dtype, device=albedo.device)
    grad_positions = torch.zeros_like(positions) if needs[0] else dummy
    grad_albedo = torch.zeros_like(albedo) if needs[1] else dummy
    grad_normals = torch.zeros_like(normals) if needs[2] else dummy
    partial = (torch.zeros((n_img, gx * BLOCK, 9, 3), dtype=albedo.dtype, device=albedo.device)
               if needs[3] else dummy)
    if n_img > 0 and n_vert > 0:
        launch(KERNELS.for_dtype("shaded_photometric_backward", albedo.dtype),
               (gx, n_img, 1), (BLOCK, 1, 1),
               (image, positions, albedo, normals, gamma_c, weights, scale, grad_positions,
                grad_albedo, grad_normals, partial, n_vert, height, width, eps, needs[0],
                needs[1], needs[2], needs[3]), emulate=emulate)
    grad_gamma = None
    if needs[3]:
        grad_gamma = partial.sum(dim=1) * _constants(albedo)  # (B, 9, 3)
    return (grad_positions if needs[0] else None, grad_albedo if needs[1] else None,
            grad_normals if needs[2] else None, grad_gamma)
