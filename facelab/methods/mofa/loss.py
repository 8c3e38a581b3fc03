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

The weights live in :class:`MofaLossConfig`, whose defaults are the paper's. Two terms that
are *not* in the paper are off by default (weight 0) and explained where they are defined:

* E_sil — a 2D silhouette (coverage) term, :func:`silhouette_loss`: Eq. (8) is an average
  over the vertices the mesh puts on the image, so it has no term for face pixels the mesh
  fails to cover; trained from scratch on this corpus the encoder shrinks the face onto
  plain skin (about 8 % of the true face covered, alpha_1 ~ +9 sigma, pitch ~ -64 degrees on
  every image, measured). E_sil compares the projected face-region vertices with a 2D face
  segmentation (here the corpus' own face-region pixels, the role a face parser plays on
  photos, as a landmark detector does for Eq. 9);
* E_pose — a Gaussian prior on the head angles and the camera distance, :func:`pose_prior`
  (MoFA regularises only alpha, beta, delta).
"""

from __future__ import annotations

import dataclasses
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

__all__ = ["INNER_LANDMARKS", "LAND_WEIGHT", "MofaLossConfig", "POSE_WEIGHT", "SIL_WEIGHT",
           "recipe_loss", "SILHOUETTE_STRIDE", "mofa_loss",
           "photometric_vertex_loss", "pose_prior", "silhouette_loss"]

SILHOUETTE_STRIDE = 2
"""E_sil uses every this-many-th face-region vertex and the region's pixels on a grid of this
step (a 4x and 2x cheaper chamfer; at 64 px the distances change by < 1 px)."""

INNER_LANDMARKS = tuple(range(17, 68))
"""The 51 inner iBUG-68 points (brows, nose, eyes, mouth). MoFA uses 46 of a 66-point
tracker's landmarks (Sec. 6); the subset is detector-specific, so facelab drops the 17 jaw
contour points, whose vertex correspondence slides with pose on real faces."""


LAND_WEIGHT = 2.5e-3
"""w_land of the balanced landmark term (Eq. 9 on all 68 landmarks, squared pixels summed, 64 px
images). At the mean face E_land ~1600 px^2 and w_photo E_photo ~0.5 (measured, 16 images): the
paper's binary w_land = 1 makes the landmark term ~3000x the photometric one (a landmark
regressor); 2.5e-3 makes it ~8x at the start and a few times w_photo E_photo once the landmarks
are within ~2-3 px, so both terms shape the gradient through training."""

SIL_WEIGHT = 0.1
"""w_sil: E_sil is ~2 px at the mean face (16 images; ~1.4 px at the true code, the 2 px grid's
floor) and tens of pixels for a collapsed face, so 0.1 makes it ~0.2 to a few units."""

POSE_WEIGHT = 0.01
"""w_pose: the prior (angles std 0.35 rad, distance 950 +- 100 mm) is ~3 at the corpus'
typical pose, so 0.01 adds ~0.03: a weak pull that only bites at extreme poses."""


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

    Additions (not in the paper, 0 = off): sil: weight of the silhouette term
    :func:`silhouette_loss` (pixels); pose: weight of :func:`pose_prior` (squared std units);
    pose_sigma: std of the head angles in that prior (rad); distance, distance_sigma: mean and
    std of the camera distance in it (mm).
    """

    photo: float = 1.92
    reg: float = 2.9e-5
    land: float = 0.0
    albedo: float = 1.7e-3
    exp: float = 0.8
    visibility: str = "front_facing"
    landmarks: str = "inner"
    sil: float = 0.0
    pose: float = 0.0
    pose_sigma: float = 0.35
    distance: float = 950.0
    distance_sigma: float = 100.0

    def __post_init__(self):
        for name in ("photo", "reg", "land", "albedo", "exp", "sil", "pose"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
        if self.visibility not in VISIBILITY_MODES:
            raise ValueError(f"visibility: expected one of {VISIBILITY_MODES}, "
                             f"got {self.visibility!r}")
        if self.landmarks not in ("inner", "all"):
            raise ValueError(f"landmarks: expected 'inner' or 'all', got {self.landmarks!r}")
        for name in ("pose_sigma", "distance", "distance_sigma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name}: expected a number > 0, got {value!r}")


def recipe_loss(*, photo: bool = True, sil: bool = False, pose: bool = False,
                land: bool = False) -> MofaLossConfig:
    """The loss of an ablation row: the paper's weights (Eqs. 7-10) plus the chosen additions.

    photo: keep Eq. 8 (w_photo = 1.92) or drop it (landmarks only). sil, pose, land: add
    :func:`silhouette_loss` (:data:`SIL_WEIGHT`), :func:`pose_prior` (:data:`POSE_WEIGHT`),
    Eq. 9 on all 68 landmarks (:data:`LAND_WEIGHT`; the 17 contour points carry the face's
    outline and yaw. Exploratory single-seed runs, 300 steps: all 68 points with the cosine
    schedule 13.6 mm; the 51 inner points at a constant rate 15.1 mm — not in the ablation).
    """
    base = MofaLossConfig()
    return dataclasses.replace(base, photo=base.photo if photo else 0.0,
                               sil=SIL_WEIGHT if sil else 0.0, pose=POSE_WEIGHT if pose else 0.0,
                               land=LAND_WEIGHT if land else 0.0,
                               landmarks="all" if land else base.landmarks)


def silhouette_loss(screen_xy, normals, verts_cam, model, region) -> torch.Tensor:
    """E_sil: symmetric 2D chamfer distance between the face region's projected vertices and
    a face-region segmentation, in pixels, averaged over the batch (0-d tensor).

    screen_xy: (B, V, 2) float projected vertices u_i (pixels, y down).
    normals, verts_cam: (B, V, 3) camera-space normals and positions (the front-facing test
        n_i . X_i < 0 of Eq. 8's vertex set).
    model: the MorphableModel (``face_mask``). region: (B, H, W) bool face-region pixels
        (e.g. :func:`.decoder.face_region_pixels` of the true mesh).

        E_sil = mean_{p in region} min_i ||p - u_i|| + mean_i min_{p in region} ||u_i - p||

    over the front-facing face-region vertices i (every :data:`SILHOUETTE_STRIDE`-th) and the
    region's pixels p on a grid of step :data:`SILHOUETTE_STRIDE`. The first
    half is the *coverage* term Eq. (8) lacks: a face pixel far from every projected vertex
    costs its distance, so shrinking the face onto easy skin no longer pays; the second keeps
    the vertices on the face. Differentiable in ``screen_xy`` (the nearest pair's distance).
    """
    d = check_shape(screen_xy, "B V 2", name="screen_xy")
    check_shape(region, "B H W", name="region", dims={"B": d["B"]})
    idx = torch.nonzero(model.face_mask.to(screen_xy.device)).flatten()[::SILHOUETTE_STRIDE]
    facing = ((normals.detach() * verts_cam.detach()).sum(-1) < 0)[:, idx]  # (B, Vs)
    xy = screen_xy[:, idx]  # (B, Vs, 2)
    step = SILHOUETTE_STRIDE
    grid = region[:, ::step, ::step]  # (B, Hs, Ws)
    rows = torch.arange(grid.shape[1], device=xy.device, dtype=xy.dtype) * step + 0.5
    cols = torch.arange(grid.shape[2], device=xy.device, dtype=xy.dtype) * step + 0.5
    centres = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), -1).reshape(-1, 2)  # (P, 2)
    keep = grid.reshape(grid.shape[0], -1).to(xy.device)  # (B, P) pixel in the region
    # pack each image's region pixels first, drop the columns no image uses
    count = max(int(keep.sum(1).max()), 1)
    order = keep.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :count]
    keep = torch.gather(keep, 1, order)  # (B, Pk)
    centres = centres[order]  # (B, Pk, 2)
    big = torch.finfo(xy.dtype).max / 4
    with torch.no_grad():  # the nearest pairs; only their distances need gradients
        dist = torch.cdist(centres, xy.detach())  # (B, Pk, Vs)
        near_vertex = dist.masked_fill(~facing[:, None, :], big).argmin(dim=2)  # (B, P)
        near_pixel = dist.masked_fill(~keep[:, :, None], big).argmin(dim=1)  # (B, Vs)
    gathered = torch.gather(xy, 1, near_vertex[..., None].expand(-1, -1, 2))  # (B, Pk, 2)
    to_vertex = (gathered - centres).norm(dim=-1)  # (B, Pk)
    nearest = torch.gather(centres, 1, near_pixel[..., None].expand(-1, -1, 2))  # (B, Vs, 2)
    to_pixel = (xy - nearest).norm(dim=-1)  # (B, Vs)
    ok = keep.any(1) & facing.any(1)  # (B,) images where both sets are non-empty
    cover = (to_vertex * keep).sum(1) / keep.sum(1).clamp(min=1)  # (B,)
    inside = (to_pixel * facing).sum(1) / facing.sum(1).clamp(min=1)  # (B,)
    return torch.where(ok, cover + inside, torch.zeros_like(cover)).mean()


