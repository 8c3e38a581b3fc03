"""facelab: monocular 3D face reconstruction for teaching, CPU first, with compiled kernels."""

__version__ = "0.1.0"

__all__ = ["__version__"]
