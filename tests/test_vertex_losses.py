"""Dense photometric loss, MoFA Eq. (8): golden values of the reference, Numba and emulated CUDA
vs the reference (forward and backward, float32/float64, borders, outside, zero visible, zero
residuals), gradcheck, bad input, bounds checking."""

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
from facelab.vertex_losses import cpu, cuda, photometric_per_image, reference

DTYPES = [torch.float32, torch.float64]
EPS = 1e-6
H, W = 12, 17


def make_inputs(batch, n_vert, dtype, seed=0, height=H, width=W, margin=2.0):
    """Random image, positions (some outside the image), colours, 0/1 visibility, grad."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, height, width, 3, generator=g, dtype=torch.float64)
    lo, span = -margin, torch.tensor([width + 2 * margin, height + 2 * margin], dtype=torch.float64)
    positions = lo + torch.rand(batch, n_vert, 2, generator=g, dtype=torch.float64) * span
    colors = torch.rand(batch, n_vert, 3, generator=g, dtype=torch.float64)
    visibility = (torch.rand(batch, n_vert, generator=g) > 0.25).to(torch.float64)
    grad_loss = torch.randn(batch, generator=g, dtype=torch.float64)
    return [t.to(dtype) for t in (image, positions, colors, visibility, grad_loss)]


def crafted_positions(dtype, height=H, width=W):
    """Vertices exactly on the image borders, in the outer half pixel, on pixel centres and
    just outside: (1, 14, 2)."""
    pts = [(0.0, 0.0), (0.25, 3.1), (width - 0.5, height - 0.5), (width - 1e-3, 5.2),
           (3.3, height - 1e-3), (width, 2.0), (2.0, height), (-1e-3, 4.0), (5.0, -0.25),
           (0.5, 0.5), (7.5, 3.5), (1e6, -1e6), (width / 2, height / 2), (16.9, 0.1)]
    return torch.tensor([pts], dtype=dtype)


def emulated_forward(*args):
    return cuda.photometric_forward(*args, emulate=True)


def emulated_backward(*args):
    return cuda.photometric_backward(*args, emulate=True)


IMPLS = {
    "numba": (cpu.photometric_forward, cpu.photometric_backward),
    "cuda-host": (emulated_forward, emulated_backward),
}


def tol(dtype, scale=1.0):
    if dtype == torch.float32:
        return dict(rtol=2e-5 * scale, atol=2e-6 * scale)
    return dict(rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------------ the reference
def test_reference_samples_pixel_centres_exactly():
    image = np.random.default_rng(0).random((1, H, W, 3))
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    positions = np.stack([cols + 0.5, rows + 0.5], -1).reshape(1, -1, 2)  # (j + ½, i + ½)
    sample, inside = reference.bilinear_sample(image, positions)
    assert inside.all()
    np.testing.assert_array_equal(sample.reshape(H, W, 3), image[0])


def test_reference_border_clamping_and_outside():
    image = np.random.default_rng(1).random((1, H, W, 3))
    positions = np.array([[[0.2, 0.3], [W - 0.2, H - 0.1], [W, 1.0], [-0.01, 1.0], [3.5, H]]])
    sample, inside = reference.bilinear_sample(image, positions)
    np.testing.assert_array_equal(inside, [[True, True, False, False, False]])
    np.testing.assert_allclose(sample[0, 0], image[0, 0, 0])  # outer half pixel: the corner
    np.testing.assert_allclose(sample[0, 1], image[0, H - 1, W - 1])


def test_reference_golden_linear_ramp():
    """I = a·(column index) in every channel; bilinear is exact on it, so with c = 0 each
    vertex costs sqrt(3)·a·(x − ½) (eps → 0 limit) and ∂E/∂x = sqrt(3)·a / n."""
    a = 0.05
    image = np.broadcast_to(a * np.arange(W, dtype=np.float64)[None, None, :, None],
                            (1, H, W, 3)).copy()
    positions = np.array([[[2.3, 4.7], [8.6, 1.2], [11.8, 9.9]]])
    colors = np.zeros((1, 3, 3))
    weights = np.ones((1, 3))
    loss, count = reference.photometric_forward(image, positions, colors, weights, 1e-12)
    expected = math.sqrt(3) * a * np.mean(positions[0, :, 0] - 0.5)
    np.testing.assert_allclose(loss, [expected], rtol=1e-10)
    np.testing.assert_array_equal(count, [3.0])
    _, grad_pos, grad_col = reference.photometric_backward(
        image, positions, colors, weights, 1e-12, count, np.ones(1))
    np.testing.assert_allclose(grad_pos[0, :, 0], math.sqrt(3) * a / 3, rtol=1e-10)
    np.testing.assert_allclose(grad_pos[0, :, 1], 0, atol=1e-14)
    np.testing.assert_allclose(grad_col, -1 / (3 * math.sqrt(3)), rtol=1e-8)


def test_reference_backward_matches_finite_differences():
    image, positions, colors, visibility, grad_loss = (
        t.numpy() for t in make_inputs(2, 6, torch.float64, seed=3, margin=-1.0))
    # keep u − ½ away from integers (bilinear is not differentiable across grid lines)
    positions = np.floor(positions) + 0.5 + 0.2 + 0.6 * (positions % 1)
    _, count = reference.photometric_forward(image, positions, colors, visibility, EPS)
    analytic = reference.photometric_backward(image, positions, colors, visibility, EPS, count,
                                              grad_loss)

    def objective():
        loss, _ = reference.photometric_forward(image, positions, colors, visibility, EPS)
        return (loss * grad_loss).sum()

    for k, x in enumerate((image, positions, colors)):
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
def _check_against_reference(impl, image, positions, colors, visibility, grad_loss, dtype):
    forward, backward = IMPLS[impl]
    arrays = [t.numpy() for t in (image, positions, colors, visibility)]
    loss, count = forward(image, positions, colors, visibility, EPS)
    ref_loss, ref_count = reference.photometric_forward(*arrays, EPS)
    assert loss.shape == (image.shape[0],) and loss.dtype == dtype
    np.testing.assert_allclose(count.numpy(), ref_count, rtol=0, atol=0)
    np.testing.assert_allclose(loss.numpy(), ref_loss, **tol(dtype))
    ours = backward(image, positions, colors, visibility, EPS, count, grad_loss, (True,) * 3)
    ref = reference.photometric_backward(*arrays, EPS, ref_count, grad_loss.numpy())
    for got, want in zip(ours, ref, strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        assert torch.isfinite(got).all()
        np.testing.assert_allclose(got.numpy(), want, **tol(dtype, scale=10))
    return ours


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1400)])  # serial and parallel variants
def test_compiled_matches_reference_random(impl, dtype, shape):
    image, positions, colors, visibility, grad_loss = make_inputs(*shape, dtype, seed=shape[1])
    if shape[0] == 3:
        visibility[1] = 0  # an image without visible vertices
    grads = _check_against_reference(impl, image, positions, colors, visibility, grad_loss,
                                     dtype)
    if shape[0] == 3:
        assert float(grads[0][1].abs().max()) == 0 and float(grads[2][1].abs().max()) == 0


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_matches_reference_on_borders_and_outside(impl, dtype):
    image, _, colors, _, grad_loss = make_inputs(1, 14, dtype, seed=7)
    positions = crafted_positions(dtype)
    visibility = torch.ones(1, 14, dtype=dtype)
    _, count = IMPLS[impl][0](image, positions, colors, visibility, EPS)
    assert float(count[0]) == 9  # (W, ·), (·, H), x < 0, y < 0, and (1e6, −1e6) are outside
    _check_against_reference(impl, image, positions, colors, visibility, grad_loss, dtype)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_zero_visible_gives_zero_loss_and_gradients(impl, dtype):
    forward, backward = IMPLS[impl]
    image, positions, colors, _, grad_loss = make_inputs(2, 50, dtype)
    visibility = torch.zeros(2, 50, dtype=dtype)
    loss, count = forward(image, positions, colors, visibility, EPS)
    assert loss.tolist() == [0.0, 0.0] and count.tolist() == [0.0, 0.0]
    for g in backward(image, positions, colors, visibility, EPS, count, grad_loss, (True,) * 3):
        assert torch.isfinite(g).all() and float(g.abs().max()) == 0


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_exact_zero_residual(impl, dtype):
    """Vertices on pixel centres with the pixel's colour: loss exactly 0, finite gradients."""
    forward, backward = IMPLS[impl]
    image = make_inputs(1, 1, dtype)[0]
    rows, cols = torch.tensor([0, 5, H - 1]), torch.tensor([0, 9, W - 1])
    positions = torch.stack([cols + 0.5, rows + 0.5], -1)[None].to(dtype)  # (1, 3, 2)
    colors = image[0, rows, cols][None].clone()  # (1, 3, 3)
    visibility = torch.ones(1, 3, dtype=dtype)
    loss, count = forward(image, positions, colors, visibility, EPS)
    assert loss.tolist() == [0.0]
    grads = backward(image, positions, colors, visibility, EPS, count, torch.ones(1, dtype=dtype),
                     (True,) * 3)
    for g in grads:
        assert torch.isfinite(g).all() and float(g.abs().max()) == 0


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False),
                                   (False, False, True), (False, True, True)])
