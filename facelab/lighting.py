"""Nine-term real spherical-harmonics lighting: the basis, its irradiance form, light presets.

The shading op itself, ``sh_shade`` (MoFA Eq. 4), is compiled: :func:`facelab.sh_shade`
(:mod:`facelab.shading`); its plain-torch twin is :mod:`facelab.shading.torch_ref`.

Basis and order
---------------
``sh_basis(n)`` returns the real SH of bands 0-2 at unit directions n = (x, y, z), in the
order fixed here and used everywhere in facelab (Ramamoorthi & Hanrahan 2001, "An efficient
representation for irradiance environment maps", Eq. 3)::

    k  0      1        2        3        4         5         6               7         8
       Y00    Y1-1     Y10      Y11      Y2-2      Y2-1      Y20             Y21       Y22
       c0     c1*y     c1*z     c1*x     c2*xy     c2*yz     c3*(3z^2-1)     c2*xz     c4*(x^2-y^2)

    c0 = 1/(2 sqrt(pi)) = 0.282095      c1 = sqrt(3/(4 pi)) = 0.488603
    c2 = sqrt(15/pi)/2  = 1.092548      c3 = sqrt(5/pi)/4   = 0.315392
    c4 = sqrt(15/pi)/4  = 0.546274

These are orthonormal on the sphere: ∫ Y_i Y_j dΩ = δ_ij.

Where the convolution factors live
----------------------------------
For a Lambertian surface the irradiance is the environment convolved with the clamped cosine,
whose SH factors are Â_l = (π, 2π/3, π/4) for l = 0, 1, 2 (R&H 2001, Eqs. 7-8)::

    E(n) = Σ_lm Â_l L_lm Y_lm(n)

Like MoFA and Deep3DFace, facelab folds Â_l into the basis: ``sh_irradiance_basis(n) =
Â_l(k) * sh_basis(n)``, and the lighting coefficients ``gamma`` (B, 9, 3) are the environment's
radiance coefficients L_lm per colour channel. Hence

* ``sh_shade(albedo, n, gamma) = albedo * (sh_irradiance_basis(n) @ gamma)``   (MoFA Eq. 4);
* a constant environment of radiance c has gamma[0] = 2 sqrt(π) c and irradiance π c;
* ``gamma[:, 0] = 0.7`` alone gives a uniform grey irradiance 0.7 π c0 = 0.62;
  :func:`ambient_sh` returns the gamma whose irradiance equals a chosen value exactly.

gamma lives in the frame of the normals given to ``sh_shade`` (MoFA: camera space).
"""

from __future__ import annotations

import math

import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_int,
    check_shape,
    like_input,
)

__all__ = [
    "SH_CONV",
    "ambient_sh",
    "random_sh",
    "sh_basis",
    "sh_from_direction",
    "sh_irradiance_basis",
]

_C0 = 0.5 / math.sqrt(math.pi)  # 0.282095
_C1 = math.sqrt(3.0 / (4.0 * math.pi))  # 0.488603
_C2 = 0.5 * math.sqrt(15.0 / math.pi)  # 1.092548
_C3 = 0.25 * math.sqrt(5.0 / math.pi)  # 0.315392
_C4 = 0.25 * math.sqrt(15.0 / math.pi)  # 0.546274

#: Clamped-cosine convolution factor Â_l of each of the 9 coefficients (R&H 2001, Eq. 8):
#: π for band 0, 2π/3 for band 1, π/4 for band 2.
SH_CONV = (math.pi,) + (2.0 * math.pi / 3.0,) * 3 + (math.pi / 4.0,) * 5

# The 9-term irradiance of a unit delta light at angle θ from the normal, t = cos θ, is
# E(t) = 1/4 + t/2 + (5/32)(3t^2 - 1) (addition theorem): it ranges over [-0.0396, 1.0625] and
# differs from max(0, t) by at most 0.094 (at t = 0). random_sh's bounds rest on these numbers.


