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

from facelab._threads import parallel_threads
from facelab.numba_cache import serial_twin
from facelab.shading.reference import C0, C1, C2, C3, C4
from facelab.vertex_losses.cpu import _bilinear_cell

__all__ = ["CHUNK", "all_finite", "scale_gradients", "shaded_photometric_backward",
           "shaded_photometric_forward", "shaded_photometric_forward_grad"]

CHUNK = 1024  # vertices per parallel work item (and per partial sum)
BASIS_CONSTANTS = np.array([C0, C1, C1, C1, C2, C2, C3, C2, C4])  # (9,)


@numba.njit(cache=True, inline="always")
def _light(gamma_c, b, k):
    """The 9 premultiplied coefficients of channel k of image b, as scalars (hoisted out of
    the vertex loop: the compiler cannot prove the output arrays do not alias gamma_c)."""
    return (gamma_c[b, 0, k], gamma_c[b, 1, k], gamma_c[b, 2, k], gamma_c[b, 3, k],
            gamma_c[b, 4, k], gamma_c[b, 5, k], gamma_c[b, 6, k], gamma_c[b, 7, k],
            gamma_c[b, 8, k])


@numba.njit(cache=True, inline="always")
def _irradiance(g, x, y, h4, h5, h6, h7, h8, z):
    """s = Σ_j γc_j H_j(n) for one channel's coefficients g (a 9-tuple)."""
    return (g[0] + g[1] * y + g[2] * z + g[3] * x + g[4] * h4 + g[5] * h5 + g[6] * h6
            + g[7] * h7 + g[8] * h8)


@numba.njit(cache=True, inline="always")
def _sample(image, b, k, x0, x1, y0, y1, w00, w01, w10, w11):
    """Bilinear sample of channel k: I(u) with the four neighbours' weights."""
    return (w00 * image[b, y0, x0, k] + w01 * image[b, y0, x1, k]
            + w10 * image[b, y1, x0, k] + w11 * image[b, y1, x1, k])


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
        ga, gb, gc = _light(gamma_c, b, 0), _light(gamma_c, b, 1), _light(gamma_c, b, 2)
        total = zero
        count = zero
        for i in range(c * CHUNK, min(n_vert, c * CHUNK + CHUNK)):
            ux = positions[b, i, 0]
            uy = positions[b, i, 1]
            w = weights[b, i]
            if not (ux >= 0 and ux < width and uy >= 0 and uy < height) or w == 0:
                continue  # outside the image or invisible: w_i = 0
            x0, x1, y0, y1, fx, fy = _bilinear_cell(ux, uy, half, height, width)
            w00, w01, w10, w11 = (one - fy) * (one - fx), (one - fy) * fx, fy * (one - fx), fy * fx
            x = normals[b, i, 0]
            y = normals[b, i, 1]
            z = normals[b, i, 2]
            h4, h5, h6, h7, h8 = x * y, y * z, three * z * z - one, x * z, x * x - y * y
            # I(u_i) − c_i with c_i = r_i ⊙ s_i (Eq. 4), channel by channel
            r0 = (_sample(image, b, 0, x0, x1, y0, y1, w00, w01, w10, w11)
                  - albedo[b, i, 0] * _irradiance(ga, x, y, h4, h5, h6, h7, h8, z))
            r1 = (_sample(image, b, 1, x0, x1, y0, y1, w00, w01, w10, w11)
                  - albedo[b, i, 1] * _irradiance(gb, x, y, h4, h5, h6, h7, h8, z))
            r2 = (_sample(image, b, 2, x0, x1, y0, y1, w00, w01, w10, w11)
                  - albedo[b, i, 2] * _irradiance(gc, x, y, h4, h5, h6, h7, h8, z))
            total += w * (np.sqrt(r0 * r0 + r1 * r1 + r2 * r2 + eps * eps) - eps)  # Eq. 8
            count += w
        partial[b, c, 0] = total
        partial[b, c, 1] = count


@numba.njit(cache=True, inline="always")
def _normal_grad(a, g, x, y, z, two, six):
    """a · ∇_n s for one channel: (∂/∂x, ∂/∂y, ∂/∂z) of Σ_j γc_j H_j(n), times a."""
    return (a * (g[3] + g[4] * y + g[7] * z + two * g[8] * x),
            a * (g[1] + g[4] * x + g[5] * z - two * g[8] * y),
            a * (g[2] + g[5] * y + six * g[6] * z + g[7] * x))


@numba.njit(cache=True, inline="always")
def _position_grad(image, b, k, q, x0, x1, y0, y1, fx, fy, one):
    """q · ∂I_k/∂u: the (x, y) gradient of the bilinear sample of channel k, times q."""
    i00 = image[b, y0, x0, k]
    i01 = image[b, y0, x1, k]
    i10 = image[b, y1, x0, k]
    i11 = image[b, y1, x1, k]
    return (q * ((one - fy) * (i01 - i00) + fy * (i11 - i10)),
            q * ((one - fx) * (i10 - i00) + fx * (i11 - i01)))


