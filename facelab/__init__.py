"""facelab: monocular 3D face reconstruction for teaching, CPU first, with compiled kernels.

    import facelab as fl
    model = fl.load_model("synthetic")             # built-in, deterministic, offline
    verts = model.shape(id_coeffs, exp_coeffs)     # (B, V, 3), MoFA Eq. 2
    frags = fl.rasterize(screen_verts, model.faces, 224, 224)

``facelab.widgets`` (ipywidgets / pythreejs) is imported lazily, on first use.
"""

from importlib import import_module

from facelab import (  # _threads first: Numba's threading layer, before any pool starts
    _threads,  # noqa: F401
    cameras,
    export,
    formation,
    lighting,
    losses,
    mesh,
    metrics,
    progress,
    rotations,
)
from facelab.export import load_obj, save_obj, save_ply
from facelab.face_params import FaceParams
from facelab.fitting import FitResult, FitSettings, fit_image, fit_video
from facelab.formation import Formation, default_camera, form, render, render_preview
from facelab.lighting import ambient_sh, random_sh, sh_basis, sh_from_direction, sh_irradiance_basis
from facelab.mesh import face_normals
from facelab.model import MorphableModel
from facelab.model.bfm import load_bfm2009, load_bfm2017
from facelab.model.flame import load_flame
from facelab.model.registry import load_model
from facelab.model.tddfa import load_3ddfa
from facelab.normals import vertex_normals
from facelab.raster import Fragments, interpolate, rasterize, vertex_visibility
from facelab.raster.compose import render_mesh
from facelab.shading import sh_shade

__version__ = "0.1.0"

__all__ = [
    "FaceParams",
    "FitResult",
    "FitSettings",
    "Formation",
    "Fragments",
    "MorphableModel",
    "__version__",
    "ambient_sh",
    "cameras",
    "default_camera",
    "export",
    "face_normals",
    "fit_image",
    "fit_video",
    "fitting",
    "form",
    "formation",
    "interpolate",
    "lighting",
    "load_3ddfa",
    "load_bfm2009",
    "load_bfm2017",
    "load_flame",
    "load_model",
    "load_obj",
    "losses",
    "mesh",
    "metrics",
    "progress",
    "random_sh",
    "rasterize",
    "render",
    "render_mesh",
    "render_preview",
    "rotations",
    "save_obj",
    "save_ply",
    "sh_basis",
    "sh_from_direction",
    "sh_irradiance_basis",
    "sh_shade",
    "vertex_normals",
    "vertex_visibility",
]

_LAZY = {"widgets", "landmarks"}  # ipywidgets/pythreejs; mediapipe


def __getattr__(name):
    if name in _LAZY:
        return import_module(f"facelab.{name}")
    raise AttributeError(f"module 'facelab' has no attribute {name!r}")
