"""render_face: the shared image-formation chain (MoFA Sec. 5)."""

import pytest
import torch

import facelab as fl


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", resolution="teaching")


def _params(model, batch=2, dtype=torch.float32, size=64):
    g = torch.Generator().manual_seed(0)
    focal, principal, t = fl.default_camera(batch, size, size, dtype=dtype)
    return dict(
        id_coeffs=torch.randn(batch, model.n_id, generator=g).to(dtype),
        exp_coeffs=0.5 * torch.randn(batch, model.n_exp, generator=g).to(dtype),
        albedo_coeffs=torch.randn(batch, model.n_albedo, generator=g).to(dtype),
        rotation=fl.head_rotation(torch.tensor([[0.0, 0.3, 0.0]] * batch, dtype=dtype)),
        translation=t, gamma=fl.random_sh(batch, generator=g, front=(0, 0, -1)).to(dtype),
        focal=focal, principal=principal, height=size, width=size,
    )


def test_shapes_and_centred_face(model):
    r = fl.render_face(model, **_params(model))
    assert r.image.shape == (2, 64, 64, 3) and r.mask.shape == (2, 64, 64)
    assert r.verts.shape == r.verts_cam.shape == r.screen_verts.shape == (2, model.num_vertices, 3)
    cover = r.mask.float().mean()
    assert 0.15 < cover < 0.8
    ys, xs = torch.nonzero(r.mask[0], as_tuple=True)
    assert abs(xs.float().mean() - 32) < 8 and abs(ys.float().mean() - 32) < 8


def test_face_is_upright_and_facing_the_camera(model):
    r = fl.render_face(model, **_params(model))
    lm = r.screen_verts[0, model.landmarks]  # (68, 3)
    assert lm[8, 1] > lm[27, 1]  # chin below the nose bridge (y down)
    nose_depth, ear_depth = lm[30, 2], lm[[0, 16], 2].mean()
    assert nose_depth < ear_depth  # nose tip nearer to the camera
    facing = r.normals[0, model.landmarks[30], 2]
    assert facing < 0  # camera-space normal points back at the camera (-z)


def test_differentiable_in_coefficients_and_light(model):
    p = _params(model, batch=1, dtype=torch.float64)
    for key in ("id_coeffs", "albedo_coeffs", "gamma"):
        p[key] = p[key].clone().requires_grad_(True)
    r = fl.render_face(model, **p)
    r.image.sum().backward()
    for key in ("id_coeffs", "albedo_coeffs", "gamma"):
        assert p[key].grad is not None and torch.isfinite(p[key].grad).all()
        assert p[key].grad.abs().sum() > 0


def test_background_fills_uncovered_pixels(model):
    p = _params(model)
    r = fl.render_face(model, **p, background=torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(r.image[~r.mask], torch.tensor([0.1, 0.2, 0.3]).expand(
        int((~r.mask).sum()), 3))


def test_bad_inputs(model):
    p = _params(model)
    with pytest.raises(ValueError, match="gamma: expected \\(B, 9, 3\\)"):
        fl.render_face(model, **{**p, "gamma": torch.zeros(2, 27)})
    with pytest.raises(ValueError, match="id_coeffs"):
        fl.render_face(model, **{**p, "id_coeffs": torch.zeros(2, 81)})
    nan_gamma = p["gamma"].clone()
    nan_gamma[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="gamma: expected finite"):
        fl.render_face(model, **{**p, "gamma": nan_gamma})


def test_render_preview_matches_render_face(model):
    a = torch.zeros(model.n_id)
    a[0] = 2.0
    img = fl.render_preview(model, id_coeffs=a, angles=(0.0, 0.3, 0.0), size=48,
                            background=(0.0, 0.0, 0.0))
    assert img.shape == (48, 48, 3) and not img.requires_grad
    focal, principal, t = fl.default_camera(1, 48, 48)
    gamma = fl.sh_from_direction(torch.tensor([0.3, -0.3, -1.0]), 0.5, 0.6)
    ref = fl.render_face(model, a[None], None, torch.zeros(1, model.n_albedo),
                         fl.head_rotation(torch.tensor([[0.0, 0.3, 0.0]])), t, gamma, focal,
                         principal, 48, 48, background=torch.zeros(3))
    torch.testing.assert_close(img, ref.image[0])
    assert not torch.allclose(img, fl.render_preview(model, size=48, background=(0.0, 0.0, 0.0)))


def test_render_preview_bad_inputs(model):
    with pytest.raises(ValueError, match="id_coeffs: expected \\(K,\\)"):
        fl.render_preview(model, id_coeffs=torch.zeros(2, 80))
    with pytest.raises(ValueError, match="angles"):
        fl.render_preview(model, angles=(0.0, 0.1))
    with pytest.raises(ValueError, match="size"):
        fl.render_preview(model, size=2)
