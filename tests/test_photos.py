"""Tests of facelab.data.photos: sample photos from installed packages and their landmarks."""

import numpy as np
import pytest
import torch

from facelab.data.photos import SAMPLE_PHOTOS, sample_landmarks, sample_photo


@pytest.mark.parametrize("name, shape", [("astronaut", (512, 512, 3)),
                                         ("grace_hopper", (600, 512, 3))])
def test_sample_photo(name, shape):
    img = sample_photo(name)
    assert isinstance(img, torch.Tensor) and img.dtype == torch.float32
    assert tuple(img.shape) == shape
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    assert float(img.std()) > 0.1  # a real photo, not a blank
    arr = sample_photo(name, as_numpy=True)
    assert isinstance(arr, np.ndarray)
    np.testing.assert_array_equal(arr, img.numpy())


@pytest.mark.parametrize("name", SAMPLE_PHOTOS)
def test_sample_landmarks_inside_photo_and_ordered(name):
    lm = sample_landmarks(name)
    img = sample_photo(name)
    assert lm.shape == (68, 2) and lm.dtype == torch.float32
    h, w = img.shape[:2]
    assert bool(((lm[:, 0] > 0) & (lm[:, 0] < w) & (lm[:, 1] > 0) & (lm[:, 1] < h)).all())
    # iBUG order: right eye (36) left of left eye (45) in the image; chin (8) lowest on the jaw;
    # brows above the eyes, nose tip (30) above the upper lip (51)
    assert lm[36, 0] < lm[45, 0]
    assert int(lm[:17, 1].argmax()) == 8
    assert lm[17:27, 1].mean() < lm[36:48, 1].mean()
    assert lm[30, 1] < lm[51, 1]
    assert isinstance(sample_landmarks(name, as_numpy=True), np.ndarray)


def test_bad_name():
    with pytest.raises(ValueError, match="name"):
        sample_photo("lena")
    with pytest.raises(ValueError, match="name"):
        sample_landmarks("lena")
