"""Topology of the full head: the shell lattice, the back seam, mouth, eyeballs and teeth.

How the mesh is made (read with ``shape.py``), one module per step:

1. **Lattice** (``lattice.py``). A triangular lattice, equilateral in texture space, clipped to
   the unwrapped head; one row on the mouth line; vertices snapped onto the lid margins, lip
   borders and eye/mouth corners as in version 1; border vertices moved onto the back seam
   or the neck cut.
2. **Mouth** (``mouth.py``). Version 1's slit (the mouth row split between the corners, the
   lower lip gets copies) and a deeper pouch of rings closing it from behind (room for the
   teeth).
3. **Seam** (``seam.py``). Each border vertex on the seam's subject-right side (G < 0) is the
   same 3-D point as its mirror image (G > 0): the two are merged, keeping both texture
   coordinates (``uv`` has more entries than the vertices; ``uv_faces`` indexes it). The
   shell is then one connected surface whose only boundary is the neck cut.
4. **Eyeballs and teeth** (``parts.py``): two spheres of ``EYE_RADIUS`` rings about +z and an
   upper and a lower dental arch (closed swept tubes), separate closed components.

Vertex kinds (``kind``): 0 skin, 1/2 upper/lower edge of the mouth slit, 3 mouth pouch,
4/5 right/left eyeball, 6/7 upper/lower teeth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelab.model.head import parts, seam
from facelab.model.head.lattice import place_lattice
from facelab.model.head.mouth import POUCH_DEPTH, POUCH_HEIGHT, open_mouth
from facelab.model.head.parts import (
    KIND_EYE_LEFT,
    KIND_EYE_RIGHT,
    KIND_TEETH_LOW,
    KIND_TEETH_UP,
)
from facelab.model.synthetic.mouth import KIND_POUCH, KIND_SKIN, KIND_SLIT_LOW, KIND_SLIT_UP

__all__ = ["KIND_EYE_LEFT", "KIND_EYE_RIGHT", "KIND_POUCH", "KIND_SKIN", "KIND_SLIT_LOW",
           "KIND_SLIT_UP", "KIND_TEETH_LOW", "KIND_TEETH_UP", "POUCH_DEPTH", "POUCH_HEIGHT",
           "Shell", "build_shell"]


@dataclass
class Shell:
    """The head's mesh before annotations (design frame, float64).

    verts (V, 3), faces (F, 3) CCW seen from outside; u, v (V,) unwrapped coordinates
    (eyeball/teeth vertices carry 0); kind (V,) int8; psi (V,) angle round the pouch;
    mirror (V,) index of each vertex's mirror image; spacing: lattice edge (warped mm);
    uv_gh (Vt, 2) texture-space points in warped mm (shell) or island-local coordinates;
    uv_faces (F, 3); uv_island (Vt,) int8 (0 shell, 1/2 right/left eye, 3/13 right/left half
    of the pouch, 4/14 and 5/15 of the upper and lower teeth);
    eye_dir (V, 3) for eyeball vertices their unit direction from the eyeball centre (else 0).
    """

    verts: np.ndarray
    faces: np.ndarray
    u: np.ndarray
    v: np.ndarray
    kind: np.ndarray
    psi: np.ndarray
    mirror: np.ndarray
    spacing: float
    uv_gh: np.ndarray
    uv_faces: np.ndarray
    uv_island: np.ndarray
    eye_dir: np.ndarray


def build_shell(n_vertices: int) -> Shell:
    """The whole head mesh at about ``n_vertices`` vertices (see the module docstring)."""
    sizes = parts.part_sizes(n_vertices)
    target = max(n_vertices - sizes["n_parts"], 500)
    lat = place_lattice(int(target * 0.96))
    a = open_mouth(lat)
    right = np.nonzero(lat.on_seam & (lat.g < -1e-9))[0]
    per_vertex = ("verts", "u", "v", "kind", "psi")
    a["faces"], a["uv_faces"], a["mirror"], kept = seam.zip_seam(
        a["faces"], a["uv_faces"], a["mirror"], right, tuple(a[k] for k in per_vertex))
    a.update(zip(per_vertex, kept, strict=True))
    a = parts.add_parts(a, sizes)
    return Shell(verts=a["verts"], faces=a["faces"].astype(np.int64), u=a["u"], v=a["v"],
                 kind=a["kind"], psi=a["psi"], mirror=a["mirror"].astype(np.int64),
                 spacing=lat.spacing, uv_gh=a["uv_gh"],
                 uv_faces=a["uv_faces"].astype(np.int64), uv_island=a["uv_island"],
                 eye_dir=a["eye_dir"])
