"""The multi-level loss (supplement Sec. 1) with its weights as defaults.

    E = [w_photo E_photo + w_land E_land](base) + [w_photo E_photo + w_land E_land](final)
        + w_reg E_reg(base coefficients; reflectance weighted by w_rstd)
        + w_smo E_smo + w_sta E_sta (geometry correctives) + w_ref E_ref + w_glo E_glo (final
        reflectance)

* Base level: MoFA's loss (:func:`facelab.methods.mofa.mofa_loss`: E_photo Eq. 8, E_land Eq. 9,
  E_reg Eq. 10). The supplement's base weights match MoFA's (w_photo 1.9 vs 1.92, w_reg 3e-5 vs
  2.9e-5, w_rstd 0.002 vs MoFA's reflectance weight 1.7e-3), so w_rstd is read as the
  reflectance weight inside E_reg.
* Final level: E_photo of the final formation (corrected geometry and reflectance, its own
  light) over its front-facing vertices, and E_land on its landmarks.
* Regularisers: :mod:`.regularisers` (definitions and units there).

Landmarks: the supplement's method "uses a sparse set of facial landmarks for supervision"
(supp. Sec. 5, on the comparison with MoFA's weakly supervised training) but gives no w_land.
Pre-training uses MoFA's surrogate weight 1 beside w_photo = 1.9; fine-tuning keeps that ratio
(w_land = 0.2 / 1.9). Without the landmark term the base level collapses on this corpus
(measured in the experiments: "base, photometric only").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab import cameras
from facelab.formation import form
from facelab.losses import landmark_loss, shaded_photometric_loss
from facelab.methods.mofa.decoder import visible_vertices
from facelab.methods.mofa.loss import INNER_LANDMARKS, MofaLossConfig, mofa_loss
from facelab.methods.multilevel import regularisers as R

__all__ = ["MultilevelLossConfig", "multilevel_loss"]


@dataclass(frozen=True)
class MultilevelLossConfig:
    """Weights of the multi-level loss. Defaults: the supplement's fine-tuning weights
    (Sec. 1: w_photo 0.2, w_reg 0.003, w_rstd 0.002, w_smo 3.2e4, w_ref 13, w_glo 80,
    w_sta 0.08); :meth:`pretraining` gives its base-level weights (1.9, 3e-5, 0.002, rest 0).

    land: w_land (not in the supplement; see the module docstring). exp: MoFA's expression
    weight inside E_reg (0.8). alpha, p: of the local reflectance sparsity (ours).
    final: False switches the final level off (pre-training: "we only use the photometric
    alignment term on the base level").
    """

    photo: float = 0.2
    reg: float = 0.003
    rstd: float = 0.002
    smo: float = 3.2e4
    ref: float = 13.0
    glo: float = 80.0
    sta: float = 0.08
    land: float = 0.2 / 1.9
    exp: float = 0.8
    alpha: float = 50.0
    p: float = 0.9
    final: bool = True

    def __post_init__(self):
        for name in ("photo", "reg", "rstd", "smo", "ref", "glo", "sta", "land", "exp",
                     "alpha", "p"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"{name}: expected a number >= 0, got {v!r}")

    @classmethod
    def pretraining(cls, land: float = 1.0) -> MultilevelLossConfig:
        """The base-level pre-training weights of supp. Sec. 1 (+ MoFA's landmark weight)."""
        return cls(photo=1.9, reg=3e-5, rstd=0.002, smo=0.0, ref=0.0, glo=0.0, sta=0.0,
                   land=land, final=False)

    def mofa(self) -> MofaLossConfig:
        """The base level's MoFA loss weights."""
        return MofaLossConfig(photo=self.photo, reg=self.reg, land=self.land, albedo=self.rstd,
                              exp=self.exp)


def multilevel_loss(net, code, model, batch: dict, config: MultilevelLossConfig,
                    mesh: dict | None = None) -> dict[str, torch.Tensor]:
    """The loss of one batch: {"total", "photo", "photo_final", "land", "reg", "smo", "sta",
    "ref", "glo"} (0-d tensors; "total" weighted, the others not).

    net: :class:`.network.MultilevelNet`. code: its :class:`.network.MultilevelCode` for
    ``batch["image"]`` (B, H, W, 3). model: the MorphableModel of the base level (its mode
    counts match ``net.layout``). batch: image, focal (B, 2), principal (B, 2), landmarks_2d
    (B, 68, 2). mesh: :func:`.regularisers.mesh_terms` of the model (needed when
    ``config.final``).
    """
    image = batch["image"]
    H, W = image.shape[1:3]
    base_p, final_p = net.face_params(code)
    camera = cameras.Pinhole(batch["focal"].to(code.base), batch["principal"].to(code.base))
    base_f = form(model, base_p, camera, shade=False)
    terms = mofa_loss(base_f, net.layout.split(code.base), image, model, config=config.mofa(),
                      landmarks=batch["landmarks_2d"])
    zero = torch.zeros((), dtype=code.base.dtype)
    out = {"total": terms["total"], "photo": terms["photo"], "land": terms["land"],
           "reg": terms["reg"]}
    for k in ("photo_final", "smo", "sta", "ref", "glo"):
        out[k] = zero
    if not config.final:
        return out
    if mesh is None:
        raise ValueError("mesh: expected regularisers.mesh_terms(model) when config.final")
    final_f = form(model, final_p, camera, shade=False)
    vis = visible_vertices(final_f, model, H, W)  # (B, N)
    photo_f = shaded_photometric_loss(image, final_f.screen_verts[..., :2], final_f.albedo,
                                      final_f.normals, final_p.gamma, vis)
    land_f = landmark_loss(final_f.landmarks_2d[:, list(INNER_LANDMARKS)],
                           batch["landmarks_2d"][:, list(INNER_LANDMARKS)].to(code.base))
    disp = final_p.vertex_offsets  # (B, N, 3) mm
    refl = final_f.albedo  # (B, N, 3) final reflectance
    chroma = R.image_chromaticity(image, final_f.screen_verts[..., :2].detach())
    out.update(
        photo_final=photo_f,
        smo=R.smoothness(disp, mesh["L"]).mean(),
        sta=R.stabilisation(disp).mean(),
        ref=R.local_sparsity(refl, chroma, mesh["edges"], vis, alpha=config.alpha,
                             p=config.p).mean(),
        glo=R.global_constancy(refl, mesh["skin"], mesh["partners"]).mean())
    out["land"] = terms["land"] + land_f
    out["total"] = (terms["total"] + config.photo * photo_f + config.land * land_f
                    + config.smo * out["smo"] + config.sta * out["sta"]
                    + config.ref * out["ref"] + config.glo * out["glo"])
    return out
