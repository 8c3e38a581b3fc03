"""NeuFace's objective on one clip, Eq. (1): L_2D + λ_temp L_temporal + λ_view L_multiview.

:func:`clip_losses` evaluates the three terms for a stack of per-image parameter vectors
(T frames x N views, frame-major), with the E-step targets of :mod:`.estep` (``style="em"``,
Eqs. 3-4) or the non-EM pairwise losses of App. B (``style="naive"``, Table S3). Both the
NeuFace optimisation (vectors from Φ_w) and the fitting baseline (vectors as free variables,
Eq. 5) call it, so they optimise literally the same losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab._checks import check_int, check_shape
from facelab.data.talking import CLIP_DEPTH_MM, TalkingClip
from facelab.formation import form
from facelab.losses import (
    landmark_l1_loss,
    multiview_loss,
    multiview_naive_loss,
    temporal_quaternion_loss,
    temporal_quaternion_naive_loss,
)
from facelab.methods.neuface.estep import (
    DEFAULT_TAU_A_DEG,
    DEFAULT_TAU_Z,
    DEFAULT_WINDOW,
    bootstrap_mesh,
    smooth_quaternions,
    vertex_confidence,
)
from facelab.methods.neuface.layout import NeuFaceLayout
from facelab.model.morphable import MorphableModel
from facelab.rotations import matrix_to_quaternion

__all__ = ["LossWeights", "clip_losses", "multiview_targets"]


@dataclass(frozen=True)
class LossWeights:
    """Weights and E-step settings of Eq. (1).

    lambda_temp, lambda_view: the paper does not state them; facelab's defaults balance
        L_2D (pixels per landmark, 64-pixel images) against L_temporal (quaternion distance;
        0.01 ≈ 1.1°) and L_multiview (mm per vertex): 1° off the smoothed orientation costs
        about 0.09 pixel of landmark error, 1 mm of cross-view disagreement 0.3 pixel (chosen
        on one calibration clip, seed 1: λ_temp = 40 doubled the NME of L_2D alone, 10 kept
        it within 0.2 pixel while raising MSI_3D fourfold). Set one to 0 to drop its term
        (the ablations of Table 3);
        ``lambda_view`` is ignored for single-view clips.
    style: "em" — latent targets (Eqs. 3-4); "naive" — pairwise losses (App. B, Table S3).
    window, temporal_target: the moving window (frames) and "mean" / "median" (Table S1).
    tau_a_deg, tau_z: visibility thresholds of the multi-view confidence (paper: 72°, −0.08).
    """

    lambda_temp: float = 10.0
    lambda_view: float = 0.3
    style: str = "em"
    window: int = DEFAULT_WINDOW
    temporal_target: str = "mean"
    tau_a_deg: float = DEFAULT_TAU_A_DEG
    tau_z: float = DEFAULT_TAU_Z

    def __post_init__(self):
        if self.style not in ("em", "naive"):
            raise ValueError(f"style: expected 'em' or 'naive', got {self.style!r}")
        if self.temporal_target not in ("mean", "median"):
            raise ValueError(f"temporal_target: expected 'mean' or 'median', got "
                             f"{self.temporal_target!r}")
        if not (self.lambda_temp >= 0 and self.lambda_view >= 0):
            raise ValueError("lambda_temp, lambda_view: expected weights >= 0")


def multiview_targets(formation, camera, frames: int, views: int,
                      weights: LossWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """The E-step's multi-view targets of one prediction (Sec. 3.2; what Eq. 4 pulls toward).

    formation: :func:`facelab.form` output of the T N images (frame-major), with ``verts``
        (T N, V, 3) model space, ``verts_cam`` and ``normals``; camera: its WeakPerspective.
    frames, views: T and N. weights: τ_a and τ_z are read from it.
    Returns ``(target (T, V, 3), confidence (T, N, V))``, both detached.
    """
    T, N = check_int(frames, name="frames", minimum=1), check_int(views, name="views", minimum=1)
    f = formation
    V = f.verts.shape[1]
    depth = -camera.scale[:, None] * (f.verts_cam[..., 2] - CLIP_DEPTH_MM)  # (T N, V) s (R X)_z
    conf = vertex_confidence(f.normals.detach(), depth.detach(), weights.tau_a_deg,
                             weights.tau_z).reshape(T, N, V)
    return bootstrap_mesh(f.verts.detach().reshape(T, N, V, 3), conf), conf


def clip_losses(model: MorphableModel, layout: NeuFaceLayout, vec: torch.Tensor,
                clip: TalkingClip, weights: LossWeights) -> dict:
    """The terms of Eq. (1) for one clip.

    vec: (T N, layout.size) parameter vectors, frame-major (image f N + v), differentiable.
    clip: the :class:`TalkingClip` (its detections, weights and image size are used).
    Returns {"l2d", "temporal", "multiview", "total"} scalar tensors (a dropped term is 0).
    """
    T, N = clip.frames, clip.views
    H, W = clip.image_size
    check_shape(vec, f"{T * N} {layout.size}", name="vec")
    params, camera = layout.to_face(vec, H, W)
    use_view = N > 1 and weights.lambda_view > 0
    if use_view:
        f = form(model, params, camera, shade=False)
    else:
        f = form(model, params, camera, vertex_subset="landmarks")
    L = clip.detections.shape[2]
    l2d = landmark_l1_loss(f.landmarks_2d, clip.detections.reshape(T * N, L, 2).to(vec),
                           clip.detection_weights.reshape(T * N, L).to(vec))
    zero = vec.new_zeros(())
    temporal = multiview = zero
    if weights.lambda_temp > 0 and T > 1:
        q = matrix_to_quaternion(params.rotation).reshape(T, N, 4)
        if weights.style == "em":
            target = smooth_quaternions(q.detach(), weights.window, weights.temporal_target)
            temporal = temporal_quaternion_loss(q, target)
        else:
            temporal = temporal_quaternion_naive_loss(q)
    if use_view:
        V = f.verts.shape[1]
        meshes = f.verts.reshape(T, N, V, 3)
        if weights.style == "em":
            target, _ = multiview_targets(f, camera, T, N, weights)
            multiview = multiview_loss(meshes, target)
        else:
            multiview = multiview_naive_loss(meshes)
    total = l2d + weights.lambda_temp * temporal + weights.lambda_view * multiview
    return {"l2d": l2d, "temporal": temporal, "multiview": multiview, "total": total}
