"""Lambertian spherical-harmonics shading, MoFA Eq. (4) — the NumPy reference.

Readable loops-free NumPy; the definition of correct that the Numba kernels (``cpu.py``) and
the CUDA kernels (``kernels/sh_shade.cu``) are tested against. For every vertex i::

    c_i = r_i ⊙ Σ_{b=1..9} γ_b H_b(n_i)                                  (MoFA Eq. 4)

with r_i the albedo (RGB), n_i the unit normal, γ_b ∈ R³ one coloured coefficient per basis
function, and H_b the *irradiance* basis: the 9 real SH functions of bands 0-2 with the
clamped-cosine (Lambertian) factors Â_0 = π, Â_1 = 2π/3, Â_2 = π/4 folded in
(Ramamoorthi & Hanrahan 2001), in the order [1, y, z, x, xy, yz, 3z²−1, xz, x²−y²] —
exactly ``facelab.lighting``'s irradiance basis. Normals are used as given (assumed unit
length; they are not renormalised).

Shapes: albedo (B, V, 3), normals (B, V, 3), gamma (B, 9, 3) → colours (B, V, 3).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "SH_CONSTANTS",
    "irradiance_basis",
    "irradiance_basis_grad",
    "sh_shade_backward",
    "sh_shade_forward",
]

# Real SH normalisation constants (exact, as in facelab.lighting) times the Lambertian band
# factors Â_l = π, 2π/3, π/4 (Ramamoorthi & Hanrahan 2001, Eqs. 7-8).
C0 = math.pi * (0.5 / math.sqrt(math.pi))  # Â_0 · 1/(2√π)       = π · 0.282095
C1 = (2.0 * math.pi / 3.0) * math.sqrt(3.0 / (4.0 * math.pi))  # Â_1 · √(3/4π) = 2π/3 · 0.488603
C2 = (math.pi / 4.0) * 0.5 * math.sqrt(15.0 / math.pi)  # Â_2 · ½√(15/π)  = π/4 · 1.092548
C3 = (math.pi / 4.0) * 0.25 * math.sqrt(5.0 / math.pi)  # Â_2 · ¼√(5/π)   = π/4 · 0.315392
C4 = (math.pi / 4.0) * 0.25 * math.sqrt(15.0 / math.pi)  # Â_2 · ¼√(15/π)  = π/4 · 0.546274
SH_CONSTANTS = (C0, C1, C2, C3, C4)


def irradiance_basis(normals: np.ndarray) -> np.ndarray:
    """H_b(n) for b = 1..9: normals (..., 3) → (..., 9)."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    one = np.ones_like(x)
    return np.stack(
        [
            C0 * one,  # H_1 = Â_0 Y_00
            C1 * y,  # H_2 = Â_1 Y_1,-1
            C1 * z,  # H_3 = Â_1 Y_10
            C1 * x,  # H_4 = Â_1 Y_11
            C2 * x * y,  # H_5 = Â_2 Y_2,-2
            C2 * y * z,  # H_6 = Â_2 Y_2,-1
            C3 * (3.0 * z * z - 1.0),  # H_7 = Â_2 Y_20
            C2 * x * z,  # H_8 = Â_2 Y_21
            C4 * (x * x - y * y),  # H_9 = Â_2 Y_22
        ],
        axis=-1,
    )


def irradiance_basis_grad(normals: np.ndarray) -> np.ndarray:
    """∂H_b/∂n: normals (..., 3) → (..., 9, 3), row b = gradient of H_b."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    zero = np.zeros_like(x)
    rows = [
        (zero, zero, zero),  # ∇ C0
        (zero, C1 + zero, zero),  # ∇ C1 y
        (zero, zero, C1 + zero),  # ∇ C1 z
        (C1 + zero, zero, zero),  # ∇ C1 x
        (C2 * y, C2 * x, zero),  # ∇ C2 xy
        (zero, C2 * z, C2 * y),  # ∇ C2 yz
        (zero, zero, 6.0 * C3 * z),  # ∇ C3 (3z² − 1)
        (C2 * z, zero, C2 * x),  # ∇ C2 xz
        (2.0 * C4 * x, -2.0 * C4 * y, zero),  # ∇ C4 (x² − y²)
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def sh_shade_forward(albedo: np.ndarray, normals: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Shaded colours, MoFA Eq. (4).

    albedo: (B, V, 3), normals: (B, V, 3) unit, gamma: (B, 9, 3) → (B, V, 3), same dtype.
    """
    h = irradiance_basis(normals)  # (B, V, 9)
    irradiance = np.einsum("bvj,bjk->bvk", h, gamma)  # s_i = Σ_b γ_b H_b(n_i): (B, V, 3)
    return (albedo * irradiance).astype(albedo.dtype)


def sh_shade_backward(albedo, normals, gamma, grad_out, needs=(True, True, True)):
    """Vector-Jacobian products of :func:`sh_shade_forward` for g = ∂L/∂c (B, V, 3).

    ∂L/∂r_i = g_i ⊙ s_i;  ∂L/∂γ_b = Σ_i (g_i ⊙ r_i) H_b(n_i);
    ∂L/∂n_i = Σ_k g_ik r_ik Σ_b γ_bk ∇H_b(n_i).
    Returns (grad_albedo, grad_normals, grad_gamma), None where ``needs`` is False.
    """
    h = irradiance_basis(normals)  # (B, V, 9)
    a = grad_out * albedo  # g ⊙ r: (B, V, 3)
    grad_albedo = grad_normals = grad_gamma = None
    if needs[0]:
        grad_albedo = (grad_out * np.einsum("bvj,bjk->bvk", h, gamma)).astype(albedo.dtype)
    if needs[1]:
        dh = irradiance_basis_grad(normals)  # (B, V, 9, 3)
        coef = np.einsum("bvk,bjk->bvj", a, gamma)  # Σ_k a_k γ_bk: (B, V, 9)
        grad_normals = np.einsum("bvj,bvjd->bvd", coef, dh).astype(normals.dtype)
    if needs[2]:
        grad_gamma = np.einsum("bvj,bvk->bjk", h, a).astype(gamma.dtype)  # (B, 9, 3)
    return grad_albedo, grad_normals, grad_gamma