def test_compiled_backward_computes_only_what_is_needed(impl, needs):
    forward, backward = IMPLS[impl]
    image, positions, colors, visibility, grad_loss = make_inputs(2, 40, torch.float64)
    _, count = forward(image, positions, colors, visibility, EPS)
    ours = backward(image, positions, colors, visibility, EPS, count, grad_loss, needs)
    arrays = [t.numpy() for t in (image, positions, colors, visibility)]
    ref = reference.photometric_backward(*arrays, EPS, count.numpy(), grad_loss.numpy())
    for got, want, need in zip(ours, ref, needs, strict=True):
        if need:
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-13)
        else:
            assert got is None


def test_plain_python_kernel_runs_and_matches_reference():
    """umap-style: the undecorated forward kernel runs as plain Python (debuggable)."""
    image, positions, colors, visibility, _ = (t.numpy() for t in make_inputs(2, 9,
                                                                              torch.float64))
    err, w_eff = np.empty_like(visibility), np.empty_like(visibility)
    cpu._forward(image, positions, colors, visibility, EPS, err, w_eff)
    loss, _ = reference.photometric_forward(image, positions, colors, visibility, EPS)
    np.testing.assert_allclose(err.sum(1) / np.maximum(w_eff.sum(1), 1), loss, rtol=1e-12)


