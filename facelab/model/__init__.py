"""Morphable face models: the shared container, the built-in synthetic model, loaders."""

from facelab.model.morphable import MorphableModel

__all__ = ["MorphableModel"]
