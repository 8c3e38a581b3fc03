"""Shading + photometric loss, MoFA Eqs. (4) and (8) — the NumPy reference.

The fused op is, by definition, the chain of the two ops' references::

    c_i    = r_i ⊙ Σ_b γ_b H_b(n_i)                                   (Eq. 4, shading.reference)
    E_b    = (1 / Σ_i w_i) Σ_i w_i (sqrt(||I(u_i) − c_i||² + ε²) − ε)   (Eq. 8, vertex_losses)

and its backward is the chain rule through both: ∂L/∂c from the photometric backward, then
the shading backward with that as its output gradient. The image is the target, a constant:
it gets no gradient.

Shapes: image (B, H, W, 3), positions (B, V, 2), albedo (B, V, 3), normals (B, V, 3),
gamma (B, 9, 3), weights (B, V) → loss (B,), count (B,) = Σ_i w_i over in-image vertices.
"""

from __future__ import annotations

from facelab.shading.reference import sh_shade_backward, sh_shade_forward
from facelab.vertex_losses.reference import photometric_backward, photometric_forward

__all__ = ["shaded_photometric_backward", "shaded_photometric_forward"]


def shaded_photometric_forward(image, positions, albedo, normals, gamma, weights, eps):
    """(loss (B,), count (B,)) of MoFA Eq. (8) on the colours of Eq. (4), input dtype."""
    colors = sh_shade_forward(albedo, normals, gamma)  # (B, V, 3)
    return photometric_forward(image, positions, colors, weights, eps)


def shaded_photometric_backward(image, positions, albedo, normals, gamma, weights, eps, count,
                                grad_loss, needs=(True, True, True, True)):
    """VJPs for grad_loss (B,): (grad_positions, grad_albedo, grad_normals, grad_gamma),
    None where ``needs`` (same order) is False."""
    colors = sh_shade_forward(albedo, normals, gamma)  # (B, V, 3)
    need_colors = any(needs[1:])
    _, grad_positions, grad_colors = photometric_backward(
        image, positions, colors, weights, eps, count, grad_loss, (False, needs[0], need_colors))
    grads = (None, None, None)
    if need_colors:
        grads = sh_shade_backward(albedo, normals, gamma, grad_colors, tuple(needs[1:]))
    return (grad_positions, *grads)
