"""Loaders for the Basel Face Model 2009 (``.mat``) and 2017 (HDF5) files users bring.

Both are PCA models (Paysan et al. 2009; Gerig et al. 2018), the 3DMM of MoFA
Eqs. (2)-(3): ``S = mean + U diag(sigma) alpha`` with orthonormal columns U,
per-mode standard deviations sigma and alpha ~ N(0, 1). facelab stores the
bases pre-scaled, ``U diag(sigma)``, so :meth:`MorphableModel.shape` takes alpha
directly. Both files already use facelab's model frame (y up, the face looking
toward +z); only the units change (BFM 2009 is in micrometres). The origin of
the file is kept (no re-centring), so poses fitted by other tools stay valid.

facelab never downloads these files; see :data:`facelab.model.sources.MODEL_SOURCES`.
"""

from __future__ import annotations

import contextlib

import numpy as np

from facelab.model.matlab_v5 import read_mat_v5
from facelab.model.morphable import MorphableModel
from facelab.model.safe_pickle import DEFAULT_MAX_BYTES, ReadBudget
from facelab.model.sources import (
    MalformedFileError,
    faces_front_ccw,
    landmark_indices,
    malformed_file_error,
    overflow_is_malformed,
    require_file,
)

__all__ = ["load_bfm2009", "load_bfm2017"]

_BFM2009_KEYS = ("shapeMU", "shapePC", "shapeEV", "texMU", "texPC", "texEV", "tl")
_UM_PER_MM = 1000.0


# --------------------------------------------------------------------- BFM 2009


def _h5_dataset(f, name: str, key: str, path, caller: str, budget: ReadBudget) -> np.ndarray:
    """Read dataset ``name`` of an open HDF5 file after checking kind, dtype and declared size."""
    import h5py

    def bad(problem):
        return malformed_file_error(key, path, problem, caller=caller)

    try:
        node = f[name]
    except (KeyError, OSError, ValueError, RuntimeError) as exc:
        raise bad(f"cannot open {name!r} ({exc})") from exc
    if not isinstance(node, h5py.Dataset):
        raise bad(f"{name!r} must be a dataset, got an HDF5 {type(node).__name__.lower()}")
    if node.dtype.kind not in "biuf":
        raise bad(f"{name!r} must hold numbers, got dtype {node.dtype}")
    try:
        budget.charge(int(np.prod(node.shape, dtype=object)) * node.dtype.itemsize, repr(name))
    except ValueError as exc:
        raise bad(str(exc)) from exc
    try:
        return np.asarray(node[()])
    except (OSError, ValueError, TypeError, RuntimeError) as exc:  # truncated or corrupt
        raise bad(f"cannot read {name!r} ({type(exc).__name__}: {exc})") from exc


def _h5_has(f, name: str) -> bool:
    try:
        return name in f
    except (KeyError, TypeError):  # a path through a dataset, ...
        return False