def _sh_basis(n: torch.Tensor) -> torch.Tensor:
    x, y, z = n.unbind(-1)
    return torch.stack(
        [
            torch.full_like(x, _C0),
            _C1 * y,
            _C1 * z,
            _C1 * x,
            _C2 * x * y,
            _C2 * y * z,
            _C3 * (3.0 * z * z - 1.0),
            _C2 * x * z,
            _C4 * (x * x - y * y),
        ],
        dim=-1,
    )  # (..., 9)


def _conv(ref: torch.Tensor) -> torch.Tensor:
    return torch.tensor(SH_CONV, dtype=ref.dtype, device=ref.device)  # (9,)


def _check_normals(normals, name: str = "normals"):
    n, was_numpy = as_tensor(normals, name=name)
    check_shape(n, "... 3", name=name)
    check_floating(n, name=name)
    check_finite(n, name=name)
    return n, was_numpy


def sh_basis(normals):
    """Real spherical harmonics of bands 0-2 (R&H 2001 Eq. 3), order as in the module docstring.

    normals: (..., 3) float32/float64 unit vectors (not renormalised: Y20 uses 3z^2 - 1,
        which assumes |n| = 1); NumPy in, NumPy out.
    Returns (..., 9): [c0, c1 y, c1 z, c1 x, c2 xy, c2 yz, c3 (3z^2 - 1), c2 xz, c4 (x^2 - y^2)].
    """
    n, was_numpy = _check_normals(normals)
    return like_input(_sh_basis(n), was_numpy)


def sh_irradiance_basis(normals):
    """SH basis with the clamped-cosine factors Â_l = (π, 2π/3, π/4) folded in (R&H 2001 Eq. 7).

    normals: (..., 3) float unit vectors; NumPy in, NumPy out.
    Returns (..., 9) = ``SH_CONV * sh_basis(normals)``; ``H(n) @ gamma`` is the irradiance at n of
    the environment whose radiance SH coefficients are ``gamma``: H_b in MoFA Eq. (4).
    """
    n, was_numpy = _check_normals(normals)
    return like_input(_sh_basis(n) * _conv(n), was_numpy)


def ambient_sh(intensity: float = 0.7, *, dtype: torch.dtype = torch.float32, device=None):
    """Uniform grey illumination whose irradiance is ``intensity`` in every direction.

    intensity: irradiance value (0.7 shades to 70 % of the albedo).
    Returns (9, 3): zeros except ``gamma[0] = intensity / (π c0) = 1.128 * intensity``.
    Use ``ambient_sh(...).expand(B, 9, 3)`` (or ``[None].repeat``) for a batch.
    """
    if isinstance(intensity, bool) or not isinstance(intensity, (int, float)):
        raise TypeError(f"intensity: expected a number, got {type(intensity).__name__}")
    if not math.isfinite(intensity) or intensity < 0:
        raise ValueError(f"intensity: expected a finite number >= 0, got {intensity}")
    gamma = torch.zeros(9, 3, dtype=dtype, device=device)
    gamma[0] = intensity / (math.pi * _C0)
    return gamma


def sh_from_direction(direction, intensity: float = 1.0, ambient: float = 0.0):
    """A distant directional light (plus optional ambient) projected onto the 9 SH coefficients.

    direction: (3,) or (B, 3) float, pointing FROM the surface TOWARD the light, in the frame
        of the normals you will shade (normalised here). In model space (0, 0, 1) lights the
        face from the front; in OpenCV camera space the light at the camera is (0, 0, -1).
        NumPy in, NumPy out; differentiable in ``direction``.
    intensity: radiant intensity of the white light; ambient: irradiance of an added uniform
        light (see :func:`ambient_sh`).
    Returns (B, 9, 3) (B = 1 for a (3,) direction): ``gamma_k = intensity * Y_k(d)`` (the SH
    projection of a delta light; its irradiance is the 9-term approximation of
    ``intensity * max(0, n . d)``, within 0.094 * intensity of it, and dips to -0.04 * intensity
    on the far side; add ``ambient >= 0.04 * intensity`` to keep it >= 0) plus the ambient term.
    """
    d, was_numpy = as_tensor(direction, name="direction")
    if d.ndim == 1:
        d = d[None]
    check_shape(d, "B 3", name="direction")
    check_floating(d, name="direction")
    check_finite(d, name="direction")
    for value, name in ((intensity, "intensity"), (ambient, "ambient")):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    length = d.norm(dim=-1, keepdim=True)
    if bool((length == 0).any()):
        raise ValueError("direction: expected non-zero vectors, got a zero row")
    y = _sh_basis(d / length)  # (B, 9)
    gamma = intensity * y[:, :, None].expand(-1, 9, 3)  # (B, 9, 3)
    gamma = gamma + ambient_sh(float(ambient), dtype=d.dtype, device=d.device)
    return like_input(gamma, was_numpy)


