"""Motion prior metrics (NeuFace Sec. 5.1, Table 4): FD and APD against hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import facelab as fl
from facelab import metrics


def _still(S=2, T=4, value=0.0):
    return torch.full((S, T, 68, 3), value, dtype=torch.float64)


# --------------------------------------------------------------------------- APD
def test_apd_two_sequences_offset_by_a_3_4_0_vector_is_5():
    a = torch.randn(1, 5, 68, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    b = a + torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    assert metrics.motion_apd(torch.cat([a, b])) == pytest.approx(5.0)


def test_apd_three_hand_made_sequences():
    # x-offsets 0, 1, 3 for every landmark and frame: pairs 1, 3, 2 -> mean 2
    x = _still(3, 2)
    x[1, ..., 0] = 1.0
    x[2, ..., 0] = 3.0
    assert metrics.motion_apd(x) == pytest.approx(2.0)
    # distances averaged over time: sample 1 is 0 at frame 0 and 2 at frame 1 from sample 0
    y = _still(2, 2)
    y[1, 1, :, 1] = 2.0
    assert metrics.motion_apd(y) == pytest.approx(1.0)
    # and over landmarks: one landmark of 68 apart by 68 -> 1
    w = _still(2, 1)
    w[1, 0, 5, 2] = 68.0
    assert metrics.motion_apd(w) == pytest.approx(1.0)


def test_apd_identical_samples_is_zero_and_numpy_works():
    x = np.random.default_rng(0).normal(size=(1, 3, 68, 3))
    assert metrics.motion_apd(np.concatenate([x, x, x])) == 0.0
    assert fl.motion_apd is metrics.motion_apd


def test_apd_rejects_bad_input():
    with pytest.raises(ValueError, match="samples: expected at least S=2"):
        metrics.motion_apd(_still(1))
    with pytest.raises(ValueError, match=r"samples: expected \(S, T, 68, 3\)"):
        metrics.motion_apd(torch.zeros(2, 4, 10, 3))
    bad = _still()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="samples"):
        metrics.motion_apd(bad)


# --------------------------------------------------------------------------- Fréchet
def test_gaussian_frechet_distance_closed_forms():
    fd = metrics.gaussian_frechet_distance
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert fd(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([3.0]),
              torch.tensor([[9.0]])) == pytest.approx(4.0 + 1.0)
    # diagonal covariances: sum over dimensions of (sd1 - sd2)^2, plus |mu1 - mu2|^2
    c1 = torch.diag(torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64))
    c2 = torch.diag(torch.tensor([4.0, 4.0, 1.0], dtype=torch.float64))
    mu1 = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)
    mu2 = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    assert fd(mu1, c1, mu2, c2) == pytest.approx(9.0 + (1 + 0 + 4))
    # the same covariances rotated by one orthogonal Q: the distance is unchanged
    Q = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(1)))[0]
    assert fd(Q @ mu1, Q @ c1 @ Q.T, Q @ mu2, Q @ c2 @ Q.T) == pytest.approx(14.0)
    # identical Gaussians: 0
    assert fd(mu2, c1, mu2, c1) == pytest.approx(0.0, abs=1e-12)


def test_gaussian_frechet_distance_non_commuting_covariances():
    # cov1 = diag(1, 0) (a line along x), cov2 = the line along (1, 1)/sqrt2 with variance 1:
    # tr sqrt(cov1^1/2 cov2 cov1^1/2) = sqrt(1/2), so FD = 1 + 1 - 2 sqrt(1/2)
    c1 = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    c2 = torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=torch.float64)
    z = torch.zeros(2, dtype=torch.float64)
    assert metrics.gaussian_frechet_distance(z, c1, z, c2) == pytest.approx(2 - math.sqrt(2))


def test_gaussian_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="cov1"):
        metrics.gaussian_frechet_distance(torch.zeros(2), torch.eye(3), torch.zeros(2),
                                          torch.eye(2))


def test_motion_features_hand_worked():
    # every landmark moves along x at 1 cm per frame at 30 fps: speed 30 cm/s, no acceleration
    T = 6
    x = torch.zeros(1, T, 68, 3, dtype=torch.float64)
    x[..., 0] = torch.arange(T, dtype=torch.float64)[None, :, None]
    x[0, :, 66, 1] = -2.0  # lower inner lip 2 cm below the upper one (62), always
    f = metrics.motion_features(x, fps=30.0, window=6, stride=6)
    names = metrics.MOTION_FEATURES
    assert f.shape == (1, 13)
    row = dict(zip(names, f[0].tolist(), strict=True))
    assert row["speed_mean"] == pytest.approx(30.0)
    assert row["speed_sd"] == pytest.approx(0.0, abs=1e-9)
    assert row["accel_mean"] == pytest.approx(0.0, abs=1e-9)
    assert row["mouth_mean"] == pytest.approx(2.0)
    assert row["mouth_sd"] == pytest.approx(0.0, abs=1e-12)
    # the nose tip sits at the centroid except for landmark 66's shift: -(-2 / 68) in y
    assert row["nose_y_mean"] == pytest.approx(2.0 / 68)
    # windows: T = 6, window 3, stride 2 -> starts 0, 2 -> 2 rows per sequence
    assert metrics.motion_features(torch.cat([x, x]), window=3, stride=2).shape == (4, 13)


def test_motion_fd_identical_sets_is_zero_and_shift_is_squared_distance():
    rng = torch.Generator().manual_seed(0)
    real = torch.randn(4, 40, 68, 3, dtype=torch.float64, generator=rng).cumsum(1) * 0.01
    assert metrics.motion_fd(real, real.clone()) == pytest.approx(0.0, abs=1e-6)
    # moving every sequence's nose tip by +1 cm in z (and nothing else changes its features'
    # spread) shifts nose_z_mean by 1 - 1/68 and nothing else: FD = (67/68)^2 in raw units,
    # divided by the real nose_z_mean column's variance when standardised
    moved = real.clone()
    moved[:, :, 30, 2] += 1.0
    assert metrics.motion_fd(moved, real, standardize=False) == pytest.approx((67 / 68) ** 2,
                                                                             rel=1e-6)
    sd = metrics.motion_features(real)[:, metrics.MOTION_FEATURES.index("nose_z_mean")].std()
    assert metrics.motion_fd(moved, real) == pytest.approx(float((67 / 68 / sd) ** 2),
                                                           rel=1e-6)
    assert fl.motion_fd is metrics.motion_fd


def test_motion_fd_grows_with_speed_and_rejects_too_short_sets():
    rng = torch.Generator().manual_seed(1)
    real = torch.randn(4, 40, 68, 3, dtype=torch.float64, generator=rng).cumsum(1) * 0.01
    assert metrics.motion_fd(real * 3, real) > metrics.motion_fd(real * 1.5, real) > 0
    with pytest.raises(ValueError, match="real: expected at least 2 windows"):
        metrics.motion_fd(real, real[:1, :30])
    with pytest.raises(ValueError, match="landmarks: expected at least T=30"):
        metrics.motion_fd(real[:, :10], real)
