"""The fitter's one-node pose (facelab.fitting.pose_step) against the tensor formula it
replaces (rotations.axis_angle_to_matrix, a product and a stack): values, gradients
(float64, every angle regime incl. exactly 0 and the Taylor/closed-form switch), gradcheck."""

from __future__ import annotations

import pytest
import torch

from facelab.fitting.pose_step import pose_from_unknowns, rodrigues
from facelab.rotations import axis_angle_to_matrix, euler_to_matrix


def _tensor_pose(delta, shift, base, t0, linear_depth=False):
    R = axis_angle_to_matrix(delta[None])[0] @ base
    z0 = t0[2]
    if linear_depth:  # the refinement stage's parametrisation, t0 + z0 shift
        return R, t0 + z0 * shift
    t = torch.stack([t0[0] + z0 * shift[0], t0[1] + z0 * shift[1], z0 * torch.exp(shift[2])])
    return R, t


@pytest.mark.parametrize("linear_depth", [False, True])
@pytest.mark.parametrize("angle", [0.0, 1e-5, 9.9e-4, 1.01e-3, 0.3, 2.5])
def test_values_and_gradients_match_the_tensor_formula(angle, linear_depth):
    g = torch.Generator().manual_seed(int(angle * 1e6) % 1000)
    f64 = dict(dtype=torch.float64)
    axis = torch.nn.functional.normalize(torch.randn(3, generator=g, **f64), dim=0)
    base = euler_to_matrix(torch.randn(1, 3, generator=g, **f64))[0]
    t0 = torch.tensor([3.0, -2.0, 700.0], **f64)
    weights_R = torch.randn(3, 3, generator=g, **f64)
    weights_t = torch.randn(3, generator=g, **f64)
    results = []
    for fn in (pose_from_unknowns, _tensor_pose):
        delta = (angle * axis).requires_grad_()
        shift = (0.01 * torch.randn(3, generator=torch.Generator().manual_seed(1), **f64)
                 ).requires_grad_()
        R, t = fn(delta, shift, base, t0, linear_depth=linear_depth)
        ((R * weights_R).sum() + (t * weights_t).sum()).backward()
        results.append((R.detach(), t.detach(), delta.grad, shift.grad))
    for ours, want in zip(*results, strict=True):
        torch.testing.assert_close(ours, want, rtol=1e-9, atol=1e-12)


def test_gradcheck_and_dtype():
    f64 = dict(dtype=torch.float64)
    base = euler_to_matrix(torch.tensor([[0.2, -0.4, 0.1]], **f64))[0]
    t0 = torch.tensor([1.0, 2.0, 500.0], **f64)
    for delta in (torch.zeros(3, **f64), torch.tensor([0.3, -0.2, 0.5], **f64),
                  torch.tensor([2e-4, 1e-4, -3e-4], **f64)):
        inputs = (delta.clone().requires_grad_(), torch.tensor([0.01, -0.02, 0.03], **f64)
                  .requires_grad_())
        assert torch.autograd.gradcheck(lambda d, s: pose_from_unknowns(d, s, base, t0), inputs)
        assert torch.autograd.gradcheck(
            lambda d, s: pose_from_unknowns(d, s, base, t0, linear_depth=True), inputs)
    R, t = pose_from_unknowns(torch.zeros(3), torch.zeros(3), torch.eye(3),
                              torch.tensor([0.0, 0.0, 5.0]))
    assert R.dtype == t.dtype == torch.float32 and torch.equal(R, torch.eye(3))
    assert t.tolist() == [0.0, 0.0, 5.0]


def test_rodrigues_is_a_rotation():
    R = torch.tensor(rodrigues([0.4, -1.1, 0.7]), dtype=torch.float64)
    torch.testing.assert_close(R @ R.T, torch.eye(3, dtype=torch.float64))
    assert abs(float(torch.linalg.det(R)) - 1) < 1e-12
