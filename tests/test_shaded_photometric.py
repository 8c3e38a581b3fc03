"""Shading + photometric loss fused, MoFA Eqs. (4) + (8): the reference (chain of the two ops'
references, finite differences), Numba and emulated CUDA vs the reference forward and backward
(float32/float64, serial and parallel, borders, off-screen, zero visible), the autograd op vs
the unfused chain, gradcheck, edge cases (empty mesh, NaN/Inf), bad input, nvcc, bounds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from facelab import kernel_sources
from facelab.losses import photometric_loss, shaded_photometric_loss
from facelab.shaded_photometric import cpu, cuda, reference, shaded_photometric_per_image
from facelab.shading import sh_shade
from facelab.vertex_losses import photometric_per_image

DTYPES = [torch.float32, torch.float64]
EPS = 1e-6
H, W = 12, 17


def make_inputs(batch, n_vert, dtype, seed=0, height=H, width=W, margin=2.0):
    """image, positions (some outside), albedo, unit normals, gamma, 0/1 visibility, grad."""
    g = torch.Generator().manual_seed(seed)
    f64 = dict(generator=g, dtype=torch.float64)
    image = torch.rand(batch, height, width, 3, **f64)
    span = torch.tensor([width + 2 * margin, height + 2 * margin], dtype=torch.float64)
    positions = -margin + torch.rand(batch, n_vert, 2, **f64) * span
    albedo = 0.2 + 0.6 * torch.rand(batch, n_vert, 3, **f64)
    normals = torch.nn.functional.normalize(torch.randn(batch, n_vert, 3, **f64), dim=-1)
    gamma = 0.3 * torch.randn(batch, 9, 3, **f64)
    gamma[:, 0] += 0.8
    visibility = (torch.rand(batch, n_vert, generator=g) > 0.25).to(torch.float64)
    grad_loss = torch.randn(batch, **f64)
    return [t.to(dtype) for t in (image, positions, albedo, normals, gamma, visibility,
                                  grad_loss)]


def emulated_forward(*args):
    return cuda.shaded_photometric_forward(*args, emulate=True)


def emulated_backward(*args):
    return cuda.shaded_photometric_backward(*args, emulate=True)


IMPLS = {
    "numba": (cpu.shaded_photometric_forward, cpu.shaded_photometric_backward),
    "cuda-host": (emulated_forward, emulated_backward),
}


def tol(dtype, scale=1.0):
    if dtype == torch.float32:
        return dict(rtol=2e-5 * scale, atol=2e-6 * scale)
    return dict(rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------------ the reference
def test_reference_is_the_chain_of_shading_and_photometric_loss():
    image, positions, albedo, normals, gamma, vis, _ = make_inputs(2, 40, torch.float64)
    loss = photometric_per_image(image, positions, sh_shade(albedo, normals, gamma), vis)
    ref, count = reference.shaded_photometric_forward(
        *(t.numpy() for t in (image, positions, albedo, normals, gamma, vis)), EPS)
    np.testing.assert_allclose(ref, loss.numpy(), rtol=1e-12)
    assert count.tolist() == (vis * ((positions >= 0) & (positions < torch.tensor([W, H],
                              dtype=torch.float64))).all(-1)).sum(1).tolist()


def test_reference_backward_matches_finite_differences():
    image, positions, albedo, normals, gamma, vis, grad_loss = (
        t.numpy() for t in make_inputs(2, 6, torch.float64, seed=3, margin=-1.0))
    positions = np.floor(positions) + 0.5 + 0.2 + 0.6 * (positions % 1)  # off grid lines
    inputs = [positions, albedo, normals, gamma]
    _, count = reference.shaded_photometric_forward(image, *inputs, vis, EPS)
    analytic = reference.shaded_photometric_backward(image, *inputs, vis, EPS, count, grad_loss)

    def objective():
        loss, _ = reference.shaded_photometric_forward(image, *inputs, vis, EPS)
        return (loss * grad_loss).sum()

    for k, x in enumerate(inputs):
        numeric = np.zeros_like(x)
        flat, num = x.reshape(-1), numeric.reshape(-1)
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + 1e-7
            plus = objective()
            flat[j] = keep - 1e-7
            minus = objective()
            flat[j] = keep
            num[j] = (plus - minus) / 2e-7
        np.testing.assert_allclose(analytic[k], numeric, rtol=1e-5, atol=1e-8)


# -------------------------------------------------------- compiled twins vs the reference
def _check_against_reference(impl, inputs, grad_loss, dtype, needs=(True,) * 4):
    forward, backward = IMPLS[impl]
    arrays = [t.numpy() for t in inputs]
    loss, count = forward(*inputs, EPS)
    ref_loss, ref_count = reference.shaded_photometric_forward(*arrays, EPS)
    assert loss.shape == (inputs[0].shape[0],) and loss.dtype == dtype
    np.testing.assert_array_equal(count.numpy(), ref_count)
    np.testing.assert_allclose(loss.numpy(), ref_loss, **tol(dtype))
    ours = backward(*inputs, EPS, count, grad_loss, needs)
    ref = reference.shaded_photometric_backward(*arrays, EPS, ref_count, grad_loss.numpy(),
                                                needs)
    for got, want, need in zip(ours, ref, needs, strict=True):
        if not need:
            assert got is None
            continue
        assert got.dtype == dtype and got.shape == want.shape
        assert torch.isfinite(got).all()
        np.testing.assert_allclose(got.numpy(), want, **tol(dtype, scale=10))
    return ours


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1400)])  # serial and parallel variants
def test_compiled_matches_reference_random(impl, dtype, shape, monkeypatch):
    monkeypatch.setattr(cpu, "PARALLEL_MIN", 4 * cpu.CHUNK)  # (3, 1400): the parallel variant
    *inputs, grad_loss = make_inputs(*shape, dtype, seed=shape[1])
    if shape[0] == 3:
        inputs[5][1] = 0  # an image without visible vertices
    grads = _check_against_reference(impl, inputs, grad_loss, dtype)
    if shape[0] == 3:
        for g in grads:
            assert float(g[1].abs().max()) == 0


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("needs", [(True, False, False, False), (False, True, False, False),
                                   (False, False, True, False), (False, False, False, True),
                                   (False, True, True, True)])
def test_compiled_backward_computes_only_what_is_needed(impl, needs):
    *inputs, grad_loss = make_inputs(2, 40, torch.float64)
    _check_against_reference(impl, inputs, grad_loss, torch.float64, needs)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_all_vertices_off_screen(impl, dtype):
    """Every vertex outside [0, W) × [0, H): loss 0, zero (finite) gradients, count 0."""
    forward, backward = IMPLS[impl]
    image, positions, albedo, normals, gamma, vis, grad_loss = make_inputs(2, 30, dtype)
    positions = positions + torch.tensor([W + 5.0, -H - 5.0], dtype=dtype)
    loss, count = forward(image, positions, albedo, normals, gamma, vis, EPS)
    assert loss.tolist() == [0.0, 0.0] and count.tolist() == [0.0, 0.0]
    for g in backward(image, positions, albedo, normals, gamma, vis, EPS, count, grad_loss,
                      (True,) * 4):
        assert torch.isfinite(g).all() and float(g.abs().max()) == 0


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_compiled_empty_mesh(impl):
    forward, backward = IMPLS[impl]
    image, positions, albedo, normals, gamma, vis, grad_loss = make_inputs(2, 0, torch.float64)
    loss, count = forward(image, positions, albedo, normals, gamma, vis, EPS)
    assert loss.tolist() == [0.0, 0.0]
    grads = backward(image, positions, albedo, normals, gamma, vis, EPS, count, grad_loss,
                     (True,) * 4)
    assert [tuple(g.shape) for g in grads] == [(2, 0, 2), (2, 0, 3), (2, 0, 3), (2, 9, 3)]
    assert float(grads[3].abs().max()) == 0


def test_plain_python_kernel_runs_and_matches_reference():
    """umap-style: the undecorated forward kernel runs as plain Python (debuggable)."""
    image, positions, albedo, normals, gamma, vis, _ = (t.numpy() for t in make_inputs(
        2, 9, torch.float64))
    partial = np.zeros((2, 1, 3))
    flat = [a.reshape(2, -1) for a in (image, positions, albedo, normals)]
    cpu._forward(*flat, cpu._gamma_c(gamma), vis, EPS, H, W, partial)
    loss, count = reference.shaded_photometric_forward(image, positions, albedo, normals, gamma,
                                                       vis, EPS)
    np.testing.assert_allclose(partial[:, 0, 1], count)
    np.testing.assert_allclose(partial[:, 0, 0] / np.maximum(count, 1), loss, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 300), (2, 5000)])  # serial and parallel variants
def test_compiled_bool_weights_equal_float_weights(dtype, shape, monkeypatch):
    """Bool visibility goes to the CPU kernels as is (no float copy): the same loss, count
    and gradients, bit for bit, as its 0/1 float weights."""
    monkeypatch.setattr(cpu, "PARALLEL_MIN", 4 * cpu.CHUNK)
    *inputs, grad_loss = make_inputs(*shape, dtype, seed=5)
    as_bool = [*inputs[:5], inputs[5] > 0]
    for a, b in zip(cpu.shaded_photometric_forward(*inputs, EPS),
                    cpu.shaded_photometric_forward(*as_bool, EPS), strict=True):
        assert torch.equal(a, b)
    loss, count, state = cpu.shaded_photometric_forward_grad(*inputs, EPS)
    loss_b, count_b, state_b = cpu.shaded_photometric_forward_grad(*as_bool, EPS)
    assert torch.equal(loss, loss_b) and torch.equal(count, count_b)
    for a, b in zip(state, state_b, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(cpu.shaded_photometric_backward(*inputs, EPS, count, grad_loss),
                    cpu.shaded_photometric_backward(*as_bool, EPS, count, grad_loss),
                    strict=True):
        assert torch.equal(a, b)


def test_parallel_variant_equals_serial_bit_for_bit(monkeypatch):
    """Chunks write their own vertices and partial sums, reduced in chunk order: the parallel
    variant gives the serial variant's results exactly (independent of the thread count)."""
    *inputs, _ = make_inputs(3, 3000, torch.float32, seed=9)
    monkeypatch.setattr(cpu, "PARALLEL_MIN", 1 << 62)
    serial = cpu.shaded_photometric_forward_grad(*inputs, EPS)
    monkeypatch.setattr(cpu, "PARALLEL_MIN", 1)
    parallel = cpu.shaded_photometric_forward_grad(*inputs, EPS)
    for a, b in zip((*serial[:2], *serial[2]), (*parallel[:2], *parallel[2]), strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------- the autograd op and wrappers
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_equals_unfused_chain_values_and_gradients(dtype):
    image, positions, albedo, normals, gamma, vis, grad_loss = make_inputs(3, 2000, dtype)
    fused = [t.clone().requires_grad_() for t in (positions, albedo, normals, gamma)]
    chain = [t.clone().requires_grad_() for t in (positions, albedo, normals, gamma)]
    loss = shaded_photometric_per_image(image, *fused, vis.bool())
    want = photometric_per_image(image, chain[0], sh_shade(*chain[1:]), vis.bool())
    torch.testing.assert_close(loss, want, **tol(dtype))
    (loss * grad_loss).sum().backward()
    (want * grad_loss).sum().backward()
    for a, b in zip(fused, chain, strict=True):
        torch.testing.assert_close(a.grad, b.grad, **tol(dtype, scale=50))


@pytest.mark.parametrize("batch", [1, 3])
def test_forward_state_backward_equals_recomputed_backward(batch):
    """The autograd op's CPU backward scales gradients its forward pass computed; they match
    the recomputing backward, and a retained graph's second backward gives the same again."""
    image, positions, albedo, normals, gamma, vis, grad_loss = make_inputs(batch, 1500,
                                                                           torch.float64)
    leaves = [t.clone().requires_grad_() for t in (positions, albedo, normals, gamma)]
    loss = shaded_photometric_per_image(image, *leaves, vis)
    (loss * grad_loss).sum().backward(retain_graph=True)
    first = [t.grad.clone() for t in leaves]
    _, count = cpu.shaded_photometric_forward(image, positions, albedo, normals, gamma, vis, EPS)
    want = cpu.shaded_photometric_backward(image, positions, albedo, normals, gamma, vis, EPS,
                                           count, grad_loss)
    for got, w in zip(first, want, strict=True):
        torch.testing.assert_close(got, w, **tol(torch.float64))
    for t in leaves:
        t.grad = None
    (loss * grad_loss).sum().backward()
    for t, f in zip(leaves, first, strict=True):
        torch.testing.assert_close(t.grad, f, **tol(torch.float64))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reduction_inside_the_op_equals_reducing_the_chain(reduction):
    """shaded_photometric_loss reduces the batch inside the autograd op (no separate node):
    value and gradients (scaled state, and a retained graph's recomputed second backward)
    equal reducing the unfused chain's per-image losses."""
    image, positions, albedo, normals, gamma, vis, _ = make_inputs(3, 1500, torch.float64)
    fused = [t.clone().requires_grad_() for t in (positions, albedo, normals, gamma)]
    chain = [t.clone().requires_grad_() for t in (positions, albedo, normals, gamma)]
    loss = shaded_photometric_loss(image, *fused, vis.bool(), reduction=reduction)
    per = photometric_per_image(image, chain[0], sh_shade(*chain[1:]), vis.bool())
    want = per.sum() if reduction == "sum" else per.mean()
    assert loss.shape == ()
    torch.testing.assert_close(loss, want, **tol(torch.float64))
    (2.5 * loss).backward(retain_graph=True)
    (2.5 * want).backward()
    first = [t.grad.clone() for t in fused]
    for a, b in zip(fused, chain, strict=True):
        torch.testing.assert_close(a.grad, b.grad, **tol(torch.float64, scale=50))
    for t in fused:
        t.grad = None
    (2.5 * loss).backward()  # the state is used up: recomputed from the saved inputs
    for t, f in zip(fused, first, strict=True):
        torch.testing.assert_close(t.grad, f, **tol(torch.float64))


def test_second_differentiation_is_an_error():
    """First order only: with create_graph=True the gradients exist, and differentiating them
    again raises — no silent zero second derivative (torch's once_differentiable, used on
    that path only)."""
    image, positions, albedo, normals, gamma, vis, _ = make_inputs(1, 50, torch.float64)
    gamma.requires_grad_()
    loss = shaded_photometric_loss(image, positions, albedo, normals, gamma, vis)
    (g,) = torch.autograd.grad(loss, gamma, create_graph=True)
    want = cpu.shaded_photometric_forward_grad(image, positions, albedo, normals, gamma, vis,
                                               EPS)[2][3]
    torch.testing.assert_close(g, want)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        g.sum().backward()


def test_forward_grad_skips_what_is_not_needed():
    image, positions, albedo, normals, gamma, vis, _ = make_inputs(2, 30, torch.float32)
    loss, count, state = cpu.shaded_photometric_forward_grad(
        image, positions, albedo, normals, gamma, vis, EPS, (False, True, False, False))
    assert state[0] is None and state[2] is None and state[3] is None
    assert state[1].shape == albedo.shape
    ref_loss, ref_count = cpu.shaded_photometric_forward(image, positions, albedo, normals,
                                                         gamma, vis, EPS)
    assert torch.equal(count, ref_count)
    torch.testing.assert_close(loss, ref_loss, **tol(torch.float32))


def test_losses_wrapper_reductions_and_numpy():
    image, positions, albedo, normals, gamma, vis, _ = make_inputs(2, 50, torch.float32)
    per = shaded_photometric_loss(image, positions, albedo, normals, gamma, vis,
                                  reduction="none")
    assert per.shape == (2,)
    torch.testing.assert_close(shaded_photometric_loss(image, positions, albedo, normals, gamma,
                                                       vis), per.mean())
    torch.testing.assert_close(
        per, photometric_loss(image, positions, sh_shade(albedo, normals, gamma), vis,
                              reduction="none"), rtol=1e-6, atol=1e-7)
    out = shaded_photometric_per_image(*(t.numpy() for t in (image, positions, albedo, normals,
                                                             gamma, vis)))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, per.numpy(), rtol=1e-6)


