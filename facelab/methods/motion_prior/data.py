"""Training motions: synthetic talking-head clips annotated by NeuFace (NeuFace Sec. 4, 5.1).

The paper trains HuMoR-Face on NeuFace-annotated video (NeuFace_VoxCeleb2, NeuFace_MEAD) and
on VOCASET (a small lab capture). Here both roles are played by synthetic clips
(:func:`facelab.data.talking.synthesize_clip`, model version 1, one frontal view, 64 px)
annotated exactly as ``facelab annotate`` does (:func:`facelab.methods.neuface.neuface_optimize`
with Φ = the shipped weights, the default :class:`LossWeights`, 60 EM iterations, lr 3e-4):

* ``diverse`` (the NeuFace-dataset role): identities ~N(0, 1) per mode, eight named
  expressions, head motion of 0.5x-2x (10°, 18°, 6°) pitch / yaw / roll, speech at 3-5
  syllables/s with the jaw opening up to 0.15-0.35 rad, blinks at 0.2-0.6 /s — each drawn per
  clip;
* ``narrow`` (the VOCASET role): identities ~N(0, 0.25²) (faces near the mean), no named
  expression (neutral, with blinks), an almost still frontal head (1.5°, 2°, 0.5°), speech at
  4 syllables/s with the default 0.25 rad jaw.

Each clip becomes its annotated states (:func:`facelab.methods.motion_prior.state.motion_states`
of the NeuFace parameters) and, for diagnosis only, the states of its ground truth. One file
per clip, ``DIR/<set>/clip_<seed>.npz``, written atomically, so a re-run skips finished clips.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from facelab.data.talking import TalkingHeadConfig, synthesize_clip
from facelab.formation import form
from facelab.methods.motion_prior.state import motion_states
from facelab.model.morphable import MorphableModel

__all__ = ["ANNOTATION", "SETS", "annotate_clip", "clip_config", "data_digest", "load_set",
           "make_set", "truth_states"]

FRAMES = 120
"""Frames per clip (4 s at 30 fps, MEAD's clip length)."""

SETS = {"diverse": range(1000, 1040), "diverse-test": range(2000, 2012),
        "narrow": range(3000, 3008)}
"""Clip seeds of each set: 40 diverse training clips, 12 held-out diverse clips (the real
motions of FD and the start states of sampling: NeuFace's hold-out split), 8 narrow clips
(VOCASET is small as well as narrow)."""

ANNOTATION = {"iterations": 60, "lr": 3e-4}
"""NeuFace settings, those of ``facelab annotate``'s defaults."""

_DIVERSE_EXPRESSIONS = ("smile", "brow_raise", "pucker", "frown", "mouth_left", "mouth_right",
                        "cheek_puff", "surprise")


def clip_config(kind: str, seed: int) -> TalkingHeadConfig:
    """The clip recipe of set ``kind`` ("diverse", "diverse-test" or "narrow") for ``seed``
    (per-clip draws come from ``seed``; module docs)."""
    base = TalkingHeadConfig(frames=FRAMES, views=1, image_size=64)
    if kind == "narrow":
        return replace(base, id_scale=0.25, expressions=(), head_amplitude=(1.5, 2.0, 0.5))
    if kind not in ("diverse", "diverse-test"):
        raise ValueError(f"kind: expected 'diverse', 'diverse-test' or 'narrow', got {kind!r}")
    rng = np.random.default_rng(seed + 7919)
    k = float(rng.uniform(0.5, 2.0))
    return replace(base, id_scale=1.0, expressions=_DIVERSE_EXPRESSIONS,
                   head_amplitude=(10.0 * k, 18.0 * k, 6.0 * k),
                   jaw_max=float(rng.uniform(0.15, 0.35)),
                   speech_rate=float(rng.uniform(3.0, 5.0)),
                   blink_rate=float(rng.uniform(0.2, 0.6)))


def _states(model: MorphableModel, rotation, jaw, verts, fps: float) -> torch.Tensor:
    lm = model.landmark_points(verts)  # (T, 68, 3) mm, pose-free
    return motion_states(rotation, jaw, lm, fps=fps)


def truth_states(model: MorphableModel, kind: str, seed: int) -> torch.Tensor:
    """The ground-truth states of clip ``seed`` of set ``kind`` (no rendering, no annotation:
    fast, for demonstrations): (FRAMES - 1, 420) float32."""
    cfg = clip_config(kind, seed)
    clip = synthesize_clip(model, cfg, seed=seed, render_images=False)
    return _states(model, clip.params.rotation, clip.params.jaw, clip.verts, cfg.fps)


def annotate_clip(model: MorphableModel, phi, kind: str, seed: int) -> dict:
    """Synthesize clip ``seed`` of set ``kind`` and annotate it with NeuFace.

    Returns {"states": (T-1, 420) annotated, "gt_states": (T-1, 420) from the truth,
    "seconds": NeuFace time, "nme": %, "mpve": mm} (arrays as float32 NumPy).
    """
    from facelab.methods.neuface import evaluate_clip, neuface_optimize

    cfg = clip_config(kind, seed)
    clip = synthesize_clip(model, cfg, seed=seed)
    torch.manual_seed(seed)
    res = neuface_optimize(model, phi, clip, iterations=ANNOTATION["iterations"],
                           lr=ANNOTATION["lr"])
    metrics = evaluate_clip(model, phi.layout, res.vec, clip)
    H, W = clip.image_size
    with torch.no_grad():
        params, camera = phi.layout.to_face(res.vec, H, W)
        verts = form(model, params, camera, shade=False).verts  # (T, V, 3), one view
    states = _states(model, params.rotation, params.jaw, verts, cfg.fps)
    gt = clip.params
    gt_states = _states(model, gt.rotation, gt.jaw, clip.verts, cfg.fps)
    return {"states": states.numpy(), "gt_states": gt_states.numpy(),
            "seconds": float(res.seconds), "nme": float(metrics["nme"]),
            "mpve": float(metrics["mpve"])}


def make_set(directory, kind: str, model: MorphableModel, phi=None, log=print) -> dict:
    """Annotate every clip of ``SETS[kind]`` into ``directory/kind/clip_<seed>.npz`` (atomic;
    finished clips are skipped). Returns {seed: seconds spent now (0.0 when skipped)}."""
    from facelab.atomic_io import atomic_path
    from facelab.methods.neuface import load_phi

    if kind not in SETS:
        raise ValueError(f"kind: expected one of {sorted(SETS)}, got {kind!r}")
    folder = Path(directory) / kind
    folder.mkdir(parents=True, exist_ok=True)
    spent = {}
    for seed in SETS[kind]:
        path = folder / f"clip_{seed}.npz"
        if path.is_file():
            spent[seed] = 0.0
            continue
        phi = load_phi(model) if phi is None else phi
        t0 = time.perf_counter()
        out = annotate_clip(model, phi, kind, seed)
        meta = {k: out[k] for k in ("seconds", "nme", "mpve")}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, states=out["states"], gt_states=out["gt_states"],
                                meta_json=np.array(json.dumps(meta)))
        spent[seed] = time.perf_counter() - t0
        log(f"{kind} clip {seed}: {spent[seed]:.1f} s (NeuFace {out['seconds']:.1f} s, "
            f"NME {out['nme']:.2f} %, MPVE {out['mpve']:.2f} mm)")
    return spent


def load_set(directory, kind: str, truth: bool = False) -> tuple[list[torch.Tensor], list]:
    """The states of set ``kind``: ([(T-1, 420) float32 per clip], [meta dict per clip]).
    truth: the ground-truth states instead of NeuFace's (diagnosis only)."""
    if kind not in SETS:
        raise ValueError(f"kind: expected one of {sorted(SETS)}, got {kind!r}")
    seqs, metas = [], []
    for seed in SETS[kind]:
        path = Path(directory) / kind / f"clip_{seed}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"directory: {path} is missing; run make_set first")
        with np.load(path, allow_pickle=False) as z:
            seqs.append(torch.from_numpy(z["gt_states" if truth else "states"]))
            metas.append(json.loads(str(z["meta_json"])))
    return seqs, metas


def data_digest(sets: dict) -> str:
    """sha256 (16 hex) of {name: [(T, D) float32 states]} in name order, rounded to 1e-4 so
    the last float32 bit of a re-run on another BLAS does not change it."""
    h = hashlib.sha256()
    for name in sorted(sets):
        h.update(name.encode())
        for s in sets[name]:
            a = np.round(np.asarray(s, dtype=np.float64), 4)
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]

