"""Annotations of the full head: iBUG-68 landmarks, face mask and the FLAME-like skeleton.

* **Landmarks**: MediaPipe's convention (facelab's 468 -> 68 mapping, :mod:`facelab.landmarks`)
  as a landmark embedding: each point is an affine combination of 4 vertices
  (``MorphableModel.landmark_vertices`` / ``landmark_weights``), so it may lie off the surface
  and still follows the mesh through identity, expression and pose (FLAME's landmark embedding,
  a joint regressor). MediaPipe predicts every point, hidden or not, from its face template,
  and that template is deeper than this head where it matters: its face oval lies 8-26 mm
  behind the head's surface in its own depth output (eyes aligned), its brows 6-10 mm and its
  nose tip 8 mm in front, its mouth corners 9 mm behind; at yaw the 2-D offsets are those
  depths times sin(yaw), so no surface vertex follows such a point at every yaw.
  ``SURVEYED_UV`` holds, for every point of the subject's right side and the midline, the
  unwrapped ``(u, v)`` of the surface vertex whose projections agree best with the detector
  (the anchor, ``model.landmarks``: the dominant vertex, for viewers and exporters);
  ``LANDMARK_EMBEDDING`` the fitted 3-D point on the mean head (design frame) and the ``(kind,
  u, v)`` of the 3 other support vertices, chosen greedily and fitted by least squares to the
  detections over all survey renders. Both are measured by ``benchmarks/head_landmark_survey.py``
  (40 heads x 11 yaws 0 to +-45 degrees, seed 12345); at any resolution the support vertices
  are the nearest to their points and the weights solve ``sum_k w_k X_k = point``,
  ``sum_k w_k = 1`` on the mean head (:func:`landmark_embedding`); the left side mirrors the right.
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
from facelab.model.synthetic import ibug
from facelab.model.synthetic.ibug import MIRROR_68
from facelab.model.synthetic.mouth import jaw_weights

__all__ = ["JAW_JOINT", "JOINT_NAMES", "JOINT_PARENTS", "MIRROR_68", "NECK_FADE", "NECK_JOINT",
           "LANDMARK_EMBEDDING", "SURVEYED_UV", "face_mask", "landmark_embedding", "landmarks",
           "skeleton_arrays"]

JOINT_NAMES = ("neck", "jaw", "eye_left", "eye_right")
JOINT_PARENTS = (-1, 0, 0, 0)
NECK_JOINT = np.array([0.0, -60.0, -20.0])  # design frame: top of the neck
JAW_JOINT = np.array([0.0, -10.0, 5.0])  # version 1's jaw joint (between the condyles)
NECK_FADE = (-165.0, -108.0)  # neck weight: 0 at the cut side of this y band, 1 above it
SURVEYED_UV = {  # iBUG index -> (u, v), subject's right and midline; head_landmark_survey.py
    0: (-123.78, 35.29), 1: (-123.78, 20.74), 2: (-123.78, -13.21), 3: (-109.16, -35.03),
    4: (-90.65, -49.58), 5: (-82.98, -78.68), 6: (-40.65, -98.28), 7: (-12.60, -93.30),
    8: (0.00, -95.77), 17: (-68.04, 42.56), 18: (-53.54, 44.99), 19: (-40.65, 42.56),
    20: (-26.60, 42.56), 21: (-12.60, 37.71), 27: (0.00, 20.74), 28: (0.00, 6.19),
    29: (0.00, -8.36), 30: (0.00, -18.06), 31: (-15.40, -25.33), 32: (-7.00, -25.33),
    33: (0.00, -22.90), 36: (-50.63, 25.59), 37: (-42.06, 25.77), 38: (-29.41, 27.08),
    39: (-18.20, 18.31), 40: (-26.60, 18.80), 41: (-39.24, 20.74), 48: (-25.00, -52.00),
    49: (-18.20, -44.73), 50: (-5.60, -42.69), 51: (0.00, -42.30), 57: (0.00, -56.85),
    58: (-7.00, -59.27), 59: (-19.60, -56.89), 60: (-22.40, -52.00), 61: (-11.20, -52.00),
    62: (0.00, -52.00), 66: (0.00, -52.00), 67: (-11.20, -52.00),
}
LANDMARK_EMBEDDING = {  # iBUG -> ((x, y, z) mm design frame, ((kind, u, v), ...))
    0: ((-76.485, 16.713, 18.275),
        ((0, -148.27, -1.08), (0, -138.47, 3.77), (0, -114.01, 54.68))),
    1: ((-75.736, 1.421, 15.547),
        ((0, -148.27, -44.73), (0, -138.47, -15.63), (0, -158.07, -15.63))),
    2: ((-72.931, -31.589, 19.873),
        ((0, -99.61, -5.93), (0, -162.97, -18.06), (0, -192.36, -27.75))),
    3: ((-67.645, -49.536, 27.498),
        ((0, -148.27, -35.03), (0, -143.37, -37.45), (0, -172.76, -18.06))),
    4: ((-60.304, -63.247, 39.288),
        ((0, -123.78, -76.25), (0, -42.06, -52.00), (0, -114.01, -47.15))),
    5: ((-51.492, -74.200, 52.527),
        ((0, -53.54, -52.00), (0, -128.67, -103.47), (0, -99.61, -109.30))),
    6: ((-32.647, -86.997, 77.887),
        ((1, -19.60, -52.00), (0, -19.60, -47.20), (0, -95.01, -56.85))),
    7: ((-11.939, -94.310, 92.840),
        ((1, -22.40, -52.00), (0, -14.00, -85.96), (0, -18.20, -54.42))),
    8: ((0.000, -95.311, 95.998),
        ((0, 0.00, -56.85), (0, 0.00, -76.25), (1, 0.00, -52.00))),
    17: ((-58.014, 33.377, 67.391),
        ((0, -21.00, 23.16), (0, -33.62, 25.59), (0, -114.01, 59.54))),
    18: ((-50.805, 39.015, 78.270),
        ((0, -7.00, 61.96), (0, -47.75, 44.99), (0, -90.65, 47.41))),
    19: ((-40.489, 41.587, 87.687),
        ((0, -22.40, 25.48), (0, -28.01, 25.59), (0, -15.40, -1.08))),
    20: ((-27.926, 41.268, 95.696),
        ((0, -1.40, 86.69), (0, -15.40, 61.96), (0, -29.41, 37.71))),
    21: ((-14.015, 39.904, 101.137),
        ((0, 22.40, 25.48), (0, 4.20, 28.01), (0, -42.06, 59.54))),
    27: ((0.000, 22.474, 102.591),
        ((0, 0.00, 30.44), (0, 0.00, 64.39), (0, 0.00, 40.14))),
    28: ((0.000, 6.065, 114.004),
        ((0, 0.00, -13.21), (0, 0.00, 35.29), (0, 0.00, 49.83))),
    29: ((0.000, -8.039, 126.221),
        ((0, 0.00, -27.75), (0, 0.00, -47.15), (1, 0.00, -52.00))),
    30: ((0.000, -23.551, 130.052),
        ((0, 0.00, 15.89), (0, 0.00, -22.90), (0, 0.00, -47.15))),
    31: ((-17.246, -28.155, 105.650),
        ((2, -22.40, -52.00), (0, -4.20, 3.77), (0, 2.80, 15.89))),
    32: ((-7.517, -30.093, 112.382),
        ((0, -15.40, -10.78), (0, -22.40, 1.34), (0, -8.40, -22.90))),
    33: ((0.000, -29.999, 114.140),
        ((0, 0.00, -56.85), (0, 0.00, -8.36), (0, 0.00, -47.15))),
    36: ((-46.036, 19.852, 76.775),
        ((0, -95.01, 15.89), (0, -40.65, 28.01), (0, -47.75, 25.59))),
    37: ((-38.866, 23.857, 82.159),
        ((0, -22.40, 25.48), (0, -46.32, 28.01), (0, -18.20, 23.16))),
    38: ((-27.518, 24.360, 84.243),
        ((0, -22.40, 20.74), (0, -40.65, 37.71), (0, -28.01, 25.59))),
    39: ((-17.257, 18.002, 87.727),
        ((0, -11.20, -22.90), (0, -15.40, 3.77), (0, -21.00, 28.01))),
    40: ((-25.729, 15.796, 86.089),
        ((0, -30.81, 15.89), (0, -21.00, 23.16), (0, 7.00, 32.86))),
    41: ((-36.588, 16.026, 83.758),
        ((0, -37.83, 13.47), (0, -42.06, 30.44), (0, -46.32, 52.26))),
    48: ((-26.764, -53.203, 93.297),
        ((0, -69.99, -27.75), (0, -5.60, -56.85), (1, -22.40, -52.00))),
    49: ((-20.135, -48.556, 102.089),
        ((0, -21.00, -54.42), (0, -14.00, -22.90), (0, -29.41, -88.40))),
    50: ((-7.530, -43.956, 113.073),
        ((0, -2.80, -18.06), (0, 9.80, -1.08), (0, -8.40, -61.14))),
    51: ((0.000, -44.734, 115.204),
        ((0, 0.00, -18.06), (1, 0.00, -52.00), (0, 0.00, -56.85))),
    57: ((0.000, -66.337, 111.295),
        ((2, 0.00, -52.00), (0, 0.00, -18.06), (0, 0.00, -81.10))),
    58: ((-8.486, -65.701, 108.912),
        ((0, -8.40, -61.14), (0, 33.62, -37.45), (0, 29.41, -39.88))),
    59: ((-20.672, -59.525, 100.266),
        ((0, -15.40, -49.58), (0, -23.80, -64.12), (0, -2.80, -18.06))),
    60: ((-23.133, -52.691, 93.275),
        ((0, -25.00, -52.00), (0, 22.40, -37.45), (0, -42.06, -52.00))),
    61: ((-10.956, -51.187, 103.309),
        ((0, -4.20, -25.33), (0, -16.80, -71.40), (0, -14.00, -61.70))),
    62: ((0.000, -51.291, 109.421),
        ((0, 0.00, -18.06), (0, 0.00, -76.25), (0, 0.00, -56.85))),
    66: ((0.000, -56.552, 110.510),
        ((0, 0.00, -56.85), (0, 0.00, -18.06), (0, 0.00, -76.25))),
    67: ((-11.907, -55.627, 104.131),
        ((0, -5.60, -47.15), (0, -15.40, -54.42), (0, 4.20, -39.88))),
}
UPPER_SLIT, LOWER_SLIT = (60, 61, 62, 63, 64), (65, 66, 67)  # inner lips on the slit's edges
MAX_LANDMARK_WEIGHT = 4.0  # the survey's fit stays below it (ridge-regularised)


def landmarks(shell: M.Shell) -> np.ndarray:
    """(68,) int64 vertex indices of the iBUG-68 points: the vertex nearest each
    ``SURVEYED_UV`` point (a skin vertex; the upper or lower edge of the mouth slit for the inner
    lips; midline points on the midline), taken in index order and distinct (a point whose
    nearest vertex is taken gets the nearest free one: on a coarse mesh the nose tip 30 and the
    subnasale 33 can share a midline vertex), the subject's left as mirror images."""
    u, v, mirror = shell.u, shell.v, shell.mirror
    out = np.full(68, -1, dtype=np.int64)
    used = np.zeros(len(u), bool)
    for i, (x, y) in SURVEYED_UV.items():
        k = (M.KIND_SLIT_UP if i in UPPER_SLIT else M.KIND_SLIT_LOW if i in LOWER_SLIT
             else M.KIND_SKIN)
        cand = np.nonzero((shell.kind == k) & ~used)[0]
        out[i] = ibug.nearest_vertex(u, v, cand, x, y)
        used[[out[i], mirror[out[i]]]] = True
    for i in range(68):
        if out[i] < 0:
            out[i] = mirror[out[MIRROR_68[i]]]
    return out


