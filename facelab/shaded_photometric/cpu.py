"""Numba CPU kernels for shading + photometric loss, MoFA Eqs. (4) and (8), one pass each way.

umap-style: kernels are plain Python functions (debuggable, runnable as is); the compiled
variants are made from them with ``numba.njit(cache=True)``, parallel (``prange``) and serial
(used below ``PARALLEL_MIN`` vertices over the batch, or with one Numba thread, where waking
the pool costs more than it saves). Formulas: ``reference.py`` and the two ops it chains.

Race-free by construction: ``prange`` runs over (image, chunk of ``CHUNK`` vertices); a chunk
writes only its own vertices' gradients and its own partial sums (forward: Σ w e and Σ w;
backward: ∂L/∂γ), which are summed afterwards in float64 — deterministic, independent of
the thread count.

Arithmetic is in the arrays' dtype. ``gamma_c`` is γ premultiplied by the irradiance
basis constants (B, 9, 3), so H_b(n) below is the constant-free monomial
[1, y, z, x, xy, yz, 3z²−1, xz, x²−y²].
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange

from facelab.shading.reference import C0, C1, C2, C3, C4
from facelab.vertex_losses.cpu import _bilinear_cell

__all__ = ["CHUNK", "shaded_photometric_backward", "shaded_photometric_forward"]

CHUNK = 1024  # vertices per parallel work item (and per partial sum)
BASIS_CONSTANTS = np.array([C0, C1, C1, C1, C2, C2, C3, C2, C4])  # (9,)


def _forward(image, positions, albedo, normals, gamma_c, weights, eps, partial):
    """partial[b, c] = (Σ_{i in chunk c} w_i e_i, Σ_{i in chunk c} w_i): (B, n_chunks, 2)."""
    n_img, height, width = image.shape[0], image.shape[1], image.shape[2]
    n_vert = positions.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = albedo.dtype.type
    zero, one, three, half = real(0.0), real(1.0), real(3.0), real(0.5)
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        c = t - b * n_chunks
        total = zero
        count = zero
        for i in range(c * CHUNK, min(n_vert, c * CHUNK + CHUNK)):
            ux = positions[b, i, 0]
            uy = positions[b, i, 1]
            w = weights[b, i]
            if not (ux >= 0 and ux < width and uy >= 0 and uy < height) or w == 0:
                continue  # outside the image or invisible: w_i = 0
            x0, x1, y0, y1, fx, fy = _bilinear_cell(ux, uy, half, height, width)
            x = normals[b, i, 0]
            y = normals[b, i, 1]
            z = normals[b, i, 2]
            h4, h5, h6, h7, h8 = x * y, y * z, three * z * z - one, x * z, x * x - y * y
            sq = zero
            for k in range(3):
                s = (gamma_c[b, 0, k] + gamma_c[b, 1, k] * y + gamma_c[b, 2, k] * z
                     + gamma_c[b, 3, k] * x + gamma_c[b, 4, k] * h4 + gamma_c[b, 5, k] * h5
                     + gamma_c[b, 6, k] * h6 + gamma_c[b, 7, k] * h7 + gamma_c[b, 8, k] * h8)
                sample = ((one - fy) * ((one - fx) * image[b, y0, x0, k]
                                        + fx * image[b, y0, x1, k])
                          + fy * ((one - fx) * image[b, y1, x0, k] + fx * image[b, y1, x1, k]))
                r = sample - albedo[b, i, k] * s  # I(u_i) − c_i, c_i = r_i ⊙ s_i (Eq. 4)
                sq += r * r
            total += w * (np.sqrt(sq + eps * eps) - eps)  # Eq. 8
            count += w
        partial[b, c, 0] = total
        partial[b, c, 1] = count


def _backward(image, positions, albedo, normals, gamma_c, weights, eps, scale, grad_positions,
              grad_albedo, grad_normals, partial, need_positions, need_albedo, need_normals,
              need_gamma):
    """Per-vertex ∂L/∂u, ∂L/∂r, ∂L/∂n (zero where w_i = 0) and the ∂L/∂γ partial sums
    partial[b, c, j, k] = Σ_{i in chunk c} a_ik H_j(n_i) (constant-free H_j; (B, n_chunks, 9,
    3)), with a_ik = −q_ik r_ik and q_i = scale_b w_i (I(u_i) − c_i) / sqrt(|·|² + ε²)."""
    n_img, height, width = image.shape[0], image.shape[1], image.shape[2]
    n_vert = positions.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = albedo.dtype.type
    zero, one, two, three, six, half = (real(0.0), real(1.0), real(2.0), real(3.0), real(6.0),
                                        real(0.5))
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        c = t - b * n_chunks
        acc = np.zeros((9, 3), dtype=albedo.dtype)
        for i in range(c * CHUNK, min(n_vert, c * CHUNK + CHUNK)):
            ux = positions[b, i, 0]
            uy = positions[b, i, 1]
            w = weights[b, i]
            if not (ux >= 0 and ux < width and uy >= 0 and uy < height) or w == 0 \
                    or scale[b] == 0:
                for k in range(3):
                    if need_albedo:
                        grad_albedo[b, i, k] = zero
                    if need_normals:
                        grad_normals[b, i, k] = zero
                if need_positions:
                    grad_positions[b, i, 0] = zero
                    grad_positions[b, i, 1] = zero
                continue
            x0, x1, y0, y1, fx, fy = _bilinear_cell(ux, uy, half, height, width)
            w00, w01, w10, w11 = (one - fy) * (one - fx), (one - fy) * fx, fy * (one - fx), fy * fx
            x = normals[b, i, 0]
            y = normals[b, i, 1]
            z = normals[b, i, 2]
            h4, h5, h6, h7, h8 = x * y, y * z, three * z * z - one, x * z, x * x - y * y
            s0 = s1 = s2 = r0 = r1 = r2 = zero
            for k in range(3):
                s = (gamma_c[b, 0, k] + gamma_c[b, 1, k] * y + gamma_c[b, 2, k] * z
                     + gamma_c[b, 3, k] * x + gamma_c[b, 4, k] * h4 + gamma_c[b, 5, k] * h5
                     + gamma_c[b, 6, k] * h6 + gamma_c[b, 7, k] * h7 + gamma_c[b, 8, k] * h8)
                sample = (w00 * image[b, y0, x0, k] + w01 * image[b, y0, x1, k]
                          + w10 * image[b, y1, x0, k] + w11 * image[b, y1, x1, k])
                r = sample - albedo[b, i, k] * s
                if k == 0:
                    s0, r0 = s, r
                elif k == 1:
                    s1, r1 = s, r
                else:
                    s2, r2 = s, r
            coef = scale[b] * w / np.sqrt(r0 * r0 + r1 * r1 + r2 * r2 + eps * eps)
            gx = gy = dx = dy = dz = zero
            for k in range(3):
                q = coef * (r0 if k == 0 else (r1 if k == 1 else r2))  # ∂L/∂I(u_i); ∂L/∂c = −q
                if need_positions:
                    i00 = image[b, y0, x0, k]
                    i01 = image[b, y0, x1, k]
                    i10 = image[b, y1, x0, k]
                    i11 = image[b, y1, x1, k]
                    gx += q * ((one - fy) * (i01 - i00) + fy * (i11 - i10))  # q · ∂I/∂x
                    gy += q * ((one - fx) * (i10 - i00) + fx * (i11 - i01))  # q · ∂I/∂y
                if need_albedo:
                    grad_albedo[b, i, k] = -q * (s0 if k == 0 else (s1 if k == 1 else s2))
                a = -q * albedo[b, i, k]  # (∂L/∂c ⊙ r)_k
                if need_normals:  # Σ_b γ_bk ∇H_b(n)
                    dx += a * (gamma_c[b, 3, k] + gamma_c[b, 4, k] * y + gamma_c[b, 7, k] * z
                               + two * gamma_c[b, 8, k] * x)
                    dy += a * (gamma_c[b, 1, k] + gamma_c[b, 4, k] * x + gamma_c[b, 5, k] * z
                               - two * gamma_c[b, 8, k] * y)
                    dz += a * (gamma_c[b, 2, k] + gamma_c[b, 5, k] * y
                               + six * gamma_c[b, 6, k] * z + gamma_c[b, 7, k] * x)
                if need_gamma:
                    acc[0, k] += a
                    acc[1, k] += a * y
                    acc[2, k] += a * z
                    acc[3, k] += a * x
                    acc[4, k] += a * h4
                    acc[5, k] += a * h5
                    acc[6, k] += a * h6
                    acc[7, k] += a * h7
                    acc[8, k] += a * h8
            if need_positions:
                grad_positions[b, i, 0] = gx
                grad_positions[b, i, 1] = gy
            if need_normals:
                grad_normals[b, i, 0] = dx
                grad_normals[b, i, 1] = dy
                grad_normals[b, i, 2] = dz
        if need_gamma:
            for j in range(9):
                for k in range(3):
                    partial[b, c, j, k] = acc[j, k]


# Compiled variants: serial below PARALLEL_MIN vertices (over the batch) or on one thread.
PARALLEL_MIN = 4 * CHUNK
_forward_par = numba.njit(parallel=True, cache=True)(_forward)
_forward_ser = numba.njit(cache=True)(_forward)
_backward_par = numba.njit(parallel=True, cache=True)(_backward)
_backward_ser = numba.njit(cache=True)(_backward)


def _pick(parallel, serial, n_work: int):
    return parallel if n_work >= PARALLEL_MIN and numba.get_num_threads() > 1 else serial


def _np(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor (a copy only when it is not contiguous)."""
    return t.detach().contiguous().numpy()


