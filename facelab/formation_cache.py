"""Per-model caches of the image-formation chain (:func:`facelab.formation.form`).

A fitter forms the same model hundreds of times per fit: the model cast to the parameters'
dtype and device, and the rows of a vertex subset (the 68 landmarks, the visible vertices of
a colour stage), are made once per model and reused. Models are treated as immutable (every
facelab function builds new models, never edits one); the caches hold them weakly.
"""

from __future__ import annotations

import weakref

import torch

from facelab.model.morphable import MorphableModel

__all__: list[str] = []


# model -> {subset indices: its rows of (mean, id basis, exp basis, jaw weights)}. A fitter forms
# the same 68 landmarks hundreds of times; the rows are gathered once per model and subset.
_SUBSETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# model -> {(dtype, device): the model cast to them}: a float32 model formed with float64
# parameters (gradcheck, tests) is copied once, not at every call. Like the subset cache below,
# this treats a model as immutable (every facelab function builds new models, never edits one).
_CASTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cast(model: MorphableModel, dtype: torch.dtype, device: torch.device) -> MorphableModel:
    if (model.dtype, model.device) == (dtype, device):
        return model
    per_model = _CASTS.setdefault(model, {})
    if (dtype, device) not in per_model:
        per_model[(dtype, device)] = model.to(dtype=dtype, device=device)
    return per_model[(dtype, device)]


_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8)


def _row_key(rows: torch.Tensor) -> tuple:
    """The cache key of a vertex subset: its content (dtype, shape and raw bytes).

    Hashing the bytes costs 4 us for the ~2,000 visible vertices a fitter's colour stage
    re-shades every step (``tuple(rows.tolist())`` cost 22 us). Keyed by content, not by the
    tensor's identity and ``_version``: an edit through a NumPy view or ``.data`` leaves the
    version counter unchanged and would otherwise return another subset's rows.
    """
    return rows.dtype, tuple(rows.shape), rows.detach().cpu().numpy().tobytes()


def _validated_subset(m: MorphableModel, rows: torch.Tensor) -> bool:
    """True when these integer rows are already in :func:`_subset_rows`' cache for ``m`` (so
    they were checked to lie in [0, V) when it was filled): skips two reductions per step."""
    if rows.dtype not in _INDEX_DTYPES or m not in _SUBSETS:
        return False
    return _row_key(rows) in _SUBSETS[m]


def _subset_rows(m: MorphableModel, rows: torch.Tensor) -> dict:
    """The model's per-vertex arrays restricted to ``rows`` (S,), cached by content."""
    per_model = _SUBSETS.setdefault(m, {})
    key = _row_key(rows)
    if key not in per_model:
        if len(per_model) > 16:
            per_model.clear()
        per_model[key] = {
            "mean": m.mean_shape[rows], "id": m.id_basis[rows], "exp": m.exp_basis[rows],
            "skin": None if m.skeleton is None else m.skeleton.weights[rows],
            "albedo_mean": m.mean_albedo[rows], "albedo": m.albedo_basis[rows]}
    return per_model[key]
