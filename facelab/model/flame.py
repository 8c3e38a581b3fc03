"""Loader for FLAME model pickles, read with a restricted unpickler that runs no code.

FLAME (Li et al. 2017) is a linear blendshape model with linear blend skinning::

    T(beta, psi) = v_template + S beta + E psi               (FLAME Eqs. 1-4)
    M = W(T + P(theta), J(beta), theta, weights)              (LBS, FLAME Eq. 2)

with shape coefficients beta and expression coefficients psi already ~N(0, 1)
(``shapedirs`` is stored scaled). facelab keeps the linear part as a
:class:`MorphableModel` and the jaw joint of the skinning for
:meth:`MorphableModel.pose_jaw`; pose-corrective blendshapes (``posedirs``),
the neck and the eyeballs' joints are not used.

Python pickles can run arbitrary code when loaded. :class:`RestrictedUnpickler`
resolves only an explicit allow-list of globals (NumPy array reconstruction,
SciPy sparse matrices, a few harmless builtins) and maps chumpy classes to an
inert local stand-in, so FLAME files load without chumpy and without executing
anything; every other global raises ``pickle.UnpicklingError``.

facelab never downloads FLAME; see :data:`facelab.model.sources.MODEL_SOURCES`.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import pickle

import numpy as np

from facelab._checks import check_int
from facelab.model.morphable import MorphableModel
from facelab.model.sources import (
    column_norms,
    faces_front_ccw,
    landmark_indices,
    malformed_file_error,
    require_file,
)

__all__ = ["RestrictedUnpickler", "load_flame", "restricted_load"]

# ------------------------------------------------------------ restricted unpickler
# NumPy's array/scalar/dtype reconstruction helpers, under both their NumPy 1
# (numpy.core) and NumPy 2 (numpy._core) module names.
_NUMPY_HELPERS = {
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),
}
_BUILTINS = {"set", "frozenset", "object", "list", "dict", "tuple", "slice", "complex"}
_SPARSE_MODULES = {
    "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr",
}
_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "csc_array", "csr_array"}


class ChumpyStandIn:
    """Inert stand-in for a chumpy object: it only records the pickled state.

    ``chumpy_class`` names the original class (e.g. ``"chumpy.ch.Ch"``); the
    array of a plain ``Ch`` is ``state["x"]``. Nothing from chumpy is imported.
    """

    chumpy_class = "chumpy"
    state: dict | None = None  # set by __setstate__ (or by __new__ for NEWOBJ pickles)

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.state = {}
        obj.args = args
        return obj

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}


class SparseStandIn:
    """Inert stand-in for a pickled SciPy CSC/CSR matrix: it records the state only.

    :meth:`toarray` rebuilds the dense matrix from ``data``, ``indices``,
    ``indptr`` and the shape, whatever SciPy version wrote the file.
    """

    sparse_format = "csc"
    state: dict | None = None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}

    def toarray(self) -> np.ndarray:
        import scipy.sparse

        s = self.state or {}
        shape = s.get("_shape", s.get("shape"))
        parts = [s.get(k) for k in ("data", "indices", "indptr")]
        if shape is None or any(p is None for p in parts):
            raise ValueError(
                f"sparse matrix state lacks data/indices/indptr/shape (keys {sorted(s)})"
            )
        build = scipy.sparse.csc_matrix if self.sparse_format == "csc" else scipy.sparse.csr_matrix
        return np.asarray(build(tuple(parts), shape=tuple(int(n) for n in shape)).toarray())


def _numpy_helper(submodule: str, name: str):
    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"NumPy helper {submodule}.{name} is not available")


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that resolves only an explicit allow-list of globals.

    Allowed: NumPy array reconstruction (``numpy.core.multiarray._reconstruct``,
    ``scalar``, ``numeric._frombuffer`` and their ``numpy._core`` names),
    ``numpy.ndarray``, ``numpy.dtype``, ``copyreg._reconstructor``,
    ``_codecs.encode`` (bytes in protocol <= 2 pickles written by Python 3) and the inert
    builtins set/frozenset/object/list/dict/tuple/slice/complex; with
    ``allow_sparse`` SciPy CSC/CSR matrices (as :class:`SparseStandIn`); with
    ``allow_chumpy`` any ``chumpy.*`` class (as a :class:`ChumpyStandIn` subclass,
    chumpy is never imported). Anything else (``os.system``, ``builtins.eval``,
    ``subprocess.Popen``, ...) raises ``pickle.UnpicklingError`` naming the global,
    before it could be called. Python 2 names are mapped as ``pickle`` does.
    """

    def __init__(self, file, *, allow_chumpy: bool = True, allow_sparse: bool = True):
        super().__init__(file, encoding="latin1")
        self.allow_chumpy = allow_chumpy
        self.allow_sparse = allow_sparse
        self._stand_ins: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        mod, nm = module, name
        if (mod, nm) in _compat_pickle.NAME_MAPPING:  # Python 2 names (copy_reg, __builtin__)
            mod, nm = _compat_pickle.NAME_MAPPING[(mod, nm)]
        elif mod in _compat_pickle.IMPORT_MAPPING:
            mod = _compat_pickle.IMPORT_MAPPING[mod]
        if mod.startswith(("numpy.core.", "numpy._core.")):
            sub = mod.split(".", 2)[2]
            if (sub, nm) in _NUMPY_HELPERS:
                return _numpy_helper(sub, nm)
        if mod == "numpy" and nm in ("ndarray", "dtype"):
            return getattr(np, nm)
        if mod == "_codecs" and nm == "encode":  # how protocol <= 2 pickles store bytes
            import codecs

            return codecs.encode
        if mod == "copyreg" and nm == "_reconstructor":
            import copyreg

            return copyreg._reconstructor
        if mod == "builtins" and nm in _BUILTINS:
            import builtins

            return getattr(builtins, nm)
        if self.allow_sparse and mod in _SPARSE_MODULES and nm in _SPARSE_NAMES:
            return self._stand_in(SparseStandIn, f"{mod}.{nm}", sparse_format=nm[:3])
        if self.allow_chumpy and (mod == "chumpy" or mod.startswith("chumpy.")):
            return self._stand_in(ChumpyStandIn, f"{mod}.{nm}", chumpy_class=f"{mod}.{nm}")
        raise pickle.UnpicklingError(
            f"refusing to load global '{module}.{name}': facelab reads model pickles with a "
            "restricted unpickler that only allows NumPy arrays"
            + (", SciPy sparse matrices" if self.allow_sparse else "")
            + (" and chumpy containers" if self.allow_chumpy else "")
            + "; this file is not a plain model file and may try to run code"
        )

    def _stand_in(self, base: type, qualname: str, **attrs) -> type:
        if qualname not in self._stand_ins:
            self._stand_ins[qualname] = type(qualname.rsplit(".", 1)[1], (base,), attrs)
        return self._stand_ins[qualname]