# ---------------------------------------------------------- the autograd op and wrapper
@pytest.mark.parametrize("dtype", DTYPES)
def test_photometric_per_image_smoke_and_reference(dtype):
    image, positions, colors, visibility, _ = make_inputs(4, 300, dtype)
    loss = photometric_per_image(image, positions, colors, visibility.bool())
    assert loss.shape == (4,) and loss.dtype == dtype
    ref, _ = reference.photometric_forward(*(t.numpy() for t in (image, positions, colors,
                                                                 visibility)), EPS)
    np.testing.assert_allclose(loss.numpy(), ref, **tol(dtype))


def test_photometric_per_image_numpy_and_float_weights():
    image, positions, colors, visibility, _ = make_inputs(2, 30, torch.float32)
    out = photometric_per_image(image.numpy(), positions.numpy(), colors.numpy(),
                                visibility.numpy())
    assert isinstance(out, np.ndarray) and out.shape == (2,) and out.dtype == np.float32
    halved = photometric_per_image(image, positions, colors, visibility * 0.5)
    np.testing.assert_allclose(halved.numpy(), out, rtol=1e-6)  # normalised by Σ w


def test_photometric_per_image_mixed_dtypes_use_the_widest():
    image, positions, colors, visibility, _ = make_inputs(1, 10, torch.float64)
    loss = photometric_per_image(image.float(), positions, colors, visibility)
    assert loss.dtype == torch.float64


def test_photometric_gradcheck():
    image, positions, colors, visibility, _ = make_inputs(2, 5, torch.float64, seed=11,
                                                          height=3, width=4, margin=-0.6)
    positions = torch.floor(positions) + 0.5 + 0.15 + 0.7 * (positions % 1)  # off grid lines
    visibility[1, :2] = 0
    inputs = [t.requires_grad_() for t in (image, positions, colors)]
    assert torch.autograd.gradcheck(
        lambda i, p, c: photometric_per_image(i, p, c, visibility, eps=1e-3), inputs)


def test_photometric_gradients_only_where_needed_and_zero_visible_is_safe():
    image, positions, colors, _, _ = make_inputs(2, 20, torch.float32)
    positions.requires_grad_()
    loss = photometric_per_image(image, positions, colors, torch.zeros(2, 20, dtype=torch.bool))
    loss.sum().backward()
    assert loss.tolist() == [0.0, 0.0] and float(positions.grad.abs().max()) == 0
    assert image.grad is None and colors.grad is None


