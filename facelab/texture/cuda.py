"""CUDA launchers for the bilinear texture lookup (``kernels/texture.cu``).

GPU: NVRTC via ``cupy.RawModule``, launched on torch's current stream. ``emulate=True``: the
same source compiled for the host (``facelab_cuda.h``) runs on CPU tensors via ctypes (each
grid twice, in two thread orders that must agree; see :mod:`facelab.kernel_launch`), for the
tests. The texture gradient is accumulated with atomicAdd (neighbouring pixels share texels).
"""

from __future__ import annotations

import torch

from facelab.kernel_launch import declare_kernels, launch

__all__ = ["KERNELS", "sample_texture_backward", "sample_texture_forward"]

# The kernels' parameter lists, declared once (format: facelab.kernel_launch).
KERNELS = declare_kernels("texture", {
    "texture_forward": "in T* texture, in T* uv, in i32* mask, i32 has_mask, i32 B, i32 H, "
                       "i32 W, i32 Ht, i32 Wt, i32 C, out T* out",
    "texture_backward": "in T* texture, in T* uv, in i32* mask, i32 has_mask, in T* grad_out, "
                        "i32 B, i32 H, i32 W, i32 Ht, i32 Wt, i32 C, sum T* grad_texture, "
                        "out T* grad_uv, i32 need_texture, i32 need_uv",
})

BLOCK = 256
MAX_BLOCKS = 1 << 16  # grid-stride beyond this


def _grid(n_pixels: int) -> tuple:
    return (max(1, min(-(-n_pixels // BLOCK), MAX_BLOCKS)), 1, 1)


def _mask_arg(mask, like: torch.Tensor):
    if mask is None:
        return torch.zeros(1, dtype=torch.int32, device=like.device), 0
    return mask.detach().to(torch.int32).contiguous(), 1


def sample_texture_forward(texture, uv, mask=None, *, emulate: bool = False):
    """texture (B, Ht, Wt, C), uv (B, H, W, 2) of one dtype/device, mask (B, H, W) bool or
    None → (B, H, W, C)."""
    texture, uv = texture.detach().contiguous(), uv.detach().contiguous()
    n_img, height, width = uv.shape[:3]
    t_h, t_w, n_ch = texture.shape[1:]
    out = torch.zeros(n_img, height, width, n_ch, dtype=texture.dtype, device=texture.device)
    m, has_mask = _mask_arg(mask, uv)
    n_pix = n_img * height * width
    if n_pix and n_ch:
        launch(KERNELS.for_dtype("texture_forward", texture.dtype), _grid(n_pix), (BLOCK, 1, 1),
               (texture, uv, m, has_mask, n_img, height, width, t_h, t_w, n_ch, out),
               emulate=emulate)
    return out


def sample_texture_backward(texture, uv, mask, grad_out, needs=(True, True), *,
                            emulate: bool = False):
    """(grad_texture (B, Ht, Wt, C), grad_uv (B, H, W, 2)) for grad_out (B, H, W, C); None
    where ``needs`` is False."""
    if not any(needs):
        return None, None
    texture, uv = texture.detach().contiguous(), uv.detach().contiguous()
    grad_out = grad_out.detach().contiguous()
    n_img, height, width = uv.shape[:3]
    t_h, t_w, n_ch = texture.shape[1:]
    dummy = torch.empty(1, dtype=texture.dtype, device=texture.device)
    grad_texture = torch.zeros_like(texture) if needs[0] else dummy
    grad_uv = torch.zeros_like(uv) if needs[1] else dummy
    m, has_mask = _mask_arg(mask, uv)
    n_pix = n_img * height * width
    if n_pix and n_ch:
        launch(KERNELS.for_dtype("texture_backward", texture.dtype), _grid(n_pix),
               (BLOCK, 1, 1), (texture, uv, m, has_mask, grad_out, n_img, height, width, t_h,
                               t_w, n_ch, grad_texture, grad_uv, int(needs[0]), int(needs[1])),
               emulate=emulate)
    return (grad_texture if needs[0] else None, grad_uv if needs[1] else None)
