"""Bilinear texture lookup — the NumPy reference (the definition of correct).

A texture map T (B, Ht, Wt, C) is looked up at per-pixel texture coordinates (u, v) (the UVs
a rasterizer interpolates over a mesh's UV layout, nvdiffrast's ``texture`` stage):

* OBJ convention: u to the right, v **up**; texel (row r, column c) covers
  [c, c+1) x [r, r+1) in texel units with its centre at (c + 1/2, r + 1/2), and row 0 is
  the top of the image, so the sample point in array-index space is::

      x = u Wt - 1/2,        y = (1 - v) Ht - 1/2                                      (1)

  (``torch.nn.functional.grid_sample`` with ``align_corners=False`` and grid
  (2u - 1, 1 - 2v) uses the same mapping);
* bilinear weights of the four texels around (x, y), with x0 = floor(x), fx = x - x0
  (likewise y0, fy)::

      T(u, v) = (1-fy) [(1-fx) T[y0,x0] + fx T[y0,x1]] + fy [(1-fx) T[y1,x0] + fx T[y1,x1]]   (2)

* clamp-to-edge addressing: the neighbour indices x0, x1 = x0 + 1 (and y0, y1) are clamped
  to [0, Wt - 1] ([0, Ht - 1]), so outside the texture (and in its outer half texel) the
  border texel repeats and the derivative across the border is 0;
* pixels where ``mask`` is False (no surface) read 0 and receive no gradient.

Gradients (the transpose of Eq. 2, a scatter): ∂L/∂T[b, y_k, x_l] += w_kl ∂L/∂out (with the
four weights of Eq. 2); ∂L/∂u = Wt Σ_c g_c [(1-fy)(T01 - T00) + fy(T11 - T10)] and
∂L/∂v = -Ht Σ_c g_c [(1-fx)(T10 - T00) + fx(T11 - T01)] (one-sided on texel-centre lines, where
the bilinear surface has a crease). Before the floor, x and y are clamped to [-1, Wt] and
[-1, Ht] — the same texels and weights for any finite (u, v), so huge coordinates cannot
overflow an integer conversion.

Shapes: texture (B, Ht, Wt, C), uv (B, H, W, 2), mask (B, H, W) bool or None → (B, H, W, C).
"""

from __future__ import annotations

import numpy as np

__all__ = ["texel_cell", "sample_texture_backward", "sample_texture_forward"]


def texel_cell(uv: np.ndarray, height: int, width: int):
    """Bilinear footprint of texture coordinates (..., 2), Eqs. (1)-(2).

    Returns (x0, x1, y0, y1, fx, fy): (...,) int64 column/row indices of the 4 texels, clamped
    to the texture, and the fractional weights of x1 / y1 in uv's dtype.
    """
    one, half = uv.dtype.type(1), uv.dtype.type(0.5)
    x = uv[..., 0] * uv.dtype.type(width) - half  # Eq. (1), u right
    y = (one - uv[..., 1]) * uv.dtype.type(height) - half  # v up: row 0 is v = 1
    x = np.clip(x, -1, width)  # same texels and weights; keeps the int conversion in range
    y = np.clip(y, -1, height)
    xf, yf = np.floor(x), np.floor(y)
    fx, fy = x - xf, y - yf
    x0 = np.clip(xf, 0, width - 1).astype(np.int64)
    x1 = np.clip(xf + 1, 0, width - 1).astype(np.int64)
    y0 = np.clip(yf, 0, height - 1).astype(np.int64)
    y1 = np.clip(yf + 1, 0, height - 1).astype(np.int64)
    return x0, x1, y0, y1, fx, fy


def _mask(mask, shape):
    return np.ones(shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)


def sample_texture_forward(texture: np.ndarray, uv: np.ndarray, mask=None) -> np.ndarray:
    """Eq. (2) at every pixel: texture (B, Ht, Wt, C), uv (B, H, W, 2), mask (B, H, W) or
    None → (B, H, W, C) in the texture's dtype, 0 where mask is False."""
    n_img, height, width = texture.shape[:3]
    x0, x1, y0, y1, fx, fy = texel_cell(uv, height, width)  # (B, H, W) each
    b = np.arange(n_img)[:, None, None]  # (B, 1, 1)
    fx, fy = fx[..., None], fy[..., None]  # (B, H, W, 1)
    top = (1 - fx) * texture[b, y0, x0] + fx * texture[b, y0, x1]  # (B, H, W, C)
    bottom = (1 - fx) * texture[b, y1, x0] + fx * texture[b, y1, x1]
    out = (1 - fy) * top + fy * bottom
    keep = _mask(mask, uv.shape[:3])[..., None]  # (B, H, W, 1)
    return np.where(keep, out, 0).astype(texture.dtype)


def sample_texture_backward(texture: np.ndarray, uv: np.ndarray, mask, grad_out: np.ndarray,
                            needs=(True, True)):
    """VJPs of :func:`sample_texture_forward` for grad_out (B, H, W, C): (grad_texture
    (B, Ht, Wt, C), grad_uv (B, H, W, 2)), None where ``needs`` is False."""
    n_img, height, width = texture.shape[:3]
    x0, x1, y0, y1, fx, fy = texel_cell(uv, height, width)
    keep = _mask(mask, uv.shape[:3])[..., None]  # (B, H, W, 1)
    g = np.where(keep, grad_out, 0)  # masked pixels pass no gradient
    b = np.arange(n_img)[:, None, None]
    fx3, fy3 = fx[..., None], fy[..., None]  # (B, H, W, 1)
    grad_texture = grad_uv = None
    if needs[0]:
        grad_texture = np.zeros_like(texture)
        bb = np.broadcast_to(b, x0.shape)
        for yy, xx, w in ((y0, x0, (1 - fy3) * (1 - fx3)), (y0, x1, (1 - fy3) * fx3),
                          (y1, x0, fy3 * (1 - fx3)), (y1, x1, fy3 * fx3)):
            np.add.at(grad_texture, (bb, yy, xx), w * g)  # scatter, Eq. (2) transposed
    if needs[1]:
        t00, t01 = texture[b, y0, x0], texture[b, y0, x1]  # (B, H, W, C)
        t10, t11 = texture[b, y1, x0], texture[b, y1, x1]
        d_dx = (1 - fy3) * (t01 - t00) + fy3 * (t11 - t10)  # ∂T/∂x
        d_dy = (1 - fx3) * (t10 - t00) + fx3 * (t11 - t01)  # ∂T/∂y
        grad_uv = np.stack([width * (g * d_dx).sum(-1),  # ∂x/∂u = Wt
                            -height * (g * d_dy).sum(-1)], axis=-1)  # ∂y/∂v = -Ht
        grad_uv = grad_uv.astype(uv.dtype)
    return grad_texture, grad_uv
