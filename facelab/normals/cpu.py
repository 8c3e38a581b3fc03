"""Numba CPU kernels for area-weighted vertex normals (see ``reference.py`` for the formulas).

umap-style: each kernel is a plain Python function (debuggable, runnable as is) and the
compiled variants are made from it with ``numba.njit(parallel=True, cache=True)`` (and a serial
``numba.njit(cache=True)`` one for inputs under ``PARALLEL_MIN`` vertices over the batch).

Race-free gather formulation: ``prange`` runs over (image, chunk of ``CHUNK`` vertices) and an
iteration writes only its own vertices, reading the faces around each through the
vertex → incident-face CSR table (``reference.vertex_face_csr``); no atomics, deterministic
(the summation order is the CSR order, independent of the thread count).

Forward, two variants (``benchmarks/bench_normals.py`` measures both; ``FORWARD`` picks):

* ``"gather"``: per vertex, recompute the cross product of every incident face (each face is
  computed three times; one pass, no buffer);
* ``"two_pass"``: one pass over faces writes c_f into a (B, F, 3) buffer, a second pass over
  vertices sums it.

Backward: pass 1 per vertex ∂L/∂s_i = r_i (g_i − (n_i · g_i) n_i) into a (B, V, 3) buffer;
then per vertex the gather of (v_{k+1} − v_{k+2}) × G_f over the incident faces, with
G_f = Σ_k ∂L/∂s_{f_k} either recomputed per incidence (``"gather"``) or summed once per face
into a (B, F, 3) buffer first (``"two_pass"``); ``BACKWARD`` picks.

Arithmetic in the arrays' dtype.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange

from facelab._threads import parallel_threads
from facelab.normals.reference import NORMAL_EPS
from facelab.numba_cache import serial_twin

__all__ = ["BACKWARD", "CHUNK", "FORWARD", "vertex_normals_backward", "vertex_normals_forward"]

CHUNK = 1024  # vertices (or faces) per parallel work item
# Default variants: "two_pass" measured faster on the BFM-scale model (38k vertices, 1 thread,
# float32: forward 0.6x, forward + backward 0.7-0.8x the time of "gather"; see
# benchmarks/bench_normals.py), at the cost of a (B, F, 3) scratch buffer.
FORWARD = "two_pass"
BACKWARD = "two_pass"


def _forward_gather(verts, faces, offsets, face_ids, normals, inv_norm):
    """verts, normals: (B, V, 3); faces: (F, 3) int32; offsets (V+1,), face_ids (3F,) int32;
    inv_norm: (B, V). n_i = s_i r_i with s_i = Σ_{f ∋ i} c_f recomputed per incident face."""
    n_img, n_vert = verts.shape[0], verts.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = verts.dtype.type
    eps, one = real(NORMAL_EPS), real(1.0)
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        hi = min(n_vert, lo + CHUNK)
        for i in range(lo, hi):
            sx = sy = sz = real(0.0)
            for j in range(offsets[i], offsets[i + 1]):
                f = face_ids[j]
                i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
                ax = verts[b, i1, 0] - verts[b, i0, 0]  # e1 = v1 − v0
                ay = verts[b, i1, 1] - verts[b, i0, 1]
                az = verts[b, i1, 2] - verts[b, i0, 2]
                bx = verts[b, i2, 0] - verts[b, i0, 0]  # e2 = v2 − v0
                by = verts[b, i2, 1] - verts[b, i0, 1]
                bz = verts[b, i2, 2] - verts[b, i0, 2]
                sx += ay * bz - az * by  # c_f = e1 × e2
                sy += az * bx - ax * bz
                sz += ax * by - ay * bx
            r = one / np.sqrt(sx * sx + sy * sy + sz * sz + eps)
            normals[b, i, 0] = sx * r
            normals[b, i, 1] = sy * r
            normals[b, i, 2] = sz * r
            inv_norm[b, i] = r


def _face_cross_pass(verts, faces, cross):
    """cross: (B, F, 3) ← c_f = (v1 − v0) × (v2 − v0), parallel over (image, chunk of faces)."""
    n_img, n_face = verts.shape[0], faces.shape[0]
    n_chunks = (n_face + CHUNK - 1) // CHUNK
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        hi = min(n_face, lo + CHUNK)
        for f in range(lo, hi):
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            ax = verts[b, i1, 0] - verts[b, i0, 0]
            ay = verts[b, i1, 1] - verts[b, i0, 1]
            az = verts[b, i1, 2] - verts[b, i0, 2]
            bx = verts[b, i2, 0] - verts[b, i0, 0]
            by = verts[b, i2, 1] - verts[b, i0, 1]
            bz = verts[b, i2, 2] - verts[b, i0, 2]
            cross[b, f, 0] = ay * bz - az * by
            cross[b, f, 1] = az * bx - ax * bz
            cross[b, f, 2] = ax * by - ay * bx


def _gather_normalize(cross, offsets, face_ids, normals, inv_norm):
    """normals (B, V, 3), inv_norm (B, V) from the face buffer cross (B, F, 3)."""
    n_img, n_vert = normals.shape[0], normals.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = normals.dtype.type
    eps, one = real(NORMAL_EPS), real(1.0)
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        hi = min(n_vert, lo + CHUNK)
        for i in range(lo, hi):
            sx = sy = sz = real(0.0)
            for j in range(offsets[i], offsets[i + 1]):
                f = face_ids[j]
                sx += cross[b, f, 0]
                sy += cross[b, f, 1]
                sz += cross[b, f, 2]
            r = one / np.sqrt(sx * sx + sy * sy + sz * sz + eps)
            normals[b, i, 0] = sx * r
            normals[b, i, 1] = sy * r
            normals[b, i, 2] = sz * r
            inv_norm[b, i] = r


def _grad_sum_pass(normals, inv_norm, grad_out, grad_sum):
    """grad_sum (B, V, 3) ← ∂L/∂s_i = r_i (g_i − (n_i · g_i) n_i), per vertex."""
    n_img, n_vert = normals.shape[0], normals.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        hi = min(n_vert, lo + CHUNK)
        for i in range(lo, hi):
            nx, ny, nz = normals[b, i, 0], normals[b, i, 1], normals[b, i, 2]
            gx, gy, gz = grad_out[b, i, 0], grad_out[b, i, 1], grad_out[b, i, 2]
            d = nx * gx + ny * gy + nz * gz  # n · g
            r = inv_norm[b, i]
            grad_sum[b, i, 0] = r * (gx - d * nx)
            grad_sum[b, i, 1] = r * (gy - d * ny)
            grad_sum[b, i, 2] = r * (gz - d * nz)


def _gather_grad(verts, faces, offsets, face_ids, corners, grad_sum, grad_verts):
    """grad_verts (B, V, 3) ← Σ_{(f, k) ∋ i} (v_{k+1} − v_{k+2}) × G_f, with
    G_f = Σ_k ∂L/∂s_{f_k} recomputed from grad_sum (B, V, 3) per incident face."""
    n_img, n_vert = verts.shape[0], verts.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = verts.dtype.type
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        hi = min(n_vert, lo + CHUNK)
        for i in range(lo, hi):
            ax = ay = az = real(0.0)
            for j in range(offsets[i], offsets[i + 1]):
                f = face_ids[j]
                k = corners[j]
                i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
                gfx = grad_sum[b, i0, 0] + grad_sum[b, i1, 0] + grad_sum[b, i2, 0]  # G_f
                gfy = grad_sum[b, i0, 1] + grad_sum[b, i1, 1] + grad_sum[b, i2, 1]
                gfz = grad_sum[b, i0, 2] + grad_sum[b, i1, 2] + grad_sum[b, i2, 2]
                nxt = faces[f, (k + 1) % 3]
                prv = faces[f, (k + 2) % 3]
                ex = verts[b, nxt, 0] - verts[b, prv, 0]  # v_{k+1} − v_{k+2}
                ey = verts[b, nxt, 1] - verts[b, prv, 1]
                ez = verts[b, nxt, 2] - verts[b, prv, 2]
                ax += ey * gfz - ez * gfy
                ay += ez * gfx - ex * gfz
                az += ex * gfy - ey * gfx
            grad_verts[b, i, 0] = ax
            grad_verts[b, i, 1] = ay
            grad_verts[b, i, 2] = az


def _face_grad_pass(faces, grad_sum, grad_cross):
    """grad_cross (B, F, 3) ← G_f = Σ_k ∂L/∂s_{f_k}, parallel over (image, chunk of faces)."""
    n_img, n_face = grad_sum.shape[0], faces.shape[0]
    n_chunks = (n_face + CHUNK - 1) // CHUNK
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        hi = min(n_face, lo + CHUNK)
        for f in range(lo, hi):
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            for c in range(3):
                grad_cross[b, f, c] = grad_sum[b, i0, c] + grad_sum[b, i1, c] + grad_sum[b, i2, c]


def _gather_grad_buffered(verts, faces, offsets, face_ids, corners, grad_cross, grad_verts):
    """grad_verts (B, V, 3) ← Σ_{(f, k) ∋ i} (v_{k+1} − v_{k+2}) × G_f, G_f read from the
    face buffer grad_cross (B, F, 3)."""
    n_img, n_vert = verts.shape[0], verts.shape[1]
    n_chunks = (n_vert + CHUNK - 1) // CHUNK
    real = verts.dtype.type
    for t in prange(n_img * n_chunks):
        b = t // n_chunks
        lo = (t - b * n_chunks) * CHUNK
        hi = min(n_vert, lo + CHUNK)
        for i in range(lo, hi):
            ax = ay = az = real(0.0)
            for j in range(offsets[i], offsets[i + 1]):
                f = face_ids[j]
                k = corners[j]
                gfx, gfy, gfz = grad_cross[b, f, 0], grad_cross[b, f, 1], grad_cross[b, f, 2]
                nxt = faces[f, (k + 1) % 3]
                prv = faces[f, (k + 2) % 3]
                ex = verts[b, nxt, 0] - verts[b, prv, 0]  # v_{k+1} − v_{k+2}
                ey = verts[b, nxt, 1] - verts[b, prv, 1]
                ez = verts[b, nxt, 2] - verts[b, prv, 2]
                ax += ey * gfz - ez * gfy
                ay += ez * gfx - ex * gfz
                az += ex * gfy - ey * gfx
            grad_verts[b, i, 0] = ax
            grad_verts[b, i, 1] = ay
            grad_verts[b, i, 2] = az


# Compiled variants. Small inputs run the serial one: waking the thread pool costs more than
# the work below PARALLEL_MIN vertices (over the batch).
PARALLEL_MIN = 4 * CHUNK
_forward_gather_par = numba.njit(parallel=True, cache=True)(_forward_gather)
_forward_gather_ser = serial_twin(_forward_gather)
_face_cross_pass_par = numba.njit(parallel=True, cache=True)(_face_cross_pass)
_face_cross_pass_ser = serial_twin(_face_cross_pass)
_gather_normalize_par = numba.njit(parallel=True, cache=True)(_gather_normalize)
_gather_normalize_ser = serial_twin(_gather_normalize)
_grad_sum_pass_par = numba.njit(parallel=True, cache=True)(_grad_sum_pass)
_grad_sum_pass_ser = serial_twin(_grad_sum_pass)
_gather_grad_par = numba.njit(parallel=True, cache=True)(_gather_grad)
_gather_grad_ser = serial_twin(_gather_grad)
_face_grad_pass_par = numba.njit(parallel=True, cache=True)(_face_grad_pass)
_face_grad_pass_ser = serial_twin(_face_grad_pass)
_gather_grad_buffered_par = numba.njit(parallel=True, cache=True)(_gather_grad_buffered)
_gather_grad_buffered_ser = serial_twin(_gather_grad_buffered)


def _parallel_min() -> int:
    """Work size from which the parallel variant runs: PARALLEL_MIN, or never on one Numba
    thread (a parallel launch on Numba's workqueue layer costs ~40 µs; facelab._threads)."""
    return PARALLEL_MIN if parallel_threads() > 1 else 1 << 62


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def vertex_normals_forward(verts, faces, offsets, face_ids, *, variant: str | None = None):
    """CPU tensors verts (B, V, 3); faces (F, 3), offsets (V+1,), face_ids (3F,) int32.

    Returns ``(normals (B, V, 3), inv_norm (B, V))``. ``variant``: "gather" or "two_pass"
    (default :data:`FORWARD`).
    """
    variant = FORWARD if variant is None else variant
    v = _np(verts)
    normals = np.empty_like(v)
    inv_norm = np.empty(v.shape[:2], dtype=v.dtype)
    par = v.shape[0] * v.shape[1] >= _parallel_min()
    f, off, fid = _np(faces), _np(offsets), _np(face_ids)
    if variant == "gather":
        (_forward_gather_par if par else _forward_gather_ser)(v, f, off, fid, normals, inv_norm)
    elif variant == "two_pass":
        cross = np.empty((v.shape[0], f.shape[0], 3), dtype=v.dtype)  # (B, F, 3)
        (_face_cross_pass_par if par else _face_cross_pass_ser)(v, f, cross)
        (_gather_normalize_par if par else _gather_normalize_ser)(cross, off, fid, normals,
                                                                  inv_norm)
    else:
        raise ValueError(f"variant: expected 'gather' or 'two_pass', got {variant!r}")
    return torch.from_numpy(normals), torch.from_numpy(inv_norm)


def vertex_normals_backward(verts, faces, offsets, face_ids, corners, normals, inv_norm,
                            grad_out, *, variant: str | None = None):
    """∂L/∂verts (B, V, 3) for grad_out = ∂L/∂normals (B, V, 3); CPU tensors, int32 tables.

    ``variant``: "gather" (G_f recomputed per incidence) or "two_pass" (G_f in a (B, F, 3)
    buffer first); default :data:`BACKWARD`.
    """
    variant = BACKWARD if variant is None else variant
    if variant not in ("gather", "two_pass"):
        raise ValueError(f"variant: expected 'gather' or 'two_pass', got {variant!r}")
    v = _np(verts)
    f, off, fid, cor = _np(faces), _np(offsets), _np(face_ids), _np(corners)
    grad_verts = np.empty_like(v)
    grad_sum = np.empty_like(v)  # ∂L/∂s: (B, V, 3)
    par = v.shape[0] * v.shape[1] >= _parallel_min()
    (_grad_sum_pass_par if par else _grad_sum_pass_ser)(_np(normals), _np(inv_norm),
                                                        _np(grad_out), grad_sum)
    if variant == "gather":
        (_gather_grad_par if par else _gather_grad_ser)(v, f, off, fid, cor, grad_sum,
                                                        grad_verts)
    else:
        grad_cross = np.empty((v.shape[0], f.shape[0], 3), dtype=v.dtype)  # G: (B, F, 3)
        (_face_grad_pass_par if par else _face_grad_pass_ser)(f, grad_sum, grad_cross)
        (_gather_grad_buffered_par if par else _gather_grad_buffered_ser)(
            v, f, off, fid, cor, grad_cross, grad_verts)
    return torch.from_numpy(grad_verts)
