"""Tests for facelab.lighting: SH basis, irradiance, MoFA Eq. (4) shading, lighting helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facelab.lighting import (
    SH_CONV,
    ambient_sh,
    random_sh,
    sh_basis,
    sh_from_direction,
    sh_irradiance_basis,
)
from facelab.shading.torch_ref import sh_shade_torch as sh_shade

DTYPES = [torch.float32, torch.float64]
N_SPHERE = 40_000


def fibonacci_sphere(n: int = N_SPHERE) -> torch.Tensor:
    """n nearly uniform unit directions (float64); each carries solid angle 4π/n."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    r = torch.sqrt(1.0 - z * z)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=1)


def project(radiance: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """SH coefficients of a radiance sampled at dirs: (N, C) -> (9, C), ∫ L Y_k dΩ."""
    return sh_basis(dirs).T @ radiance * (4.0 * math.pi / dirs.shape[0])


# ------------------------------------------------------------------------------ sh_basis
def test_sh_basis_orthonormal_on_sphere():
    dirs = fibonacci_sphere()
    y = sh_basis(dirs)  # (N, 9)
    gram = y.T @ y * (4.0 * math.pi / dirs.shape[0])
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sh_basis_known_values(dtype):
    c0, c1, c2, c3, c4 = 0.282095, 0.488603, 1.092548, 0.315392, 0.546274
    axes = torch.eye(3, dtype=dtype)
    y = sh_basis(axes)
    assert y.shape == (3, 9) and y.dtype == dtype
    expected = torch.tensor([
        [c0, 0, 0, c1, 0, 0, -c3, 0, c4],  # +x
        [c0, c1, 0, 0, 0, 0, -c3, 0, -c4],  # +y
        [c0, 0, c1, 0, 0, 0, 2 * c3, 0, 0],  # +z
    ], dtype=dtype)
    torch.testing.assert_close(y, expected, atol=2e-6, rtol=0)
    d = torch.ones(3, dtype=dtype) / math.sqrt(3.0)
    torch.testing.assert_close(
        sh_basis(d),
        torch.tensor([c0, c1 * d[0], c1 * d[0], c1 * d[0], c2 / 3, c2 / 3, 0, c2 / 3, 0],
                     dtype=dtype), atol=2e-6, rtol=0)


def test_sh_basis_batch_shapes_and_numpy():
    n = torch.nn.functional.normalize(torch.randn(2, 5, 7, 3), dim=-1)
    assert sh_basis(n).shape == (2, 5, 7, 9)
    out = sh_basis(n.numpy())
    assert isinstance(out, np.ndarray) and out.shape == (2, 5, 7, 9)
    assert sh_irradiance_basis(n).shape == (2, 5, 7, 9)
    torch.testing.assert_close(sh_irradiance_basis(n),
                               sh_basis(n) * torch.tensor(SH_CONV, dtype=torch.float32))


def test_sh_basis_bad_input():
    with pytest.raises(ValueError, match=r"normals: expected \(\.\.\., 3\), got \(4, 2\)"):
        sh_basis(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="normals: expected float32 or float64"):
        sh_basis(torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="normals: expected finite"):
        sh_basis(torch.tensor([[0.0, float("nan"), 1.0]]))


# ---------------------------------------------------------------------------- irradiance
def test_constant_environment_irradiance_is_pi_c():
    dirs = fibonacci_sphere()
    c = torch.tensor([0.8, 0.5, 0.2], dtype=torch.float64)
    gamma = project(c.expand(dirs.shape[0], 3), dirs)  # (9, 3)
    torch.testing.assert_close(gamma[0], 2.0 * math.sqrt(math.pi) * c, atol=1e-6, rtol=0)
    normals = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=-1)
    irradiance = sh_irradiance_basis(normals) @ gamma  # (50, 3)
    torch.testing.assert_close(irradiance, (math.pi * c).expand(50, 3), atol=1e-5, rtol=0)


