"""Third-party morphable-model files: where they come from, how they are checked.

facelab never downloads BFM, FLAME or 3DDFA files; users bring their own copy.
This module is the one table of those sources (:data:`MODEL_SOURCES`) used by
every loader's error message, plus the small conversions all loaders share:

* :func:`missing_file_error` / :func:`malformed_file_error` build the errors
  (``FileNotFoundError`` / ``ValueError``) that say which file and layout was
  expected, where to obtain it and under which licence;
* :func:`faces_front_ccw` makes triangles counter-clockwise seen from the front
  (+z), facelab's winding convention (see ``MorphableModel.faces``);
* :func:`landmark_indices` validates a user-supplied (68,) iBUG landmark list;
* :func:`column_norms` gives the per-mode standard deviation (mm) of a scaled basis.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facelab._checks import check_indices, check_shape

__all__ = [
    "MODEL_SOURCES",
    "MalformedFileError",
    "ModelSource",
    "column_norms",
    "faces_front_ccw",
    "float32_range",
    "overflow_is_malformed",
    "landmark_indices",
    "malformed_file_error",
    "missing_file_error",
    "require_file",
]


@dataclass(frozen=True)
class ModelSource:
    """Where one kind of morphable-model file comes from and what it must contain.

    title: human name, e.g. ``"Basel Face Model 2009"``.
    files: the usual file name(s).
    url: where users obtain it (facelab never downloads it).
    licence: the terms it is distributed under, in one sentence.
    layout: the keys/datasets and shapes facelab reads (V vertices, F faces, K modes).
    short: the short name used in error messages ("not a valid FLAME file: ...").
    """

    title: str
    files: str
    url: str
    licence: str
    layout: str
    short: str = ""


MODEL_SOURCES: dict[str, ModelSource] = {
    "bfm2009": ModelSource(
        title="Basel Face Model 2009",
        files="01_MorphableModel.mat",
        url="https://faces.dmi.unibas.ch/bfm/",
        licence=(
            "free for non-commercial research after registration and acceptance of the "
            "University of Basel licence agreement; commercial use needs a separate licence"
        ),
        short="BFM 2009",
        layout=(
            "a MATLAB .mat file (v5, or v7.3/HDF5) with shapeMU (3V, 1), shapePC (3V, K), "
            "shapeEV (K, 1), texMU (3V, 1), texPC (3V, K'), texEV (K', 1) and tl (F, 3) "
            "1-based triangle indices; xyz interleaved per vertex, shape in micrometres, "
            "texture in 0..255 (V = 53490, F = 106466, K = K' = 199 in the release)"
        ),
    ),
    "bfm2017": ModelSource(
        title="Basel Face Model 2017",
        files="model2017-1_bfm_nomouth.h5 or model2017-1_face12_nomouth.h5",
        url="https://faces.dmi.unibas.ch/bfm/bfm2017.html",
        licence=(
            "free for non-commercial research after registration and acceptance of the "
            "University of Basel licence agreement; commercial use needs a separate licence"
        ),
        short="BFM 2017",
        layout=(
            "an HDF5 (statismo) file with shape/model/mean (3V,), shape/model/pcaBasis "
            "(3V, K) orthonormal columns, shape/model/pcaVariance (K,), "
            "shape/representer/cells (3, F) 0-based, and optionally the same "
            "model/{mean, pcaBasis, pcaVariance} datasets under color/ and expression/; "
            "xyz interleaved per vertex, millimetres, colours in [0, 1]"
        ),
    ),
    "flame": ModelSource(
        title="FLAME head model",
        files="generic_model.pkl (FLAME 2020), flame2023.pkl or flame2023_Open.pkl",
        url="https://flame.is.tue.mpg.de",
        licence=(
            "FLAME 2017/2019/2020/2023: registration and the MPI FLAME model licence "
            "(non-commercial scientific research only); FLAME 2023 Open "
            "(flame2023_Open.pkl): CC BY 4.0 (attribution required)"
        ),
        short="FLAME",
        layout=(
            "a pickle of a dict with v_template (V, 3) metres, f (F, 3), shapedirs "
            "(V, 3, K) (300 shape then expression modes; a chumpy array is fine), "
            "J_regressor (5, V) (SciPy sparse or dense), weights (V, 5) and "
            "kintree_table (2, 5) (V = 5023, F = 9976, K = 400 in FLAME 2020)"
        ),
    ),
    "3ddfa": ModelSource(
        title="3DDFA_V2 BFM model",
        files=(
            "configs/bfm_noneck_v3.pkl with configs/tri.pkl and "
            "configs/param_mean_std_62d_120x120.pkl"
        ),
        url="https://github.com/cleardusk/3DDFA_V2 (its configs/ folder)",
        licence=(
            "the 3DDFA_V2 code is MIT, but the model files are derived from the Basel "
            "Face Model 2009, so the BFM licence applies (non-commercial research; "
            "commercial use needs a BFM commercial licence, see 3DDFA_V2's bfm/readme.md)"
        ),
        short="3DDFA_V2",
        layout=(
            "a pickle of a dict with u (3V, 1), w_shp (3V, Ks), w_exp (3V, Ke), "
            "keypoints (204,) indices into the flattened xyz array and tri (3, F) 0-based "
            "(or a separate tri.pkl holding the (3, F) array); the parameter statistics "
            "pickle holds mean and std of shape (12 + Ks + Ke,); xyz interleaved per vertex, "
            "micrometres (V = 38365, F = 76073, Ks = 40, Ke = 10 in the release)"
        ),
    ),
}


def _where(key: str) -> str:
    src = MODEL_SOURCES[key]
    return (
        f"Expected the {src.title} file {src.files}: {src.layout}. facelab never downloads "
        f"it: obtain it from {src.url} ({src.licence})."
    )


def missing_file_error(key: str, path, *, caller: str) -> FileNotFoundError:
    """The error for a model file that does not exist.

    key: a key of :data:`MODEL_SOURCES` (``"bfm2009"``, ``"bfm2017"``, ``"flame"``, ``"3ddfa"``).
    path: the path the user gave. caller: the public function's name.
    """
    return FileNotFoundError(f"{caller}: no file at {os.fspath(path)!r}. {_where(key)}")


class MalformedFileError(ValueError):
    """A model file that is not in the layout its loader expects (a ValueError)."""


def malformed_file_error(key: str, path, problem: str, *, caller: str) -> MalformedFileError:
    """The error for a model file whose content does not have the expected layout.

    problem: what is wrong, e.g. ``"missing variable 'shapeEV'"``.
    """
    src = MODEL_SOURCES[key]
    problem = " ".join(str(problem).split())  # one line, whatever the underlying error said
    return MalformedFileError(
        f"{caller}: {os.fspath(path)!r} is not a valid {src.short} file: {problem}. "
        f"{_where(key)}"
    )


@contextlib.contextmanager
def float32_range(key: str, path, *, caller: str):
    """Turn a float overflow while converting a file's arrays into :func:`malformed_file_error`.

    Finite values can still overflow float32 after a unit change or basis scaling
    (e.g. 1e300 in a float64 file); without this they become Inf with a RuntimeWarning.
    """
    try:
        with np.errstate(over="raise", invalid="raise"):
            yield
    except FloatingPointError as exc:
        raise malformed_file_error(key, path, f"its values overflow float32 ({exc})",
                                   caller=caller) from exc


def overflow_is_malformed(key: str):
    """Decorate a loader ``fn(path, ...)`` so that float overflow is a malformed-file error."""
    def wrap(fn):
        @functools.wraps(fn)
        def loader(path, *args, **kwargs):
            with float32_range(key, path, caller=fn.__name__):
                return fn(path, *args, **kwargs)
        return loader
    return wrap


def require_file(key: str, path, *, caller: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`; raise :func:`missing_file_error` if absent."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    if not p.is_file():
        raise missing_file_error(key, p, caller=caller)
    return p


def faces_front_ccw(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, bool]:
    """Make triangles counter-clockwise seen from the front (+z); return (faces, flipped).

    verts: (V, 3) float, model space (y up, face toward +z).
    faces: (F, 3) int64, 0-based.

    The winding is decided on the front half of the mesh (faces whose centroid
    z is above the median), where the surface faces +z for both face masks (BFM)
    and closed heads (FLAME): if the sum of their area vectors
    ``(b - a) x (c - a)`` points toward -z, every triangle is flipped
    (columns 1 and 2 swapped). Returns the (F, 3) faces and whether they were flipped.
    """
    tri = verts[faces]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3), |n| = 2 area
    z = tri[:, :, 2].mean(axis=1)  # (F,)
    front = z > np.median(z)
    if not front.any():
        front = np.ones_like(front)
    if normals[front, 2].sum() < 0:
        return np.ascontiguousarray(faces[:, [0, 2, 1]]), True
    return faces, False


def landmark_indices(landmarks, num_vertices: int, *, name: str = "landmarks"):
    """Validate optional iBUG-68 landmark vertex indices; return a (68,) int64 tensor or None.

    landmarks: None, or (68,) integer vertex indices (torch, NumPy or a sequence).
    num_vertices: V; every index must lie in [0, V).
    """
    if landmarks is None:
        return None
    if isinstance(landmarks, (list, tuple)):
        landmarks = np.asarray(landmarks)
    if not isinstance(landmarks, (torch.Tensor, np.ndarray)):
        raise TypeError(
            f"{name}: expected None or (68,) integer vertex indices, got {type(landmarks).__name__}"
        )
    check_shape(landmarks, "68", name=name)
    check_indices(landmarks, num_vertices, name=name)
    if isinstance(landmarks, np.ndarray):
        landmarks = torch.from_numpy(np.ascontiguousarray(landmarks))
    return landmarks.to(torch.int64).clone()


def column_norms(basis: np.ndarray) -> np.ndarray:
    """Per-mode norm of a (V, 3, K) scaled basis: (K,), the mode's std along its unit direction.

    For an orthonormal PCA basis scaled by its standard deviations this is exactly
    the file's standard deviation; it is the definition facelab uses when a file
    gives no separate standard deviations (FLAME, 3DDFA).
    """
    return np.sqrt((basis.astype(np.float64) ** 2).sum(axis=(0, 1)))
