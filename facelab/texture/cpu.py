"""Numba CPU kernels for the bilinear texture lookup (formulas: ``reference.py``, Eqs. 1-2).

umap-style: the kernels are plain Python functions; the compiled variants are made from them
with ``numba.njit(parallel=True, cache=True)`` (and serial ``numba.njit(cache=True)`` ones for
inputs under ``PARALLEL_MIN`` pixels, where waking the thread pool costs more than the work).
Parallelism is race-free by construction:

* forward and ∂L/∂uv: ``prange`` over (image, pixel row); every pixel writes only its own
  output (C values) or its own (du, dv);
* ∂L/∂texture is a scatter: neighbouring pixels add into the same texels, so pixels of one
  image never run concurrently on the same accumulator. Each work item (image b, part j) owns
  a private accumulator ``parts[b, j]`` (B, P, Ht, Wt, C) for its band of pixel rows; with
  P = 1 (batch >= threads) that accumulator *is* ``grad_texture[b]`` and nothing is copied,
  otherwise the P partial maps are summed afterwards (in a fixed order: deterministic).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange

from facelab._threads import parallel_threads
from facelab.numba_cache import serial_twin

__all__ = ["sample_texture_backward", "sample_texture_forward"]

PARALLEL_MIN = 16384  # pixels (over the batch) from which the parallel variants run


@numba.njit(cache=True, inline="always")
def _texel_cell(u, v, height, width, one, half):
    """(x0, x1, y0, y1, fx, fy) of one texture coordinate (reference.texel_cell)."""
    x = u * width - half  # Eq. (1): u right
    y = (one - v) * height - half  # v up: row 0 is v = 1
    x = min(max(x, -one), width)  # same texels and weights; the int conversion stays in range
    y = min(max(y, -one), height)
    xf = np.floor(x)
    yf = np.floor(y)
    xi = int(xf)
    yi = int(yf)
    x0 = min(max(xi, 0), int(width) - 1)
    x1 = min(max(xi + 1, 0), int(width) - 1)
    y0 = min(max(yi, 0), int(height) - 1)
    y1 = min(max(yi + 1, 0), int(height) - 1)
    return x0, x1, y0, y1, x - xf, y - yf


def _forward(texture, uv, mask, has_mask, out):
    """out[b, i, j] = Eq. (2) at uv[b, i, j], or 0 where the mask is False: (B, H, W, C)."""
    n_img, height, width = uv.shape[0], uv.shape[1], uv.shape[2]
    n_ch = texture.shape[3]
    real = texture.dtype.type
    zero, one, half = real(0.0), real(1.0), real(0.5)
    t_h, t_w = real(texture.shape[1]), real(texture.shape[2])
    for t in prange(n_img * height):
        b = t // height
        i = t - b * height
        for j in range(width):
            if has_mask and not mask[b, i, j]:
                for c in range(n_ch):
                    out[b, i, j, c] = zero
                continue
            x0, x1, y0, y1, fx, fy = _texel_cell(uv[b, i, j, 0], uv[b, i, j, 1], t_h, t_w,
                                                 one, half)
            for c in range(n_ch):
                top = (one - fx) * texture[b, y0, x0, c] + fx * texture[b, y0, x1, c]
                bottom = (one - fx) * texture[b, y1, x0, c] + fx * texture[b, y1, x1, c]
                out[b, i, j, c] = (one - fy) * top + fy * bottom


def _backward(texture, uv, mask, has_mask, grad_out, parts, grad_uv, need_texture, need_uv):
    """Scatter ∂L/∂texture into ``parts`` (B, P, Ht, Wt, C; item (b, j) takes pixel rows
    [j H / P, (j + 1) H / P) of image b) and write ∂L/∂uv (B, H, W, 2) per pixel."""
    n_img, height, width = uv.shape[0], uv.shape[1], uv.shape[2]
    n_ch = texture.shape[3]
    n_parts = parts.shape[1]
    real = texture.dtype.type
    zero, one, half = real(0.0), real(1.0), real(0.5)
    t_h, t_w = real(texture.shape[1]), real(texture.shape[2])
    for t in prange(n_img * n_parts):
        b = t // n_parts
        part = t - b * n_parts
        lo = part * height // n_parts
        hi = (part + 1) * height // n_parts
        for i in range(lo, hi):
            for j in range(width):
                if has_mask and not mask[b, i, j]:
                    if need_uv:
                        grad_uv[b, i, j, 0] = zero
                        grad_uv[b, i, j, 1] = zero
                    continue
                x0, x1, y0, y1, fx, fy = _texel_cell(uv[b, i, j, 0], uv[b, i, j, 1], t_h, t_w,
                                                     one, half)
                w00 = (one - fy) * (one - fx)
                w01 = (one - fy) * fx
                w10 = fy * (one - fx)
                w11 = fy * fx
                gx = zero
                gy = zero
                for c in range(n_ch):
                    g = grad_out[b, i, j, c]
                    if need_texture:
                        parts[b, part, y0, x0, c] += w00 * g
                        parts[b, part, y0, x1, c] += w01 * g
                        parts[b, part, y1, x0, c] += w10 * g
                        parts[b, part, y1, x1, c] += w11 * g
                    if need_uv:
                        t00 = texture[b, y0, x0, c]
                        t01 = texture[b, y0, x1, c]
                        t10 = texture[b, y1, x0, c]
                        t11 = texture[b, y1, x1, c]
                        gx += g * ((one - fy) * (t01 - t00) + fy * (t11 - t10))  # g · ∂T/∂x
                        gy += g * ((one - fx) * (t10 - t00) + fx * (t11 - t01))  # g · ∂T/∂y
                if need_uv:
                    grad_uv[b, i, j, 0] = t_w * gx  # ∂x/∂u = Wt
                    grad_uv[b, i, j, 1] = -t_h * gy  # ∂y/∂v = -Ht


_forward_par = numba.njit(parallel=True, cache=True)(_forward)
_forward_ser = serial_twin(_forward)
_backward_par = numba.njit(parallel=True, cache=True)(_backward)
_backward_ser = serial_twin(_backward)


def _parallel(n_pixels: int) -> bool:
    """Run the parallel variant: enough pixels, and more than one Numba thread (a parallel
    launch on one thread only adds the pool's overhead; facelab._threads)."""
    return n_pixels >= PARALLEL_MIN and parallel_threads() > 1


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _mask_arg(mask):
    if mask is None:
        return np.zeros((0, 0, 0), dtype=np.bool_), False
    return _np(mask), True


def sample_texture_forward(texture, uv, mask=None):
    """CPU tensors texture (B, Ht, Wt, C), uv (B, H, W, 2) of one dtype, mask (B, H, W) bool
    or None → (B, H, W, C)."""
    tex, coords = _np(texture), _np(uv)
    m, has_mask = _mask_arg(mask)
    out = np.empty(coords.shape[:3] + tex.shape[3:], dtype=tex.dtype)
    n_pix = coords.shape[0] * coords.shape[1] * coords.shape[2]
    if out.size:
        (_forward_par if _parallel(n_pix) else _forward_ser)(tex, coords, m, has_mask, out)
    return torch.from_numpy(out)


def sample_texture_backward(texture, uv, mask, grad_out, needs=(True, True)):
    """(grad_texture (B, Ht, Wt, C), grad_uv (B, H, W, 2)) for grad_out (B, H, W, C); None
    where ``needs`` is False."""
    if not any(needs):
        return None, None
    tex, coords, g = _np(texture), _np(uv), _np(grad_out)
    m, has_mask = _mask_arg(mask)
    n_img, height = coords.shape[0], coords.shape[1]
    n_pix = n_img * height * coords.shape[2]
    parallel = _parallel(n_pix)
    # Private accumulators: one per (image, band of rows) work item, P = ceil(threads / B).
    n_parts = 1
    if parallel and needs[0] and n_img < parallel_threads():
        n_parts = min(height, -(-parallel_threads() // max(n_img, 1)))
    grad_texture = np.zeros_like(tex) if needs[0] else np.zeros((0, 0, 0, 0), tex.dtype)
    if needs[0] and n_parts > 1:
        parts = np.zeros((n_img, n_parts, *tex.shape[1:]), dtype=tex.dtype)
    elif needs[0]:
        parts = grad_texture.reshape((n_img, 1, *tex.shape[1:]))  # a view: no reduction
    else:
        parts = np.zeros((n_img, 1, 0, 0, 0), dtype=tex.dtype)
    grad_uv = np.empty_like(coords) if needs[1] else np.empty((0, 0, 0, 2), coords.dtype)
    if n_pix and tex.shape[3]:
        (_backward_par if parallel else _backward_ser)(tex, coords, m, has_mask, g, parts,
                                                       grad_uv, bool(needs[0]), bool(needs[1]))
    elif needs[1]:
        grad_uv[...] = 0
    if needs[0] and n_parts > 1:
        parts.sum(axis=1, out=grad_texture)  # fixed order over the parts: deterministic
    return (torch.from_numpy(grad_texture) if needs[0] else None,
            torch.from_numpy(grad_uv) if needs[1] else None)
