"""Metrics of a clip's reconstruction (NeuFace Sec. 3.4, 4.1): NME, MPVE, CVD, MSI_3D, ‖β‖₂.

* ``nme``: :func:`facelab.metrics.nme` (bounding-box normalised, %) of the projected model
  landmarks against the true projections (synthetic clips) or the detections (real video;
  a missing detection counts as zero error), averaged over frames and views;
* ``mpve``: :func:`facelab.metrics.mpve` (mm) of each view's model-space mesh against the
  true one, averaged over frames and views (Fig. 4);
* ``cvd``: :func:`facelab.metrics.cvd` (mm) of the model-space meshes across views;
* ``msi_l``, ``msi_v``: :func:`facelab.metrics.msi3d` of the 68 landmarks / all vertices
  with the head orientation applied (R X, mm; frames at the clip's rate), averaged over views;
* ``beta_norm``: ‖β̄‖₂ of the clip's mean identity code (the filtering rule of App. A);
* ``beta_sd``: the standard deviation of β over the clip's images, averaged over
  coefficients (Table S2 (b): β is predicted per image and is not forced to agree).
"""

from __future__ import annotations

import torch

from facelab import metrics
from facelab.data.talking import TalkingClip
from facelab.formation import form
from facelab.methods.neuface.layout import NeuFaceLayout
from facelab.model.morphable import MorphableModel

__all__ = ["evaluate_clip", "reconstruct"]


def reconstruct(model: MorphableModel, layout: NeuFaceLayout, vec: torch.Tensor,
                clip: TalkingClip) -> dict:
    """Meshes of a clip: {"verts": (T, N, V, 3) model space, "posed": (T, N, V, 3) R X,
    "landmarks_2d": (T, N, L, 2)} (no gradient)."""
    T, N = clip.frames, clip.views
    H, W = clip.image_size
    with torch.no_grad():
        params, camera = layout.to_face(vec, H, W)
        f = form(model, params, camera, shade=False)
    V = f.verts.shape[1]
    posed = f.verts @ params.rotation.transpose(1, 2)  # (B, V, 3) R X
    return {"verts": f.verts.reshape(T, N, V, 3), "posed": posed.reshape(T, N, V, 3),
            "landmarks_2d": f.landmarks_2d.reshape(T, N, -1, 2)}


def evaluate_clip(model: MorphableModel, layout: NeuFaceLayout, vec: torch.Tensor,
                  clip: TalkingClip) -> dict:
    """The module's metrics for parameter vectors ``vec`` (T N, D) of ``clip``: a dict of
    floats (``mpve`` only with ground truth, ``cvd`` only with N >= 2 views)."""
    T, N = clip.frames, clip.views
    rec = reconstruct(model, layout, vec, clip)
    L = rec["landmarks_2d"].shape[2]
    pred = rec["landmarks_2d"].reshape(T * N, L, 2)
    if clip.landmarks_2d is not None:
        ref = clip.landmarks_2d.reshape(T * N, L, 2).to(pred)
    else:
        w = clip.detection_weights.reshape(T * N, L, 1).to(pred)
        ref = w * clip.detections.reshape(T * N, L, 2).to(pred) + (1 - w) * pred
    out = {"nme": 100.0 * float(metrics.nme(pred, ref).mean())}
    if clip.verts is not None:
        gt = clip.verts.to(pred)[:, None].expand(T, N, -1, 3).reshape(T * N, -1, 3)
        out["mpve"] = float(metrics.mpve(rec["verts"].reshape(T * N, -1, 3), gt).mean())
    if N > 1:
        out["cvd"] = metrics.cvd(rec["verts"])
    posed = rec["posed"].transpose(0, 1)  # (N, T, V, 3)
    points = model.landmark_points(posed.flatten(0, 1)).unflatten(0, posed.shape[:2])
    out["msi_l"] = float(metrics.msi3d(points).mean())  # (N, T, 68, 3) landmark points
    out["msi_v"] = float(metrics.msi3d(posed).mean())
    beta = layout.split(vec)["id"]
    out["beta_norm"] = float(beta.mean(0).norm()) if beta.shape[1] else 0.0
    many = beta.shape[0] > 1 and beta.shape[1]
    out["beta_sd"] = float(beta.std(0).mean()) if many else 0.0
    return out
