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


def _vec(dx=0.0, dy=0.0, dz=0.0, n=None):
    n = n if n is not None else np.broadcast(dx, dy, dz).shape[0]
    out = np.zeros((n, 3))
    out[:, 0], out[:, 1], out[:, 2] = dx, dy, dz
    return out


# ------------------------------------------------------------------ identity
def identity_generators(s: Surface) -> tuple[list[str], np.ndarray]:
    """Semantic identity variations: (names, (M, V, 3) fields at +1 std)."""
    u, v, au = s.u, s.v, np.abs(s.u)
    x, y, z = (s.verts - OFFSET).T  # design frame
    rad = _radial(s)
    n = len(u)
    sign = np.sign(u)
    lower = A._smoothstep(-20.0, -80.0, v)
    nose = A._nose_relief(u, v) / 25.0
    lips = A.lip_relief(u, v) / 5.0
    eye = _g(au, v, A.EYE_U, A.EYE_V, 15.0, 10.0)
    fields = {
        "scale": 0.035 * np.stack([x, y, z - 40.0], -1),
        "face_width": _vec(dx=0.045 * x, n=n),
        "face_height": _vec(dy=0.035 * y, n=n),
        "face_depth": _vec(dz=0.045 * (z - 40.0), n=n),
        "jaw_width": _vec(dx=0.07 * x * lower, n=n),
        "chin_length": _vec(dy=-4.0 * A._smoothstep(-55.0, -90.0, v), n=n),
        "chin_prominence": 3.5 * _g(u, v, 0.0, -86.0, 15.0, 12.0)[:, None] * rad,
        "nose_length": _vec(dy=-3.5 * _g(u, v, 0.0, -18.0, 16.0, 14.0)
                            * np.clip((30.0 - v) / 45.0, 0.0, 1.0), n=n),
        "nose_width": _vec(dx=0.2 * x * _g(u, v, 0.0, -22.0, 18.0, 9.0), n=n),
        "nose_projection": 4.0 * nose[:, None] * rad,
        "nose_bridge": 2.5 * _g(u, v, 0.0, 16.0, 7.0, 12.0)[:, None] * rad,
        "eye_spacing": _vec(dx=2.5 * sign * _g(au, v, A.EYE_U, A.EYE_V, 15.0, 11.0), n=n),
        "eye_size": 0.09 * eye[:, None] * np.stack(
            [x - sign * A.EYE_U, y - A.EYE_V, np.zeros(n)], -1),
        "eye_height": _vec(dy=2.5 * _g(au, v, A.EYE_U, A.EYE_V + 3.0, 20.0, 14.0), n=n),
        "eye_depth": -2.5 * eye[:, None] * rad,
        "brow_height": _vec(dy=3.0 * _g(au, v, 32.0, 38.0, 22.0, 7.0), n=n),
        "brow_ridge": 2.5 * _g(au, v, 30.0, 36.0, 22.0, 6.0)[:, None] * rad,
        "lip_fullness": 2.2 * lips[:, None] * rad,
        "mouth_width": _vec(dx=0.12 * x * _g(u, v, 0.0, A.MOUTH_V, 26.0, 9.0), n=n),
        "mouth_height": _vec(dy=2.5 * _g(u, v, 0.0, A.MOUTH_V, 30.0, 12.0), n=n),
        "cheekbones": 3.0 * _g(au, v, 52.0, 2.0, 15.0, 10.0)[:, None] * rad,
        "cheek_fullness": 3.0 * _g(au, v, 38.0, -30.0, 16.0, 16.0)[:, None] * rad,
        "forehead_slope": -4.0 * A._smoothstep(30.0, 90.0, v)[:, None] * rad,
        "temples": -2.5 * _g(au, v, 66.0, 38.0, 12.0, 16.0)[:, None] * rad,
        "jaw_angle": 3.0 * _g(au, v, 58.0, -60.0, 12.0, 14.0)[:, None] * rad,
    }
    return list(fields), np.stack(list(fields.values()))


# ---------------------------------------------------------------- expression
def _axis_angle_x(angle):
    c, sn = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -sn], [0.0, sn, c]])


def jaw_open_field(s: Surface, angle: float = JAW_OPEN_ANGLE):
    """Displacement of a jaw rotation by ``angle`` about +x (linear blend skinning)."""
    rot = _axis_angle_x(angle)
    rel = s.verts - s.jaw_joint
    return s.jaw_weights[:, None] * (rel @ rot.T - rel)


def eye_close_field(s: Surface, side: int):
    """Displacement that closes one eye (side -1: subject's right, +1: left).

    The lid skin between the upper margin and the crease slides down onto the
    closing line, the eyeball strip is squeezed under it, and the surface is
    re-evaluated with the eye's relief closed, so the lid covers the eyeball.
    """
    u, v = s.u, s.v
    up, low = A.lid_curves(u, 1.0)
    close = low + 0.15 * (up - low)
    fold = up + 9.0
    inside = (np.sign(u) == side) & (s.kind == KIND_SKIN) & (np.abs(A.eye_local(u)) < 1.0)
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
    out = np.zeros_like(s.verts)
    out[region] = surface_points(u[region], v_new[region], openness) - s.verts[region]
    return out


