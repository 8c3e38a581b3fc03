"""SH shading fused with the dense photometric loss, MoFA Eqs. (4) and (8), one op per
direction: NumPy reference, Numba, CUDA, autograd.

MoFA evaluates, per vertex, the shaded colour c_i = r_i ⊙ Σ_b γ_b H_b(n_i) and at once its
robust distance to the image sampled at the projected vertex. Chained as two ops
(``sh_shade`` then ``photometric_loss``) that is two autograd Functions, a (B, V, 3) colour
buffer written and read back, and a shading backward that re-walks every vertex; fused, one
compiled pass per direction does it all. On the CPU, when a gradient is needed, the forward's
pass also computes the per-vertex gradients (the bilinear cell, the SH basis and the residual
are then computed once per vertex, not again in backward), already divided by Σ w, and
backward only scales them by ∂L/∂loss when that is not 1; on CUDA the backward kernel
recomputes them (cheap there, and no state kept).

``shaded_photometric_per_image(image, positions, albedo, normals, gamma, visibility) -> (B,)``;
the batch-reduced form is :func:`facelab.losses.shaded_photometric_loss`.

Submodules: ``reference`` (NumPy: the two ops' references chained, the definition of
correct), ``cpu`` (Numba), ``cuda`` (CuPy launchers for ``kernels/shaded_photometric.cu``),
``autograd`` (the torch Function and the validated per-image op).
"""

from facelab.shaded_photometric.autograd import ShadedPhotometricLoss, shaded_photometric_per_image

__all__ = ["ShadedPhotometricLoss", "shaded_photometric_per_image"]
