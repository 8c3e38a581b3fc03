"""Per-vertex losses, MoFA Eqs. (8)-(9) — the NumPy reference (the definition of correct).

Dense photometric alignment, MoFA Eq. (8), per image b::

    E_photo = (1 / Σ_i w_i) Σ_i w_i ( sqrt(||I(u_i) − c_i||² + ε²) − ε )

* u_i (pixels, facelab's screen convention: x right, y down, pixel (i, j) covers
  [j, j+1) × [i, i+1) with its centre at (j + 0.5, i + 0.5)) is sampled bilinearly: in array
  index space the sample point is (x − 0.5, y − 0.5); the four neighbours are clamped to the
  image (border replication), so a vertex in the outer half pixel reads the border pixel;
* w_i = visibility_i (bool or a non-negative weight) × [0 ≤ x < W and 0 ≤ y < H]: a vertex
  projecting outside the image counts as invisible;
* ε keeps the gradient of the l2 norm finite at a zero residual; subtracting it makes a zero
  residual cost exactly 0 (for ε → 0 this is MoFA's robust l2,1 norm, not squared);
* images with Σ_i w_i = 0 have loss 0 and zero gradients.

(MoFA writes the normalisation as 1/N; like the paper's set V of visible vertices we divide by
the number of vertices that actually contribute, so the loss does not depend on how much of
the mesh is visible.)

Shapes: image (B, H, W, 3), positions (B, V, 2), colors (B, V, 3), weights (B, V) → (B,).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bilinear_cell",
    "bilinear_sample",
    "landmark_forward",
    "photometric_backward",
    "photometric_forward",
]


def bilinear_cell(positions: np.ndarray, height: int, width: int):
    """Bilinear footprint of screen positions (..., 2) in pixels.

    Returns (inside, x0, x1, y0, y1, fx, fy): ``inside`` (...,) bool — 0 ≤ x < W, 0 ≤ y < H;
    x0/x1/y0/y1 (...,) int64 column/row indices of the 4 neighbours, clamped to the image;
    fx/fy (...,) the fractional offsets (weights of x1/y1), positions' dtype.
    """
    ux, uy = positions[..., 0], positions[..., 1]
    inside = (ux >= 0) & (ux < width) & (uy >= 0) & (uy < height)
    x = ux - positions.dtype.type(0.5)  # pixel centre (j + 0.5) ↦ array index j
    y = uy - positions.dtype.type(0.5)
    xf, yf = np.floor(x), np.floor(y)
    fx, fy = x - xf, y - yf
    x0 = np.clip(xf, 0, width - 1).astype(np.int64)
    x1 = np.clip(xf + 1, 0, width - 1).astype(np.int64)
    y0 = np.clip(yf, 0, height - 1).astype(np.int64)
    y1 = np.clip(yf + 1, 0, height - 1).astype(np.int64)
    return inside, x0, x1, y0, y1, fx, fy


def bilinear_sample(image: np.ndarray, positions: np.ndarray):
    """I(u): image (B, H, W, C) sampled at positions (B, V, 2) → ((B, V, C), inside (B, V))."""
    n_img, height, width = image.shape[:3]
    inside, x0, x1, y0, y1, fx, fy = bilinear_cell(positions, height, width)
    b = np.arange(n_img)[:, None]  # (B, 1)
    fx, fy = fx[..., None], fy[..., None]  # (B, V, 1)
    top = (1 - fx) * image[b, y0, x0] + fx * image[b, y0, x1]  # (B, V, C)
    bottom = (1 - fx) * image[b, y1, x0] + fx * image[b, y1, x1]
    return (1 - fy) * top + fy * bottom, inside


def photometric_forward(image, positions, colors, weights, eps):
    """Per-image photometric loss (MoFA Eq. 8) and the weight sum: ((B,), (B,)), input dtype."""
    sample, inside = bilinear_sample(image, positions)  # (B, V, 3), (B, V)
    w = np.where(inside, weights, 0).astype(colors.dtype)  # w_i: (B, V)
    residual = sample - colors  # I(u_i) − c_i: (B, V, 3)
    err = np.sqrt((residual**2).sum(-1) + eps * eps) - eps  # robust l2 norm: (B, V)
    count = w.sum(-1)  # Σ_i w_i: (B,)
    total = (w * err).sum(-1)
    loss = np.where(count > 0, total / np.where(count > 0, count, 1), 0)
    return loss.astype(colors.dtype), count.astype(colors.dtype)


def photometric_backward(image, positions, colors, weights, eps, count, grad_loss,
                         needs=(True, True, True)):
    """VJPs of :func:`photometric_forward` for grad_loss (B,) — (grad_image, grad_positions,
    grad_colors), None where ``needs`` is False. With q_i = (g_b / Σw) w_i r_i / sqrt(|r_i|²+ε²):

    ∂L/∂c_i = −q_i;  ∂L/∂I[pixel] += bilinear weight × q_i (scatter);
    ∂L/∂u_i = q_i · ∂I/∂u (x: (1−fy)(I01−I00) + fy(I11−I10), y: (1−fx)(I10−I00) + fx(I11−I01)).
    """
    n_img, height, width = image.shape[:3]
    inside, x0, x1, y0, y1, fx, fy = bilinear_cell(positions, height, width)
    b = np.arange(n_img)[:, None]  # (B, 1)
    i00, i01 = image[b, y0, x0], image[b, y0, x1]  # (B, V, 3): rows y0/y1, columns x0/x1
    i10, i11 = image[b, y1, x0], image[b, y1, x1]
    fx3, fy3 = fx[..., None], fy[..., None]  # (B, V, 1)
    sample = (1 - fy3) * ((1 - fx3) * i00 + fx3 * i01) + fy3 * ((1 - fx3) * i10 + fx3 * i11)
    residual = sample - colors  # (B, V, 3)
    w = np.where(inside, weights, 0)  # (B, V)
    scale = np.where(count > 0, grad_loss / np.where(count > 0, count, 1), 0)  # (B,)
    norm = np.sqrt((residual**2).sum(-1) + eps * eps)  # (B, V)
    q = (scale[:, None] * w / norm)[..., None] * residual  # ∂L/∂I(u_i): (B, V, 3)
    grad_image = grad_positions = grad_colors = None
    if needs[0]:
        grad_image = np.zeros_like(image)
        for yy, xx, wt in ((y0, x0, (1 - fy3) * (1 - fx3)), (y0, x1, (1 - fy3) * fx3),
                           (y1, x0, fy3 * (1 - fx3)), (y1, x1, fy3 * fx3)):
            np.add.at(grad_image, (np.broadcast_to(b, yy.shape), yy, xx), wt * q)
    if needs[1]:
        d_dx = (1 - fy3) * (i01 - i00) + fy3 * (i11 - i10)  # ∂I/∂x: (B, V, 3)
        d_dy = (1 - fx3) * (i10 - i00) + fx3 * (i11 - i01)  # ∂I/∂y
        grad_positions = np.stack([(q * d_dx).sum(-1), (q * d_dy).sum(-1)], axis=-1)
        grad_positions = grad_positions.astype(positions.dtype)
    if needs[2]:
        grad_colors = (-q).astype(colors.dtype)
    return grad_image, grad_positions, grad_colors


def landmark_forward(landmarks, targets, confidence):
    """Sparse landmark alignment, MoFA Eq. (9): Σ_j c_j ||u_j − s_j||², per image.

    landmarks, targets: (B, L, 2); confidence: (B, L) → (B,).
    """
    return (confidence * ((landmarks - targets) ** 2).sum(-1)).sum(-1)
