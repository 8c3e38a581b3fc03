"""Bilinear texture lookup: golden values of the reference (orientation, texel centres, clamp to
edge), grid_sample agreement, Numba and emulated CUDA vs the reference (forward and backward,
float32/float64, masks, coordinates outside [0, 1]), gradcheck, edge cases, bad input, nvcc."""

from __future__ import annotations

import shutil

import numba
import numpy as np
import pytest
import torch

from facelab import kernel_sources
from facelab.texture import SampleTexture, cpu, cuda, reference, sample_texture

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def make_inputs(batch, height, width, t_h, t_w, channels, dtype, seed=0, masked=True):
    """Random texture, uv over [-0.3, 1.3]² (some outside), a mask, an upstream gradient."""
    g = torch.Generator().manual_seed(seed)
    texture = torch.rand(batch, t_h, t_w, channels, generator=g, dtype=torch.float64)
    uv = torch.rand(batch, height, width, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3
    mask = torch.rand(batch, height, width, generator=g) > 0.3 if masked else None
    grad = torch.randn(batch, height, width, channels, generator=g, dtype=torch.float64)
    return texture.to(dtype), uv.to(dtype), mask, grad.to(dtype)


def emulated_forward(texture, uv, mask):
    return cuda.sample_texture_forward(texture, uv, mask, emulate=True)


def emulated_backward(texture, uv, mask, grad, needs=(True, True)):
    return cuda.sample_texture_backward(texture, uv, mask, grad, needs, emulate=True)


IMPLS = {
    "numba": (cpu.sample_texture_forward, cpu.sample_texture_backward),
    "cuda-host": (emulated_forward, emulated_backward),
}


def _np(x):
    return None if x is None else x.numpy()


# ------------------------------------------------------------------------ the reference
def test_reference_golden_values_and_orientation():
    # 2 x 2 texture, row 0 (top, v = 1) = [10, 20], row 1 (bottom, v = 0) = [30, 40]
    tex = np.array([[[[10.0], [20.0]], [[30.0], [40.0]]]])
    uv = np.array([[[[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25],  # texel centres
                     [0.5, 0.5], [0.5, 0.75], [0.25, 0.5],                   # midpoints
                     [-3.0, 0.75], [0.75, 9.0], [2.0, -1.0]]]])              # clamp to edge
    out = reference.sample_texture_forward(tex, uv)[0, 0, :, 0]
    np.testing.assert_allclose(out, [10, 20, 30, 40, 25, 15, 20, 10, 20, 40])


def test_reference_matches_grid_sample_border_align_corners_false():
    tex, uv, _, _ = make_inputs(2, 9, 13, 5, 7, 3, torch.float64)
    grid = torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], dim=-1)  # v up -> y down
    peer = torch.nn.functional.grid_sample(tex.permute(0, 3, 1, 2), grid, mode="bilinear",
                                           padding_mode="border", align_corners=False)
    ours = reference.sample_texture_forward(tex.numpy(), uv.numpy())
    np.testing.assert_allclose(ours, peer.permute(0, 2, 3, 1).numpy(), rtol=0, atol=1e-12)


def test_reference_backward_matches_finite_differences():
    tex, uv, mask, grad = make_inputs(1, 4, 5, 3, 4, 2, torch.float64, seed=3)
    tex, uv, mask, grad = tex.numpy(), uv.numpy(), mask.numpy(), grad.numpy()
    gt, gu = reference.sample_texture_backward(tex, uv, mask, grad)

    def loss(t, u):
        return float((reference.sample_texture_forward(t, u, mask) * grad).sum())

    h = 1e-6
    for idx in [(0, 0, 0, 0), (0, 2, 3, 1), (0, 1, 2, 0)]:
        e = np.zeros_like(tex)
        e[idx] = h
        assert (loss(tex + e, uv) - loss(tex - e, uv)) / (2 * h) == pytest.approx(gt[idx],
                                                                                  abs=1e-6)
    for idx in np.ndindex(uv.shape):
        e = np.zeros_like(uv)
        e[idx] = h
        assert (loss(tex, uv + e) - loss(tex, uv - e)) / (2 * h) == pytest.approx(gu[idx],
                                                                                  abs=1e-5)


