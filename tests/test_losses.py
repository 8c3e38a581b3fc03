"""Public losses (MoFA Eqs. 8-10): photometric_loss, landmark_loss, statistical_prior."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from facelab.losses import PriorWeights, landmark_loss, photometric_loss, statistical_prior
from facelab.vertex_losses import photometric_per_image, reference

DTYPES = [torch.float32, torch.float64]


def photometric_inputs(dtype, batch=3, n_vert=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 16, 20, 3, generator=g, dtype=torch.float64)
    positions = torch.rand(batch, n_vert, 2, generator=g, dtype=torch.float64) * 22 - 1
    colors = torch.rand(batch, n_vert, 3, generator=g, dtype=torch.float64)
    visibility = torch.rand(batch, n_vert, generator=g) > 0.3
    return [t.to(dtype) for t in (image, positions, colors)] + [visibility]


def landmark_inputs(dtype, batch=2, n_land=68, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(batch, n_land, 2, generator=g, dtype=torch.float64) * 224
    target = pred + torch.randn(batch, n_land, 2, generator=g, dtype=torch.float64) * 3
    conf = torch.rand(batch, n_land, generator=g, dtype=torch.float64)
    return [t.to(dtype) for t in (pred, target, conf)]


# ------------------------------------------------------------------- photometric_loss
@pytest.mark.parametrize("dtype", DTYPES)
def test_photometric_loss_reductions(dtype):
    inputs = photometric_inputs(dtype)
    per_image = photometric_loss(*inputs, reduction="none")
    assert per_image.shape == (3,) and per_image.dtype == dtype
    torch.testing.assert_close(per_image, photometric_per_image(*inputs))
    torch.testing.assert_close(photometric_loss(*inputs), per_image.mean())
    torch.testing.assert_close(photometric_loss(*inputs, reduction="sum"), per_image.sum())
    ref, _ = reference.photometric_forward(*(t.numpy() for t in inputs[:3]),
                                           inputs[3].to(dtype).numpy(), 1e-6)
    np.testing.assert_allclose(per_image.numpy(), ref, rtol=1e-5 if dtype == torch.float32
                               else 1e-12)


def test_photometric_loss_numpy_and_backward():
    image, positions, colors, visibility = photometric_inputs(torch.float32)
    out = photometric_loss(image.numpy(), positions.numpy(), colors.numpy(), visibility.numpy())
    assert isinstance(out, np.ndarray) and out.shape == ()
    colors.requires_grad_()
    positions.requires_grad_()
    photometric_loss(image, positions, colors, visibility).backward()
    assert torch.isfinite(colors.grad).all() and float(colors.grad.abs().sum()) > 0
    assert torch.isfinite(positions.grad).all() and float(positions.grad.abs().sum()) > 0


def test_photometric_loss_bad_reduction():
    with pytest.raises(ValueError, match="reduction: expected one of"):
        photometric_loss(*photometric_inputs(torch.float32), reduction="avg")


# ---------------------------------------------------------------------- landmark_loss
@pytest.mark.parametrize("dtype", DTYPES)
def test_landmark_loss_golden_and_reference(dtype):
    pred = torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 1.0], [2.0, 2.0]]], dtype=dtype)
    target = torch.zeros_like(pred)
    conf = torch.tensor([[1.0, 0.5], [0.0, 2.0]], dtype=dtype)
    per_image = landmark_loss(pred, target, conf, reduction="none")
    torch.testing.assert_close(per_image, torch.tensor([12.5, 16.0], dtype=dtype))
    torch.testing.assert_close(landmark_loss(pred, target), torch.tensor(17.5, dtype=dtype))
    pred, target, conf = landmark_inputs(dtype)
    np.testing.assert_allclose(landmark_loss(pred, target, conf, reduction="none").numpy(),
                               reference.landmark_forward(pred.numpy(), target.numpy(),
                                                          conf.numpy()), rtol=1e-6)


def test_landmark_loss_numpy_sum_and_gradcheck():
    pred, target, conf = landmark_inputs(torch.float64, n_land=5)
    out = landmark_loss(pred.numpy(), target.numpy(), conf.numpy(), reduction="sum")
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, landmark_loss(pred, target, conf, reduction="sum").numpy())
    inputs = [t.requires_grad_() for t in (pred, target, conf)]
    assert torch.autograd.gradcheck(landmark_loss, inputs)


def test_landmark_loss_bad_input():
    pred, target, conf = landmark_inputs(torch.float32)
    with pytest.raises(ValueError, match=r"targets: expected \(B, L, 2\) with L=68"):
        landmark_loss(pred, target[:, :46])
    with pytest.raises(ValueError, match=r"confidence: expected \(B, L\)"):
        landmark_loss(pred, target, conf[..., None])
    with pytest.raises(TypeError, match="landmarks: expected float32 or float64"):
        landmark_loss(pred.long(), target)
    with pytest.raises(TypeError, match="targets: expected"):
        landmark_loss(pred, target.double())
    with pytest.raises(ValueError, match="confidence: expected values >= 0"):
        landmark_loss(pred, target, -conf - 1)
    bad = pred.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="landmarks: expected finite values"):
        landmark_loss(bad, target)


# ------------------------------------------------------------------ statistical_prior
def test_prior_weights_are_mofas():
    w = PriorWeights()
    assert (w.id, w.exp, w.albedo) == (1.0, 0.8, 1.7e-3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.id = 2.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_statistical_prior_golden(dtype):
    alpha = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=dtype)  # Σα² = 5, 0
    delta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]], dtype=dtype)  # Σδ² = 1, 4
    beta = torch.tensor([[10.0], [0.0]], dtype=dtype)  # Σβ² = 100, 0
    coeffs = {"id": alpha, "exp": delta, "albedo": beta}
    per_image = statistical_prior(coeffs, reduction="none")
    expected = torch.tensor([5 + 0.8 * 1 + 1.7e-3 * 100, 0.8 * 4], dtype=dtype)
    torch.testing.assert_close(per_image, expected)
    torch.testing.assert_close(statistical_prior(coeffs), expected.mean())
    custom = statistical_prior(coeffs, PriorWeights(id=0.0, exp=1.0, albedo=0.0),
                               reduction="sum")
    torch.testing.assert_close(custom, torch.tensor(5.0, dtype=dtype))
    only_id = statistical_prior({"id": alpha}, reduction="none")
    torch.testing.assert_close(only_id, torch.tensor([5.0, 0.0], dtype=dtype))


def test_statistical_prior_numpy_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    coeffs = {k: torch.randn(3, n, generator=g, dtype=torch.float64)
              for k, n in (("id", 4), ("exp", 3), ("albedo", 5))}
    out = statistical_prior({k: v.numpy() for k, v in coeffs.items()})
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, statistical_prior(coeffs).numpy())
    inputs = [v.requires_grad_() for v in coeffs.values()]
    assert torch.autograd.gradcheck(
        lambda a, b, c: statistical_prior({"id": a, "exp": b, "albedo": c}), inputs)


def test_statistical_prior_bad_input():
    alpha = torch.zeros(2, 80)
    with pytest.raises(ValueError, match="coeffs_by_name: expected keys in"):
        statistical_prior({"id": alpha, "pose": alpha})
    with pytest.raises(ValueError, match="coeffs_by_name: expected a non-empty mapping"):
        statistical_prior({})
    with pytest.raises(ValueError, match=r"coeffs_by_name\['exp'\]: expected \(B, \*\) with B=2"):
        statistical_prior({"id": alpha, "exp": torch.zeros(3, 64)})
    with pytest.raises(TypeError, match="weights: expected PriorWeights"):
        statistical_prior({"id": alpha}, {"id": 1.0})
    with pytest.raises(ValueError, match=r"coeffs_by_name\['id'\]: expected finite"):
        statistical_prior({"id": alpha + float("inf")})
    with pytest.raises(TypeError, match=r"coeffs_by_name\['id'\]: expected float32"):
        statistical_prior({"id": alpha.long()})
