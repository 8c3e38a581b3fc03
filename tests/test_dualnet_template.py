"""Tests for facelab.methods.dualnet.template: Eq. (4) and the per-vertex colour map."""

import math

import pytest
import torch

import facelab as fl
from facelab.methods.dualnet import (
    fit_template,
    project_template,
    sample_vertex_colors,
    scaled_orthographic_pose,
)
from facelab.methods.dualnet.template import _project_rows
from facelab.rotations import head_rotation


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=1)


def _known(model, n_id=8, n_exp=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    a_id = torch.randn(2, n_id, generator=g, dtype=torch.float64)
    a_exp = 0.5 * torch.randn(2, n_exp, generator=g, dtype=torch.float64)
    R = head_rotation(torch.tensor([[0.2, -0.4, 0.1], [-0.1, 0.3, -0.05]], dtype=torch.float64))
    scale = torch.tensor([0.25, 0.3], dtype=torch.float64)
    offset = torch.tensor([[31.0, 35.0], [30.0, 28.5]], dtype=torch.float64)
    m = model.to(dtype=torch.float64)
    X = m.mean_shape + torch.einsum("vdk,bk->bvd", m.id_basis[..., :n_id], a_id) \
        + torch.einsum("vdk,bk->bvd", m.exp_basis[..., :n_exp], a_exp)
    L = _project_rows(X[:, m.landmarks], scale, R, offset)
    return a_id, a_exp, R, scale, offset, X, L


def test_pose_is_exact_on_noise_free_points(model):
    *_, R, scale, offset, X, L = _known(model)
    s, Rf, o = scaled_orthographic_pose(X[:, model.landmarks], L)
    torch.testing.assert_close(s, scale)
    torch.testing.assert_close(Rf, R)
    torch.testing.assert_close(o, offset)
    torch.testing.assert_close(torch.linalg.det(Rf), torch.ones(2, dtype=torch.float64))


def test_eq4_recovers_known_pose_and_shape(model):
    """Noise-free landmarks of a face inside the fitted modes: Eq. (4) with lambda = 0 returns
    the coefficients, the pose and so the whole mesh."""
    a_id, a_exp, R, scale, offset, X, L = _known(model)
    fit = fit_template(model, L, n_id=8, n_exp=4, lam=0.0)
    torch.testing.assert_close(fit.id.double(), a_id, atol=1e-4, rtol=0)
    torch.testing.assert_close(fit.exp.double(), a_exp, atol=1e-4, rtol=0)
    torch.testing.assert_close(fit.scale.double(), scale, atol=1e-6, rtol=0)
    torch.testing.assert_close(fit.rotation.double(), R, atol=1e-5, rtol=0)
    torch.testing.assert_close(fit.offset.double(), offset, atol=1e-4, rtol=0)
    assert float((fit.verts.double() - X).norm(dim=-1).max()) < 1e-3  # mm
    assert float(fit.residual.max()) < 1e-5  # pixels


def test_the_alternation_alone_stalls_and_the_joint_steps_finish(model):
    """The measurement behind ``polish``: rotation and shape trade off in a valley where the
    closed-form alternation crawls; joint Levenberg-Marquardt steps reach the exact fit."""
    *_, L = _known(model)
    slow = fit_template(model, L, n_id=8, n_exp=4, lam=0.0, iterations=60, polish=0)
    assert float(slow.residual.max()) > 1e-2  # pixels, after 60 alternations
    fast = fit_template(model, L, n_id=8, n_exp=4, lam=0.0, iterations=10, polish=10)
    assert float(fast.residual.max()) < 1e-5


def test_eq4_ridge_shrinks_and_iterations_do_not_increase_the_energy(model):
    *_, L = _known(model)
    L = L + 0.5 * torch.randn(L.shape, generator=torch.Generator().manual_seed(1),
                              dtype=L.dtype)
    free = fit_template(model, L, n_id=20, n_exp=10, lam=0.0)
    ridge = fit_template(model, L, n_id=20, n_exp=10, lam=50.0)
    assert float(ridge.id.norm()) < float(free.id.norm())
    assert float(ridge.residual.mean()) >= float(free.residual.mean()) - 1e-6
    res = [float(fit_template(model, L, n_id=20, n_exp=10, lam=0.0, iterations=i, polish=0)
                 .residual.mean()) for i in (1, 3, 10)]
    assert res[0] >= res[1] - 1e-4 and res[1] >= res[2] - 1e-4


def test_template_projects_onto_the_landmarks(model):
    *_, L = _known(model)
    fit = fit_template(model, L.float(), n_id=8, n_exp=4, lam=0.0)
    screen = project_template(model, fit)
    assert screen.shape == (2, model.num_vertices, 3)
    assert float((screen[:, model.landmarks, :2] - L.float()).norm(dim=-1).max()) < 1e-2


def test_colours_bilinear_and_zero_when_hidden():
    image = torch.zeros(1, 4, 4, 3)
    image[0, 1, 2] = torch.tensor([0.2, 0.4, 0.6])  # pixel row 1, column 2: centre (2.5, 1.5)
    screen = torch.tensor([[[2.5, 1.5, 1.0], [3.0, 1.5, 1.0], [2.5, 1.5, 1.0]]])
    visible = torch.tensor([[True, True, False]])
    faces = torch.tensor([[0, 1, 2]])
    colors, vis = sample_vertex_colors(image, screen, faces, visible=visible)
    torch.testing.assert_close(colors[0, 0], torch.tensor([0.2, 0.4, 0.6]))
    torch.testing.assert_close(colors[0, 1], torch.tensor([0.1, 0.2, 0.3]))  # half-way
    assert float(colors[0, 2].abs().sum()) == 0.0 and not bool(vis[0, 2])


def test_colours_use_visibility_by_default(model):
    *_, L = _known(model)
    fit = fit_template(model, L.float(), n_id=8, n_exp=4, lam=0.0)
    screen = project_template(model, fit)
    image = torch.full((2, 64, 64, 3), 0.5)
    colors, vis = sample_vertex_colors(image, screen, model.faces)
    assert 0.3 < float(vis.float().mean()) < 1.0
    torch.testing.assert_close(colors[vis], torch.full_like(colors[vis], 0.5))
    assert float(colors[~vis].abs().max()) == 0.0


def test_validation(model):
    L = torch.zeros(1, 68, 2)
    with pytest.raises(ValueError, match="landmarks_2d"):
        fit_template(model, torch.zeros(1, 60, 2))
    with pytest.raises(ValueError, match="lam"):
        fit_template(model, L, lam=-1.0)
    with pytest.raises(ValueError, match="polish"):
        fit_template(model, L, polish=-1)
    with pytest.raises(ValueError, match="sigma_l"):
        fit_template(model, L, sigma_l=0.0)
    with pytest.raises(ValueError, match="n_id"):
        fit_template(model, L, n_id=model.n_id + 1)
    with pytest.raises(ValueError, match="landmarks_2d"):
        fit_template(model, torch.full((1, 68, 2), math.nan))
    with pytest.raises(TypeError, match="model"):
        fit_template("synthetic", L)
    with pytest.raises(ValueError, match="points3d"):
        scaled_orthographic_pose(torch.zeros(1, 3, 3), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="screen_verts"):
        sample_vertex_colors(torch.zeros(1, 4, 4, 3), torch.zeros(2, 3, 3),
                             torch.tensor([[0, 1, 2]]))
