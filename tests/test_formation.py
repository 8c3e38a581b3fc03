"""form() and render(): the one image-formation chain (MoFA Sec. 5), FaceParams, render_preview."""

import pytest
import torch

import facelab as fl
from facelab import cameras
from facelab.rotations import head_rotation


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", resolution="teaching", version=1)


def _setup(model, batch=2, dtype=torch.float32, size=64, seed=0, jaw=False):
    g = torch.Generator().manual_seed(seed)
    camera, t = fl.default_camera(batch, size, size, dtype=dtype)
    params = fl.FaceParams(
        id=torch.randn(batch, model.n_id, generator=g).to(dtype),
        exp=0.5 * torch.randn(batch, model.n_exp, generator=g).to(dtype),
        albedo=torch.randn(batch, model.n_albedo, generator=g).to(dtype),
        rotation=head_rotation((0.3 * torch.randn(batch, 3, generator=g)).to(dtype)),
        translation=t, gamma=fl.random_sh(batch, generator=g, front=(0, 0, -1)).to(dtype),
        jaw=torch.tensor([[0.15, 0.0, 0.0]] * batch, dtype=dtype) if jaw else None)
    return params, camera


def _explicit_chain(model, p, camera, size, background):
    """The chain written out with the public low-level ops, as render_face did before form()
    existed (kept here as the definition form() must reproduce bit for bit)."""
    verts = model.shape(p.id, p.exp)
    if p.jaw is not None:
        verts = model.pose_jaw(verts, p.jaw)
    verts_cam = cameras.model_to_camera(verts, p.rotation, p.translation)
    screen = cameras.screen_from_camera(verts_cam, camera.focal, camera.principal)
    normals = fl.vertex_normals(verts_cam, model.faces)
    albedo = model.albedo(p.albedo)
    colors = fl.sh_shade(albedo, normals, p.gamma)
    image, mask = fl.render_mesh(screen, model.faces, colors, size, size, background=background,
                                 perspective_correct=True)
    return dict(verts=verts, verts_cam=verts_cam, screen_verts=screen, normals=normals,
                albedo=albedo, colors=colors, image=image, mask=mask)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("jaw", [False, True])
def test_form_and_render_reproduce_the_explicit_chain_bit_for_bit(model, seed, jaw):
    p, camera = _setup(model, batch=3, seed=seed, jaw=jaw)
    bg = torch.tensor([0.2, 0.3, 0.4])
    f = fl.form(model, p, camera)
    image, mask = fl.render(f, 64, 64, background=bg)
    ref = _explicit_chain(model, p, camera, 64, bg)
    got = dict(f._asdict(), image=image, mask=mask)
    for key, want in ref.items():
        assert torch.equal(got[key], want), key
    assert torch.equal(f.landmarks_2d, ref["screen_verts"][:, model.landmarks, :2])


def test_shapes_and_centred_face(model):
    p, camera = _setup(model)
    f = fl.form(model, p, camera)
    image, mask = fl.render(f, 64, 64)
    assert image.shape == (2, 64, 64, 3) and mask.shape == (2, 64, 64)
    assert f.verts.shape == f.verts_cam.shape == f.screen_verts.shape == (2, model.num_vertices, 3)
    assert f.landmarks_2d.shape == (2, 68, 2) and f.perspective_correct
    assert 0.15 < mask.float().mean() < 0.8
    ys, xs = torch.nonzero(mask[0], as_tuple=True)
    assert abs(xs.float().mean() - 32) < 8 and abs(ys.float().mean() - 32) < 8


def test_face_is_upright_and_facing_the_camera(model):
    p, camera = _setup(model)
    f = fl.form(model, p.replace(rotation=None), camera)
    lm = f.screen_verts[0, model.landmarks]  # (68, 3)
    assert lm[8, 1] > lm[27, 1]  # chin below the nose bridge (y down)
    assert lm[30, 2] < lm[[0, 16], 2].mean()  # nose tip nearer to the camera
    assert f.normals[0, model.landmarks[30], 2] < 0  # normal points back at the camera