def expression_generators(s: Surface) -> tuple[list[str], np.ndarray]:
    """Semantic expression blendshapes: (names, (M, V, 3) fields at activation 1)."""
    u, v, au = s.u, s.v, np.abs(s.u)
    x = s.verts[:, 0] - OFFSET[0]
    rad = _radial(s)
    n = len(u)
    lips = _g(u, v, 0.0, A.MOUTH_V, 17.0, 9.0)
    upper = (v > A.MOUTH_V) | (s.kind == 1) | ((s.kind == KIND_POUCH) & (s.psi < np.pi))
    fields = {"jaw_open": jaw_open_field(s)}
    for name, side in (("smile_right", -1.0), ("smile_left", 1.0)):
        g = _g(u, v, side * 25.0, A.MOUTH_V + 1.0, 10.0, 9.0)
        cheek = _g(u, v, side * 36.0, -25.0, 14.0, 12.0)
        lid = _g(u, v, side * A.EYE_U, A.EYE_V - 6.0, 12.0, 4.0)
        fields[name] = (
            _vec(dx=side * 4.5 * g, dy=6.5 * g + 2.5 * cheek + 1.0 * lid, dz=-2.5 * g, n=n)
            + (2.0 * cheek)[:, None] * rad
        )
    for name, side in (("brow_raise_right", -1.0), ("brow_raise_left", 1.0)):
        g = _g(u, v, side * 30.0, 42.0, 28.0, 12.0) * A._smoothstep(A.EYE_V + 2, A.EYE_V + 10, v)
        fields[name] = _vec(dy=6.0 * g, n=n) + (0.8 * g)[:, None] * rad
    inner = _g(au, v, 18.0, 34.0, 12.0, 9.0)
    fields["frown"] = _vec(dx=-2.5 * np.sign(u) * inner, dy=-3.0 * inner, n=n) + (
        1.0 * _g(u, v, 0.0, 33.0, 8.0, 6.0))[:, None] * rad
    fields["eye_close_right"] = eye_close_field(s, -1)
    fields["eye_close_left"] = eye_close_field(s, +1)
    fields["pucker"] = _vec(dx=-0.35 * x * lips, dz=6.0 * lips, n=n)
    fields["mouth_left"] = _vec(dx=6.0 * _g(u, v, 0.0, -55.0, 22.0, 14.0), n=n)
    fields["cheek_puff"] = (6.0 * _g(au, v, 38.0, -48.0, 12.0, 12.0))[:, None] * rad
    fields["upper_lip_raise"] = _vec(dy=3.0 * _g(u, v, 0.0, -46.0, 14.0, 6.0) * upper, n=n)
    fields["lower_lip_depress"] = _vec(dy=-3.0 * _g(u, v, 0.0, -60.0, 14.0, 6.0) * ~upper, n=n)
    fields["mouth_stretch"] = _vec(dx=0.15 * x * lips, dz=-1.0 * lips, n=n)
    fields["nose_wrinkle"] = _vec(dy=2.0 * _g(au, v, 10.0, -15.0, 9.0, 9.0), n=n) + (
        0.8 * _g(u, v, 0.0, 12.0, 9.0, 8.0))[:, None] * rad
    fields["squint"] = _vec(dy=1.8 * _g(au, v, A.EYE_U, A.EYE_V - 4.0, 12.0, 3.0), n=n)
    fields["lip_press"] = (-1.5 * lips)[:, None] * rad
    return list(fields), np.stack(list(fields.values()))


def named_expressions(names: list[str]) -> dict[str, np.ndarray]:
    """Named expressions as weights (M,) over the expression generators."""
    idx = {k: i for i, k in enumerate(names)}

    def mix(**w):
        out = np.zeros(len(names))
        for k, val in w.items():
            out[idx[k]] = val
        return out

    return {
        "jaw_open": mix(jaw_open=1.0),
        "smile": mix(smile_left=1.0, smile_right=1.0),
        "brow_raise": mix(brow_raise_left=1.0, brow_raise_right=1.0),
        "eye_close": mix(eye_close_left=1.0, eye_close_right=1.0),
        "eye_close_left": mix(eye_close_left=1.0),
        "eye_close_right": mix(eye_close_right=1.0),
        "pucker": mix(pucker=1.0),
        "frown": mix(frown=1.0),
        "mouth_left": mix(mouth_left=1.0),
        "mouth_right": mix(mouth_left=-1.0),
        "cheek_puff": mix(cheek_puff=1.0),
        "surprise": mix(brow_raise_left=1.0, brow_raise_right=1.0, jaw_open=0.6,
                        eye_close_left=-0.2, eye_close_right=-0.2),
    }
