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
fused compiled op :func:`facelab.losses.shaded_photometric_loss` (gradients reach the
projected positions and, through :func:`facelab.vertex_normals`, the shape).

Measured with :mod:`facelab.fitting.evaluate3d` (NoW-style scan-to-mesh error on rendered
heads with detail outside the model); the figures are in that module's results file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from facelab.face_params import FaceParams
from facelab.fitting.adam import Adam
from facelab.formation import form
from facelab.losses import PriorWeights, shaded_photometric_loss, statistical_prior
from facelab.model.morphable import MorphableModel
from facelab.raster import vertex_visibility
from facelab.rotations import axis_angle_to_matrix

__all__ = ["RefineSettings", "RefineStage"]


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
    """

    def __init__(self, model: MorphableModel, crop: torch.Tensor, camera, params: FaceParams,
                 targets: torch.Tensor, confidence: torch.Tensor, settings: RefineSettings, *,
                 fit_identity: bool = True):
        dt = crop.dtype
        self.model, self.crop, self.camera, self.settings = model, crop, camera, settings
        self.fit_identity = fit_identity
        self.R0 = params.rotation[0].detach()
        self.t0 = params.translation[0].detach()
        self.delta = torch.nn.Parameter(torch.zeros(3, dtype=dt))  # axis-angle on R0
        self.shift = torch.nn.Parameter(torch.zeros(3, dtype=dt))  # translation / depth
        self.id = torch.nn.Parameter(params.id[0].detach().clone())
        self.exp = torch.nn.Parameter(params.exp[0].detach().clone())
        self.albedo = torch.nn.Parameter(params.albedo[0].detach().clone())
        self.gamma = torch.nn.Parameter(params.gamma[0].detach().clone())
        self.targets, self.confidence = targets.to(dt), confidence.to(dt)
        groups = [{"params": [self.delta, self.shift], "lr": settings.lr_pose},
                  {"params": [self.exp] + ([self.id] if fit_identity else []),
                   "lr": settings.lr_shape},
                  {"params": [self.gamma] + ([self.albedo] if fit_identity else []),
                   "lr": settings.lr_color}]
        self.optimizer = Adam(groups)
        self.weights = None  # (1, V) visible face vertices, re-selected as the surface moves
        self.steps_done = 0

    def params(self) -> FaceParams:
        """The current :class:`FaceParams` (batch 1; differentiable in the refined blocks)."""
        R = axis_angle_to_matrix(self.delta[None])[0] @ self.R0  # (3, 3)
        t = self.t0 + self.t0[2] * self.shift  # (3,)
        return FaceParams(id=self.id[None], exp=self.exp[None], rotation=R[None],
                          translation=t[None], albedo=self.albedo[None], gamma=self.gamma[None])

    def step(self) -> dict:
        """One Adam step on E; returns the terms (0-d tensors, detached)."""
        s, m = self.settings, self.model
        S = self.crop.shape[0]
        self.optimizer.zero_grad()
        p = self.params()
        f = form(m, p, self.camera, shade=False)  # albedo and normals; shading fused below
        if self.weights is None or self.steps_done % s.visibility_every == 0:
            with torch.no_grad():
                vis = vertex_visibility(f.screen_verts.detach(), m.faces, S, S)[0]  # (V,)
                if m.face_mask is not None:
                    vis = vis & m.face_mask
                self.weights = vis[None].to(self.crop.dtype)  # (1, V)
        e_photo = shaded_photometric_loss(self.crop[None], f.screen_verts[..., :2], f.albedo,
                                          f.normals, p.gamma, self.weights)  # Eqs. 4 + 8
        r2 = ((f.landmarks_2d[0] - self.targets) ** 2).sum(-1)  # (68,)
        e_land = (self.confidence * r2).sum() / self.confidence.sum()  # Eq. 9, mean px²
        coeffs = {"exp": self.exp[None]}
        if self.fit_identity:
            coeffs.update(id=self.id[None], albedo=self.albedo[None])
        e_reg = statistical_prior(coeffs, s.prior)  # Eq. 10
        loss = s.w_photo * e_photo + s.w_land * e_land + s.w_reg * e_reg
        loss.backward()
        self.optimizer.step()
        self.steps_done += 1
        return {"photo": e_photo.detach(), "land": e_land.detach(), "reg": e_reg.detach()}