def restricted_load(path, *, allow_chumpy: bool = True, allow_sparse: bool = True):
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (``encoding="latin1"``)."""
    with open(path, "rb") as fh:
        return RestrictedUnpickler(fh, allow_chumpy=allow_chumpy, allow_sparse=allow_sparse).load()


def plain_array(value, key: str) -> np.ndarray:
    """A NumPy array from a pickled value: ndarray, chumpy ``Ch`` (its ``x``) or sparse.

    Raises ValueError (caught by the loaders and re-raised with the file's name).
    """
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, SparseStandIn):
        return value.toarray()
    if isinstance(value, ChumpyStandIn):
        state = value.state or {}
        x = state.get("x")
        if isinstance(x, ChumpyStandIn | SparseStandIn):
            return plain_array(x, key)
        if isinstance(x, np.ndarray | float | int):
            return np.asarray(x)
        raise ValueError(
            f"{key} is a {value.chumpy_class} object whose array cannot be recovered "
            f"without chumpy (state keys {sorted(state)})"
        )
    if isinstance(value, list | tuple):
        return np.asarray(value)
    raise ValueError(f"{key} must be an array, got {type(value).__name__}")


# ------------------------------------------------------------------------ FLAME
_M_TO_MM = 1000.0
_FLAME_SHAPE_MODES = 300  # FLAME's shapedirs: 300 identity modes, then expression modes
_FLAME_JOINTS = 5  # 0 global (root), 1 neck, 2 jaw, 3 left eye, 4 right eye
_JAW = 2
# A plain skin tone for the constant albedo (FLAME files carry no reflectance model).
_SKIN_TONE = (0.70, 0.53, 0.45)


def load_flame(path, n_shape: int = 300, n_exp: int = 100, landmarks=None) -> MorphableModel:
    """Load a FLAME model pickle (``generic_model.pkl``, ``flame2023.pkl``, ...).

    path: the pickle (str or PathLike); read with :class:`RestrictedUnpickler`
        (chumpy is not needed and nothing in the file is executed).
    n_shape: keep at most this many identity modes (the file has 300; fewer if it has fewer).
    n_exp: keep at most this many expression modes (the file has 100 after the 300
        shape modes; fewer if it has fewer).
    landmarks: optional (68,) int vertex indices of the iBUG-68 points (FLAME's
        68-point embedding is barycentric and ships separately).

    Returns a float32 :class:`MorphableModel` named ``"flame"`` with
        mean_shape (5023, 3) = v_template * 1000 (metres -> mm),
        id_basis (5023, 3, n_shape) = shapedirs[..., :300][..., :n_shape] * 1000,
        exp_basis (5023, 3, n_exp) = shapedirs[..., 300:][..., :n_exp] * 1000 (FLAME's
        beta and psi are ~N(0, 1) already, so no further scaling),
        id_std / exp_std = the per-mode column norms in mm,
        mean_albedo a constant skin tone and albedo_basis (V, 3, 0) (no albedo in the file),
        faces = f (0-based), re-wound counter-clockwise seen from the front if needed,
        jaw_joint (3,) = (J_regressor @ v_template)[2] * 1000 (the jaw joint of the
        template; joints are 0 root, 1 neck, 2 jaw, 3/4 eyes), jaw_weights = weights[:, 2].
    ``pose_jaw`` then applies FLAME's linear blend skinning for the jaw alone
    (no pose-corrective blendshapes; the joint is the template's, not re-regressed
    per identity). FLAME's frame is facelab's (y up, face toward +z); its origin is kept.

    Raises FileNotFoundError when the file is missing, ValueError when a key is
    missing or has the wrong shape, and pickle.UnpicklingError when the pickle
    references anything outside the allow-list.
    """
    caller = "load_flame"
    n_shape = check_int(n_shape, name="n_shape", minimum=0)
    n_exp = check_int(n_exp, name="n_exp", minimum=0)
    path = require_file("flame", path, caller=caller)

    def bad(problem):
        return malformed_file_error("flame", path, problem, caller=caller)

    try:
        data = restricted_load(path)
    except pickle.UnpicklingError as exc:
        raise pickle.UnpicklingError(f"{caller}: {str(path)!r}: {exc}") from exc
    except Exception as exc:  # truncated file, not a pickle, ...
        raise bad(f"cannot be unpickled ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise bad(f"expected a pickled dict, got {type(data).__name__}")
    arrays = {}
    for key in ("v_template", "f", "shapedirs", "J_regressor", "weights"):
        if key not in data:
            raise bad(f"missing key {key!r} (found {sorted(map(str, data))})")
        try:
            arrays[key] = plain_array(data[key], key)
        except ValueError as exc:
            raise bad(str(exc)) from exc

    v = arrays["v_template"]
    if v.ndim != 2 or v.shape[1] != 3 or not np.issubdtype(v.dtype, np.floating):
        raise bad(f"v_template must be (V, 3) float, got {v.shape} {v.dtype}")
    nv = v.shape[0]
    f = arrays["f"]
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise bad(f"f must be (F, 3) integer, got {f.shape} {f.dtype}")
    if f.size and (f.min() < 0 or f.max() >= nv):
        raise bad(f"f must hold 0-based indices in [0, {nv}), got [{f.min()}, {f.max()}]")
    dirs = arrays["shapedirs"]
    if dirs.ndim != 3 or dirs.shape[:2] != (nv, 3):
        raise bad(f"shapedirs must be ({nv}, 3, K), got {dirs.shape}")
    jreg = arrays["J_regressor"]
    if jreg.shape != (_FLAME_JOINTS, nv):
        raise bad(f"J_regressor must be ({_FLAME_JOINTS}, {nv}), got {jreg.shape}")
    weights = arrays["weights"]
    if weights.shape != (nv, _FLAME_JOINTS):
        raise bad(f"weights must be ({nv}, {_FLAME_JOINTS}), got {weights.shape}")
    for key in ("v_template", "shapedirs", "J_regressor", "weights"):
        if not np.isfinite(arrays[key]).all():
            raise bad(f"{key} holds NaN/Inf values")

    k_total = dirs.shape[2]
    k_shape_file = min(_FLAME_SHAPE_MODES, k_total)
    k_id = min(n_shape, k_shape_file)
    k_ex = min(n_exp, k_total - k_shape_file)
    mean = v.astype(np.float64) * _M_TO_MM  # (V, 3) mm
    id_basis = (dirs[..., :k_id].astype(np.float64) * _M_TO_MM).astype(np.float32)
    exp_basis = dirs[..., k_shape_file:k_shape_file + k_ex].astype(np.float64) * _M_TO_MM
    exp_basis = exp_basis.astype(np.float32)
    joints = jreg.astype(np.float64) @ v.astype(np.float64)  # (5, 3) metres
    faces, _ = faces_front_ccw(mean, f.astype(np.int64))
    return MorphableModel(
        name="flame",
        mean_shape=mean.astype(np.float32),
        id_basis=id_basis,
        exp_basis=exp_basis,
        mean_albedo=np.tile(np.asarray(_SKIN_TONE, np.float32), (nv, 1)),
        albedo_basis=np.zeros((nv, 3, 0), np.float32),
        faces=faces,
        landmarks=landmark_indices(landmarks, nv),
        jaw_joint=(joints[_JAW] * _M_TO_MM).astype(np.float32),
        jaw_weights=weights[:, _JAW].astype(np.float32),
        id_std=column_norms(id_basis).astype(np.float32),
        exp_std=column_norms(exp_basis).astype(np.float32),
        albedo_std=np.zeros(0, np.float32),
        source=str(path),
    )
