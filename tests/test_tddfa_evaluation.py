"""Tests for facelab.methods.tddfa.evaluation: NME per yaw bin, dense NME, stability."""

import math

import pytest
import torch
from test_tddfa_params import random_params, tiny_model

from facelab import metrics
from facelab.methods.tddfa import evaluation as E


def test_nme_by_yaw_hand_computed():
    gt = torch.tensor([[0.0, 0.0], [4.0, 0.0], [4.0, 9.0], [0.0, 9.0]]).expand(3, 4, 2)  # box 6
    pred = gt + torch.tensor([[[3.0, 0.0]], [[0.0, 1.2]], [[0.6, 0.0]]])  # 50%, 20%, 10%
    yaw = torch.deg2rad(torch.tensor([10.0, -45.0, 90.0]))
    out = E.nme_by_yaw(pred, gt, yaw)
    assert out["[0, 30]"] == pytest.approx(50.0)
    assert out["[30, 60]"] == pytest.approx(20.0)
    assert out["[60, 90]"] == pytest.approx(10.0)
    assert out["mean"] == pytest.approx(80.0 / 3)
    empty = E.nme_by_yaw(pred[:1], gt[:1], yaw[:1])
    assert math.isnan(empty["[30, 60]"])
    with pytest.raises(ValueError, match="yaw"):
        E.nme_by_yaw(pred, gt, yaw[:2])


def test_stability_hand_computed():
    """A constant prediction error is perfectly stable; jitter of d px gives d / box."""
    gt = torch.tensor([[0.0, 0.0], [6.0, 0.0], [6.0, 6.0], [0.0, 6.0]])  # box 6
    gt = torch.stack([gt + t for t in range(5)])  # moving face, (5, 4, 2)
    assert metrics.stability(gt + 2.0, gt) == pytest.approx(0.0)
    jitter = gt.clone()
    jitter[1::2, :, 0] += 0.6  # +0.6, -0.6, +0.6, -0.6 offsets
    assert metrics.stability(jitter, gt) == pytest.approx(0.1)


def test_dense_nme_zero_and_shift():
    model = tiny_model(torch.float64)
    _, p = random_params(3, torch.float64)
    assert float(E.dense_nme(model, p, p).abs().max()) == 0.0
    q = p.clone()
    q[:, 3] += 1.0  # shift x by 1 px
    q[:, 11] += 50.0  # z offset is ignored (orthographic depth has no origin)
    from facelab.methods.tddfa.reconstruct import reconstruct_dense

    g = reconstruct_dense(model, p)
    size = g[..., :2].amax(1) - g[..., :2].amin(1)
    expected = 100.0 / torch.sqrt(size[:, 0] * size[:, 1])
    torch.testing.assert_close(E.dense_nme(model, q, p), expected)


def test_format_table():
    s = E.format_table("T", ["a", "bb"], [["x", 1.234], ["yy", 2.0]])
    assert "1.23" in s and s.splitlines()[0] == "T"
