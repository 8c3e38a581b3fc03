"""The designed shape of the full head: a star-shaped base, its unwrapping, and the relief.

How a point of the head is made (design frame, millimetres, y up, the face toward +z):

1. **Base.** An implicit solid, the smooth union (polynomial smooth minimum) of a cranium
   ellipsoid, the face block of version 1 (its superellipse cross-section above its jaw line,
   :mod:`facelab.model.synthetic.anatomy`) and an elliptic neck cylinder. Rays from a centre
   ``CENTRE`` inside the head meet its outermost surface once each, so the base is a radial
   graph ``B(omega) = CENTRE + rho(omega) omega`` over ray directions
   ``omega(theta, phi) = (sin phi sin theta, cos phi, sin phi cos theta)`` (theta the azimuth
   from +z, phi the polar angle from +y): it cannot fold over itself.
2. **Unwrap.** ``v`` counts arc length down each meridian (theta fixed) from the crown,
   ``v = V_REF - s``, with ``V_REF`` chosen so ``v`` is the height ``y`` at the eyes on the
   front meridian; ``u`` is the arc length from the front meridian along each row (v fixed),
   negative toward the subject's right (-x). Near the face ``(u, v)`` are the coordinates of
   version 1's face design (``u ~ x``, ``v ~ y``), so its nose, lips, cheeks and chin relief
   (``anatomy._nose_relief`` ...) are reused as they are. The crown is the pole ``v = V_REF``;
   the back midline ``|u| = half_perimeter(v)`` is a seam.
3. **Relief.** ``P = B + h(u, v) omega``: version 1's face relief plus ears and an eye socket;
   then the eyelids are laid over the eyeballs (``EYE_RADIUS`` spheres, separate meshes):
   outside the lid opening the skin lies at least ``LID_THICKNESS`` in front of the eyeball,
   inside it the skin is recessed behind the eyeball's front, so the eyeball shows through
   the opening and a closing lid covers it.
4. **Warps.** ``U = 0.5 + g(u)``, ``V = h(v)`` (``uv_of``) compress the back of the head and
   the neck: the mesh lattice is regular in ``(U, V)`` (the face gets most vertices) and the
   same map is the texture layout, mirror-symmetric about ``U = 0.5``.

Everything is in the design frame; ``OFFSET`` moves it to model space (centred like v1).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.interpolate import PchipInterpolator

from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic.anatomy import _gauss as _g  # a 2-D Gaussian bump in (u, v)
from facelab.model.synthetic.rows import interp_rows

# Shift from the design frame to model space: the same as version 1 (the face stays where
# version 1's face is, so default cameras frame both alike).
OFFSET = np.array([0.0, 8.0, -69.0])

CENTRE = np.array([0.0, -5.0, -10.0])  # origin of the base's rays (design frame)
Y_BOTTOM = -180.0  # the neck is cut by this plane: the mesh's only boundary
EYE_RADIUS = 12.0  # eyeball radius (mm)
LID_THICKNESS = 1.6  # lid skin in front of the eyeball at the margin (mm)
RECESS = 2.0  # skin inside the lid opening sits this far behind the eyeball's front
EAR_THETA, EAR_V = 1.70, 6.0  # ear centre: azimuth (rad) and height
FACE_U, FACE_V = (-125.0, 125.0), (-118.0, 100.0)  # the face box of the unwrapped design

_N_THETA, _N_PHI = 361, 361
_PHI_MAX = np.deg2rad(172.0)
_DV = 0.5


# The jaw line of the full head (height per |theta| about the design axis): version 1's along
# the mandible body, then a jaw angle (gonion) at theta ~ 1.25 and the ramus rising to the ear
# lobe (version 1's mask ended in front of the ears and rose evenly instead).
_JAW_THETA = np.array([0.0, 0.25, 0.45, 0.62, 0.8, 1.0, 1.15, 1.27, 1.38, 1.48, 1.6, 1.8])
_JAW_V = np.array([-97.0, -95.0, -90.0, -84.0, -78.0, -73.0, -70.0, -64.0, -44.0, -20.0, 2.0,
                   10.0])
_jaw_curve = PchipInterpolator(_JAW_THETA, _JAW_V)


def jaw_line(theta):
    """Height of the mandible's lower border (and the ramus's back edge) at azimuth theta."""
    return _jaw_curve(np.minimum(np.abs(theta), 1.8))


def _smin(a, b, k):
    """Polynomial smooth minimum (the smooth union of two implicit solids), blend width k."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k * h * (1.0 - h)


def _smax(a, b, k):
    return -_smin(-a, -b, k)


