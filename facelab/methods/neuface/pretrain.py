"""Pre-training Φ on single synthetic frames: facelab's stand-in for "a pre-trained DECA".

NeuFace starts from an encoder trained on large image collections (Sec. 3.1). Here Φ is
trained by supervision on frames of many synthetic talking-head clips (every view of a few
frames per subject, :mod:`facelab.data.talking`): an L1 loss on the parameter vector in
network units plus an L1 landmark re-projection term. Each image is seen alone, so the
regressor is per-frame and per-view, like DECA: that is what NeuFace optimisation improves.

    python -m facelab.methods.neuface.pretrain --out phi.pt      (about 2-4 min on 2 cores)

The shipped weights (``facelab/methods/neuface/results/phi_v1.pt``) were made by that command
on the built-in model version 1; :func:`load_phi` refuses another model.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from facelab._checks import check_int
from facelab.data.talking import TalkingHeadConfig, synthesize_clip
from facelab.formation import form
from facelab.losses import landmark_l1_loss
from facelab.methods.neuface.layout import NeuFaceLayout
from facelab.methods.neuface.net import NeuFaceNet
from facelab.model.morphable import MorphableModel
from facelab.model.provenance import check_model, model_record

__all__ = ["SHIPPED_PHI", "load_phi", "pretrain_phi", "pretraining_pool", "save_phi"]

SHIPPED_PHI = Path(__file__).resolve().parent / "results" / "phi_v1.pt"
PRETRAIN_COMMAND = "python -m facelab.methods.neuface.pretrain --out phi.pt"


def pretraining_pool(model: MorphableModel, *, subjects: int = 150, frames: int = 3,
                     image_size: int = 64, seed: int = 1000):
    """Training images and targets: ``subjects`` clips of ``frames`` frames, 7 views each
    (frames 0.5 s apart, yaw −60°…+60°), seeds ``seed + i`` (disjoint from evaluation clips,
    which use small seeds). Returns (images (M, H, W, 3), clips list)."""
    cfg = TalkingHeadConfig(frames=max(frames, 4), views=7, image_size=image_size, fps=2.0)
    images, clips = [], []
    for i in range(check_int(subjects, name="subjects", minimum=1)):
        clip = synthesize_clip(model, cfg, seed=seed + i)
        T, N = clip.frames, clip.views
        images.append(clip.images.reshape(T * N, image_size, image_size, 3))
        clips.append(clip)
    return torch.cat(images), clips


def pretrain_phi(model: MorphableModel, *, steps: int = 2000, batch: int = 32,
                 subjects: int = 150, image_size: int = 64, lr: float = 2e-3,
                 landmark_weight: float = 0.05, width: int = 8, hidden: int = 96,
                 seed: int = 0, log=None) -> NeuFaceNet:
    """Train Φ (module docs). Returns the network in eval mode.

    steps, batch: Adam steps on random mini-batches (cosine learning-rate decay from ``lr``).
    landmark_weight: weight of the landmark L1 (pixels) against the parameter L1 (units).
    width, hidden: Φ's size (8 / 96: ~136 k weights, 270 KB in float16).
    log: optional callable(step, loss) every 100 steps.
    """
    torch.manual_seed(seed)
    layout = NeuFaceLayout.for_model(model)
    net = NeuFaceNet(layout, image_size=image_size, width=width, hidden=hidden)
    images, clips = pretraining_pool(model, subjects=subjects, image_size=image_size)
    targets = torch.cat([layout.from_face(c.params, c.camera) for c in clips])  # (M, D)
    landmarks = torch.cat([c.landmarks_2d.reshape(-1, c.landmarks_2d.shape[2], 2)
                           for c in clips])  # (M, L, 2) true projections
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / max(steps, 1))))
    net.train()
    for step in range(check_int(steps, name="steps", minimum=0)):
        idx = torch.randint(0, images.shape[0], (batch,), generator=gen)
        pred = net(images[idx])
        loss = ((pred - targets[idx]).abs() / net.unit).mean()
        if landmark_weight:
            params, camera = layout.to_face(pred, image_size, image_size)
            lm = form(model, params, camera, vertex_subset="landmarks").landmarks_2d
            loss = loss + landmark_weight * landmark_l1_loss(lm, landmarks[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and step % 100 == 0:
            log(step, loss.item())
    return net.eval()


def save_phi(path, net: NeuFaceNet, model: MorphableModel, meta: dict) -> None:
    """Write Φ's weights (float16), configuration and the model record atomically."""
    from facelab.atomic_io import atomic_path

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    blob = {"state_dict": state, "config": net.config(), "model": model_record(model),
            "meta": dict(meta, command=PRETRAIN_COMMAND)}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_phi(model: MorphableModel, path=None) -> NeuFaceNet:
    """Φ from ``path`` (default: the shipped weights) for ``model`` (refuses another model).
    Returns the network in eval mode, float32."""
    p = SHIPPED_PHI if path is None else Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: no such NeuFace weights file: {p}")
    blob = torch.load(p, map_location="cpu", weights_only=True)
    check_model(blob.get("model"), model, what=f"NeuFace weights {p.name}",
                retrain=PRETRAIN_COMMAND)
    cfg = blob["config"]
    layout = NeuFaceLayout(cfg["n_id"], cfg["n_exp"], cfg["jaw"])
    net = NeuFaceNet(layout, image_size=cfg["image_size"], width=cfg["width"],
                     hidden=cfg["hidden"])
    net.load_state_dict({k: v.float() if v.is_floating_point() else v
                         for k, v in blob["state_dict"].items()})
    return net.eval()


def main(argv=None) -> int:
    from facelab.model.registry import load_model

    ap = argparse.ArgumentParser(prog="python -m facelab.methods.neuface.pretrain",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="weights file to write (.pt)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--subjects", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    model = load_model("synthetic", "teaching", version=1)
    t0 = time.time()
    net = pretrain_phi(model, steps=args.steps, subjects=args.subjects, seed=args.seed,
                       log=lambda k, v: print(f"step {k}: loss {v:.4f}", flush=True))
    meta = {"steps": args.steps, "subjects": args.subjects, "seed": args.seed,
            "seconds": round(time.time() - t0, 1)}
    save_phi(args.out, net, model, meta)
    print(f"wrote {args.out} ({meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
