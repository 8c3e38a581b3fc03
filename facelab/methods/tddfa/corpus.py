"""A 300W-LP-like synthetic corpus for 3DDFA_V2 (Sec. 3.1's training set, on the built-in model).

Faces of the model (truncated to 3DDFA_V2's 40 identity / 10 expression modes, jaw closed,
so the 62-d parameters describe every vertex exactly) rendered by
:class:`facelab.data.SyntheticFaces` under the scaled-orthographic camera across large poses
(yaw U(-90, 90) deg, pitch U(-25, 25), roll U(-20, 20)), with random SH lighting and random
smooth backgrounds (composited with the render's mask, which equals rendering over them).
Optionally each still is expanded into a short clip by :func:`synthesize_video`
(Sec. 2.4). Held-out videos with smooth ground-truth head motion serve the stability
metric (the role of Menpo-3D in Table 4).

Images are kept as uint8 (N, H, W, 3); :func:`as_float` converts a batch to [0, 1].
Corpora are cached under ``$FACELAB_CACHE`` (default ``~/.cache/facelab``)/tddfa.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from facelab._checks import check_int
from facelab.data.faces import FaceSampling, SyntheticFaces, random_backgrounds
from facelab.methods.tddfa.params import TDDFA_LAYOUT, pack_params
from facelab.methods.tddfa.reconstruct import landmarks_screen
from facelab.methods.tddfa.synthesis import VideoSynthesis, render_params, synthesize_video
from facelab.model.morphable import MorphableModel

__all__ = ["TDDFA_SAMPLING", "CorpusSpec", "as_float", "build_corpus", "build_videos", "cached",
           "spec_key", "tddfa_model"]

TDDFA_SAMPLING = FaceSampling(yaw_deg=(-90.0, 90.0), pitch_deg=(-25.0, 25.0),
                              roll_deg=(-20.0, 20.0), jaw_max=0.0, background="none")


def tddfa_model(resolution="teaching") -> MorphableModel:
    """The built-in model (version 1, which the committed weights were trained on) truncated
    to 3DDFA_V2's 40 identity / 10 expression modes."""
    from facelab.model.registry import load_model

    return load_model("synthetic", resolution=resolution, version=1).truncated(n_id=40,
                                                                               n_exp=10)