def head_field(x, y, z):
    """Implicit function of the base solid (< 0 inside; about a distance in mm near the surface)."""
    cran = (np.sqrt((x / 73.0) ** 2 + ((y - 30.0) / 100.0) ** 2 + ((z + 8.0) / 98.0) ** 2)
            - 1.0) * 85.0
    theta = np.arctan2(x, z)
    face = np.hypot(x, z) - A._cross_section_radius(theta, np.clip(y, -250.0, 105.0))
    face = _smax(face, jaw_line(theta) - y, 6.0)
    face = _smax(face, y - 78.0, 16.0)  # the forehead blends into the cranium
    neck = (np.sqrt((x / 57.0) ** 2 + ((z + 22.0) / 52.0) ** 2) - 1.0) * 54.0
    neck = _smax(_smax(neck, y + 25.0, 10.0), -270.0 - y, 5.0)
    return _smin(_smin(cran, face, 8.0), neck, 14.0)


def ray_direction(theta, phi):
    """Unit ray directions (..., 3) for azimuth theta (from +z) and polar angle phi (from +y)."""
    sp = np.sin(phi)
    return np.stack([sp * np.sin(theta), np.cos(phi), sp * np.cos(theta)], axis=-1)


def _outermost_root(omega, r_max=290.0, step=8.0, iters=24):
    """Distance along each ray from CENTRE to the outermost surface of ``head_field``."""
    n = omega.shape[0]
    lo = np.zeros(n)
    hi = np.full(n, r_max)
    found = np.zeros(n, bool)
    r = r_max
    while r > 0 and not found.all():
        p = CENTRE + (r - step) * omega
        inside = head_field(p[:, 0], p[:, 1], p[:, 2]) < 0.0
        new = inside & ~found
        lo[new], hi[new] = r - step, r
        found |= new
        r -= step
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        p = CENTRE + mid[:, None] * omega
        inside = head_field(p[:, 0], p[:, 1], p[:, 2]) < 0.0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


@functools.cache
def tables():
    """The base's lookup tables (computed once per process, ~1 s).

    Returns a dict: ``theta`` (T,), ``phi`` (P,), ``rho`` (T, P) ray lengths, ``s`` (T, P) arc
    length from the crown along each meridian, ``v_ref``, ``rows`` (R,) row heights v and
    ``arc`` (R, T) the arc length u along each row at each theta.
    """
    th = np.linspace(0.0, np.pi, _N_THETA)
    ph = np.linspace(0.0, _PHI_MAX, _N_PHI)
    tt, pp = np.meshgrid(th, ph, indexing="ij")
    omega = ray_direction(tt, pp).reshape(-1, 3)
    rho = _outermost_root(omega).reshape(_N_THETA, _N_PHI)
    pts = CENTRE + rho[..., None] * ray_direction(tt, pp)  # (T, P, 3)
    seg = np.linalg.norm(np.diff(pts, axis=1), axis=-1)
    s = np.concatenate([np.zeros((_N_THETA, 1)), np.cumsum(seg, axis=1)], axis=1)  # (T, P)
    # V_REF: v equals y at the eye height on the front meridian
    y_front = pts[0, :, 1]
    k = int(np.argmax(y_front < A.EYE_V))
    a = (y_front[k - 1] - A.EYE_V) / (y_front[k - 1] - y_front[k])
    v_ref = float(A.EYE_V + s[0, k - 1] + a * (s[0, k] - s[0, k - 1]))
    v_lo = v_ref - float(s[:, -1].min()) + 1.0
    rows = np.arange(v_ref, v_lo, -_DV)[::-1]  # increasing
    rows[-1] = v_ref
    row_pts = np.empty((len(rows), _N_THETA, 3))
    for i in range(_N_THETA):
        phi_i = np.interp(v_ref - rows, s[i], ph)
        rho_i = np.interp(phi_i, ph, rho[i])
        row_pts[:, i] = CENTRE + rho_i[:, None] * ray_direction(th[i], phi_i)
    seg = np.linalg.norm(np.diff(row_pts, axis=1), axis=-1)
    arc = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(seg, axis=1)], axis=1)
    return {"theta": th, "phi": ph, "rho": rho, "s": s, "v_ref": v_ref, "rows": rows,
            "arc": arc}


def v_ref() -> float:
    """The crown's v (the pole of the unwrapping)."""
    return tables()["v_ref"]


def _row_interp(v):
    t = tables()
    rows = t["rows"]
    pos = np.clip((np.asarray(v, float) - rows[0]) / _DV, 0.0, len(rows) - 1.000001)
    j = np.floor(pos).astype(np.int64)
    return j, pos - j


def half_perimeter(v):
    """Arc length from the front to the back midline along row v (the seam at |u| = this)."""
    t = tables()
    j, a = _row_interp(v)
    return (1.0 - a) * t["arc"][j, -1] + a * t["arc"][j + 1, -1]