def test_band_limited_environment_matches_numerical_integral():
    # For radiance made of bands 0-2 the 9-term irradiance is exact (Funk-Hecke), so it must
    # equal the brute-force integral of L(ω) max(0, n·ω) over the sphere.
    dirs = fibonacci_sphere()
    gen = torch.Generator().manual_seed(0)
    gamma = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    radiance = sh_basis(dirs) @ gamma  # (N, 3)
    normals = torch.nn.functional.normalize(
        torch.randn(20, 3, generator=gen, dtype=torch.float64), dim=-1)
    cosine = (normals @ dirs.T).clamp(min=0.0)  # (20, N)
    numeric = cosine @ radiance * (4.0 * math.pi / dirs.shape[0])
    torch.testing.assert_close(sh_irradiance_basis(normals) @ gamma, numeric,
                               atol=2e-3, rtol=0)
    # Analytic special case: L = 1 + ω_z gives E(n) = π + (2π/3) n_z.
    gamma_lin = project(1.0 + dirs[:, 2:], dirs)
    e = sh_irradiance_basis(normals) @ gamma_lin
    torch.testing.assert_close(e[:, 0], math.pi + 2.0 * math.pi / 3.0 * normals[:, 2],
                               atol=1e-4, rtol=0)


# ------------------------------------------------------------------------------- sh_shade
def random_inputs(dtype, b=2, v=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    albedo = torch.rand(b, v, 3, generator=gen, dtype=dtype)
    normals = torch.randn(b, v, 3, generator=gen, dtype=dtype)
    normals = torch.nn.functional.normalize(normals, dim=-1)
    gamma = 0.3 * torch.randn(b, 9, 3, generator=gen, dtype=dtype)
    return albedo, normals, gamma


@pytest.mark.parametrize("dtype", DTYPES)
def test_sh_shade_values(dtype):
    albedo, normals, gamma = random_inputs(dtype)
    out = sh_shade(albedo, normals, gamma)
    assert out.shape == (2, 7, 3) and out.dtype == dtype
    expected = torch.stack([
        albedo[b] * (sh_irradiance_basis(normals[b]) @ gamma[b]) for b in range(2)])
    torch.testing.assert_close(out, expected)
    # Loop form of MoFA Eq. (4) for one vertex: C = r ⊙ Σ_b γ_b H_b(n).
    h = sh_irradiance_basis(normals[1, 3])
    loop = sum(gamma[1, k] * h[k] for k in range(9)) * albedo[1, 3]
    torch.testing.assert_close(out[1, 3], loop)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sh_shade_ambient_is_scaled_albedo(dtype):
    albedo, normals, _ = random_inputs(dtype)
    gamma = ambient_sh(0.7, dtype=dtype).expand(2, 9, 3)
    torch.testing.assert_close(sh_shade(albedo, normals, gamma), 0.7 * albedo)
    g = ambient_sh(0.7)
    assert g.shape == (9, 3) and g.dtype == torch.float32
    assert torch.count_nonzero(g[1:]) == 0
    torch.testing.assert_close(g[0], torch.full((3,), 0.7 / (math.pi * 0.2820948)))


def test_sh_shade_gradcheck():
    albedo, normals, gamma = random_inputs(torch.float64, b=2, v=4, seed=1)
    for t in (albedo, normals, gamma):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(sh_shade, (albedo, normals, gamma))


def test_sh_shade_numpy():
    albedo, normals, gamma = random_inputs(torch.float64)
    out = sh_shade(albedo.numpy(), normals.numpy(), gamma.numpy())
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, sh_shade(albedo, normals, gamma).numpy())


def test_sh_shade_bad_input():
    albedo, normals, gamma = random_inputs(torch.float32)
    with pytest.raises(ValueError, match=r"gamma: expected \(B, 9, 3\), got \(2, 27\)"):
        sh_shade(albedo, normals, gamma.reshape(2, 27))
    with pytest.raises(ValueError, match=r"normals: expected \(B, V, 3\) with B=2"):
        sh_shade(albedo, normals[:1], gamma)
    with pytest.raises(ValueError, match=r"normals: expected \(B, V, 3\) with V=7"):
        sh_shade(albedo, normals[:, :3], gamma)
    with pytest.raises(TypeError, match=r"gamma: expected dtype torch\.float32"):
        sh_shade(albedo, normals, gamma.double())
    with pytest.raises(TypeError, match="albedo: expected float32 or float64"):
        sh_shade(albedo.long(), normals, gamma)
    bad = gamma.clone()
    bad[0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="gamma: expected finite"):
        sh_shade(albedo, normals, bad)
    with pytest.raises(ValueError, match="intensity: expected a finite number >= 0"):
        ambient_sh(-1.0)


