"""Loader for FLAME model pickles, read with a restricted unpickler that runs no code.

FLAME (Li et al. 2017) is a linear blendshape model with linear blend skinning::

    T(beta, psi) = v_template + S beta + E psi               (FLAME Eqs. 1-4)
    M = W(T + P(theta), J(beta), theta, weights)              (LBS, FLAME Eq. 2)

with shape coefficients beta and expression coefficients psi already ~N(0, 1)
(``shapedirs`` is stored scaled). facelab keeps the linear part as a
:class:`MorphableModel` and the jaw joint of the skinning for
:meth:`MorphableModel.pose_jaw`; pose-corrective blendshapes (``posedirs``),
the neck and the eyeballs' joints are not used.

Python pickles can run arbitrary code when loaded. The file is parsed by
:mod:`facelab.model.safe_pickle`: every allowed global (NumPy array and dtype
reconstruction, SciPy sparse matrices, chumpy classes) becomes an inert recipe,
and arrays are rebuilt afterwards from their bytes with the dtype, shape and size
checked against ``max_bytes`` before anything is allocated; chumpy is never
imported; any other global raises :class:`~facelab.model.safe_pickle.UnsafePickleError`.

facelab never downloads FLAME; see :data:`facelab.model.sources.MODEL_SOURCES`.
"""

from __future__ import annotations

import numpy as np
import torch

from facelab._checks import check_int
from facelab.model.morphable import MorphableModel
from facelab.model.safe_pickle import (
    DEFAULT_MAX_BYTES,
    ReadBudget,
    RestrictedUnpickler,
    UnsafePickleError,
    decode_array,
    key_list,
    restricted_load,
)
from facelab.model.skinning import Skeleton
from facelab.model.sources import (
    column_norms,
    faces_front_ccw,
    landmark_indices,
    malformed_file_error,
    overflow_is_malformed,
    require_file,
)

__all__ = ["RestrictedUnpickler", "UnsafePickleError", "load_flame", "restricted_load"]

# ------------------------------------------------------------------------ FLAME
_M_TO_MM = 1000.0
_FLAME_SHAPE_MODES = 300  # FLAME's shapedirs: 300 identity modes, then expression modes
_FLAME_JOINTS = 5  # 0 global (root), 1 neck, 2 jaw, 3 left eye, 4 right eye
# the joints below FLAME's root (joint 0) and their parents in that list (-1 = the root)
_FLAME_JOINT_NAMES = ("neck", "jaw", "eye_left", "eye_right")
_FLAME_PARENTS = (-1, 0, 0, 0)
# A plain skin tone for the constant albedo (FLAME files carry no reflectance model).
_SKIN_TONE = (0.70, 0.53, 0.45)


