"""Per-image correctives by optimisation: what each regulariser prevents, on one image.

The final level's extreme case is a corrective space with one free parameter per vertex
coordinate (M = identity, C = 3N): "all corrective per-vertex displacements are independent
and thus the reconstruction problem is severely underconstrained" (supp. Sec. 4). Fitting such
free correctives to one image with and without each regulariser shows the failure modes of
Figs. 5-7 in seconds, without training a network (the notebook's demonstration):

    E = w_photo E_photo(final) + w_smo E_smo + w_sta E_sta + w_ref E_ref + w_glo E_glo

over free vertex offsets D (N, 3) mm, reflectance offsets (N, 3) and the final light gamma,
from given base parameters (e.g. a regressed or the true 3DMM part). Images form through
:func:`facelab.form` (``vertex_offsets`` / ``albedo_offsets``).
"""

from __future__ import annotations

import torch

from facelab._checks import check_int, check_positive, check_shape
from facelab.face_params import FaceParams
from facelab.formation import form
from facelab.losses import shaded_photometric_loss
from facelab.methods.mofa.decoder import visible_vertices
from facelab.methods.multilevel import regularisers as R
from facelab.methods.multilevel.loss import MultilevelLossConfig
from facelab.progress import track

__all__ = ["fit_free_correctives"]


def fit_free_correctives(model, params: FaceParams, camera, image, *,
                         config: MultilevelLossConfig | None = None, steps: int = 150,
                         lr_geometry: float = 0.2, lr_reflectance: float = 0.01,
                         callback=None):
    """Fit free per-vertex correctives (and the light) to ``image`` from ``params``.

    model: MorphableModel. params: base :class:`FaceParams` (B images; kept fixed except gamma).
    camera: its camera. image: (B, H, W, 3) in [0, 1].
    config: the weights (default: the supplement's; only photo, smo, sta, ref, glo, alpha, p
        are used). steps: Adam steps. lr_geometry (mm per step), lr_reflectance: step sizes.
    callback: None (tqdm) or a :class:`facelab.progress.Callback`.
    Returns the final :class:`FaceParams` (vertex_offsets, albedo_offsets, gamma set; detached).
    """
    config = MultilevelLossConfig() if config is None else config
    if not isinstance(params, FaceParams):
        raise TypeError(f"params: expected a FaceParams, got {type(params).__name__}")
    d = check_shape(image, "B H W 3", name="image", dims={"B": params.batch_size})
    steps = check_int(steps, name="steps", minimum=1)
    check_positive(lr_geometry, name="lr_geometry")
    check_positive(lr_reflectance, name="lr_reflectance")
    n = model.num_vertices
    mesh = R.mesh_terms(model)
    geo = torch.zeros(d["B"], n, 3, requires_grad=True)
    ref = torch.zeros(d["B"], n, 3, requires_grad=True)
    gamma = params.gamma.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [geo], "lr": lr_geometry},
                            {"params": [ref, gamma], "lr": lr_reflectance}])
    for _ in (progress := track(range(steps), callback=callback, desc="fit correctives")):
        p = params.replace(vertex_offsets=geo, albedo_offsets=ref, gamma=gamma)
        f = form(model, p, camera, shade=False)
        vis = visible_vertices(f, model, d["H"], d["W"])
        photo = shaded_photometric_loss(image, f.screen_verts[..., :2], f.albedo, f.normals,
                                        gamma, vis)
        chroma = R.image_chromaticity(image, f.screen_verts[..., :2].detach())
        terms = {"photo": photo, "smo": R.smoothness(geo, mesh["L"]).mean(),
                 "sta": R.stabilisation(geo).mean(),
                 "ref": R.local_sparsity(f.albedo, chroma, mesh["edges"], vis,
                                         alpha=config.alpha, p=config.p).mean(),
                 "glo": R.global_constancy(f.albedo, mesh["skin"], mesh["partners"]).mean()}
        total = (config.photo * photo + config.smo * terms["smo"] + config.sta * terms["sta"]
                 + config.ref * terms["ref"] + config.glo * terms["glo"])
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        progress.log({"total": float(total.detach()),
                      **{k: float(v.detach()) for k, v in terms.items()}})
    return params.replace(vertex_offsets=geo.detach(), albedo_offsets=ref.detach(),
                          gamma=gamma.detach())
