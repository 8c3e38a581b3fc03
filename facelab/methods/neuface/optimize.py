"""NeuFace optimisation (Sec. 3.2, Eq. 1, Eq. 7): update Φ's weights w over a whole clip.

Every iteration t feeds all N_F x N_V images of the clip through Φ_{w^t}; the E-step builds
the latent targets from that prediction (:mod:`.estep`), the M-step takes one Adam step on w
for L_2D + λ_temp L_temporal + λ_view L_multiview (:func:`.objective.clip_losses`). The
answer is Φ_{w*} queried on the clip once more. The shipped Φ is never modified (a copy is
optimised), and BatchNorm stays in eval mode, so each image's parameters depend on that
image and w only.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from facelab._checks import check_int, check_positive
from facelab.data.talking import TalkingClip
from facelab.methods.neuface.net import NeuFaceNet
from facelab.methods.neuface.objective import LossWeights, clip_losses
from facelab.model.morphable import MorphableModel

__all__ = ["NeuFaceResult", "network_inputs", "neuface_optimize", "predict"]


@dataclass
class NeuFaceResult:
    """vec: (T N, D) final parameter vectors; history: per-iteration loss terms (floats);
    seconds: wall time; timing: seconds per phase — "setup" (copying Φ, resizing the images),
    "network" (Φ forward), "losses" (formation, E-step and the loss terms), "backward"
    (backward pass and the Adam step) and "final" (querying Φ_w* once more)."""

    vec: torch.Tensor
    history: list = field(default_factory=list)
    seconds: float = 0.0
    timing: dict = field(default_factory=dict)
    net: NeuFaceNet | None = None


def network_inputs(net: NeuFaceNet, clip: TalkingClip) -> torch.Tensor:
    """The clip's images as Φ's input: (T N, S, S, 3), resized (area) to Φ's image size."""
    T, N, H, W, _ = clip.images.shape
    x = clip.images.reshape(T * N, H, W, 3)
    S = net.image_size
    if (H, W) != (S, S):
        x = F.interpolate(x.permute(0, 3, 1, 2), size=(S, S), mode="area").permute(0, 2, 3, 1)
    return x.contiguous()


def predict(net: NeuFaceNet, clip: TalkingClip) -> torch.Tensor:
    """Φ alone ("DECA-dataset" row): (T N, D) per-image predictions, no gradient."""
    net.eval()
    with torch.no_grad():
        return net(network_inputs(net, clip))


def neuface_optimize(model: MorphableModel, net: NeuFaceNet, clip: TalkingClip, *,
                     weights: LossWeights | None = None, iterations: int = 60,
                     lr: float = 3e-4, share_identity: bool = False,
                     callback=None) -> NeuFaceResult:
    """Optimise a copy of Φ's weights on ``clip`` (module docs); returns a NeuFaceResult.

    weights: :class:`LossWeights` (defaults: EM style, every term). iterations: EM
    iterations (one M-step Adam step each). lr: Adam's learning rate on w.
    share_identity: use the mean of Φ's per-image β for every image (one subject per clip,
        :meth:`NeuFaceLayout.share_identity`); the paper leaves β per image and observes that
        it converges by itself (Table S2 b), which is the default.
    callback: optional callable(iteration, terms dict) after each step.
    """
    if not isinstance(net, NeuFaceNet):
        raise TypeError(f"net: expected a NeuFaceNet, got {type(net).__name__}")
    if not isinstance(clip, TalkingClip):
        raise TypeError(f"clip: expected a TalkingClip, got {type(clip).__name__}")
    weights = LossWeights() if weights is None else weights
    if not isinstance(weights, LossWeights):
        raise TypeError(f"weights: expected LossWeights, got {type(weights).__name__}")
    iterations = check_int(iterations, name="iterations", minimum=0)
    lr = check_positive(lr, name="lr")
    t_start = time.perf_counter()
    phi = copy.deepcopy(net).eval()
    images = network_inputs(phi, clip)
    opt = torch.optim.Adam(phi.parameters(), lr=lr)
    history, timing = [], {"network": 0.0, "losses": 0.0, "backward": 0.0}
    timing["setup"] = time.perf_counter() - t_start
    for it in range(iterations):
        t0 = time.perf_counter()
        vec = phi(images)
        if share_identity:
            vec = phi.layout.share_identity(vec)
        t1 = time.perf_counter()
        terms = clip_losses(model, phi.layout, vec, clip, weights)
        t2 = time.perf_counter()
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        t3 = time.perf_counter()
        timing["network"] += t1 - t0
        timing["losses"] += t2 - t1
        timing["backward"] += t3 - t2
        row = {k: float(v.detach()) for k, v in terms.items()}
        history.append(row)
        if callback is not None:
            callback(it, row)
    t0 = time.perf_counter()
    with torch.no_grad():
        vec = phi(images)
        if share_identity:
            vec = phi.layout.share_identity(vec)
    timing["final"] = time.perf_counter() - t0
    return NeuFaceResult(vec, history, time.perf_counter() - t_start, timing, phi)
