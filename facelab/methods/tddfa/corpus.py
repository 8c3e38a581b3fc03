"""A 300W-LP-like synthetic corpus for 3DDFA_V2 (Sec. 3.1's training set, on the built-in model).

Faces of the model (truncated to 3DDFA_V2's 40 identity / 10 expression modes, jaw closed,
so the 62-d parameters describe every vertex exactly) rendered by
:class:`facelab.data.SyntheticFaces` under the scaled-orthographic camera across large poses
(yaw U(-90, 90) deg, pitch U(-25, 25), roll U(-20, 20)), with random SH lighting and random
smooth backgrounds (composited with the render's mask, which equals rendering over them).
Optionally each still is expanded into a short clip by :func:`synthesize_video`
(Sec. 2.4). Held-out talking-head clips with head and expression motion
(:func:`build_motion_videos`) serve the stability metric (the role of Menpo-3D in Table 4).

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

__all__ = ["TDDFA_MODEL_VERSION", "TDDFA_SAMPLING", "CorpusSpec", "as_float", "build_corpus",
           "build_motion_videos", "build_videos", "cached", "spec_key", "tddfa_model"]

TDDFA_SAMPLING = FaceSampling(yaw_deg=(-90.0, 90.0), pitch_deg=(-25.0, 25.0),
                              roll_deg=(-20.0, 20.0), jaw_max=0.0, background="none")


#: Version of the built-in model the committed weights and results are made from (the full
#: head, 4,729 vertices at "teaching"); pinned so a new default cannot silently change them.
TDDFA_MODEL_VERSION = 2


def tddfa_model(resolution="teaching", version: int = TDDFA_MODEL_VERSION) -> MorphableModel:
    """The built-in model (``version``; default the one the committed weights were trained
    on) truncated to 3DDFA_V2's 40 identity / 10 expression modes (Sec. 2.1)."""
    from facelab.model.registry import load_model

    return load_model("synthetic", resolution=resolution, version=version).truncated(
        n_id=40, n_exp=10)


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


def _smooth_wave(count: int, frames: int, amp: tuple, period: tuple,
                 g: torch.Generator) -> torch.Tensor:
    """(count, frames) a sin(2 pi t / P + phi) with a ~ U(amp), P ~ U(period) frames."""
    a = torch.empty(count, 1).uniform_(*amp, generator=g)
    a = a * torch.where(torch.rand(count, 1, generator=g) < 0.5, -1.0, 1.0)
    P = torch.empty(count, 1).uniform_(*period, generator=g)
    phi = torch.empty(count, 1).uniform_(0, 2 * math.pi, generator=g)
    t = torch.arange(frames, dtype=torch.float32)[None]
    return a * torch.sin(2 * math.pi * t / P + phi)


