"""Loader for 3DDFA_V2's BFM model (``configs/bfm_noneck_v3.pkl`` and companions).

3DDFA_V2 (Guo et al. 2020, Eqs. (2)-(3)) regresses ``p = [T (3x4), alpha_shp (40),
alpha_exp (10)]`` for the model ``S = u + w_shp alpha_shp + w_exp alpha_exp``,
a neck-less crop of the Basel Face Model 2009 (micrometres, xyz interleaved per
vertex) with an expression basis. Its bases are *not* scaled to unit-variance
coefficients: ``w_shp`` has (nearly) orthonormal columns with alpha_shp in
micrometres, ``w_exp`` carries its own scale. The per-mode standard deviations
come from 3DDFA_V2's parameter statistics ``param_mean_std_62d_120x120.pkl``
(the Z-score normalisation of 3DDFA_V2 Sec. 2.1), which this loader reads to
pre-scale the bases, so facelab's coefficients are ``c = alpha / sigma_alpha``:
a 3DDFA_V2 network output ``z = (alpha - mu_alpha) / sigma_alpha`` is the
coefficient ``c = z + mu_alpha / sigma_alpha``.

Files are parsed (never executed) by :mod:`facelab.model.safe_pickle` (NumPy
arrays only; shapes and sizes checked against ``max_bytes`` before allocation).
facelab never downloads them; see :data:`facelab.model.sources.MODEL_SOURCES`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facelab.model.morphable import MorphableModel
from facelab.model.safe_pickle import (
    DEFAULT_MAX_BYTES,
    ReadBudget,
    UnsafePickleError,
    decode_array,
    key_list,
    restricted_load,
)
from facelab.model.sources import (
    column_norms,
    faces_front_ccw,
    malformed_file_error,
    missing_file_error,
    overflow_is_malformed,
    require_file,
)

__all__ = ["load_3ddfa"]

_UM_PER_MM = 1000.0
_POSE_DIM = 12  # T, the 3x4 scaled-orthographic pose (3DDFA_V2 Eq. 3), leads the vector
_TRI_FILE = "tri.pkl"
_STATS_FILE = "param_mean_std_62d_120x120.pkl"
# A plain skin tone for the constant albedo (the file carries no reflectance model).
_SKIN_TONE = (0.70, 0.53, 0.45)


def _load_pickle(path: Path, caller: str, max_bytes: int):
    try:
        return restricted_load(path, allow_chumpy=False, allow_sparse=False,
                               max_bytes=max_bytes)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{caller}: {str(path)!r}: {exc}") from exc
    except ValueError as exc:
        raise malformed_file_error("3ddfa", path, str(exc), caller=caller) from exc


def _array(data, key: str, path: Path, caller: str, budget: ReadBudget) -> np.ndarray:
    if not isinstance(data, dict):
        raise malformed_file_error("3ddfa", path, f"expected a pickled dict, got "
                                   f"{type(data).__name__}", caller=caller)
    if key not in data:
        raise malformed_file_error("3ddfa", path, f"missing key {key!r} (found "
                                   f"{key_list(data)})", caller=caller)
    try:
        return decode_array(data[key], key, budget)
    except ValueError as exc:
        raise malformed_file_error("3ddfa", path, str(exc), caller=caller) from exc


def _integral(a: np.ndarray) -> np.ndarray | None:
    """``a`` as int64 when it holds integers (or integral floats); None otherwise."""
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() and (a == np.round(a)).all():
        return a.astype(np.int64)
    return None


def _optional_path(value, default: Path, name: str) -> Path | None:
    if value is None:
        return default if default.is_file() else None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected None, a str or os.PathLike, got {type(value).__name__}")
    return Path(value)


@overflow_is_malformed("3ddfa")
def load_3ddfa(path, tri_path=None, param_stats_path=None, *,
               max_bytes: int = DEFAULT_MAX_BYTES) -> MorphableModel:
    """Load 3DDFA_V2's ``bfm_noneck_v3.pkl`` as a morphable model with 3DDFA's landmarks.

    path: ``configs/bfm_noneck_v3.pkl`` (str or PathLike), a pickled dict with
        u (3V, 1), w_shp (3V, Ks), w_exp (3V, Ke), keypoints (204,), tri (3, F).
    tri_path: the triangle list to use, a pickled (3, F) 0-based array (``(F, 3)``
        is accepted too). None: ``tri.pkl`` next to ``path`` if it exists (3DDFA_V2
        rebuilt the triangles of bfm_noneck_v3 there), else the file's ``tri``.
    param_stats_path: 3DDFA_V2's parameter statistics, a pickled dict with
        mean and std of shape (12 + Ks + Ke,) (pose T, then shape, then
        expression). None: ``param_mean_std_62d_120x120.pkl`` next to ``path``;
        it is required because the bases are scaled by its std.
    max_bytes: the most bytes the three files and their arrays may declare together
        (default 1 GiB); checked before anything is allocated.

    Returns a float32 :class:`MorphableModel` named ``"3ddfa"`` with
        mean_shape (V, 3) = u / 1000 (micrometres -> mm; the file's origin is kept,
        so 3DDFA_V2 poses T stay valid up to the unit change),
        id_basis (V, 3, Ks) = w_shp * std_shp / 1000 and exp_basis (V, 3, Ke) =
        w_exp * std_exp / 1000, so coefficients are alpha / std (~N(0, 1) over
        3DDFA_V2's training fits); id_std / exp_std are the per-mode column norms (mm),
        landmarks (68,) = keypoints[0::3] // 3 (keypoints index the flattened xyz array),
        faces (F, 3), 0-based, re-wound counter-clockwise seen from the front if needed,
        mean_albedo a constant skin tone and albedo_basis (V, 3, 0) (no albedo in the file).
    The frame is BFM's, i.e. facelab's (y up, face toward +z).
    V = 38365, F = 76073, Ks = 40, Ke = 10 for the released files.

    Raises FileNotFoundError for a missing file, ValueError for a wrong layout or size and
    :class:`~facelab.model.safe_pickle.UnsafePickleError` (a ValueError and a
    ``pickle.UnpicklingError``) when a pickle references anything but NumPy arrays.
    """
    caller = "load_3ddfa"
    path = require_file("3ddfa", path, caller=caller)
    tri_file = _optional_path(tri_path, path.parent / _TRI_FILE, "tri_path")
    stats_file = _optional_path(param_stats_path, path.parent / _STATS_FILE, "param_stats_path")
    if tri_file is not None:
        tri_file = require_file("3ddfa", tri_file, caller=caller)
    if stats_file is None:
        raise missing_file_error("3ddfa", path.parent / _STATS_FILE, caller=caller)
    stats_file = require_file("3ddfa", stats_file, caller=caller)

    budget = ReadBudget(max_bytes, what="the 3DDFA_V2 files")
    data = _load_pickle(path, caller, max_bytes)
    u = _array(data, "u", path, caller, budget)
    w_shp = _array(data, "w_shp", path, caller, budget)
    w_exp = _array(data, "w_exp", path, caller, budget)
    keypoints = _array(data, "keypoints", path, caller, budget)

    def bad(problem, where=path):
        return malformed_file_error("3ddfa", where, problem, caller=caller)

    if u.size % 3 or u.ndim > 2 or (u.ndim == 2 and 1 not in u.shape):
        raise bad(f"u must be (3V, 1) with xyz interleaved, got {u.shape}")
    u = u.reshape(-1)
    n3 = u.size
    nv = n3 // 3
    for key, w in (("w_shp", w_shp), ("w_exp", w_exp)):
        if w.ndim != 2 or w.shape[0] != n3:
            raise bad(f"{key} must be ({n3}, K) to match u, got {w.shape}")
    for key, a in (("u", u), ("w_shp", w_shp), ("w_exp", w_exp)):
        if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
            raise bad(f"{key} must hold finite floating-point values (got {a.dtype})")

    # keypoints index the flattened xyz array: landmark j is (3 v_j, 3 v_j + 1, 3 v_j + 2).
    kp = _integral(keypoints.reshape(-1))
    if kp is None or kp.shape != (204,):
        raise bad(f"keypoints must be (204,) integer (68 landmarks x xyz), got "
                  f"{keypoints.shape} {keypoints.dtype}")
    xyz = kp.reshape(68, 3)  # (68, 3)
    if (xyz[:, 0] % 3).any() or (xyz - xyz[:, :1] != np.arange(3)).any():
        raise bad("keypoints must list (3v, 3v+1, 3v+2) for each landmark vertex v")
    if xyz.min() < 0 or xyz.max() >= n3:
        raise bad(f"keypoints must index [0, {n3}), got [{xyz.min()}, {xyz.max()}]")
    landmarks = xyz[:, 0] // 3  # (68,)

    if tri_file is not None:
        tri, tri_where = _load_pickle(tri_file, caller, max_bytes), tri_file
        if isinstance(tri, dict) and "tri" in tri:
            tri = tri["tri"]
        try:
            tri = decode_array(tri, "tri", budget)
        except ValueError as exc:
            raise bad(f"expected a pickled (3, F) array: {exc}", tri_file) from exc
    else:
        tri, tri_where = _array(data, "tri", path, caller, budget), path
    if tri.ndim == 2 and tri.shape[0] == 3 and tri.shape[1] != 3:
        tri = tri.T  # (3, F) -> (F, 3)
    tri_int = _integral(tri)
    if tri.ndim != 2 or tri.shape[1] != 3 or tri_int is None:
        raise bad(f"tri must be (3, F) integer, got {tri.shape} {tri.dtype}", tri_where)
    tri = tri_int
    if tri.size and (tri.min() < 0 or tri.max() >= nv):
        raise bad(f"tri must hold 0-based indices in [0, {nv}), got [{tri.min()}, "
                  f"{tri.max()}]", tri_where)

    stats = _load_pickle(stats_file, caller, max_bytes)
    std = _array(stats, "std", stats_file, caller, budget).reshape(-1)
    k_shp, k_exp = w_shp.shape[1], w_exp.shape[1]
    want = _POSE_DIM + k_shp + k_exp
    if std.shape != (want,) or not np.issubdtype(std.dtype, np.floating):
        raise bad(f"std must be ({want},) = 12 pose + {k_shp} shape + {k_exp} expression "
                  f"entries to match w_shp and w_exp, got {std.shape} {std.dtype}", stats_file)
    if not np.isfinite(std).all() or (std <= 0).any():
        raise bad("std must hold finite positive standard deviations", stats_file)
    std_shp = std[_POSE_DIM:_POSE_DIM + k_shp].astype(np.float32)
    std_exp = std[_POSE_DIM + k_shp:].astype(np.float32)

    mean = u.astype(np.float64).reshape(nv, 3) / _UM_PER_MM  # (V, 3) mm
    id_basis = (w_shp.astype(np.float32) * (std_shp / _UM_PER_MM)).reshape(nv, 3, k_shp)
    exp_basis = (w_exp.astype(np.float32) * (std_exp / _UM_PER_MM)).reshape(nv, 3, k_exp)
    faces, _ = faces_front_ccw(mean, np.ascontiguousarray(tri))
    return MorphableModel(
        name="3ddfa",
        mean_shape=mean.astype(np.float32),
        id_basis=id_basis,
        exp_basis=exp_basis,
        mean_albedo=np.tile(np.asarray(_SKIN_TONE, np.float32), (nv, 1)),
        albedo_basis=np.zeros((nv, 3, 0), np.float32),
        faces=faces,
        landmarks=landmarks,
        id_std=column_norms(id_basis).astype(np.float32),
        exp_std=column_norms(exp_basis).astype(np.float32),
        albedo_std=np.zeros(0, np.float32),
        source=str(path),
    )
