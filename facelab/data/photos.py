"""Sample photos that ship inside installed packages (no files of ours, no downloads).

* ``"astronaut"`` — Eileen Collins, NASA portrait (public domain), bundled with scikit-image
  as ``skimage.data.astronaut()``; 512 x 512, frontal, smiling.
* ``"grace_hopper"`` — Grace Hopper, U.S. Navy portrait (public domain), bundled with
  matplotlib as the sample-data file ``grace_hopper.jpg``; 600 x 512 (H x W).

scikit-image (the astronaut) and matplotlib (Grace Hopper) are both core dependencies;
an environment that lacks scikit-image is repaired by ``.venv/bin/pip install -e .``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SAMPLE_PHOTOS", "sample_landmarks", "sample_photo"]

SAMPLE_PHOTOS = ("astronaut", "grace_hopper")

# iBUG-68 landmarks of the samples (pixels, x right, y down), as found by
# facelab.landmarks.detect (MediaPipe 0.10.14 + facelab's 468 -> 68 table), rounded to 0.1 px:
# the samples can be fitted without the optional extra.
# fmt: off
_SAMPLE_LANDMARKS = {
    "astronaut": (
        (179.0, 102.5), (179.0, 111.1), (179.4, 129.5), (181.5, 139.8), (185.2, 148.4),
        (189.6, 155.1), (200.6, 166.2), (212.6, 173.9), (221.3, 175.5), (230.3, 175.0),
        (243.2, 168.6), (255.3, 158.7), (260.3, 152.6), (264.9, 144.4), (268.2, 134.5),
        (270.9, 116.3), (271.9, 107.8), (187.6, 91.5), (191.7, 88.1), (198.0, 86.7),
        (206.4, 87.6), (216.2, 89.4), (236.9, 90.5), (246.7, 89.8), (255.0, 89.8),
        (261.1, 91.9), (264.7, 95.7), (225.9, 101.0), (225.3, 111.4), (224.7, 121.0),
        (224.1, 131.2), (211.2, 129.8), (218.3, 132.9), (224.0, 133.9), (229.8, 133.6),
        (237.1, 131.3), (194.6, 100.9), (199.1, 98.3), (206.5, 98.4), (213.8, 103.6),
        (207.9, 104.2), (200.7, 103.6), (237.4, 104.8), (245.2, 100.3), (252.6, 101.0),
        (256.7, 104.1), (250.4, 106.1), (243.3, 105.9), (201.8, 139.5), (206.7, 138.7),
        (217.1, 139.3), (223.6, 140.5), (230.2, 140.0), (240.9, 140.8), (245.9, 142.2),
        (239.5, 149.3), (229.3, 154.5), (222.8, 154.9), (216.5, 153.7), (207.1, 147.3),
        (204.7, 140.2), (213.7, 141.0), (223.5, 142.7), (233.6, 142.3), (243.0, 142.6),
        (233.3, 148.5), (223.1, 149.6), (213.2, 147.2),
    ),
    "grace_hopper": (
        (171.3, 201.4), (173.1, 218.0), (178.0, 253.5), (184.5, 272.8), (193.1, 288.6),
        (202.5, 301.1), (225.7, 320.8), (252.5, 332.5), (271.6, 333.1), (290.5, 330.2),
        (315.6, 315.5), (336.1, 293.6), (343.7, 280.1), (350.2, 263.3), (354.5, 243.3),
        (355.7, 207.5), (356.0, 190.8), (184.9, 176.8), (192.0, 169.1), (204.2, 164.4),
        (221.4, 163.4), (242.0, 164.0), (284.2, 161.9), (304.4, 159.4), (321.1, 158.9),
        (333.3, 162.4), (341.0, 169.0), (264.3, 185.2), (265.6, 205.2), (266.8, 224.8),
        (268.1, 245.6), (242.2, 249.7), (256.3, 252.4), (268.1, 252.3), (279.7, 251.1),
        (293.2, 246.9), (201.6, 194.2), (210.2, 189.3), (224.7, 187.4), (240.0, 193.2),
        (228.1, 196.4), (213.9, 197.4), (288.4, 190.5), (302.9, 183.0), (317.5, 183.3),
        (326.4, 187.3), (314.7, 191.7), (300.5, 192.4), (232.3, 277.3), (239.8, 273.6),
        (257.4, 269.0), (268.5, 270.0), (279.5, 267.9), (297.1, 270.9), (304.7, 273.9),
        (296.1, 280.0), (279.6, 287.2), (269.1, 288.5), (258.6, 288.3), (241.4, 282.7),
        (236.7, 276.2), (253.0, 276.3), (268.7, 276.9), (284.1, 274.9), (300.0, 273.2),
        (285.0, 275.4), (268.6, 277.2), (252.1, 277.1),
    ),
}
# fmt: on


def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as err:
        raise ImportError("sample_photo('astronaut') needs scikit-image, a core dependency: "
                          "run .venv/bin/pip install -e . in the facelab checkout; "
                          "sample_photo('grace_hopper') needs only matplotlib") from err
    return np.asarray(data.astronaut())


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f, Image.open(f) as im:
        return np.asarray(im.convert("RGB"))


def sample_photo(name: str = "astronaut", *, as_numpy: bool = False):
    """A sample portrait from an installed package: (H, W, 3) float32 RGB in [0, 1].

    name: ``"astronaut"`` (scikit-image, 512 x 512) or ``"grace_hopper"`` (matplotlib,
        600 x 512).
    as_numpy: return a NumPy array instead of a torch tensor.
    """
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"name: expected one of {SAMPLE_PHOTOS}, got {name!r}")
    rgb = _astronaut() if name == "astronaut" else _grace_hopper()  # (H, W, 3) uint8
    image = rgb.astype(np.float32) / 255.0
    return image if as_numpy else torch.from_numpy(image)


def sample_landmarks(name: str = "astronaut", *, as_numpy: bool = False):
    """The 68 iBUG landmarks of a sample photo, (68, 2) float32 pixels (x right, y down).

    Stored MediaPipe detections (see :mod:`facelab.landmarks`), so
    ``fit_image(sample_photo(n), landmarks=sample_landmarks(n))`` needs no optional extra.
    """
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"name: expected one of {SAMPLE_PHOTOS}, got {name!r}")
    points = np.array(_SAMPLE_LANDMARKS[name], dtype=np.float32)  # (68, 2)
    return points if as_numpy else torch.from_numpy(points)
