"""Annotations of the full head: iBUG-68 landmarks, face mask and the FLAME-like skeleton.

* **Landmarks**: the vertices nearest designed points in the unwrapped ``(u, v)`` coordinates
  (version 1's positions for brows, nose, eyes and lips; several are snapped lattice vertices),
  the subject's left side as mirror images of the right. The jaw contour (0-16) runs in front
  of the ear down the ramus, round the jaw angle and along the mandible to the chin, at equal
  arc length, where MediaPipe's face oval lies on a frontal face.
* **Face mask**: the skin of the front of the face, forehead to the jaw line, ear to ear
  exclusive (photometric losses).
* **Skeleton** (:class:`facelab.model.skinning.Skeleton`, FLAME's tree below the root):
  ``neck`` (the top of the neck; it carries the whole head, fading to the root down the neck),
  ``jaw`` and ``eye_left`` / ``eye_right`` (each eyeball, rigidly) under the neck. Joint
  positions follow the shaped mesh through a regressor (FLAME's ``J(beta)``): the eye joints
  are their eyeball's vertex mean, the neck and jaw least-norm affine combinations of skin
  vertices around them.
"""

from __future__ import annotations

import numpy as np

from facelab.model.head import mesh as M
from facelab.model.head import shape as S
from facelab.model.synthetic import anatomy as A

JOINT_NAMES = ("neck", "jaw", "eye_left", "eye_right")
JOINT_PARENTS = (-1, 0, 0, 0)
NECK_JOINT = np.array([0.0, -60.0, -20.0])  # design frame: top of the neck
JAW_JOINT = np.array([0.0, -10.0, 5.0])  # version 1's jaw joint (between the condyles)
NECK_FADE = (-165.0, -108.0)  # neck weight: 0 at the cut side of this y band, 1 above it
MIRROR_68 = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
     27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
     64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip
# The jaw contour on the subject's right as (theta, v) waypoints: in front of the ear, down the
# ramus, round the jaw angle, then along the mandible (see jaw_contour).
_CONTOUR_TOP = ((1.47, 16.0), (1.43, -6.0), (1.37, -30.0), (1.29, -52.0))


def jaw_contour() -> np.ndarray:
    """(9, 2) unwrapped (u, v) of landmarks 0..8 (subject's right, u < 0), equal 3-D arc."""
    th_side = np.array([p[0] for p in _CONTOUR_TOP])
    v_side = np.array([p[1] for p in _CONTOUR_TOP])
    th_jaw = np.linspace(1.24, 0.0, 60)
    v_jaw = S.jaw_line(th_jaw) + 3.0
    th = np.concatenate([th_side, th_jaw])
    v = np.concatenate([v_side, v_jaw])
    # densify along the polyline, measure arc length in 3-D
    tt = np.linspace(0.0, len(th) - 1, 400)
    th_d = np.interp(tt, np.arange(len(th)), th)
    v_d = np.interp(tt, np.arange(len(v)), v)
    u_d = -S.u_of_theta(th_d, v_d)
    p = S.base_design_point(u_d, v_d)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    targets = np.linspace(0.0, arc[-1], 9)
    out = np.stack([np.interp(targets, arc, u_d), np.interp(targets, arc, v_d)], -1)
    out[8, 0] = 0.0
    return out


def _nearest(u, v, cand, pu, pv):
    if abs(pu) < 1e-9:
        cand = cand[u[cand] == 0.0]
    d = np.hypot(u[cand] - pu, v[cand] - pv)
    return int(cand[np.argmin(d)])


def landmarks(shell: M.Shell) -> np.ndarray:
    """(68,) int64 vertex indices of the iBUG-68 points."""
    u, v, kind = shell.u, shell.v, shell.kind
    skin = np.nonzero(kind == M.KIND_SKIN)[0]
    up = np.nonzero(kind == M.KIND_SLIT_UP)[0]
    low = np.nonzero(kind == M.KIND_SLIT_LOW)[0]
    eu_in, eu_out = A.EYE_U - A.EYE_HALF_WIDTH, A.EYE_U + A.EYE_HALF_WIDTH
    lid = lambda x: A.lid_curves(np.array(float(x)))  # noqa: E731
    lip = lambda x: A.lip_borders(np.array(float(x)))  # noqa: E731
    pts = [None] * 68
    contour = jaw_contour()
    for i in range(9):
        pts[i] = (skin, contour[i, 0], contour[i, 1])
    for i, x in enumerate((-56.0, -46.0, -36.0, -26.0, -16.0)):
        pts[17 + i] = (skin, x, float(A.brow_curve(x)) + 1.0)
    for i, y in enumerate((27.0, 15.0, 3.0, A.NOSE_TIP_V + 1.0)):
        pts[27 + i] = (skin, 0.0, y)
    for i, (x, y) in enumerate(((-10.0, -27.0), (-5.0, -29.0), (0.0, -30.5))):
        pts[31 + i] = (skin, x, y)
    eye = [(-eu_out, lid(-eu_out)[1]), (-37.0, lid(-37.0)[0]), (-27.0, lid(-27.0)[0]),
           (-eu_in, lid(-eu_in)[1]), (-27.0, lid(-27.0)[1]), (-37.0, lid(-37.0)[1])]
    for i, (x, y) in enumerate(eye):
        pts[36 + i] = (skin, x, y)
    pts[48] = (skin, -A.MOUTH_HALF_WIDTH, A.MOUTH_V)
    for i, x in enumerate((-15.0, -6.0, 0.0)):
        pts[49 + i] = (skin, x, lip(x)[0])
    for i, x in enumerate((0.0, -6.0, -15.0)):
        pts[57 + i] = (skin, x, lip(x)[1])
    pts[60] = (up, -A.MOUTH_HALF_WIDTH, A.MOUTH_V)
    pts[61], pts[62] = (up, -8.0, A.MOUTH_V), (up, 0.0, A.MOUTH_V)
    pts[66], pts[67] = (low, 0.0, A.MOUTH_V), (low, -8.0, A.MOUTH_V)
    out = np.full(68, -1, dtype=np.int64)
    for i in range(68):
        if pts[i] is not None:
            cand, x, y = pts[i]
            out[i] = _nearest(u, v, cand, x, y)
    for i in range(68):  # the subject's left: mirror images
        if out[i] < 0:
            out[i] = shell.mirror[out[MIRROR_68[i]]]
    return out