def _forward_grad(image, positions, albedo, normals, gamma_c, weights, eps, partial,
                  grad_positions, grad_albedo, grad_normals, gamma_partial, need_positions,
                  need_albedo, need_normals, need_gamma):
    """The forward sums of :func:`_forward` and, in the same pass, the gradients of the
    image's *unnormalised* sum S_b = Σ_i w_i e_i (backward scales them by ∂L/∂loss_b / Σ w):
    per-vertex ∂S/∂u, ∂S/∂r, ∂S/∂n (zero where w_i = 0) and the ∂S/∂γ partial sums
    gamma_partial[b, c, j, k] = Σ_{i in chunk c} a_ik H_j(n_i) (constant-free H_j; (B,
    n_chunks, 9, 3)), with a_ik = −q_ik r_ik and q_i = w_i (I(u_i) − c_i) / sqrt(|·|² + ε²)
    (∂S/∂c_i = −q_i). One pass: the bilinear cell, the basis and the residual are computed
    once per vertex for the loss and all four gradients."""
    n_img, height, width = image.shape[0], image.shape[1], image.shape[2]
    n_vert = positions.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = albedo.dtype.type
    zero, one, two, three, six, half = (real(0.0), real(1.0), real(2.0), real(3.0), real(6.0),
                                        real(0.5))
    fw, fh = real(width), real(height)
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        c = t - b * n_chunks
        ga, gb, gc = _light(gamma_c, b, 0), _light(gamma_c, b, 1), _light(gamma_c, b, 2)
        lo, hi = c * CHUNK, min(n_vert, c * CHUNK + CHUNK)
        # a_ik of the chunk's vertices (0 where w_i = 0), for the ∂S/∂γ sums after the loop
        a_chunk = np.empty((hi - lo if need_gamma else 0, 3), dtype=albedo.dtype)
        total = zero
        count = zero
        for i in range(lo, hi):
            # Branch-free: a vertex outside the image gets w = 0 and samples the clamped
            # border, so its loss term and gradients are exact zeros (the inputs are finite
            # and the norm >= eps > 0); ~15 % faster than skipping it with a branch.
            ux = positions[b, i, 0]
            uy = positions[b, i, 1]
            inside = (ux >= zero) & (ux < fw) & (uy >= zero) & (uy < fh)
            w = weights[b, i] if inside else zero
            x0, x1, y0, y1, fx, fy = _bilinear_cell(min(max(ux, zero), fw),
                                                    min(max(uy, zero), fh), half, height, width)
            w00, w01, w10, w11 = (one - fy) * (one - fx), (one - fy) * fx, fy * (one - fx), fy * fx
            x = normals[b, i, 0]
            y = normals[b, i, 1]
            z = normals[b, i, 2]
            h4, h5, h6, h7, h8 = x * y, y * z, three * z * z - one, x * z, x * x - y * y
            s0 = _irradiance(ga, x, y, h4, h5, h6, h7, h8, z)
            s1 = _irradiance(gb, x, y, h4, h5, h6, h7, h8, z)
            s2 = _irradiance(gc, x, y, h4, h5, h6, h7, h8, z)
            al0, al1, al2 = albedo[b, i, 0], albedo[b, i, 1], albedo[b, i, 2]
            r0 = _sample(image, b, 0, x0, x1, y0, y1, w00, w01, w10, w11) - al0 * s0
            r1 = _sample(image, b, 1, x0, x1, y0, y1, w00, w01, w10, w11) - al1 * s1
            r2 = _sample(image, b, 2, x0, x1, y0, y1, w00, w01, w10, w11) - al2 * s2
            norm = np.sqrt(r0 * r0 + r1 * r1 + r2 * r2 + eps * eps)
            total += w * (norm - eps)  # Eq. 8
            count += w
            coef = w / norm
            q0, q1, q2 = coef * r0, coef * r1, coef * r2  # ∂S/∂I(u_i); ∂S/∂c_i = −q_i
            if need_positions:
                gx0, gy0 = _position_grad(image, b, 0, q0, x0, x1, y0, y1, fx, fy, one)
                gx1, gy1 = _position_grad(image, b, 1, q1, x0, x1, y0, y1, fx, fy, one)
                gx2, gy2 = _position_grad(image, b, 2, q2, x0, x1, y0, y1, fx, fy, one)
                grad_positions[b, i, 0] = (gx0 + gx1) + gx2
                grad_positions[b, i, 1] = (gy0 + gy1) + gy2
            if need_albedo:
                grad_albedo[b, i, 0] = -q0 * s0
                grad_albedo[b, i, 1] = -q1 * s1
                grad_albedo[b, i, 2] = -q2 * s2
            e0, e1, e2 = -q0 * al0, -q1 * al1, -q2 * al2  # a_ik = (∂S/∂c ⊙ r)_k
            if need_normals:
                dx0, dy0, dz0 = _normal_grad(e0, ga, x, y, z, two, six)
                dx1, dy1, dz1 = _normal_grad(e1, gb, x, y, z, two, six)
                dx2, dy2, dz2 = _normal_grad(e2, gc, x, y, z, two, six)
                grad_normals[b, i, 0] = (dx0 + dx1) + dx2
                grad_normals[b, i, 1] = (dy0 + dy1) + dy2
                grad_normals[b, i, 2] = (dz0 + dz1) + dz2
            if need_gamma:
                a_chunk[i - lo, 0] = e0
                a_chunk[i - lo, 1] = e1
                a_chunk[i - lo, 2] = e2
        partial[b, c, 0] = total
        partial[b, c, 1] = count
        if need_gamma:  # channel by channel: 9 accumulators stay in registers (L1-hot chunk)
            for k in range(3):
                t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = t8 = zero
                for i in range(lo, hi):
                    a = a_chunk[i - lo, k]
                    x = normals[b, i, 0]
                    y = normals[b, i, 1]
                    z = normals[b, i, 2]
                    t0 += a
                    t1 += a * y
                    t2 += a * z
                    t3 += a * x
                    t4 += a * (x * y)
                    t5 += a * (y * z)
                    t6 += a * (three * z * z - one)
                    t7 += a * (x * z)
                    t8 += a * (x * x - y * y)
                gamma_partial[b, c, 0, k] = t0
                gamma_partial[b, c, 1, k] = t1
                gamma_partial[b, c, 2, k] = t2
                gamma_partial[b, c, 3, k] = t3
                gamma_partial[b, c, 4, k] = t4
                gamma_partial[b, c, 5, k] = t5
                gamma_partial[b, c, 6, k] = t6
                gamma_partial[b, c, 7, k] = t7
                gamma_partial[b, c, 8, k] = t8


