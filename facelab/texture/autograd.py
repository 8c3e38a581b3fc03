"""The bilinear texture lookup as a torch.autograd.Function, and its validated public op."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from facelab._checks import as_tensor, check_finite, check_floating, check_shape, like_input
from facelab.texture import cpu

__all__ = ["SampleTexture", "sample_texture"]


def _backend(t: torch.Tensor):
    if t.device.type == "cpu":
        return cpu
    if t.device.type == "cuda":
        from facelab.texture import cuda

        return cuda
    raise ValueError(f"sample_texture: expected CPU or CUDA tensors, got device {t.device}")


class SampleTexture(torch.autograd.Function):
    """out = bilinear lookup of ``texture`` at ``uv`` (reference Eqs. 1-2), 0 where masked.

    apply(texture (B, Ht, Wt, C), uv (B, H, W, 2), mask (B, H, W) bool or None) → (B, H, W, C).
    Inputs must already be validated: one float dtype and one device (Numba on CPU, CUDA
    through CuPy on GPU). First-order gradients to texture (a scatter) and uv.
    """

    @staticmethod
    def forward(ctx, texture, uv, mask):
        ctx.save_for_backward(texture, uv, mask)
        return _backend(texture).sample_texture_forward(texture, uv, mask)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        texture, uv, mask = ctx.saved_tensors
        needs = (bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1]))
        grad_texture, grad_uv = _backend(texture).sample_texture_backward(
            texture, uv, mask, grad_out.contiguous(), needs)
        return grad_texture, grad_uv, None


def sample_texture(texture, uv, mask=None):
    """Bilinear texture lookup at per-pixel texture coordinates, compiled.

    The OBJ convention: u to the right, v **up**; texel row r = (1 − v) Ht, column u Wt, texel
    centres at half-integers, row 0 the top of the image (as
    :class:`facelab.model.MorphableModel` stores ``uv`` and ``albedo_texture``). Bilinear
    weights of the four nearest texels, clamp-to-edge addressing (outside [0, 1] the border
    texel repeats). The same values as ``torch.nn.functional.grid_sample(texture.permute(0, 3,
    1, 2), grid=(2u − 1, 1 − 2v), mode="bilinear", padding_mode="border",
    align_corners=False)``. Definition: :mod:`facelab.texture.reference`.

    Args:
        texture: (B, Ht, Wt, C) float32/float64 texture maps (e.g. albedo, linear RGB).
        uv: (B, H, W, 2) same dtype and device, texture coordinates per pixel (e.g. a mesh's
            UVs interpolated by :func:`facelab.interpolate`); any finite values.
        mask: (B, H, W) bool or None: pixels where it is False (no surface) give 0 and pass
            no gradient. None: every pixel is looked up.

    NumPy arrays are accepted (then NumPy comes back).

    Returns:
        (B, H, W, C) in the texture's dtype; differentiable (first order) in ``texture``
        (each output's bilinear weights scattered back to its four texels) and in ``uv``
        (one-sided on texel-centre lines, 0 outside the texture).
    """
    d: dict = {}
    check_shape(texture, "B Ht Wt C", name="texture", dims=d)
    check_shape(uv, "B H W 2", name="uv", dims=d)
    was_numpy = False
    tensors = []
    for x, name in ((texture, "texture"), (uv, "uv")):
        check_floating(x, name=name)
        check_finite(x, name=name)
        t, was_np = as_tensor(x, name=name)
        was_numpy = was_numpy or was_np
        tensors.append(t)
    texture_t, uv_t = tensors
    if d["Ht"] < 1 or d["Wt"] < 1:
        raise ValueError(f"texture: expected (B, Ht, Wt, C) with Ht, Wt >= 1, got "
                         f"{tuple(texture_t.shape)}")
    if uv_t.dtype != texture_t.dtype:
        raise TypeError(f"uv: expected dtype {texture_t.dtype} (that of texture), got {uv_t.dtype}")
    if uv_t.device != texture_t.device:
        raise ValueError(f"uv: expected device {texture_t.device} (that of texture), got "
                         f"{uv_t.device}")
    mask_t = None
    if mask is not None:
        check_shape(mask, "B H W", name="mask", dims=d)
        mask_t, was_np = as_tensor(mask, name="mask")
        was_numpy = was_numpy or was_np
        if mask_t.dtype != torch.bool:
            raise TypeError(f"mask: expected bool, got {mask_t.dtype}")
        if mask_t.device != texture_t.device:
            raise ValueError(f"mask: expected device {texture_t.device} (that of texture), got "
                             f"{mask_t.device}")
        mask_t = mask_t.contiguous()
    out = SampleTexture.apply(texture_t.contiguous(), uv_t.contiguous(), mask_t)
    return like_input(out, was_numpy)
