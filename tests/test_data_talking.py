"""Synthetic talking-head clips: shapes, ground truth, detection noise, determinism, files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import facelab as fl
from facelab.data.talking import TalkingHeadConfig, load_clip, synthesize_clip


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=1)


def test_clip_shapes_and_truth(model):
    cfg = TalkingHeadConfig(frames=8, views=3, image_size=32)
    clip = synthesize_clip(model, cfg, seed=5)
    assert clip.images.shape == (8, 3, 32, 32, 3)
    assert clip.detections.shape == (8, 3, 68, 2) and clip.verts.shape == (8, 3015, 3)
    np.testing.assert_allclose(clip.yaws, [-60.0, 0.0, 60.0])
    assert 0.0 <= float(clip.images.min()) and float(clip.images.max()) <= 1.0
    # one face: identity shared by all frames and views, expression shared across views
    assert torch.equal(clip.params.id[0], clip.params.id[-1])
    exp = clip.params.exp.reshape(8, 3, -1)
    assert torch.equal(exp[:, 0], exp[:, 2]) and not torch.equal(exp[0, 0], exp[-1, 0])
    assert clip.params.jaw is not None and float(clip.params.jaw[:, 0].max()) > 0


def test_detections_noise_outliers_and_dropouts(model):
    cfg = TalkingHeadConfig(frames=20, views=2, image_size=32, landmark_noise=0.5,
                            outlier_prob=0.05, dropout_prob=0.1)
    clip = synthesize_clip(model, cfg, seed=2, render_images=False)
    w = clip.detection_weights
    assert 0.05 < float(1 - w.mean()) < 0.15  # ~10 % dropouts
    err = (clip.detections - clip.landmarks_2d).norm(dim=-1)[w > 0]
    assert 0.3 < float(err.median()) < 1.0  # the noise
    assert float((err > 3.0).float().mean()) > 0.01  # and some outliers
    clean = synthesize_clip(model, TalkingHeadConfig(frames=4, views=1, landmark_noise=0.0,
                                                     outlier_prob=0.0, dropout_prob=0.0),
                            seed=2, render_images=False)
    torch.testing.assert_close(clean.detections, clean.landmarks_2d)


def test_deterministic_and_save_load(model, tmp_path):
    cfg = TalkingHeadConfig(frames=4, views=2, image_size=32)
    a = synthesize_clip(model, cfg, seed=9)
    b = synthesize_clip(model, cfg, seed=9)
    assert torch.equal(a.images, b.images) and torch.equal(a.detections, b.detections)
    c = synthesize_clip(model, cfg, seed=10)
    assert not torch.equal(a.detections, c.detections)
    path = tmp_path / "clip.npz"
    a.save(path)
    back = load_clip(path)
    assert (back.images - a.images).abs().max() <= 0.5 / 255 + 1e-6
    torch.testing.assert_close(back.verts, a.verts)
    torch.testing.assert_close(back.params.rotation, a.params.rotation)
    torch.testing.assert_close(back.params.jaw, a.params.jaw)
    assert back.meta["seed"] == 9
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="detections"):
        load_clip(tmp_path / "bad.npz")


def test_config_validation(model):
    with pytest.raises(ValueError, match="frames"):
        TalkingHeadConfig(frames=2)
    with pytest.raises(ValueError, match="dropout_prob"):
        TalkingHeadConfig(dropout_prob=-0.1)
    with pytest.raises(TypeError, match="config"):
        synthesize_clip(model, {"frames": 4})
    assert list(TalkingHeadConfig(views=1).yaws()) == [0.0]


def test_clip_from_frames_crops_and_maps_landmarks():
    from facelab.data.talking import clip_from_frames

    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 90, 120, 3, generator=g)
    pts = np.zeros((3, 68, 2), np.float32)
    pts[..., 0] = np.linspace(40, 80, 68)  # x in [40, 80], y in [30, 60]
    pts[..., 1] = np.linspace(30, 60, 68)
    pts[2] = np.nan  # no face in the last frame
    clip = clip_from_frames(frames, pts, size=32, margin=1.5)
    assert clip.images.shape == (3, 1, 32, 32, 3) and clip.views == 1 and clip.verts is None
    np.testing.assert_array_equal(clip.detection_weights[:, 0, 0].numpy(), [1, 1, 0])
    # a 60-pixel square centred on (60, 45): corner (30, 15), 32 / 60 pixels per pixel
    expected = (pts[0] - np.array([30.0, 15.0])) * 32 / 60
    np.testing.assert_allclose(clip.detections[0, 0].numpy(), expected, rtol=1e-5)
    x0, y0, n = clip.meta["crop"]
    assert (x0, y0, n) == (30.0, 15.0, 60.0)
    with pytest.raises(ValueError, match="no face"):
        clip_from_frames(frames, np.full((3, 68, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="landmarks"):
        clip_from_frames(frames, pts[:2])