# ------------------------------------------------------------------------ implementations
@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [True, False])
def test_forward_matches_reference(impl, dtype, masked):
    tex, uv, mask, _ = make_inputs(2, 11, 17, 6, 9, 3, dtype, masked=masked)
    got = IMPLS[impl][0](tex, uv, mask).numpy()
    ref = reference.sample_texture_forward(tex.numpy(), uv.numpy(), _np(mask))
    assert got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, **TOL[dtype])
    if masked:
        assert (got[~mask.numpy()] == 0).all()


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True)])
def test_backward_matches_reference(impl, dtype, needs):
    tex, uv, mask, grad = make_inputs(2, 13, 15, 5, 8, 3, dtype, seed=1)
    got = IMPLS[impl][1](tex, uv, mask, grad, needs)
    ref = reference.sample_texture_backward(tex.numpy(), uv.numpy(), mask.numpy(),
                                            grad.numpy(), needs)
    for g, r, need in zip(got, ref, needs, strict=True):
        if not need:
            assert g is None
            continue
        # the scatter sums ~10 terms per texel in another order: scale the tolerance
        np.testing.assert_allclose(g.numpy(), r, rtol=TOL[dtype]["rtol"],
                                   atol=20 * TOL[dtype]["atol"])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("batch", [1, 3])
def test_numba_parallel_private_accumulators_match_reference(monkeypatch, batch):
    monkeypatch.setattr(cpu, "PARALLEL_MIN", 0)
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        tex, uv, mask, grad = make_inputs(batch, 19, 23, 4, 5, 3, torch.float64, seed=5)
        out = cpu.sample_texture_forward(tex, uv, mask)
        gt, gu = cpu.sample_texture_backward(tex, uv, mask, grad)
    finally:
        numba.set_num_threads(before)
    ref_out = reference.sample_texture_forward(tex.numpy(), uv.numpy(), mask.numpy())
    rt, ru = reference.sample_texture_backward(tex.numpy(), uv.numpy(), mask.numpy(),
                                               grad.numpy())
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gt.numpy(), rt, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(gu.numpy(), ru, rtol=1e-12, atol=1e-12)


