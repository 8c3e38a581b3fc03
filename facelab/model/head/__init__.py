"""The built-in synthetic morphable model, version 2: a full head.

Version 1 (:mod:`facelab.model.synthetic`) is a face mask; version 2 is made by code the same
way (deterministic, a sampled population reduced by PCA, Blanz & Vetter 1999) but is a whole
head with FLAME's rig (Li et al. 2017):

* a **head shell** (``shape.py``, ``mesh.py``): scalp (no hair), back of the head, ears,
  neck (the mesh's only boundary is the neck cut), version 1's face (nose, lips with a mouth
  slit and a deeper mouth interior, cheeks, chin), eyelids over **separate eyeballs** (sclera,
  iris and pupil live in the albedo texture), and **teeth** (an upper and a lower arch);
* a **skeleton** (``rig.py``): FLAME's joints below the root, ``neck``, ``jaw``,
  ``eye_left``, ``eye_right`` (jaw and eyes children of the neck), with linear blend skinning
  weights and a joint regressor, so :class:`facelab.FaceParams` ``neck`` / ``jaw`` / ``eyes``
  pose it through :func:`facelab.form` (FLAME Eq. 2; the global rotation is
  ``params.rotation``);
* **bases** (``assemble.py``, ``population.py``): 100 identity, 50 expression and 100 albedo
  modes scaled by their standard deviations (MoFA Eqs. 2-3), ordered by variance; named
  expressions; iBUG-68 landmarks, a face mask, a per-vertex ``mirror`` map;
* **texture-space albedo** (``texture.py``): a UV layout mirror-symmetric about u = 0.5 with the
  eyeballs, mouth interior and teeth in their own mirror-pair islands; mean and basis maps at
  256^2; per-vertex albedo sampled from them.

Use it through :func:`facelab.model.registry.load_model` (``fl.load_model("synthetic",
resolution, version=2)``). Generated arrays are cached in memory and on disk (the cache key
hashes this package's sources and the version-1 modules it imports); :data:`TIMINGS` records
the build and load times of this process.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import torch

from facelab.model.morphable import MorphableModel
from facelab.model.skinning import Skeleton
from facelab.model.synthetic import cache as _cache
from facelab.model.synthetic import model_fields, resolution_label

__all__ = ["HEAD_GENERATOR_VERSION", "MODEL_NAME", "HEAD_RESOLUTIONS", "TIMINGS", "head_arrays",
           "head_model"]

HEAD_GENERATOR_VERSION = "2"
MODEL_NAME = "synthetic2"
HEAD_RESOLUTIONS = {"teaching": 5000, "medium": 12000, "bfm": 38000, "high": 50000}
MIN_VERTICES, MAX_VERTICES = 3000, 250000
TIMINGS: dict = {}
"""{vertex budget: {"build_s": seconds to generate, "load_s": seconds to read the disk cache,
"texture_s": seconds to make the texture maps}} for this process (what happened, not a
promise)."""

_KEYS = (
    "mean_shape", "id_basis", "id_std", "exp_basis", "exp_std", "mean_albedo", "albedo_basis",
    "faces", "uv", "uv_faces", "landmarks", "face_mask", "joint_positions", "joint_weights",
    "joint_regressor", "mirror", "kind", "expression_names", "expression_coeffs",
    "landmark_vertices", "landmark_weights",
)
_TEX_KEYS = ("albedo_texture", "albedo_texture_basis", "albedo_std")
_MEMORY: dict[int, dict] = {}
_V1_SOURCES = ("anatomy.py", "bases.py", "blendshapes.py", "cache.py", "ibug.py", "lattice.py",
               "mouth.py", "rows.py", "surface.py")
# the version-1 modules this package uses (their edits invalidate its cache too)


def _vertex_budget(resolution) -> int:
    return _cache.vertex_budget(resolution, HEAD_RESOLUTIONS, MIN_VERTICES, MAX_VERTICES)


@functools.cache
def cache_key() -> str:
    """HEAD_GENERATOR_VERSION plus a digest of this package's sources and the version-1 modules it
    imports: any edit to the generator invalidates cached arrays."""
    here = Path(__file__).parent
    v1 = here.parent / "synthetic"
    return _cache.source_key(HEAD_GENERATOR_VERSION,
                             sorted(here.glob("*.py")) + [v1 / name for name in _V1_SOURCES])


def _textures(cache: bool) -> dict:
    from facelab.model.head.assemble import texture_arrays

    if not cache:
        return texture_arrays()
    if 0 not in _MEMORY:
        t0 = time.perf_counter()
        tex = _cache.load_cached(cache_key(), 0, _TEX_KEYS)
        if tex is None:
            tex = texture_arrays()
            TIMINGS.setdefault(0, {})["texture_s"] = time.perf_counter() - t0
            _cache.save_cached(cache_key(), 0, tex)
        else:
            TIMINGS.setdefault(0, {})["load_s"] = time.perf_counter() - t0
        _MEMORY[0] = tex
    return _MEMORY[0]


def head_arrays(resolution="teaching", *, cache: bool = True) -> dict[str, np.ndarray]:
    """The raw arrays of the head model (float32 / int64 / bool / int8 NumPy).

    Besides the :class:`MorphableModel` fields: ``mirror`` (V,) int64 the index of each
    vertex's mirror image, ``kind`` (V,) int8 (0 skin, 1/2 upper/lower edge of the mouth slit,
    3 mouth interior, 4/5 right/left eyeball, 6/7 upper/lower teeth), ``joint_positions``
    (4, 3), ``joint_weights`` (V, 4), ``joint_regressor`` (4, V) in the order
    ``("neck", "jaw", "eye_left", "eye_right")``. With ``cache=True`` they are kept in memory
    and on disk (``$FACELAB_CACHE`` or ``~/.cache/facelab``).
    """
    from facelab.model.head.assemble import generate_arrays

    n = _vertex_budget(resolution)
    if not cache:
        return {**generate_arrays(n, _textures(False)), **_textures(False)}
    if n not in _MEMORY:
        t0 = time.perf_counter()
        arrays = _cache.load_cached(cache_key(), n, _KEYS)
        if arrays is None:
            arrays = generate_arrays(n, _textures(True))
            TIMINGS.setdefault(n, {})["build_s"] = time.perf_counter() - t0
            _cache.save_cached(cache_key(), n, arrays)
        else:
            TIMINGS.setdefault(n, {})["load_s"] = time.perf_counter() - t0
        _MEMORY[n] = {**arrays, **_textures(True)}
    return _MEMORY[n]


def head_model(resolution="teaching", *, cache: bool = True,
               dtype: torch.dtype = torch.float32) -> MorphableModel:
    """Build the version-2 :class:`MorphableModel` (see the module docstring).

    resolution: ``"teaching"`` (~5k vertices), ``"medium"`` (~12k), ``"bfm"`` (~38k),
        ``"high"`` (~50k), or an int, the approximate vertex count (3000 to 250000).
    cache: reuse (and store) generated arrays in memory and on disk.
    dtype: torch.float32 or torch.float64 for the floating tensors.
    """
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    from facelab.model.head.rig import JOINT_NAMES, JOINT_PARENTS

    f = model_fields(head_arrays(resolution, cache=cache), dtype,
                     floats=("joint_positions", "joint_weights", "joint_regressor", "uv",
                             "albedo_texture", "albedo_texture_basis", "landmark_weights"),
                     ints=("uv_faces", "landmark_vertices"))
    skeleton = Skeleton(JOINT_NAMES, JOINT_PARENTS, f.pop("joint_positions"),
                        f.pop("joint_weights"), f.pop("joint_regressor"))
    return MorphableModel(name=f"{MODEL_NAME}-{resolution_label(resolution)}",
                          skeleton=skeleton, **f)