# Compiled variants: serial below PARALLEL_MIN vertices (over the batch) or on one thread.
# FAST lets LLVM reassociate and contract (fused multiply-add) the per-vertex arithmetic:
# 10-25 % faster, results within a few ulp of the reference (compared with tolerances);
# no NaN/Inf assumptions (the inputs are checked finite at the boundary anyway).
PARALLEL_MIN = 4 * CHUNK
FAST = {"contract", "reassoc", "nsz", "arcp"}
_forward_par = numba.njit(parallel=True, cache=True, fastmath=FAST)(_forward)
_forward_ser = serial_twin(_forward, fastmath=FAST)
_forward_grad_par = numba.njit(parallel=True, cache=True, fastmath=FAST)(_forward_grad)
_forward_grad_ser = serial_twin(_forward_grad, fastmath=FAST)


@numba.njit(cache=True, fastmath={"reassoc", "nsz"})
def _finite_sum(x):
    """Σ 0·x_i over a flat array: 0 when every entry is finite, NaN otherwise (vectorised;
    no ``nnan``/``ninf`` flags, so the NaN survives)."""
    acc = x.dtype.type(0.0)
    for i in range(x.size):
        acc += x[i] * x.dtype.type(0.0)
    return acc


def all_finite(*tensors) -> bool:
    """True when every entry of these contiguous CPU float tensors is finite: one compiled pass
    each (~20 ns per 1,000 entries; NumPy's ``isfinite(x.sum())`` takes ~10× longer)."""
    for t in tensors:
        if t.numel() and _finite_sum(t.detach().numpy().reshape(-1)) != 0:
            return False
    return True


def _pick(parallel, serial, n_work: int):
    return parallel if n_work >= PARALLEL_MIN and parallel_threads() > 1 else serial


