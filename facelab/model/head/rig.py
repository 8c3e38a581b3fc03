"""Annotations of the full head: iBUG-68 landmarks, face mask and the FLAME-like skeleton.

* **Landmarks**: the vertices nearest designed points in the unwrapped ``(u, v)`` coordinates,
  the subject's left side as mirror images of the right. Eyes, nostrils and lips are version
  1's anatomical positions (several are snapped lattice vertices). The jaw contour (0-8), the
  brows (17-21) and the nose (27-33) are ``SURVEYED_UV``: where facelab's MediaPipe mapping
  (:mod:`facelab.landmarks`) puts those points on the mean head, measured once by
  ``benchmarks/head_landmark_survey.py`` (the contour on the frontal view, brows and nose
  over yaws 0 to +-40 degrees in the views where the point faces the camera), made
  mirror-symmetric. This is a definitional offset, kept
  visible rather than hidden: the anatomical guesses differed from the detector's convention
  by up to 20 mm on the upper jaw contour (MediaPipe's face oval starts at the temple, at
  brow height, and lies on the cheek in front of the frontal silhouette), 11 mm on the nose
  ridge (its nose points sit lower: the tip point on the lobule's lower half) and 4 mm on the
  brows (the upper edge). The contour's points are fixed vertices here as in MediaPipe's mesh,
  so on a frontal face they lie a little inside the silhouette where iBUG's annotators put
  the contour; ``tests/test_head_realism.py`` reports the contour's error separately.
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
SURVEYED_UV = {  # iBUG index -> (u, v), subject's right; measured by head_landmark_survey.py
    0: (-99.9, 30.4), 1: (-104.8, 15.9), 2: (-97.9, -21.7), 3: (-81.8, -43.5),
    4: (-64.6, -59.3), 5: (-52.1, -71.4), 6: (-30.8, -88.4), 7: (-11.2, -95.8), 8: (0.0, -93.3),
    17: (-60.2, 39.7), 18: (-51.1, 41.5), 19: (-38.2, 41.9), 20: (-25.6, 40.9),
    21: (-13.2, 38.1), 27: (0.0, 20.3), 28: (0.0, 5.2), 29: (0.0, -7.9), 30: (0.0, -21.1),
    31: (-14.0, -26.0), 32: (-5.2, -29.9), 33: (0.0, -29.2),
}


def landmarks(shell: M.Shell) -> np.ndarray:
    """(68,) int64 vertex indices of the iBUG-68 points."""
    skin = np.nonzero(shell.kind == M.KIND_SKIN)[0]
    pts = ibug.inner_points(shell.kind)
    for i, (x, y) in SURVEYED_UV.items():
        pts[i] = (skin, x, y)
    return ibug.landmark_vertices(shell.u, shell.v, pts, shell.mirror)


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
