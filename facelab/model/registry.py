"""``load_model``: the built-in models by name.

Real-format models (BFM 2009/2017, FLAME, 3DDFA) need files the user brings and
have their own loaders (``fl.load_bfm2009(path)`` ...); this registry holds the
models facelab can make by itself.
"""

from __future__ import annotations

import torch

from facelab.model.morphable import MorphableModel

__all__ = ["DEFAULT_SYNTHETIC_VERSION", "MODEL_NAMES", "SYNTHETIC_VERSIONS", "load_model"]

MODEL_NAMES = ("synthetic",)
SYNTHETIC_VERSIONS = (1, 2)
DEFAULT_SYNTHETIC_VERSION = 2
"""The generator version ``load_model("synthetic", version=None)`` builds."""


def load_model(name: str = "synthetic", resolution="teaching", *, version: int | None = None,
               cache: bool = True, dtype: torch.dtype = torch.float32) -> MorphableModel:
    """Load a built-in morphable model.

    name: ``"synthetic"``, the license-free model made by code, in two generator versions:

        * ``version=1`` (:mod:`facelab.model.synthetic`): a face mask; 80 identity /
          64 expression / 80 albedo modes, per-vertex albedo, iBUG-68 landmarks, face mask,
          a jaw joint, named expressions.
        * ``version=2`` (:mod:`facelab.model.head`, named ``"synthetic2-<resolution>"``): a
          full head (scalp, ears, neck, separate eyeballs, mouth interior and teeth);
          FLAME's skeleton ``neck`` / ``jaw`` / ``eye_left`` / ``eye_right`` with skinning
          weights and a joint regressor; 100 identity / 50 expression / 100 albedo modes;
          a mirror-symmetric UV layout with 256^2 albedo texture maps (mean and basis) and
          per-vertex albedo sampled from them; landmarks, face mask, named expressions.
    resolution: ``"teaching"`` (~3k vertices in version 1, ~5k in version 2), ``"medium"``
        (~12k), ``"bfm"`` (~38k vertices, 3DDFA_V2's BFM scale), ``"high"`` (~50k), or an int
        (approximate vertex count: 1000 to 250000 in version 1, 3000 to 250000 in version 2).
    version: the generator version (one of ``SYNTHETIC_VERSIONS``); None means
        ``DEFAULT_SYNTHETIC_VERSION``. Pin it wherever results or weights must stay
        comparable across releases.
    cache: keep generated arrays in memory and in ``$FACELAB_CACHE`` or
        ``~/.cache/facelab`` (the first build takes seconds; version 2's texture maps
        about 15 s once, shared by every resolution).
    dtype: torch.float32 or torch.float64.
    Returns a :class:`MorphableModel`; unknown names or resolutions raise ValueError.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name != "synthetic":
        raise ValueError(f"name: expected one of {list(MODEL_NAMES)}, got {name!r}")
    if version is None:
        version = DEFAULT_SYNTHETIC_VERSION
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"version: expected an int or None, got {type(version).__name__}")
    if version not in SYNTHETIC_VERSIONS:
        raise ValueError(f"version: expected one of {list(SYNTHETIC_VERSIONS)} or None, "
                         f"got {version}")
    if version == 2:
        from facelab.model.head import head_model

        return head_model(resolution, cache=cache, dtype=dtype)
    from facelab.model.synthetic import synthetic_model

    return synthetic_model(resolution, cache=cache, dtype=dtype)