# --------------------------------------------------------------------- lighting helpers
def clamped_cosine_9(t: torch.Tensor) -> torch.Tensor:
    """Irradiance of a unit delta light in 9-term SH at cos θ = t (addition theorem)."""
    return 0.25 + t / 2 + (5.0 / 32.0) * (3 * t * t - 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sh_from_direction(dtype):
    d = torch.tensor([[0.0, 0.0, 2.0], [1.0, -1.0, 0.5]], dtype=dtype)
    gamma = sh_from_direction(d, intensity=0.8, ambient=0.1)
    assert gamma.shape == (2, 9, 3) and gamma.dtype == dtype
    normals = torch.nn.functional.normalize(torch.randn(2, 30, 3, dtype=dtype), dim=-1)
    shaded = sh_shade(torch.ones(2, 30, 3, dtype=dtype), normals, gamma)
    t = (normals * torch.nn.functional.normalize(d, dim=-1)[:, None]).sum(-1)  # (2, 30)
    expected = (0.1 + 0.8 * clamped_cosine_9(t))[..., None].expand(2, 30, 3)
    torch.testing.assert_close(shaded, expected)
    # Brightest facing the light, within 0.094 of the exact Lambertian max(0, n·d).
    assert (shaded[..., 0] - 0.1 - 0.8 * t.clamp(min=0)).abs().max() <= 0.8 * 0.0938
    single = sh_from_direction(torch.tensor([0.0, 0.0, 1.0], dtype=dtype))
    assert single.shape == (1, 9, 3)
    assert isinstance(sh_from_direction(np.array([0.0, 1.0, 0.0])), np.ndarray)


def test_sh_from_direction_gradcheck_and_bad_input():
    d = torch.tensor([[0.3, -0.2, 0.9]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sh_from_direction(x, 0.7, 0.2), (d,))
    with pytest.raises(ValueError, match="direction: expected non-zero"):
        sh_from_direction(torch.zeros(3))
    with pytest.raises(ValueError, match=r"direction: expected \(B, 3\), got \(1, 2\)"):
        sh_from_direction(torch.zeros(2))
    with pytest.raises(ValueError, match="ambient: expected a finite number >= 0"):
        sh_from_direction(torch.ones(3), ambient=float("nan"))
    with pytest.raises(TypeError, match="intensity: expected a number"):
        sh_from_direction(torch.ones(3), intensity="bright")


def test_random_sh_bounds_and_reproducibility():
    gamma = random_sh(64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert gamma.shape == (64, 9, 3) and gamma.dtype == torch.float64
    again = random_sh(64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(gamma, again)
    dirs = fibonacci_sphere(5000)
    irradiance = torch.einsum("nk,bkc->bnc", sh_irradiance_basis(dirs), gamma)
    assert float(irradiance.min()) >= 0.0  # everywhere on the sphere
    assert float(irradiance.max()) < 1.37
    # Band 0 dominates; the key light comes from the front (+z) hemisphere.
    assert (gamma[:, 0].abs() > gamma[:, 1:].abs().amax(dim=1)).all()
    front = sh_irradiance_basis(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)) @ gamma
    back = sh_irradiance_basis(torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)) @ gamma
    assert (front > back).all()


def test_random_sh_front_flips_for_camera_space():
    gamma = random_sh(16, generator=torch.Generator().manual_seed(4), front=(0.0, 0.0, -1.0))
    assert gamma.dtype == torch.float32
    toward_camera = sh_irradiance_basis(torch.tensor([0.0, 0.0, -1.0])) @ gamma
    away = sh_irradiance_basis(torch.tensor([0.0, 0.0, 1.0])) @ gamma
    assert (toward_camera > away).all()
    with pytest.raises(ValueError, match="batch: expected an int >= 1"):
        random_sh(0)
    with pytest.raises(ValueError, match="front: expected a non-zero direction"):
        random_sh(2, front=(0.0, 0.0, 0.0))