def random_sh(batch: int, *, generator: torch.Generator | None = None,
              dtype: torch.dtype = torch.float32, device=None, front=(0.0, 0.0, 1.0)):
    """Plausible random illumination for synthetic data: ambient plus one coloured key light.

    batch: B.
    generator: optional torch.Generator (CPU) for reproducibility.
    front: (3,) direction the key light comes from on average: (0, 0, 1) for model-space
        normals (default), (0, 0, -1) for OpenCV camera-space normals (camera at the origin).
    Returns (B, 9, 3) on ``device``. Per sample:

    * ambient irradiance a ~ U(0.4, 0.7) (band 0 dominates);
    * a white key light of intensity s ~ U(0.1, 0.5) from a direction drawn uniformly in the
      cone of half-angle 60 degrees around ``front``;
    * a colour tint t_c ~ U(0.9, 1.1) per channel multiplying that channel's coefficients.

    Guarantees: irradiance is >= 0 in EVERY direction (a >= 0.4 exceeds the 9-term clamped-
    cosine undershoot 0.04 s) and at most 1.1 (0.7 + 1.0625 * 0.5) < 1.37, so albedo <= 0.7
    stays below 1 when shaded.
    """
    b = check_int(batch, name="batch", minimum=1)
    try:
        f = torch.as_tensor(front, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"front: expected a (3,) direction, got {type(front).__name__}") from err
    check_shape(f, "3", name="front")
    check_finite(f, name="front")
    if float(f.norm()) == 0:
        raise ValueError("front: expected a non-zero direction, got (0, 0, 0)")
    f = f / f.norm()

    def uniform(lo, hi, *shape):
        u = torch.rand(*shape, generator=generator, dtype=torch.float64)
        return lo + (hi - lo) * u

    ambient = uniform(0.4, 0.7, b)  # (B,)
    strength = uniform(0.1, 0.5, b)  # (B,)
    tint = uniform(0.9, 1.1, b, 3)  # (B, 3)
    # Direction uniform in the cone around +z, then rotated so +z maps to `front`.
    cos_t = uniform(math.cos(math.radians(60.0)), 1.0, b)
    phi = uniform(0.0, 2.0 * math.pi, b)
    sin_t = torch.sqrt(1.0 - cos_t * cos_t)
    local = torch.stack([sin_t * torch.cos(phi), sin_t * torch.sin(phi), cos_t], dim=1)  # (B, 3)
    direction = local @ _frame_from_z(f).T  # (B, 3)
    gamma = strength[:, None] * _sh_basis(direction)  # (B, 9) white key light
    gamma[:, 0] += ambient / (math.pi * _C0)
    gamma = gamma[:, :, None] * tint[:, None, :]  # (B, 9, 3)
    return gamma.to(dtype=dtype, device=device)


def _frame_from_z(f: torch.Tensor) -> torch.Tensor:
    """A rotation (3, 3) whose third column is the unit vector f (maps +z to f)."""
    helper = torch.tensor([1.0, 0.0, 0.0], dtype=f.dtype)
    if abs(float(f[0])) > 0.9:
        helper = torch.tensor([0.0, 1.0, 0.0], dtype=f.dtype)
    e1 = torch.linalg.cross(helper, f)
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(f, e1)
    return torch.stack([e1, e2, f], dim=1)  # columns e1, e2, f
