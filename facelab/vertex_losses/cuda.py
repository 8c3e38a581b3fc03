"""CUDA launchers for the dense photometric loss (``kernels/photometric.cu``), MoFA Eq. (8).

GPU: NVRTC via ``cupy.RawModule``, launched on torch's current stream. ``emulate=True``: the
same source compiled for the host (``facelab_cuda.h``) runs on CPU tensors via ctypes, for
the tests. The image gradient is accumulated with atomicAdd (vertices share pixels); the
per-image sums of the forward are reduced by torch (deterministic).
"""

from __future__ import annotations

import numpy as np
import torch

from facelab.kernel_sources import launch

__all__ = ["photometric_backward", "photometric_forward"]

BLOCK = 256


def _kernel(stage: str, t: torch.Tensor) -> str:
    return f"photometric_{stage}_{'f32' if t.dtype == torch.float32 else 'f64'}"


def _scalar(t: torch.Tensor, value: float):
    return np.float32(value) if t.dtype == torch.float32 else np.float64(value)


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
        launch("photometric", _kernel("forward", colors), _grid(n_img, n_vert), (BLOCK, 1, 1),
               (image, positions, colors, weights, err, w_eff, np.int32(n_vert),
                np.int32(height), np.int32(width), _scalar(colors, eps)), emulate=emulate)
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
        launch("photometric", _kernel("backward", colors), _grid(n_img, n_vert), (BLOCK, 1, 1),
               (image, positions, colors, weights, scale, grad_image, grad_positions,
                grad_colors, np.int32(n_vert), np.int32(height), np.int32(width),
                _scalar(colors, eps), np.int32(needs[0]), np.int32(needs[1]),
                np.int32(needs[2])), emulate=emulate)
    return (grad_image if needs[0] else None, grad_positions if needs[1] else None,
            grad_colors if needs[2] else None)
