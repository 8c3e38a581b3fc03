"""``load_model``: the built-in models by name.

Real-format models (BFM 2009/2017, FLAME, 3DDFA) need files the user brings and
have their own loaders (``fl.load_bfm2009(path)`` ...); this registry holds the
models facelab can make by itself.
"""

from __future__ import annotations

import torch

from facelab.model.morphable import MorphableModel

__all__ = ["MODEL_NAMES", "load_model"]

MODEL_NAMES = ("synthetic",)


def load_model(name: str = "synthetic", resolution="teaching", *, cache: bool = True,
               dtype: torch.dtype = torch.float32) -> MorphableModel:
    """Load a built-in morphable model.

    name: ``"synthetic"``, the license-free model made by code
        (:mod:`facelab.model.synthetic`: mean face, 80 identity / 64 expression /
        80 albedo modes, iBUG-68 landmarks, face mask, jaw joint, named expressions).
    resolution: ``"teaching"`` (~3k vertices), ``"medium"`` (~12k), ``"bfm"``
        (~38k vertices / ~76k triangles, 3DDFA_V2's BFM scale), ``"high"`` (~50k),
        or an int (approximate vertex count, 1000 to 250000).
    cache: keep generated arrays in memory and in ``$FACELAB_CACHE`` or
        ``~/.cache/facelab`` (the first "bfm"/"high" build takes a few seconds).
    dtype: torch.float32 or torch.float64.
    Returns a :class:`MorphableModel`; unknown names or resolutions raise ValueError.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name != "synthetic":
        raise ValueError(f"name: expected one of {list(MODEL_NAMES)}, got {name!r}")
    from facelab.model.synthetic import synthetic_model

    return synthetic_model(resolution, cache=cache, dtype=dtype)
