"""The designed anatomy of the synthetic face: a base head surface plus a relief.

Every point of the face is named by two *unwrapped* coordinates ``(u, v)`` in
millimetres: ``v`` runs up the face (it equals the height ``y`` above the jaw
line and keeps counting arc length as the surface turns under the chin), ``u``
is the arc length across the face from the midline (negative toward the
subject's right, which is ``-x`` in model space). Near the front ``u ~ x`` and
``v ~ y``, so the features below are placed as if on a photograph.

The 3-D point is ``P(u, v) = B(theta, v) + h(u, v) * (sin theta, 0, cos theta)``:

* ``B`` is the *base*: a superellipse cross-section (flat front, round sides)
  at each height, cut in front of the ears, whose lower edge (the jaw line)
  turns under the chin;
* ``h`` is the *relief*, a sum of smooth shaped bumps and grooves (brow ridge,
  eye sockets, eyeballs and lids, nose, lips, chin, cheekbones, folds ...)
  pushed out along the horizontal radial direction.

A radial height field over ``(theta, y)`` cannot fold over itself, which is why
the mesh has no self-intersections. All numbers are in the *design frame*;
``surface.py`` shifts the result so the model is centred at the origin.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

# ----------------------------------------------------------------- proportions
# Facial thirds: brow line ~ +34, nose base -30, chin (menton) -97 (design frame).
EYE_U, EYE_V = 32.0, 22.0  # eye centre (|u|, v); interpupillary distance 64 mm
EYE_HALF_WIDTH = 15.0  # palpebral fissure 30 mm wide: inner corner |u|=17, outer 47
EYE_TILT = 1.0  # the outer corner sits 2 mm higher than the inner corner
LID_UP, LID_LOW = 5.2, 3.4  # upper / lower lid heights above / below the corner line
MOUTH_V = -52.0  # the mouth line (stomion); the mouth slit lies on it
MOUTH_HALF_WIDTH = 25.0  # mouth corners at u = +-25
NOSE_TIP_V = -15.0
SUBNASALE_V = -30.0
BROW_V = 35.0
CHIN_V = -84.0
THETA_SIDE = 1.36  # the mask ends in front of the ears (about 78 degrees)
TOP_V = 90.0  # top of the forehead on the midline
SUPER_P = 2.4  # exponent of the superellipse cross-section

# The jaw line (lower border of the mandible) as a height per |theta|: from the
# menton, along the mandible body, round the jaw angle, up the ramus to the ear.
_JAW_THETA = np.array([0.0, 0.25, 0.45, 0.62, 0.76, 0.9, 1.05, 1.2, 1.36, 1.6])
_JAW_V = np.array([-97.0, -95.0, -89.0, -78.0, -64.0, -48.0, -34.0, -22.0, -12.0, 8.0])
_jaw_curve = PchipInterpolator(_JAW_THETA, _JAW_V)
UNDER_JAW = 14.0  # arc length of the band that turns under the jaw line (mm)


def _relu(x):
    return np.maximum(x, 0.0)


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(u, v, cu, cv, su, sv):
    return np.exp(-0.5 * (((u - cu) / su) ** 2 + ((v - cv) / sv) ** 2))


# ---------------------------------------------------------------------- base
def jaw_line(theta):
    """Height v of the jaw line (mandible border) at horizontal angle ``theta``."""
    return _jaw_curve(np.minimum(np.abs(theta), 1.6))


def _half_width(y):
    return 74.0 - 15.0 * _relu(y - 25.0) ** 2 / 65.0**2 - 6.0 * _relu(-20.0 - y) ** 2 / 80.0**2


def _depth(y):
    return 95.0 - 24.0 * _relu(y - 35.0) ** 2 / 55.0**2


def _cross_section_radius(theta, y):
    """Polar radius of the superellipse |x/A|^p + |z/D|^p = 1 at angle theta."""
    a, d = _half_width(y), _depth(y)
    s, c = np.abs(np.sin(theta)), np.abs(np.cos(theta))
    return 1.0 / ((s / a) ** SUPER_P + (c / d) ** SUPER_P) ** (1.0 / SUPER_P)


def base_point(theta, v):
    """Base surface: (y, r) for angle ``theta`` and unwrapped height ``v`` (arrays).

    Above the jaw line y = v and r is the cross-section radius. Below it the
    surface turns under the jaw: arc length ``tau`` below the line bends from
    vertical toward horizontal (angle phi up to 70 degrees), so v stays an arc
    length along each meridian.
    """
    theta, v = np.broadcast_arrays(np.asarray(theta, float), np.asarray(v, float))
    vj = jaw_line(theta)
    tau = _relu(vj - v)
    # phi(tau) = phi_max (1 - exp(-tau / k)); integrate (cos phi, sin phi) in closed form
    # by a short fixed quadrature (8 points, deterministic).
    phi_max, k = 1.22, 6.0
    n = 8
    w = (np.arange(n) + 0.5) / n
    phis = phi_max * (1.0 - np.exp(-(tau[..., None] * w) / k))  # (..., n)
    dy = -(np.cos(phis).mean(-1)) * tau
    dr = -(np.sin(phis).mean(-1)) * tau
    y = np.where(tau > 0, vj + dy, v)
    r = _cross_section_radius(theta, np.where(tau > 0, vj, v)) + np.where(tau > 0, dr, 0.0)
    return y, r


def base_xyz(theta, v):
    """(..., 3) base points in the design frame."""
    y, r = base_point(theta, v)
    return np.stack([r * np.sin(theta), y, r * np.cos(theta)], axis=-1)


# ------------------------------------------------------------- feature curves
def eye_local(u):
    """xi in [-1, 1] across an eye (-1 inner corner, +1 outer corner), per side."""
    return (np.abs(u) - EYE_U) / EYE_HALF_WIDTH


def lid_curves(u, openness=1.0):
    """Upper and lower lid margins v_up(u), v_low(u) (equal outside the eye).

    ``openness`` in [0, 1] lowers the upper lid onto the closing line (0 = closed).
    """
    xi = eye_local(u)
    inside = _relu(1.0 - xi**2)
    corner = EYE_V + EYE_TILT * np.clip(xi, -1, 1)
    up = corner + LID_UP * inside**0.65 * (1.0 - 0.18 * xi)
    low = corner - LID_LOW * inside**0.75 * (1.0 + 0.2 * xi)
    close = low + 0.15 * (up - low)
    up = close + np.asarray(openness) * (up - close)
    return up, low


def brow_curve(u):
    """Height of the brow ridge crest."""
    a = (np.abs(u) - 30.0) / 26.0
    return BROW_V + 3.5 * _relu(1.0 - a**2) - 1.0


def lip_borders(u):
    """Vermilion borders (upper, lower) of the lips; both meet the mouth corners."""
    a = np.clip(np.abs(u) / MOUTH_HALF_WIDTH, 0.0, 1.0)
    bow = 1.3 * np.exp(-0.5 * (u / 2.4) ** 2)  # the dip of the Cupid's bow
    peak = 1.2 * np.exp(-0.5 * ((np.abs(u) - 6.0) / 3.0) ** 2)
    upper = MOUTH_V + (8.5 - bow + peak) * (1.0 - a**2) ** 0.6
    lower = MOUTH_V - 10.0 * (1.0 - a**2) ** 0.75
    return upper, lower


def mouth_line(u):
    """Height of the (closed) mouth line; the lattice row sits at MOUTH_V."""
    return np.full_like(np.asarray(u, float), MOUTH_V)


# --------------------------------------------------------------------- relief
def _eye_relief(u, v, openness):
    au = np.abs(u)
    socket = -8.5 * _gauss(au, v, EYE_U, EYE_V + 1.0, 15.0, 10.0)
    ball = 7.5 * _gauss(au, v, EYE_U - 0.5, EYE_V + 0.5, 9.5, 7.5)
    cornea = 1.0 * _gauss(au, v, EYE_U, EYE_V + 0.6, 4.0, 4.0)
    up, low = lid_curves(u, openness)
    gap = np.minimum(up - v, v - low)  # > 0 inside the eye opening
    inside = 1.0 / (1.0 + np.exp(-(gap - 0.2) / 0.35))
    lid = 2.0 * (1.0 - inside)  # lid skin lies on the eyeball, 2 mm thick at the margin
    near = _gauss(au, v, EYE_U, EYE_V, 17.0, 11.0)
    # upper lid crease and the fat pad above it
    xi = eye_local(u)
    span = _relu(1.0 - (xi / 1.15) ** 2)
    up_open, _ = lid_curves(u, 1.0)
    crease = -1.4 * span * np.exp(-0.5 * ((v - (up_open + 6.5)) / 1.6) ** 2)
    pad = 1.2 * span * np.exp(-0.5 * ((v - (up_open + 10.0)) / 3.0) ** 2)
    # lower lid bag / tear trough
    trough = -1.5 * span * np.exp(-0.5 * ((v - (EYE_V - 9.0)) / 2.5) ** 2)
    return socket + ball + near * lid + (1.0 - inside) * (crease + pad + trough) + inside * cornea


def _nose_relief(u, v):
    # projection along the bridge: nasion (v=30) ~4 mm, tip (v=-15) ~25 mm
    t = np.clip((30.0 - v) / (30.0 - NOSE_TIP_V), 0.0, 1.0)
    proj = 4.0 + 21.0 * t**1.25
    below = np.clip((NOSE_TIP_V - v) / (NOSE_TIP_V - SUBNASALE_V - 1.0), 0.0, 1.0)
    proj = proj * np.cos(0.5 * np.pi * below) ** 1.2
    proj = np.where(v > 30.0, 4.0 * np.exp(-0.5 * ((v - 30.0) / 7.0) ** 2), proj)
    width = 5.0 + 3.8 * t**1.5
    ridge = proj * np.exp(-0.5 * (u / width) ** 2) ** 1.3
    tip = 3.0 * _gauss(u, v, 0.0, NOSE_TIP_V + 1.0, 6.5, 5.5) * _smoothstep(-31, -24, v)
    au = np.abs(u)
    alae = 8.5 * _gauss(au, v, 12.5, -23.0, 5.0, 4.8)
    ring = np.hypot(au - 12.5, (v + 23.0) / 0.95)
    alar_groove = -2.5 * np.exp(-0.5 * ((ring - 6.3) / 1.2) ** 2)
    alar_groove *= _smoothstep(-31, -24, v) * (au > 8.0)
    nostril = -3.0 * _gauss(au, v, 6.5, -27.5, 2.4, 1.6)
    return ridge + tip + alae + alar_groove + nostril


def lip_relief(u, v):
    """The vermilion of both lips (0 at the mouth line and off the lips)."""
    au = np.abs(u)
    upper, lower = lip_borders(u)
    taper = _relu(1.0 - (au / (MOUTH_HALF_WIDTH + 1.0)) ** 2) ** 0.5
    a = np.clip((v - MOUTH_V) / np.maximum(upper - MOUTH_V, 1e-3), 0.0, 1.0)
    b = np.clip((MOUTH_V - v) / np.maximum(MOUTH_V - lower, 1e-3), 0.0, 1.0)
    up_lip = 4.5 * np.sin(np.pi * a) ** 0.6 * (v >= MOUTH_V) * (a < 1.0) * taper
    low_lip = 5.0 * np.sin(np.pi * b) ** 0.6 * (v < MOUTH_V) * (b < 1.0) * taper
    # smooth the outer halves so the vermilion border is a soft roll, not a cliff
    up_lip = np.where(a > 0.5, 4.5 * taper * (1.0 - 0.75 * (2 * a - 1) ** 2) * (a < 1.0), up_lip)
    low_lip = np.where(b > 0.5, 5.0 * taper * (1.0 - 0.8 * (2 * b - 1) ** 2) * (b < 1.0), low_lip)
    return up_lip + low_lip


def _mouth_relief(u, v):
    au = np.abs(u)
    muzzle = 10.0 * _gauss(u, v, 0.0, -50.0, 24.0, 20.0)
    philtrum = (
        1.0 * _gauss(au, v, 5.0, -38.0, 1.6, 6.0) - 0.6 * _gauss(u, v, 0.0, -38.0, 2.0, 6.0)
    )
    corners = -2.0 * _gauss(au, v, MOUTH_HALF_WIDTH + 1.0, MOUTH_V, 3.0, 3.0)
    sulcus = -3.0 * _gauss(u, v, 0.0, -68.0, 15.0, 3.5)
    chin = 7.0 * _gauss(u, v, 0.0, CHIN_V, 14.0, 9.0)
    return lip_relief(u, v) + muzzle + philtrum + corners + sulcus + chin


def _segment_distance(u, v, a, b):
    """Signed lateral offset and along-parameter of (u, v) w.r.t. segment a->b."""
    d = np.array(b) - np.array(a)
    length = np.hypot(*d)
    t = ((u - a[0]) * d[0] + (v - a[1]) * d[1]) / length**2
    tc = np.clip(t, 0.0, 1.0)
    px, py = a[0] + tc * d[0], a[1] + tc * d[1]
    return np.hypot(u - px, v - py), t


def _cheek_relief(u, v):
    au = np.abs(u)
    cheekbone = 6.0 * _gauss(au, v, 52.0, 2.0, 15.0, 10.0)
    cheek = 3.5 * _gauss(au, v, 36.0, -22.0, 13.0, 13.0)
    temple = -4.0 * _gauss(au, v, 68.0, 38.0, 10.0, 16.0)
    # nasolabial fold: a groove from the nose wing past the mouth corner
    dist, t = _segment_distance(au, v, (19.0, -24.0), (32.0, -60.0))
    along = _smoothstep(-0.1, 0.15, t) * (1.0 - _smoothstep(0.8, 1.1, t))
    fold = -1.0 * np.exp(-0.5 * (dist / 2.6) ** 2) * along
    side = 1.2 * np.exp(-0.5 * ((dist - 5.0) / 5.0) ** 2) * along * (au > 19.0 + (v + 24.0) * -0.36)
    brow = 4.0 * np.exp(-0.5 * ((v - brow_curve(u)) / 6.0) ** 2) * _smoothstep(62, 48, au)
    glabella = 2.0 * _gauss(u, v, 0.0, 35.0, 10.0, 7.0)
    eminence = 2.0 * _gauss(au, v, 25.0, 62.0, 18.0, 14.0)
    jaw_angle = 3.0 * _gauss(au, v, 62.0, -58.0, 10.0, 12.0)
    return cheekbone + cheek + temple + fold + side + brow + glabella + eminence + jaw_angle


def relief(u, v, openness=(1.0, 1.0)):
    """Height h(u, v) (mm) of the face's features above the base surface.

    openness: (right, left) eye openness in [0, 1]; 0 closes the lids.
    """
    u = np.asarray(u, float)
    v = np.asarray(v, float)
    o = np.where(u < 0, openness[0], openness[1])
    return _eye_relief(u, v, o) + _nose_relief(u, v) + _mouth_relief(u, v) + _cheek_relief(u, v)


# -------------------------------------------------------------------- domain
def top_border(theta):
    """Top of the mask (forehead) as a height per angle."""
    a = np.abs(theta) / THETA_SIDE
    return TOP_V - 26.0 * a**3


def bottom_border(theta):
    """Bottom of the mask: a band of UNDER_JAW mm below the jaw line."""
    return jaw_line(theta) - UNDER_JAW
