"""Numba CPU kernels for shading + photometric loss, MoFA Eqs. (4) and (8), one pass each way.

umap-style: kernels are plain Python functions (debuggable, runnable as is); the compiled
variants are made from them with ``numba.njit(cache=True)``, parallel (``prange``) and serial
(used below ``PARALLEL_MIN`` vertices over the batch, or with one Numba thread, where waking
the pool costs more than it saves). Formulas: ``reference.py`` and the two ops it chains.

Layout for the vectoriser. The kernels take flat per-image views (image (B, H·W·3),
positions (B, 2V), albedo and normals (B, 3V)) and walk each chunk in blocks of ``SUB``
vertices, three loops per block: a *gather* pass (:func:`_gather`: the bilinear cell, the
texel reads — the only data-dependent addresses — and the blend, into structure-of-arrays
scratch that stays in L1); an *arithmetic* pass (SH basis, irradiance, shading, residual,
loss and, backward, every per-vertex gradient: contiguous arrays, no branches, LLVM
vectorises it); and the ∂/∂γ *reduction* (9 accumulators per channel). Before this layout
(one scalar loop mixing reads, arithmetic and writes) the gradient pass took 25 ns per
vertex at 38k vertices; now 6.5-7 ns (gather ~3.5 ns, arithmetic + reduction ~3 ns).

Race-free by construction: ``prange`` runs over (image, chunk of ``CHUNK`` vertices); a chunk
writes only its own vertices' gradients and its own partial sums (Σ w e, Σ w, ∂/∂γ), which
are summed afterwards in float64 — deterministic, independent of the thread count.

The call path is kept short because its Python part, not the kernel, decided the time per
image in a training step (issue 15: ≤ 1 ms per image forward + backward at 38k vertices):
run between other work, as the benchmark's interleaved protocol does, every Python line,
torch call and compiled-function dispatch finds the caches cold and costs several times
what it does warm (measured per stage: the 0.25 ms kernel rose to ~0.4 ms, the ~0.1 ms
around it to ~0.6 ms). So each direction is one compiled call, :func:`_run` (γ scaling,
finiteness checks, the Σ w pre-pass, the kernel, the float64 reductions; formerly three
calls and five NumPy temporaries), the validated entry point tests the usual inputs with a
few attribute reads (``autograd._usual_cpu_call``), the batch reduction happens inside the
autograd op, and backward only scales (or returns) what the forward's pass computed.

Arithmetic is in the arrays' dtype. ``gamma_c`` is γ premultiplied by the irradiance
basis constants (B, 9, 3), so H_b(n) below is the constant-free monomial
[1, y, z, x, xy, yz, 3z²−1, xz, x²−y²].
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange

from facelab._checks import check_finite
from facelab._threads import parallel_threads
from facelab.numba_cache import serial_twin
from facelab.shading.reference import C0, C1, C2, C3, C4

__all__ = ["CHUNK", "shaded_photometric_backward",
           "shaded_photometric_forward", "shaded_photometric_forward_grad"]

CHUNK = 1024  # vertices per parallel work item (and per partial sum)
SUB = 256  # vertices per block: the scratch of one block (13 × SUB) stays in L1
BASIS_CONSTANTS = np.array([C0, C1, C1, C1, C2, C2, C3, C2, C4])  # (9,)


@numba.njit(cache=True, inline="always")
def _gather(image, positions, weights, height, width, sc, idx, tex, n, slopes):
    """Gather pass over one block of n vertices: the bilinear sample I(u_i) and its screen
    gradient, written as structure-of-arrays scratch for the arithmetic pass.

    image (H·W·3,) one image, flat; positions (2n,) and weights (n,) the block's (float, or
    bool: 0/1). Scratch:
    sc (15, SUB) in the image dtype, idx (3, SUB) uint64, tex (12, SUB). Writes sc[0] = w_i
    (0 outside [0, W) × [0, H)), sc[1:4] = I(u_i) per channel, and with ``slopes`` sc[4:7] =
    ∂I/∂x and sc[7:10] = ∂I/∂y per channel (sc[13:15] hold the fractions fx, fy). A vertex
    outside the image samples the clamped border (finite values, weight 0), so no later loop
    needs a branch. Returns Σ_j 0·(u_j + w_j): 0, or NaN when a position or weight is not
    finite (the clamp maps NaN/±Inf to the border first, so the reads stay in bounds).

    Three loops, so that only the second is scalar: cell indices and fractions (vectorised);
    the 12 texel reads (data-dependent addresses; unsigned indices, so Numba emits no
    negative-index wraparound code: 3.3 ns per vertex instead of 8.3 ns when reads and
    arithmetic shared one loop); the bilinear blend and its slopes (vectorised)."""
    real = sc.dtype.type
    zero, one, half = real(0.0), real(1.0), real(0.5)
    fw, fh = real(width), real(height)
    u1, u2 = np.uint64(1), np.uint64(2)
    row = 3 * width
    sw, fxs, fys = sc[0], sc[13], sc[14]
    base, step_x, step_y = idx[0], idx[1], idx[2]
    bad = zero
    for j in range(n):
        ux = positions[2 * j]
        uy = positions[2 * j + 1]
        inside = (ux >= zero) & (ux < fw) & (uy >= zero) & (uy < fh)
        wj = real(weights[j])  # float weights, or bool visibility (no converted copy)
        sw[j] = wj if inside else zero
        bad += zero * ((ux + uy) + wj)
        cx = ux if ux > zero else zero  # clamped to [0, W] × [0, H]; NaN ↦ 0 (explicit
        cy = uy if uy > zero else zero  # comparisons: no reliance on min/max NaN rules)
        x = (cx if cx < fw else fw) - half  # pixel centre (j + 0.5) ↦ array index j
        y = (cy if cy < fh else fh) - half
        xf = np.floor(x)
        yf = np.floor(y)
        xi = int(xf)
        yi = int(yf)
        fxs[j] = x - xf
        fys[j] = y - yf
        x0 = max(xi, 0)  # neighbours clamped to the border (reference.bilinear_cell)
        y0 = max(yi, 0)
        base[j] = row * y0 + 3 * x0
        step_x[j] = 3 * (min(xi + 1, width - 1) - x0)
        step_y[j] = row * (min(yi + 1, height - 1) - y0)
    for j in range(n):
        p00 = base[j]
        p01 = p00 + step_x[j]
        p10 = p00 + step_y[j]
        p11 = p10 + step_x[j]
        tex[0, j] = image[p00]
        tex[1, j] = image[p00 + u1]
        tex[2, j] = image[p00 + u2]
        tex[3, j] = image[p01]
        tex[4, j] = image[p01 + u1]
        tex[5, j] = image[p01 + u2]
        tex[6, j] = image[p10]
        tex[7, j] = image[p10 + u1]
        tex[8, j] = image[p10 + u2]
        tex[9, j] = image[p11]
        tex[10, j] = image[p11 + u1]
        tex[11, j] = image[p11 + u2]
    for k in range(3):
        t00, t01, t10, t11 = tex[k], tex[3 + k], tex[6 + k], tex[9 + k]
        sample = sc[1 + k]
        if slopes:
            slope_x, slope_y = sc[4 + k], sc[7 + k]
            for j in range(n):
                fx = fxs[j]
                fy = fys[j]
                i00, i01, i10, i11 = t00[j], t01[j], t10[j], t11[j]
                top = i00 + fx * (i01 - i00)
                bottom = i10 + fx * (i11 - i10)
                sample[j] = top + fy * (bottom - top)
                slope_x[j] = (one - fy) * (i01 - i00) + fy * (i11 - i10)
                slope_y[j] = bottom - top
        else:
            for j in range(n):
                fx = fxs[j]
                top = t00[j] + fx * (t01[j] - t00[j])
                bottom = t10[j] + fx * (t11[j] - t10[j])
                sample[j] = top + fys[j] * (bottom - top)
    return bad


@numba.njit(cache=True, inline="always")
def _scratch(dtype):
    """The per-work-item scratch of :func:`_gather`: (sc (15, SUB), idx (3, SUB) uint64,
    tex (12, SUB))."""
    return (np.empty((15, SUB), dtype=dtype), np.empty((3, SUB), dtype=np.uint64),
            np.empty((12, SUB), dtype=dtype))


def _forward(image, positions, albedo, normals, gamma_c, weights, eps, height, width, partial):
    """partial[b, c] = (Σ_{i in chunk c} w_i e_i, Σ_{i in chunk c} w_i, finite flag):
    (B, n_chunks, 3); the flag is 0, or NaN when an input read in the chunk (position,
    weight, albedo, normal) is not finite — the kernel checks what it reads anyway, so the
    validated entry point need not make a separate pass over those inputs.

    Flat per-image views (C order): image (B, H·W·3), positions (B, 2V), albedo and normals
    (B, 3V), weights (B, V); gamma_c (B, 9, 3). Per block of SUB vertices: the gather pass
    (:func:`_gather`), then one arithmetic loop over contiguous arrays that LLVM vectorises."""
    n_img = image.shape[0]
    n_vert = weights.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = albedo.dtype.type
    zero, one, three = real(0.0), real(1.0), real(3.0)
    eps2 = eps * eps
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        c = t - b * n_chunks
        g = gamma_c[b]
        a0, a1, a2, a3, a4, a5, a6, a7, a8 = (g[0, 0], g[1, 0], g[2, 0], g[3, 0], g[4, 0],
                                              g[5, 0], g[6, 0], g[7, 0], g[8, 0])
        b0, b1, b2, b3, b4, b5, b6, b7, b8 = (g[0, 1], g[1, 1], g[2, 1], g[3, 1], g[4, 1],
                                              g[5, 1], g[6, 1], g[7, 1], g[8, 1])
        c0, c1, c2, c3, c4, c5, c6, c7, c8 = (g[0, 2], g[1, 2], g[2, 2], g[3, 2], g[4, 2],
                                              g[5, 2], g[6, 2], g[7, 2], g[8, 2])
        sc, idx, tex = _scratch(albedo.dtype)
        sw, si0, si1, si2 = sc[0], sc[1], sc[2], sc[3]
        total = zero
        count = zero
        bad = zero  # Σ 0·(inputs read): NaN flags a non-finite position/weight/albedo/normal
        for lo in range(c * CHUNK, min(n_vert, c * CHUNK + CHUNK), SUB):
            n = min(SUB, n_vert - lo)
            bad += _gather(image[b], positions[b, 2 * lo:2 * (lo + n)], weights[b, lo:lo + n],
                           height, width, sc, idx, tex, n, False)
            alb = albedo[b, 3 * lo:3 * (lo + n)]
            nrm = normals[b, 3 * lo:3 * (lo + n)]
            for j in range(n):
                x = nrm[3 * j]
                y = nrm[3 * j + 1]
                z = nrm[3 * j + 2]
                h4, h5, h6, h7, h8 = x * y, y * z, three * z * z - one, x * z, x * x - y * y
                # I(u_i) − c_i with c_i = r_i ⊙ Σ_j γc_j H_j(n_i) (Eq. 4), channel by channel
                r0 = si0[j] - alb[3 * j] * (a0 + a1 * y + a2 * z + a3 * x + a4 * h4 + a5 * h5
                                            + a6 * h6 + a7 * h7 + a8 * h8)
                r1 = si1[j] - alb[3 * j + 1] * (b0 + b1 * y + b2 * z + b3 * x + b4 * h4
                                                + b5 * h5 + b6 * h6 + b7 * h7 + b8 * h8)
                r2 = si2[j] - alb[3 * j + 2] * (c0 + c1 * y + c2 * z + c3 * x + c4 * h4
                                                + c5 * h5 + c6 * h6 + c7 * h7 + c8 * h8)
                w = sw[j]
                total += w * (np.sqrt(r0 * r0 + r1 * r1 + r2 * r2 + eps2) - eps)  # Eq. 8
                count += w
                bad += zero * (((x + y) + z) + ((alb[3 * j] + alb[3 * j + 1]) + alb[3 * j + 2]))
        partial[b, c, 0] = total
        partial[b, c, 1] = count
        partial[b, c, 2] = bad


def _forward_grad(image, positions, albedo, normals, gamma_c, weights, eps, height, width,
                  scale, partial, grad_positions, grad_albedo, grad_normals, gamma_partial):
    """The forward sums of :func:`_forward` and, in the same pass, the gradients of
    scale_b · S_b, S_b = Σ_i w_i e_i the image's *unnormalised* sum (scale (B,): the caller
    passes 1 / Σ w, so these are the gradients of the loss itself): per-vertex ∂/∂u, ∂/∂r,
    ∂/∂n (flat (B, 2V), (B, 3V), (B, 3V); zero where w_i = 0) and the ∂/∂γ partial sums
    gamma_partial[b, c, j, k] = Σ_{i in chunk c} a_ik H_j(n_i) (constant-free H_j; (B,
    n_chunks, 9, 3)), with a_ik = −q_ik r_ik and q_i = scale_b w_i (I(u_i) − c_i) /
    sqrt(|·|² + ε²) (∂/∂c_i = −q_i).

    Per block of SUB vertices, three loops: the gather pass (:func:`_gather`: bilinear
    sample and its screen gradient into structure-of-arrays scratch); the arithmetic pass
    (basis, shading, residual, loss and every per-vertex gradient; contiguous arrays, no
    branch, vectorised by LLVM); the ∂/∂γ reduction (9 accumulators per channel, vectorised).
    All four gradients are always computed (the caller drops what it does not need: writing
    an unwanted one to a scratch row instead, chosen per block, stopped LLVM vectorising the
    loop — 3× slower)."""
    n_img = image.shape[0]
    n_vert = weights.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = albedo.dtype.type
    zero, one, two, three, six = real(0.0), real(1.0), real(2.0), real(3.0), real(6.0)
    eps2 = eps * eps
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        c = t - b * n_chunks
        g = gamma_c[b]
        a0, a1, a2, a3, a4, a5, a6, a7, a8 = (g[0, 0], g[1, 0], g[2, 0], g[3, 0], g[4, 0],
                                              g[5, 0], g[6, 0], g[7, 0], g[8, 0])
        b0, b1, b2, b3, b4, b5, b6, b7, b8 = (g[0, 1], g[1, 1], g[2, 1], g[3, 1], g[4, 1],
                                              g[5, 1], g[6, 1], g[7, 1], g[8, 1])
        c0, c1, c2, c3, c4, c5, c6, c7, c8 = (g[0, 2], g[1, 2], g[2, 2], g[3, 2], g[4, 2],
                                              g[5, 2], g[6, 2], g[7, 2], g[8, 2])
        sb = scale[b]
        sc, idx, tex = _scratch(albedo.dtype)
        sw, si0, si1, si2 = sc[0], sc[1], sc[2], sc[3]
        sx0, sx1, sx2, sy0, sy1, sy2 = sc[4], sc[5], sc[6], sc[7], sc[8], sc[9]
        se0, se1, se2 = sc[10], sc[11], sc[12]
        gsum = np.zeros((9, 3), dtype=albedo.dtype)
        total = zero
        count = zero
        bad = zero  # Σ 0·(inputs read): NaN flags a non-finite position/weight/albedo/normal
        for lo in range(c * CHUNK, min(n_vert, c * CHUNK + CHUNK), SUB):
            n = min(SUB, n_vert - lo)
            bad += _gather(image[b], positions[b, 2 * lo:2 * (lo + n)], weights[b, lo:lo + n],
                           height, width, sc, idx, tex, n, True)
            alb = albedo[b, 3 * lo:3 * (lo + n)]
            nrm = normals[b, 3 * lo:3 * (lo + n)]
            gpos = grad_positions[b, 2 * lo:2 * (lo + n)]
            galb = grad_albedo[b, 3 * lo:3 * (lo + n)]
            gnrm = grad_normals[b, 3 * lo:3 * (lo + n)]
            for j in range(n):
                x = nrm[3 * j]
                y = nrm[3 * j + 1]
                z = nrm[3 * j + 2]
                h4, h5, h6, h7, h8 = x * y, y * z, three * z * z - one, x * z, x * x - y * y
                s0 = a0 + a1 * y + a2 * z + a3 * x + a4 * h4 + a5 * h5 + a6 * h6 + a7 * h7 + a8 * h8
                s1 = b0 + b1 * y + b2 * z + b3 * x + b4 * h4 + b5 * h5 + b6 * h6 + b7 * h7 + b8 * h8
                s2 = c0 + c1 * y + c2 * z + c3 * x + c4 * h4 + c5 * h5 + c6 * h6 + c7 * h7 + c8 * h8
                al0 = alb[3 * j]
                al1 = alb[3 * j + 1]
                al2 = alb[3 * j + 2]
                r0 = si0[j] - al0 * s0  # I(u_i) − c_i, c_i = r_i ⊙ s_i (Eq. 4)
                r1 = si1[j] - al1 * s1
                r2 = si2[j] - al2 * s2
                w = sw[j]
                norm = np.sqrt(r0 * r0 + r1 * r1 + r2 * r2 + eps2)
                total += w * (norm - eps)  # Eq. 8
                count += w
                bad += zero * (((x + y) + z) + ((alb[3 * j] + alb[3 * j + 1]) + alb[3 * j + 2]))
                coef = sb * w / norm
                q0, q1, q2 = coef * r0, coef * r1, coef * r2  # ∂/∂I(u_i); ∂/∂c_i = −q_i
                gpos[2 * j] = (q0 * sx0[j] + q1 * sx1[j]) + q2 * sx2[j]
                gpos[2 * j + 1] = (q0 * sy0[j] + q1 * sy1[j]) + q2 * sy2[j]
                galb[3 * j] = -q0 * s0
                galb[3 * j + 1] = -q1 * s1
                galb[3 * j + 2] = -q2 * s2
                e0, e1, e2 = -q0 * al0, -q1 * al1, -q2 * al2  # a_ik = (∂/∂c ⊙ r)_k
                se0[j] = e0
                se1[j] = e1
                se2[j] = e2
                gnrm[3 * j] = ((e0 * (a3 + a4 * y + a7 * z + two * a8 * x)
                                + e1 * (b3 + b4 * y + b7 * z + two * b8 * x))
                               + e2 * (c3 + c4 * y + c7 * z + two * c8 * x))
                gnrm[3 * j + 1] = ((e0 * (a1 + a4 * x + a5 * z - two * a8 * y)
                                    + e1 * (b1 + b4 * x + b5 * z - two * b8 * y))
                                   + e2 * (c1 + c4 * x + c5 * z - two * c8 * y))
                gnrm[3 * j + 2] = ((e0 * (a2 + a5 * y + six * a6 * z + a7 * x)
                                    + e1 * (b2 + b5 * y + six * b6 * z + b7 * x))
                                   + e2 * (c2 + c5 * y + six * c6 * z + c7 * x))
            for k in range(3):  # ∂/∂γ: channel by channel, 9 accumulators in registers
                se = sc[10 + k]
                t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = t8 = zero
                for j in range(n):
                    a = se[j]
                    x = nrm[3 * j]
                    y = nrm[3 * j + 1]
                    z = nrm[3 * j + 2]
                    t0 += a
                    t1 += a * y
                    t2 += a * z
                    t3 += a * x
                    t4 += a * (x * y)
                    t5 += a * (y * z)
                    t6 += a * (three * z * z - one)
                    t7 += a * (x * z)
                    t8 += a * (x * x - y * y)
                gsum[0, k] += t0
                gsum[1, k] += t1
                gsum[2, k] += t2
                gsum[3, k] += t3
                gsum[4, k] += t4
                gsum[5, k] += t5
                gsum[6, k] += t6
                gsum[7, k] += t7
                gsum[8, k] += t8
        partial[b, c, 0] = total
        partial[b, c, 1] = count
        partial[b, c, 2] = bad
        for j in range(9):
            for k in range(3):
                gamma_partial[b, c, j, k] = gsum[j, k]


@numba.njit(cache=True, fastmath={"reassoc", "nsz"})
def _finite_sum(x):
    """Σ 0·x_i over a flat array: 0 when every entry is finite, NaN otherwise (vectorised;
    no ``nnan``/``ninf`` flags, so the NaN survives)."""
    acc = x.dtype.type(0.0)
    for i in range(x.size):
        acc += x[i] * x.dtype.type(0.0)
    return acc


def _count(positions, weights, height, width, grad_loss, count, scale, image, gamma):
    """count[b] = Σ_i w_i [u_i inside [0, W) × [0, H)] in float64 (B,), the loss's normaliser,
    and scale[b] = grad_loss[b] / count[b] (0 when count[b] = 0), needed before the gradient
    pass (which writes the gradients of grad_loss_b · loss_b). Flat positions (B, 2V),
    weights (B, V), image (B, H·W·3), gamma (B·27,); one vectorised pass each. Returns
    Σ 0·(image, gamma): 0, or NaN when the image or γ holds NaN/Inf (the finiteness check of
    the inputs the kernel reads only in part, in the same compiled call)."""
    fw, fh = positions.dtype.type(width), positions.dtype.type(height)
    zero = positions.dtype.type(0.0)
    flag = _finite_sum(gamma)
    for b in range(image.shape[0]):
        flag += _finite_sum(image[b])
    for b in range(weights.shape[0]):
        pos = positions[b]
        wts = weights[b]
        acc = 0.0
        for j in range(wts.shape[0]):
            ux = pos[2 * j]
            uy = pos[2 * j + 1]
            inside = (ux >= zero) & (ux < fw) & (uy >= zero) & (uy < fh)
            acc += np.float64(wts[j]) if inside else 0.0
        count[b] = acc
        scale[b] = grad_loss[b] / acc if acc > 0 else 0.0
    return flag


def _finish(partial, gamma_partial, count, loss, grad_gamma):
    """The per-chunk sums reduced in float64, in chunk order (deterministic): loss[b] =
    Σ_c partial[b, c, 0] / count[b] (0 when count[b] = 0), and grad_gamma[b, j, k] =
    C_j Σ_c gamma_partial[b, c, j, k] (C_j the basis constants folded into gamma_c; 0 without
    chunks). Returns the sum of the kernels' finite flags: 0, or NaN."""
    flag = 0.0
    for b in range(partial.shape[0]):
        total = 0.0
        for c in range(partial.shape[1]):
            total += np.float64(partial[b, c, 0])
            flag += np.float64(partial[b, c, 2])
        loss[b] = total / count[b] if count[b] > 0 else 0.0
    for b in range(gamma_partial.shape[0]):
        for j in range(9):
            for k in range(3):
                acc = 0.0
                for c in range(gamma_partial.shape[1]):
                    acc += np.float64(gamma_partial[b, c, j, k])
                grad_gamma[b, j, k] = BASIS_CONSTANTS[j] * acc
    return flag


