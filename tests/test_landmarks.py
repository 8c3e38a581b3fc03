"""Tests of facelab.landmarks: the 468 -> 68 table, the missing-extra error and detection.

Tests that run MediaPipe are skipped when the ``facelab[landmarks]`` extra is not installed
(CI installs it).
"""

import sys

import numpy as np
import pytest
import torch

import facelab.landmarks as fl_landmarks
from facelab.data.photos import sample_landmarks, sample_photo
from facelab.landmarks import (
    LANDMARK_CONFIDENCE,
    MEDIAPIPE_TO_IBUG68,
    Detection,
    detect,
    landmark_confidence,
    mediapipe_available,
)
from facelab.metrics import nme

needs_mediapipe = pytest.mark.skipif(not mediapipe_available(),
                                     reason="needs the facelab[landmarks] extra (mediapipe)")


def test_table():
    assert MEDIAPIPE_TO_IBUG68.shape == (68,) and MEDIAPIPE_TO_IBUG68.dtype == np.int64
    assert len(set(MEDIAPIPE_TO_IBUG68.tolist())) == 68
    assert MEDIAPIPE_TO_IBUG68.min() >= 0 and MEDIAPIPE_TO_IBUG68.max() < 468
    assert MEDIAPIPE_TO_IBUG68[8] == 152 and MEDIAPIPE_TO_IBUG68[30] == 1  # chin, nose tip
    assert MEDIAPIPE_TO_IBUG68[36] == 33 and MEDIAPIPE_TO_IBUG68[45] == 263  # outer eye corners


def test_confidence():
    c = landmark_confidence(torch.float64)
    assert c.shape == (68,) and c.dtype == torch.float64
    assert float(c[:17].max()) < 1.0 and float(c[17:].min()) == 1.0
    np.testing.assert_allclose(c.numpy(), LANDMARK_CONFIDENCE)


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    monkeypatch.setattr(fl_landmarks, "_SOLVERS", {})
    assert not mediapipe_available()
    with pytest.raises(ImportError, match=r'pip install -e "\.\[landmarks\]"'):
        detect(sample_photo("astronaut"))


@pytest.mark.parametrize("image, match", [
    (np.zeros((64, 64), np.uint8), "grayscale"),
    (np.zeros((64, 64, 4), np.uint8), "RGBA"),
    (np.zeros((8, 8, 3), np.uint8), "too small"),
    (np.full((64, 64, 3), np.nan, np.float32), "NaN"),
])
def test_bad_images(image, match):
    with pytest.raises(ValueError, match=match):
        detect(image)


@needs_mediapipe
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_detect_sample(name):
    img = sample_photo(name)
    det = detect(img)
    assert isinstance(det, Detection)
    assert det.landmarks.shape == (68, 2) and det.mesh.shape == (468, 3)
    assert 0.5 <= det.confidence <= 1.0
    x0, y0, x1, y1 = det.box
    centre = det.landmarks.mean(0)
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1
    # the stored sample landmarks were made by this function: agree to < 0.5 % of the face
    err = nme(det.landmarks[None].astype(np.float32), sample_landmarks(name, as_numpy=True)[None])
    assert float(err[0]) < 0.005
    # uint8 NumPy input gives the same points as float torch input
    det8 = detect((img.numpy() * 255).round().astype(np.uint8))
    np.testing.assert_allclose(det8.landmarks, det.landmarks, atol=1.0)


@needs_mediapipe
def test_no_face_returns_none():
    assert detect(np.full((128, 128, 3), 0.5, np.float32)) is None