def test_gradcheck():
    image, positions, albedo, normals, gamma, vis, _ = make_inputs(2, 5, torch.float64, seed=11,
                                                                   height=3, width=4,
                                                                   margin=-0.6)
    positions = torch.floor(positions) + 0.5 + 0.15 + 0.7 * (positions % 1)  # off grid lines
    vis[1, :2] = 0
    inputs = [t.requires_grad_() for t in (positions, albedo, normals, gamma)]
    assert torch.autograd.gradcheck(
        lambda p, a, n, g: shaded_photometric_per_image(image, p, a, n, g, vis, eps=1e-3),
        inputs)


def test_gradients_only_where_needed_and_image_is_a_constant():
    image, positions, albedo, normals, gamma, vis, _ = make_inputs(2, 20, torch.float32)
    image.requires_grad_()
    gamma.requires_grad_()
    shaded_photometric_per_image(image, positions, albedo, normals, gamma, vis).sum().backward()
    assert gamma.grad is not None and float(gamma.grad.abs().max()) > 0
    assert image.grad is None and positions.grad is None and albedo.grad is None


@pytest.mark.parametrize("name", ["image", "positions", "albedo", "normals", "gamma",
                                  "visibility"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("grad", [False, True])  # the forward kernel / the gradient kernel
def test_non_finite_input_is_named(name, value, grad):
    """On the CPU the compiled passes check finiteness as they read (kernels: positions,
    albedo, normals, visibility; the count pass or a compiled sum: image, γ) — named either
    way. The bad entry sits in the last of 1,300 vertices (second block, last chunk)."""
    inputs = dict(zip(("image", "positions", "albedo", "normals", "gamma", "visibility"),
                      make_inputs(2, 1300, torch.float32)[:6], strict=True))
    inputs[name] = inputs[name].clone()
    inputs[name].view(-1)[-1 if name != "image" else 3] = value
    if grad:
        inputs["albedo"].requires_grad_()
    with pytest.raises(ValueError, match=f"{name}: expected finite values"):
        shaded_photometric_per_image(*inputs.values())


@pytest.mark.parametrize("name", ["image", "positions", "albedo", "normals", "gamma",
                                  "visibility"])
def test_compiled_kernels_flag_non_finite_inputs_they_read(name):
    """The CPU entry points themselves (forward, forward_grad, backward) name a non-finite
    input: the kernels' flag (positions, albedo, normals, weights) and the count pass's
    (image, γ), not a separate pass in the validated wrapper."""
    image, positions, albedo, normals, gamma, vis, grad_loss = make_inputs(1, 300,
                                                                           torch.float64)
    inputs = dict(image=image, positions=positions, albedo=albedo, normals=normals,
                  gamma=gamma, visibility=vis)
    inputs[name] = inputs[name].clone()
    inputs[name].view(-1)[min(137, inputs[name].numel() - 1)] = float("nan")
    args = (*inputs.values(), EPS)
    with pytest.raises(ValueError, match=f"{name}: expected finite values"):
        cpu.shaded_photometric_forward(*args)
    with pytest.raises(ValueError, match=f"{name}: expected finite values"):
        cpu.shaded_photometric_forward_grad(*args)
    with pytest.raises(ValueError, match=f"{name}: expected finite values"):
        cpu.shaded_photometric_backward(*args, torch.ones(1, dtype=torch.float64), grad_loss)


def test_bad_input():
    image, positions, albedo, normals, gamma, vis, _ = make_inputs(2, 10, torch.float32)
    with pytest.raises(ValueError, match=r"gamma: expected \(B, 9, 3\)"):
        shaded_photometric_per_image(image, positions, albedo, normals, gamma[:, :4], vis)
    with pytest.raises(ValueError, match=r"normals: expected \(B, V, 3\) with V=10, got \(2, 5, 3\)"):
        shaded_photometric_per_image(image, positions, albedo, normals[:, :5], gamma, vis)
    with pytest.raises(TypeError, match="albedo: expected dtype torch.float32"):
        shaded_photometric_per_image(image, positions, albedo.double(), normals, gamma, vis)
    with pytest.raises(TypeError, match="visibility: expected bool or float"):
        shaded_photometric_per_image(image, positions, albedo, normals, gamma, vis.long())
    with pytest.raises(ValueError, match="visibility: expected values >= 0"):
        shaded_photometric_per_image(image, positions, albedo, normals, gamma, -vis - 1)
    with pytest.raises(ValueError, match="eps: expected a finite positive number"):
        shaded_photometric_per_image(image, positions, albedo, normals, gamma, vis, eps=-1.0)


# ------------------------------------------------------------------------- CUDA sources
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_cu_compiles_with_nvcc():
    text = kernel_sources.nvcc_compile("shaded_photometric", arch="sm_90").read_text()
    for kernel in ("shaded_photometric_forward_f32", "shaded_photometric_forward_f64",
                   "shaded_photometric_backward_f32", "shaded_photometric_backward_f64"):
        assert f".entry {kernel}" in text


@pytest.mark.cuda
@pytest.mark.skipif(not kernel_sources.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
def test_on_gpu_matches_cpu(dtype):
    image, *rest, vis, grad_loss = make_inputs(3, 4000, dtype)
    cpu_in = [t.clone().requires_grad_() for t in rest]
    gpu_in = [t.cuda().requires_grad_() for t in rest]
    loss_cpu = shaded_photometric_per_image(image, *cpu_in, vis)
    loss_gpu = shaded_photometric_per_image(image.cuda(), *gpu_in, vis.cuda())
    torch.testing.assert_close(loss_gpu.cpu(), loss_cpu, **tol(dtype, 10))
    (loss_cpu * grad_loss).sum().backward()
    (loss_gpu * grad_loss.cuda()).sum().backward()
    for a, b in zip(gpu_in, cpu_in, strict=True):
        torch.testing.assert_close(a.grad.cpu(), b.grad, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------- bounds checking
@pytest.mark.slow
def test_numba_kernels_in_bounds(tmp_path):
    """The Numba kernels with NUMBA_BOUNDSCHECK=1 on border and outside vertices (recompiled
    serial from the same plain-Python source)."""
    script = textwrap.dedent(f"""
        import numba
        import torch
        from facelab.shaded_photometric import cpu
        for name in ("_forward", "_forward_grad", "_count"):
            checked = numba.njit(getattr(cpu, name))
            setattr(cpu, name + "_par", checked)
            setattr(cpu, name + "_ser", checked)
        pts = torch.tensor([[[0.0, 0.0], [{W} - 1e-9, {H} - 1e-9], [{W}, 1.0], [-3.0, -7.0],
                             [0.3, {H} - 0.2], [1e9, 5.0], [5.5, 3.5]]], dtype=torch.float64)
        g = torch.Generator().manual_seed(0)
        image = torch.rand(1, {H}, {W}, 3, generator=g, dtype=torch.float64)
        albedo = torch.rand(1, 7, 3, generator=g, dtype=torch.float64)
        normals = torch.nn.functional.normalize(torch.randn(1, 7, 3, generator=g,
                                                            dtype=torch.float64), dim=-1)
        gamma = torch.randn(1, 9, 3, generator=g, dtype=torch.float64)
        vis = torch.ones(1, 7, dtype=torch.float64)
        args = (image, pts, albedo, normals, gamma, vis, 1e-6)
        loss, count = cpu.shaded_photometric_forward(*args)
        for needs in ((True,) * 4, (False, True, False, True)):
            cpu.shaded_photometric_backward(*args, count, torch.ones(1, dtype=torch.float64),
                                            needs)
        for bad in (float("nan"), float("inf"), -float("inf")):  # clamped before the reads
            for k in range(2):
                p = pts.clone()
                p[0, 2, k] = bad
                for call in (lambda: cpu.shaded_photometric_forward(image, p, *args[2:]),
                             lambda: cpu.shaded_photometric_forward_grad(image, p, *args[2:])):
                    try:
                        call()
                    except ValueError as err:
                        assert "positions: expected finite values" in str(err), err
                    else:
                        raise AssertionError("non-finite position not flagged")
        print("ok")
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 3])
def test_repeated_backward_through_a_retained_graph_is_bit_identical(dtype, batch):
    """The forward's pass computes the gradients and the first backward scales them in place;
    later backwards of a retained graph must give the same bits (gradcheck's reentrancy check
    has zero tolerance), whatever ∂L/∂loss is."""
    image, positions, albedo, normals, gamma, visibility, grad_loss = make_inputs(batch, 40,
                                                                                  dtype)
    leaves = [t.clone().requires_grad_(True) for t in (positions, albedo, normals, gamma)]
    per_image = shaded_photometric_per_image(image, *leaves, visibility)
    cases = [(per_image, w) for w in (grad_loss, torch.ones_like(grad_loss))]
    for reduction in ("sum", "mean"):  # the batch reduction done inside the op
        loss = shaded_photometric_loss(image, *leaves, visibility, reduction=reduction)
        cases += [(loss, torch.tensor(w, dtype=dtype)) for w in (1.0, 0.7)]
    for loss, weights in cases:
        first = torch.autograd.grad(loss, leaves, weights, retain_graph=True)
        for _ in range(2):
            again = torch.autograd.grad(loss, leaves, weights, retain_graph=True)
            for a, b in zip(first, again, strict=True):
                assert torch.equal(a, b)