# Compiled variants: serial below PARALLEL_MIN vertices (over the batch) or on one thread.
# One 38k-vertex image is ~0.3 ms of serial work: on the shared 2-core machine (load 7) the
# parallel variant took 3.7 ms [1.1, 9.9] per image forward + backward against 1.6 ms
# serial — the launch waits for a worker the scheduler has not run — so one image runs
# serial; a batch (>= 128k vertices in all, e.g. 4 images at 38k) is split into chunks.
# FAST lets LLVM reassociate and contract (fused multiply-add) the per-vertex arithmetic —
# which is what lets it vectorise the reductions — results within a few ulp of the reference
# (compared with tolerances); no NaN/Inf assumptions (the inputs are checked finite at the
# boundary anyway). error_model="numpy": no zero-division branch in the vectorised loops
# (norm >= eps > 0 there).
PARALLEL_MIN = 128 * CHUNK
FAST = {"contract", "reassoc", "nsz", "arcp"}
_OPTS = dict(fastmath=FAST, error_model="numpy")
_forward_par = numba.njit(parallel=True, cache=True, **_OPTS)(_forward)
_forward_ser = serial_twin(_forward, **_OPTS)
_forward_grad_par = numba.njit(parallel=True, cache=True, **_OPTS)(_forward_grad)
_forward_grad_ser = serial_twin(_forward_grad, **_OPTS)
_count_ser = numba.njit(cache=True, fastmath={"reassoc", "nsz"}, error_model="numpy")(_count)
_finish_ser = numba.njit(cache=True)(_finish)

