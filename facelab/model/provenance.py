"""What a weights file or a cached result was made from, and the check that it still fits.

A network trained on one morphable model predicts coefficients of *that* model's bases: run
against another model (another version of the built-in generator, another resolution's PCA, a
truncation) it still produces numbers, silently wrong ones. So every file facelab writes from
a model records :func:`model_record` of it, and every loader calls :func:`check_model` with the
model it is about to be used with.

Files written before records existed (the first committed MoFA and 3DDFA_V2 weights) are
*legacy*: they were trained on version 1 of the built-in synthetic model, whose models are
named ``"synthetic-<resolution>"``; they are accepted for those models only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from facelab.model.morphable import MorphableModel

__all__ = ["LEGACY_PREFIX", "check_model", "load_result_file", "model_record"]

LEGACY_PREFIX = "synthetic-"
"""Name prefix of version 1 built-in models, the only ones legacy files were trained on."""


def model_record(model: MorphableModel) -> dict:
    """A JSON-able record of ``model``: ``{"name", "digest", "vertices", "modes"}``.

    ``digest`` is :meth:`MorphableModel.digest` (bases, faces, landmarks, textures);
    ``modes`` is ``[Kid, Kexp, Kalb]``.
    """
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    return {"name": model.name, "digest": model.digest(), "vertices": model.num_vertices,
            "modes": [model.n_id, model.n_exp, model.n_albedo]}


def check_model(record: Mapping | None, model: MorphableModel, *, what: str,
                retrain: str) -> None:
    """Raise ValueError unless ``model`` is the model ``record`` was made from.

    record: a :func:`model_record` dict, or None (or the free-text string early files
        stored, e.g. ``"synthetic/teaching"``) for a legacy file, accepted only for a version 1
        built-in model (name ``"synthetic-..."``).
    what: the file, for the message (e.g. ``"MoFA weights 'photo'"``).
    retrain: the command that makes a matching file, named in the message.
    """
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    if record is None or isinstance(record, str):
        if model.name.startswith(LEGACY_PREFIX):
            return
        raise ValueError(
            f"{what} were trained on version 1 of the built-in synthetic model (written before "
            f"weights recorded their model) and cannot drive model {model.name!r}; load "
            f"fl.load_model('synthetic', ..., version=1) for them, or retrain: {retrain}")
    if not isinstance(record, Mapping) or "digest" not in record:
        raise ValueError(f"{what}: the model record is malformed ({record!r}); retrain: {retrain}")
    digest = model.digest()
    if record["digest"] != digest:
        raise ValueError(
            f"{what} were made from model {record.get('name')!r} (digest {record['digest']}, "
            f"{record.get('vertices')} vertices, modes {record.get('modes')}), not from "
            f"{model.name!r} (digest {digest}, {model.num_vertices} vertices, modes "
            f"{[model.n_id, model.n_exp, model.n_albedo]}); retrain: {retrain}")


def load_result_file(path, *, format_version: int, model: MorphableModel) -> dict:
    """A committed results file (JSON) of an experiments script, refusing a stale one.

    path: the ``.json`` file; it holds ``"format_version"``, ``"model"`` (a
        :func:`model_record`-like dict with ``"digest"``) and ``"command"`` (what made it).
    format_version: the layout of the file the caller reads; another raises ValueError.
    model: the model the results must come from; another digest raises ValueError naming both
        digests and the command that remakes the file.
    """
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    p = Path(path)
    data = json.loads(p.read_text())
    if data.get("format_version") != format_version:
        raise ValueError(f"{p}: expected format_version {format_version}, got "
                         f"{data.get('format_version')!r}")
    digest = model.digest()
    if data["model"]["digest"] != digest:
        raise ValueError(f"{p}: made from model digest {data['model']['digest']}, but the model "
                         f"has {digest}; re-run: {data.get('command', 'the command in the file')}")
    return data
