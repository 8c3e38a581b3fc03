"""SyntheticFaces: reproducible rendered faces whose ground truth matches the image."""

import pytest
import torch

import facelab as fl
from facelab.data import FaceSampling, SyntheticFaces, random_backgrounds


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", resolution="teaching", version=1)


@pytest.mark.parametrize("camera", ["perspective", "scaled_orthographic"])
def test_batch_shapes_and_item_consistency(model, camera):
    ds = SyntheticFaces(model, size=48, length=10, seed=3, camera=camera)
    b = ds.batch(2, 3)
    assert b["image"].shape == (3, 48, 48, 3) and b["image"].dtype == torch.float32
    assert b["landmarks_2d"].shape == (3, 68, 2) and b["visible"].shape == (3, model.num_vertices)
    assert ("T" in b) == (camera == "scaled_orthographic")
    assert ("focal" in b) == (camera == "perspective")
    assert 0 <= float(b["image"].min()) and float(b["image"].max()) <= 1
    item = ds[3]  # the same sample whatever the batch it is rendered in
    for key in ("image", "id", "landmarks_2d", "verts"):
        torch.testing.assert_close(item[key], b[key][1])


def test_same_seed_same_data_other_seed_other_data(model):
    a = SyntheticFaces(model, size=32, length=4, seed=1).batch(0, 2)
    b = SyntheticFaces(model, size=32, length=4, seed=1).batch(0, 2)
    c = SyntheticFaces(model, size=32, length=4, seed=2).batch(0, 2)
    torch.testing.assert_close(a["image"], b["image"])
    assert not torch.allclose(a["id"], c["id"])


@pytest.mark.parametrize("camera", ["perspective", "scaled_orthographic"])
def test_landmarks_land_on_the_rendered_face(model, camera):
    ds = SyntheticFaces(model, size=64, length=6, seed=0, camera=camera,
                        sampling=FaceSampling(yaw_deg=(-20, 20)))
    b = ds.batch(0, 6)
    lm = b["landmarks_2d"].floor().long().clamp(0, 63)  # (B, 68, 2) pixel containing the point
    rows = torch.arange(6)[:, None]
    inner = b["mask"][rows, lm[:, 17:, 1], lm[:, 17:, 0]]  # brows, nose, eyes, mouth
    assert inner.float().mean() > 0.95
    # the jaw contour (0-16) lies on the silhouette: within one pixel of the face
    near = torch.nn.functional.max_pool2d(b["mask"][:, None].float(), 3, 1, 1)[:, 0] > 0
    contour = near[rows, lm[:, :17, 1], lm[:, :17, 0]]
    assert contour.float().mean() > 0.9


def test_orthographic_ground_truth_matches_T(model):
    b = SyntheticFaces(model, size=64, length=2, seed=0, camera="scaled_orthographic").batch(0, 2)
    proj = fl.cameras.flip_y(fl.cameras.project_scaled_orthographic(b["verts"], b["T"]), 64)
    torch.testing.assert_close(proj, b["screen_verts"][..., :2])


def test_perspective_ground_truth_matches_camera(model):
    b = SyntheticFaces(model, size=64, length=2, seed=0).batch(0, 2)
    cam = fl.cameras.model_to_camera(b["verts"], b["rotation"], b["translation"])
    uv = fl.cameras.project_perspective(cam, b["focal"], b["principal"])
    torch.testing.assert_close(uv, b["screen_verts"][..., :2])


def test_backgrounds_are_smooth_and_in_range():
    bg = random_backgrounds(2, 32, torch.Generator().manual_seed(0))
    assert bg.shape == (2, 32, 32, 3) and bg.min() >= 0 and bg.max() <= 1
    step = (bg[:, 1:] - bg[:, :-1]).abs().mean()
    assert step < 0.05 and bg.std() > 0.05  # varied, but low-frequency


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="camera: expected one of"):
        SyntheticFaces(model, camera="fisheye")
    with pytest.raises(TypeError, match="model: expected a MorphableModel"):
        SyntheticFaces("synthetic")
    with pytest.raises(ValueError, match="yaw_deg"):
        FaceSampling(yaw_deg=(10, -10))
    ds = SyntheticFaces(model, size=16, length=2)
    with pytest.raises(IndexError):
        ds[2]
    with pytest.raises(IndexError):
        ds.batch(1, 2)


@pytest.mark.parametrize("camera", ["perspective", "scaled_orthographic"])
def test_samples_are_face_params_that_form_the_batch(model, camera):
    ds = SyntheticFaces(model, size=48, length=5, seed=4, camera=camera)
    params, cam, extras = ds.sample(1, 3)
    assert isinstance(params, fl.FaceParams) and params.batch_size == 3
    assert isinstance(cam, fl.cameras.Pinhole if camera == "perspective"
                      else fl.cameras.ScaledOrthographic)
    b = ds.batch(1, 3)
    f = fl.form(ds.model, params, cam)
    assert torch.equal(f.screen_verts, b["screen_verts"]) and torch.equal(f.verts, b["verts"])
    torch.testing.assert_close(params.rotation, fl.rotations.head_rotation(extras["angles"]))
    assert torch.equal(ds.sample(1, 3)[0].id, params.id)  # sample i depends on (seed, i) only
