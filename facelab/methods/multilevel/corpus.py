"""Synthetic ground truth with detail the base 3DMM cannot express (supplement Secs. 4-5).

The supplement's correctives exist to capture what lies outside "the restricted 3DMM subspace"
(facial hair, make-up, a better aligned nose and lips; Figs. 1, 13-15). facelab's built-in
corpus (:class:`facelab.data.SyntheticFaces`) draws every face *inside* that subspace, so here
each sample also gets

* a **geometry detail** d_geo (V, 3) mm: a combination of ``geometry_modes`` smooth bumps along
  the mean face's normals (Gaussian profiles of radius 8-20 mm at random face points), and
* a **reflectance detail** d_ref (V, 3): a combination of ``reflectance_modes`` smooth colour
  blobs (radius 6-25 mm, random RGB direction: darker / redder / browner patches),

with coefficients c_k ~ N(0, 1) scaled by a decaying spectrum s_k = (1 + k)^(-decay), so more
correctives can keep explaining more of it (the trend of the supplement's Fig. 4). The hidden
detail bases are fixed by ``DetailConfig.seed`` (a property of the "world", not of a sample);
sample i of a corpus with seed s depends only on (s, i). The detail enters the one image
formation chain as ``FaceParams.vertex_offsets`` / ``albedo_offsets`` (:func:`facelab.form`).

``DetailConfig(geometry_mm=0, reflectance=0)`` gives the plain 3DMM corpus (the reflectance
study of Fig. 8 is made on 3DMM-only images).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab._checks import check_int
from facelab.data.faces import SyntheticFaces, random_backgrounds
from facelab.formation import form, render
from facelab.methods.mofa.training import mofa_sampling
from facelab.normals import vertex_normals
from facelab.raster import vertex_visibility

__all__ = ["DetailConfig", "DetailFaces", "detail_bases"]


@dataclass(frozen=True)
class DetailConfig:
    """The out-of-3DMM detail of :class:`DetailFaces`.

    geometry_modes, reflectance_modes: number of hidden detail modes K_g, K_r.
    geometry_mm: displacement amplitude (mm) of the first geometry mode (peak of its bump).
    reflectance: albedo amplitude of the first reflectance mode (albedo units, [0, 1] scale).
    decay: spectrum exponent, mode k has amplitude (1 + k)^(-decay).
    seed: seed of the hidden bases (fixed: the same "world" for train and test).
    """

    geometry_modes: int = 96
    reflectance_modes: int = 96
    geometry_mm: float = 3.0
    reflectance: float = 0.15
    decay: float = 0.35
    seed: int = 11

    def __post_init__(self):
        check_int(self.geometry_modes, name="geometry_modes", minimum=1)
        check_int(self.reflectance_modes, name="reflectance_modes", minimum=1)
        check_int(self.seed, name="seed", minimum=0)
        for name in ("geometry_mm", "reflectance", "decay"):
            if not float(getattr(self, name)) >= 0.0:
                raise ValueError(f"{name}: expected a number >= 0, got {getattr(self, name)!r}")


def _blobs(model, count: int, radius_mm: tuple[float, float], g: torch.Generator):
    """(V, count) Gaussian profiles exp(-d^2 / 2r^2) around random face-mask vertices."""
    mean = model.mean_shape  # (V, 3)
    face = torch.nonzero(model.face_mask).squeeze(1)  # (Vf,)
    centres = mean[face[torch.randint(len(face), (count,), generator=g)]]  # (count, 3)
    r = radius_mm[0] + (radius_mm[1] - radius_mm[0]) * torch.rand(count, generator=g)
    d2 = ((mean[:, None, :] - centres[None]) ** 2).sum(-1)  # (V, count)
    prof = torch.exp(-d2 / (2 * r[None] ** 2))
    return prof * model.face_mask[:, None].to(prof)  # no detail off the face


def detail_bases(model, config: DetailConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The hidden detail bases, spectrum included: (geo (V, 3, K_g) mm, ref (V, 3, K_r)).

    model: the MorphableModel (its mean shape and face mask). Deterministic in ``config.seed``.
    A sample's detail is ``geo @ c_g`` and ``ref @ c_r`` with c ~ N(0, I).
    """
    config = DetailConfig() if config is None else config
    m = model.to(dtype=torch.float32)
    g = torch.Generator().manual_seed(config.seed)
    n = vertex_normals(m.mean_shape[None], m.faces)[0]  # (V, 3) outward, model space
    kg, kr = config.geometry_modes, config.reflectance_modes
    spec_g = (1.0 + torch.arange(kg, dtype=torch.float32)) ** (-config.decay)
    spec_r = (1.0 + torch.arange(kr, dtype=torch.float32)) ** (-config.decay)
    bumps = _blobs(m, kg, (8.0, 20.0), g)  # (V, Kg)
    geo = n[:, :, None] * bumps[:, None, :] * (config.geometry_mm * spec_g)  # (V, 3, Kg)
    colours = torch.randn(kr, 3, generator=g)
    colours = colours / colours.norm(dim=1, keepdim=True)  # (Kr, 3) unit RGB directions
    blobs = _blobs(m, kr, (6.0, 25.0), g)  # (V, Kr)
    ref = blobs[:, None, :] * colours.T[None] * (config.reflectance * spec_r)  # (V, 3, Kr)
    return geo, ref


