"""Compiled bilinear texture lookup (nvdiffrast's texture stage): NumPy reference, Numba, CUDA,
autograd.

``sample_texture(texture (B, Ht, Wt, C), uv (B, H, W, 2), mask (B, H, W) or None)
-> (B, H, W, C)``: OBJ texture coordinates (u right, v up), texel centres at half-integers,
clamp-to-edge addressing, zero where the mask is False; differentiable in the texture and uv.
:func:`facelab.render` uses it for textured models (UVs interpolated over the mesh's UV
layout, the albedo maps of MoFA Eq. 3 per texel, times the SH irradiance of MoFA Eq. 4).

Submodules: ``reference`` (NumPy, the definition of correct), ``cpu`` (Numba), ``cuda`` (CuPy
launchers for ``kernels/texture.cu``), ``autograd`` (torch Function and the validated op),
``compose`` (a textured mesh rendered into images).
"""

from facelab.texture.autograd import SampleTexture, sample_texture

__all__ = ["SampleTexture", "sample_texture"]
