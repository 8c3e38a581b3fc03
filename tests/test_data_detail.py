"""Tests for facelab.data.detail: faces whose ground truth carries detail outside the model."""

import pytest
import torch

import facelab as fl
from facelab.cameras import ScaledOrthographic
from facelab.data.detail import DetailFaces, DetailSampling, detail_field, out_of_span_fraction
from facelab.face_params import FaceParams


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=1)


@pytest.fixture(scope="module")
def batch(model):
    return DetailFaces(model, size=32, length=3, seed=5).batch()


def test_shapes_and_ranges(model, batch):
    V = model.num_vertices
    assert batch["image"].shape == (3, 32, 32, 3)
    assert batch["verts"].shape == batch["base"].shape == batch["detail"].shape == (3, V, 3)
    assert batch["landmarks_2d"].shape == (3, 68, 2)
    assert float(batch["image"].min()) >= 0 and float(batch["image"].max()) <= 1
    assert batch["visible"].dtype == torch.bool and bool(batch["visible"].any())


def test_ground_truth_is_model_shape_plus_detail(model, batch):
    """S_hat = mean + E_id alpha + E_exp delta + D, exactly (no jaw rotation in the sampling)."""
    base = model.shape(batch["id"], batch["exp"])
    torch.testing.assert_close(batch["base"], base, atol=1e-4, rtol=0)
    torch.testing.assert_close(batch["verts"], base + batch["detail"], atol=1e-4, rtol=0)
    assert float(batch["detail"].abs().amax()) > 1.0  # mm: the detail is there


def test_landmarks_are_the_scaled_orthographic_projection(model, batch):
    cam = ScaledOrthographic(batch["scale"], batch["offset"])
    params = FaceParams(rotation=batch["rotation"], vertex_offsets=batch["verts"] -
                        model.mean_shape, id=torch.zeros(3, 0), exp=torch.zeros(3, 0))
    lm = fl.form(model, params, cam).landmarks_2d
    torch.testing.assert_close(lm, batch["landmarks_true"], atol=1e-3, rtol=0)
    noise = (batch["landmarks_2d"] - batch["landmarks_true"]).std()
    assert 0.3 < float(noise) < 0.7  # landmark_noise_px = 0.5


def test_reproducible_and_seeded(model, batch):
    again = DetailFaces(model, size=32, length=3, seed=5).batch(1, 2)
    torch.testing.assert_close(again["image"], batch["image"][1:])
    torch.testing.assert_close(again["detail"], batch["detail"][1:])
    other = DetailFaces(model, size=32, length=3, seed=6).batch(0, 1)
    assert not torch.equal(other["detail"][0], batch["detail"][0])


def test_detail_is_largely_outside_the_span(model, batch):
    frac = out_of_span_fraction(model, batch["detail"])
    assert frac.shape == (3,)
    assert bool((frac > 0.05).all()) and bool((frac <= 1.0).all())
    _, parts = detail_field(model, torch.Generator().manual_seed(0))
    wrinkles = out_of_span_fraction(model, parts["wrinkles"][None])
    assert float(wrinkles) > 0.9  # a 10-16 mm sinusoid: no smooth mode represents it


def test_out_of_span_fraction_of_an_in_span_field_is_zero(model):
    coeffs = torch.randn(2, model.n_id)
    field = torch.einsum("vdk,bk->bvd", model.id_basis, coeffs)
    assert float(out_of_span_fraction(model, field).max()) < 1e-6


def test_detail_field_components_sum(model):
    total, parts = detail_field(model, torch.Generator().manual_seed(3))
    summed = sum(v for k, v in parts.items() if k != "amounts")
    torch.testing.assert_close(total, summed)
    assert set(parts["amounts"]) >= {"nose_protrusion", "chin_cleft", "bumps", "asymmetry"}


def test_validation(model):
    with pytest.raises(ValueError, match="nose_protrusion"):
        DetailSampling(nose_protrusion=(3.0, 1.0))
    with pytest.raises(ValueError, match="landmark_noise_px"):
        DetailSampling(landmark_noise_px=-1.0)
    with pytest.raises(TypeError, match="model"):
        DetailFaces("synthetic")
    with pytest.raises(TypeError, match="detail"):
        DetailFaces(model, detail={"bumps": 2})
    with pytest.raises(ValueError, match="offsets"):
        out_of_span_fraction(model, torch.zeros(1, 10, 3))
    with pytest.raises(TypeError, match="sampling"):
        detail_field(model, torch.Generator(), sampling=3)
