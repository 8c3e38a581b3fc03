"""Numba CPU kernels for SH shading, MoFA Eq. (4) (see ``reference.py`` for the formulas).

umap-style: each kernel is a plain Python function (debuggable, runnable as is) and the
compiled variants are made from it with ``numba.njit(parallel=True, cache=True)`` (and a serial
``numba.njit(cache=True)`` one for inputs under ``PARALLEL_MIN`` vertices).

Parallelism is race-free by construction:
* ``prange`` runs over (image, chunk of ``CHUNK`` vertices); an iteration writes only its
  own vertices' outputs and gradients (albedo, normals);
* the lighting gradient ∂L/∂γ is a sum over vertices: each chunk writes its own partial sum
  (B, n_chunks, 9, 3), and the partials are summed afterwards (deterministic: the chunking
  does not depend on the thread count).

Arithmetic is in the arrays' dtype (float32 stays float32; a chunk's ∂L/∂γ partial sum is
accumulated in that dtype over at most ``CHUNK`` vertices, the chunks are summed in float64).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange

from facelab._threads import parallel_threads
from facelab.numba_cache import serial_twin
from facelab.shading.reference import C0, C1, C2, C3, C4

__all__ = ["CHUNK", "sh_shade_backward", "sh_shade_forward"]

CHUNK = 1024  # vertices per parallel work item (and per partial sum of ∂L/∂γ)


def _forward(albedo, normals, gamma, out):
    """albedo, normals, out: (B, V, 3); gamma: (B, 9, 3). Arithmetic in the arrays' dtype."""
    n_img, n_vert = albedo.shape[0], albedo.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = albedo.dtype.type
    one, three = real(1.0), real(3.0)
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        hi = min(n_vert, lo + CHUNK)
        for k in range(3):
            # γ_bk premultiplied by the basis constants: s_k = Σ_b γ_bk H_b(n)
            g0 = gamma[b, 0, k] * real(C0)
            g1 = gamma[b, 1, k] * real(C1)
            g2 = gamma[b, 2, k] * real(C1)
            g3 = gamma[b, 3, k] * real(C1)
            g4 = gamma[b, 4, k] * real(C2)
            g5 = gamma[b, 5, k] * real(C2)
            g6 = gamma[b, 6, k] * real(C3)
            g7 = gamma[b, 7, k] * real(C2)
            g8 = gamma[b, 8, k] * real(C4)
            for i in range(lo, hi):
                x = normals[b, i, 0]
                y = normals[b, i, 1]
                z = normals[b, i, 2]
                # order [1, y, z, x, xy, yz, 3z²−1, xz, x²−y²]
                s = (g0 + g1 * y + g2 * z + g3 * x + g4 * x * y + g5 * y * z
                     + g6 * (three * z * z - one) + g7 * x * z + g8 * (x * x - y * y))
                out[b, i, k] = albedo[b, i, k] * s  # c = r ⊙ Σ_b γ_b H_b(n)


