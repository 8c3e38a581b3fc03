"""The output of :func:`facelab.raster.rasterize`: which triangle covers each pixel, and where."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Fragments"]


class Fragments(NamedTuple):
    """Per-pixel rasterization result (nvdiffrast's ``rast`` split into named fields).

    face_index: (B, H, W) int64, index of the nearest triangle covering the pixel centre,
        -1 where the pixel is empty (this is the mask: ``face_index >= 0``).
    bary: (B, H, W, 3) float (the dtype of ``screen_verts``), barycentric weights of the
        triangle's three vertices at the pixel centre, in the order of ``faces[face_index]``;
        they sum to 1 on hits (perspective-correct when ``perspective_correct``) and are 0
        where empty.
    depth: (B, H, W) float, the interpolated depth at the pixel centre (the camera z,
        interpolated as 1/z, when ``perspective_correct``); 0 where empty — use
        ``face_index`` as the mask, never the depth.
    perspective_correct: whether ``bary`` and ``depth`` are perspective-correct; read by
        :func:`facelab.raster.interpolate` to differentiate the barycentrics consistently.

    Fragments are constants: rasterization is not differentiable. Gradients with respect
    to vertex positions flow through :func:`facelab.raster.interpolate` when it is given
    the ``screen_verts``. Fields are torch tensors, or NumPy arrays when ``rasterize`` was
    called with a NumPy ``screen_verts``.
    """

    face_index: object
    bary: object
    depth: object
    perspective_correct: bool = False
