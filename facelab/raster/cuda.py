"""CuPy launchers for ``kernels/rasterize.cu`` and ``kernels/interpolate.cu`` (CUDA tensors).

Every function takes validated, contiguous CUDA torch tensors, allocates its outputs with
torch on the same device, views them in CuPy with ``cupy.from_dlpack`` (zero copy) and
launches on torch's current stream, so the kernels order correctly with torch's own work.
Kernel names carry the dtype: ``*_f32`` for float32, ``*_f64`` for float64.
"""

from __future__ import annotations

import numpy as np
import torch

from facelab.kernel_sources import raw_module

__all__ = [
    "rasterize_cuda",
    "pixel_barycentrics_cuda",
    "interpolate_forward_cuda",
    "interpolate_backward_cuda",
]

_BLOCK = 256
_MAX_GRID = 65535 * 8  # kernels use grid-stride loops, so any cap is correct


def _suffix(dtype: torch.dtype) -> str:
    return "f32" if dtype == torch.float32 else "f64"


def _launch(op: str, kernel: str, device: torch.device, n_threads: int, args: tuple) -> None:
    """Launch ``kernel`` of ``kernels/<op>.cu`` over ``n_threads`` on torch's current stream."""
    if n_threads == 0:
        return
    import cupy

    index = device.index if device.index is not None else torch.cuda.current_device()
    fn = raw_module(op, index).get_function(kernel)
    grid = min(-(-n_threads // _BLOCK), _MAX_GRID)
    cp_args = tuple(cupy.from_dlpack(a) if isinstance(a, torch.Tensor) else a for a in args)
    with cupy.cuda.Device(index), \
            cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream):
        fn((grid,), (_BLOCK,), cp_args)


def rasterize_cuda(verts, faces, height, width, perspective_correct, cull_backfaces, near):
    """Two-pass race-free rasterization; same contract as ``cpu.rasterize_numba``.

    verts: (B, V, 3) CUDA float32/float64; faces: (F, 3) int64 on the same device;
    near: resolved near plane (float, may be -inf). Returns torch
    ``(face_index (B, H, W) int64, bary (B, H, W, 3), depth (B, H, W))``.
    """
    B, V = verts.shape[:2]
    F = faces.shape[0]
    if F >= 2**32 - 1:
        raise ValueError(f"faces: expected fewer than 2**32 - 1 faces, got {F}")
    dev, dt = verts.device, verts.dtype
    scalar = np.float32 if dt == torch.float32 else np.float64
    zbuffer = torch.full((B, height, width), -1, dtype=torch.int64, device=dev)  # all ones
    sfx = _suffix(dt)
    _launch("rasterize", f"rasterize_zbuffer_{sfx}", dev, B * F,
            (verts, faces, np.int32(B), np.int32(V), np.int64(F), np.int32(height),
             np.int32(width), scalar(near), np.int32(cull_backfaces),
             np.int32(perspective_correct), zbuffer))
    face_index = torch.empty((B, height, width), dtype=torch.int64, device=dev)
    bary = torch.empty((B, height, width, 3), dtype=dt, device=dev)
    depth = torch.empty((B, height, width), dtype=dt, device=dev)
    _launch("rasterize", f"rasterize_resolve_{sfx}", dev, B * height * width,
            (verts, faces, np.int32(B), np.int32(V), np.int32(height), np.int32(width),
             np.int32(perspective_correct), zbuffer, face_index, bary, depth))
    return face_index, bary, depth


def pixel_barycentrics_cuda(verts, face_index, faces, perspective_correct):
    """(B, H, W, 3) barycentrics recomputed from ``verts`` for the given face assignment."""
    B, H, W = face_index.shape
    bary = torch.empty((B, H, W, 3), dtype=verts.dtype, device=verts.device)
    _launch("interpolate", f"pixel_barycentrics_{_suffix(verts.dtype)}", verts.device,
            B * H * W, (verts, faces, face_index, np.int32(B), np.int32(verts.shape[1]),
                        np.int32(H), np.int32(W), np.int32(perspective_correct), bary))
    return bary


def interpolate_forward_cuda(attrs, face_index, bary, faces):
    """(B, H, W, C) interpolated attributes."""
    B, H, W = face_index.shape
    V, C = attrs.shape[1:]
    out = torch.empty((B, H, W, C), dtype=attrs.dtype, device=attrs.device)
    _launch("interpolate", f"interpolate_forward_{_suffix(attrs.dtype)}", attrs.device,
            B * H * W, (attrs, face_index, bary, faces, np.int32(B), np.int32(V), np.int32(H),
                        np.int32(W), np.int32(C), out))
    return out


def interpolate_backward_cuda(grad_out, attrs, face_index, bary, faces, verts,
                              perspective_correct, need_attrs, need_verts):
    """``(grad_attrs (B, V, C) or None, grad_verts (B, V, 3) or None)`` via atomicAdd."""
    B, H, W = face_index.shape
    V, C = attrs.shape[1:]
    dev, dt = attrs.device, attrs.dtype
    grad_attrs = torch.zeros(attrs.shape if need_attrs else (1,), dtype=dt, device=dev)
    grad_verts = torch.zeros((B, V, 3) if need_verts else (1,), dtype=dt, device=dev)
    verts_arg = verts if need_verts else grad_verts
    _launch("interpolate", f"interpolate_backward_{_suffix(dt)}", dev, B * H * W,
            (grad_out, attrs, face_index, bary, faces, verts_arg, np.int32(B), np.int32(V),
             np.int32(H), np.int32(W), np.int32(C), np.int32(perspective_correct),
             np.int32(need_attrs), np.int32(need_verts), grad_attrs, grad_verts))
    return (grad_attrs if need_attrs else None), (grad_verts if need_verts else None)