# The mode bits of :func:`_run`: the wanted gradients (1 positions, 2 albedo, 4 normals, 8 γ),
# 16 the gradient pass (else the forward alone), 32 the parallel kernel variants.
_NEED_BITS = (1, 2, 4, 8)
_GRAD, _PARALLEL = 16, 32


def _run(image, positions, albedo, normals, gamma, weights, eps, grad_loss, mode, loss, count,
         grad_positions, grad_albedo, grad_normals, grad_gamma):
    """One compiled call per direction: every pass of the op after the Python entry point.

    C-contiguous arrays as the tensors are shaped: image (B, H, W, 3), positions (B, V, 2),
    albedo and normals (B, V, 3), gamma (B, 9, 3), weights (B, V) (float, or bool). Writes
    loss (B,) and count (B,) (Σ w, the normaliser), and with ``mode & _GRAD`` the gradients
    of Σ_b grad_loss_b · loss_b (grad_loss (B,) float64) into the wanted outputs
    (grad_positions (B, V, 2), grad_albedo / grad_normals (B, V, 3), grad_gamma (B, 9, 3);
    an unwanted one may be an empty (0, 0, 0) array: never touched, the kernel writes that
    gradient to a temporary instead). Returns the finite flag:
    0, or NaN when an input holds NaN/Inf (image and γ: :func:`_finite_sum` / :func:`_count`;
    positions, weights, albedo, normals: the kernels, as they read them).

    Steps: γ premultiplied by the basis constants; gradient pass: :func:`_count` (Σ w first,
    so the gradients come out normalised), :func:`_forward_grad`; forward alone:
    :func:`_forward`; then :func:`_finish`. One call rather than one per step: from Python,
    each compiled call (argument typing, dispatch) and each NumPy temporary cost
    microseconds — several times more when the caches are cold, as they are when other work
    runs between two calls (a training step)."""
    n_img, height, width = image.shape[0], image.shape[1], image.shape[2]
    n_vert = weights.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    dtype = albedo.dtype
    real = dtype.type
    img = image.reshape(n_img, height * width * 3)
    pos = positions.reshape(n_img, 2 * n_vert)
    alb = albedo.reshape(n_img, 3 * n_vert)
    nrm = normals.reshape(n_img, 3 * n_vert)
    gam = np.empty((n_img, 9, 3), dtype=dtype)  # γ ⊙ C_j (the constant-free basis below)
    for b in range(n_img):
        for j in range(9):
            cj = real(BASIS_CONSTANTS[j])
            for k in range(3):
                gam[b, j, k] = gamma[b, j, k] * cj
    eps_r = real(eps)
    parallel = (mode & _PARALLEL) != 0
    count64 = np.zeros(n_img)
    partial = np.zeros((n_img, n_chunks, 3), dtype=dtype)
    if mode & _GRAD:
        scale = np.empty(n_img, dtype=dtype)
        flag = _count_ser(pos, weights, height, width, grad_loss, count64, scale, img,
                          gam.reshape(-1))
        gp = (grad_positions.reshape(n_img, 2 * n_vert) if mode & 1
              else np.empty((n_img, 2 * n_vert), dtype))  # written, then dropped
        ga = (grad_albedo.reshape(n_img, 3 * n_vert) if mode & 2
              else np.empty((n_img, 3 * n_vert), dtype))
        gn = (grad_normals.reshape(n_img, 3 * n_vert) if mode & 4
              else np.empty((n_img, 3 * n_vert), dtype))
        gamma_partial = np.empty((n_img, n_chunks, 9, 3), dtype=dtype)
        if parallel:
            _forward_grad_par(img, pos, alb, nrm, gam, weights, eps_r, height, width, scale,
                              partial, gp, ga, gn, gamma_partial)
        else:
            _forward_grad_ser(img, pos, alb, nrm, gam, weights, eps_r, height, width, scale,
                              partial, gp, ga, gn, gamma_partial)
        gg = grad_gamma if mode & 8 else np.empty((n_img, 9, 3), dtype)
    else:
        flag = _finite_sum(gam.reshape(-1))
        for b in range(n_img):
            flag += _finite_sum(img[b])
        if parallel:
            _forward_par(img, pos, alb, nrm, gam, weights, eps_r, height, width, partial)
        else:
            _forward_ser(img, pos, alb, nrm, gam, weights, eps_r, height, width, partial)
        for b in range(n_img):
            acc = 0.0
            for c in range(n_chunks):
                acc += np.float64(partial[b, c, 1])
            count64[b] = acc
        gamma_partial = np.empty((n_img, 0, 9, 3), dtype=dtype)
        gg = np.empty((n_img, 9, 3), dtype)
    flag += _finish_ser(partial, gamma_partial, count64, loss, gg)
    for b in range(n_img):
        count[b] = count64[b]
    return flag