def test_photometric_bad_input():
    image, positions, colors, visibility, _ = make_inputs(2, 10, torch.float32)
    with pytest.raises(ValueError, match=r"image: expected \(B, H, W, 3\)"):
        photometric_per_image(image[..., :2], positions, colors, visibility)
    with pytest.raises(ValueError, match=r"positions: expected \(B, V, 2\)"):
        photometric_per_image(image, colors, colors, visibility)
    with pytest.raises(ValueError, match=r"visibility: expected \(B, V\) with B=2"):
        photometric_per_image(image, positions, colors, visibility[:1])
    with pytest.raises(TypeError, match="colors: expected float32 or float64"):
        photometric_per_image(image, positions, colors.to(torch.float16), visibility)
    with pytest.raises(TypeError, match="visibility: expected bool or float"):
        photometric_per_image(image, positions, colors, visibility.long())
    with pytest.raises(ValueError, match="visibility: expected values >= 0"):
        photometric_per_image(image, positions, colors, -visibility - 1)
    bad = positions.clone()
    bad[1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match="positions: expected finite values"):
        photometric_per_image(image, bad, colors, visibility)
    with pytest.raises(ValueError, match="eps: expected a finite positive number"):
        photometric_per_image(image, positions, colors, visibility, eps=0.0)


# ------------------------------------------------------------------------- CUDA sources
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_photometric_cu_compiles_with_nvcc():
    text = kernel_sources.nvcc_compile("photometric", arch="sm_90").read_text()
    for kernel in ("photometric_forward_f32", "photometric_forward_f64",
                   "photometric_backward_f32", "photometric_backward_f64"):
        assert f".entry {kernel}" in text


@pytest.mark.cuda
@pytest.mark.skipif(not kernel_sources.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
def test_photometric_on_gpu_matches_cpu(dtype):
    image, positions, colors, visibility, grad_loss = make_inputs(3, 4000, dtype)
    cpu_in = [t.clone().requires_grad_() for t in (image, positions, colors)]
    gpu_in = [t.cuda().requires_grad_() for t in (image, positions, colors)]
    loss_cpu = photometric_per_image(*cpu_in, visibility)
    loss_gpu = photometric_per_image(*gpu_in, visibility.cuda())
    torch.testing.assert_close(loss_gpu.cpu(), loss_cpu, **tol(dtype, 10))
    (loss_cpu * grad_loss).sum().backward()
    (loss_gpu * grad_loss.cuda()).sum().backward()
    for a, b in zip(gpu_in, cpu_in, strict=True):
        torch.testing.assert_close(a.grad.cpu(), b.grad, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------- bounds checking
@pytest.mark.slow
def test_numba_kernels_in_bounds(tmp_path):
    """Run the Numba kernels with NUMBA_BOUNDSCHECK=1 on border/outside vertices.

    The kernels are recompiled from the same plain-Python source without ``parallel=True``
    (prange is range there; the indexing is identical) — a third of the compile time — and
    replace both compiled variants.
    """
    script = textwrap.dedent(f"""
        import numba
        import torch
        from facelab.vertex_losses import cpu
        for name in ("_forward", "_backward_by_vertex", "_backward_by_image"):
            checked = numba.njit(getattr(cpu, name))
            setattr(cpu, name + "_par", checked)
            setattr(cpu, name + "_ser", checked)
        pts = torch.tensor([[[0.0, 0.0], [{W} - 1e-9, {H} - 1e-9], [{W}, 1.0], [-3.0, -7.0],
                             [0.3, {H} - 0.2], [1e9, 5.0], [5.5, 3.5]]], dtype=torch.float64)
        g = torch.Generator().manual_seed(0)
        image = torch.rand(1, {H}, {W}, 3, generator=g, dtype=torch.float64)
        colors = torch.rand(1, 7, 3, generator=g, dtype=torch.float64)
        vis = torch.ones(1, 7, dtype=torch.float64)
        loss, count = cpu.photometric_forward(image, pts, colors, vis, 1e-6)
        for needs in ((True, True, True), (False, True, True)):
            cpu.photometric_backward(image, pts, colors, vis, 1e-6, count,
                                     torch.ones(1, dtype=torch.float64), needs)
        print("ok")
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