def face_mask(shell: M.Shell) -> np.ndarray:
    """(V,) bool: the front of the face (forehead to jaw line, in front of the ears)."""
    u, v = shell.u, shell.v
    skin = shell.kind <= M.KIND_SLIT_LOW
    theta = S.theta_of(u, v)
    y = shell.verts[:, 1]
    return skin & (np.abs(theta) < 1.3) & (v < 92.0) & (y > S.jaw_line(theta) - 1.0)


def _affine_regressor(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-norm weights w (sum 1) with w @ points = target (an affine combination)."""
    a = np.concatenate([points.T, np.ones((1, len(points)))])  # (4, n)
    b = np.concatenate([target, [1.0]])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _jaw_weight(shell: M.Shell) -> np.ndarray:
    """Jaw skinning weight of the shell: version 1's split along the mouth line, faded behind
    the jaw (ears and the back of the head stay) and down the throat."""
    u, v, kind, psi = shell.u, shell.v, shell.kind, shell.psi
    au = np.abs(u)
    line = A.MOUTH_V + 0.55 * np.maximum(au - A.MOUTH_HALF_WIDTH, 0.0)
    width = 0.05 + 8.0 * A._smoothstep(18.0, 42.0, au) + 0.35 * np.maximum(au - 42.0, 0.0)
    w = 0.5 * (1.0 + np.tanh((line - v) / width))
    w = w * (1.0 - A._smoothstep(-25.0, -5.0, v))
    w = w * (1.0 - A._smoothstep(95.0, 125.0, au))
    w = w * A._smoothstep(-128.0, -104.0, shell.verts[:, 1])
    w = np.where(kind == M.KIND_SLIT_UP, 0.0, w)
    w = np.where(kind == M.KIND_SLIT_LOW, 1.0, w)
    w = np.where(kind == M.KIND_POUCH, A._smoothstep(0.3, 0.7, psi / (2.0 * np.pi)), w)
    return w


def skeleton_arrays(shell: M.Shell):
    """(positions (4, 3) design frame, weights (V, 4), regressor (4, V)) in JOINT_NAMES order."""
    V = len(shell.verts)
    kind, y = shell.kind, shell.verts[:, 1]
    neck = A._smoothstep(NECK_FADE[0], NECK_FADE[1], y)
    jaw = _jaw_weight(shell)
    shell_part = kind <= M.KIND_POUCH
    w = np.zeros((V, 4))
    w[:, 1] = np.where(shell_part, jaw * neck, 0.0)
    w[:, 0] = np.where(shell_part, neck - w[:, 1], 0.0)
    w[kind == M.KIND_TEETH_UP, 0] = 1.0
    w[kind == M.KIND_TEETH_LOW, 1] = 1.0
    eye_l, eye_r = kind == M.KIND_EYE_LEFT, kind == M.KIND_EYE_RIGHT
    w[eye_l, 2] = 1.0
    w[eye_r, 3] = 1.0
    reg = np.zeros((4, V))
    reg[2, eye_l] = 1.0 / eye_l.sum()
    reg[3, eye_r] = 1.0 / eye_r.sum()
    skin = np.nonzero(kind == M.KIND_SKIN)[0]
    band = skin[np.abs(y[skin] - NECK_JOINT[1]) < 6.0]
    reg[0, band] = _affine_regressor(shell.verts[band], NECK_JOINT)
    theta = S.theta_of(shell.u[skin], shell.v[skin])
    sel = skin[(np.abs(y[skin] - JAW_JOINT[1]) < 8.0) & (np.abs(theta) > 1.2)
               & (np.abs(theta) < 1.5)]
    reg[1, sel] = _affine_regressor(shell.verts[sel], JAW_JOINT)
    positions = reg @ shell.verts
    return positions, w, reg
