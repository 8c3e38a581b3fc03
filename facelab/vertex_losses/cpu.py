"""Numba CPU kernels for the dense photometric loss, MoFA Eq. (8) (formulas: ``reference.py``).

umap-style: kernels are plain Python functions; the compiled variants are made from them
with ``numba.njit(parallel=True, cache=True)`` (and serial ``numba.njit(cache=True)`` ones
for inputs under ``PARALLEL_MIN`` vertices, where the thread pool costs more than the work).
Parallelism is race-free by construction:

* forward: ``prange`` over (image, chunk of ``CHUNK`` vertices); each vertex writes its own
  weighted error and weight, which are summed per image afterwards;
* backward without ∂L/∂image: ``prange`` over (image, chunk), per-vertex writes only;
* backward with ∂L/∂image: the bilinear scatter into pixels is NOT race-free across vertices,
  so the loop runs over images in parallel (``prange`` over b) and over each image's vertices
  serially. (One image is therefore handled by one thread; at batch ≥ threads this costs
  nothing.)
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange

from facelab._threads import parallel_threads
from facelab.numba_cache import serial_twin

__all__ = ["photometric_backward", "photometric_forward"]


CHUNK = 1024  # vertices per parallel work item


@numba.njit(cache=True, inline="always")
def _bilinear_cell(ux, uy, half, height, width):
    """(x0, x1, y0, y1, fx, fy) of a screen position inside the image (reference.bilinear_cell):
    neighbour indices clamped to the image, fractional weights in the positions' dtype."""
    x = ux - half  # pixel centre (j + 0.5) ↦ array index j
    y = uy - half
    xf = np.floor(x)
    yf = np.floor(y)
    xi = int(xf)  # in [-1, W-1] since 0 <= ux < W
    yi = int(yf)
    x0 = max(xi, 0)
    x1 = min(xi + 1, width - 1)
    y0 = max(yi, 0)
    y1 = min(yi + 1, height - 1)
    return x0, x1, y0, y1, x - xf, y - yf


def _forward(image, positions, colors, weights, eps, err, w_eff):
    """err[b, i] = w_i (sqrt(|I(u_i) − c_i|² + ε²) − ε), w_eff[b, i] = w_i: (B, V) each;
    w_i = 0 outside [0, W) × [0, H). Arithmetic in the arrays' dtype (eps has it too), so a
    zero residual costs exactly 0 (sqrt(ε²) = ε in IEEE arithmetic)."""
    n_img, height, width = image.shape[0], image.shape[1], image.shape[2]
    n_vert = positions.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = colors.dtype.type
    zero, one, half = real(0.0), real(1.0), real(0.5)
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        for i in range(lo, min(n_vert, lo + CHUNK)):
            ux = positions[b, i, 0]
            uy = positions[b, i, 1]
            w = weights[b, i]
            if not (ux >= 0 and ux < width and uy >= 0 and uy < height) or w == 0:
                err[b, i] = zero
                w_eff[b, i] = zero
                continue
            x0, x1, y0, y1, fx, fy = _bilinear_cell(ux, uy, half, height, width)
            sq = zero
            for k in range(3):
                sample = ((one - fy) * ((one - fx) * image[b, y0, x0, k] + fx * image[b, y0, x1, k])
                          + fy * ((one - fx) * image[b, y1, x0, k] + fx * image[b, y1, x1, k]))
                r = sample - colors[b, i, k]  # I(u_i) − c_i
                sq += r * r
            err[b, i] = w * (np.sqrt(sq + eps * eps) - eps)
            w_eff[b, i] = w


@numba.njit(cache=True, inline="always")
def _vertex_backward(image, positions, colors, weights, eps, scale, b, i, grad_image,
                     grad_positions, grad_colors, need_image, need_positions, need_colors):
    """All gradients of one vertex (reference.photometric_backward); scatters into
    grad_image when need_image (the caller guarantees no other thread touches image b)."""
    height, width = image.shape[1], image.shape[2]
    real = colors.dtype.type
    zero, one = real(0.0), real(1.0)
    ux = positions[b, i, 0]
    uy = positions[b, i, 1]
    w = weights[b, i]
    if not (ux >= 0 and ux < width and uy >= 0 and uy < height) or w == 0 or scale[b] == 0:
        if need_positions:
            grad_positions[b, i, 0] = zero
            grad_positions[b, i, 1] = zero
        if need_colors:
            for k in range(3):
                grad_colors[b, i, k] = zero
        return
    x0, x1, y0, y1, fx, fy = _bilinear_cell(ux, uy, real(0.5), height, width)
    w00 = (one - fy) * (one - fx)
    w01 = (one - fy) * fx
    w10 = fy * (one - fx)
    w11 = fy * fx
    r0 = w00 * image[b, y0, x0, 0] + w01 * image[b, y0, x1, 0] - colors[b, i, 0]
    r1 = w00 * image[b, y0, x0, 1] + w01 * image[b, y0, x1, 1] - colors[b, i, 1]
    r2 = w00 * image[b, y0, x0, 2] + w01 * image[b, y0, x1, 2] - colors[b, i, 2]
    r0 += w10 * image[b, y1, x0, 0] + w11 * image[b, y1, x1, 0]
    r1 += w10 * image[b, y1, x0, 1] + w11 * image[b, y1, x1, 1]
    r2 += w10 * image[b, y1, x0, 2] + w11 * image[b, y1, x1, 2]
    c = scale[b] * w / np.sqrt(r0 * r0 + r1 * r1 + r2 * r2 + eps * eps)
    gx = zero
    gy = zero
    for k in range(3):
        q = c * (r0 if k == 0 else (r1 if k == 1 else r2))  # ∂L/∂I(u_i), channel k
        if need_colors:
            grad_colors[b, i, k] = -q
        if need_positions:
            i00 = image[b, y0, x0, k]
            i01 = image[b, y0, x1, k]
            i10 = image[b, y1, x0, k]
            i11 = image[b, y1, x1, k]
            gx += q * ((one - fy) * (i01 - i00) + fy * (i11 - i10))  # q · ∂I/∂x
            gy += q * ((one - fx) * (i10 - i00) + fx * (i11 - i01))  # q · ∂I/∂y
        if need_image:
            grad_image[b, y0, x0, k] += w00 * q
            grad_image[b, y0, x1, k] += w01 * q
            grad_image[b, y1, x0, k] += w10 * q
            grad_image[b, y1, x1, k] += w11 * q
    if need_positions:
        grad_positions[b, i, 0] = gx
        grad_positions[b, i, 1] = gy


