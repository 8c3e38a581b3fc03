"""Compiled Lambertian SH shading, MoFA Eq. (4): NumPy reference, Numba, CUDA, autograd.

``sh_shade(albedo (B,V,3), normals (B,V,3), gamma (B,9,3)) -> (B,V,3)``, the one shading op
the library calls (irradiance basis of :func:`facelab.lighting.sh_irradiance_basis`).

Submodules: ``reference`` (NumPy, the definition of correct), ``cpu`` (Numba),
``cuda`` (CuPy launchers for ``kernels/sh_shade.cu``), ``autograd`` (torch Function),
``torch_ref`` (:func:`~facelab.shading.torch_ref.sh_shade_torch`, plain torch,
differentiable twice).
"""

from facelab.shading.autograd import ShShade, sh_shade

__all__ = ["ShShade", "sh_shade"]
