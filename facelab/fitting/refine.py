"""Photometric geometry refinement: the fitter's last stage, MoFA's full energy on all blocks.

:func:`facelab.fitting.fit_image`'s first stages fit the geometry to the landmarks alone and
then the reflectance and light to the pixels with the geometry frozen. Landmarks say little
about depth (a frontal photo's 68 points barely move when the nose grows) and nothing between
them; the pixels do, through shading (the normals) and through where image features land
(the projected positions). This stage minimises MoFA's energy (Sec. 6, Eq. 7)

    E = w_photo E_photo (Eq. 8, shaded by Eq. 4) + w_land E_land (Eq. 9) + w_reg E_reg (Eq. 10)

over pose, identity, expression, reflectance and light *together*, starting from the earlier
stages' result, so the landmarks keep the solution where it was and the pixels refine it.
E_photo runs on the visible face vertices (:func:`facelab.raster.vertex_visibility` ∧ the
face mask), re-selected every ``visibility_every`` steps as the surface moves, through the
compiled shading + photometric pass of :func:`facelab.losses.shaded_photometric_loss`
(gradients reach the projected positions and, through the compiled vertex normals, the
shape).

The energy reads only the face region: E_photo the visible face-mask vertices (their
positions, reflectance and normals; a normal is the normalised area-weighted sum of the
vertex's incident face normals, MoFA Sec. 4) and E_land the 68 landmark vertices. So each
step works on the *photometric region* of the model (:func:`photometric_region`: the
face-mask vertices, their one-ring and the landmarks, with the faces incident to a face-mask
vertex) instead of the whole head — the same values and gradients (every face-mask vertex
keeps all its incident faces, in the same order) for half the vertices and a third of the
bases' memory traffic — and evaluates the energy and its gradient in closed form
(:class:`facelab.fitting.energies.RefineEnergy`, checked against autograd through
:func:`facelab.form` in the tests). Only the visibility re-selection forms the whole head
(``form``), since any part of it may occlude the face.

Measured with :mod:`facelab.fitting.evaluate3d` (NoW-style scan-to-mesh error on rendered
heads with detail outside the model); the figures are in that module's results file.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch

from facelab.face_params import FaceParams
from facelab.fitting.energies import FlatAdam, RefineEnergy
from facelab.fitting.pose_step import pose_from_unknowns
from facelab.formation import form
from facelab.losses import PriorWeights
from facelab.model.morphable import MorphableModel
from facelab.raster import vertex_visibility

__all__ = ["RefineSettings", "RefineStage", "photometric_region"]

# model -> {(k_id, k_exp, k_alb): (region model, rows)}; a model is treated as immutable (as
# facelab.formation's caches do)
_REGIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def photometric_region(model: MorphableModel, n_id: int | None = None,
                       n_exp: int | None = None, n_albedo: int | None = None
                       ) -> tuple[MorphableModel, torch.Tensor]:
    """The part of ``model`` that MoFA's energy (Eqs. 8-10) reads, as a model of its own.

    Returns ``(region, rows)``: ``rows`` (R,) int64, sorted, the kept vertices of ``model`` —
    every face-mask vertex, its one-ring and the landmark vertices (with a
    landmark embedding, all its support vertices) — and ``region`` the
    :class:`MorphableModel` of those rows: mean, bases (the leading ``n_id`` / ``n_exp`` /
    ``n_albedo`` modes, contiguous), the faces incident to a face-mask vertex (re-indexed, in
    their original order), the landmarks (re-indexed) and the face mask. So
    ``form(region, p, camera)`` gives exactly ``form(model, p, camera)``'s positions and
    reflectance on ``rows`` and its normals on the face-mask vertices (each keeps all its
    incident faces, summed in the same order); the one-ring's own normals are partial (they
    only serve the face-mask vertices' neighbours) and the region carries no skeleton, UV
    layout or texture maps (the fitter forms no joints and shades per vertex). Built once per
    model and mode counts (cached).
    """
    key = (n_id, n_exp, n_albedo)
    per_model = _REGIONS.setdefault(model, {})
    if key not in per_model:
        faces, mask = model.faces, model.face_mask
        touching = faces[mask[faces].any(dim=1)]  # (Fr, 3) faces with a face-mask corner
        keep = torch.zeros(model.num_vertices, dtype=torch.bool)
        keep[touching.reshape(-1)] = True
        if model.landmarks is not None:
            keep[model.landmarks] = True
            if model.has_landmark_embedding:  # the embedding's support vertices too
                keep[model.landmark_vertices.reshape(-1)] = True
        rows = keep.nonzero()[:, 0]  # (R,)
        local = torch.full((model.num_vertices,), -1, dtype=torch.int64)
        local[rows] = torch.arange(rows.numel())
        k_id, k_exp, k_alb = (model.n_id if n_id is None else n_id,
                              model.n_exp if n_exp is None else n_exp,
                              model.n_albedo if n_albedo is None else n_albedo)
        region = MorphableModel(
            name=f"{model.name}-photometric-region", mean_shape=model.mean_shape[rows],
            id_basis=model.id_basis[rows, :, :k_id].contiguous(),
            exp_basis=model.exp_basis[rows, :, :k_exp].contiguous(),
            mean_albedo=model.mean_albedo[rows],
            albedo_basis=model.albedo_basis[rows, :, :k_alb].contiguous(),
            faces=local[touching],
            landmarks=None if model.landmarks is None else local[model.landmarks],
            landmark_vertices=(local[model.landmark_vertices]
                               if model.has_landmark_embedding else None),
            landmark_weights=model.landmark_weights, face_mask=mask[rows], source=model.source)
        # the whole mesh's shape alone (no reflectance modes), for the visibility re-selection
        shape_only = MorphableModel(
            name=f"{model.name}-shape", mean_shape=model.mean_shape,
            id_basis=model.id_basis[..., :k_id].contiguous(),
            exp_basis=model.exp_basis[..., :k_exp].contiguous(), mean_albedo=model.mean_albedo,
            albedo_basis=model.albedo_basis[..., :0], faces=model.faces,
            landmarks=model.landmarks, landmark_vertices=model.landmark_vertices,
            landmark_weights=model.landmark_weights, face_mask=mask, source=model.source)
        per_model[key] = (region, rows, shape_only)
    return per_model[key][:2]


def _shape_model(model: MorphableModel, n_id: int, n_exp: int, n_albedo: int):
    """The whole mesh with the fitted shape modes and no reflectance modes (cached with the
    region): what the visibility re-selection forms."""
    photometric_region(model, n_id, n_exp, n_albedo)
    return _REGIONS[model][(n_id, n_exp, n_albedo)][2]


@dataclass(frozen=True)
class RefineSettings:
    """Settings of :func:`refine_geometry` (explicit and typed; pass by keyword).

    steps: Adam steps (0 switches the stage off).
    lr_pose: step of the rotation (radians) and of the translation (relative to the depth).
    lr_shape: step of the identity / expression coefficients (~N(0, 1)).
    lr_color: step of reflectance and SH light.
    w_photo, w_land, w_reg: weights of E_photo (MoFA Eq. 8, colours in [0, 1]), E_land (mean
        squared crop pixels, as the landmark stages) and E_reg (Eq. 10, ``prior`` per term).
    visibility_every: steps between re-selections of the visible face vertices.
    """

    steps: int = 60
    lr_pose: float = 0.001
    lr_shape: float = 0.02
    lr_color: float = 0.02
    w_photo: float = 50.0
    w_land: float = 1.0
    w_reg: float = 0.05
    visibility_every: int = 10
    prior: PriorWeights = field(default_factory=lambda: PriorWeights(id=1.0, exp=0.8, albedo=0.2))


class RefineStage:
    """The refinement as a stage object the fitter's loop steps: one :meth:`step` per Adam step,
    :meth:`params` for the result. (A class because it holds state: the parameters being
    refined, the optimiser and the current visible-vertex selection.)

    model: the fitted :class:`MorphableModel` (float32).
    crop: (S, S, 3) float32 image the fit runs on (the normalised crop).
    camera: the crop's :class:`~facelab.cameras.Pinhole` (batch 1).
    params: :class:`FaceParams` of batch 1 with the earlier stages' result; its id / exp /
        albedo lengths are the fitted modes (k_id, k_exp, k_alb).
    targets: (68, 2) landmark targets in crop pixels; confidence: (68,) weights c_j (Eq. 9).
    settings: :class:`RefineSettings`.
    fit_identity: False keeps identity and reflectance fixed (video frames after the first).

    Each step evaluates the energy and its gradient in closed form on the photometric region
    (:class:`facelab.fitting.energies.RefineEnergy`) and takes one Adam step of all the
    unknowns as one flat vector (:class:`facelab.fitting.energies.FlatAdam`); every
    ``visibility_every`` steps the whole head is formed (:func:`facelab.form`) to re-select
    the visible face vertices.
    """

    def __init__(self, model: MorphableModel, crop: torch.Tensor, camera, params: FaceParams,
                 targets: torch.Tensor, confidence: torch.Tensor, settings: RefineSettings, *,
                 fit_identity: bool = True):
        dt = crop.dtype
        self.model, self.crop, self.camera, self.settings = model, crop, camera, settings
        self.fit_identity = fit_identity
        k_id, k_exp, k_alb = params.id.shape[1], params.exp.shape[1], params.albedo.shape[1]
        self.region, self.rows = photometric_region(model, k_id, k_exp, k_alb)
        self.shape_model = _shape_model(model, k_id, k_exp, k_alb)
        self.R0 = params.rotation[0].detach().clone()
        self.t0 = params.translation[0].detach().clone()
        self.energy = RefineEnergy(self.region, crop, camera.focal[0], camera.principal[0],
                                   targets, confidence, self.R0, self.t0, prior=settings.prior,
                                   w_photo=settings.w_photo, w_land=settings.w_land,
                                   w_reg=settings.w_reg, fit_identity=fit_identity)
        # z = (δR (3) axis-angle on R0, s (3) translation / depth, id, exp, γ (27), albedo)
        self.z = torch.cat([torch.zeros(6, dtype=dt), params.id[0].detach().to(dt),
                            params.exp[0].detach().to(dt),
                            params.gamma[0].detach().to(dt).reshape(-1),
                            params.albedo[0].detach().to(dt)])
        s_pose, s_geo, s_gamma, s_alb = self.energy.slices
        s_id, s_exp = slice(6, 6 + k_id), slice(6 + k_id, s_geo.stop)
        groups = [(s_pose, settings.lr_pose), (s_exp, settings.lr_shape),
                  (s_gamma, settings.lr_color)]
        if fit_identity:
            groups += [(s_id, settings.lr_shape), (s_alb, settings.lr_color)]
        self.optimizer = FlatAdam(self.z, groups)
        self._slices = {"id": s_id, "exp": s_exp, "gamma": s_gamma, "albedo": s_alb}
        self.weights = None  # (1, R) visible face vertices of the region, re-selected
        #                      as the surface moves
        self.steps_done = 0

    id = property(lambda self: self.z[self._slices["id"]])
    exp = property(lambda self: self.z[self._slices["exp"]])
    albedo = property(lambda self: self.z[self._slices["albedo"]])
    gamma = property(lambda self: self.z[self._slices["gamma"]].view(9, 3))

    def params(self) -> FaceParams:
        """The current :class:`FaceParams` (batch 1, no gradient; copies)."""
        with torch.no_grad():
            # R = Rodrigues(delta) R0 (3, 3), t = t0 + t0_z shift (3,)
            R, t = pose_from_unknowns(self.z[:3], self.z[3:6], self.R0, self.t0,
                                      linear_depth=True)
            return FaceParams(id=self.id[None].clone(), exp=self.exp[None].clone(),
                              rotation=R[None], translation=t[None],
                              albedo=self.albedo[None].clone(), gamma=self.gamma[None].clone())

    def step(self) -> dict:
        """One Adam step on E; returns the terms (0-d tensors)."""
        s, m = self.settings, self.model
        S = self.crop.shape[0]
        if self.weights is None or self.steps_done % s.visibility_every == 0:
            with torch.no_grad():  # the whole head: any part of it may occlude the face
                p = self.params()
                whole = form(self.shape_model, p.replace(albedo=p.albedo[:, :0]), self.camera,
                             shade=False)
                vis = vertex_visibility(whole.screen_verts, m.faces, S, S)[0]  # (V,)
                vis = (vis & m.face_mask)[self.rows]  # (R,)
                self.weights = vis[None].to(self.crop.dtype)  # (1, R)
        e_photo, e_land, e_reg, _, grad = self.energy(self.z, self.weights)
        self.optimizer.step(self.z, grad)
        self.steps_done += 1
        return {"photo": e_photo, "land": e_land, "reg": e_reg}