@dataclass(frozen=True)
class CorpusSpec:
    """What :func:`build_corpus` renders. count stills of size x size px from ``seed``;
    clip_frames > 1 also synthesises a clip of that many frames per still (Sec. 2.4)."""

    count: int = 2400
    size: int = 64
    seed: int = 0
    clip_frames: int = 1


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 in [0, 1]."""
    return images.float() / 255.0


def build_corpus(model: MorphableModel, spec: CorpusSpec, chunk: int = 64,
                 progress: bool = False) -> dict:
    """Render a corpus: dict of tensors with leading N (= spec.count).

    image (N, H, W, 3) uint8; params (N, 62) raw p; landmarks (N, 68, 2) facelab pixels;
    angles (N, 3) pitch, yaw, roll (rad). With clip_frames = n > 1 also clip_image
    (N, n, H, W, 3) uint8, clip_params (N, n, 62), clip_landmarks (N, n, 68, 2) (frame 0 is
    the still itself).
    """
    count = check_int(spec.count, name="count", minimum=1)
    ds = SyntheticFaces(model, size=spec.size, length=count, seed=spec.seed,
                        sampling=TDDFA_SAMPLING, camera="scaled_orthographic")
    keys = ("image", "params", "landmarks", "angles")
    out: dict[str, list] = {k: [] for k in keys}
    clips: dict[str, list] = {"clip_image": [], "clip_params": [], "clip_landmarks": []}
    gen = torch.Generator().manual_seed(10_007 * spec.seed + 17)
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        b = ds.batch(start, n)
        bg = random_backgrounds(n, spec.size, gen)
        image = torch.where(b["mask"][..., None], b["image"], bg)
        p = pack_params(b["T"], b["id"], b["exp"])
        out["image"].append(_to_uint8(image))
        out["params"].append(p)
        out["landmarks"].append(b["landmarks_2d"])
        out["angles"].append(b["angles"])
        if spec.clip_frames > 1:
            v = synthesize_video(model, p, b["albedo"], b["gamma"], bg,
                                 VideoSynthesis(frames=spec.clip_frames), gen)
            v["images"][:, 0] = image
            clips["clip_image"].append(_to_uint8(v["images"]))
            clips["clip_params"].append(v["params"])
            clips["clip_landmarks"].append(v["landmarks"])
        if progress:
            print(f"corpus seed {spec.seed}: {start + n}/{count}", flush=True)
    result = {k: torch.cat(v) for k, v in out.items()}
    if spec.clip_frames > 1:
        result.update({k: torch.cat(v) for k, v in clips.items()})
    return result


def build_videos(model: MorphableModel, count: int = 8, frames: int = 24, size: int = 64,
                 seed: int = 1000) -> dict:
    """Held-out videos with smooth head motion (the stability benchmark, Table 4's role).

    Each video: one identity / expression / light / background; yaw sweeps by up to
    +-30 deg, pitch by +-10 deg and the face drifts by up to 4 px over ``frames`` frames.
    Returns image (count, frames, H, W, 3) uint8, params (count, frames, 62),
    landmarks (count, frames, 68, 2), angles (count, frames, 3).
    """
    ds = SyntheticFaces(model, size=size, length=count, seed=seed, sampling=TDDFA_SAMPLING,
                        camera="scaled_orthographic")
    b = ds.batch(0, count)
    g = torch.Generator().manual_seed(seed)
    bg = random_backgrounds(count, size, g)
    p0 = pack_params(b["T"], b["id"], b["exp"])
    yaw0 = torch.deg2rad(torch.empty(count).uniform_(-60, 60, generator=g))
    sweep = torch.deg2rad(torch.empty(count).uniform_(-30, 30, generator=g))
    pitch = torch.deg2rad(torch.empty(count).uniform_(-10, 10, generator=g))
    drift = torch.empty(count, 2).uniform_(-4, 4, generator=g)
    images, params, angles = [], [], []
    from facelab.rotations import head_rotation

    for t in range(frames):
        s = t / max(frames - 1, 1)
        ang = torch.stack([b["angles"][:, 0] + pitch * math.sin(math.pi * s),
                           yaw0 + sweep * s, b["angles"][:, 2]], dim=1)  # (count, 3)
        R = head_rotation(ang)
        f = b["T"][:, :, :3].flatten(1).norm(dim=1) / math.sqrt(3.0)
        T = torch.cat([f[:, None, None] * R, b["T"][:, :, 3:].clone()], dim=2)
        T[:, :2, 3] += drift * s
        p = torch.cat([T.reshape(count, 12), p0[:, 12:]], dim=1)
        img, _ = render_params(model, p, b["albedo"], b["gamma"], size, bg)
        images.append(_to_uint8(img))
        params.append(p)
        angles.append(ang)
    params_t = torch.stack(params, 1)
    lm = landmarks_screen(model, params_t.reshape(count * frames, -1), size,
                          TDDFA_LAYOUT).reshape(count, frames, -1, 2)
    return {"image": torch.stack(images, 1), "params": params_t, "landmarks": lm,
            "angles": torch.stack(angles, 1)}


def _cache_dir() -> Path:
    root = os.environ.get("FACELAB_CACHE", str(Path.home() / ".cache" / "facelab"))
    return Path(root) / "tddfa"


def cached(name: str, build, **key) -> dict:
    """Load ``name`` built with ``key`` from the cache, or call ``build()`` and store it."""
    tag = "_".join(f"{k}{v}" for k, v in sorted(key.items()))
    path = _cache_dir() / f"{name}_{tag}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    data = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(path)
    return data


def spec_key(spec: CorpusSpec) -> dict:
    return asdict(spec)