@overflow_is_malformed("flame")
def load_flame(path, n_shape: int = 300, n_exp: int = 100, landmarks=None, *,
               max_bytes: int = DEFAULT_MAX_BYTES) -> MorphableModel:
    """Load a FLAME model pickle (``generic_model.pkl``, ``flame2023.pkl``, ...).

    path: the pickle (str or PathLike); read with :class:`RestrictedUnpickler`
        (chumpy is not needed and nothing in the file is executed).
    n_shape: keep at most this many identity modes (the file has 300; fewer if it has fewer).
    n_exp: keep at most this many expression modes (the file has 100 after the 300
        shape modes; fewer if it has fewer).
    landmarks: optional (68,) int vertex indices of the iBUG-68 points (FLAME's
        68-point embedding is barycentric and ships separately).
    max_bytes: the most bytes the file and its arrays may declare (default 1 GiB, about
        20 times FLAME 2020); checked before anything is allocated.

    Returns a float32 :class:`MorphableModel` named ``"flame"`` with
        mean_shape (5023, 3) = v_template * 1000 (metres -> mm),
        id_basis (5023, 3, n_shape) = shapedirs[..., :300][..., :n_shape] * 1000,
        exp_basis (5023, 3, n_exp) = shapedirs[..., 300:][..., :n_exp] * 1000 (FLAME's
        beta and psi are ~N(0, 1) already, so no further scaling),
        id_std / exp_std = the per-mode column norms in mm,
        mean_albedo a constant skin tone and albedo_basis (V, 3, 0) (no albedo in the file),
        faces = f (0-based), re-wound counter-clockwise seen from the front if needed,
        skeleton: FLAME's joints below the root (its standard kinematic tree: neck under the
        root, jaw and both eyes under the neck) — names ("neck", "jaw", "eye_left",
        "eye_right"), positions (J_regressor @ v_template)[1:] * 1000, weights
        weights[:, 1:], regressor J_regressor[1:] (joints follow the shaped mesh, FLAME's
        J(beta)); jaw_joint / jaw_weights are its "jaw" joint.
    :class:`facelab.FaceParams` ``neck`` / ``jaw`` / ``eyes`` pose them by FLAME's linear blend
    skinning (no pose-corrective blendshapes); FLAME's root joint is ``rotation`` (about the
    model origin instead of joint 0: the difference is a translation). FLAME's frame is
    facelab's (y up, face toward +z); its origin is kept.

    Raises FileNotFoundError when the file is missing, ValueError ("... is not a valid
    FLAME file: ...") when it is not a pickle, a key is missing or has the wrong shape,
    dtype or size, and :class:`~facelab.model.safe_pickle.UnsafePickleError` (a
    ValueError and a ``pickle.UnpicklingError``) when the pickle references anything
    outside the allow-list.
    """
    caller = "load_flame"
    n_shape = check_int(n_shape, name="n_shape", minimum=0)
    n_exp = check_int(n_exp, name="n_exp", minimum=0)
    path = require_file("flame", path, caller=caller)

    def bad(problem):
        return malformed_file_error("flame", path, problem, caller=caller)

    budget = ReadBudget(max_bytes, what="the file")
    try:
        data = restricted_load(path, max_bytes=max_bytes)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{caller}: {str(path)!r}: {exc}") from exc
    except ValueError as exc:  # truncated file, not a pickle, over the size limit, ...
        raise bad(str(exc)) from exc
    if not isinstance(data, dict):
        raise bad(f"expected a pickled dict, got {type(data).__name__}")
    for key in ("v_template", "f", "shapedirs", "J_regressor", "weights"):
        if key not in data:
            raise bad(f"missing key {key!r} (found {key_list(data)})")
    arrays = {}
    try:
        arrays["v_template"] = decode_array(data["v_template"], "v_template", budget)
        nv = arrays["v_template"].shape[0] if arrays["v_template"].ndim else 0
        for key in ("f", "shapedirs", "weights"):
            arrays[key] = decode_array(data[key], key, budget)
        # a sparse J_regressor is checked against (5, V) before it is densified
        arrays["J_regressor"] = decode_array(data["J_regressor"], "J_regressor", budget,
                                             expected_shape=(_FLAME_JOINTS, nv))
    except ValueError as exc:
        raise bad(str(exc)) from exc

    v = arrays["v_template"]
    if v.ndim != 2 or v.shape[1] != 3 or not np.issubdtype(v.dtype, np.floating):
        raise bad(f"v_template must be (V, 3) float, got {v.shape} {v.dtype}")
    f = arrays["f"]
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise bad(f"f must be (F, 3) integer, got {f.shape} {f.dtype}")
    if f.size and (f.min() < 0 or f.max() >= nv):
        raise bad(f"f must hold 0-based indices in [0, {nv}), got [{f.min()}, {f.max()}]")
    dirs = arrays["shapedirs"]
    if dirs.ndim != 3 or dirs.shape[:2] != (nv, 3) or dirs.dtype.kind not in "iuf":
        raise bad(f"shapedirs must be ({nv}, 3, K) float, got {dirs.shape} {dirs.dtype}")
    jreg = arrays["J_regressor"]
    if jreg.shape != (_FLAME_JOINTS, nv):
        raise bad(f"J_regressor must be ({_FLAME_JOINTS}, {nv}), got {jreg.shape}")
    weights = arrays["weights"]
    if weights.shape != (nv, _FLAME_JOINTS):
        raise bad(f"weights must be ({nv}, {_FLAME_JOINTS}), got {weights.shape}")
    for key in ("J_regressor", "weights"):
        if arrays[key].dtype.kind not in "iuf":
            raise bad(f"{key} must hold numbers, got dtype {arrays[key].dtype}")
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
        skeleton=Skeleton(
            names=_FLAME_JOINT_NAMES, parents=_FLAME_PARENTS,
            positions=torch.from_numpy((joints[1:] * _M_TO_MM).astype(np.float32)),
            weights=torch.from_numpy(weights[:, 1:].astype(np.float32)),
            regressor=torch.from_numpy(jreg[1:].astype(np.float32))),
        id_std=column_norms(id_basis).astype(np.float32),
        exp_std=column_norms(exp_basis).astype(np.float32),
        albedo_std=np.zeros(0, np.float32),
        source=str(path),
    )
