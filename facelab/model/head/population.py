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
from facelab.model.synthetic.anatomy import _gauss as _g  # a 2-D Gaussian bump in (u, v)

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


def _vec(n, dx=0.0, dy=0.0, dz=0.0):
    out = np.zeros((n, 3))
    out[:, 0], out[:, 1], out[:, 2] = dx, dy, dz
    return out


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
    """Semantic identity variations: (names, (M, n, 3) fields at +1 std)."""
    u, v, au = p.u, p.v, np.abs(p.u)
    x, y, z = p.xyz.T
    rad = p.omega
    n = len(u)
    sign = np.sign(u)
    front = A._smoothstep(150.0, 90.0, au)  # the face's fields fade toward the ears
    lower = A._smoothstep(-20.0, -80.0, v) * front
    nose = A._nose_relief(u, v) / 25.0
    lips = A.lip_relief(u, v) / 5.0
    eye = _g(au, v, A.EYE_U, A.EYE_V, 15.0, 10.0)
    ea, eb = S.ear_coords(u, v)
    ear = 1.0 - A._smoothstep(0.8, 1.3, np.sqrt(ea**2 + eb**2))
    fields = {
        "scale": 0.035 * np.stack([x, y - 0.0, z], -1),
        "face_width": _vec(n, dx=0.045 * x),
        "face_height": _vec(n, dy=0.035 * y * front),
        "face_depth": _vec(n, dz=0.045 * np.maximum(z, 0.0) * front),
        "head_length": _vec(n, dz=0.04 * np.minimum(z + 10.0, 0.0)),
        "skull_height": _vec(n, dy=0.05 * np.maximum(y - 40.0, 0.0)),
        "neck_width": _vec(n, dx=0.07 * x * A._smoothstep(-110.0, -150.0, y),
                           dz=0.07 * (z + 22.0) * A._smoothstep(-110.0, -150.0, y)),
        "jaw_width": _vec(n, dx=0.07 * x * lower),
        "chin_length": _vec(n, dy=-4.0 * A._smoothstep(-55.0, -90.0, v) * front),
        "chin_prominence": 3.5 * _g(u, v, 0.0, -86.0, 15.0, 12.0)[:, None] * rad,
        "nose_length": _vec(n, dy=-3.5 * _g(u, v, 0.0, -18.0, 16.0, 14.0)
                            * np.clip((30.0 - v) / 45.0, 0.0, 1.0)),
        "nose_width": _vec(n, dx=0.2 * x * _g(u, v, 0.0, -22.0, 18.0, 9.0)),
        "nose_projection": 4.0 * nose[:, None] * rad,
        "nose_bridge": 2.5 * _g(u, v, 0.0, 16.0, 7.0, 12.0)[:, None] * rad,
        "eye_spacing": _vec(n, dx=2.5 * sign * _g(au, v, A.EYE_U, A.EYE_V, 15.0, 11.0)),
        "eye_size": 0.09 * eye[:, None] * np.stack(
            [x - sign * A.EYE_U, y - A.EYE_V, np.zeros(n)], -1),
        "eye_height": _vec(n, dy=2.5 * _g(au, v, A.EYE_U, A.EYE_V + 3.0, 20.0, 14.0)),
        "eye_depth": -2.5 * eye[:, None] * rad,
        "brow_height": _vec(n, dy=3.0 * _g(au, v, 32.0, 38.0, 22.0, 7.0)),
        "brow_ridge": 2.5 * _g(au, v, 30.0, 36.0, 22.0, 6.0)[:, None] * rad,
        "lip_fullness": 2.2 * lips[:, None] * rad,
        "mouth_width": _vec(n, dx=0.12 * x * _g(u, v, 0.0, A.MOUTH_V, 26.0, 9.0)),
        "mouth_height": _vec(n, dy=2.5 * _g(u, v, 0.0, A.MOUTH_V, 30.0, 12.0)),
        "cheekbones": 3.0 * _g(au, v, 52.0, 2.0, 15.0, 10.0)[:, None] * rad,
        "cheek_fullness": 3.0 * _g(au, v, 38.0, -30.0, 16.0, 16.0)[:, None] * rad,
        "forehead_slope": -4.0 * (A._smoothstep(30.0, 90.0, v) * front)[:, None] * rad,
        "temples": -2.5 * _g(au, v, 66.0, 38.0, 12.0, 16.0)[:, None] * rad,
        "jaw_angle": 3.0 * _g(au, v, 80.0, -62.0, 14.0, 14.0)[:, None] * rad,
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
def _rot_x(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def eye_close_field(shell: M.Shell, side: int) -> np.ndarray:
    """Displacement (V, 3) that closes one eye (side -1: the subject's right, +1: left).

    Version 1's lid slide (the upper lid's skin slides down onto a closing line near the lower
    lid, the opening's strip is squeezed under it), re-evaluated on the lid skin over the
    eyeball (no recess), so the closed lid covers the eyeball.
    """
    u, v = shell.u, shell.v
    up, low = A.lid_curves(u, 1.0)
    close = low + 0.15 * (up - low)
    fold = up + 9.0
    inside = ((np.sign(u) == side) & (shell.kind == M.KIND_SKIN)
              & (np.abs(A.eye_local(u)) < 1.0) & (np.abs(u) < 80.0))
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
    out = np.zeros_like(shell.verts)
    out[region] = (S.skin_points(u[region], v_new[region], openness, recess=False)
                   - shell.verts[region])
    return out


def expression_semantic(shell: M.Shell, jaw_weights: np.ndarray, jaw_joint: np.ndarray):
    """Semantic expression blendshapes: (names, (M, V, 3) fields at activation 1)."""
    u, v, au = shell.u, shell.v, np.abs(shell.u)
    skin = shell.kind <= M.KIND_POUCH
    face = (skin & (au < 110.0)).astype(float)
    x = shell.verts[:, 0]
    rad = S.base_frame(u, v)[2] * skin[:, None]
    n = len(u)
    lips = _g(u, v, 0.0, A.MOUTH_V, 17.0, 9.0) * face
    upper = (v > A.MOUTH_V) | (shell.kind == M.KIND_SLIT_UP) | (
        (shell.kind == M.KIND_POUCH) & (shell.psi < np.pi))
    rel = shell.verts - jaw_joint
    fields = {"jaw_open": jaw_weights[:, None] * (rel @ _rot_x(JAW_OPEN_ANGLE).T - rel)}
    for name, side in (("smile_right", -1.0), ("smile_left", 1.0)):
        g = _g(u, v, side * 25.0, A.MOUTH_V + 1.0, 10.0, 9.0) * face
        cheek = _g(u, v, side * 36.0, -25.0, 14.0, 12.0) * face
        lid = _g(u, v, side * A.EYE_U, A.EYE_V - 6.0, 12.0, 4.0) * face
        fields[name] = (_vec(n, dx=side * 4.5 * g, dy=6.5 * g + 2.5 * cheek + 1.0 * lid,
                             dz=-2.5 * g) + (2.0 * cheek)[:, None] * rad)
    for name, side in (("brow_raise_right", -1.0), ("brow_raise_left", 1.0)):
        g = (_g(u, v, side * 30.0, 42.0, 28.0, 12.0) * A._smoothstep(A.EYE_V + 2, A.EYE_V + 10, v)
             * face)
        fields[name] = _vec(n, dy=7.0 * g) + (0.8 * g)[:, None] * rad
    inner = _g(au, v, 18.0, 34.0, 12.0, 9.0) * face
    fields["frown"] = _vec(n, dx=-2.5 * np.sign(u) * inner, dy=-3.0 * inner) + (
        1.0 * _g(u, v, 0.0, 33.0, 8.0, 6.0) * face)[:, None] * rad
    fields["eye_close_right"] = eye_close_field(shell, -1)
    fields["eye_close_left"] = eye_close_field(shell, +1)
    fields["pucker"] = _vec(n, dx=-0.35 * x * lips, dz=6.0 * lips)
    fields["mouth_left"] = _vec(n, dx=6.0 * _g(u, v, 0.0, -55.0, 22.0, 14.0) * face)
    fields["cheek_puff"] = (6.0 * _g(au, v, 38.0, -48.0, 12.0, 12.0) * face)[:, None] * rad
    fields["upper_lip_raise"] = _vec(n, dy=3.0 * _g(u, v, 0.0, -46.0, 14.0, 6.0) * upper * face)
    fields["lower_lip_depress"] = _vec(n, dy=-3.0 * _g(u, v, 0.0, -60.0, 14.0, 6.0) * ~upper
                                       * face)
    fields["mouth_stretch"] = _vec(n, dx=0.15 * x * lips, dz=-1.0 * lips)
    fields["nose_wrinkle"] = _vec(n, dy=2.0 * _g(au, v, 10.0, -15.0, 9.0, 9.0) * face) + (
        0.8 * _g(u, v, 0.0, 12.0, 9.0, 8.0) * face)[:, None] * rad
    fields["squint"] = _vec(n, dy=1.8 * _g(au, v, A.EYE_U, A.EYE_V - 4.0, 12.0, 3.0) * face)
    fields["lip_press"] = (-1.5 * lips)[:, None] * rad
    return list(fields), np.stack(list(fields.values()))


def named_expressions(names: list[str]) -> dict[str, np.ndarray]:
    """Named expressions as weights (M,) over the semantic expression generators."""
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
        "surprise": mix(brow_raise_left=1.0, brow_raise_right=1.0, jaw_open=0.6),
    }


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
