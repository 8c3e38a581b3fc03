"""Tests of facelab.figures: captions, display normalisation, landmarks, grids, framing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import facelab as fl
from facelab.figures import (
    CAPTION_BACKGROUND,
    caption,
    captioned_grid,
    draw_landmarks,
    framing_translation,
    normalize_display,
    upsample,
)


def _ramp(h=40, w=60):
    x = np.linspace(0.2, 0.8, w, dtype=np.float32)
    return np.repeat(np.repeat(x[None, :, None], h, 0), 3, 2)


def test_caption_adds_a_band_with_text():
    img = _ramp()
    out = caption(img, "hello")
    assert out.shape == (40 + 20, 60, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:40], img)
    band = out[40:]
    assert np.abs(band - np.array(CAPTION_BACKGROUND)).max(-1).mean() < 0.9  # mostly plain
    assert (band.min(-1) > 0.7).sum() > 5  # light text
    blank = caption(img, "")
    assert not np.array_equal(out[40:], blank[40:])  # the text is drawn
    assert caption(torch.from_numpy(img), "x", band=30).shape == (70, 60, 3)
    with pytest.raises(TypeError, match="text"):
        caption(img, 3)
    with pytest.raises(ValueError, match="image"):
        caption(img[..., :2], "x")


def test_upsample_is_smooth_not_blocky():
    rng = np.random.default_rng(0)
    small = rng.random((16, 16, 3)).astype(np.float32)
    big = upsample(small, 224)
    assert big.shape == (224, 224, 3)
    # a nearest-neighbour blow-up repeats each value in 14 x 14 blocks (13 of 14 horizontal
    # neighbours equal); a smooth one changes from pixel to pixel
    same = np.mean(big[:, 1:] == big[:, :-1])
    assert same < 0.3
    assert upsample(big, 100) is not None and upsample(big, 100).shape == big.shape


def test_normalize_display():
    img = _ramp() * 0.25  # dim: 0.05 .. 0.2
    out = normalize_display(img, low=0.0, high=100.0)
    assert out.min() == pytest.approx(0.0, abs=1e-6) and out.max() == pytest.approx(1.0)
    scaled = normalize_display(img, low=None, high=100.0)  # 0 stays 0: pure scaling
    np.testing.assert_allclose(scaled, img / img.max(), rtol=1e-5)
    mask = np.zeros(img.shape[:2], bool)
    mask[:, :30] = True
    part = normalize_display(img, mask, low=0.0, high=100.0)
    np.testing.assert_array_equal(part[:, 30:], img[:, 30:])  # outside the mask: untouched
    assert part[:, :30].max() == pytest.approx(1.0)
    flat = np.full((8, 8, 3), 0.3, np.float32)
    np.testing.assert_array_equal(normalize_display(flat), flat)
    with pytest.raises(ValueError, match="mask"):
        normalize_display(img, mask[:5])


def test_draw_landmarks():
    img = np.zeros((64, 64, 3), np.float32)
    out = draw_landmarks(img, torch.tensor([[10.0, 20.0], [40.0, 50.0]]), (1.0, 0.0, 0.0),
                         radius=2)
    assert out[20, 10, 0] == 1.0 and out[50, 40, 0] == 1.0 and out[5, 5].max() == 0.0
    with pytest.raises(ValueError, match="points"):
        draw_landmarks(img, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="points"):
        draw_landmarks(img, np.full((2, 2), np.nan))


def test_captioned_grid():
    imgs = [_ramp(), _ramp(80, 80), _ramp()]
    grid = captioned_grid(imgs, ["a", "b", "c"], ncols=2, size=50, gap=4, title="t")
    band = max(20, 50 // 9)
    assert grid.shape[0] == max(24, 50 // 7) + 2 * (50 + band) + 4
    assert grid.shape[1] == round(60 * 50 / 40) + 4 + 50
    with pytest.raises(ValueError, match="captions"):
        captioned_grid(imgs, ["a"])
    with pytest.raises(ValueError, match="captions"):
        captioned_grid([], [])


def test_framing_translation_fits_the_whole_model():
    model = fl.load_model("synthetic", "teaching", version=1)
    t = framing_translation(model, batch=2)
    assert t.shape == (2, 3) and float(t[0, 2]) == fl.formation.DEFAULT_DISTANCE_MM
    big = dataclasses.replace(model, mean_shape=model.mean_shape * 2.0)  # a head twice as big
    tb = framing_translation(big)
    assert float(tb[0, 2]) > 1.5 * fl.formation.DEFAULT_DISTANCE_MM
    camera, _ = fl.default_camera(1, 128, 128)
    f = fl.form(big, fl.FaceParams(rotation=torch.eye(3)[None], translation=tb), camera)
    xy = f.screen_verts[0, :, :2]
    assert float(xy.min()) > 0 and float(xy.max()) < 128  # all of it in the picture
    assert float(xy[:, 1].max() - xy[:, 1].min()) > 0.7 * 128  # and not tiny
    with pytest.raises(TypeError, match="model"):
        framing_translation(model.mean_shape)