@contextlib.contextmanager
def _open_h5(path, key: str, caller: str):
    """Open an HDF5 file; libhdf5's errors on corrupt structure become malformed-file errors."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError) as exc:  # truncated or corrupt HDF5
        raise malformed_file_error(key, path, f"cannot be opened as HDF5 ({exc})",
                                   caller=caller) from exc
    try:
        with f:
            yield f
    except MalformedFileError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise malformed_file_error(key, path, f"its HDF5 structure is corrupt "
                                   f"({type(exc).__name__}: {exc})", caller=caller) from exc


def _read_mat(path, caller: str, budget: ReadBudget) -> dict[str, np.ndarray]:
    """Read the BFM 2009 variables from a MATLAB v5 or v7.3 (HDF5) file.

    MATLAB v7.3 files store column-major arrays, which h5py reads transposed;
    they are transposed back here so both variants give MATLAB's shapes. v5 files are
    parsed by :func:`facelab.model.matlab_v5.read_mat_v5` (NumPy only, every length
    checked). Declared sizes are charged to ``budget`` before any variable is read.
    """
    import h5py

    out: dict[str, np.ndarray] = {}
    if h5py.is_hdf5(path):
        with _open_h5(path, "bfm2009", caller) as f:
            for key in _BFM2009_KEYS:
                if key not in f:
                    raise malformed_file_error(
                        "bfm2009", path, f"missing variable {key!r} (found {sorted(f)[:30]})",
                        caller=caller,
                    )
                out[key] = _h5_dataset(f, key, "bfm2009", path, caller, budget).T
        return out
    try:  # our NumPy-only v5 parser: scipy's compiled reader crashes on crafted files
        out = read_mat_v5(path, _BFM2009_KEYS, budget)
    except ValueError as exc:
        raise malformed_file_error("bfm2009", path, str(exc), caller=caller) from exc
    for key in _BFM2009_KEYS:
        if key not in out:
            raise malformed_file_error("bfm2009", path, f"missing variable {key!r}", caller=caller)
    return out


def _pca_block(mu, pc, ev, names, path, caller, key="bfm2009"):
    """Check a (mean (3V,), basis (3V, K), std (K,)) triple; return them flattened.

    names: the three variable names, for messages.
    """
    def bad(problem):
        return malformed_file_error(key, path, problem, caller=caller)

    mu = np.asarray(mu)
    if mu.ndim not in (1, 2) or (mu.ndim == 2 and 1 not in mu.shape) or mu.size % 3:
        raise bad(f"{names[0]} must be (3V, 1) with xyz interleaved, got {mu.shape}")
    mu = mu.reshape(-1)
    pc = np.asarray(pc)
    if pc.ndim != 2 or pc.shape[0] != mu.size:
        raise bad(f"{names[1]} must be ({mu.size}, K) to match {names[0]}, got {pc.shape}")
    ev = np.asarray(ev)
    if ev.size != pc.shape[1] or (ev.ndim == 2 and 1 not in ev.shape) or ev.ndim > 2:
        raise bad(f"{names[2]} must be ({pc.shape[1]}, 1) to match {names[1]}, got {ev.shape}")
    ev = ev.reshape(-1)
    for n, a in zip(names, (mu, pc, ev), strict=True):
        if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
            raise bad(f"{n} must hold finite floating-point values (got dtype {a.dtype})")
    if (ev < 0).any():
        raise bad(f"{names[2]} must hold standard deviations >= 0")
    return mu, pc, ev


@overflow_is_malformed("bfm2009")
def load_bfm2009(path, landmarks=None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> MorphableModel:
    """Load the Basel Face Model 2009 ``01_MorphableModel.mat`` (MATLAB v5 or v7.3).

    path: the ``.mat`` file (str or PathLike).
    landmarks: optional (68,) int vertex indices of the iBUG-68 points; the file
        has none, so the model's ``landmarks`` is None unless given here.
    max_bytes: the most bytes the file's variables may declare (default 1 GiB, about four
        times the released file); checked before any variable is read.

    Returns a float32 :class:`MorphableModel` named ``"bfm2009"`` with
        mean_shape (V, 3) = shapeMU / 1000 (micrometres -> mm),
        id_basis (V, 3, 199) = shapePC * shapeEV / 1000, id_std = shapeEV / 1000 (mm),
        exp_basis (V, 3, 0) (BFM 2009 has no expressions),
        mean_albedo (V, 3) = texMU / 255, albedo_basis = texPC * texEV / 255,
        albedo_std = texEV / 255 (the stored per-vertex colours, no gamma change),
        faces (F, 3) = tl - 1 (1-based -> 0-based), re-wound counter-clockwise
        seen from the front if needed (:func:`facelab.model.sources.faces_front_ccw`).
    shapeEV / texEV are standard deviations (BFM's ``coef2object``:
    ``mu + pc * (coef .* ev)`` with coef ~ N(0, 1)); xyz are interleaved per vertex.
    The file's frame is facelab's (y up, face toward +z); its origin is kept.
    V = 53490, F = 106466 for the released file.

    Raises FileNotFoundError when the file is missing and ValueError when a
    variable is missing or has the wrong shape; both say where the file is obtained.
    """
    caller = "load_bfm2009"
    path = require_file("bfm2009", path, caller=caller)
    m = _read_mat(path, caller, ReadBudget(max_bytes, what="the file"))
    shape_mu, shape_pc, shape_ev = _pca_block(
        m["shapeMU"], m["shapePC"], m["shapeEV"], ("shapeMU", "shapePC", "shapeEV"), path, caller
    )
    tex_mu, tex_pc, tex_ev = _pca_block(
        m["texMU"], m["texPC"], m["texEV"], ("texMU", "texPC", "texEV"), path, caller
    )
    nv = shape_mu.size // 3
    if tex_mu.size != shape_mu.size:
        raise malformed_file_error(
            "bfm2009", path, f"texMU has {tex_mu.size} entries, shapeMU {shape_mu.size}",
            caller=caller,
        )
    tl = np.asarray(m["tl"])
    if tl.ndim != 2 or tl.shape[1] != 3:
        raise malformed_file_error("bfm2009", path, f"tl must be (F, 3), got {tl.shape}",
                                   caller=caller)
    if tl.size and (
        np.any(tl != np.round(tl)) or tl.min() < 1 or tl.max() > nv
    ):
        raise malformed_file_error(
            "bfm2009", path,
            f"tl must hold 1-based vertex indices in [1, {nv}], got values in "
            f"[{tl.min()}, {tl.max()}]",
            caller=caller,
        )
    mean = (shape_mu.astype(np.float64) / _UM_PER_MM).reshape(nv, 3)  # (V, 3) mm
    faces, _ = faces_front_ccw(mean, tl.astype(np.int64) - 1)
    k_id, k_alb = shape_pc.shape[1], tex_pc.shape[1]
    id_basis = (shape_pc.astype(np.float32) * (shape_ev / _UM_PER_MM).astype(np.float32))
    alb_basis = tex_pc.astype(np.float32) * (tex_ev / 255.0).astype(np.float32)
    return MorphableModel(
        name="bfm2009",
        mean_shape=mean.astype(np.float32),
        id_basis=id_basis.reshape(nv, 3, k_id),  # (3V, K) -> (V, 3, K), xyz interleaved
        exp_basis=np.zeros((nv, 3, 0), np.float32),
        mean_albedo=(tex_mu.astype(np.float64) / 255.0).reshape(nv, 3).astype(np.float32),
        albedo_basis=alb_basis.reshape(nv, 3, k_alb),
        faces=faces,
        landmarks=landmark_indices(landmarks, nv),
        id_std=(shape_ev / _UM_PER_MM).astype(np.float32),
        exp_std=np.zeros(0, np.float32),
        albedo_std=(tex_ev / 255.0).astype(np.float32),
        source=str(path),
    )


# --------------------------------------------------------------------- BFM 2017
def _read_h5_group(f, group: str, path, caller: str, required: bool, budget: ReadBudget):
    """Return (mean (3V,), basis (3V, K), std (K,)) of ``group/model``, or None if absent."""
    names = tuple(f"{group}/model/{n}" for n in ("mean", "pcaBasis", "pcaVariance"))
    present = [_h5_has(f, n) for n in names]
    if not any(present) and not required:
        return None
    for n, ok in zip(names, present, strict=True):
        if not ok:
            raise malformed_file_error("bfm2017", path, f"missing dataset {n!r}", caller=caller)
    mean, basis, var = (_h5_dataset(f, n, "bfm2017", path, caller, budget) for n in names)
    var = var.reshape(-1) if var.ndim == 2 and 1 in var.shape else var
    if var.ndim != 1:
        raise malformed_file_error("bfm2017", path, f"{names[2]} must be (K,), got {var.shape}",
                                   caller=caller)
    if not np.issubdtype(var.dtype, np.floating) or (var < 0).any():
        raise malformed_file_error("bfm2017", path, f"{names[2]} must hold variances >= 0",
                                   caller=caller)
    mean, basis, std = _pca_block(mean, basis, np.sqrt(var.astype(np.float64)), names, path,
                                  caller, key="bfm2017")
    return mean, basis, std


@overflow_is_malformed("bfm2017")
def load_bfm2017(path, landmarks=None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> MorphableModel:
    """Load a Basel Face Model 2017 HDF5 file (``model2017-1_bfm_nomouth.h5`` / ``_face12_``).

    path: the ``.h5`` file (str or PathLike); the statismo layout, so BFM 2019
        files (also millimetres) load too.
    landmarks: optional (68,) int vertex indices of the iBUG-68 points (the 2017
        release ships its landmarks separately, in another convention).
    max_bytes: the most bytes the datasets read may declare (default 1 GiB, about three
        times the released files); checked before any dataset is read.

    Returns a float32 :class:`MorphableModel` named ``"bfm2017"`` with
        mean_shape (V, 3) = shape/model/mean + expression/model/mean (mm; the
        expression model is a model of displacements whose mean is part of the
        neutral-to-average face, as in scalismo-faces),
        id_basis (V, 3, K) = shape pcaBasis * sqrt(pcaVariance), id_std = sqrt(pcaVariance),
        exp_basis (V, 3, Kexp) likewise from expression/ (Kexp = 0 if the group is absent),
        mean_albedo / albedo_basis likewise from color/ (stored RGB in [0, 1];
        a constant mid-grey 0.5 with Kalb = 0 if the group is absent),
        faces (F, 3) = shape/representer/cells transposed (0-based), re-wound
        counter-clockwise seen from the front if needed.
    pcaBasis columns are orthonormal, so coefficients are ~N(0, 1). xyz are
    interleaved per vertex; the frame is facelab's (y up, face toward +z).

    Raises FileNotFoundError when the file is missing and ValueError when a
    dataset is missing or has the wrong shape.
    """
    import h5py

    caller = "load_bfm2017"
    path = require_file("bfm2017", path, caller=caller)
    if not h5py.is_hdf5(path):
        raise malformed_file_error("bfm2017", path, "not an HDF5 file", caller=caller)
    budget = ReadBudget(max_bytes, what="the file")
    with _open_h5(path, "bfm2017", caller) as f:
        shape = _read_h5_group(f, "shape", path, caller, True, budget)
        expr = _read_h5_group(f, "expression", path, caller, False, budget)
        color = _read_h5_group(f, "color", path, caller, False, budget)
        cells_name = "shape/representer/cells"
        if not _h5_has(f, cells_name):
            raise malformed_file_error("bfm2017", path, f"missing dataset {cells_name!r}",
                                       caller=caller)
        cells = _h5_dataset(f, cells_name, "bfm2017", path, caller, budget)
    mu, _, std = shape
    n3 = mu.size
    nv = n3 // 3
    for label, block in (("expression", expr), ("color", color)):
        if block is not None and block[0].size != n3:
            raise malformed_file_error(
                "bfm2017", path, f"{label}/model/mean has {block[0].size} entries, "
                f"shape/model/mean {n3}", caller=caller,
            )
    if cells.ndim != 2 or cells.shape[0] != 3 or not np.issubdtype(cells.dtype, np.integer):
        raise malformed_file_error(
            "bfm2017", path, f"{cells_name} must be (3, F) integer, got {cells.shape} "
            f"{cells.dtype}", caller=caller,
        )
    if cells.size and (cells.min() < 0 or cells.max() >= nv):
        raise malformed_file_error(
            "bfm2017", path, f"{cells_name} must hold 0-based indices in [0, {nv}), got "
            f"values in [{cells.min()}, {cells.max()}]", caller=caller,
        )

    mean = mu.astype(np.float64)
    if expr is not None:
        mean = mean + expr[0]
    mean = mean.reshape(nv, 3)  # (V, 3) mm
    faces, _ = faces_front_ccw(mean, np.ascontiguousarray(cells.T).astype(np.int64))

    def scaled(block):  # (3V, K) * (K,) -> (V, 3, K)
        b, s = block[1], block[2]
        return (b.astype(np.float32) * s.astype(np.float32)).reshape(nv, 3, b.shape[1])

    if expr is not None:
        exp_basis, exp_std = scaled(expr), expr[2].astype(np.float32)
    else:
        exp_basis, exp_std = np.zeros((nv, 3, 0), np.float32), np.zeros(0, np.float32)
    if color is not None:
        mean_albedo = color[0].reshape(nv, 3).astype(np.float32)
        albedo_basis, albedo_std = scaled(color), color[2].astype(np.float32)
    else:
        mean_albedo = np.full((nv, 3), 0.5, np.float32)
        albedo_basis, albedo_std = np.zeros((nv, 3, 0), np.float32), np.zeros(0, np.float32)
    return MorphableModel(
        name="bfm2017",
        mean_shape=mean.astype(np.float32),
        id_basis=scaled(shape),
        exp_basis=exp_basis,
        mean_albedo=mean_albedo,
        albedo_basis=albedo_basis,
        faces=faces,
        landmarks=landmark_indices(landmarks, nv),
        id_std=std.astype(np.float32),
        exp_std=exp_std,
        albedo_std=albedo_std,
        source=str(path),
    )
