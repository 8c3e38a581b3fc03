"""``load_model``: the built-in models by name.

Real-format models (BFM 2009/2017, FLAME, 3DDFA) need files the user brings and
have their own loaders (``fl.load_bfm2009(path)`` ...); this registry holds the
models facelab can make by itself.
"""

from __future__ import annotations

import torch

from facelab.model.morphable import MorphableModel

__all__ = ["MODEL_NAMES", "SYNTHETIC_VERSIONS", "load_model"]

MODEL_NAMES = ("synthetic",)
SYNTHETIC_VERSIONS = (1,)


def load_model(name: str = "synthetic", resolution="teaching", *, version: int | None = None,
               cache: bool = True, dtype: torch.dtype = torch.float32) -> MorphableModel:
    """Load a built-in morphable model.

    name: ``"synthetic"``, the license-free model made by code
        (:mod:`facelab.model.synthetic`: mean face, 80 identity / 64 expression /
        80 albedo modes, iBUG-68 landmarks, face mask, jaw joint, named expressions).
    resolution: ``"teaching"`` (~3k vertices), ``"medium"`` (~12k), ``"bfm"``
        (~38k vertices / ~76k triangles, 3DDFA_V2's BFM scale), ``"high"`` (~50k),
        or an int (approximate vertex count, 1000 to 250000).
    version: the generator version of the synthetic model (one of ``SYNTHETIC_VERSIONS``);
        None means the newest. Pin it (``version=1``) wherever results or weights must stay
        comparable across releases.
    cache: keep generated arrays in memory and in ``$FACELAB_CACHE`` or
        ``~/.cache/facelab`` (the first "bfm"/"high" build takes a few seconds).
    dtype: torch.float32 or torch.float64.
    Returns a :class:`MorphableModel`; unknown names or resolutions raise ValueError.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name != "synthetic":
        raise ValueError(f"name: expected one of {list(MODEL_NAMES)}, got {name!r}")
    if version is None:
        version = SYNTHETIC_VERSIONS[-1]
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"version: expected an int or None, got {type(version).__name__}")
    if version not in SYNTHETIC_VERSIONS:
        raise ValueError(f"version: expected one of {list(SYNTHETIC_VERSIONS)} or None, "
                         f"got {version}")
    from facelab.model.synthetic import synthetic_model

    return synthetic_model(resolution, cache=cache, dtype=dtype)
