"""Reflectance of the synthetic face: mean albedo and its variations (MoFA Eq. 3).

Colours are *linear* RGB reflectances in [0, 1] (display them through a gamma of
about 1/2.2). The mean paints regions defined on the unwrapped face ``(u, v)``:
skin with a cheek flush, redder lips, dark brows, the eyes (white sclera, a dark
iris and pupil: these colours sit on the vertices inside the lid opening, so a
closing lid squeezes them out of sight), dark nostrils, a dark mouth interior.

Variation generators (one standard deviation each): skin tone (light <-> dark),
redness, yellowness, lip colour and darkness, brow darkness, cheek flush, iris
colour, beard shadow, and smooth random blotches (``bases.gaussian_bumps``).
"""

from __future__ import annotations

import numpy as np

from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic.anatomy import _gauss as _g  # a 2-D Gaussian bump in (u, v)
from facelab.model.synthetic.surface import KIND_POUCH, Surface

SKIN = np.array([0.58, 0.36, 0.27])
LIPS = np.array([0.46, 0.17, 0.15])
BROW = np.array([0.07, 0.045, 0.03])
SCLERA = np.array([0.72, 0.68, 0.64])
IRIS = np.array([0.10, 0.055, 0.03])
PUPIL = np.array([0.01, 0.01, 0.01])
MOUTH = np.array([0.22, 0.04, 0.04])


def _region_weights(s: Surface):
    """Soft region indicators (V,) used by the mean and the variations."""
    u, v, au = s.u, s.v, np.abs(s.u)
    pouch = s.kind == KIND_POUCH
    lips = np.clip(A.lip_relief(u, v) / 2.0, 0.0, 1.0) ** 0.5
    lips = np.where(np.abs(v - A.MOUTH_V) < 1e-6, 1.0, lips) * (au <= A.MOUTH_HALF_WIDTH + 1.0)
    lips = np.where(pouch, 0.0, lips)
    d_brow = v - A.brow_curve(u) - 0.5
    brow = np.exp(-0.5 * (d_brow / 3.0) ** 4) * A._smoothstep(12.0, 17.0, au)
    brow *= 1.0 - A._smoothstep(50.0, 58.0, au + 0.15 * d_brow)
    brow *= 1.0 - 0.35 * A._smoothstep(20.0, 50.0, au)
    up, low = A.lid_curves(u)
    gap = np.minimum(up - v, v - low)
    eye = (gap > -0.05) & (np.abs(A.eye_local(u)) < 1.0) & ~pouch
    r_iris = np.hypot(au - A.EYE_U, v - (A.EYE_V + 0.6))
    iris = eye * (1.0 - A._smoothstep(4.8, 5.8, r_iris))
    pupil = eye * (1.0 - A._smoothstep(1.8, 2.4, r_iris))
    lash = np.exp(-0.5 * ((v - up) / 0.9) ** 2) * (gap < 0.0) * (v > low) * (
        np.abs(A.eye_local(u)) < 1.05)
    nostril = _g(au, v, 6.5, -27.5, 2.6, 1.6)
    cheek = _g(au, v, 38.0, -18.0, 12.0, 10.0)
    beard = A._smoothstep(-28.0, -45.0, v) * (1.0 - lips) * (1.0 - A._smoothstep(50.0, 70.0, au))
    return dict(lips=lips, brow=brow, eye=eye.astype(float), iris=iris, pupil=pupil, lash=lash,
                nostril=nostril, cheek=cheek, beard=beard, pouch=pouch.astype(float))


def mean_albedo(s: Surface) -> np.ndarray:
    """(V, 3) linear RGB mean reflectance."""
    w = _region_weights(s)
    c = np.tile(SKIN, (len(s.u), 1))
    c = c + w["cheek"][:, None] * np.array([0.05, -0.02, -0.015])
    c = c + A._smoothstep(40.0, 80.0, s.v)[:, None] * np.array([0.02, 0.02, 0.02])
    c = c * (1.0 - 0.35 * np.abs(A._smoothstep(A.jaw_line(s.theta), A.jaw_line(s.theta) - 12.0,
                                                s.v)))[:, None]
    mix = lambda c, w, col: c * (1.0 - w[:, None]) + w[:, None] * col  # noqa: E731
    c = mix(c, w["lips"], LIPS)
    c = mix(c, 0.85 * w["brow"], BROW)
    c = mix(c, 0.8 * w["lash"], BROW)
    c = mix(c, 0.7 * w["nostril"], np.array([0.08, 0.03, 0.025]))
    c = mix(c, w["eye"], SCLERA)
    c = mix(c, w["iris"], IRIS)
    c = mix(c, w["pupil"], PUPIL)
    depth = np.sin(0.5 * s.psi) ** 0.7  # 0 at the lips, 1 deep inside
    c = mix(c, w["pouch"], MOUTH[None] * (1.0 - 0.75 * depth[:, None]))
    return c


def albedo_generators(s: Surface, mean: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Semantic reflectance variations: (names, (M, V, 3) at +1 std)."""
    w = _region_weights(s)
    skin = (1.0 - w["eye"] - w["pouch"]).clip(0.0, 1.0)[:, None]
    n = len(s.u)

    def col(weight, rgb):
        return np.asarray(weight)[:, None] * np.asarray(rgb)[None, :] * np.ones((n, 3))

    fields = {
        "skin_tone": -0.28 * mean * skin,
        "redness": mean * skin * np.array([0.06, -0.05, -0.04]),
        "yellowness": mean * skin * np.array([0.02, 0.04, -0.07]),
        "lip_colour": col(w["lips"], [0.05, -0.025, -0.015]),
        "lip_darkness": -0.25 * mean * w["lips"][:, None],
        "brow_darkness": -0.5 * (mean - BROW) * w["brow"][:, None] * 0.5,
        "cheek_flush": mean * w["cheek"][:, None] * np.array([0.07, -0.04, -0.03]),
        "iris_colour": col(w["iris"] * (1.0 - w["pupil"]), [-0.02, 0.03, 0.06]),
        "beard_shadow": mean * (w["beard"] * skin[:, 0])[:, None] * np.array([-0.1, -0.08, -0.05]),
    }
    return list(fields), np.stack(list(fields.values()))
