"""Compiled Lambertian SH shading, MoFA Eq. (4): NumPy reference, Numba, CUDA, autograd.

``sh_shade(albedo (B,V,3), normals (B,V,3), gamma (B,9,3)) -> (B,V,3)`` — the compiled twin
of :func:`facelab.lighting.sh_shade` (same irradiance basis, same values).

Submodules: ``reference`` (NumPy, the definition of correct), ``cpu`` (Numba),
``cuda`` (CuPy launchers for ``kernels/sh_shade.cu``), ``autograd`` (torch Function).
"""

from facelab.shading.autograd import ShShade, sh_shade

__all__ = ["ShShade", "sh_shade"]