def test_differentiable_in_every_block(model):
    p, camera = _setup(model, batch=1, dtype=torch.float64, jaw=True)
    leaves = {k: getattr(p, k).clone().requires_grad_(True)
              for k in ("id", "exp", "albedo", "translation", "gamma", "jaw")}
    offsets = torch.zeros(1, model.num_vertices, 3, dtype=torch.float64, requires_grad=True)
    q = p.replace(vertex_offsets=offsets, **leaves)
    image, _ = fl.render(fl.form(model, q, camera), 64, 64)
    image.sum().backward()
    for name, leaf in {**leaves, "vertex_offsets": offsets}.items():
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), name
        assert leaf.grad.abs().sum() > 0, name


def test_vertex_subset_matches_the_full_formation(model):
    p, camera = _setup(model, jaw=True)
    full = fl.form(model, p, camera)
    sub = fl.form(model, p, camera, vertex_subset=model.landmarks)
    torch.testing.assert_close(sub.landmarks_2d, full.landmarks_2d, rtol=0, atol=1e-3)
    torch.testing.assert_close(sub.verts, full.verts[:, model.landmarks], rtol=0, atol=1e-4)
    assert sub.normals is None and sub.colors is None and sub.faces is None
    named = fl.form(model, p, camera, vertex_subset="landmarks")  # one-hot: the same rows
    assert torch.equal(named.landmarks_2d, sub.landmarks_2d)


def test_landmark_embedding_formation():
    """With a landmark embedding (version 2), ``landmarks_2d`` is the projection of the
    embedded 3-D points, and ``vertex_subset="landmarks"`` forms only their support."""
    model = fl.load_model("synthetic", "teaching", version=2)
    assert model.has_landmark_embedding
    p, camera = _setup(model, jaw=True)
    full = fl.form(model, p, camera)
    sub = fl.form(model, p, camera, vertex_subset="landmarks")
    torch.testing.assert_close(sub.landmarks_2d, full.landmarks_2d, rtol=0, atol=1e-3)
    torch.testing.assert_close(sub.verts, model.landmark_points(full.verts), rtol=0, atol=1e-3)
    pts = camera._project(model.landmark_points(full.verts_cam))[..., :2]
    torch.testing.assert_close(full.landmarks_2d, pts)
    with pytest.raises(ValueError, match="vertex_subset"):
        fl.form(model, p, camera, vertex_subset="eyes")
    with pytest.raises(ValueError, match="re-shaded"):
        fl.form(model, p, camera, geometry=full, vertex_subset="landmarks")
    with pytest.raises(ValueError, match="vertex_subset"):
        fl.render(sub, 64, 64)
    with pytest.raises(ValueError, match="vertex_subset"):
        fl.form(model, p, camera, vertex_subset=torch.tensor([0, model.num_vertices]))


def test_offsets_move_geometry_and_albedo(model):
    p, camera = _setup(model, batch=1)
    base = fl.form(model, p, camera)
    shift = torch.zeros(1, model.num_vertices, 3)
    shift[..., 0] = 10.0  # 10 mm to the model's right
    moved = fl.form(model, p.replace(vertex_offsets=shift, rotation=None), camera)
    ref = fl.form(model, p.replace(rotation=None), camera)
    torch.testing.assert_close(moved.verts, ref.verts + shift)
    tint = fl.form(model, p.replace(albedo_offsets=torch.full((1, model.num_vertices, 3), 0.1)),
                   camera)
    torch.testing.assert_close(tint.albedo, base.albedo + 0.1)


@pytest.mark.parametrize("camera_kind", ["scaled_orthographic", "weak_perspective"])
def test_affine_cameras_render_the_face(model, camera_kind):
    p = fl.FaceParams(id=torch.zeros(1, 5))
    if camera_kind == "scaled_orthographic":
        camera = cameras.ScaledOrthographic(torch.tensor([0.25]), torch.tensor([[32.0, 32.0]]))
    else:
        camera = cameras.WeakPerspective(torch.tensor([0.008]), torch.zeros(1, 2), 64, 64)
    f = fl.form(model, p, camera)
    assert not f.perspective_correct
    _, mask = fl.render(f, 64, 64)
    assert 0.1 < mask.float().mean() < 0.9
    lm = f.landmarks_2d[0]
    assert lm[8, 1] > lm[27, 1]  # upright
    assert f.screen_verts[0, model.landmarks[30], 2] < f.screen_verts[0, model.landmarks[0], 2]


