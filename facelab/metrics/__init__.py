"""Evaluation metrics of the seed papers.

* :func:`nme` — normalised mean error of 2D landmarks (3DDFA_V2 Tables 1-2: normalised by
  the bounding-box size sqrt(w h) of the ground truth; also the inter-ocular convention).
* :func:`aligned_vertex_error` — mean point-to-point 3D distance after compensating translation
  and isotropic scale (and optionally rotation): MoFA Sec. 7 "Quantitative Evaluation".
* :func:`mpve` — mean per-vertex Euclidean error, no alignment.
* :func:`scan_to_mesh_error` — the NoW benchmark's protocol (Sanyal et al., CVPR 2019, Sec. 5):
  landmark similarity alignment, rigid + scale ICP, then the distance from every scan point to
  the closest point on the predicted *surface*; median / mean / std in mm.
* :func:`stability` — 3DDFA_V2 Sec. 3.1: NME between the predicted and the true offsets of
  adjacent video frames.
* :func:`msi3d`, :func:`cvd`, :func:`beta_norm_reject` (with :func:`beta_norm_threshold`) —
  NeuFace Sec. 4.1 and App. A: 3D motion stability, cross-view vertex distance and the
  out-of-distribution shape filter (NeuFace's MPVE of Fig. 4 is :func:`mpve`, its NME
  :func:`nme`).
* :func:`motion_fd` (with :func:`motion_features`, :func:`gaussian_frechet_distance`) and
  :func:`motion_apd` — NeuFace Sec. 5.1 / Table 4 (after HuMoR): the naturalness and the
  diversity of generated long-term facial motion.

All accept torch tensors or NumPy arrays (NumPy in, NumPy out) in float32/float64.
"""

from facelab.metrics.core import (
    aligned_vertex_error,
    beta_norm_reject,
    beta_norm_threshold,
    cvd,
    mpve,
    msi3d,
    nme,
    similarity_align,
    similarity_transform,
    stability,
)
from facelab.metrics.motion import (
    MOTION_FEATURES,
    gaussian_frechet_distance,
    motion_apd,
    motion_fd,
    motion_features,
)
from facelab.metrics.scan import ScanError, scan_to_mesh_error

__all__ = ["MOTION_FEATURES", "ScanError", "aligned_vertex_error", "beta_norm_reject",
           "beta_norm_threshold", "cvd", "gaussian_frechet_distance", "motion_apd", "motion_fd",
           "motion_features", "mpve", "msi3d", "nme", "scan_to_mesh_error", "similarity_align",
           "similarity_transform", "stability"]