def _gamma_c(gamma: np.ndarray) -> np.ndarray:
    """γ premultiplied by the basis constants: (B, 9, 3), gamma's dtype."""
    return (gamma * BASIS_CONSTANTS[:, None].astype(gamma.dtype)).astype(gamma.dtype)


def shaded_photometric_forward(image, positions, albedo, normals, gamma, weights, eps: float):
    """CPU tensors of one dtype: image (B, H, W, 3), positions (B, V, 2), albedo and normals
    (B, V, 3), gamma (B, 9, 3), weights (B, V) → (loss (B,), count (B,))."""
    img, pos, alb, nrm, wts = (_np(t) for t in (image, positions, albedo, normals, weights))
    n_img, n_vert = pos.shape[0], pos.shape[1]
    partial = np.zeros((n_img, (n_vert + CHUNK - 1) // CHUNK, 2), dtype=alb.dtype)
    _pick(_forward_par, _forward_ser, n_img * n_vert)(
        img, pos, alb, nrm, _gamma_c(_np(gamma)), wts, alb.dtype.type(eps), partial)
    sums = partial.sum(axis=1, dtype=np.float64)  # (B, 2)
    total, count = sums[:, 0], sums[:, 1]
    loss = np.where(count > 0, total / np.where(count > 0, count, 1.0), 0.0)
    return torch.from_numpy(loss.astype(alb.dtype)), torch.from_numpy(count.astype(alb.dtype))


def shaded_photometric_backward(image, positions, albedo, normals, gamma, weights, eps: float,
                                count, grad_loss, needs=(True, True, True, True)):
    """(grad_positions, grad_albedo, grad_normals, grad_gamma) for grad_loss (B,); None where
    ``needs`` (same order) is False."""
    if not any(needs):
        return None, None, None, None
    img, pos, alb, nrm, wts = (_np(t) for t in (image, positions, albedo, normals, weights))
    cnt, g = _np(count), _np(grad_loss)
    real = alb.dtype
    scale = np.where(cnt > 0, g / np.where(cnt > 0, cnt, 1), 0).astype(real)  # g_b / Σ w
    n_img, n_vert = pos.shape[0], pos.shape[1]
    grad_positions = np.empty_like(pos) if needs[0] else np.empty((0, 0, 2), real)
    grad_albedo = np.empty_like(alb) if needs[1] else np.empty((0, 0, 3), real)
    grad_normals = np.empty_like(nrm) if needs[2] else np.empty((0, 0, 3), real)
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    partial = np.zeros((n_img, n_chunks if needs[3] else 0, 9, 3), dtype=real)
    _pick(_backward_par, _backward_ser, n_img * n_vert)(
        img, pos, alb, nrm, _gamma_c(_np(gamma)), wts, real.type(eps), scale, grad_positions,
        grad_albedo, grad_normals, partial, *(bool(n) for n in needs))
    grad_gamma = None
    if needs[3]:
        grad_gamma = partial.sum(axis=1, dtype=np.float64) * BASIS_CONSTANTS[:, None]
        grad_gamma = torch.from_numpy(grad_gamma.astype(real))
    return (torch.from_numpy(grad_positions) if needs[0] else None,
            torch.from_numpy(grad_albedo) if needs[1] else None,
            torch.from_numpy(grad_normals) if needs[2] else None, grad_gamma)
