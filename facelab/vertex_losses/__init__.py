"""Compiled per-vertex losses: dense photometric alignment, MoFA Eq. (8) — NumPy reference,
Numba, CUDA, autograd.

The sparse landmark loss, MoFA Eq. (9), stays plain torch (:func:`facelab.losses.landmark_loss`):
with 68 points its arithmetic is ~1-4 µs, while any op — torch's or a compiled
autograd.Function — costs ~0.2 ms of dispatch, so a kernel cannot pay off (measured for
batch 1 and 16 on one thread). Its NumPy reference is ``reference.landmark_forward``.

Submodules: ``reference`` (NumPy), ``cpu`` (Numba), ``cuda`` (CuPy launchers for
``kernels/photometric.cu``), ``autograd`` (torch Function and the validated per-image op).
"""

from facelab.vertex_losses.autograd import PhotometricLoss, photometric_per_image

__all__ = ["PhotometricLoss", "photometric_per_image"]
