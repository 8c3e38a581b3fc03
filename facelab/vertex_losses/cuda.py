"""CUDA launchers for the dense photometric loss (``kernels/photometric.cu``), MoFA Eq. (8).

GPU: NVRTC via ``cupy.RawModule``, launched on torch's current stream. ``emulate=True``: the
same source compiled for the host (``facelab_cuda.h``) runs on CPU tensors via ctypes (each
grid twice, in two thread orders that must agree; see :mod:`facelab.kernel_launch`), for the
tests. The image gradient is accumulated with atomicAdd (vertices share pixels); the
per-image sums of the forward are reduced by torch (deterministic).
"""

from __future__ import annotations

import torch

from facelab.kernel_launch import declare_kernels, launch

__all__ = ["KERNELS", "photometric_backward", "photometric_forward"]

# The kernels' parameter lists, declared once (format: facelab.kernel_launch).
KERNELS = declare_kernels("photometric", {
    "photometric_forward": "in T* image, in T* positions, in T* colors, in T* weights, "
                           "out T* err, out T* w_eff, i32 V, i32 H, i32 W, T eps",
    "photometric_backward": "in T* image, in T* positions, in T* colors, in T* weights, "
                            "in T* scale, sum T* grad_image, out T* grad_positions, "
                            "out T* grad_colors, i32 V, i32 H, i32 W, T eps, i32 need_image, "
                            "i32 need_positions, i32 need_colors",
})

BLOCK = 256


def _kernel(stage: str, t: torch.Tensor):
    return KERNELS.for_dtype(f"photometric_{stage}", t.dtype)


def _grid(n_img: int, n_vert: int) -> tuple:
    return (max(1, min(-(-n_vert // BLOCK), 65535)), n_img, 1)


def photometric_forward(image, positions, colors, weights, eps: float, *, emulate: bool = False):
    """image (B, H, W, 3), positions (B, V, 2), colors (B, V, 3), weights (B, V), one
    dtype/device → (loss (B,), count (B,)), count = Σ_i w_i over in-image vertices."""
    image, positions, colors, weights = (
        t.detach().contiguous() for t in (image, positions, colors, weights)
    )
    n_img, height, width = image.shape[:3]
    n_vert = positions.shape[1]
    err = torch.zeros_like(weights)
    w_eff = torch.zeros_like(weights)
    if n_img > 0 and n_vert > 0:
        launch(_kernel("forward", colors), _grid(n_img, n_vert), (BLOCK, 1, 1),
               (image, positions, colors, weights, err, w_eff, n_vert, height, width, eps),
               emulate=emulate)
    count = w_eff.sum(dim=1)
    total = err.sum(dim=1)
    loss = torch.where(count > 0, total / torch.where(count > 0, count, torch.ones_like(count)),
                       torch.zeros_like(count))
    return loss, count


def photometric_backward(image, positions, colors, weights, eps: float, count, grad_loss,
                         needs=(True, True, True), *, emulate: bool = False):
    """(grad_image, grad_positions, grad_colors) for grad_loss (B,); None where not needed."""
    if not any(needs):
        return None, None, None
    image, positions, colors, weights = (
        t.detach().contiguous() for t in (image, positions, colors, weights)
    )
    n_img, height, width = image.shape[:3]
    n_vert = positions.shape[1]
    safe = torch.where(count > 0, count, torch.ones_like(count))
    scale = torch.where(count > 0, grad_loss / safe, torch.zeros_like(count))  # g_b / Σ w
    scale = scale.to(colors.dtype).contiguous()
    dummy = torch.empty(1, dtype=colors.dtype, device=colors.device)
    grad_image = torch.zeros_like(image) if needs[0] else dummy
    grad_positions = torch.zeros_like(positions) if needs[1] else dummy
    grad_colors = torch.zeros_like(colors) if needs[2] else dummy
    if n_img > 0 and n_vert > 0:
        launch(_kernel("backward", colors), _grid(n_img, n_vert), (BLOCK, 1, 1),
               (image, positions, colors, weights, scale, grad_image, grad_positions,
                grad_colors, n_vert, height, width, eps, needs[0], needs[1], needs[2]),
               emulate=emulate)
    return (grad_image if needs[0] else None, grad_positions if needs[1] else None,
            grad_colors if needs[2] else None)