def _backward_by_vertex(image, positions, colors, weights, eps, scale, grad_positions,
                        grad_colors, need_positions, need_colors):
    """Per-vertex gradients only (no image scatter): prange over (image, chunk)."""
    n_img, n_vert = positions.shape[0], positions.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        for i in range(lo, min(n_vert, lo + CHUNK)):
            _vertex_backward(image, positions, colors, weights, eps, scale, b, i, image,
                             grad_positions, grad_colors, False, need_positions, need_colors)


def _backward_by_image(image, positions, colors, weights, eps, scale, grad_image,
                       grad_positions, grad_colors, need_positions, need_colors):
    """All gradients including the image scatter: prange over images, vertices serial."""
    n_img, n_vert = positions.shape[0], positions.shape[1]
    for b in prange(n_img):
        for i in range(n_vert):
            _vertex_backward(image, positions, colors, weights, eps, scale, b, i, grad_image,
                             grad_positions, grad_colors, True, need_positions, need_colors)


# Compiled variants. Small inputs run the serial one: waking the thread pool costs more than
# the work below PARALLEL_MIN vertices (over the batch).
PARALLEL_MIN = 4 * CHUNK
_forward_par = numba.njit(parallel=True, cache=True)(_forward)
_forward_ser = serial_twin(_forward)
_backward_by_vertex_par = numba.njit(parallel=True, cache=True)(_backward_by_vertex)
_backward_by_vertex_ser = serial_twin(_backward_by_vertex)
_backward_by_image_par = numba.njit(parallel=True, cache=True)(_backward_by_image)
_backward_by_image_ser = serial_twin(_backward_by_image)


def _parallel_min() -> int:
    """Work size from which the parallel variant runs: PARALLEL_MIN, or never on one Numba
    thread (a parallel launch on Numba's workqueue layer costs ~40 µs; facelab._threads)."""
    return PARALLEL_MIN if parallel_threads() > 1 else 1 << 62


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def photometric_forward(image, positions, colors, weights, eps: float):
    """CPU tensors image (B, H, W, 3), positions (B, V, 2), colors (B, V, 3), weights (B, V),
    one dtype → (loss (B,), count (B,)) with count = Σ_i w_i over in-image vertices."""
    img, pos, col, wts = _np(image), _np(positions), _np(colors), _np(weights)
    err = np.empty(wts.shape, dtype=col.dtype)
    w_eff = np.empty(wts.shape, dtype=col.dtype)
    kernel = _forward_par if wts.size >= _parallel_min() else _forward_ser
    kernel(img, pos, col, wts, col.dtype.type(eps), err, w_eff)
    total = err.sum(axis=1, dtype=np.float64)
    count = w_eff.sum(axis=1, dtype=np.float64)
    loss = np.where(count > 0, total / np.where(count > 0, count, 1.0), 0.0)
    return torch.from_numpy(loss.astype(col.dtype)), torch.from_numpy(count.astype(col.dtype))


def photometric_backward(image, positions, colors, weights, eps: float, count, grad_loss,
                         needs=(True, True, True)):
    """(grad_image, grad_positions, grad_colors) for grad_loss (B,); None where not needed."""
    if not any(needs):
        return None, None, None
    img, pos, col, wts = _np(image), _np(positions), _np(colors), _np(weights)
    cnt, g = _np(count), _np(grad_loss)
    scale = np.where(cnt > 0, g / np.where(cnt > 0, cnt, 1), 0).astype(col.dtype)  # g_b / Σw
    grad_positions = np.empty_like(pos) if needs[1] else np.empty((0, 0, 2), col.dtype)
    grad_colors = np.empty_like(col) if needs[2] else np.empty((0, 0, 3), col.dtype)
    grad_image = None
    if needs[0]:
        grad_image = np.zeros_like(img)
        kernel = _backward_by_image_par if wts.size >= _parallel_min() else _backward_by_image_ser
        kernel(img, pos, col, wts, col.dtype.type(eps), scale, grad_image,
                              grad_positions, grad_colors, bool(needs[1]), bool(needs[2]))
    else:
        kernel = _backward_by_vertex_par if wts.size >= _parallel_min() else _backward_by_vertex_ser
        kernel(img, pos, col, wts, col.dtype.type(eps), scale, grad_positions,
                               grad_colors, bool(needs[1]), bool(needs[2]))
    return (torch.from_numpy(grad_image) if needs[0] else None,
            torch.from_numpy(grad_positions) if needs[1] else None,
            torch.from_numpy(grad_colors) if needs[2] else None)
