"""Compiled SH shading, MoFA Eq. (4): reference vs lighting.py, Numba and emulated CUDA vs the
reference (forward and backward, float32/float64), gradcheck, bad input, bounds checking."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from facelab import kernel_sources
from facelab.lighting import sh_irradiance_basis
from facelab.shading import ShShade, cpu, cuda, reference, sh_shade
from facelab.shading.torch_ref import sh_shade_torch as torch_sh_shade

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=2e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def make_inputs(batch, n_vert, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    albedo = torch.rand(batch, n_vert, 3, generator=g, dtype=torch.float64)
    normals = torch.nn.functional.normalize(
        torch.randn(batch, n_vert, 3, generator=g, dtype=torch.float64), dim=-1)
    gamma = torch.randn(batch, 9, 3, generator=g, dtype=torch.float64)
    grad_out = torch.randn(batch, n_vert, 3, generator=g, dtype=torch.float64)
    return [t.to(dtype) for t in (albedo, normals, gamma, grad_out)]


def emulated_forward(albedo, normals, gamma):
    return cuda.sh_shade_forward(albedo, normals, gamma, emulate=True)


def emulated_backward(albedo, normals, gamma, grad_out, needs=(True, True, True)):
    return cuda.sh_shade_backward(albedo, normals, gamma, grad_out, needs, emulate=True)


IMPLS = {
    "numba": (cpu.sh_shade_forward, cpu.sh_shade_backward),
    "cuda-host": (emulated_forward, emulated_backward),
}


# ------------------------------------------------------------------------ the reference
@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_basis_is_lightings_irradiance_basis(dtype):
    _, normals, _, _ = make_inputs(2, 50, dtype)
    ours = reference.irradiance_basis(normals.numpy())
    theirs = sh_irradiance_basis(normals).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_matches_lighting_sh_shade(dtype):
    albedo, normals, gamma, _ = make_inputs(3, 200, dtype)
    ours = reference.sh_shade_forward(albedo.numpy(), normals.numpy(), gamma.numpy())
    theirs = torch_sh_shade(albedo, normals, gamma).numpy()
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_reference_golden_values():
    """Normal +z: H = [C0, 0, C1, 0, 0, 0, 2 C3, 0, 0] with C_l folding in π, 2π/3, π/4."""
    albedo = np.array([[[0.5, 0.25, 1.0]]])
    normals = np.array([[[0.0, 0.0, 1.0]]])
    gamma = np.zeros((1, 9, 3))
    gamma[0, 0] = [1.0, 2.0, 0.0]  # ambient
    gamma[0, 2] = [0.0, 0.0, 1.0]  # z (band 1)
    gamma[0, 6] = [1.0, 0.0, 0.0]  # 3z² − 1 (band 2)
    c0 = math.pi * 0.5 / math.sqrt(math.pi)
    c1 = 2 * math.pi / 3 * math.sqrt(3 / (4 * math.pi))
    c3 = math.pi / 4 * 0.25 * math.sqrt(5 / math.pi)
    expected = [0.5 * (c0 + 2 * c3), 0.25 * 2 * c0, 1.0 * c1]
    out = reference.sh_shade_forward(albedo, normals, gamma)
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(expected[1], 0.5 * math.pi * 0.282095, rtol=1e-5)  # rounded constant


def test_reference_backward_matches_finite_differences():
    albedo, normals, gamma, grad_out = (t.numpy() for t in make_inputs(2, 7, torch.float64))
    analytic = reference.sh_shade_backward(albedo, normals, gamma, grad_out)
    for k, x in enumerate((albedo, normals, gamma)):
        numeric = np.zeros_like(x)
        flat, num = x.reshape(-1), numeric.reshape(-1)
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + 1e-6
            plus = (reference.sh_shade_forward(albedo, normals, gamma) * grad_out).sum()
            flat[j] = keep - 1e-6
            minus = (reference.sh_shade_forward(albedo, normals, gamma) * grad_out).sum()
            flat[j] = keep
            num[j] = (plus - minus) / 2e-6
        np.testing.assert_allclose(analytic[k], numeric, rtol=1e-6, atol=1e-8)


# -------------------------------------------------------- compiled twins vs the reference
@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 2500)])  # 2500 > CHUNK: several partial sums
def test_compiled_matches_reference(impl, dtype, shape):
    forward, backward = IMPLS[impl]
    albedo, normals, gamma, grad_out = make_inputs(*shape, dtype, seed=shape[1])
    arrays = [t.numpy() for t in (albedo, normals, gamma, grad_out)]
    out = forward(albedo, normals, gamma)
    assert out.shape == albedo.shape and out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), reference.sh_shade_forward(*arrays[:3]), **TOL[dtype])
    ours = backward(albedo, normals, gamma, grad_out, (True, True, True))
    ref = reference.sh_shade_backward(*arrays)
    # the lighting gradient sums V terms: scale the float32 tolerance with sqrt(V)
    scale = [1.0, 1.0, math.sqrt(shape[1])]
    for got, want, s in zip(ours, ref, scale, strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        tol = TOL[dtype]
        np.testing.assert_allclose(got.numpy(), want, rtol=tol["rtol"] * s, atol=tol["atol"] * s)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False),
                                   (False, False, True), (False, False, False)])
def test_compiled_backward_computes_only_what_is_needed(impl, needs):
    _, backward = IMPLS[impl]
    albedo, normals, gamma, grad_out = make_inputs(2, 30, torch.float64)
    ours = backward(albedo, normals, gamma, grad_out, needs)
    ref = reference.sh_shade_backward(*(t.numpy() for t in (albedo, normals, gamma, grad_out)))
    for got, want, need in zip(ours, ref, needs, strict=True):
        if need:
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
        else:
            assert got is None


def test_cuda_host_partials_do_not_depend_on_the_grid():
    """Several blocks (V > BLOCK · VERTS_PER_THREAD) give the same ∂L/∂γ as one."""
    albedo, normals, gamma, grad_out = make_inputs(2, cuda.BLOCK * cuda.VERTS_PER_THREAD * 3 + 5,
                                                   torch.float64)
    _, _, gg = emulated_backward(albedo, normals, gamma, grad_out, (False, False, True))
    ref = reference.sh_shade_backward(*(t.numpy() for t in (albedo, normals, gamma, grad_out)))
    np.testing.assert_allclose(gg.numpy(), ref[2], rtol=1e-10)


def test_plain_python_kernels_run_and_match_compiled():
    """umap-style: the undecorated kernels run as plain Python (debuggable)."""
    albedo, normals, gamma, grad_out = (t.numpy() for t in make_inputs(2, 5, torch.float64))
    out = np.empty_like(albedo)
    cpu._forward(albedo, normals, gamma, out)
    np.testing.assert_allclose(out, reference.sh_shade_forward(albedo, normals, gamma),
                               rtol=1e-12)
    ga, gn, part = np.empty_like(albedo), np.empty_like(albedo), np.zeros((2, 1, 9, 3))
    cpu._backward(albedo, normals, gamma, grad_out, ga, gn, part, True, True, True)
    ref = reference.sh_shade_backward(albedo, normals, gamma, grad_out)
    for got, want in zip((ga, gn, part.sum(1)), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- the public function
@pytest.mark.parametrize("dtype", DTYPES)
def test_sh_shade_smoke_shapes_and_lighting_agreement(dtype):
    albedo, normals, gamma, _ = make_inputs(4, 333, dtype)
    out = sh_shade(albedo, normals, gamma)
    assert out.shape == (4, 333, 3) and out.dtype == dtype
    torch.testing.assert_close(out, torch_sh_shade(albedo, normals, gamma), rtol=0, atol=1e-6)


def test_sh_shade_numpy_in_numpy_out():
    albedo, normals, gamma, _ = make_inputs(1, 5, torch.float32)
    out = sh_shade(albedo.numpy(), normals.numpy(), gamma.numpy())
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, sh_shade(albedo, normals, gamma).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_sh_shade_autograd_matches_torch_autograd(dtype):
    inputs = [t.requires_grad_() for t in make_inputs(2, 100, dtype)[:3]]
    grad_out = make_inputs(2, 100, dtype, seed=5)[3]
    ours = torch.autograd.grad((sh_shade(*inputs) * grad_out).sum(), inputs)
    theirs = torch.autograd.grad((torch_sh_shade(*inputs) * grad_out).sum(), inputs)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, **(dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32
                                            else dict(rtol=1e-10, atol=1e-10)))


def test_sh_shade_gradcheck():
    albedo, normals, gamma, _ = make_inputs(2, 4, torch.float64)
    inputs = [t.requires_grad_() for t in (albedo, normals, gamma)]
    assert torch.autograd.gradcheck(sh_shade, inputs)


def test_sh_shade_gradient_only_for_inputs_that_need_it():
    albedo, normals, gamma, _ = make_inputs(1, 10, torch.float64)
    gamma.requires_grad_()
    sh_shade(albedo, normals, gamma).sum().backward()
    assert gamma.grad is not None and albedo.grad is None and normals.grad is None


def test_sh_shade_empty_mesh():
    albedo, normals, gamma, _ = make_inputs(2, 0, torch.float32)
    gamma.requires_grad_()
    out = ShShade.apply(albedo, normals, gamma)
    assert out.shape == (2, 0, 3)
    out.sum().backward()
    torch.testing.assert_close(gamma.grad, torch.zeros_like(gamma))


def test_sh_shade_bad_input():
    albedo, normals, gamma, _ = make_inputs(2, 10, torch.float32)
    with pytest.raises(ValueError, match=r"normals: expected \(B, V, 3\)"):
        sh_shade(albedo, normals[:, :5], gamma)
    with pytest.raises(ValueError, match=r"gamma: expected \(B, 9, 3\)"):
        sh_shade(albedo, normals, gamma[:, :4])
    with pytest.raises(ValueError, match=r"gamma: expected \(B, 9, 3\) with B=2"):
        sh_shade(albedo, normals, gamma[:1])
    with pytest.raises(TypeError, match="albedo: expected float32 or float64"):
        sh_shade(albedo.to(torch.int32), normals, gamma)
    with pytest.raises(TypeError, match=r"normals: expected dtype torch\.float32"):
        sh_shade(albedo, normals.double(), gamma)
    bad = normals.clone()
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="normals: expected finite values"):
        sh_shade(albedo, bad, gamma)
    with pytest.raises(TypeError, match=r"gamma: expected a torch\.Tensor"):
        sh_shade(albedo, normals, gamma.tolist())


# ------------------------------------------------------------------------- CUDA sources
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_sh_shade_cu_compiles_with_nvcc():
    text = kernel_sources.nvcc_compile("sh_shade", arch="sm_90").read_text()
    for kernel in ("sh_shade_forward_f32", "sh_shade_forward_f64", "sh_shade_backward_f32",
                   "sh_shade_backward_f64"):
        assert f".entry {kernel}" in text


@pytest.mark.cuda
@pytest.mark.skipif(not kernel_sources.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
def test_sh_shade_on_gpu_matches_cpu(dtype):
    inputs = make_inputs(3, 5000, dtype)
    cpu_in = [t.clone().requires_grad_() for t in inputs[:3]]
    gpu_in = [t.cuda().requires_grad_() for t in inputs[:3]]
    out_cpu, out_gpu = sh_shade(*cpu_in), sh_shade(*gpu_in)
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, **TOL[dtype])
    (out_cpu * inputs[3]).sum().backward()
    (out_gpu * inputs[3].cuda()).sum().backward()
    for a, b in zip(gpu_in, cpu_in, strict=True):
        torch.testing.assert_close(a.grad.cpu(), b.grad, rtol=1e-4, atol=1e-3)


# -------------------------------------------------------------------- bounds checking
@pytest.mark.slow
def test_numba_kernels_in_bounds(tmp_path):
    """Run the Numba kernels once with NUMBA_BOUNDSCHECK=1 (fresh cache dir).

    The kernels are recompiled from the same plain-Python source without ``parallel=True``
    (prange is range there; the indexing is identical) — a third of the compile time — and
    replace both compiled variants.
    """
    script = textwrap.dedent("""
        import numba
        import torch
        from facelab.shading import cpu
        for name in ("_forward", "_backward"):
            checked = numba.njit(getattr(cpu, name))
            setattr(cpu, name + "_par", checked)
            setattr(cpu, name + "_ser", checked)
        g = torch.Generator().manual_seed(0)
        for n_img, n_vert in ((2, 1), (1, cpu.CHUNK + 3)):
            a, n, go = (torch.rand(n_img, n_vert, 3, generator=g, dtype=torch.float64)
                        for _ in range(3))
            gamma = torch.rand(n_img, 9, 3, generator=g, dtype=torch.float64)
            cpu.sh_shade_forward(a, n, gamma)
            cpu.sh_shade_backward(a, n, gamma, go, (True, True, True))
        print("ok")
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_sh_shade_refuses_normals_far_from_unit():
    """A huge non-unit normal would overflow the quadratic basis into NaN: refused instead."""
    g = torch.Generator().manual_seed(0)
    albedo = torch.rand(1, 4, 3, generator=g)
    normals = torch.nn.functional.normalize(torch.randn(1, 4, 3, generator=g), dim=-1)
    gamma = torch.randn(1, 9, 3, generator=g)
    bad = normals.clone()
    bad[0, 1] = torch.tensor([1e13, 0.0, 0.0])
    with pytest.raises(ValueError, match="normals: expected unit normals"):
        sh_shade(albedo, bad, gamma)
    assert torch.isfinite(sh_shade(albedo, normals * 1.5, gamma)).all()  # mild length is fine
