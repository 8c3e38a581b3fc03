"""Tests for Eq. (7)'s normalisation, heat maps, CED curves, the combined update, Lm2Vertex
and the residual network's shapes."""

import pytest
import torch

import facelab as fl
from facelab.methods.dualnet import (
    Lm2Vertex,
    ResidualRegressor,
    ced_curve,
    dual_update,
    heat_map,
    landmark_features,
    mean_errors,
    model_coefficients,
    normalized_errors,
    residual_loss,
    vertex_errors,
)


def test_eq7_normalisation_hand_computed():
    e = torch.tensor([[2.0, 4.0, 1.0], [3.0, 3.0, 6.0]])
    n = normalized_errors(e)
    torch.testing.assert_close(n, torch.tensor([[5.0, 10.0, 2.5], [5.0, 5.0, 10.0]]))
    assert float(n.amax(1).min()) == 10.0
    with pytest.raises(ValueError, match="zeros"):
        normalized_errors(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="negative"):
        normalized_errors(torch.tensor([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="errors"):
        normalized_errors(torch.ones(3))


def test_heat_map_shares_one_scale():
    e = torch.tensor([[1.0, 2.0, 0.0], [4.0, 1.0, 2.0]])
    h = heat_map(e)
    torch.testing.assert_close(h, e / 4.0 * 10)
    assert float(h.max()) == 10.0 and float(h.min()) == 0.0
    with pytest.raises(ValueError, match="zeros"):
        heat_map(torch.zeros(2, 3))


def test_ced_counts():
    errs = torch.tensor([1.0, 2.0, 2.0, 5.0])
    t = torch.tensor([0.5, 2.0, 4.0, 6.0])
    torch.testing.assert_close(ced_curve(errs, t), torch.tensor([0.0, 3.0, 3.0, 4.0]))
    torch.testing.assert_close(ced_curve(errs, t, fraction=True),
                               torch.tensor([0.0, 0.75, 0.75, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        ced_curve(errs, torch.tensor([2.0, 1.0]))


def test_vertex_and_mean_errors():
    gt = torch.zeros(2, 4, 3)
    pred = gt.clone()
    pred[0, 1, 0] = 3.0
    pred[1, :, 2] = 4.0
    torch.testing.assert_close(vertex_errors(pred, gt)[0], torch.tensor([0.0, 3.0, 0.0, 0.0]))
    torch.testing.assert_close(mean_errors(pred, gt), torch.tensor([0.75, 4.0]))
    torch.testing.assert_close(mean_errors(pred, gt, vertices=torch.tensor([1])),
                               torch.tensor([3.0, 4.0]))
    with pytest.raises(ValueError, match="gt"):
        vertex_errors(pred, torch.zeros(2, 5, 3))


def test_combined_update_and_eq3_loss():
    s = torch.randn(2, 5, 3)
    r = torch.randn(2, 5, 3)
    torch.testing.assert_close(dual_update(s, r), s + r)
    with pytest.raises(ValueError, match="residual"):
        dual_update(s, torch.zeros(2, 4, 3))
    target = torch.zeros(2, 5, 3)
    pred = torch.zeros(2, 5, 3)
    pred[:, 0, 0] = 2.0  # |.|^2 = 4 on 1 of 5 vertices -> mean 0.8
    assert float(residual_loss(pred, target)) == pytest.approx(0.8)
    assert float(residual_loss(pred, target, vertices=torch.tensor([0]))) == pytest.approx(4.0)


def test_residual_network_starts_at_zero_offsets():
    net = ResidualRegressor(num_vertices=11, image_size=32, width=4).eval()
    with torch.no_grad():
        out = net(torch.rand(3, 32, 32, 3))
    assert out.shape == (3, 11, 3) and float(out.abs().max()) == 0.0
    with pytest.raises(ValueError, match="image"):
        net(torch.rand(3, 16, 16, 3))
    with pytest.raises(ValueError, match="image_size"):
        ResidualRegressor(11, image_size=40)


def test_lm2vertex_is_invariant_to_translation_and_scale_and_fits_in_span():
    model = fl.load_model("synthetic", "teaching", version=1)
    g = torch.Generator().manual_seed(0)
    L = torch.rand(5, 68, 2, generator=g) * 50
    torch.testing.assert_close(landmark_features(L), landmark_features(3 * L + 7.0))
    coeffs = torch.randn(3, model.n_id + model.n_exp, generator=g, dtype=torch.float64)
    verts = model.shape(coeffs[:, :model.n_id].float(), coeffs[:, model.n_id:].float())
    torch.testing.assert_close(model_coefficients(model, verts), coeffs, atol=1e-3, rtol=0)
    # a linear regressor trained on landmarks of frontal in-span faces predicts shapes
    n = 200
    c = torch.randn(n, model.n_id + model.n_exp, generator=g)
    c[:, 10:model.n_id] = 0
    c[:, model.n_id + 5:] = 0
    v = model.shape(c[:, :model.n_id], c[:, model.n_id:])
    lm = v[:, model.landmarks, :2] * torch.tensor([1.0, -1.0])
    reg = Lm2Vertex.fit(model, lm, v, ridge=1e-3)
    pred = reg.predict(model, lm[:5])
    assert float(mean_errors(pred, v[:5]).mean()) < 0.5 * float(
        mean_errors(model.mean_shape.expand(5, -1, -1), v[:5]).mean())
    with pytest.raises(ValueError, match="ridge"):
        Lm2Vertex.fit(model, lm, v, ridge=0.0)
