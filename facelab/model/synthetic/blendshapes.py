"""Generator fields of the synthetic population: identity variations and expressions.

Each generator is a displacement field (V, 3) in millimetres describing *one
standard deviation* (identity) or *one unit of activation* (expression) of a
named variation. Fields are written in the unwrapped face coordinates ``(u, v)``
(see ``anatomy.py``), so a field placed "on the nose" stays on the nose whatever
the resolution; ``radial`` is the outward direction of the base surface.

Identity (Blanz & Vetter's "face space"): face width/height/depth, overall
scale, jaw width, chin length and prominence, nose length/width/projection/
bridge, eye spacing/size/height/depth, brow height and ridge, lip fullness,
mouth width and height, cheekbones, cheek fullness, forehead slope, temples,
jaw angle; plus smooth random fields (``bases.cosine_fields``).

Expression (like the blendshapes behind MoFA's expression basis): jaw open,
smile, brow raise, frown, eye close (each side), pucker, mouth sideways, cheek
puff, upper-lip raise, lower-lip depress, mouth stretch, nose wrinkle, squint,
lip press; plus smooth random local deformations (``bases.gaussian_bumps``).
"""

from __future__ import annotations

import numpy as np

from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic.anatomy import _gauss as _g  # a 2-D Gaussian bump in (u, v)
from facelab.model.synthetic.surface import (
    KIND_POUCH,
    KIND_SKIN,
    OFFSET,
    Surface,
    surface_points,
)

JAW_OPEN_ANGLE = 0.16  # radians of jaw rotation in the "jaw_open" blendshape


def _radial(s: Surface):
    return np.stack([np.sin(s.theta), np.zeros_like(s.theta), np.cos(s.theta)], -1)  # (V, 3)


def vec_field(n: int, dx=0.0, dy=0.0, dz=0.0) -> np.ndarray:
    """A displacement field (n, 3) float64 from its x, y, z components (each (n,) or a scalar)."""
    out = np.zeros((n, 3))
    out[:, 0], out[:, 1], out[:, 2] = dx, dy, dz
    return out


# ------------------------------------------------------------------ identity
def face_identity_fields(u, v, x, y, rad, front=1.0,
                         jaw_angle_at=(58.0, -60.0, 12.0)) -> dict[str, np.ndarray]:
    """The face's semantic identity variations shared by versions 1 and 2 (module docs), jaw
    width to jaw angle, in order: {name: (n, 3) field at +1 std}.

    u, v: (n,) unwrapped face coordinates (mm); x, y: (n,) design-frame positions (mm);
    rad: (n, 3) outward directions; front: (n,) weight fading the fields toward the ears
    (version 2's head; 1.0 for version 1's face mask); jaw_angle_at: (u, v, width) of the jaw
    angle's bump (its height is 14 mm).
    """
    au, n, sign = np.abs(u), len(u), np.sign(u)
    lower = A._smoothstep(-20.0, -80.0, v) * front
    nose = A._nose_relief(u, v) / 25.0
    lips = A.lip_relief(u, v) / 5.0
    eye = _g(au, v, A.EYE_U, A.EYE_V, 15.0, 10.0)
    ja_u, ja_v, ja_w = jaw_angle_at
    return {
        "jaw_width": vec_field(n, dx=0.07 * x * lower),
        "chin_length": vec_field(n, dy=-4.0 * A._smoothstep(-55.0, -90.0, v) * front),
        "chin_prominence": 3.5 * _g(u, v, 0.0, -86.0, 15.0, 12.0)[:, None] * rad,
        "nose_length": vec_field(n, dy=-3.5 * _g(u, v, 0.0, -18.0, 16.0, 14.0)
                                 * np.clip((30.0 - v) / 45.0, 0.0, 1.0)),
        "nose_width": vec_field(n, dx=0.2 * x * _g(u, v, 0.0, -22.0, 18.0, 9.0)),
        "nose_projection": 4.0 * nose[:, None] * rad,
        "nose_bridge": 2.5 * _g(u, v, 0.0, 16.0, 7.0, 12.0)[:, None] * rad,
        "eye_spacing": vec_field(n, dx=2.5 * sign * _g(au, v, A.EYE_U, A.EYE_V, 15.0, 11.0)),
        "eye_size": 0.09 * eye[:, None] * np.stack(
            [x - sign * A.EYE_U, y - A.EYE_V, np.zeros(n)], -1),
        "eye_height": vec_field(n, dy=2.5 * _g(au, v, A.EYE_U, A.EYE_V + 3.0, 20.0, 14.0)),
        "eye_depth": -2.5 * eye[:, None] * rad,
        "brow_height": vec_field(n, dy=3.0 * _g(au, v, 32.0, 38.0, 22.0, 7.0)),
        "brow_ridge": 2.5 * _g(au, v, 30.0, 36.0, 22.0, 6.0)[:, None] * rad,
        "lip_fullness": 2.2 * lips[:, None] * rad,
        "mouth_width": vec_field(n, dx=0.12 * x * _g(u, v, 0.0, A.MOUTH_V, 26.0, 9.0)),
        "mouth_height": vec_field(n, dy=2.5 * _g(u, v, 0.0, A.MOUTH_V, 30.0, 12.0)),
        "cheekbones": 3.0 * _g(au, v, 52.0, 2.0, 15.0, 10.0)[:, None] * rad,
        "cheek_fullness": 3.0 * _g(au, v, 38.0, -30.0, 16.0, 16.0)[:, None] * rad,
        "forehead_slope": -4.0 * (A._smoothstep(30.0, 90.0, v) * front)[:, None] * rad,
        "temples": -2.5 * _g(au, v, 66.0, 38.0, 12.0, 16.0)[:, None] * rad,
        "jaw_angle": 3.0 * _g(au, v, ja_u, ja_v, ja_w, 14.0)[:, None] * rad,
    }


