"""Data: synthetic faces with ground truth, and sample photos that ship with installed packages."""

from facelab.data.faces import FaceSampling, SyntheticFaces, random_backgrounds
from facelab.data.photos import SAMPLE_PHOTOS, sample_landmarks, sample_photo

__all__ = [
    "SAMPLE_PHOTOS",
    "FaceSampling",
    "SyntheticFaces",
    "random_backgrounds",
    "sample_landmarks",
    "sample_photo",
]