def theta_of(u, v):
    """Azimuth theta of the base point at arc length ``u`` along row ``v`` (arrays)."""
    t = tables()
    u, v = np.broadcast_arrays(np.asarray(u, float), np.asarray(v, float))
    j, a = _row_interp(v)
    return np.sign(u) * interp_rows(np.abs(u), j, a, t["arc"], t["theta"])


def u_of_theta(theta, v):
    """Arc length u of the base point at azimuth ``theta`` on row ``v`` (inverse of theta_of)."""
    t = tables()
    theta, v = np.broadcast_arrays(np.asarray(theta, float), np.asarray(v, float))
    j, a = _row_interp(v)
    return np.sign(theta) * interp_rows(np.abs(theta), j, a, t["theta"], t["arc"])


def phi_of(theta, v):
    """Polar angle phi of the base point at (theta, v)."""
    t = tables()
    theta, v = np.broadcast_arrays(np.asarray(theta, float), np.asarray(v, float))
    at = np.abs(theta)
    pos = at / np.pi * (_N_THETA - 1)
    i = np.minimum(np.floor(pos).astype(np.int64), _N_THETA - 2)
    b = pos - i
    s_target = t["v_ref"] - v
    out = np.empty(at.shape)
    for col in np.unique(i):
        sel = i == col
        p0 = np.interp(s_target[sel], t["s"][col], t["phi"])
        p1 = np.interp(s_target[sel], t["s"][col + 1], t["phi"])
        out[sel] = (1.0 - b[sel]) * p0 + b[sel] * p1
    return out


def base_rho(theta, phi):
    """Bilinear lookup of the base's ray length rho(theta, phi)."""
    t = tables()
    at = np.abs(np.asarray(theta, float))
    pt = np.clip((np.asarray(phi, float)) / _PHI_MAX * (_N_PHI - 1), 0.0, _N_PHI - 1.000001)
    ptt = np.clip(at / np.pi * (_N_THETA - 1), 0.0, _N_THETA - 1.000001)
    i, k = np.floor(ptt).astype(np.int64), np.floor(pt).astype(np.int64)
    a, b = ptt - i, pt - k
    r = t["rho"]
    return ((1 - a) * (1 - b) * r[i, k] + a * (1 - b) * r[i + 1, k] + (1 - a) * b * r[i, k + 1]
            + a * b * r[i + 1, k + 1])


def base_frame(u, v):
    """(theta, phi, omega (..., 3), rho) of the base at unwrapped (u, v)."""
    theta = theta_of(u, v)
    phi = phi_of(theta, v)
    return theta, phi, ray_direction(theta, phi), base_rho(theta, phi)


def base_design_point(u, v):
    """(..., 3) base points in the design frame."""
    _, _, omega, rho = base_frame(u, v)
    return CENTRE + rho[..., None] * omega


def v_bottom(theta):
    """The row v where meridian ``theta`` meets the neck cut y = Y_BOTTOM."""
    t = tables()
    theta = np.abs(np.asarray(theta, float))
    out = np.empty(theta.shape)
    ys = CENTRE[1] + t["rho"] * np.cos(t["phi"])[None, :]  # (T, P) heights, decreasing in phi
    s_cut = np.array([np.interp(-Y_BOTTOM, -ys[i], t["s"][i]) for i in range(_N_THETA)])
    out[...] = t["v_ref"] - np.interp(theta, t["theta"], s_cut)
    return out


# ------------------------------------------------------------------- warps / UV
_C_U, _X0_U, _W_U = 3.5, 72.0, 14.0  # g: slope 1 on the face, 1/3.5 beyond |u| ~ 72
_C_V, _V_HI, _V_LO, _W_V = 3.0, 96.0, -112.0, 10.0  # h: slope 1 for v in [-112, 96]


def _logcosh(x):
    return np.abs(x) + np.log1p(np.exp(-2.0 * np.abs(x))) - np.log(2.0)


def warp_u(u):
    """g(u): the odd, monotone horizontal warp (mm -> warped mm)."""
    u = np.asarray(u, float)
    x = np.abs(u)
    k = 1.0 - 1.0 / _C_U
    g = x / _C_U + k * (0.5 * x - 0.5 * _W_U * (_logcosh((x - _X0_U) / _W_U)
                                                 - _logcosh(-_X0_U / _W_U)))
    return np.sign(u) * g


def warp_v(v):
    """h(v): the monotone vertical warp (mm -> warped mm), slope 1 on the face."""
    v = np.asarray(v, float)
    k = 1.0 - 1.0 / _C_V

    def ramp(x):  # integral of 0.5 (1 + tanh(x / w))
        return 0.5 * x + 0.5 * _W_V * (_logcosh(x / _W_V) - _logcosh(0.0))

    return v / _C_V + k * (ramp(v - _V_LO) - ramp(v - _V_HI))