class DetailFaces:
    """A corpus of faces with out-of-3DMM detail and full ground truth, rendered on the fly.

    model: MorphableModel (e.g. ``fl.load_model("synthetic", "teaching", version=1)``).
    size: image H = W in pixels. length: number of samples. seed: sample i depends on (seed, i).
    detail: :class:`DetailConfig`.
    The 3DMM part of each sample (identity, expression, reflectance, pose, light, camera,
    background) is exactly :class:`facelab.data.SyntheticFaces`' sample i with MoFA's sampling
    (no jaw rotation, :func:`facelab.methods.mofa.training.mofa_sampling`).
    """

    def __init__(self, model, size: int = 64, length: int = 1000, seed: int = 0,
                 detail: DetailConfig | None = None):
        self.faces = SyntheticFaces(model, size=size, length=length, seed=seed,
                                    sampling=mofa_sampling())
        self.model = self.faces.model
        self.size, self.length, self.seed = self.faces.size, self.faces.length, self.faces.seed
        self.detail = DetailConfig() if detail is None else detail
        if not isinstance(self.detail, DetailConfig):
            raise TypeError(f"detail: expected DetailConfig, got {type(self.detail).__name__}")
        self.geo_basis, self.ref_basis = detail_bases(self.model, self.detail)

    def __len__(self) -> int:
        return self.length

    def detail_coefficients(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_g (B, K_g), c_r (B, K_r)) ~ N(0, 1) of samples start .. start + count - 1."""
        cg, cr = [], []
        for i in range(start, start + count):
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + i + 7_777_777)
            cg.append(torch.randn(self.detail.geometry_modes, generator=g))
            cr.append(torch.randn(self.detail.reflectance_modes, generator=g))
        return torch.stack(cg), torch.stack(cr)

    def batch(self, start: int, count: int) -> dict:
        """Render samples ``start .. start + count - 1``: a dict of batched tensors.

        As :meth:`facelab.data.SyntheticFaces.batch` (image, mask, id, exp, albedo, angles,
        rotation, gamma, translation, focal, principal, verts (with detail, model space),
        verts_cam, screen_verts, landmarks_2d, visible), plus vertex_offsets (B, V, 3) mm and
        albedo_offsets (B, V, 3) (the detail), reflectance (B, V, 3) (the true per-vertex
        albedo, 3DMM + detail) and irradiance (B, V, 3) (the true shading, colour / albedo).
        """
        count = check_int(count, name="count", minimum=1)
        params, camera, extras = self.faces.sample(start, count)
        cg, cr = self.detail_coefficients(start, count)
        geo = torch.einsum("vdk,bk->bvd", self.geo_basis, cg)  # (B, V, 3) mm
        ref = torch.einsum("vdk,bk->bvd", self.ref_basis, cr)  # (B, V, 3)
        params = params.replace(vertex_offsets=geo, albedo_offsets=ref)
        formed = form(self.model, params, camera)
        size = self.size
        bg = torch.cat([random_backgrounds(1, size, torch.Generator().manual_seed(seed))
                        for seed in extras["background_seed"]])
        image, mask = render(formed, size, size, background=bg)
        visible = vertex_visibility(formed.screen_verts, self.model.faces, size, size)
        irradiance = formed.colors / formed.albedo.clamp(min=1e-3)
        out = dict(image=image.clamp(0, 1), mask=mask, id=params.id, exp=params.exp,
                   albedo=params.albedo, angles=extras["angles"], rotation=params.rotation,
                   gamma=params.gamma, translation=params.translation, verts=formed.verts,
                   verts_cam=formed.verts_cam, screen_verts=formed.screen_verts,
                   landmarks_2d=formed.landmarks_2d, visible=visible, vertex_offsets=geo,
                   albedo_offsets=ref, reflectance=formed.albedo, irradiance=irradiance)
        out.update(focal=camera.focal, principal=camera.principal)
        return {k: v.detach() for k, v in out.items()}
