"""Synthetic data with ground truth: rendered faces (and, later, videos) of the built-in model."""

from facelab.data.faces import FaceSampling, SyntheticFaces, random_backgrounds

__all__ = ["FaceSampling", "SyntheticFaces", "random_backgrounds"]
