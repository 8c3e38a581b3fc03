"""Generator fields of the full head's sampled population: identity and expression.

Each generator is a (V, 3) displacement in millimetres: one standard deviation of an identity
variation, or one unit of an expression. As in version 1 (:mod:`facelab.model.synthetic.
blendshapes`) semantic fields are written in the unwrapped ``(u, v)`` coordinates (so "on the
nose" stays on the nose at any resolution), and the population adds smooth random fields;
``bases.population_pca`` (version 1's exact small-matrix PCA) turns the sampled population
into modes ordered by variance.

Identity: version 1's 25 semantic variations (face width ... jaw angle) plus head length,
skull height, neck width, ear size and ear protrusion; smooth random fields are products of
cosines of the *3-D* position (continuous across the back seam) along the surface's ray
direction and in the image plane. Eyeballs and teeth move rigidly with the skin around them
(the field's value at their anchor), so they stay spheres and arches.

Expression: version 1's blendshapes (jaw open, smiles, brow raises, frown, eye closes, pucker,
mouth sideways, cheek puff, lip raise/depress, mouth stretch, nose wrinkle, squint, lip press)
with the eye close re-made for lids over separate eyeballs, plus random local bumps on the
face. Eyeballs do not take part (the eye joints turn them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelab.model.head import mesh as M
from facelab.model.head import shape as S
from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic import bases
from facelab.model.synthetic.blendshapes import (
    NAMED_EXPRESSIONS,
    face_expression_fields,
    face_identity_fields,
    lid_slide,
    rot_x,
    vec_field,
)
from facelab.model.synthetic.blendshapes import named_expressions as _named_expressions

JAW_OPEN_ANGLE = 0.22  # radians of jaw rotation in the "jaw_open" blendshape


@dataclass
class Points:
    """Where fields are evaluated: u, v (n,), xyz (n, 3) design frame, omega (n, 3) ray
    directions, kind (n,), psi (n,)."""

    u: np.ndarray
    v: np.ndarray
    xyz: np.ndarray
    omega: np.ndarray
    kind: np.ndarray
    psi: np.ndarray


def shell_points(shell: M.Shell) -> tuple[Points, np.ndarray]:
    """Evaluation points: the shell's vertices, then 3 anchors (right eye, left eye, mouth).

    Returns (points, anchor_of) with anchor_of (V,) the index of the point whose field a
    vertex takes: itself for the shell, an anchor for eyeballs and teeth.
    """
    V = len(shell.verts)
    anchors_uv = np.array([[-A.EYE_U, A.EYE_V + 0.6], [A.EYE_U, A.EYE_V + 0.6],
                           [0.0, A.MOUTH_V]])
    u = np.concatenate([shell.u, anchors_uv[:, 0]])
    v = np.concatenate([shell.v, anchors_uv[:, 1]])
    xyz = np.concatenate([shell.verts, S.skin_points(anchors_uv[:, 0], anchors_uv[:, 1])])
    omega = S.base_frame(u, v)[2]
    kind = np.concatenate([shell.kind, np.zeros(3, np.int8)])
    psi = np.concatenate([shell.psi, np.zeros(3)])
    anchor_of = np.arange(V)
    anchor_of[shell.kind == M.KIND_EYE_RIGHT] = V
    anchor_of[shell.kind == M.KIND_EYE_LEFT] = V + 1
    anchor_of[shell.kind >= M.KIND_TEETH_UP] = V + 2
    return Points(u, v, xyz, omega, kind, psi), anchor_of


# ------------------------------------------------------------------ identity
def identity_semantic(p: Points) -> tuple[list[str], np.ndarray]:
    """Semantic identity variations: (names, (M, n, 3) fields at +1 std).

    Version 1's (:func:`facelab.model.synthetic.blendshapes.face_identity_fields`, faded toward
    the ears, the jaw angle further back) plus the head's: head length, skull height, neck
    width, ear size and protrusion.
    """
    u, v = p.u, p.v
    x, y, z = p.xyz.T
    rad = p.omega
    n = len(u)
    front = A._smoothstep(150.0, 90.0, np.abs(u))  # the face's fields fade toward the ears
    ea, eb = S.ear_coords(u, v)
    ear = 1.0 - A._smoothstep(0.8, 1.3, np.sqrt(ea**2 + eb**2))
    fields = {
        "scale": 0.035 * np.stack([x, y - 0.0, z], -1),
        "face_width": vec_field(n, dx=0.045 * x),
        "face_height": vec_field(n, dy=0.035 * y * front),
        "face_depth": vec_field(n, dz=0.045 * np.maximum(z, 0.0) * front),
        "head_length": vec_field(n, dz=0.04 * np.minimum(z + 10.0, 0.0)),
        "skull_height": vec_field(n, dy=0.05 * np.maximum(y - 40.0, 0.0)),
        "neck_width": vec_field(n, dx=0.07 * x * A._smoothstep(-110.0, -150.0, y),
                                dz=0.07 * (z + 22.0) * A._smoothstep(-110.0, -150.0, y)),
        **face_identity_fields(u, v, x, y, rad, front, jaw_angle_at=(80.0, -62.0, 14.0)),
        "ear_size": 0.08 * ear[:, None] * np.stack(
            [np.zeros(n), y - S.EAR_V, z - float(S.skin_points(np.array(S.ear_u()),
                                                               np.array(S.EAR_V))[2])], -1),
        "ear_protrusion": 4.0 * (ear * A._smoothstep(-0.6, 0.8, ea))[:, None] * rad,
    }
    return list(fields), np.stack(list(fields.values()))


def cosine_fields_3d(xyz: np.ndarray, max_freq: int):
    """Smooth scalar fields prod_i cos(a_i pi x_i') of the normalised 3-D position.

    xyz: (n, 3) design frame; each coordinate is normalised over the head's box. Returns
    (fields (P, n), frequency (P,)) for 0 <= a, b, c <= max_freq, not all 0.
    """
    lo = np.array([-95.0, -185.0, -115.0])
    hi = np.array([95.0, 135.0, 130.0])
    q = (xyz - lo) / (hi - lo)
    fields, freq = [], []
    for a in range(max_freq + 1):
        for b in range(max_freq + 1):
            for c in range(max_freq + 1):
                if a == b == c == 0:
                    continue
                fields.append(np.cos(a * np.pi * q[:, 0]) * np.cos(b * np.pi * q[:, 1])
                              * np.cos(c * np.pi * q[:, 2]))
                freq.append(np.sqrt(a * a + b * b + c * c))
    return np.stack(fields), np.array(freq)


def identity_generators(p: Points) -> np.ndarray:
    """All identity generators (M, n, 3): semantic, then random smooth normal and in-plane."""
    _, semantic = identity_semantic(p)
    cos_n, f_n = cosine_fields_3d(p.xyz, 3)  # (63, n)
    normal = cos_n[:, :, None] * p.omega[None] * (2.0 / (1.0 + 0.3 * f_n**2))[:, None, None]
    cos_t, f_t = cosine_fields_3d(p.xyz, 2)  # (26, n)
    amp = (1.2 / (1.0 + 0.3 * f_t**2))[:, None]
    zero = np.zeros_like(cos_t)
    tang_x = np.stack([cos_t * amp, zero, zero], -1)
    tang_y = np.stack([zero, cos_t * amp, zero], -1)
    return np.concatenate([semantic, normal, tang_x, tang_y])


# ---------------------------------------------------------------- expression
def eye_close_field(shell: M.Shell, side: int) -> np.ndarray:
    """Displacement (V, 3) that closes one eye (side -1: the subject's right, +1: left).

    Version 1's lid slide (:func:`facelab.model.synthetic.blendshapes.lid_slide`),
    re-evaluated on the lid skin over the eyeball (no recess), so the closed lid covers the
    eyeball.
    """
    u, v = shell.u, shell.v
    inside = ((np.sign(u) == side) & (shell.kind == M.KIND_SKIN)
              & (np.abs(A.eye_local(u)) < 1.0) & (np.abs(u) < 80.0))
    v_new, region, openness = lid_slide(u, v, inside, side)
    out = np.zeros_like(shell.verts)
    out[region] = (S.skin_points(u[region], v_new[region], openness, recess=False)
                   - shell.verts[region])
    return out


def expression_semantic(shell: M.Shell, jaw_weights: np.ndarray, jaw_joint: np.ndarray):
    """Semantic expression blendshapes: (names, (M, V, 3) fields at activation 1).

    Version 1's (:func:`facelab.model.synthetic.blendshapes.face_expression_fields`) on the
    face's skin (within 110 mm of the midline), a stronger brow raise, and the eye close
    re-made for lids over separate eyeballs.
    """
    u, v = shell.u, shell.v
    skin = shell.kind <= M.KIND_POUCH
    face = (skin & (np.abs(u) < 110.0)).astype(float)
    rad = S.base_frame(u, v)[2] * skin[:, None]
    upper = (v > A.MOUTH_V) | (shell.kind == M.KIND_SLIT_UP) | (
        (shell.kind == M.KIND_POUCH) & (shell.psi < np.pi))
    rel = shell.verts - jaw_joint
    jaw_open = jaw_weights[:, None] * (rel @ rot_x(JAW_OPEN_ANGLE).T - rel)
    fields = face_expression_fields(
        u, v, shell.verts[:, 0], rad, upper, jaw_open,
        (eye_close_field(shell, -1), eye_close_field(shell, +1)), face, brow_lift=7.0)
    return list(fields), np.stack(list(fields.values()))


NAMED_EXPRESSIONS_V2 = {**NAMED_EXPRESSIONS, "surprise": {
    "brow_raise_left": 1.0, "brow_raise_right": 1.0, "jaw_open": 0.6}}
"""Version 1's named expressions, but a surprise without version 1's eye opening."""


def named_expressions(names: list[str]) -> dict[str, np.ndarray]:
    """Named expressions as weights (M,) over the semantic expression generators
    (:data:`NAMED_EXPRESSIONS_V2`)."""
    return _named_expressions(names, NAMED_EXPRESSIONS_V2)


def expression_generators(shell: M.Shell, jaw_weights, jaw_joint, rng):
    """(names of the semantic ones, generators (M, V, 3), per-generator std (M,))."""
    names, semantic = expression_semantic(shell, jaw_weights, jaw_joint)
    skin = (shell.kind <= M.KIND_POUCH) & (np.abs(shell.u) < 110.0)
    rad = S.base_frame(shell.u, shell.v)[2]
    n_b = 56
    bumps, *_ = bases.gaussian_bumps(shell.u, shell.v, rng, n_b, (8.0, 16.0), 60.0,
                                     (-95.0, 60.0))
    bumps = bumps * skin[None]
    dirs = rng.standard_normal((n_b, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    d0, d1, d2 = dirs[:, 0, None, None], dirs[:, 1, None, None], dirs[:, 2, None, None]
    ex, ey = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    local = 1.5 * bumps[:, :, None] * (d0 * rad[None] + d1 * ex + d2 * ey)
    gens = np.concatenate([semantic, local])
    std = np.concatenate([np.full(len(semantic), 1.0), np.full(n_b, 0.3)])
    return names, gens, std