def _backward(albedo, normals, gamma, grad_out, grad_albedo, grad_normals, partial,
              need_albedo, need_normals, need_gamma):
    """∂L/∂r = g ⊙ s, ∂L/∂n = Σ_k g_k r_k Σ_b γ_bk ∇H_b(n), and the ∂L/∂γ partial sums
    partial[b, c] = Σ_{i in chunk c} (g_i ⊙ r_i) H(n_i)ᵀ (B, n_chunks, 9, 3), summed later.
    Loops run channel by channel with scalar accumulators (vectorisable)."""
    n_img, n_vert = albedo.shape[0], albedo.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = albedo.dtype.type
    one, two, three, six = real(1.0), real(2.0), real(3.0), real(6.0)
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        c = t - b * n_chunks
        lo = c * CHUNK
        hi = min(n_vert, lo + CHUNK)
        for k in range(3):
            g0 = gamma[b, 0, k] * real(C0)  # γ_bk premultiplied by the basis constants
            g1 = gamma[b, 1, k] * real(C1)
            g2 = gamma[b, 2, k] * real(C1)
            g3 = gamma[b, 3, k] * real(C1)
            g4 = gamma[b, 4, k] * real(C2)
            g5 = gamma[b, 5, k] * real(C2)
            g6 = gamma[b, 6, k] * real(C3)
            g7 = gamma[b, 7, k] * real(C2)
            g8 = gamma[b, 8, k] * real(C4)
            if need_albedo:
                for i in range(lo, hi):
                    x = normals[b, i, 0]
                    y = normals[b, i, 1]
                    z = normals[b, i, 2]
                    s = (g0 + g1 * y + g2 * z + g3 * x + g4 * x * y + g5 * y * z
                         + g6 * (three * z * z - one) + g7 * x * z + g8 * (x * x - y * y))
                    grad_albedo[b, i, k] = grad_out[b, i, k] * s  # g ⊙ s
            if need_normals:
                # Σ_b γ_bk ∇H_b(n), row by row of reference.irradiance_basis_grad
                for i in range(lo, hi):
                    x = normals[b, i, 0]
                    y = normals[b, i, 1]
                    z = normals[b, i, 2]
                    a = grad_out[b, i, k] * albedo[b, i, k]  # g ⊙ r
                    dx = a * (g3 + g4 * y + g7 * z + two * g8 * x)
                    dy = a * (g1 + g4 * x + g5 * z - two * g8 * y)
                    dz = a * (g2 + g5 * y + six * g6 * z + g7 * x)
                    if k == 0:
                        grad_normals[b, i, 0] = dx
                        grad_normals[b, i, 1] = dy
                        grad_normals[b, i, 2] = dz
                    else:
                        grad_normals[b, i, 0] += dx
                        grad_normals[b, i, 1] += dy
                        grad_normals[b, i, 2] += dz
            if need_gamma:
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = real(0.0)
                for i in range(lo, hi):
                    x = normals[b, i, 0]
                    y = normals[b, i, 1]
                    z = normals[b, i, 2]
                    a = grad_out[b, i, k] * albedo[b, i, k]  # (g ⊙ r)_k
                    s0 += a
                    s1 += a * y
                    s2 += a * z
                    s3 += a * x
                    s4 += a * x * y
                    s5 += a * y * z
                    s6 += a * (three * z * z - one)
                    s7 += a * x * z
                    s8 += a * (x * x - y * y)
                partial[b, c, 0, k] = s0 * C0  # Σ_i a_ik H_j(n_i), constants applied once
                partial[b, c, 1, k] = s1 * C1
                partial[b, c, 2, k] = s2 * C1
                partial[b, c, 3, k] = s3 * C1
                partial[b, c, 4, k] = s4 * C2
                partial[b, c, 5, k] = s5 * C2
                partial[b, c, 6, k] = s6 * C3
                partial[b, c, 7, k] = s7 * C2
                partial[b, c, 8, k] = s8 * C4


# Compiled variants. Small inputs run the serial one: waking the thread pool costs more than
# the work below PARALLEL_MIN vertices (over the batch).
PARALLEL_MIN = 4 * CHUNK
_forward_par = numba.njit(parallel=True, cache=True)(_forward)
_forward_ser = serial_twin(_forward)
_backward_par = numba.njit(parallel=True, cache=True)(_backward)
_backward_ser = serial_twin(_backward)


def _parallel_min() -> int:
    """Work size from which the parallel variant runs: PARALLEL_MIN, or never on one Numba
    thread (a parallel launch on Numba's workqueue layer costs ~40 µs; facelab._threads)."""
    return PARALLEL_MIN if parallel_threads() > 1 else 1 << 62


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def sh_shade_forward(albedo: torch.Tensor, normals: torch.Tensor, gamma: torch.Tensor):
    """CPU tensors albedo (B, V, 3), normals (B, V, 3), gamma (B, 9, 3), one dtype → (B, V, 3)."""
    out = torch.empty_like(albedo, memory_format=torch.contiguous_format)
    kernel = _forward_par if out.shape[0] * out.shape[1] >= _parallel_min() else _forward_ser
    kernel(_np(albedo), _np(normals), _np(gamma), out.numpy())
    return out


def sh_shade_backward(albedo, normals, gamma, grad_out, needs=(True, True, True)):
    """(grad_albedo, grad_normals, grad_gamma) for grad_out (B, V, 3); None where not needed."""
    if not any(needs):
        return None, None, None
    a, n, g, go = _np(albedo), _np(normals), _np(gamma), _np(grad_out)
    empty = np.empty((0, 0, 3), a.dtype)
    ga = np.empty_like(a) if needs[0] else empty
    gn = np.empty_like(n) if needs[1] else empty
    n_chunks = (a.shape[1] + CHUNK - 1) // CHUNK
    partial = np.zeros((a.shape[0], n_chunks if needs[2] else 0, 9, 3), dtype=np.float64)
    kernel = _backward_par if a.shape[0] * a.shape[1] >= _parallel_min() else _backward_ser
    kernel(a, n, g, go, ga, gn, partial, bool(needs[0]), bool(needs[1]), bool(needs[2]))
    return (torch.from_numpy(ga) if needs[0] else None,
            torch.from_numpy(gn) if needs[1] else None,
            torch.from_numpy(partial.sum(axis=1).astype(g.dtype)) if needs[2] else None)