def _inverse(fn, y, lo, hi):
    grid = np.linspace(lo, hi, 20001)
    return np.interp(y, fn(grid), grid)


def unwarp_u(g):
    return _inverse(warp_u, g, -400.0, 400.0)


def unwarp_v(h):
    return _inverse(warp_v, h, -450.0, 350.0)


# ------------------------------------------------------------------ the relief
@functools.cache
def ear_u() -> float:
    """|u| of the ear centre."""
    return float(u_of_theta(np.array(EAR_THETA), np.array(EAR_V)))


def ear_coords(u, v):
    """Ear-local coordinates (a to the back, b up; the ear outline is about a^2 + b^2 = 1)."""
    a = (np.abs(u) - ear_u()) / 16.0
    b = (np.asarray(v, float) - EAR_V) / 31.0
    b = np.where(b < 0.0, 1.12 * b, b)
    return a, b


def ear_relief(u, v):
    """The outer ear as a relief (mm along the ray): helix rim, antihelix, concha, tragus, lobe."""
    a, b = ear_coords(u, v)
    e = np.sqrt(a**2 + b**2)
    body = 1.0 - A._smoothstep(0.82, 1.06, e)
    flare = 5.0 + 9.0 * A._smoothstep(-1.0, 1.0, a)  # attached at the front, standing out behind
    helix = 2.6 * np.exp(-0.5 * ((e - 0.86) / 0.07) ** 2) * A._smoothstep(-0.9, -0.3, a + b)
    antihelix = 1.6 * np.exp(-0.5 * ((e - 0.56) / 0.08) ** 2) * A._smoothstep(-0.4, 0.1, a)
    concha = -6.5 * _g(a, b, -0.12, -0.08, 0.3, 0.28)
    tragus = 2.2 * _g(a, b, -0.78, -0.1, 0.1, 0.14)
    return body * (flare + helix + antihelix + concha) + tragus


def eye_socket(u, v):
    """The orbit's depression (mm, negative), under the lids laid over the eyeball."""
    return -10.0 * _g(np.abs(u), v, A.EYE_U, A.EYE_V + 1.0, 15.0, 10.0)


def relief(u, v):
    """Height (mm along the ray) of everything but the eyelids above the base."""
    u = np.asarray(u, float)
    v = np.asarray(v, float)
    return (A._nose_relief(u, v) + A._mouth_relief(u, v) + A._cheek_relief(u, v)
            + ear_relief(u, v) + eye_socket(u, v))


@functools.cache
def eye_centres() -> np.ndarray:
    """(2, 3) eyeball centres in the design frame: row 0 the subject's right (-x), 1 the left.

    The cornea's apex sits 1 mm behind version 1's eye surface (the base point at the eye
    centre), gazing along +z.
    """
    out = []
    for side in (-1.0, 1.0):
        p = base_design_point(np.array(side * A.EYE_U), np.array(A.EYE_V + 0.6))
        out.append(p + np.array([0.0, 0.0, -1.0 - EYE_RADIUS]))
    return np.stack(out)


def _sphere_front(omega, side_index):
    """Ray length to the eyeball's front along ``omega`` (the silhouette value beyond it)."""
    c = eye_centres()[side_index] - CENTRE
    d = omega @ c  # (...,) distance along the ray to the closest approach
    b2 = np.maximum(c @ c - d**2, 0.0)
    return d + np.sqrt(np.maximum(EYE_RADIUS**2 - b2, 0.0))


def skin_points(u, v, openness=(1.0, 1.0), recess: bool = True):
    """Design-frame points (..., 3) of the head's skin at unwrapped (u, v).

    openness: (right, left) eye openness in [0, 1] (0 closes the lid onto the lower lid).
    recess: False lays every lid-opening vertex on the lid skin (a closed eye).
    """
    u = np.asarray(u, float)
    v = np.asarray(v, float)
    _, _, omega, rho = base_frame(u, v)
    rho = rho + relief(u, v)
    o = np.where(u < 0, openness[0], openness[1])
    up, low = A.lid_curves(u, o)
    near = np.abs(A.eye_local(u)) < 1.6
    inside = (np.minimum(up - v, v - low) > 1e-9) & (np.abs(A.eye_local(u)) < 1.0)
    front = np.where(u < 0, _sphere_front(omega, 0), _sphere_front(omega, 1))
    lid = _smax(rho, front + LID_THICKNESS, 1.5)
    rho = np.where(near & (v > A.EYE_V - 20.0) & (v < A.EYE_V + 20.0), lid, rho)
    if recess:
        rho = np.where(inside, np.minimum(rho, front - RECESS), rho)
    return CENTRE + rho[..., None] * omega
