"""The dense photometric loss (MoFA Eq. 8) as a torch.autograd.Function, and its validated
per-image wrapper."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_positive,
    check_shape,
    like_input,
)
from facelab.vertex_losses import cpu

__all__ = ["PhotometricLoss", "photometric_per_image"]


def _backend(t: torch.Tensor):
    if t.device.type == "cpu":
        return cpu
    if t.device.type == "cuda":
        from facelab.vertex_losses import cuda

        return cuda
    raise ValueError(f"photometric loss: expected CPU or CUDA tensors, got device {t.device}")


class PhotometricLoss(torch.autograd.Function):
    """Per-image robust photometric loss with compiled forward/backward (Numba / CUDA).

    apply(image (B,H,W,3), positions (B,V,2), colors (B,V,3), weights (B,V), eps) → (B,).
    Inputs must be validated, of one dtype and device. Differentiable (first order) in image,
    positions and colors; weights and eps are constants.
    """

    @staticmethod
    def forward(ctx, image, positions, colors, weights, eps):
        loss, count = _backend(colors).photometric_forward(image, positions, colors, weights, eps)
        ctx.save_for_backward(image, positions, colors, weights, count)
        ctx.eps = eps
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        image, positions, colors, weights, count = ctx.saved_tensors
        needs = tuple(bool(n) for n in ctx.needs_input_grad[:3])
        grads = _backend(colors).photometric_backward(
            image, positions, colors, weights, ctx.eps, count, grad_loss.contiguous(), needs
        )
        return (*grads, None, None)


def photometric_per_image(image, positions, colors, visibility, *, eps: float = 1e-6):
    """Dense photometric alignment per image, MoFA Eq. (8), compiled.

    E_b = (1 / Σ_i w_i) Σ_i w_i (sqrt(||I(u_i) − c_i||² + eps²) − eps), with I(u) the
    bilinear sample of the image at u (pixel centres at (j + 0.5, i + 0.5); neighbours clamped
    to the border) and w_i = visibility_i × [u_i inside the image]: vertices projecting outside
    [0, W) × [0, H) count as invisible. An image without visible vertices gives 0 and zero
    gradients. eps keeps the gradient finite at a zero residual, where the cost is exactly 0.

    Args:
        image: (B, H, W, 3) float32/float64, target image I, values in [0, 1].
        positions: (B, V, 2) float, screen positions u_i of the vertices in pixels.
        colors: (B, V, 3) float, predicted vertex colours c_i (e.g. from ``sh_shade``).
        visibility: (B, V) bool, or float non-negative per-vertex weights (not differentiated).
        eps: positive float, smoothing of the l2 norm (default 1e-6).

    NumPy arrays are accepted (then NumPy is returned). Mixed float dtypes are computed in the
    widest one; bilinear sampling is not differentiable in u on pixel-centre grid lines
    (one-sided derivatives differ there).

    Returns:
        (B,) per-image loss, dtype of the inputs; differentiable in image, positions, colors.
    """
    eps = check_positive(eps, name="eps")
    d: dict = {}
    check_shape(image, "B H W 3", name="image", dims=d)
    check_shape(positions, "B V 2", name="positions", dims=d)
    check_shape(colors, "B V 3", name="colors", dims=d)
    check_shape(visibility, "B V", name="visibility", dims=d)
    was_numpy = False
    floats = []
    for x, name in ((image, "image"), (positions, "positions"), (colors, "colors")):
        check_floating(x, name=name)
        check_finite(x, name=name)
        t, was_np = as_tensor(x, name=name)
        was_numpy = was_numpy or was_np
        floats.append(t)
    image_t, positions_t, colors_t = floats
    vis_t, was_np = as_tensor(visibility, name="visibility")
    was_numpy = was_numpy or was_np
    if vis_t.is_complex() or not (vis_t.dtype == torch.bool or vis_t.is_floating_point()):
        raise TypeError(f"visibility: expected bool or float, got {vis_t.dtype}")
    if vis_t.is_floating_point():
        check_finite(vis_t, name="visibility")
        if vis_t.numel() and bool((vis_t < 0).any()):
            raise ValueError("visibility: expected values >= 0, got negative weights")
    devices = {t.device for t in (image_t, positions_t, colors_t, vis_t)}
    if len(devices) != 1:
        raise ValueError(f"image, positions, colors, visibility: expected one device, got "
                         f"{sorted(str(d) for d in devices)}")
    dtype = torch.promote_types(torch.promote_types(image_t.dtype, positions_t.dtype),
                                colors_t.dtype)
    loss = PhotometricLoss.apply(image_t.to(dtype), positions_t.to(dtype), colors_t.to(dtype),
                                 vis_t.detach().to(dtype), eps)
    return like_input(loss, was_numpy)
