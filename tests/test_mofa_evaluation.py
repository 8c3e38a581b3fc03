"""MoFA Sec. 7 evaluation: metrics on known inputs, the optimisation baseline, the table."""

import pytest
import torch

import facelab as fl
from facelab.methods.mofa.decoder import mean_face_code
from facelab.methods.mofa.evaluation import (
    PAPER,
    FitConfig,
    fit_optimization,
    format_table,
    mean_errors,
    reconstruction_errors,
)
from facelab.methods.mofa.evaluation import (
    test_batch as make_test_batch,
)
from facelab.methods.mofa.layout import CodeLayout
from facelab.methods.mofa.training import code_from_batch
from facelab.metrics import aligned_vertex_error


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=1)


@pytest.fixture(scope="module")
def batch(model):
    return make_test_batch(model, count=3, size=64)


def test_aligned_error_zero_for_scaled_translated_copy():
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(2, 50, 3, generator=g, dtype=torch.float64) * 40
    pred = 1.3 * gt + torch.tensor([5.0, -2.0, 30.0], dtype=torch.float64)
    assert torch.allclose(aligned_vertex_error(pred, gt), torch.zeros(2, dtype=torch.float64),
                          atol=1e-9)
    R = fl.rotations.euler_to_matrix(torch.tensor([[0.0, 0.4, 0.0]], dtype=torch.float64))
    rotated = pred @ R.transpose(-1, -2)
    assert bool((aligned_vertex_error(rotated, gt) > 1.0).all())  # rotation is not compensated


def test_ground_truth_code_has_zero_error(model, batch):
    code = code_from_batch(batch, CodeLayout.for_model(model))
    err = reconstruction_errors(code, batch, model)
    assert set(err) == {"geometry_mm", "photometric", "coverage", "landmark_px",
                        "landmark_px_240"}
    assert all(v.shape == (3,) for v in err.values())
    assert float(err["coverage"].min()) > 0.999
    assert float(err["geometry_mm"].max()) < 1e-3
    assert float(err["landmark_px"].max()) < 1e-3
    assert float(err["photometric"].max()) < 0.05  # bilinear sampling of the render only


def test_mean_face_has_large_error_and_table(model, batch):
    mean_code = mean_face_code(CodeLayout.for_model(model), 3,
                                                       distance=950.0)
    err = mean_errors(reconstruction_errors(mean_code, batch, model))
    assert err["geometry_mm"] > 1.0 and err["landmark_px"] > 0.5 and err["photometric"] > 0.05
    table = format_table({"mean face": err})
    assert "mean face" in table and f"{PAPER['geometry_mm'][0]:.1f}" in table


def test_fit_optimization_lowers_photometric_error(model, batch):
    code, ms = fit_optimization(model, batch["image"], batch["focal"], batch["principal"],
                                config=FitConfig(steps=15, lr=0.05), callback=fl.progress.History())
    assert code.shape == (3, 257) and ms > 0
    before = mean_errors(reconstruction_errors(
        mean_face_code(CodeLayout.for_model(model), 3, distance=950.0),
        batch, model))
    after = mean_errors(reconstruction_errors(code, batch, model))
    assert after["photometric"] < before["photometric"]
    with pytest.raises(ValueError, match="steps"):
        FitConfig(steps=0)


def test_photometric_error_is_measured_on_the_true_face_region(model, batch):
    """A face shrunk far from the camera covers little of the true face: its photometric
    error (true visible face region) is large, though Eq. 8 over its own visible vertices is
    small (it samples only a few skin pixels)."""
    from facelab.methods.mofa.evaluation import collapse_diagnostics

    layout = CodeLayout.for_model(model)
    gt = code_from_batch(batch, layout)
    far = gt.clone()
    far[:, layout.slices["translation"].start + 2] *= 4.0  # 4x farther: 1/16 of the area
    truth = reconstruction_errors(gt, batch, model)
    shrunk = reconstruction_errors(far, batch, model)
    assert bool((shrunk["coverage"] < 0.2).all())
    assert bool((shrunk["photometric"] > truth["photometric"] + 0.05).all())
    diag = collapse_diagnostics(far, batch, model)
    assert bool((diag["area_ratio"] < 0.15).all()) and bool((diag["inside"] > 0.9).all())
    assert torch.allclose(diag["yaw_deg"], diag["true_yaw_deg"], atol=1e-3)
    assert torch.equal(diag["id0"], gt[:, 0])