def identity_generators(s: Surface) -> tuple[list[str], np.ndarray]:
    """Semantic identity variations: (names, (M, V, 3) fields at +1 std)."""
    x, y, z = (s.verts - OFFSET).T  # design frame
    n = len(s.u)
    fields = {
        "scale": 0.035 * np.stack([x, y, z - 40.0], -1),
        "face_width": vec_field(n, dx=0.045 * x),
        "face_height": vec_field(n, dy=0.035 * y),
        "face_depth": vec_field(n, dz=0.045 * (z - 40.0)),
        **face_identity_fields(s.u, s.v, x, y, _radial(s)),
    }
    return list(fields), np.stack(list(fields.values()))


# ---------------------------------------------------------------- expression
def rot_x(angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` (rad) about +x."""
    c, sn = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -sn], [0.0, sn, c]])


def jaw_open_field(s: Surface, angle: float = JAW_OPEN_ANGLE):
    """Displacement of a jaw rotation by ``angle`` about +x (linear blend skinning)."""
    rot = rot_x(angle)
    rel = s.verts - s.jaw_joint
    return s.jaw_weights[:, None] * (rel @ rot.T - rel)


def lid_slide(u: np.ndarray, v: np.ndarray, inside: np.ndarray, side: int):
    """Where the closing lid's skin goes, in (u, v) (versions 1 and 2).

    The lid skin between the upper margin and the crease slides down onto a closing line
    near the lower lid and the opening's strip is squeezed under it. u, v: (n,) mm;
    inside: (n,) bool, the lid skin of that eye; side: -1 the subject's right, +1 left.
    Returns (v_new (n,), region (n,) bool where the skin moves, openness (right, left) of the
    closed surface to re-evaluate it with).
    """
    up, low = A.lid_curves(u, 1.0)
    close = low + 0.15 * (up - low)
    fold = up + 9.0
    v_new = v.copy()
    gap = np.maximum(up - low, 1e-9)
    a = inside & (v >= low) & (v <= up)
    v_new[a] = low[a] + (v[a] - low[a]) * (close[a] - low[a]) / gap[a]
    b = inside & (v > up) & (v < fold)
    v_new[b] = close[b] + (v[b] - up[b]) * (fold[b] - close[b]) / (fold[b] - up[b])
    c = inside & (v < low) & (v > low - 4.0)
    v_new[c] = v[c] + 0.8 * (1.0 - (low[c] - v[c]) / 4.0)
    region = inside & (v > low - 4.5) & (v < fold + 0.5)
    openness = (0.0, 1.0) if side < 0 else (1.0, 0.0)
    return v_new, region, openness


def eye_close_field(s: Surface, side: int):
    """Displacement that closes one eye (side -1: subject's right, +1: left).

    :func:`lid_slide`, then the surface is re-evaluated with the eye's relief closed, so the
    lid covers the eyeball.
    """
    u, v = s.u, s.v
    inside = (np.sign(u) == side) & (s.kind == KIND_SKIN) & (np.abs(A.eye_local(u)) < 1.0)
    v_new, region, openness = lid_slide(u, v, inside, side)
    out = np.zeros_like(s.verts)
    out[region] = surface_points(u[region], v_new[region], openness) - s.verts[region]
    return out


def face_expression_fields(u, v, x, rad, upper, jaw_open, eye_close, face=1.0,
                           brow_lift=6.0) -> dict[str, np.ndarray]:
    """The semantic expression blendshapes shared by versions 1 and 2 (module docs), in order:
    {name: (n, 3) field at activation 1}.

    u, v: (n,) unwrapped face coordinates (mm); x: (n,) design-frame x (mm); rad: (n, 3)
    outward directions; upper: (n,) bool, above the mouth slit; jaw_open: (n, 3) the jaw
    rotation's field; eye_close: ((n, 3) right, (n, 3) left) eye-closing fields; face: (n,)
    weight of the face region (version 2's head; 1.0 for version 1's face mask); brow_lift:
    the brow raise's height (mm).
    """
    au, n = np.abs(u), len(u)
    lips = _g(u, v, 0.0, A.MOUTH_V, 17.0, 9.0) * face
    fields = {"jaw_open": jaw_open}
    for name, side in (("smile_right", -1.0), ("smile_left", 1.0)):
        g = _g(u, v, side * 25.0, A.MOUTH_V + 1.0, 10.0, 9.0) * face
        cheek = _g(u, v, side * 36.0, -25.0, 14.0, 12.0) * face
        lid = _g(u, v, side * A.EYE_U, A.EYE_V - 6.0, 12.0, 4.0) * face
        fields[name] = (vec_field(n, dx=side * 4.5 * g, dy=6.5 * g + 2.5 * cheek + 1.0 * lid,
                                  dz=-2.5 * g) + (2.0 * cheek)[:, None] * rad)
    for name, side in (("brow_raise_right", -1.0), ("brow_raise_left", 1.0)):
        g = (_g(u, v, side * 30.0, 42.0, 28.0, 12.0) * A._smoothstep(A.EYE_V + 2, A.EYE_V + 10, v)
             * face)
        fields[name] = vec_field(n, dy=brow_lift * g) + (0.8 * g)[:, None] * rad
    inner = _g(au, v, 18.0, 34.0, 12.0, 9.0) * face
    fields["frown"] = vec_field(n, dx=-2.5 * np.sign(u) * inner, dy=-3.0 * inner) + (
        1.0 * _g(u, v, 0.0, 33.0, 8.0, 6.0) * face)[:, None] * rad
    fields["eye_close_right"], fields["eye_close_left"] = eye_close
    fields["pucker"] = vec_field(n, dx=-0.35 * x * lips, dz=6.0 * lips)
    fields["mouth_left"] = vec_field(n, dx=6.0 * _g(u, v, 0.0, -55.0, 22.0, 14.0) * face)
    fields["cheek_puff"] = (6.0 * _g(au, v, 38.0, -48.0, 12.0, 12.0) * face)[:, None] * rad
    fields["upper_lip_raise"] = vec_field(n, dy=3.0 * _g(u, v, 0.0, -46.0, 14.0, 6.0) * upper
                                          * face)
    fields["lower_lip_depress"] = vec_field(n, dy=-3.0 * _g(u, v, 0.0, -60.0, 14.0, 6.0)
                                            * ~upper * face)
    fields["mouth_stretch"] = vec_field(n, dx=0.15 * x * lips, dz=-1.0 * lips)
    fields["nose_wrinkle"] = vec_field(n, dy=2.0 * _g(au, v, 10.0, -15.0, 9.0, 9.0) * face) + (
        0.8 * _g(u, v, 0.0, 12.0, 9.0, 8.0) * face)[:, None] * rad
    fields["squint"] = vec_field(n, dy=1.8 * _g(au, v, A.EYE_U, A.EYE_V - 4.0, 12.0, 3.0)
                                 * face)
    fields["lip_press"] = (-1.5 * lips)[:, None] * rad
    return fields


def expression_generators(s: Surface) -> tuple[list[str], np.ndarray]:
    """Semantic expression blendshapes: (names, (M, V, 3) fields at activation 1)."""
    upper = (s.v > A.MOUTH_V) | (s.kind == 1) | ((s.kind == KIND_POUCH) & (s.psi < np.pi))
    fields = face_expression_fields(
        s.u, s.v, s.verts[:, 0] - OFFSET[0], _radial(s), upper, jaw_open_field(s),
        (eye_close_field(s, -1), eye_close_field(s, +1)))
    return list(fields), np.stack(list(fields.values()))


NAMED_EXPRESSIONS = {
    "jaw_open": {"jaw_open": 1.0},
    "smile": {"smile_left": 1.0, "smile_right": 1.0},
    "brow_raise": {"brow_raise_left": 1.0, "brow_raise_right": 1.0},
    "eye_close": {"eye_close_left": 1.0, "eye_close_right": 1.0},
    "eye_close_left": {"eye_close_left": 1.0},
    "eye_close_right": {"eye_close_right": 1.0},
    "pucker": {"pucker": 1.0},
    "frown": {"frown": 1.0},
    "mouth_left": {"mouth_left": 1.0},
    "mouth_right": {"mouth_left": -1.0},
    "cheek_puff": {"cheek_puff": 1.0},
    "surprise": {"brow_raise_left": 1.0, "brow_raise_right": 1.0, "jaw_open": 0.6,
                 "eye_close_left": -0.2, "eye_close_right": -0.2},
}
"""Version 1's named expressions: {name: {generator: weight}}."""


def named_expressions(names: list[str], table=None) -> dict[str, np.ndarray]:
    """Named expressions as weights (M,) over the expression generators ``names``.

    table: {expression: {generator: weight}} (default :data:`NAMED_EXPRESSIONS`).
    """
    idx = {k: i for i, k in enumerate(names)}
    out = {}
    for key, w in (NAMED_EXPRESSIONS if table is None else table).items():
        out[key] = np.zeros(len(names))
        for k, val in w.items():
            out[key][idx[k]] = val
    return out
