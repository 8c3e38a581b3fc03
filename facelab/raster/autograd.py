"""torch.autograd.Function for ``interpolate``, dispatching by device (CPU: Numba, CUDA: CuPy).

Inputs arrive validated (``facelab.raster.interpolate`` checks them once); every tensor
here is contiguous, attrs / screen_verts / bary share one float dtype, indices are int64.
"""

from __future__ import annotations

import numpy as np
import torch

from facelab.raster import cpu

__all__ = ["InterpolateFunction", "pixel_barycentrics"]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def pixel_barycentrics(screen_verts, face_index, faces, perspective_correct: bool):
    """(B, H, W, 3) barycentrics of each pixel centre in its triangle, from ``screen_verts``."""
    if screen_verts.is_cuda:
        from facelab.raster import cuda

        return cuda.pixel_barycentrics_cuda(screen_verts, face_index, faces,
                                            perspective_correct)
    out = cpu.pixel_barycentrics_numba(_np(screen_verts), _np(face_index), _np(faces),
                                       perspective_correct)
    return torch.from_numpy(out)


def _forward(attrs, face_index, bary, faces):
    if attrs.is_cuda:
        from facelab.raster import cuda

        return cuda.interpolate_forward_cuda(attrs, face_index, bary, faces)
    return torch.from_numpy(cpu.interpolate_forward_numba(
        _np(attrs), _np(face_index), _np(bary), _np(faces)))


def _backward(grad_out, attrs, face_index, bary, faces, verts, perspective_correct,
              need_attrs, need_verts):
    if attrs.is_cuda:
        from facelab.raster import cuda

        return cuda.interpolate_backward_cuda(grad_out, attrs, face_index, bary, faces, verts,
                                              perspective_correct, need_attrs, need_verts)
    ga, gv = cpu.interpolate_backward_numba(
        _np(grad_out), _np(attrs), _np(face_index), _np(bary), _np(faces),
        None if verts is None else _np(verts), perspective_correct, need_attrs, need_verts)
    return (None if ga is None else torch.from_numpy(ga),
            None if gv is None else torch.from_numpy(gv))


class InterpolateFunction(torch.autograd.Function):
    """out = (b0 a0 + b1 a1) + b2 a2 per pixel; gradients to attrs and (optionally) positions.

    forward(attrs (B, V, C), screen_verts (B, V, 3) or None, face_index (B, H, W) int64,
    bary (B, H, W, 3), faces (F, 3) int64, perspective_correct) -> (B, H, W, C).
    When ``screen_verts`` is given the barycentrics are recomputed from it (identical to
    the rasterizer's for the same vertices) so that they, and the output, depend on it.
    """

    @staticmethod
    def forward(ctx, attrs, screen_verts, face_index, bary, faces, perspective_correct):
        if screen_verts is not None:
            bary = pixel_barycentrics(screen_verts, face_index, faces, perspective_correct)
            bad = ~torch.isfinite(bary).all(-1) & (face_index >= 0)  # (B, H, W)
            if bool(bad.any()):
                raise ValueError(
                    f"screen_verts: barycentrics cannot be recomputed at {int(bad.sum())} "
                    "covered pixels: their triangles are degenerate (zero area"
                    + (", or a vertex at depth <= 0" if perspective_correct else "")
                    + ") in screen_verts; pass the vertices the fragments were rasterized from")
        out = _forward(attrs, face_index, bary, faces)
        ctx.perspective_correct = perspective_correct
        ctx.save_for_backward(attrs, screen_verts, face_index, bary, faces)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        attrs, screen_verts, face_index, bary, faces = ctx.saved_tensors
        need_attrs = ctx.needs_input_grad[0]
        need_verts = ctx.needs_input_grad[1] and screen_verts is not None
        if not (need_attrs or need_verts):
            return None, None, None, None, None, None
        grad_attrs, grad_verts = _backward(grad_out.contiguous(), attrs, face_index, bary,
                                           faces, screen_verts, ctx.perspective_correct,
                                           need_attrs, need_verts)
        return grad_attrs, grad_verts, None, None, None, None
