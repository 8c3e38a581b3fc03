"""facelab: monocular 3D face reconstruction for teaching, CPU first, with compiled kernels.

    import facelab as fl
    model = fl.load_model("synthetic")             # built-in, deterministic, offline
    verts = model.shape(id_coeffs, exp_coeffs)     # (B, V, 3), MoFA Eq. 2
    frags = fl.rasterize(screen_verts, model.faces, 224, 224)

Every public name is imported lazily, on first use (PEP 562): ``import facelab`` alone does
not import torch, so ``facelab --help`` answers at once; ``fl.rasterize`` imports its
module the first time it is touched. ``facelab.widgets`` (ipywidgets / pythreejs) likewise.
"""

from importlib import import_module

# First: Numba's threading layer, before any kernel starts a pool (see _threads.py).
from facelab import _threads  # noqa: F401

# public name -> the module that defines it (imported on first access)
_EXPORTS = {
    "load_obj": "facelab.export", "save_obj": "facelab.export", "save_ply": "facelab.export",
    "save_textured_obj": "facelab.export", "extract_texture": "facelab.fitting.texture",
    "FaceParams": "facelab.face_params",
    "FitResult": "facelab.fitting", "FitSettings": "facelab.fitting",
    "fit_image": "facelab.fitting", "fit_video": "facelab.fitting",
    "Formation": "facelab.formation", "default_camera": "facelab.formation",
    "form": "facelab.formation", "render": "facelab.formation",
    "render_preview": "facelab.formation",
    "ambient_sh": "facelab.lighting", "random_sh": "facelab.lighting",
    "sh_basis": "facelab.lighting", "sh_from_direction": "facelab.lighting",
    "sh_irradiance_basis": "facelab.lighting",
    "face_normals": "facelab.mesh",
    "motion_apd": "facelab.metrics", "motion_fd": "facelab.metrics",
    "MorphableModel": "facelab.model",
    "load_bfm2009": "facelab.model.bfm", "load_bfm2017": "facelab.model.bfm",
    "load_flame": "facelab.model.flame", "load_model": "facelab.model.registry",
    "load_3ddfa": "facelab.model.tddfa",
    "vertex_normals": "facelab.normals",
    "Fragments": "facelab.raster", "interpolate": "facelab.raster",
    "rasterize": "facelab.raster", "vertex_visibility": "facelab.raster",
    "render_mesh": "facelab.raster.compose",
    "sh_shade": "facelab.shading",
    "sample_texture": "facelab.texture",
    "scan_to_mesh_error": "facelab.metrics",
}
_SUBMODULES = {"cameras", "export", "fitting", "formation", "landmarks", "lighting", "losses",
               "mesh", "metrics", "progress", "rotations", "widgets"}
_LAZY = {"widgets", "landmarks"}  # public modules outside __all__ (ipywidgets/pythreejs; mediapipe)

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
    "extract_texture",
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
    "motion_apd",
    "motion_fd",
    "progress",
    "random_sh",
    "rasterize",
    "render",
    "render_mesh",
    "render_preview",
    "rotations",
    "sample_texture",
    "save_obj",
    "save_ply",
    "save_textured_obj",
    "scan_to_mesh_error",
    "sh_basis",
    "sh_from_direction",
    "sh_irradiance_basis",
    "sh_shade",
    "vertex_normals",
    "vertex_visibility",
]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return import_module(f"facelab.{name}")
    raise AttributeError(f"module 'facelab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
