"""NeuFace metrics (Sec. 4.1, App. A) and losses (Eqs. 2-4, App. B) against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facelab import losses, metrics


def _track(values, dims=1):
    """(T, 1, dims) points moving along the first `dims` axes by `values`."""
    v = torch.tensor(values, dtype=torch.float64)[:, None, None]
    return v.expand(len(values), 1, dims).clone()


def test_msi3d_hand_worked():
    # x = 0,0,1,0,0 -> accelerations 1, -2, 1 (mean 0) -> variance (1 + 4 + 1) / 3 = 2 -> 1/2
    assert metrics.msi3d(_track([0, 0, 1, 0, 0])) == pytest.approx(0.5)
    # doubled: accelerations 2, -4, 2 -> variance 8 -> 1/8; two points average: (1/2 + 1/8) / 2
    pts = torch.cat([_track([0, 0, 1, 0, 0]), _track([0, 0, 2, 0, 0])], dim=1)
    assert metrics.msi3d(pts) == pytest.approx(0.3125)
    # the variance sums over coordinates: moving in x and y -> 2 + 2 = 4 -> 1/4
    assert metrics.msi3d(_track([0, 0, 1, 0, 0], dims=2)) == pytest.approx(0.25)
    # a constant acceleration (x = t^2) has zero variance: floored at eps
    assert metrics.msi3d(_track([0, 1, 4, 9, 16]), eps=1e-6) == pytest.approx(1e6)


def test_msi3d_batched_numpy_and_errors():
    pts = np.stack([_track([0, 0, 1, 0, 0]).numpy(), _track([0, 0, 2, 0, 0]).numpy()])
    out = metrics.msi3d(pts)
    assert isinstance(out, np.ndarray) and out.shape == (2,)
    np.testing.assert_allclose(out, [0.5, 0.125])
    with pytest.raises(ValueError, match="T=4"):
        metrics.msi3d(_track([0, 1, 0]))
    with pytest.raises(ValueError, match="points"):
        metrics.msi3d(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="eps"):
        metrics.msi3d(_track([0, 0, 1, 0, 0]), eps=0.0)


def test_msi3d_jitter_lowers_stability():
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, 40, dtype=torch.float64)
    smooth = torch.stack([torch.sin(2 * t), torch.cos(t), t], dim=-1)[:, None].repeat(1, 5, 1)
    noisy = smooth + 0.01 * torch.randn(smooth.shape, generator=g, dtype=torch.float64)
    assert metrics.msi3d(smooth) > 100 * metrics.msi3d(noisy)


def test_cvd_hand_worked():
    m = torch.zeros(2, 3, 2, 3, dtype=torch.float64)  # T=2 frames, N=3 views, V=2 vertices
    m[0, 1, :, 0] = 1.0  # view 1: +1 in x -> l1 1 from view 0
    m[0, 2, :, 0] = 1.0  # view 2: +(1, 1, 0) -> l1 2 from view 0, 1 from view 1
    m[0, 2, :, 1] = 1.0
    # frame 0: pairs (0,1)=1, (0,2)=2, (1,2)=1 -> 4/3; frame 1: 0 -> CVD = 2/3
    assert metrics.cvd(m) == pytest.approx(2.0 / 3.0)
    out = metrics.cvd(np.stack([m.numpy(), 2 * m.numpy()]))
    np.testing.assert_allclose(out, [2 / 3, 4 / 3])
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.cvd(torch.zeros(2, 1, 4, 3))
    with pytest.raises(ValueError, match="align"):
        metrics.cvd(m, align="icp")


def test_cvd_procrustes_removes_view_rotation():
    g = torch.Generator().manual_seed(1)
    verts = torch.randn(6, 3, generator=g, dtype=torch.float64)
    c, s = math.cos(0.7), math.sin(0.7)
    rot = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float64)
    m = torch.stack([verts, verts @ rot.T + 5.0])[None]  # (1, 2, 6, 3): a rotated, shifted copy
    assert metrics.cvd(m) > 1.0
    assert metrics.cvd(m, align="procrustes") == pytest.approx(0.0, abs=1e-9)


def test_mpve_is_the_existing_metric():
    a = torch.zeros(1, 2, 3)
    b = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert float(metrics.mpve(a, b)[0]) == pytest.approx(3.0)  # (5 + 1) / 2


def test_beta_filter_rule():
    beta = np.array([[0.6, 0.8], [0.6, 0.9]])  # norms 1.0 and 1.0817
    np.testing.assert_array_equal(metrics.beta_norm_reject(beta), [False, True])
    np.testing.assert_array_equal(metrics.beta_norm_reject(beta, threshold=2.0), [False, False])
    assert metrics.beta_norm_threshold(1, 0.95) == pytest.approx(1.959964, abs=1e-5)
    assert metrics.beta_norm_threshold(80) > 9.0  # a facelab identity of 80 N(0,1) modes
    with pytest.raises(ValueError, match="threshold"):
        metrics.beta_norm_reject(beta, threshold=-1.0)
    with pytest.raises(ValueError, match="beta"):
        metrics.beta_norm_reject(np.zeros(3))


def test_landmark_l1_loss_hand_worked():
    pred = torch.zeros(1, 2, 2)
    target = torch.tensor([[[1.0, 2.0], [3.0, 0.0]]])  # l1 3 and 3
    assert float(losses.landmark_l1_loss(pred, target)) == pytest.approx(3.0)
    w = torch.tensor([[1.0, 0.0]])
    target2 = torch.tensor([[[1.0, 0.0], [100.0, 100.0]]])  # the missing point is ignored
    assert float(losses.landmark_l1_loss(pred, target2, w)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weights"):
        losses.landmark_l1_loss(pred, target, -w)


def test_quaternion_losses_hand_worked():
    q = torch.tensor([[[1.0, 0, 0, 0]], [[0.0, 1, 0, 0]]])  # (T=2, N=1, 4)
    target = torch.tensor([[[-1.0, 0, 0, 0]], [[1.0, 0, 0, 0]]])  # -q is the same rotation
    # frame 0: 0 (sign aligned); frame 1: sqrt(2) -> mean sqrt(2)/2
    assert float(losses.temporal_quaternion_loss(q, target)) == pytest.approx(math.sqrt(2) / 2)
    assert float(losses.temporal_quaternion_naive_loss(q)) == pytest.approx(math.sqrt(2))
    with pytest.raises(ValueError, match="T >= 2"):
        losses.temporal_quaternion_naive_loss(q[:1])


def test_multiview_losses_hand_worked():
    m = torch.zeros(1, 2, 2, 3)
    m[0, 1, :, 2] = 2.0  # view 1 is 2 mm deeper on every vertex
    target = torch.zeros(1, 2, 3)
    target[..., 2] = 1.0  # the bootstrapped mesh half-way: each view is 1 mm away
    assert float(losses.multiview_loss(m, target)) == pytest.approx(1.0)
    assert float(losses.multiview_naive_loss(m)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="targets"):
        losses.multiview_loss(m, torch.zeros(1, 3, 3))
    m.requires_grad_(True)
    losses.multiview_loss(m, target).backward()
    assert m.grad.abs().sum() > 0
