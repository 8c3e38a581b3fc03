"""Tests of facelab.fitting: crop, closed-form pose, fit_image (synthetic and a real photo)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import facelab as fl
from facelab.data.photos import sample_landmarks, sample_photo
from facelab.fitting import (
    FitResult,
    FitSettings,
    crop_image,
    face_box,
    fit_image,
    from_crop,
    pose_from_landmarks,
    to_crop,
)
from facelab.fitting.views import (
    PANEL_NAMES,
    render_mesh_overlay,
    render_overlay,
    render_panels,
    side_by_side,
)
from facelab.formation import default_camera
from facelab.image_io import as_rgb_image
from facelab.lighting import random_sh
from facelab.model.registry import load_model
from facelab.progress import History
from facelab.rotations import head_rotation

FAST = FitSettings(steps_pose=20, steps_shape=50, steps_color=30)


@pytest.fixture(scope="module")
def model():
    return load_model("synthetic", resolution="teaching", version=1)


@pytest.fixture(scope="module")
def synthetic(model):
    """A 256² render with known pose (yaw 23°, pitch 8.6°, roll −5.7°) and its GT landmarks."""
    g = torch.Generator().manual_seed(3)
    size = 256
    id_c = torch.randn(1, model.n_id, generator=g)
    exp_c = 0.5 * torch.randn(1, model.n_exp, generator=g)
    alb_c = 0.8 * torch.randn(1, model.n_albedo, generator=g)
    angles = torch.tensor([[0.15, 0.4, -0.1]])
    camera, trans = default_camera(1, size, size)
    trans[0, 0], trans[0, 1] = 15.0, -10.0
    gamma = random_sh(1, generator=g, front=(0.0, 0.0, -1.0))
    params = fl.FaceParams(id=id_c, exp=exp_c, albedo=alb_c, rotation=head_rotation(angles),
                           translation=trans, gamma=gamma)
    f = fl.form(model, params, camera)
    image, _ = fl.render(f, size, size, background=torch.tensor([0.3, 0.4, 0.5]))
    return {"image": image[0], "landmarks": f.landmarks_2d[0], "angles": angles[0]}


@pytest.fixture(scope="module")
def astronaut_fit(model):
    history = History()
    image = sample_photo("astronaut")
    result = fit_image(image, model, sample_landmarks("astronaut"), callback=history)
    return image, result, history


# ------------------------------------------------------------------------------- crop
def test_face_box_square_and_contains_landmarks():
    lm = sample_landmarks("astronaut")
    box = face_box(lm)
    assert box.shape == (4,)
    assert math.isclose(float(box[2] - box[0]), float(box[3] - box[1]), rel_tol=1e-6)
    assert float(box[0]) < float(lm[:, 0].min()) and float(box[2]) > float(lm[:, 0].max())
    assert float(box[1]) < float(lm[:, 1].min()) and float(box[3]) > float(lm[:, 1].max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_crop_roundtrip_and_corners(dtype):
    box = torch.tensor([10.0, 20.0, 110.0, 120.0], dtype=dtype)
    pts = torch.tensor([[10.0, 20.0], [110.0, 120.0], [60.0, 70.0]], dtype=dtype)
    c = to_crop(pts, box, 200)
    assert c.dtype == dtype
    torch.testing.assert_close(c, torch.tensor([[0.0, 0.0], [200.0, 200.0], [100.0, 100.0]],
                                               dtype=dtype))
    torch.testing.assert_close(from_crop(c, box, 200), pts)


def test_crop_image_identity_and_values():
    img = torch.rand(40, 40, 3, dtype=torch.float64)
    out = crop_image(img, torch.tensor([0.0, 0.0, 40.0, 40.0], dtype=torch.float64), 40)
    assert out.shape == (40, 40, 3)
    torch.testing.assert_close(out, img)
    # a 2x downsample of a box averages 2x2 blocks: a linear ramp stays a ramp
    ramp = torch.arange(64, dtype=torch.float64).repeat(64, 1)[..., None].expand(64, 64, 3) / 64
    half = crop_image(ramp.contiguous(), torch.tensor([0.0, 0.0, 64.0, 64.0],
                                                      dtype=torch.float64), 32)
    torch.testing.assert_close(half[0, :, 0], (torch.arange(32, dtype=torch.float64) * 2 + 0.5)
                               / 64)


def test_crop_image_gradcheck():
    img = torch.rand(6, 6, 3, dtype=torch.float64, requires_grad=True)
    box = torch.tensor([0.5, 0.5, 5.0, 5.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: crop_image(x, box, 4), (img,))


def test_crop_bad_input():
    with pytest.raises(ValueError, match="box"):
        to_crop(torch.zeros(3, 2), torch.tensor([5.0, 5.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="points"):
        to_crop(torch.zeros(3, 3), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="landmarks"):
        face_box(torch.full((68, 2), float("nan")))
    with pytest.raises(ValueError, match="image"):
        crop_image(torch.zeros(8, 8), torch.tensor([0.0, 0.0, 8.0, 8.0]))


# -------------------------------------------------------------------------- pose init
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pose_from_landmarks_recovers_rotation(model, dtype):
    angles = torch.tensor([[0.1, -0.5, 0.2]], dtype=torch.float64)
    R = head_rotation(angles)
    camera, t = default_camera(1, 224, 224, dtype=torch.float64)
    focal, principal = camera.focal, camera.principal
    X = model.mean_shape[model.landmarks].to(torch.float64)  # (68, 3)
    from facelab.cameras import model_to_camera, project_perspective

    x = project_perspective(model_to_camera(X[None], R, t), focal, principal)[0]
    R_est, t_est = pose_from_landmarks(X.to(dtype), x.to(dtype), focal[0].to(dtype),
                                       principal[0].to(dtype))
    assert R_est.dtype == dtype and R_est.shape == (3, 3) and t_est.shape == (3,)
    angle = torch.arccos(((R_est.double().T @ R[0]).trace() - 1) / 2).clamp(-1, 1)
    assert math.degrees(float(angle)) < 3.0  # affine approximation of a 16° pinhole
    assert abs(float(t_est[2]) - 800.0) < 40.0
    torch.testing.assert_close(R_est.double() @ R_est.double().T, torch.eye(3, dtype=torch.float64))


# -------------------------------------------------------------------- fit: synthetic
def test_fit_synthetic_recovers_pose_and_landmarks(model, synthetic):
    history = History()
    res = fit_image(synthetic["image"], model, synthetic["landmarks"], callback=history)
    assert isinstance(res, FitResult)
    # bound: 1% of the landmark box (observed ~0.4%); GT landmarks have no noise
    assert res.nme_final < 0.01
    assert res.nme_final < res.nme_init
    err = torch.rad2deg((res.angles - synthetic["angles"]).abs())
    assert float(err[1]) < 4.0 and float(err[0]) < 4.0 and float(err[2]) < 4.0  # yaw, pitch, roll
    settings = FitSettings()
    assert len(history) == (settings.steps_pose + settings.steps_shape + settings.steps_color
                            + settings.refine.steps)
    assert history.ended


def test_fit_result_shapes(model, astronaut_fit):
    _, res, _ = astronaut_fit
    V = model.num_vertices
    assert res.id_coeffs.shape == (model.n_id,) and res.exp_coeffs.shape == (model.n_exp,)
    assert res.albedo_coeffs.shape == (model.n_albedo,) and res.gamma.shape == (9, 3)
    assert res.rotation.shape == (3, 3) and res.translation.shape == (3,)
    for name in ("verts", "verts_cam", "screen_verts", "albedo", "colors"):
        assert getattr(res, name).shape == (V, 3), name
    assert res.visible.shape == (V,) and res.visible.dtype == torch.bool
    assert res.landmarks.shape == (68, 2) and res.image_size == (512, 512)
    params = res.parameters()
    assert all(isinstance(v, np.ndarray) for v in params.values())
    assert "FitResult(" in repr(res)


# ----------------------------------------------------------------- fit: a real photo
def test_fit_astronaut_losses_decrease(astronaut_fit):
    _, res, history = astronaut_fit
    s = FitSettings()
    n_land = s.steps_pose + s.steps_shape
    land = res.history["land"]  # pose, shape, then the refinement stage
    photo = res.history["photo"]  # colour, then the refinement stage
    assert len(land) == n_land + s.refine.steps and len(photo) == s.steps_color + s.refine.steps
    # pose stage then shape stage: the landmark loss falls by far, and "monotonically enough":
    # every 10-step window ends no higher than 5% above where it started
    assert land[n_land - 1] < 0.25 * land[0]
    assert all(land[i + 10] <= 1.05 * land[i] for i in range(n_land - 10))
    photo_color = photo[: s.steps_color]
    assert photo_color[-1] < 0.6 * photo_color[0]
    assert all(photo_color[i + 10] <= 1.05 * photo_color[i] for i in range(s.steps_color - 10))
    # the refinement (all blocks on the full energy) lowers E_photo further and keeps the
    # landmarks where they were (within 10 %)
    assert photo[-1] < photo[s.steps_color - 1]
    assert land[-1] < 1.1 * land[n_land - 1]
    assert res.nme_final < res.nme_init and res.nme_final < 0.04
    assert set(history.losses) == {"land", "reg", "photo"}


def test_fit_astronaut_plausible(astronaut_fit):
    _, res, _ = astronaut_fit
    for name in ("id_coeffs", "exp_coeffs", "albedo_coeffs", "gamma", "translation", "verts"):
        assert bool(torch.isfinite(getattr(res, name)).all()), name
    yaw, pitch = (math.degrees(float(a)) for a in (res.angles[1], res.angles[0]))
    assert abs(yaw) < 15 and abs(pitch) < 20  # a frontal portrait
    assert 300 < float(res.translation[2]) < 3000  # mm, a head-sized object at 16° FOV
    assert float(res.id_coeffs.norm()) < 3 * math.sqrt(40)  # within the prior's bulk
    assert 0.0 <= float(res.albedo.min()) and float(res.albedo.max()) <= 1.2
    assert int(res.visible.sum()) > 0.3 * res.visible.numel()


def test_views(astronaut_fit):
    image, res, _ = astronaut_fit
    over = render_overlay(res, image)
    assert over.shape == (512, 512, 3) and over.dtype == torch.float32
    inside = over[100:160, 190:260]
    assert float((inside - image[100:160, 190:260]).abs().mean()) > 0.01  # face drawn there
    torch.testing.assert_close(over[400:, :50], image[400:, :50])  # photo elsewhere
    panels = render_panels(res, image)
    assert tuple(panels) == PANEL_NAMES
    sbs = side_by_side(panels)
    assert sbs.shape == (512, 5 * 512, 3)
    with pytest.raises(ValueError, match="image"):
        render_overlay(res, image[:256])
    mesh = render_mesh_overlay(res, image)  # grey mesh blended in, landmarks drawn
    assert mesh.shape == (512, 512, 3)
    assert float((mesh[100:160, 190:260] - image[100:160, 190:260]).abs().mean()) > 0.01
    torch.testing.assert_close(mesh[400:, :50], image[400:, :50])
    no_marks = render_mesh_overlay(res, image, landmarks=False)
    assert float((mesh - no_marks).abs().amax(-1).gt(0.2).float().sum()) > 68  # the dots
    torch.testing.assert_close(render_panels(res, image, overlay=mesh)["overlay"], mesh)
    with pytest.raises(ValueError, match="alpha"):
        render_mesh_overlay(res, image, alpha=2.0)
    with pytest.raises(ValueError, match="light"):
        render_mesh_overlay(res, image, light="sun")
    # the face region only, by default: pixels the mesh covers outside the face mask keep the
    # photo; region="all" blends them too
    whole = render_mesh_overlay(res, image, landmarks=False, region="all")
    outside = (whole - image).abs().amax(-1) > 0.02
    outside &= (no_marks - image).abs().amax(-1) < 1e-6
    if not bool(res.model.face_mask.all()):
        assert int(outside.sum()) > 0
    with pytest.raises(ValueError, match="region"):
        render_mesh_overlay(res, image, region="head")
    with pytest.raises(ValueError, match="overlay"):
        render_panels(res, image, overlay=mesh[:10])


def test_warm_start_keeps_identity(model, astronaut_fit):
    image, res, _ = astronaut_fit
    res2 = fit_image(image, model, sample_landmarks("astronaut"), init=res, fit_identity=False,
                     settings=FAST, callback=History())
    torch.testing.assert_close(res2.id_coeffs, res.id_coeffs)
    torch.testing.assert_close(res2.albedo_coeffs, res.albedo_coeffs)
    assert res2.nme_init < 0.04  # warm start begins close


@pytest.mark.parametrize("as_type", ["uint8", "float64", "torch"])
def test_fit_accepts_input_types(model, as_type):
    img = sample_photo("grace_hopper", as_numpy=True)
    lm = sample_landmarks("grace_hopper", as_numpy=True)
    if as_type == "uint8":
        img = (img * 255).round().astype(np.uint8)
    elif as_type == "float64":
        img = img.astype(np.float64)
        lm = lm.astype(np.float64)
    else:
        img, lm = torch.from_numpy(img), torch.from_numpy(lm)
    settings = FitSettings(steps_pose=5, steps_shape=5, steps_color=5)
    res = fit_image(img, model, lm, settings=settings, callback=History())
    assert res.image_size == (600, 512) and torch.isfinite(res.verts).all()


# ------------------------------------------------------------------------- bad input
def _lm():
    return sample_landmarks("astronaut")


@pytest.mark.parametrize("image, match", [
    (np.zeros((64, 64), np.float32), "grayscale"),
    (np.zeros((64, 64, 1), np.float32), "grayscale"),
    (np.zeros((64, 64, 4), np.float32), "RGBA"),
    (np.zeros((16, 16, 3), np.float32), "too small"),
    (np.zeros((9000, 40, 3), np.uint8), "resize"),
    (np.full((64, 64, 3), np.nan, np.float32), "NaN"),
    (np.full((64, 64, 3), 2.0, np.float32), r"\[0, 1\]"),
    (np.zeros((64, 64, 3, 2), np.float32), "RGB"),
])
def test_bad_images(model, image, match):
    with pytest.raises(ValueError, match=match):
        fit_image(image, model, _lm(), settings=FAST, callback=History())


def test_bad_image_types(model):
    with pytest.raises(TypeError, match="image"):
        as_rgb_image(np.zeros((64, 64, 3), np.int32))
    with pytest.raises(TypeError, match="path"):
        fit_image("photo.jpg", model, _lm())
    with pytest.raises(TypeError, match="image"):
        fit_image([[0.0]], model, _lm())


def test_bad_landmarks_and_settings(model):
    img = sample_photo("astronaut")
    with pytest.raises(ValueError, match="landmarks"):
        fit_image(img, model, torch.zeros(5, 2), callback=History())
    with pytest.raises(ValueError, match="landmarks"):
        fit_image(img, model, torch.full((68, 2), float("nan")), callback=History())
    with pytest.raises(TypeError, match="landmarks"):
        fit_image(img, model, torch.zeros(68, 2, dtype=torch.int64), callback=History())
    with pytest.raises(ValueError, match="confidence"):
        fit_image(img, model, _lm(), confidence=-torch.ones(68), callback=History())
    with pytest.raises(TypeError, match="settings"):
        fit_image(img, model, _lm(), settings={"steps_pose": 1})
    with pytest.raises(ValueError, match="fit_identity"):
        fit_image(img, model, _lm(), fit_identity=False)
    with pytest.raises(TypeError, match="callback"):
        fit_image(img, model, _lm(), settings=FAST, callback=object())


def test_no_face_found_message(model, monkeypatch):
    """landmarks=None and the detector finds nothing -> a ValueError saying what to do."""
    import facelab.landmarks as fl_landmarks

    monkeypatch.setattr(fl_landmarks, "detect", lambda image: None)
    with pytest.raises(ValueError, match="no face found"):
        fit_image(np.full((64, 64, 3), 0.5, np.float32), model, callback=History())


# ------------------------------------------------------------------------------ video
def _clip(model, yaws=(-0.3, -0.1, 0.1, 0.3), size=192):
    """A synthetic clip: one identity turning its head; frames and GT landmarks."""
    g = torch.Generator().manual_seed(7)
    T = len(yaws)
    id_c = torch.randn(1, model.n_id, generator=g).expand(T, -1)
    alb_c = 0.8 * torch.randn(1, model.n_albedo, generator=g).expand(T, -1)
    exp_c = 0.3 * torch.randn(T, model.n_exp, generator=g)
    angles = torch.zeros(T, 3)
    angles[:, 1] = torch.tensor(yaws)
    camera, trans = default_camera(T, size, size)
    gamma = random_sh(1, generator=g, front=(0.0, 0.0, -1.0)).expand(T, -1, -1)
    params = fl.FaceParams(id=id_c, exp=exp_c, albedo=alb_c, rotation=head_rotation(angles),
                           translation=trans, gamma=gamma)
    f = fl.form(model, params, camera)
    image, _ = fl.render(f, size, size, background=torch.tensor([0.3, 0.4, 0.5]))
    return image, f.landmarks_2d, angles


def test_fit_video_shared_identity_tracks_yaw(model):
    from facelab.fitting import fit_video

    frames, lms, angles = _clip(model, yaws=(-0.3, 0.0, 0.3))
    history = History()
    results = fit_video(frames, model, lms, keyframes=1, callback=history,
                        settings=FitSettings(steps_pose=20, steps_shape=60, steps_color=10),
                        track_settings=FitSettings(steps_pose=10, steps_shape=30,
                                                   steps_color=10))
    assert len(results) == 3 and len(history) == 3
    for r in results[1:]:
        torch.testing.assert_close(r.id_coeffs, results[0].id_coeffs)
        torch.testing.assert_close(r.albedo_coeffs, results[0].albedo_coeffs)
    yaw_err = [abs(math.degrees(float(r.angles[1] - a[1]))) for r, a in zip(results, angles, strict=True)]
    assert max(yaw_err) < 5.0
    assert max(r.nme_final for r in results) < 0.015


def test_fit_video_bad_input(model):
    from facelab.fitting import fit_video

    frames, lms, _ = _clip(model, yaws=(0.0, 0.1))
    with pytest.raises(ValueError, match="landmarks"):
        fit_video(frames, model, lms[:1])
    with pytest.raises(ValueError, match="frames"):
        fit_video(frames[0], model, lms)
    with pytest.raises(ValueError, match="frames"):
        fit_video([], model, lms)


def test_adam_is_bit_identical_to_torch_optim_adam():
    """facelab.fitting.adam.Adam (no torch.optim, no torch._dynamo import) follows
    torch.optim.Adam's iterates exactly, with parameter groups and a skipped gradient."""
    from facelab.fitting.adam import Adam

    g = torch.Generator().manual_seed(0)
    start = [torch.randn(5, generator=g), torch.randn(3, 2, generator=g), torch.randn(4)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    ref = [torch.nn.Parameter(t.clone()) for t in start]
    opt_ours = Adam([{"params": ours[:2], "lr": 0.05}, {"params": ours[2:], "lr": 0.3}])
    opt_ref = torch.optim.Adam([{"params": ref[:2], "lr": 0.05}, {"params": ref[2:], "lr": 0.3}])
    for step in range(12):
        for params, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad()
            loss = (params[0] ** 2).sum() + torch.sin(params[1]).sum()
            if step % 3:  # the last parameter gets no gradient every third step
                loss = loss + (params[2] - 1.5).abs().sum()
            loss.backward()
            opt.step()
        for a, b in zip(ours, ref, strict=True):
            assert torch.equal(a, b), step


def test_adam_does_not_import_torch_dynamo():
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from facelab.fitting.adam import Adam\n"
            "p = torch.nn.Parameter(torch.ones(3)); opt = Adam([p], lr=0.1)\n"
            "p.sum().backward(); opt.step()\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_refinement_stage(model, synthetic):
    from facelab.fitting.refine import RefineSettings

    short = dict(steps_pose=5, steps_shape=15, steps_color=10)
    off = fit_image(synthetic["image"], model, synthetic["landmarks"], callback=History(),
                    settings=FitSettings(**short, refine=None))
    zero = fit_image(synthetic["image"], model, synthetic["landmarks"], callback=History(),
                     settings=FitSettings(**short, refine=RefineSettings(steps=0)))
    assert torch.equal(off.verts, zero.verts)  # no steps: exactly the three-stage fit
    on = fit_image(synthetic["image"], model, synthetic["landmarks"], callback=History(),
                   settings=FitSettings(**short, refine=RefineSettings(steps=15)))
    assert len(on.history["photo"]) == 10 + 15 and len(on.history["land"]) == 20 + 15
    assert on.losses["photo"] < off.losses["photo"]  # the pixels moved the geometry too
    assert not torch.equal(on.id_coeffs, off.id_coeffs)
    with pytest.raises(TypeError, match="settings.refine"):
        fit_image(synthetic["image"], model, synthetic["landmarks"],
                  settings=FitSettings(refine={"steps": 3}))


def test_first_fit_in_a_process_does_not_import_torch_dynamo():
    """A whole fit (every stage: pose, shape, colour with the fused photometric op) in a fresh
    process leaves torch._dynamo unimported (its import cost ~3 s of a first fit)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import facelab as fl\n"
            "from facelab.data.photos import sample_landmarks, sample_photo\n"
            "from facelab.fitting import FitSettings, fit_image\n"
            "from facelab.progress import History\n"
            "s = FitSettings(steps_pose=2, steps_shape=2, steps_color=2)\n"
            "fit_image(sample_photo('astronaut'), fl.load_model('synthetic', "
            "resolution='teaching'), sample_landmarks('astronaut'), settings=s, "
            "callback=History())\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=600).stdout.strip()
    assert out.splitlines()[-1] == "False"
