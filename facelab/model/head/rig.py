"""Annotations of the full head: iBUG-68 landmarks, face mask and the FLAME-like skeleton.

* **Landmarks**: MediaPipe's convention (facelab's 468 -> 68 mapping, :mod:`facelab.landmarks`)
  as fixed vertices of the head: ``SURVEYED_UV`` holds, for every point of the subject's right
  side and the midline, the unwrapped ``(u, v)`` of the vertex whose projections agree best
  with the detector over 88 renders (8 heads, yaws 0 to +-45 degrees), measured by
  ``benchmarks/head_landmark_survey.py``; at any resolution a landmark is the vertex nearest
  its point (inner lips on the mouth slit's edges), the left side the mirror images. MediaPipe
  predicts every point, hidden or not, from its face template, and that template is deeper than
  this head where it matters: its face oval lies 8-26 mm behind the head's surface in its own
  depth output (eyes aligned), its brows 6-10 mm and its nose tip 8 mm in front. No surface
  vertex follows such a point at every yaw, so the survey picks the best compromise over the
  views: the contour sits further back on the cheek than on the frontal silhouette (0-5 at
  |u| 83-129 mm), the eye corners 2-4 mm off the lid margins' corners, the nose
  tip point on the lobule's lower half. A silhouette-following contour (iBUG's annotation of
  photos) disagrees with MediaPipe more (``tests/test_head_realism.py``).
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
           "SURVEYED_UV", "face_mask", "landmarks", "skeleton_arrays"]

JOINT_NAMES = ("neck", "jaw", "eye_left", "eye_right")
JOINT_PARENTS = (-1, 0, 0, 0)
NECK_JOINT = np.array([0.0, -60.0, -20.0])  # design frame: top of the neck
JAW_JOINT = np.array([0.0, -10.0, 5.0])  # version 1's jaw joint (between the condyles)
NECK_FADE = (-165.0, -108.0)  # neck weight: 0 at the cut side of this y band, 1 above it
SURVEYED_UV = {  # iBUG index -> (u, v), subject's right and midline; head_landmark_survey.py
    0: (-123.8, 40.1), 1: (-128.7, 23.2), 2: (-118.9, -10.8), 3: (-109.2, -30.2), 4: (-95.0, -52.0),
    5: (-83.0, -73.8), 6: (-40.7, -98.3), 7: (-14.0, -95.8), 8: (0.0, -95.8), 17: (-68.0, 42.6),
    18: (-53.5, 45.0), 19: (-40.7, 42.6), 20: (-26.6, 42.6), 21: (-14.0, 40.1), 27: (0.0, 20.7),
    28: (0.0, 6.2), 29: (0.0, -8.4), 30: (0.0, -18.1), 31: (-15.4, -25.3), 32: (-7.0, -25.3),
    33: (0.0, -22.9), 36: (-50.6, 25.6), 37: (-42.1, 25.8), 38: (-28.0, 25.6), 39: (-18.2, 18.3),
    40: (-26.6, 18.8), 41: (-39.2, 15.9), 48: (-25.0, -52.0), 49: (-18.2, -44.7), 50: (-5.6, -42.7),
    51: (0.0, -42.3), 57: (0.0, -56.8), 58: (-7.0, -59.3), 59: (-19.6, -56.9), 60: (-22.4, -52.0),
    61: (-11.2, -52.0), 62: (0.0, -52.0), 66: (0.0, -52.0), 67: (-11.2, -52.0),
}
UPPER_SLIT, LOWER_SLIT = (60, 61, 62, 63, 64), (65, 66, 67)  # inner lips on the slit's edges


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
