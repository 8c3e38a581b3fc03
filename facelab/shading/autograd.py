"""SH shading as a torch.autograd.Function and its validated public wrapper, MoFA Eq. (4)."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from facelab._checks import as_tensor, check_finite, check_floating, check_shape, like_input
from facelab.shading import cpu

__all__ = ["ShShade", "sh_shade"]


def _backend(t: torch.Tensor):
    if t.device.type == "cpu":
        return cpu
    if t.device.type == "cuda":
        from facelab.shading import cuda

        return cuda
    raise ValueError(f"sh_shade: expected CPU or CUDA tensors, got device {t.device}")


class ShShade(torch.autograd.Function):
    """c = r ⊙ Σ_b γ_b H_b(n) with compiled forward/backward (Numba on CPU, CUDA on GPU).

    Inputs must already be validated: albedo (B, V, 3), normals (B, V, 3), gamma (B, 9, 3),
    one dtype (float32/float64) and one device. First-order gradients only.
    """

    @staticmethod
    def forward(ctx, albedo, normals, gamma):
        ctx.save_for_backward(albedo, normals, gamma)
        return _backend(albedo).sh_shade_forward(albedo, normals, gamma)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        albedo, normals, gamma = ctx.saved_tensors
        needs = tuple(bool(n) for n in ctx.needs_input_grad[:3])
        return _backend(albedo).sh_shade_backward(albedo, normals, gamma, grad_out, needs)


MAX_NORMAL_LENGTH = 2.0
"""Largest normal component :func:`sh_shade` accepts (unit normals have at most 1)."""


def sh_shade(albedo, normals, gamma):
    """Lambertian SH shading of per-vertex colours, MoFA Eq. (4), compiled.

    c_i = r_i ⊙ Σ_{b=1..9} γ_b H_b(n_i), with H_b the irradiance basis of
    :mod:`facelab.lighting` (real SH bands 0-2 with the clamped-cosine factors π, 2π/3, π/4
    folded in; order [1, y, z, x, xy, yz, 3z²−1, xz, x²−y²]). Same values as
    ``facelab.shading.torch_ref.sh_shade_torch``; this one runs Numba (CPU) or CUDA kernels and is
    differentiable (first order) in all three inputs.

    Args:
        albedo: (B, V, 3) float32/float64, linear RGB reflectance r_i.
        normals: (B, V, 3) same dtype, unit normals n_i in the frame of ``gamma`` (MoFA:
            camera space). Used as given: they are NOT renormalised, but a normal longer than
            :data:`MAX_NORMAL_LENGTH` is refused (the quadratic basis would overflow into
            NaN instead of shading).
        gamma: (B, 9, 3) same dtype, SH lighting coefficients γ_b, one RGB triple per basis
            function.

    All three must share dtype and device (as in ``facelab.shading.torch_ref.sh_shade_torch``);
    NumPy arrays are accepted and give NumPy back.

    Returns:
        (B, V, 3) shaded colours c_i, dtype/device of the inputs.
    """
    d: dict = {}
    tensors = []
    was_numpy = False
    for x, name, spec in ((albedo, "albedo", "B V 3"), (normals, "normals", "B V 3"),
                          (gamma, "gamma", "B 9 3")):
        check_shape(x, spec, name=name, dims=d)
        check_floating(x, name=name)
        check_finite(x, name=name)
        t, was_np = as_tensor(x, name=name)
        was_numpy = was_numpy or was_np
        tensors.append(t)
    albedo_t, normals_t, gamma_t = tensors
    for t, name in ((normals_t, "normals"), (gamma_t, "gamma")):
        if t.dtype != albedo_t.dtype:
            raise TypeError(
                f"{name}: expected dtype {albedo_t.dtype} (that of albedo), got {t.dtype}"
            )
        if t.device != albedo_t.device:
            raise ValueError(
                f"{name}: expected device {albedo_t.device} (that of albedo), got {t.device}"
            )
    if normals_t.numel():
        longest = float(normals_t.detach().abs().amax())  # max |component| <= |n|
        if longest > MAX_NORMAL_LENGTH:
            raise ValueError(f"normals: expected unit normals (components <= "
                             f"{MAX_NORMAL_LENGTH}), got a component of {longest:.3g}; "
                             "normalise them (facelab.vertex_normals gives unit normals)")
    out = ShShade.apply(albedo_t, normals_t, gamma_t)
    return like_input(out, was_numpy)
