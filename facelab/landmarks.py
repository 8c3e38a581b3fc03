"""Offline 68-point face landmarks from MediaPipe Face Mesh (the ``facelab[landmarks]`` extra).

``mediapipe==0.10.14`` is the newest release whose wheel still bundles the face-detection and
face-mesh TFLite models (later releases download ``.task`` files at run time), so
:func:`detect` works offline on the CPU. Face Mesh returns 468 3D points; facelab's models
and metrics use the 68-point iBUG convention (300-W), so :data:`MEDIAPIPE_TO_IBUG68` picks one
mesh vertex per iBUG point.

How the 468 -> 68 table was derived (facelab's own derivation, checked by eye on the
astronaut sample): the inner points come from MediaPipe's named contours
(``FACEMESH_LEFT_EYE`` / ``RIGHT_EYE`` / ``*_EYEBROW`` / ``LIPS`` in
``mediapipe.python.solutions.face_mesh_connections``) at the positions iBUG annotates
(eye and mouth corners, lid points at about 1/3 and 2/3 of each lid, the upper brow edge,
the nose ridge and the nostril base); the 17 jaw points are ``FACEMESH_FACE_OVAL`` vertices
chosen at equal arc length from the right temple (127) through the chin (152) to the left
temple (356) on a frontal face, then made mirror-symmetric.

======  ====================  =============================================================
iBUG    facial part           MediaPipe vertices (iBUG order)
======  ====================  =============================================================
0-16    jaw contour           127 234 132 58 172 136 149 148 152 377 378 365 397 288 361 454 356
17-21   right brow            70 63 105 66 107
22-26   left brow             336 296 334 293 300
27-30   nose ridge            168 197 5 1
31-35   nostril base          98 97 2 326 327
36-41   right eye             33 160 158 133 153 144
42-47   left eye              362 385 387 263 373 380
48-59   outer lips            61 40 37 0 267 270 291 321 314 17 84 91
60-67   inner lips            78 81 13 311 308 402 14 178
======  ====================  =============================================================

"Right"/"left" are the subject's (iBUG): the right eye appears on the image's left.

**Contour points mean different things.** iBUG's jaw points 0-16 lie on the visible
silhouette (they slide over the cheek as the head turns), MediaPipe's face-oval vertices are
fixed on the skin, like the fixed landmark vertices of a morphable model. They agree on
frontal faces and drift apart with yaw, so :data:`LANDMARK_CONFIDENCE` gives the contour a
lower weight (0.3) than the inner points (1.0) — the confidence c_j of MoFA Eq. (9) — and
fitting uses it by default.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import NamedTuple

import numpy as np
import torch

from facelab.image_io import as_rgb_image, to_uint8

__all__ = ["CONTOUR_WEIGHT", "Detection", "LANDMARK_CONFIDENCE", "MEDIAPIPE_TO_IBUG68",
           "detect", "landmark_confidence", "mediapipe_available"]

# fmt: off
MEDIAPIPE_TO_IBUG68 = np.array([
    127, 234, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356,  # jaw
    70, 63, 105, 66, 107,                    # right brow (subject's right, image left)
    336, 296, 334, 293, 300,                 # left brow
    168, 197, 5, 1,                          # nose ridge, root to tip
    98, 97, 2, 326, 327,                     # nostril base
    33, 160, 158, 133, 153, 144,             # right eye: outer corner, upper lid, inner, lower
    362, 385, 387, 263, 373, 380,            # left eye: inner corner, upper lid, outer, lower
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips from the right corner
    78, 81, 13, 311, 308, 402, 14, 178,      # inner lips from the right corner
], dtype=np.int64)
# fmt: on

CONTOUR_WEIGHT = 0.3
LANDMARK_CONFIDENCE = np.ones(68, dtype=np.float32)
LANDMARK_CONFIDENCE[:17] = CONTOUR_WEIGHT

_EXTRA_MESSAGE = ("facelab.landmarks needs MediaPipe: run .venv/bin/pip install -e "
                  "\".[landmarks]\" in the facelab checkout (mediapipe==0.10.14, which bundles "
                  "its face models and runs offline); "
                  "or pass your own (68, 2) iBUG landmarks to fit_image(..., landmarks=...)")


class Detection(NamedTuple):
    """One detected face.

    landmarks: (68, 2) float32 NumPy, iBUG-68 points in image pixels (x right, y down;
        facelab's convention: pixel (i, j) covers [j, j+1) x [i, i+1)).
    box: (4,) float32 (x0, y0, x1, y1) face box in pixels (MediaPipe's face detector, or the
        landmarks' bounding box when the detector misses a face the mesh found).
    confidence: float in [0, 1], the detector's score (0.5 when only the mesh found it).
    mesh: (468, 3) float32, all Face Mesh points: x, y in pixels, z in pixels-ish relative
        depth (MediaPipe's scale: z roughly as x, smaller is nearer the camera).
    """

    landmarks: np.ndarray
    box: np.ndarray
    confidence: float
    mesh: np.ndarray


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null for the duration (MediaPipe's C++ side — TFLite and
    absl logging — writes INFO/WARNING lines straight to it, which a notebook shows as a red
    stderr block; Python warnings are filtered separately). Python exceptions still propagate."""
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def mediapipe_available() -> bool:
    """True when ``mediapipe`` can be imported (the ``facelab[landmarks]`` extra)."""
    try:
        with _native_stderr_silenced():  # its native libraries log on import
            import mediapipe  # noqa: F401
    except ImportError:
        return False
    return True


_SOLVERS: dict = {}



def _solvers():
    """The MediaPipe face detector and face mesh, created once (they hold TFLite graphs)."""
    if not _SOLVERS:
        try:
            with warnings.catch_warnings(), _native_stderr_silenced():
                warnings.simplefilter("ignore", UserWarning)  # protobuf deprecation noise
                import mediapipe as mp
        except ImportError as err:
            raise ImportError(_EXTRA_MESSAGE) from err
        with warnings.catch_warnings(), _native_stderr_silenced():
            warnings.simplefilter("ignore", UserWarning)
            _SOLVERS["detector"] = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.5)
            _SOLVERS["mesh"] = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                min_detection_confidence=0.5)
            # The graphs open their calculators (TFLite, which logs a warning to fd 2) on
            # worker threads, possibly after the constructors return: one blank frame through
            # each, still silenced, waits until every calculator is open.
            blank = np.zeros((64, 64, 3), np.uint8)
            _SOLVERS["mesh"].process(blank)
            _SOLVERS["detector"].process(blank)
    return _SOLVERS["detector"], _SOLVERS["mesh"]


def detect(image) -> Detection | None:
    """Find the most prominent face and its 68 iBUG landmarks, offline (MediaPipe Face Mesh).

    image: (H, W, 3) RGB, NumPy or torch, uint8 or float in [0, 1] (see
        :func:`facelab.image_io.as_rgb_image`; grayscale/RGBA/tiny/huge/NaN are refused
        with a ``ValueError`` saying what to do).

    Returns a :class:`Detection` (landmarks (68, 2) pixels, box, confidence, mesh (468, 3)),
    or ``None`` when no face is found: check for it, e.g.
    ``det = detect(img); if det is None: ...``. Raises ``ImportError`` naming the
    ``facelab[landmarks]`` extra when MediaPipe is not installed. About 40 ms per image on
    one CPU core.
    """
    rgb = to_uint8(as_rgb_image(image))  # (H, W, 3) uint8, what MediaPipe expects
    detector, mesh = _solvers()
    h, w = rgb.shape[:2]
    with warnings.catch_warnings(), _native_stderr_silenced():
        warnings.simplefilter("ignore", UserWarning)
        result = mesh.process(rgb)
        found = detector.process(rgb)
    if not result.multi_face_landmarks:
        return None
    pts = result.multi_face_landmarks[0].landmark
    # MediaPipe gives x, y normalised to [0, 1] over the image width/height, where 0 and 1 are
    # the image's outer edges, i.e. pixel coordinate = x * W in facelab's convention.
    points = np.array([[p.x * w, p.y * h, p.z * w] for p in pts], dtype=np.float32)  # (468, 3)
    landmarks = points[MEDIAPIPE_TO_IBUG68, :2].copy()  # (68, 2)
    lo, hi = landmarks.min(0), landmarks.max(0)
    box = np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.float32)
    confidence = 0.5
    if found.detections:
        centre = landmarks.mean(0)
        for det in found.detections:
            r = det.location_data.relative_bounding_box
            b = np.array([r.xmin * w, r.ymin * h, (r.xmin + r.width) * w,
                          (r.ymin + r.height) * h], dtype=np.float32)
            if b[0] <= centre[0] <= b[2] and b[1] <= centre[1] <= b[3]:
                box, confidence = b, float(det.score[0])
                break
    return Detection(landmarks, box, confidence, points)


def landmark_confidence(dtype=torch.float32, device=None) -> torch.Tensor:
    """(68,) per-landmark weights c_j for MoFA Eq. (9): 0.3 on the jaw contour, else 1."""
    return torch.as_tensor(LANDMARK_CONFIDENCE, dtype=dtype, device=device)