def _np(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor (a copy only when it is not contiguous)."""
    return t.detach().contiguous().numpy()


def _gamma_c(gamma: np.ndarray) -> np.ndarray:
    """γ premultiplied by the basis constants: (B, 9, 3), gamma's dtype."""
    return (gamma * BASIS_CONSTANTS[:, None].astype(gamma.dtype)).astype(gamma.dtype)


def _loss(partial: np.ndarray, dtype):
    """(loss (B,), count (B,)) tensors from the per-chunk sums (B, n_chunks, ≥ 2)."""
    sums = partial[:, :, :2].sum(axis=1, dtype=np.float64)  # (B, 2)
    total, count = sums[:, 0], sums[:, 1]
    loss = np.where(count > 0, total / np.where(count > 0, count, 1.0), 0.0)
    return torch.from_numpy(loss.astype(dtype)), torch.from_numpy(count.astype(dtype))


def shaded_photometric_forward(image, positions, albedo, normals, gamma, weights, eps: float):
    """CPU tensors of one dtype: image (B, H, W, 3), positions (B, V, 2), albedo and normals
    (B, V, 3), gamma (B, 9, 3), weights (B, V) → (loss (B,), count (B,))."""
    img, pos, alb, nrm, wts = (_np(t) for t in (image, positions, albedo, normals, weights))
    n_img, n_vert = pos.shape[0], pos.shape[1]
    partial = np.zeros((n_img, (n_vert + CHUNK - 1) // CHUNK, 2), dtype=alb.dtype)
    _pick(_forward_par, _forward_ser, n_img * n_vert)(
        img, pos, alb, nrm, _gamma_c(_np(gamma)), wts, alb.dtype.type(eps), partial)
    return _loss(partial, alb.dtype)


def shaded_photometric_forward_grad(image, positions, albedo, normals, gamma, weights,
                                    eps: float, needs=(True, True, True, True)):
    """The forward and, in the same compiled pass, the unscaled gradients that
    :func:`scale_gradients` turns into the backward: (loss (B,), count (B,), state), state =
    (∂S/∂positions (B, V, 2), ∂S/∂albedo (B, V, 3), ∂S/∂normals (B, V, 3), ∂S/∂γ (B, 9, 3))
    of the unnormalised sums S_b, None where ``needs`` (same order) is False."""
    img, pos, alb, nrm, wts = (_np(t) for t in (image, positions, albedo, normals, weights))
    real = alb.dtype
    n_img, n_vert = pos.shape[0], pos.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    grad_positions = np.empty_like(pos) if needs[0] else np.empty((0, 0, 2), real)
    grad_albedo = np.empty_like(alb) if needs[1] else np.empty((0, 0, 3), real)
    grad_normals = np.empty_like(nrm) if needs[2] else np.empty((0, 0, 3), real)
    partial = np.empty((n_img, n_chunks, 2), dtype=real)
    gamma_partial = np.empty((n_img, n_chunks if needs[3] else 0, 9, 3), dtype=real)
    _pick(_forward_grad_par, _forward_grad_ser, n_img * n_vert)(
        img, pos, alb, nrm, _gamma_c(_np(gamma)), wts, real.type(eps), partial, grad_positions,
        grad_albedo, grad_normals, gamma_partial, *(bool(n) for n in needs))
    loss, count = _loss(partial, real)
    grad_gamma = None
    if needs[3]:
        grad_gamma = gamma_partial.sum(axis=1, dtype=np.float64) * BASIS_CONSTANTS[:, None]
        grad_gamma = torch.from_numpy(grad_gamma.astype(real))
    state = (torch.from_numpy(grad_positions) if needs[0] else None,
             torch.from_numpy(grad_albedo) if needs[1] else None,
             torch.from_numpy(grad_normals) if needs[2] else None, grad_gamma)
    return loss, count, state


def scale_gradients(state, count, grad_loss, *, inplace: bool = False):
    """The backward from :func:`shaded_photometric_forward_grad`'s state: each image's
    gradients times scale_b = ∂L/∂loss_b / Σ_i w_i (0 for an image without visible vertices).
    ``inplace=True`` scales the state's own tensors (no allocation; the state is used up)."""
    safe = torch.where(count > 0, count, torch.ones_like(count))
    scale = torch.where(count > 0, grad_loss / safe, torch.zeros_like(count))  # (B,)
    if scale.shape[0] == 1:  # a Python number: one fused multiply, no broadcast set-up
        s = float(scale[0])
        if inplace:
            return tuple(None if g is None else g.mul_(s) for g in state)
        return tuple(None if g is None else g * s for g in state)
    out = []
    for g in state:
        if g is not None:
            sb = scale.view(-1, *([1] * (g.ndim - 1)))
            g = g.mul_(sb) if inplace else g * sb
        out.append(g)
    return tuple(out)


def shaded_photometric_backward(image, positions, albedo, normals, gamma, weights, eps: float,
                                count, grad_loss, needs=(True, True, True, True)):
    """(grad_positions, grad_albedo, grad_normals, grad_gamma) for grad_loss (B,); None where
    ``needs`` (same order) is False. Recomputes the forward pass (the autograd op keeps the
    forward's state instead: :func:`shaded_photometric_forward_grad`)."""
    if not any(needs):
        return None, None, None, None
    _, _, state = shaded_photometric_forward_grad(image, positions, albedo, normals, gamma,
                                                  weights, eps, needs)
    return scale_gradients(state, count, grad_loss)
