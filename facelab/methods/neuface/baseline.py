"""The fitting baseline, NeuFace Eq. (5) (App. E.1): optimise the parameters directly.

Per image b (frame and view), [r_b, θ_b, β_b, ψ_b, p_b] start from Φ's predictions (the
paper initialises from pre-trained DECA) and minimise the same L_2D + λ_temp L_temporal +
λ_view L_multiview as NeuFace plus the usual priors

    λ_r ||r_b − r_b^0||² + λ_θ ||θ_b||² + λ_β ||β_b||² + λ_ψ ||ψ_b||²

(averaged over images; r's prior keeps the orientation near its initial value). Coarse to
fine as in FLAME fitting: first the head orientation and camera alone on L_2D, then, with
the camera fixed, orientation, jaw, shape and expression together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from facelab._checks import check_int
from facelab.data.talking import TalkingClip
from facelab.methods.neuface.layout import NeuFaceLayout
from facelab.methods.neuface.objective import LossWeights, clip_losses
from facelab.model.morphable import MorphableModel

__all__ = ["BaselineConfig", "fit_baseline"]


@dataclass(frozen=True)
class BaselineConfig:
    """Steps, learning rates and prior weights of Eq. (5) (not stated in the paper)."""

    coarse_steps: int = 40
    fine_steps: int = 80
    lr: float = 1e-2
    lambda_r: float = 1e-2
    lambda_jaw: float = 1e-1
    lambda_id: float = 2e-3
    lambda_exp: float = 2e-3


def fit_baseline(model: MorphableModel, layout: NeuFaceLayout, init: torch.Tensor,
                 clip: TalkingClip, *, weights: LossWeights | None = None,
                 config: BaselineConfig | None = None, callback=None):
    """Direct per-image fitting (module docs).

    init: (T N, D) initial vectors (Φ's predictions). Returns ``(vec (T N, D), seconds)``.
    """
    weights = LossWeights() if weights is None else weights
    cfg = BaselineConfig() if config is None else config
    check_int(cfg.coarse_steps, name="coarse_steps", minimum=0)
    check_int(cfg.fine_steps, name="fine_steps", minimum=0)
    t0 = time.perf_counter()
    blocks = {k: v.detach().clone() for k, v in layout.split(init.detach()).items()}
    r0 = blocks["rotation"].clone()
    coarse_only = LossWeights(lambda_temp=0.0, lambda_view=0.0)

    def run(names, steps, w, with_priors):
        leaves = {k: blocks[k].requires_grad_(True) for k in names if blocks[k].shape[1]}
        opt = torch.optim.Adam(list(leaves.values()), lr=cfg.lr)
        for step in range(steps):
            vec = layout.pack(blocks)
            terms = clip_losses(model, layout, vec, clip, w)
            loss = terms["total"]
            if with_priors:
                loss = loss + cfg.lambda_r * ((blocks["rotation"] - r0) ** 2).sum(1).mean()
                loss = loss + cfg.lambda_id * (blocks["id"] ** 2).sum(1).mean()
                loss = loss + cfg.lambda_exp * (blocks["exp"] ** 2).sum(1).mean()
                if layout.jaw:
                    loss = loss + cfg.lambda_jaw * (blocks["jaw"] ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if callback is not None:
                callback(step, {k: float(v.detach()) for k, v in terms.items()})
        for k in leaves:
            blocks[k] = blocks[k].detach()

    run(("rotation", "camera"), cfg.coarse_steps, coarse_only, False)
    run(("rotation", "jaw", "id", "exp"), cfg.fine_steps, weights, True)
    return layout.pack(blocks).detach(), time.perf_counter() - t0
