"""The built-in, license-free synthetic morphable face model.

BFM and FLAME cannot be shipped, so facelab makes its own 3D morphable model
(Blanz & Vetter 1999) by code, deterministically, the way a real one is made:

* a **mean face** (``anatomy.py``, ``surface.py``): a smooth analytic surface
  with forehead, brows, eyes (sockets, eyeballs, lids that close), nose, lips with
  a real mouth slit and a mouth interior, cheeks, chin and jaw line, cropped like
  BFM's "noneck" face mask, triangulated on a regular lattice;
* **bases** (``bases.py``) learned by PCA from a *sampled population* of identity
  variations, expressions and reflectances (``blendshapes.py``, ``albedo.py``),
  scaled by their standard deviations so coefficients are ~N(0, 1):
  ``V = mean_shape + id_basis @ alpha + exp_basis @ delta`` (MoFA Eq. 2) and
  ``R = mean_albedo + albedo_basis @ beta`` (MoFA Eq. 3);
* **annotations**: iBUG-68 landmarks, a face mask, named expressions, and a jaw
  joint with skinning weights (FLAME-style jaw pose).

Use it through :func:`facelab.model.registry.load_model` (``fl.load_model``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from facelab.model.morphable import MorphableModel
from facelab.model.synthetic import cache as _cache
from facelab.model.synthetic.assemble import generate_arrays

__all__ = ["GENERATOR_VERSION", "RESOLUTIONS", "synthetic_model", "synthetic_arrays"]

GENERATOR_VERSION = "1"
RESOLUTIONS = {"teaching": 3000, "medium": 12000, "bfm": 38000, "high": 50000}
MIN_VERTICES, MAX_VERTICES = 1000, 250000

_KEYS = (
    "mean_shape", "id_basis", "id_std", "exp_basis", "exp_std", "mean_albedo", "albedo_basis",
    "albedo_std", "faces", "landmarks", "face_mask", "jaw_joint", "jaw_weights", "mirror", "kind",
    "expression_names", "expression_coeffs", "mouth_interior",
)
_MEMORY: dict[int, dict] = {}


def _vertex_budget(resolution) -> int:
    return _cache.vertex_budget(resolution, RESOLUTIONS, MIN_VERTICES, MAX_VERTICES)


@functools.cache
def cache_key() -> str:
    """The cache key: GENERATOR_VERSION plus a digest of this package's sources.

    Any edit to the generator invalidates cached models, so a stale ``.npz`` can never be
    read by newer code (a bumped version alone relies on someone remembering to bump it).
    """
    return _cache.source_key(GENERATOR_VERSION, sorted(Path(__file__).parent.glob("*.py")))


def _generate(n: int) -> dict[str, np.ndarray]:
    """generate_arrays on one BLAS thread: the PCA's sums are ordered by the BLAS's threads,
    so with the machine's thread count the float32 bases (and ``digest()``) differed between 1
    and 2 threads (measured: two digests for one source)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return generate_arrays(n)


def synthetic_arrays(resolution="teaching", *, cache: bool = True) -> dict[str, np.ndarray]:
    """The raw arrays of the synthetic model (float32 / int64 / bool NumPy).

    Besides the :class:`MorphableModel` fields it holds ``mirror`` (V,) int64, the
    index of each vertex's left/right mirror image, ``kind`` (V,) int8 (0 skin,
    1/2 upper/lower edge of the mouth slit, 3 mouth interior) and
    ``mouth_interior`` (V,) bool. With ``cache=True`` the arrays are kept in memory
    and on disk (see :mod:`facelab.model.synthetic.cache`).
    """
    n = _vertex_budget(resolution)
    if not cache:
        return _generate(n)
    if n not in _MEMORY:
        arrays = _cache.load_cached(cache_key(), n, _KEYS)
        if arrays is None:
            arrays = _generate(n)
            _cache.save_cached(cache_key(), n, arrays)
        _MEMORY[n] = arrays
    return _MEMORY[n]


def synthetic_model(resolution="teaching", *, cache: bool = True,
                    dtype: torch.dtype = torch.float32) -> MorphableModel:
    """Build the synthetic :class:`MorphableModel` (see the module docstring).

    resolution: ``"teaching"`` (~3k vertices), ``"medium"`` (~12k), ``"bfm"`` (~38k
        vertices / ~76k triangles, like 3DDFA_V2's BFM crop) or ``"high"`` (~50k),
        or an int, the approximate vertex count.
    cache: reuse (and store) generated arrays in memory and on disk.
    dtype: torch.float32 or torch.float64 for the floating tensors (the values are
        the float32 numbers of the generator in either case).
    """
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    fields = model_fields(synthetic_arrays(resolution, cache=cache), dtype,
                          floats=("jaw_joint", "jaw_weights"))
    return MorphableModel(name=f"synthetic-{resolution_label(resolution)}", **fields)


def resolution_label(resolution) -> str:
    """The model name's suffix: the resolution's name, or its vertex count."""
    return resolution if isinstance(resolution, str) else str(int(resolution))


def model_fields(a: dict, dtype: torch.dtype, *, floats=(), ints=()) -> dict:
    """The :class:`MorphableModel` keyword arguments a built-in model (version 1 or 2) takes
    from its arrays ``a``: the bases, stds, mesh, annotations and named expressions, plus the
    arrays named in ``floats`` (as ``dtype``) and ``ints`` (as stored), as torch tensors."""
    t = lambda k: torch.from_numpy(np.array(a[k])).to(dtype)  # noqa: E731
    i = lambda k: torch.from_numpy(np.array(a[k]))  # noqa: E731
    names = [str(x) for x in a["expression_names"]]
    return dict(
        mean_shape=t("mean_shape"), id_basis=t("id_basis"), exp_basis=t("exp_basis"),
        mean_albedo=t("mean_albedo"), albedo_basis=t("albedo_basis"), faces=i("faces"),
        landmarks=i("landmarks"), face_mask=i("face_mask"),
        expressions={k: t("expression_coeffs")[j] for j, k in enumerate(names)},
        id_std=t("id_std"), exp_std=t("exp_std"), albedo_std=t("albedo_std"), source="built-in",
        **{k: t(k) for k in floats}, **{k: i(k) for k in ints},
    )