def _support_vertex(shell: M.Shell, kind: int, u: float, v: float, midline: bool) -> int:
    """The vertex of this kind nearest (u, v) (on the midline for a midline landmark)."""
    cand = np.nonzero(shell.kind == kind)[0]
    if midline:
        cand = cand[shell.mirror[cand] == cand]
    return int(cand[np.argmin(np.hypot(shell.u[cand] - u, shell.v[cand] - v))])


def landmark_embedding(shell: M.Shell, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The landmark embedding: ((68, K) int64 vertices, (68, K) float64 weights, rows sum 1).

    Landmark ``i`` is the point ``LANDMARK_EMBEDDING[i][0]`` (design frame, mean head) written
    as an affine combination of K vertices: its surveyed vertex ``lm[i]`` first, then the
    vertices nearest the table's support points (u, v of the given kind). The weights solve
    ``sum_k w_k X_k = point, sum_k w_k = 1`` (exact at the survey's resolution; where another
    resolution's snapped support is nearly flat, ridge-damped until every ``|w_k| <=
    MAX_LANDMARK_WEIGHT``, moving the point by at most ~1 mm), so on the mean head the point
    is the same at every resolution (within ~1 mm), and it follows the mesh through identity,
    expression and pose. The subject's left side mirrors the right.
    """
    if not LANDMARK_EMBEDDING:  # no table (while surveying afresh): one-hot on the anchors
        return lm[:, None].astype(np.int64), np.ones((68, 1))
    K = 1 + max(len(sup) for _, sup in LANDMARK_EMBEDDING.values())
    idx = np.zeros((68, K), dtype=np.int64)
    w = np.zeros((68, K))
    for i, (point, support) in LANDMARK_EMBEDDING.items():
        midline = int(MIRROR_68[i]) == i
        verts = [int(lm[i])] + [_support_vertex(shell, k, u, v, midline) for k, u, v in support]
        verts += [verts[0]] * (K - len(verts))  # pad with the anchor (weight 0)
        p = shell.verts[verts]  # (K, 3)
        # w_0 = 1 - sum_k w_k exactly; the rest by least squares, ridge-damped just enough to
        # keep every |w| <= MAX_LANDMARK_WEIGHT where the snapped support is nearly flat
        a, b = (p[1:] - p[0]).T, np.asarray(point, float) - p[0]
        for ridge in (0.0, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0):
            c = np.linalg.lstsq(a.T @ a + ridge * np.eye(K - 1), a.T @ b, rcond=None)[0]
            sol = np.concatenate([[1.0 - c.sum()], c])
            if np.abs(sol).max() <= MAX_LANDMARK_WEIGHT:
                break
        idx[i], w[i] = verts, sol
        m = int(MIRROR_68[i])
        idx[m], w[m] = shell.mirror[verts], sol
    return idx, w


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
    """Jaw skinning weight of the shell: version 1's split along the mouth line
    (:func:`facelab.model.synthetic.mouth.jaw_weights`), faded behind the jaw (ears and the
    back of the head stay) and down the throat."""
    au, y = np.abs(shell.u), shell.verts[:, 1]

    def fade(w):
        w = w * (1.0 - A._smoothstep(95.0, 125.0, au))
        return w * A._smoothstep(-128.0, -104.0, y)

    return jaw_weights(shell.u, shell.v, shell.kind, shell.psi, fade)


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
