import numpy as np
import pytest
import torch

from facelab import metrics
from facelab.rotations import euler_to_matrix


def test_nme_hand_computed():
    gt = torch.tensor([[[0.0, 0.0], [4.0, 0.0], [4.0, 9.0], [0.0, 9.0]]])  # bbox 4 x 9 -> 6
    pred = gt + torch.tensor([3.0, 0.0])
    assert float(metrics.nme(pred, gt)) == pytest.approx(3.0 / 6.0)
    assert float(metrics.nme(pred, gt, normalize=torch.tensor([3.0]))) == pytest.approx(1.0)
    assert float(metrics.nme(gt, gt)) == 0.0


def test_nme_interocular_and_numpy():
    g = np.random.default_rng(0).normal(size=(2, 68, 2)) * 10
    g[:, 36] = [0, 0]
    g[:, 45] = [10, 0]
    out = metrics.nme(g + np.array([0.0, 1.0]), g, normalize="interocular")
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, 0.1)


def test_nme_bad_input():
    with pytest.raises(ValueError, match="gt: expected \\(B, L, 2\\) with L=4"):
        metrics.nme(torch.zeros(1, 4, 2), torch.zeros(1, 5, 2))
    with pytest.raises(ValueError, match="normalize"):
        metrics.nme(torch.zeros(1, 4, 2), torch.ones(1, 4, 2), normalize="eyes")
    with pytest.raises(ValueError, match="zero"):
        metrics.nme(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="pred: expected finite"):
        metrics.nme(torch.full((1, 4, 2), float("nan")), torch.rand(1, 4, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_aligned_error_is_zero_for_scaled_translated_copy(dtype):
    gt = torch.randn(3, 50, 3, dtype=dtype) * 50
    pred = 1.7 * gt + torch.tensor([10.0, -4.0, 300.0], dtype=dtype)
    err = metrics.aligned_vertex_error(pred, gt)
    assert err.max() < (1e-3 if dtype == torch.float32 else 1e-9)
    assert metrics.mpve(pred, gt).min() > 10


def test_aligned_error_keeps_rotation_unless_asked():
    gt = torch.randn(2, 80, 3, dtype=torch.float64) * 50
    R = euler_to_matrix(torch.tensor([[0.0, 0.3, 0.0]] * 2, dtype=torch.float64))
    pred = 0.8 * gt @ R.transpose(1, 2) + 5.0
    assert metrics.aligned_vertex_error(pred, gt).min() > 1.0
    assert metrics.aligned_vertex_error(pred, gt, rotation=True).max() < 1e-9


def test_alignment_never_reflects():
    gt = torch.randn(1, 30, 3, dtype=torch.float64)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert metrics.aligned_vertex_error(mirrored, gt, rotation=True) > 1e-3


def test_stability_hand_computed():
    gt = torch.zeros(3, 4, 2)
    gt[:, :, 0] = torch.tensor([0.0, 4.0, 4.0, 0.0])
    gt[:, :, 1] = torch.tensor([0.0, 0.0, 9.0, 9.0])  # bbox size 6
    gt[1] += 1.0
    gt[2] += 2.0
    assert metrics.stability(gt + 5.0, gt) == pytest.approx(0.0)  # constant offset is stable
    jitter = gt.clone()
    jitter[1] += torch.tensor([3.0, 0.0])  # frame 1 jumps by 3 px, then back
    assert metrics.stability(jitter, gt) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="T >= 2"):
        metrics.stability(gt[:1], gt[:1])
