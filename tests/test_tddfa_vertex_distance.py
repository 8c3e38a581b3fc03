"""Tests for facelab.methods.tddfa.vertex_distance: VDC (Eq. 4), WPDC (Eqs. 6-7), fWPDC (Algorithm 2)."""

import numpy as np
import pytest
import torch
from test_tddfa_params import random_params, tiny_model

from facelab.methods.tddfa import vertex_distance as vd
from facelab.methods.tddfa.params import fit_param_stats, normalize_params

DTYPES = [torch.float32, torch.float64]
LOSSES = [vd.vdc, vd.wpdc, vd.fwpdc]


@pytest.mark.parametrize("dtype", DTYPES)
def test_fwpdc_weights_equal_naive_wpdc(dtype):
    model = tiny_model(dtype, n_verts=40)
    pred, target = random_params(6, dtype, noise=0.1)
    w_naive = vd.wpdc_weights(pred, target, model)
    w_fast = vd.fwpdc_weights(pred, target, model)
    assert w_fast.shape == (6, 62) and w_fast.dtype == dtype
    torch.testing.assert_close(w_fast, w_naive, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_fast.amax(1), torch.ones(6, dtype=dtype))
    torch.testing.assert_close(vd.fwpdc(pred, target, model), vd.wpdc(pred, target, model),
                               atol=1e-5, rtol=1e-5)


def test_fwpdc_equals_wpdc_with_stats():
    model = tiny_model(torch.float64)
    pred, target = random_params(5, torch.float64, noise=0.2, seed=3)
    stats = fit_param_stats(torch.cat([pred, target]))
    zp, zt = normalize_params(pred, stats), normalize_params(target, stats)
    a = vd.wpdc(zp, zt, model, stats=stats, reduction="none")
    b = vd.fwpdc(zp, zt, model, stats=stats, reduction="none")
    assert a.shape == (5,)
    torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    # the weights come from de-normalised p, the distance from the Z-scores
    w = vd.fwpdc_weights(pred, target, model)
    torch.testing.assert_close(b, ((w * (zp - zt)) ** 2).sum(1))
    torch.testing.assert_close(vd.vdc(zp, zt, model, stats=stats), vd.vdc(pred, target, model))


def test_wpdc_weight_golden_translation_only():
    """Only T's x translation is wrong: its weight is 1, all others 0; VDC = d^2."""
    model = tiny_model(torch.float64)
    _, target = random_params(1, torch.float64)
    pred = target.clone()
    pred[0, 3] += 2.5
    expected = torch.zeros(1, 62, dtype=torch.float64)
    expected[0, 3] = 1.0
    torch.testing.assert_close(vd.wpdc_weights(pred, target, model), expected)
    torch.testing.assert_close(vd.fwpdc_weights(pred, target, model), expected)
    assert float(vd.vdc(pred, target, model)) == pytest.approx(2.5**2)
    assert float(vd.fwpdc(pred, target, model)) == pytest.approx(2.5**2)


def test_wpdc_weight_golden_alpha_vs_rotation():
    """An identity error of 1 moves the face by f ||A_i||; a T error of d by d ||S(c, :)||."""
    model = tiny_model(torch.float64)
    _, target = random_params(1, torch.float64, seed=5)
    pred = target.clone()
    pred[0, 12] += 1.0  # alpha_id[0]
    pred[0, 0] += 0.01  # T[0, 0]
    w = vd.wpdc_weights(pred, target, model)
    f = float(target[0, :12].reshape(3, 4)[:, :3].norm() / 3**0.5)
    wa = f * float(model.id_basis[..., 0].norm())
    S = model.shape(target[:, 12:52], target[:, 52:])
    wt = 0.01 * float(S[0, :, 0].norm())
    assert float(w[0, 12]) == pytest.approx(wa / max(wa, wt))
    assert float(w[0, 0]) == pytest.approx(wt / max(wa, wt))
    assert float(w[0, 1:12].abs().sum() + w[0, 13:].abs().sum()) == 0.0


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_zero_at_truth_and_shapes(loss, dtype):
    model = tiny_model(dtype)
    pred, target = random_params(4, dtype, noise=0.3)
    assert float(loss(target, target, model)) == 0.0
    per = loss(pred, target, model, reduction="none")
    assert per.shape == (4,) and per.dtype == dtype and bool((per > 0).all())
    torch.testing.assert_close(loss(pred, target, model, reduction="sum"), per.sum())
    torch.testing.assert_close(loss(pred, target, model), per.mean())
    out = loss(pred.numpy(), target.numpy(), model)
    assert isinstance(out, np.ndarray)


def test_vdc_gradcheck():
    model = tiny_model(torch.float64)
    pred, target = random_params(2, torch.float64, noise=0.3)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: vd.vdc(p, target, model, reduction="none"), (pred,))


@pytest.mark.parametrize("loss", [vd.wpdc, vd.fwpdc])
def test_wpdc_gradcheck_with_fixed_weights(loss):
    """Training treats w as constant (computed from the detached prediction)."""
    model = tiny_model(torch.float64)
    pred, target = random_params(2, torch.float64, noise=0.3)
    w = vd.fwpdc_weights(pred, target, model)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: loss(p, target, model, weights=w, reduction="none"), (pred,))
    # the default weights are detached: gradient = 2 w^2 (p - p^g) / B
    loss(pred, target, model).backward()
    torch.testing.assert_close(pred.grad, 2 * w**2 * (pred - target).detach() / 2)


@pytest.mark.parametrize("loss", LOSSES)
def test_losses_bad_input(loss):
    model = tiny_model(torch.float64)
    good = torch.zeros(2, 62, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"pred: expected \(B, 62\), got \(2, 60\)"):
        loss(torch.zeros(2, 60, dtype=torch.float64), good, model)
    with pytest.raises(ValueError, match="target: expected .* with B=2"):
        loss(good, torch.zeros(3, 62, dtype=torch.float64), model)
    with pytest.raises(TypeError, match="pred: expected float32 or float64"):
        loss(good.long(), good, model)
    with pytest.raises(TypeError, match="target: expected dtype"):
        loss(good, good.float(), model)
    with pytest.raises(ValueError, match="pred: expected finite"):
        loss(good.clone().fill_(float("nan")), good, model)
    with pytest.raises(TypeError, match="model: expected a MorphableModel"):
        loss(good, good, None)
    with pytest.raises(ValueError, match="reduction"):
        loss(good, good, model, reduction="max")


@pytest.mark.parametrize("dtype", DTYPES)
def test_vertex_loss_3d(dtype):
    v = torch.zeros(2, 5, 3, dtype=dtype)
    g = v + torch.tensor([3.0, 4.0, 0.0], dtype=dtype)
    out = vd.vertex_loss_3d(v, g, reduction="none")
    torch.testing.assert_close(out, torch.full((2,), 5.0, dtype=dtype))
    assert float(vd.vertex_loss_3d(g, g)) == 0.0
    assert isinstance(vd.vertex_loss_3d(v.numpy(), g.numpy()), np.ndarray)
    with pytest.raises(ValueError, match="target: expected"):
        vd.vertex_loss_3d(v, torch.zeros(2, 4, 3, dtype=dtype))
    with pytest.raises(ValueError, match="verts: expected finite"):
        vd.vertex_loss_3d(v.fill_(float("nan")), g)


def test_vertex_loss_3d_gradcheck():
    v = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 6, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: vd.vertex_loss_3d(x, g), (v,))
    z = g.clone().requires_grad_(True)
    vd.vertex_loss_3d(z, g).backward()
    assert bool(torch.isfinite(z.grad).all()) and float(z.grad.abs().sum()) == 0.0
