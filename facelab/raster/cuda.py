"""CUDA launchers for ``kernels/rasterize.cu`` and ``kernels/interpolate.cu``.

Every function takes validated, contiguous torch tensors and allocates its outputs with torch
on the same device. On a GPU the kernels are compiled once per device with NVRTC
(``cupy.RawModule``, see :mod:`facelab.kernel_sources`) and launched on torch's current
stream through :func:`facelab.kernel_launch.launch`, so they order correctly with torch's own
work. With ``emulate=True`` the *same* sources, compiled for the host through
``facelab_cuda.h``, run on CPU tensors (each grid twice, in two thread orders that must give
the same results) — the tests use this to check the kernels' logic against the NumPy
reference on machines without a GPU. Kernel names carry the dtype: ``*_f32`` / ``*_f64``.
"""

from __future__ import annotations

import torch

from facelab.kernel_launch import declare_kernels, launch

__all__ = [
    "INTERPOLATE_KERNELS",
    "RASTERIZE_KERNELS",
    "interpolate_backward_cuda",
    "interpolate_forward_cuda",
    "pixel_barycentrics_cuda",
    "rasterize_cuda",
]

# The kernels' parameter lists, declared once (format: facelab.kernel_launch); the host build
# checks them against the .cu files' own parameter lists.
RASTERIZE_KERNELS = declare_kernels("rasterize", {
    "rasterize_zbuffer": "in T* verts, in i64* faces, i32 B, i32 V, i64 F, i32 H, i32 W, "
                         "T near_z, i32 cull_backfaces, i32 perspective_correct, "
                         "inout u64* zbuffer",
    "rasterize_resolve": "in T* verts, in i64* faces, i32 B, i32 V, i32 H, i32 W, "
                         "i32 perspective_correct, in u64* zbuffer, out i64* face_index, "
                         "out T* bary, out T* depth",
})
INTERPOLATE_KERNELS = declare_kernels("interpolate", {
    "pixel_barycentrics": "in T* verts, in i64* faces, in i64* face_index, i32 B, i32 V, "
                          "i32 H, i32 W, i32 perspective_correct, out T* bary",
    "interpolate_forward": "in T* attrs, in i64* face_index, in T* bary, in i64* faces, "
                           "i32 B, i32 V, i32 H, i32 W, i32 C, out T* out",
    "interpolate_backward": "in T* grad_out, in T* attrs, in i64* face_index, in T* bary, "
                            "in i64* faces, in T* verts, i32 B, i32 V, i32 H, i32 W, i32 C, "
                            "i32 perspective_correct, i32 need_attrs, i32 need_verts, "
                            "sum T* grad_attrs, sum T* grad_verts",
})

BLOCK = 256
_MAX_GRID = 65535 * 8  # kernels use grid-stride loops, so any cap is correct


def _grid(n_threads: int) -> tuple:
    return (max(1, min(-(-n_threads // BLOCK), _MAX_GRID)),)


def rasterize_cuda(verts, faces, height, width, perspective_correct, cull_backfaces, near, *,
                   emulate: bool = False):
    """Two-pass race-free rasterization; same contract as ``cpu.rasterize_numba``.

    verts: (B, V, 3) float32/float64; faces: (F, 3) int64 on the same device (CUDA, or CPU
    with ``emulate=True``); near: resolved near plane (float, may be -inf). Returns torch
    ``(face_index (B, H, W) int64, bary (B, H, W, 3), depth (B, H, W))``.
    """
    B, V = verts.shape[:2]
    F = faces.shape[0]
    if F >= 2**32 - 1:
        raise ValueError(f"faces: expected fewer than 2**32 - 1 faces, got {F}")
    dev, dt = verts.device, verts.dtype
    zbuffer = torch.full((B, height, width), -1, dtype=torch.int64, device=dev)  # all ones
    launch(RASTERIZE_KERNELS.for_dtype("rasterize_zbuffer", dt), _grid(B * F), (BLOCK,),
           (verts, faces, B, V, F, height, width, near, cull_backfaces, perspective_correct,
            zbuffer), emulate=emulate)
    face_index = torch.empty((B, height, width), dtype=torch.int64, device=dev)
    bary = torch.empty((B, height, width, 3), dtype=dt, device=dev)
    depth = torch.empty((B, height, width), dtype=dt, device=dev)
    launch(RASTERIZE_KERNELS.for_dtype("rasterize_resolve", dt), _grid(B * height * width),
           (BLOCK,), (verts, faces, B, V, height, width, perspective_correct, zbuffer,
                      face_index, bary, depth), emulate=emulate)
    return face_index, bary, depth


def pixel_barycentrics_cuda(verts, face_index, faces, perspective_correct, *,
                            emulate: bool = False):
    """(B, H, W, 3) barycentrics recomputed from ``verts`` (B, V, 3) for the given
    ``face_index`` (B, H, W) int64 and ``faces`` (F, 3) int64."""
    B, H, W = face_index.shape
    bary = torch.empty((B, H, W, 3), dtype=verts.dtype, device=verts.device)
    launch(INTERPOLATE_KERNELS.for_dtype("pixel_barycentrics", verts.dtype), _grid(B * H * W),
           (BLOCK,), (verts, faces, face_index, B, verts.shape[1], H, W, perspective_correct,
                      bary), emulate=emulate)
    return bary


def interpolate_forward_cuda(attrs, face_index, bary, faces, *, emulate: bool = False):
    """(B, H, W, C) interpolated attributes from attrs (B, V, C), face_index (B, H, W),
    bary (B, H, W, 3) and faces (F, 3)."""
    B, H, W = face_index.shape
    V, C = attrs.shape[1:]
    out = torch.empty((B, H, W, C), dtype=attrs.dtype, device=attrs.device)
    launch(INTERPOLATE_KERNELS.for_dtype("interpolate_forward", attrs.dtype), _grid(B * H * W),
           (BLOCK,), (attrs, face_index, bary, faces, B, V, H, W, C, out), emulate=emulate)
    return out


def interpolate_backward_cuda(grad_out, attrs, face_index, bary, faces, verts,
                              perspective_correct, need_attrs, need_verts, *,
                              emulate: bool = False):
    """``(grad_attrs (B, V, C) or None, grad_verts (B, V, 3) or None)`` via atomicAdd.

    grad_out: (B, H, W, C); verts: (B, V, 3) screen-space vertices (or None when
    ``need_verts`` is false).
    """
    B, H, W = face_index.shape
    V, C = attrs.shape[1:]
    dev, dt = attrs.device, attrs.dtype
    grad_attrs = torch.zeros(attrs.shape if need_attrs else (1,), dtype=dt, device=dev)
    grad_verts = torch.zeros((B, V, 3) if need_verts else (1,), dtype=dt, device=dev)
    verts_arg = verts if need_verts else grad_verts
    launch(INTERPOLATE_KERNELS.for_dtype("interpolate_backward", dt), _grid(B * H * W),
           (BLOCK,), (grad_out, attrs, face_index, bary, faces, verts_arg, B, V, H, W, C,
                      perspective_correct, need_attrs, need_verts, grad_attrs, grad_verts),
           emulate=emulate)
    return (grad_attrs if need_attrs else None), (grad_verts if need_verts else None)