def _expression_track(model: MorphableModel, count: int, frames: int,
                      g: torch.Generator) -> torch.Tensor:
    """(count, frames, Kexp) expression coefficients of a talking face: speech-like jaw
    opening (syllables of ~4 frames inside a burst), one or two blinks (2-frame closures),
    a slow smile. Uses the model's named expressions projected on its (truncated) basis."""
    names = model.expressions
    k = model.n_exp
    track = torch.zeros(count, frames, k)
    t = torch.arange(frames, dtype=torch.float32)
    for i in range(count):
        if "jaw_open" in names:
            start = float(torch.randint(0, frames // 3, (), generator=g))
            burst = ((t >= start) & (t < start + frames // 2 + 4)).float()
            syll = torch.sin(math.pi * (t - start) / float(torch.empty(()).uniform_(
                3.0, 5.0, generator=g))).abs()
            amp = float(torch.empty(()).uniform_(0.6, 1.2, generator=g))
            track[i] += (amp * burst * syll)[:, None] * names["jaw_open"][:k]
        if "eye_close" in names:
            for _ in range(int(torch.randint(1, 3, (), generator=g))):
                b = int(torch.randint(1, frames - 2, (), generator=g))
                track[i, b:b + 2] += names["eye_close"][:k]
        if "smile" in names:
            ramp = torch.clamp((t - frames / 3) / (frames / 3), 0, 1)
            amp = float(torch.empty(()).uniform_(0.0, 0.8, generator=g))
            track[i] += (amp * ramp)[:, None] * names["smile"][:k]
    return track


def build_motion_videos(model: MorphableModel, count: int = 8, frames: int = 24,
                        size: int = 64, seed: int = 2000) -> dict:
    """Held-out talking-head clips with real head and expression motion (Table 4's role).

    Unlike :func:`build_videos` (one slow sweep, ~0.6 % of the face box per frame, which a
    predictor that never moves already tracks to 0.63 %), every clip moves the way a
    talking head filmed at ~12 fps does: yaw oscillates by +-10-25 deg (periods of 20-36
    frames) around a start in +-50 deg, pitch by +-4-10 deg, roll by +-3-8 deg, the face
    drifts by +-2-5 px and zooms by +-3-8 %, the jaw opens in syllables inside a talking
    burst, the eyes blink and a smile fades in (:func:`_expression_track`). Identity,
    albedo, light and background stay fixed per clip. The 62-d ground truth describes every
    vertex exactly, so the landmarks are :func:`landmarks_screen` of it.

    Returns image (count, frames, H, W, 3) uint8, params (count, frames, 62),
    landmarks (count, frames, 68, 2) pixels, angles (count, frames, 3) pitch/yaw/roll (rad).
    """
    count = check_int(count, name="count", minimum=1)
    frames = check_int(frames, name="frames", minimum=2)
    ds = SyntheticFaces(model, size=size, length=count, seed=seed, sampling=TDDFA_SAMPLING,
                        camera="scaled_orthographic")
    b = ds.batch(0, count)
    g = torch.Generator().manual_seed(seed)
    bg = random_backgrounds(count, size, g)
    p0 = pack_params(b["T"], b["id"], b["exp"] * 0.5)  # neutral-ish rest expression
    yaw0 = torch.empty(count, 1).uniform_(-50, 50, generator=g)
    ang = torch.stack([
        b["angles"][:, None, 0] * 0.5 + torch.deg2rad(_smooth_wave(count, frames, (4, 10),
                                                                    (16, 30), g)),
        torch.deg2rad(yaw0 + _smooth_wave(count, frames, (10, 25), (20, 36), g)),
        b["angles"][:, None, 2] * 0.5 + torch.deg2rad(_smooth_wave(count, frames, (3, 8),
                                                                    (18, 34), g)),
    ], dim=-1)  # (count, frames, 3)
    shift = torch.stack([_smooth_wave(count, frames, (2, 5), (20, 40), g),
                         _smooth_wave(count, frames, (2, 5), (20, 40), g)], -1)  # (c, T, 2)
    zoom = 1 + _smooth_wave(count, frames, (0.03, 0.08), (24, 48), g)  # (count, frames)
    exp = p0[:, None, 52:] + _expression_track(model, count, frames, g)  # (count, T, 10)
    from facelab.rotations import head_rotation

    f = b["T"][:, :, :3].flatten(1).norm(dim=1) / math.sqrt(3.0)  # (count,)
    images, params = [], []
    for t in range(frames):
        R = head_rotation(ang[:, t])  # (count, 3, 3)
        T = torch.cat([(f * zoom[:, t])[:, None, None] * R, b["T"][:, :, 3:].clone()], dim=2)
        T[:, :2, 3] += shift[:, t]
        p = torch.cat([T.reshape(count, 12), p0[:, 12:52], exp[:, t]], dim=1)  # (count, 62)
        img, _ = render_params(model, p, b["albedo"], b["gamma"], size, bg)
        images.append(_to_uint8(img))
        params.append(p)
    params_t = torch.stack(params, 1)  # (count, frames, 62)
    lm = landmarks_screen(model, params_t.reshape(count * frames, -1), size,
                          TDDFA_LAYOUT).reshape(count, frames, -1, 2)
    return {"image": torch.stack(images, 1), "params": params_t, "landmarks": lm,
            "angles": ang}


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
