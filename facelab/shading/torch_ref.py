"""The plain-torch definition of SH shading (MoFA Eq. 4): the differentiable-twice reference.

:func:`facelab.sh_shade` (the compiled op) is what the library calls; this twin is built from
torch operations only, so autograd can differentiate it twice and the tests compare the compiled
op with it. Nothing in the library needs a second derivative of the shading today; use this
twin when you do.
"""

from __future__ import annotations

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape, like_input

# the lighting module's SH basis and its Lambertian convolution: one definition of H(n)
from facelab.lighting import _conv, _sh_basis

__all__ = ["sh_shade_torch"]


def sh_shade_torch(albedo, normals, gamma):
    """Lambertian shading under SH illumination, MoFA Eq. (4): C = r ⊙ Σ_b γ_b H_b(n).

    albedo: (B, V, 3) float, linear RGB reflectance (e.g. ``MorphableModel.albedo``).
    normals: (B, V, 3) float unit normals, in the frame gamma is expressed in.
    gamma: (B, 9, 3) float, radiance SH coefficients per colour (the 27 illumination parameters
        of MoFA Eq. 1); coefficient k, channel c. A flat (B, 27) code vector is laid out as
        ``gamma.reshape(B, 9, 3)`` (coefficient-major, RGB fastest) by facelab convention.
    All three must share dtype and device; NumPy in (albedo) -> NumPy out.
    Returns (B, V, 3) shaded colour ``albedo * (sh_irradiance_basis(normals) @ gamma)``,
    not clamped. Differentiable in all three arguments.
    """
    a, was_numpy = as_tensor(albedo, name="albedo")
    n, _ = as_tensor(normals, name="normals")
    g, _ = as_tensor(gamma, name="gamma")
    d = check_shape(a, "B V 3", name="albedo")
    check_shape(n, "B V 3", name="normals", dims=d)
    check_shape(g, "B 9 3", name="gamma", dims=d)
    for t, name in ((a, "albedo"), (n, "normals"), (g, "gamma")):
        check_floating(t, name=name)
        check_finite(t, name=name)
        if t.dtype != a.dtype:
            raise TypeError(f"{name}: expected dtype {a.dtype} (that of albedo), got {t.dtype}")
        if t.device != a.device:
            raise ValueError(f"{name}: expected device {a.device} (that of albedo), got {t.device}")
    irradiance = torch.einsum("bvk,bkc->bvc", _sh_basis(n) * _conv(n), g)  # (B, V, 3)
    return like_input(a * irradiance, was_numpy)