def test_background_fills_uncovered_pixels(model):
    p, camera = _setup(model)
    image, mask = fl.render(fl.form(model, p, camera), 64, 64,
                            background=torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(image[~mask], torch.tensor([0.1, 0.2, 0.3]).expand(
        int((~mask).sum()), 3))


def test_bad_inputs(model):
    p, camera = _setup(model)
    with pytest.raises(TypeError, match="params: expected a FaceParams"):
        fl.form(model, {"id": p.id}, camera)
    with pytest.raises(TypeError, match="camera: expected one of Pinhole"):
        fl.form(model, p, (camera.focal, camera.principal))
    with pytest.raises(ValueError, match="params.id: expected \\(B, K\\) with K <= 80"):
        fl.form(model, p.replace(id=torch.zeros(2, 81)), camera)
    with pytest.raises(ValueError, match="camera: expected batch size 1 or B=2"):
        fl.form(model, p, cameras.Pinhole.from_fov(64, 64, batch=3))
    with pytest.raises(ValueError, match="params.vertex_offsets"):
        fl.form(model, p.replace(vertex_offsets=torch.zeros(2, 5, 3)), camera)
    with pytest.raises(TypeError, match="formation: expected a Formation"):
        fl.render((p, camera), 64, 64)
    nan_gamma = p.gamma.clone()
    nan_gamma[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="gamma: expected finite"):
        p.replace(gamma=nan_gamma)


def test_model_without_jaw_refuses_a_jaw_pose(model):
    import dataclasses

    no_jaw = dataclasses.replace(model, jaw_joint=None, jaw_weights=None, skeleton=None)
    p, camera = _setup(model, jaw=True)
    with pytest.raises(ValueError, match="params.jaw: model .* has no joint jaw"):
        fl.form(no_jaw, p, camera)


def test_float64_and_model_dtype_follow_the_params(model):
    p, camera = _setup(model, dtype=torch.float64)
    f = fl.form(model, p, camera)
    assert f.colors.dtype == torch.float64 and f.screen_verts.dtype == torch.float64


def test_render_preview_matches_form_and_render(model):
    a = torch.zeros(model.n_id)
    a[0] = 2.0
    img = fl.render_preview(model, id_coeffs=a, angles=(0.0, 0.3, 0.0), size=48,
                            background=(0.0, 0.0, 0.0))
    assert img.shape == (48, 48, 3) and not img.requires_grad
    camera, t = fl.default_camera(1, 48, 48)
    gamma = fl.sh_from_direction(torch.tensor([0.3, -0.3, -1.0]), 0.5, 0.6)
    p = fl.FaceParams(id=a[None], rotation=head_rotation(torch.tensor([[0.0, 0.3, 0.0]])),
                      translation=t, gamma=gamma)
    ref, _ = fl.render(fl.form(model, p, camera), 48, 48, background=torch.zeros(3),
                       antialias=fl.formation.PICTURE_ANTIALIAS)
    torch.testing.assert_close(img, ref[0])
    assert not torch.allclose(img, fl.render_preview(model, size=48, background=(0.0, 0.0, 0.0)))


def test_render_preview_bad_inputs(model):
    with pytest.raises(ValueError, match="id_coeffs: expected \\(K,\\)"):
        fl.render_preview(model, id_coeffs=torch.zeros(2, 80))
    with pytest.raises(ValueError, match="angles"):
        fl.render_preview(model, angles=(0.0, 0.1))
    with pytest.raises(ValueError, match="size"):
        fl.render_preview(model, size=2)


def test_default_camera(model):
    camera, t = fl.default_camera(3, 64, 80, distance=900.0)
    assert isinstance(camera, cameras.Pinhole) and camera.batch == 3
    torch.testing.assert_close(camera.principal, torch.tensor([[40.0, 32.0]] * 3))
    torch.testing.assert_close(t, torch.tensor([[0.0, 0.0, 900.0]] * 3))
    with pytest.raises(ValueError, match="distance"):
        fl.default_camera(1, 64, 64, distance=-1.0)


def test_geometry_reuse_reforms_only_reflectance_and_shading(model):
    p, camera = _setup(model, jaw=True)
    full = fl.form(model, p, camera)
    relit = p.replace(albedo=p.albedo * 0.5, gamma=fl.random_sh(2, front=(0, 0, -1)))
    want = fl.form(model, relit, camera)
    got = fl.form(model, relit, camera, geometry=full)
    for name in ("verts", "verts_cam", "screen_verts", "normals", "albedo", "colors"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    gamma = relit.gamma.clone().requires_grad_(True)
    fl.form(model, relit.replace(gamma=gamma), camera, geometry=full).colors.sum().backward()
    assert gamma.grad is not None and gamma.grad.abs().sum() > 0
    with pytest.raises(TypeError, match="geometry: expected a Formation of the whole mesh"):
        fl.form(model, p, camera, geometry=fl.form(model, p, camera, vertex_subset=torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="geometry.normals"):
        fl.form(model, p[0], camera[0], geometry=full)


@pytest.mark.parametrize("factor", [2, 3])
def test_antialias_is_the_box_filtered_supersampled_render(model, factor):
    p, camera = _setup(model, batch=2, dtype=torch.float64)
    f = fl.form(model, p, camera)
    bg = torch.rand(2, 40, 48, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    image, mask = fl.render(f, 40, 48, background=bg, antialias=factor)
    # the same camera with pixels `factor` times smaller, then each block averaged
    big_cam = fl.cameras.Pinhole(camera.focal * factor, camera.principal * factor)
    big_bg = bg.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    big, big_mask = fl.render(fl.form(model, p, big_cam), 40 * factor, 48 * factor,
                              background=big_bg)
    want = big.reshape(2, 40, factor, 48, factor, 3).mean((2, 4))
    torch.testing.assert_close(image, want, rtol=0, atol=1e-12)
    assert torch.equal(mask, big_mask.reshape(2, 40, factor, 48, factor).any(4).any(2))
    # far from the face the background comes back unchanged; on the silhouette it is blended
    torch.testing.assert_close(image[~mask], bg[~mask])
    plain, plain_mask = fl.render(f, 40, 48, background=bg)
    edge = mask & ~plain_mask | (plain_mask & (image - plain).abs().amax(-1).gt(1e-3))
    assert edge.sum() > 10  # fractional coverage along the outline


def test_antialias_is_differentiable_and_validated(model):
    p, camera = _setup(model, batch=1, dtype=torch.float64)
    gamma = p.gamma.clone().requires_grad_(True)
    image, _ = fl.render(fl.form(model, p.replace(gamma=gamma), camera), 32, 32, antialias=2)
    image.sum().backward()
    assert gamma.grad.abs().sum() > 0
    f = fl.form(model, p, camera)
    with pytest.raises(ValueError, match="antialias: expected a factor in \\[1, 8\\]"):
        fl.render(f, 32, 32, antialias=9)
    with pytest.raises(ValueError, match="antialias"):
        fl.render(f, 32, 32, antialias=0)
    with pytest.raises(ValueError, match="background: expected \\(B, H, W, 3\\)"):
        fl.render(f, 32, 32, antialias=2, background=torch.zeros(1, 16, 16, 3,
                                                                 dtype=torch.float64))


def test_shade_false_forms_everything_but_the_colours(model):
    p, camera = _setup(model)
    full = fl.form(model, p, camera)
    bare = fl.form(model, p, camera, shade=False)
    assert bare.colors is None
    for name in ("verts", "screen_verts", "normals", "albedo"):
        assert torch.equal(getattr(bare, name), getattr(full, name)), name
    with pytest.raises(ValueError, match="shade=False; pass colors="):
        fl.render(bare, 32, 32)
    image, _ = fl.render(bare, 32, 32, colors=full.colors)
    assert torch.equal(image, fl.render(full, 32, 32)[0])
    again = fl.form(model, p, camera, geometry=full, shade=False)
    assert again.colors is None and torch.equal(again.albedo, full.albedo)


def test_vertex_subset_cache_sees_edits_the_version_counter_misses():
    """The subset rows are cached by content: an in-place edit through a NumPy view (which
    torch's version counter does not see) must form the new subset, not the cached old one."""
    model = fl.load_model("synthetic", "teaching", version=1)
    params = fl.FaceParams(id=torch.randn(1, model.n_id), exp=torch.randn(1, model.n_exp))
    camera, t = fl.default_camera(1, 64, 64)
    params = fl.FaceParams(id=params.id, exp=params.exp, translation=t)
    rows = torch.tensor([0, 5, 9], dtype=torch.int64)
    first = fl.form(model, params, camera, vertex_subset=rows).verts.clone()
    rows.numpy()[1] = 7  # version counter unchanged
    second = fl.form(model, params, camera, vertex_subset=rows).verts
    full = fl.form(model, params, camera).verts
    torch.testing.assert_close(second, full[:, [0, 7, 9]])
    assert not torch.equal(first, second)
