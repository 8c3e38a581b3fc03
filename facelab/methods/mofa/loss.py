"""MoFA's loss layer, Sec. 6 / Eq. (7):

    E_loss(x) = w_land E_land(x) + w_photo E_photo(x) + w_reg E_reg(x)                 (7)

* E_photo — dense photometric alignment, robust l2,1 over the front-facing vertices (Eq. 8),
  on the shaded colours of Eq. (4), shading and loss fused into one compiled op per direction
  (:func:`facelab.losses.shaded_photometric_loss` on the formation's albedo and normals and the
  code's gamma: the same value as ``photometric_loss`` on ``decoded.colors``);
* E_land — the optional landmark surrogate with confidences (Eq. 9),
  :func:`facelab.losses.landmark_loss`;
* E_reg — statistical regularisation of alpha, beta, delta (Eq. 10),
  :func:`facelab.losses.statistical_prior`. Pose and illumination are not regularised.

The weights live in :class:`MofaLossConfig`, whose defaults are the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab import cameras
from facelab._checks import check_floating, check_shape
from facelab.formation import Formation, form
from facelab.losses import (
    PriorWeights,
    landmark_loss,
    photometric_loss,
    shaded_photometric_loss,
    statistical_prior,
)
from facelab.methods.mofa.decoder import VISIBILITY_MODES, decode, layout_for, visible_vertices
from facelab.methods.mofa.layout import CodeParts

__all__ = ["INNER_LANDMARKS", "MofaLossConfig", "mofa_loss", "photometric_vertex_loss"]

INNER_LANDMARKS = tuple(range(17, 68))
"""The 51 inner iBUG-68 points (brows, nose, eyes, mouth). MoFA uses 46 of a 66-point
tracker's landmarks (Sec. 6); the subset is detector-specific, so facelab drops the 17 jaw
contour points, whose vertex correspondence slides with pose on real faces."""


@dataclass(frozen=True)
class MofaLossConfig:
    """Weights of MoFA's loss, Eq. (7) and Eq. (10); defaults are the paper's (Sec. 6).

    photo: w_photo = 1.92. reg: w_reg = 2.9e-5. land: w_land, binary in the paper (0 = fully
        unsupervised, the default; 1 = with the landmark surrogate). albedo: w_beta = 1.7e-3.
    exp: w_delta = 0.8. The identity term has weight 1.
    visibility: the vertex set of Eq. (8): "front_facing" (the paper's) or "raster" (also
        z-buffer occlusion), see :func:`.decoder.visible_vertices`.
    landmarks: the landmark subset of Eq. (9): "inner" (:data:`INNER_LANDMARKS`, default) or
        "all" (the 68).
    These weights are used unchanged on facelab's built-in model: its bases are scaled to
    ~N(0, 1) coefficients like MoFA's, and E_photo is a mean over vertices in [0, 1] colour
    units as in the paper. E_land is in squared pixels summed over landmarks (Eq. 9), so its
    size relative to E_photo depends on the image size (MoFA: 240 px).
    """

    photo: float = 1.92
    reg: float = 2.9e-5
    land: float = 0.0
    albedo: float = 1.7e-3
    exp: float = 0.8
    visibility: str = "front_facing"
    landmarks: str = "inner"

    def __post_init__(self):
        for name in ("photo", "reg", "land", "albedo", "exp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
        if self.visibility not in VISIBILITY_MODES:
            raise ValueError(f"visibility: expected one of {VISIBILITY_MODES}, "
                             f"got {self.visibility!r}")
        if self.landmarks not in ("inner", "all"):
            raise ValueError(f"landmarks: expected 'inner' or 'all', got {self.landmarks!r}")


def mofa_loss(decoded: Formation, parts: CodeParts, image, model, *,
              config: MofaLossConfig | None = None, landmarks=None,
              confidence=None) -> dict[str, torch.Tensor]:
    """MoFA's training loss, Eq. (7), averaged over the batch; returns each term by name.

    decoded: :class:`facelab.Formation` of the predicted codes (``decode(code, ...)``).
    parts: the same codes split by :meth:`.layout.CodeLayout.split` (for Eq. 10).
    image: (B, H, W, 3) float, the input images I in [0, 1] (same dtype/device as the code).
    model: the MorphableModel used to decode.
    config: :class:`MofaLossConfig` (default: the paper's weights, no surrogate).
    landmarks: (B, 68, 2) float, 2D landmark detections s_j in pixels (y down); needed
        when ``config.land > 0``, ignored otherwise.
    confidence: optional (B, 68) float c_j in [0, 1] (default 1).

    Returns {"total", "photo", "land", "reg"}: 0-d tensors, "total" =
    w_land E_land + w_photo E_photo + w_reg E_reg, the others unweighted (E_land is 0 when
    the surrogate is off). Differentiable in the code through ``decoded`` and ``parts``.
    """
    config = MofaLossConfig() if config is None else config
    if not isinstance(config, MofaLossConfig):
        raise TypeError(f"config: expected MofaLossConfig, got {type(config).__name__}")
    d = check_shape(image, "B H W 3", name="image", dims={"B": decoded.albedo.shape[0]})
    check_floating(image, name="image")
    image = image.to(decoded.albedo)
    vis = visible_vertices(decoded, model, d["H"], d["W"], mode=config.visibility)  # (B, V)
    # Eqs. 4 + 8 fused: shading again inside the loss op instead of reading decoded.colors, so
    # the backward is one compiled pass (form's own shading forward stays unused by the graph)
    e_photo = shaded_photometric_loss(image, decoded.screen_verts[..., :2], decoded.albedo,
                                      decoded.normals, parts.gamma.to(image), vis)
    prior = PriorWeights(id=1.0, exp=config.exp, albedo=config.albedo)
    e_reg = statistical_prior({"id": parts.id, "exp": parts.exp, "albedo": parts.albedo},
                              prior)  # Eq. 10
    e_land = torch.zeros((), dtype=e_photo.dtype, device=e_photo.device)
    if config.land > 0:
        if landmarks is None:
            raise ValueError("landmarks: expected (B, 68, 2) detections when config.land > 0, "
                             "got None")
        check_shape(landmarks, "B 68 2", name="landmarks", dims={"B": d["B"]})
        if model.landmarks is None:
            raise ValueError(f"model: {model.name!r} has no landmark annotation for Eq. (9)")
        subset = list(INNER_LANDMARKS) if config.landmarks == "inner" else list(range(68))
        idx = model.landmarks.to(image.device)[subset]  # (L,) vertex indices k_j
        pred = decoded.screen_verts[:, idx, :2]  # (B, L, 2) u_{k_j}
        target = torch.as_tensor(landmarks).to(pred)[:, subset]  # (B, L, 2) s_j
        conf = None
        if confidence is not None:
            check_shape(confidence, "B 68", name="confidence", dims={"B": d["B"]})
            conf = torch.as_tensor(confidence).to(pred)[:, subset]  # (B, L)
        e_land = landmark_loss(pred, target, conf)  # Eq. 9
    total = config.photo * e_photo + config.reg * e_reg
    if config.land > 0:
        total = total + config.land * e_land
    return {"total": total, "photo": e_photo, "land": e_land, "reg": e_reg}


def photometric_vertex_loss(code, model, image, focal, principal, *,
                            visibility: str = "front_facing"):
    """E_photo (Eq. 8) of one image as a function of the unposed vertices, for gradient views.

    code: (1, D) code (pose, reflectance and light are taken from it). model: MorphableModel.
    image: (1, H, W, 3) input image. focal, principal: (1, 2).
    Returns ``loss_fn(verts) -> 0-d tensor`` for verts (V, 3) model space (mm), with the
    vertex set fixed at the decoded code's visible vertices; e.g. for
    ``facelab.widgets.GradientView(verts, faces, loss_fn)``.
    """
    d = check_shape(image, "1 H W 3", name="image")
    decoded = decode(code, model, focal, principal)
    vis = visible_vertices(decoded, model, d["H"], d["W"], mode=visibility)  # (1, V)
    params = layout_for(model, None).to_face(code.detach())
    camera = cameras.Pinhole(torch.as_tensor(focal).to(code), torch.as_tensor(principal).to(code))
    mean = model.mean_shape.to(code)  # (V, 3)
    img = image.to(code.dtype)

    def loss_fn(verts):
        check_shape(verts, "V 3", name="verts", dims={"V": model.num_vertices})
        # the free geometry enters as per-vertex offsets from the mean face (no coefficients)
        free = params.replace(id=None, exp=None, vertex_offsets=verts[None].to(code) - mean)
        f = form(model, free, camera)
        return photometric_loss(img, f.screen_verts[..., :2], f.colors, vis)

    return loss_fn