def test_cuda_host_texture_scatter_is_order_checked():
    """Many pixels onto a 2 x 2 texture: the atomicAdd accumulator passes the two-order check
    (float sums within the recursive-summation bound) and matches the reference."""
    tex, uv, _, grad = make_inputs(1, 30, 40, 2, 2, 3, torch.float32, seed=2)
    gt, _ = emulated_backward(tex, uv, None, grad, (True, False))
    rt, _ = reference.sample_texture_backward(tex.numpy(), uv.numpy(), None, grad.numpy(),
                                              (True, False))
    np.testing.assert_allclose(gt.numpy(), rt, rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------ autograd
def test_gradcheck_texture_and_uv():
    tex, uv, mask, _ = make_inputs(2, 3, 4, 3, 4, 2, torch.float64, seed=7)
    tex.requires_grad_()
    uv.requires_grad_()
    assert torch.autograd.gradcheck(lambda t, u: sample_texture(t, u, mask), (tex, uv),
                                    eps=1e-7, atol=1e-6)


def test_gradcheck_without_mask_and_outside_coordinates():
    tex, uv, _, _ = make_inputs(1, 3, 3, 2, 3, 1, torch.float64, seed=8, masked=False)
    uv = (uv * 2 - 0.5).requires_grad_()  # many outside [0, 1]: zero uv gradient there
    tex.requires_grad_()
    assert torch.autograd.gradcheck(sample_texture, (tex, uv), eps=1e-7, atol=1e-6)


def test_only_texture_gradient_is_allocated():
    tex, uv, mask, grad = make_inputs(1, 4, 4, 3, 3, 3, torch.float32)
    tex.requires_grad_()
    (sample_texture(tex, uv, mask) * grad).sum().backward()
    ref, _ = reference.sample_texture_backward(tex.detach().numpy(), uv.numpy(), mask.numpy(),
                                               grad.numpy())
    np.testing.assert_allclose(tex.grad.numpy(), ref, rtol=1e-5, atol=1e-5)
    assert uv.grad is None


# ------------------------------------------------------------------------ edge cases
@pytest.mark.parametrize("impl", list(IMPLS))
def test_one_by_one_texture_is_constant_with_zero_uv_gradient(impl):
    tex = torch.tensor([[[[0.2, 0.5, 0.9]]]], dtype=torch.float64)
    _, uv, _, grad = make_inputs(1, 5, 6, 1, 1, 3, torch.float64)
    out = IMPLS[impl][0](tex, uv, None)
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(tex.numpy()[0, 0], out.shape))
    gt, gu = IMPLS[impl][1](tex, uv, None, grad)
    assert (gu == 0).all()
    np.testing.assert_allclose(gt.numpy()[0, 0, 0], grad.sum((0, 1, 2)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("shape", [(1, 6), (6, 1)])
def test_one_row_or_column_texture_matches_reference(impl, shape):
    tex, uv, mask, grad = make_inputs(2, 5, 7, *shape, 2, torch.float64, seed=4)
    out = IMPLS[impl][0](tex, uv, mask)
    np.testing.assert_allclose(out.numpy(), reference.sample_texture_forward(
        tex.numpy(), uv.numpy(), mask.numpy()), rtol=1e-12, atol=1e-12)
    got = IMPLS[impl][1](tex, uv, mask, grad)
    ref = reference.sample_texture_backward(tex.numpy(), uv.numpy(), mask.numpy(), grad.numpy())
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-12, atol=1e-12)
    # along the single texel's axis the lookup is constant: that uv component has no gradient
    axis = 1 if shape[0] == 1 else 0  # one row: v does not matter; one column: u does not
    assert (got[1][..., axis] == 0).all()


@pytest.mark.parametrize("impl", list(IMPLS))
def test_far_outside_coordinates_clamp_to_the_border(impl):
    tex, _, _, _ = make_inputs(1, 1, 1, 4, 5, 3, torch.float64)
    uv = torch.tensor([[[[-1e30, 1e30], [1e30, -1e30], [0.5, 1e20], [-7.0, 0.5]]]],
                      dtype=torch.float64)
    out = IMPLS[impl][0](tex, uv, None)[0, 0].numpy()
    t = tex[0].numpy()
    np.testing.assert_array_equal(out[0], t[0, 0])  # u < 0, v > 1: top-left texel
    np.testing.assert_array_equal(out[1], t[-1, -1])  # u > 1, v < 0: bottom-right texel
    np.testing.assert_array_equal(out[2], t[0, 2])  # x = 2.0 exactly: column 2, top row
    np.testing.assert_allclose(out[3], 0.5 * (t[1, 0] + t[2, 0]))  # left column, middle
    _, gu = IMPLS[impl][1](tex, uv, None, torch.ones(1, 1, 4, 3, dtype=torch.float64))
    assert (gu[0, 0, :2] == 0).all()


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dims", [(0, 4, 5), (2, 0, 5), (2, 4, 0)])
def test_empty_inputs(impl, dims):
    tex, _, _, _ = make_inputs(max(dims[0], 1), 1, 1, 3, 3, 3, torch.float32)
    tex = tex[: dims[0]]
    uv = torch.zeros(*dims, 2)
    out = IMPLS[impl][0](tex, uv, torch.ones(dims, dtype=torch.bool))
    assert out.shape == (*dims, 3)
    gt, gu = IMPLS[impl][1](tex, uv, None, torch.zeros(*dims, 3))
    assert gt.shape == tex.shape and gu.shape == uv.shape
    assert (gt == 0).all()


@pytest.mark.parametrize("impl", list(IMPLS))
def test_all_masked_gives_zeros_and_no_gradient(impl):
    tex, uv, _, grad = make_inputs(2, 4, 5, 3, 3, 3, torch.float64)
    mask = torch.zeros(2, 4, 5, dtype=torch.bool)
    assert (IMPLS[impl][0](tex, uv, mask) == 0).all()
    gt, gu = IMPLS[impl][1](tex, uv, mask, grad)
    assert (gt == 0).all() and (gu == 0).all()


def test_numpy_in_numpy_out():
    tex, uv, mask, _ = make_inputs(1, 3, 4, 2, 2, 3, torch.float64)
    out = sample_texture(tex.numpy(), uv.numpy(), mask.numpy())
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, reference.sample_texture_forward(tex.numpy(), uv.numpy(),
                                                                     mask.numpy()))


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("which", ["texture", "uv"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_is_a_value_error_naming_it(which, bad):
    tex, uv, mask, _ = make_inputs(1, 3, 4, 2, 2, 3, torch.float32)
    (tex if which == "texture" else uv)[0, 1, 1, 0] = bad
    with pytest.raises(ValueError, match=f"^{which}: expected finite values, got 1 NaN/Inf"):
        sample_texture(tex, uv, mask)


@pytest.mark.parametrize("args, match", [
    ((torch.zeros(2, 3, 3), torch.zeros(2, 4, 4, 2)),
     r"texture: expected \(B, Ht, Wt, C\), got \(2, 3, 3\)"),
    ((torch.zeros(2, 3, 3, 3), torch.zeros(2, 4, 4, 3)),
     r"uv: expected \(B, H, W, 2\), got \(2, 4, 4, 3\)"),
    ((torch.zeros(2, 3, 3, 3), torch.zeros(1, 4, 4, 2)),
     r"uv: expected \(B, H, W, 2\) with B=2, got \(1, 4, 4, 2\)"),
    ((torch.zeros(1, 3, 3, 3), torch.zeros(1, 4, 4, 2), torch.ones(1, 4, 5, dtype=torch.bool)),
     r"mask: expected \(B, H, W\) with W=4, got \(1, 4, 5\)"),
    ((torch.zeros(1, 0, 3, 3), torch.zeros(1, 4, 4, 2)),
     r"texture: expected \(B, Ht, Wt, C\) with Ht, Wt >= 1, got \(1, 0, 3, 3\)"),
])
def test_wrong_shapes_are_value_errors(args, match):
    with pytest.raises(ValueError, match=match):
        sample_texture(*args)


@pytest.mark.parametrize("args, match", [
    ((torch.zeros(1, 3, 3, 3, dtype=torch.int32), torch.zeros(1, 4, 4, 2)),
     "texture: expected float32 or float64, got torch.int32"),
    ((torch.zeros(1, 3, 3, 3), torch.zeros(1, 4, 4, 2, dtype=torch.float64)),
     "uv: expected dtype torch.float32 \\(that of texture\\), got torch.float64"),
    ((torch.zeros(1, 3, 3, 3), torch.zeros(1, 4, 4, 2), torch.ones(1, 4, 4)),
     "mask: expected bool, got torch.float32"),
    (([[0.0]], torch.zeros(1, 4, 4, 2)), "texture: expected a torch.Tensor or numpy.ndarray"),
])
def test_wrong_types_are_type_errors(args, match):
    with pytest.raises(TypeError, match=match):
        sample_texture(*args)


# ------------------------------------------------------------------------ CUDA
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_nvcc_compiles():
    ptx = kernel_sources.nvcc_compile("texture", arch="sm_90").read_text()
    for kernel in ("texture_forward_f32", "texture_forward_f64", "texture_backward_f32",
                   "texture_backward_f64"):
        assert f".entry {kernel}" in ptx


@pytest.mark.cuda
@pytest.mark.skipif(not kernel_sources.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_matches_cpu_forward_and_backward(dtype):
    tex, uv, mask, grad = make_inputs(2, 33, 47, 16, 12, 3, dtype, seed=11)
    cpu_in = [tex.clone().requires_grad_(), uv.clone().requires_grad_()]
    gpu_in = [t.cuda().requires_grad_() for t in (tex, uv)]
    out_cpu = sample_texture(*cpu_in, mask)
    out_gpu = sample_texture(*gpu_in, mask.cuda())
    (out_cpu * grad).sum().backward()
    (out_gpu * grad.cuda()).sum().backward()
    tol = TOL[dtype]
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=tol["rtol"], atol=tol["atol"])
    for a, b in zip(gpu_in, cpu_in, strict=True):
        torch.testing.assert_close(a.grad.cpu(), b.grad, rtol=1e-4, atol=20 * tol["atol"])


def test_function_is_the_public_ops_engine():
    tex, uv, mask, _ = make_inputs(1, 3, 3, 2, 2, 3, torch.float64)
    np.testing.assert_array_equal(SampleTexture.apply(tex, uv, mask).numpy(),
                                  sample_texture(tex, uv, mask).numpy())


# ------------------------------------------------------------------------ property
ADVERSARIAL = [float("nan"), float("inf"), -float("inf"), 1e13, -3e38, 3e38, 1e-30, -1e-30,
               0.0, 5e-324, 1.0, 0.5]


def _property_test():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    coord = st.one_of(st.floats(-2.0, 3.0, allow_nan=False, width=32),
                      st.sampled_from(ADVERSARIAL))

    @hypothesis.given(t_h=st.integers(1, 4), t_w=st.integers(1, 4), channels=st.integers(1, 3),
                      coords=st.lists(coord, min_size=6, max_size=6),
                      dtype=st.sampled_from(DTYPES), masked=st.booleans())
    def check(t_h, t_w, channels, coords, dtype, masked):
        """A ValueError naming uv, or the reference's finite values and finite gradients."""
        tex = torch.rand(1, t_h, t_w, channels, dtype=dtype,
                         generator=torch.Generator().manual_seed(t_h * 7 + t_w))
        uv = torch.tensor(coords, dtype=torch.float64).reshape(1, 1, 3, 2).to(dtype)
        mask = torch.tensor([[[True, False, True]]]) if masked else None
        if not torch.isfinite(uv).all():
            with pytest.raises(ValueError, match="^uv: expected finite values"):
                sample_texture(tex, uv, mask)
            return
        leaves = [tex.clone().requires_grad_(), uv.clone().requires_grad_()]
        out = sample_texture(*leaves, mask)
        ref = reference.sample_texture_forward(tex.numpy(), uv.numpy(), _np(mask))
        np.testing.assert_allclose(out.detach().numpy(), ref, **TOL[dtype])
        out.sum().backward()
        assert all(torch.isfinite(t.grad).all() for t in leaves)

    return check


def test_property_error_or_the_reference_with_finite_gradients():
    _property_test()()