def pose_prior(parts: CodeParts, config: MofaLossConfig) -> torch.Tensor:
    """E_pose: Gaussian prior on the head angles and the camera distance, batch mean (0-d).

        E_pose = sum_k (T_k / sigma_T)^2 + ((t_z - z0) / sigma_z)^2

    parts: the code's blocks (rotation (B, 3) Euler rad, translation (B, 3) mm).
    config: ``pose_sigma`` (rad), ``distance`` z0 and ``distance_sigma`` (mm). Not in MoFA
    (which leaves pose free): it keeps the unsupervised loss from preferring extreme poses
    that hide hard vertices, and fixes the size/distance ambiguity of a pinhole camera.
    """
    rot = (parts.rotation / config.pose_sigma).pow(2).sum(-1)  # (B,)
    dist = ((parts.translation[:, 2] - config.distance) / config.distance_sigma).pow(2)
    return (rot + dist).mean()


def mofa_loss(decoded: Formation, parts: CodeParts, image, model, *,
              config: MofaLossConfig | None = None, landmarks=None,
              confidence=None, region=None) -> dict[str, torch.Tensor]:
    """MoFA's training loss, Eq. (7), averaged over the batch; returns each term by name.

    decoded: :class:`facelab.Formation` of the predicted codes (``decode(code, ...)``).
    parts: the same codes split by :meth:`.layout.CodeLayout.split` (for Eq. 10).
    image: (B, H, W, 3) float, the input images I in [0, 1] (same dtype/device as the code).
    model: the MorphableModel used to decode.
    config: :class:`MofaLossConfig` (default: the paper's weights, no surrogate).
    landmarks: (B, 68, 2) float, 2D landmark detections s_j in pixels (y down); needed
        when ``config.land > 0``, ignored otherwise.
    confidence: optional (B, 68) float c_j in [0, 1] (default 1).
    region: (B, H, W) bool face-region segmentation, needed when ``config.sil > 0``.

    Returns {"total", "photo", "land", "reg", "sil", "pose"}: 0-d tensors, "total" =
    w_land E_land + w_photo E_photo + w_reg E_reg (+ w_sil E_sil + w_pose E_pose), the others
    unweighted (a term that is off is 0). Differentiable in the code through ``decoded`` and
    ``parts``.
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
        pred = decoded.landmarks_2d[:, subset]  # (B, L, 2) u_{k_j}, the projected landmarks
        target = torch.as_tensor(landmarks).to(pred)[:, subset]  # (B, L, 2) s_j
        conf = None
        if confidence is not None:
            check_shape(confidence, "B 68", name="confidence", dims={"B": d["B"]})
            conf = torch.as_tensor(confidence).to(pred)[:, subset]  # (B, L)
        e_land = landmark_loss(pred, target, conf)  # Eq. 9
    zero = torch.zeros((), dtype=e_photo.dtype, device=e_photo.device)
    e_sil, e_pose = zero, zero
    if config.sil > 0:
        if region is None:
            raise ValueError("region: expected (B, H, W) face-region pixels when config.sil > 0, "
                             "got None")
        e_sil = silhouette_loss(decoded.screen_verts[..., :2], decoded.normals,
                                decoded.verts_cam, model, torch.as_tensor(region).bool())
    if config.pose > 0:
        e_pose = pose_prior(parts, config)
    total = config.photo * e_photo + config.reg * e_reg
    for weight, term in ((config.land, e_land), (config.sil, e_sil), (config.pose, e_pose)):
        if weight > 0:
            total = total + weight * term
    return {"total": total, "photo": e_photo, "land": e_land, "reg": e_reg, "sil": e_sil,
            "pose": e_pose}


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
