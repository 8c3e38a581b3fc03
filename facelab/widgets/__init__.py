"""Interactive widgets for Jupyter (ipywidgets + pythreejs), each with a static fallback.

* :func:`show_mesh` / :class:`MeshView` — orbitable, lit 3D mesh view, updated in place.
* :class:`ModelExplorer` — sliders over a morphable model: 3D view + rendered image.
* :class:`GradientView` — per-vertex gradient magnitude on the mesh and in image space
  (NeuFace Fig. 3); :func:`vertex_gradient`, :func:`gradient_magnitude`.
* :class:`ConvergencePlot` — live loss curves, a :class:`facelab.progress.Callback`.
* :class:`MotionPlayer` — play / scrub (T, V, 3) sequences side by side.
* :class:`MotionLatentExplorer` — one latent dimension of a motion prior under a slider.
* :class:`NeighborGraphView` — pick a vertex, see its k-NN neighbours and weights (Fan et al.).
* :func:`mesh_image` / :func:`mesh_figure` — static renders for scripts and CI.

Every widget has ``.widget`` (what Jupyter displays), ``.static()`` (a matplotlib figure) and
``.save(path)`` (PNG). This package is imported lazily: ``import facelab`` and even
``import facelab.widgets`` load neither ipywidgets, pythreejs nor matplotlib; the first use
of a name below does.
"""

from __future__ import annotations

import importlib

__all__ = [
    "ConvergencePlot",
    "GradientView",
    "MeshView",
    "ModelExplorer",
    "MotionLatentExplorer",
    "MotionPlayer",
    "NeighborGraphView",
    "gradient_magnitude",
    "in_notebook",
    "mesh_figure",
    "mesh_image",
    "show_mesh",
    "vertex_gradient",
]

_WHERE = {
    "ConvergencePlot": "convergence",
    "in_notebook": "convergence",
    "GradientView": "gradients",
    "gradient_magnitude": "gradients",
    "vertex_gradient": "gradients",
    "MeshView": "viewer",
    "show_mesh": "viewer",
    "ModelExplorer": "explorer",
    "MotionLatentExplorer": "latent",
    "MotionPlayer": "motion",
    "NeighborGraphView": "neighbors",
    "mesh_figure": "static",
    "mesh_image": "static",
}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'facelab.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"facelab.widgets.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