_run_ser = numba.njit(cache=True, error_model="numpy")(_run)


def _gamma_c(gamma: np.ndarray) -> np.ndarray:
    """γ premultiplied by the basis constants: (B, 9, 3), gamma's dtype (as :func:`_run`)."""
    return gamma * BASIS_CONSTANTS[:, None].astype(gamma.dtype)


def _name_non_finite(image, positions, albedo, normals, gamma, weights):
    """Raise the ValueError naming the first non-finite input, after a compiled pass's finite
    flag came back NaN (the kernels check positions, albedo, normals and weights as they read
    them, :func:`_count` or :func:`_finite_sum` the image and γ; ``visibility`` is the
    weights' public name)."""
    for name, t in (("image", image), ("positions", positions), ("albedo", albedo),
                    ("normals", normals), ("gamma", gamma), ("visibility", weights)):
        check_finite(t, name=name)
    raise ValueError("image/positions/albedo/normals/gamma/visibility: expected finite values")


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor, detached (a C-contiguous copy only when it is not
    contiguous)."""
    if t.is_contiguous():
        return t.numpy(force=True)  # detaches in C++ (no copy on the CPU)
    return t.detach().contiguous().numpy()


_ONES = np.ones(1)
_EMPTY = {torch.float32: np.empty((0, 0, 0), dtype=np.float32),
          torch.float64: np.empty((0, 0, 0), dtype=np.float64)}  # an output not wanted


def _pass(image, positions, albedo, normals, gamma, weights, eps, grad_loss, needs):
    """The Python side of :func:`_run`: (loss (B,), count (B,), (grad_positions, grad_albedo,
    grad_normals, grad_gamma)) tensors, None where ``needs`` (same order) is False or for the
    forward alone (``grad_loss`` None; else (B,) float64 NumPy, the gradients' ∂L/∂loss)."""
    real = albedo.dtype
    n_img, n_vert = weights.shape
    loss = torch.empty(n_img, dtype=real)
    count = torch.empty(n_img, dtype=real)
    empty = _EMPTY[real]
    grads = [None, None, None, None]
    outs = [empty, empty, empty, empty]
    if grad_loss is None:
        mode = 0
        grad_loss = _ONES
    else:
        mode = _GRAD
        for k, (need, like) in enumerate(zip(needs, (positions, albedo, normals, gamma),
                                             strict=True)):
            if need:
                mode |= _NEED_BITS[k]
                grads[k] = g = torch.empty(like.shape, dtype=real)
                outs[k] = g.numpy()
    if n_img * n_vert >= PARALLEL_MIN and parallel_threads() > 1:
        mode |= _PARALLEL
    flag = _run_ser(_numpy(image), _numpy(positions), _numpy(albedo), _numpy(normals),
                    _numpy(gamma), _numpy(weights), eps, grad_loss, mode, loss.numpy(),
                    count.numpy(), *outs)
    if flag != 0:
        _name_non_finite(image, positions, albedo, normals, gamma, weights)
    return loss, count, tuple(grads)


def shaded_photometric_forward(image, positions, albedo, normals, gamma, weights, eps: float):
    """CPU tensors of one dtype: image (B, H, W, 3), positions (B, V, 2), albedo and normals
    (B, V, 3), gamma (B, 9, 3), weights (B, V) (or bool) → (loss (B,), count (B,)).
    ValueError naming a non-finite input (checked by the compiled passes, every entry point
    here)."""
    loss, count, _ = _pass(image, positions, albedo, normals, gamma, weights, float(eps), None,
                           None)
    return loss, count


def shaded_photometric_forward_grad(image, positions, albedo, normals, gamma, weights,
                                    eps: float, needs=(True, True, True, True)):
    """The forward and, in the same compiled pass, the gradients of each image's loss that
    the autograd op scales into the backward: (loss (B,), count (B,), state), state =
    (∂loss_b/∂positions (B, V, 2), ∂loss_b/∂albedo (B, V, 3), ∂loss_b/∂normals (B, V, 3),
    ∂loss_b/∂γ (B, 9, 3)), None where ``needs`` (same order) is False (the pass writes only
    those: an unwanted per-vertex gradient goes to scratch that stays in cache). A cheap
    pre-pass (:func:`_count`) finds Σ w first, so the gradients come out already divided by
    it: for ∂L/∂loss = 1 (a batch-1 sum or mean) the backward has nothing left to do."""
    n_img = weights.shape[0]
    return _pass(image, positions, albedo, normals, gamma, weights, float(eps),
                 _ONES if n_img == 1 else np.ones(n_img), needs)


def shaded_photometric_backward(image, positions, albedo, normals, gamma, weights, eps: float,
                                count, grad_loss, needs=(True, True, True, True)):
    """(grad_positions, grad_albedo, grad_normals, grad_gamma) for grad_loss (B,); None where
    ``needs`` (same order) is False. Recomputes the forward pass with each image's gradients
    scaled by ∂L/∂loss_b / Σ w inside the pass (the autograd op keeps the forward's state
    instead: :func:`shaded_photometric_forward_grad`). ``count`` (B,), the forward's Σ w, is
    recomputed by the pass itself (same value)."""
    if not any(needs):
        return None, None, None, None
    _, _, grads = _pass(image, positions, albedo, normals, gamma, weights, float(eps),
                        grad_loss.detach().to(torch.float64).contiguous().numpy(), needs)
    return grads
