"""Morphable face models: the shared container, the built-in synthetic model, loaders."""

from facelab.model.bfm import load_bfm2009, load_bfm2017
from facelab.model.flame import load_flame
from facelab.model.morphable import MorphableModel
from facelab.model.registry import load_model
from facelab.model.sources import MODEL_SOURCES
from facelab.model.tddfa import load_3ddfa

__all__ = [
    "MODEL_SOURCES",
    "MorphableModel",
    "load_3ddfa",
    "load_bfm2009",
    "load_bfm2017",
    "load_flame",
    "load_model",
]
