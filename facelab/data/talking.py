"""Synthetic talking-head clips with ground truth: NeuFace's MEAD / VoxCeleb2 role (Sec. 4).

One subject per clip, filmed by ``views`` synchronised weak-perspective cameras spread in yaw
(MEAD's rig spans −60° … +60°), for ``frames`` frames of

* smooth head motion (a few slow sinusoids in pitch, yaw, roll and a small drift of the
  head in the image plane),
* speech-like jaw oscillation (syllables at ~4 Hz inside talking bursts) on the model's jaw
  joint (or its ``jaw_open`` expression on a model without one),
* blinks (``eye_close`` bumps) and transitions between named expressions (smoothstep blends),

rendered through :func:`facelab.form` / :func:`facelab.render` over a static background per
view, with 2D landmark "detections" = the projected truth + Gaussian noise + occasional
outliers and dropouts (a detector's failure modes; dropouts carry weight 0).

Everything is stacked frame-major, (T, N, ...): frame f, view v. Model-agnostic: blocks the
model has no joint for (neck, eyes, jaw) stay None, so a v1 (jaw only) and a full-head model
both work. Clip ``seed`` fixes every random choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from facelab._checks import check_int, check_positive
from facelab.camera_objects import WeakPerspective
from facelab.face_params import FaceParams
from facelab.formation import form, render
from facelab.lighting import random_sh
from facelab.model.morphable import MorphableModel
from facelab.rotations import head_rotation

__all__ = ["CLIP_DEPTH_MM", "TalkingClip", "TalkingHeadConfig", "clip_from_frames", "has_joint",
           "load_clip",
           "synthesize_clip"]

CLIP_DEPTH_MM = 1000.0
"""Camera-space z of the head origin (only the rasterizer's depth sees it: weak perspective)."""

_FACE_HEIGHT_MM = 200.0


def has_joint(model: MorphableModel, name: str) -> bool:
    """Whether ``model``'s skeleton has the joint ``name`` ("jaw", "neck", "eye_left", ...)."""
    return model.skeleton is not None and name in model.skeleton.names


@dataclass(frozen=True)
class TalkingHeadConfig:
    """What a clip looks like (angles in degrees, lengths in mm, rates in Hz).

    frames, views, image_size, fps: clip size (MEAD: ~120 frames at 30 fps, 7 views).
    yaw_range: the views' camera yaws are evenly spaced in this range (one view: its middle).
    id_scale: identity coefficients ~ N(0, id_scale²) (the bases are std-scaled).
    head_amplitude: (pitch, yaw, roll) amplitude of the head's own motion.
    jaw_max: largest jaw opening (rad); speech_rate: syllables per second.
    blink_rate: blinks per second; expression_hold: mean seconds per named expression.
    expressions: named expressions to move between (those the model lacks are skipped).
    face_fraction: face height as a fraction of the image height (sets the scale s).
    landmark_noise: std of the detection noise (pixels); outlier_prob: chance a detected
        landmark is an outlier displaced by U(−outlier_px, outlier_px) per axis;
        dropout_prob: chance a landmark is missing (weight 0).
    """

    frames: int = 120
    views: int = 7
    image_size: int = 64
    fps: float = 30.0
    yaw_range: tuple[float, float] = (-60.0, 60.0)
    id_scale: float = 0.7
    head_amplitude: tuple[float, float, float] = (8.0, 12.0, 4.0)
    jaw_max: float = 0.25
    speech_rate: float = 4.0
    blink_rate: float = 0.4
    expression_hold: float = 1.5
    expressions: tuple[str, ...] = ("smile", "surprise", "frown", "brow_raise", "pucker")
    face_fraction: float = 0.7
    landmark_noise: float = 0.4
    outlier_prob: float = 0.02
    outlier_px: float = 6.0
    dropout_prob: float = 0.02

    def __post_init__(self):
        check_int(self.frames, name="frames", minimum=4)
        check_int(self.views, name="views", minimum=1)
        check_int(self.image_size, name="image_size", minimum=16)
        check_positive(self.fps, name="fps")
        check_positive(self.face_fraction, name="face_fraction")
        for name in ("landmark_noise", "outlier_prob", "outlier_px", "dropout_prob",
                     "jaw_max", "blink_rate", "id_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected a value >= 0, got {getattr(self, name)!r}")
        if not (self.outlier_prob <= 1 and self.dropout_prob <= 1):
            raise ValueError("outlier_prob, dropout_prob: expected probabilities in [0, 1]")

    def yaws(self) -> np.ndarray:
        """(N,) camera yaws in degrees."""
        lo, hi = self.yaw_range
        if self.views == 1:
            return np.array([0.5 * (lo + hi)])
        return np.linspace(lo, hi, self.views)


@dataclass
class TalkingClip:
    """One clip, frame-major (T frames, N views, L landmarks, V vertices).

    images: (T, N, H, W, 3) float32 in [0, 1].
    detections: (T, N, L, 2) float32 detected landmarks (pixels); detection_weights:
        (T, N, L) float32, 0 where a landmark is missing.
    yaws: (N,) camera yaws (degrees), or None when unknown (real video).
    Ground truth (None for real video): params — :class:`FaceParams` of batch T N (index
    f N + v); camera — :class:`WeakPerspective` of batch T N; verts — (T, V, 3) model-space
    meshes (identity, expression, jaw; pose-free, the same for every view); landmarks_2d —
    (T, N, L, 2) true projections.
    """

    images: torch.Tensor
    detections: torch.Tensor
    detection_weights: torch.Tensor
    yaws: np.ndarray | None = None
    params: FaceParams | None = None
    camera: WeakPerspective | None = None
    verts: torch.Tensor | None = None
    landmarks_2d: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.images.shape[0])

    @property
    def views(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def save(self, path) -> None:
        """Write an ``.npz`` (images as uint8) atomically; :func:`load_clip` reads it back.

        Keys: ``images`` (T, N, H, W, 3) uint8, ``detections`` (T, N, L, 2) float32,
        ``detection_weights`` (T, N, L) float32 — the input format of ``facelab annotate``
        — and, for synthetic clips, ``yaws``, ``gt_verts`` (T, V, 3), ``gt_landmarks_2d``,
        ``gt_rotation`` (T, N, 3, 3), ``gt_id`` (T N, Kid), ``gt_exp``, ``gt_jaw``,
        ``gt_scale`` (T, N), ``gt_trans`` (T, N, 2), and ``meta_json``.
        """
        import json

        from facelab.atomic_io import atomic_path

        T, N = self.frames, self.views
        arrays = {
            "images": np.round(self.images.numpy() * 255).astype(np.uint8),
            "detections": self.detections.numpy().astype(np.float32),
            "detection_weights": self.detection_weights.numpy().astype(np.float32),
            "meta_json": np.array(json.dumps(self.meta)),
        }
        if self.yaws is not None:
            arrays["yaws"] = np.asarray(self.yaws, dtype=np.float64)
        if self.params is not None:
            p = self.params
            arrays.update(
                gt_verts=self.verts.numpy(), gt_landmarks_2d=self.landmarks_2d.numpy(),
                gt_rotation=p.rotation.reshape(T, N, 3, 3).numpy(), gt_id=p.id.numpy(),
                gt_exp=p.exp.numpy(), gt_scale=self.camera.scale.reshape(T, N).numpy(),
                gt_trans=self.camera.trans.reshape(T, N, 2).numpy())
            if p.jaw is not None:
                arrays["gt_jaw"] = p.jaw.numpy()
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_clip(path) -> TalkingClip:
    """Read a clip ``.npz`` (:meth:`TalkingClip.save`'s format; only ``images`` and
    ``detections`` are required, ``detection_weights`` defaults to ones). Ground truth comes
    back as far as it is stored (``verts``, ``landmarks_2d``, ``params`` and ``camera``)."""
    import json

    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    for key in ("images", "detections"):
        if key not in data:
            raise ValueError(f"{path}: not a clip file (missing {key!r})")
    images = data["images"]
    if images.ndim != 5 or images.shape[-1] != 3:
        raise ValueError(f"{path}: images: expected (T, N, H, W, 3), got {images.shape}")
    images = torch.from_numpy(images.astype(np.float32) / (255.0 if images.dtype == np.uint8
                                                           else 1.0))
    det = torch.from_numpy(data["detections"].astype(np.float32))
    T, N = images.shape[:2]
    if det.ndim != 4 or tuple(det.shape[:2]) != (T, N) or det.shape[-1] != 2:
        raise ValueError(f"{path}: detections: expected ({T}, {N}, L, 2), got "
                         f"{tuple(det.shape)}")
    w = data.get("detection_weights")
    w = torch.ones(det.shape[:3]) if w is None else torch.from_numpy(w.astype(np.float32))
    clip = TalkingClip(images, det, w, yaws=data.get("yaws"))
    if "meta_json" in data:
        clip.meta = json.loads(str(data["meta_json"]))
    if "gt_verts" in data:
        clip.verts = torch.from_numpy(data["gt_verts"])
        clip.landmarks_2d = torch.from_numpy(data["gt_landmarks_2d"])
        H, W = clip.image_size
        clip.camera = WeakPerspective(torch.from_numpy(data["gt_scale"]).reshape(-1),
                                      torch.from_numpy(data["gt_trans"]).reshape(-1, 2), H, W)
        jaw = data.get("gt_jaw")
        clip.params = FaceParams(
            id=torch.from_numpy(data["gt_id"]), exp=torch.from_numpy(data["gt_exp"]),
            rotation=torch.from_numpy(data["gt_rotation"]).reshape(-1, 3, 3),
            jaw=None if jaw is None else torch.from_numpy(jaw))
    return clip


# ------------------------------------------------------------------ motion generators
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _head_angles(cfg: TalkingHeadConfig, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, 3) radians: per axis, three sinusoids of 0.1-0.6 Hz with random phases."""
    out = np.zeros((len(t), 3))
    for axis, amp in enumerate(cfg.head_amplitude):
        freqs = rng.uniform(0.1, 0.6, 3)
        phases = rng.uniform(0, 2 * math.pi, 3)
        weights = rng.dirichlet(np.ones(3))
        wave = sum(w * np.sin(2 * math.pi * f * t + p)
                   for w, f, p in zip(weights, freqs, phases, strict=True))
        out[:, axis] = math.radians(amp) * wave
    return out


def _jaw_track(cfg: TalkingHeadConfig, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T,) jaw opening (rad): syllables inside talking bursts with pauses."""
    rate = cfg.speech_rate * (1.0 + 0.25 * np.sin(2 * math.pi * rng.uniform(0.2, 0.5) * t
                                                  + rng.uniform(0, 2 * math.pi)))
    phase = 2 * math.pi * np.cumsum(rate) / cfg.fps + rng.uniform(0, 2 * math.pi)
    syllables = 0.5 - 0.5 * np.cos(phase)
    envelope = np.zeros_like(t)
    start = rng.uniform(-0.5, 0.3)
    while start < t[-1] + 1.0:
        length = rng.uniform(0.8, 2.0)
        rise = _smoothstep((t - start) / 0.15) * (1.0 - _smoothstep((t - start - length) / 0.15))
        envelope = np.maximum(envelope, rng.uniform(0.6, 1.0) * rise)
        start += length + rng.uniform(0.2, 0.8)
    return cfg.jaw_max * envelope * syllables


def _expression_weights(cfg: TalkingHeadConfig, names: list[str], t: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """(T, len(names)) amounts: segments of one named expression (or neutral), blended."""
    amounts = np.zeros((len(t), len(names)))
    if not names:
        return amounts
    start, prev = t[0] - rng.uniform(0, cfg.expression_hold), np.zeros(len(names))
    while start < t[-1]:
        target = np.zeros(len(names))
        choice = rng.integers(0, len(names) + 1)  # len(names) = neutral
        if choice < len(names):
            target[choice] = rng.uniform(0.4, 0.9)
        blend = _smoothstep((t - start) / 0.4)[:, None]  # a 0.4 s transition
        active = (t >= start)[:, None]
        amounts = np.where(active, prev + blend * (target - prev), amounts)
        prev = target
        start += cfg.expression_hold * rng.uniform(0.6, 1.4)
    return amounts


def _blinks(cfg: TalkingHeadConfig, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T,) eye closure in [0, 1]: raised-cosine bumps of 0.2 s at Poisson times."""
    out = np.zeros_like(t)
    if cfg.blink_rate <= 0:
        return out
    when = t[0] + rng.exponential(1.0 / cfg.blink_rate)
    while when < t[-1]:
        x = (t - when) / 0.1
        out = np.maximum(out, np.where(np.abs(x) < 1, 0.5 + 0.5 * np.cos(math.pi * x), 0.0))
        when += rng.exponential(1.0 / cfg.blink_rate) + 0.3
    return out


def synthesize_clip(model: MorphableModel, config: TalkingHeadConfig | None = None, *,
                    seed: int = 0, render_images: bool = True, chunk: int = 64) -> TalkingClip:
    """Make one talking-head clip with ground truth (module docstring).

    model: any :class:`MorphableModel` (named expressions and a jaw joint are used when
        present). config: :class:`TalkingHeadConfig` (default: 120 frames, 7 views, 64 px).
    seed: fixes the subject, motion, light, backgrounds and detection noise.
    render_images: False skips rasterization (images are then zeros): for landmark-only use.
    chunk: images rendered per call.
    Returns a :class:`TalkingClip` (float32, CPU).
    """
    from facelab.data.faces import random_backgrounds

    cfg = config if config is not None else TalkingHeadConfig()
    if not isinstance(cfg, TalkingHeadConfig):
        raise TypeError(f"config: expected a TalkingHeadConfig, got {type(cfg).__name__}")
    seed = check_int(seed, name="seed", minimum=0)
    chunk = check_int(chunk, name="chunk", minimum=1)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    m = model.to(dtype=torch.float32)
    T, N, S = cfg.frames, cfg.views, cfg.image_size
    t = np.arange(T) / cfg.fps

    # --- subject and per-frame face (shared by every view) ---
    id_coeffs = torch.from_numpy(rng.normal(0, cfg.id_scale, m.n_id)).float()
    albedo = torch.from_numpy(rng.normal(0, 0.8, m.n_albedo)).float()
    names = [n for n in cfg.expressions if n in m.expressions]
    exp = torch.zeros(T, m.n_exp)
    if names:
        amounts = torch.from_numpy(_expression_weights(cfg, names, t, rng)).float()
        exp = exp + amounts @ torch.stack([m.expressions[n] for n in names])
    if "eye_close" in m.expressions:
        blink = torch.from_numpy(_blinks(cfg, t, rng)).float()
        exp = exp + blink[:, None] * m.expressions["eye_close"][None]
    jaw_angle = torch.from_numpy(_jaw_track(cfg, t, rng)).float()  # (T,)
    jaw = None
    if has_joint(m, "jaw"):
        jaw = torch.zeros(T, 3)
        jaw[:, 0] = jaw_angle
    elif "jaw_open" in m.expressions:
        exp = exp + (jaw_angle / max(cfg.jaw_max, 1e-6))[:, None] * m.expressions["jaw_open"]
    head = torch.from_numpy(_head_angles(cfg, t, rng)).float()  # (T, 3)
    drift = rng.normal(0, 1, (2, 3))  # image-plane drift of the head (mm), two sinusoids
    shift_mm = np.stack([drift[0, k] * 4.0 * np.sin(2 * math.pi * 0.15 * t + drift[1, k])
                         for k in range(2)], axis=1)  # (T, 2)

    # --- views: a yaw rig around the subject ---
    yaws = cfg.yaws()
    view_rot = head_rotation(torch.tensor([[0.0, math.radians(y), 0.0] for y in yaws]))  # (N,3,3)
    rot = view_rot[None] @ head_rotation(head)[:, None]  # (T, N, 3, 3): camera yaw after the head
    s0 = 2.0 * cfg.face_fraction / _FACE_HEIGHT_MM
    scale = s0 * torch.from_numpy(rng.uniform(0.93, 1.07, N)).float()  # (N,) per camera
    offset = torch.from_numpy(rng.uniform(-0.05, 0.05, (N, 2))).float()  # (N, 2) normalised
    trans = offset[None] + scale[None, :, None] * torch.from_numpy(shift_mm).float()[:, None]

    B = T * N
    params = FaceParams(
        id=id_coeffs.expand(B, -1).clone(), exp=exp.repeat_interleave(N, 0),
        albedo=albedo.expand(B, -1).clone(), rotation=rot.reshape(B, 3, 3),
        translation=torch.tensor([0.0, 0.0, CLIP_DEPTH_MM]).expand(B, 3).clone(),
        gamma=random_sh(N, generator=gen, front=(0.0, 0.0, -1.0)).repeat(T, 1, 1),
        jaw=None if jaw is None else jaw.repeat_interleave(N, 0))
    camera = WeakPerspective(scale.repeat(T), trans.reshape(B, 2), S, S)
    backgrounds = random_backgrounds(N, S, gen)  # (N, S, S, 3), static per view
    images = torch.zeros(B, S, S, 3)
    lm2d, verts = [], None
    with torch.no_grad():
        for lo in range(0, B, chunk):
            hi = min(B, lo + chunk)
            f = form(m, params[lo:hi], camera[lo:hi])
            lm2d.append(f.landmarks_2d)
            if render_images:
                bg = backgrounds.repeat(T, 1, 1, 1)[lo:hi]
                images[lo:hi] = render(f, S, S, background=bg)[0].clamp(0, 1)
        first_view = params[torch.arange(T) * N]
        verts = form(m, first_view, camera[0]).verts  # (T, V, 3) pose-free truth
    lm2d = torch.cat(lm2d).reshape(T, N, -1, 2)

    # --- detections: noise, outliers, dropouts ---
    L = lm2d.shape[2]
    noise = torch.from_numpy(rng.normal(0, cfg.landmark_noise, (T, N, L, 2))).float()
    outlier = torch.from_numpy(rng.random((T, N, L)) < cfg.outlier_prob)
    jump = torch.from_numpy(rng.uniform(-cfg.outlier_px, cfg.outlier_px, (T, N, L, 2))).float()
    detections = lm2d + noise + outlier[..., None] * jump
    weights = torch.from_numpy((rng.random((T, N, L)) >= cfg.dropout_prob).astype(np.float32))
    detections = detections * weights[..., None]  # a missing landmark reads (0, 0), weight 0
    meta = {"seed": seed, "model": m.name if hasattr(m, "name") else str(m),
            "frames": T, "views": N, "image_size": S, "yaws": [float(y) for y in yaws]}
    return TalkingClip(images.reshape(T, N, S, S, 3), detections, weights, yaws=yaws,
                       params=params, camera=camera, verts=verts, landmarks_2d=lm2d, meta=meta)


def clip_from_frames(frames, landmarks=None, *, size: int = 64, margin: float = 1.5):
    """A single-view :class:`TalkingClip` from real video frames (no ground truth).

    frames: (T, H, W, 3) float in [0, 1] (e.g. :func:`facelab.image_io.read_video`).
    landmarks: (T, 68, 2) iBUG points in pixels, or None to detect them per frame with
        MediaPipe (:func:`facelab.landmarks.detect`, the ``landmarks`` extra); a frame
        without a face gets weight 0 for all its points.
    size: output image size; margin: the square crop's side over the landmarks' extent.
    One square crop for the whole clip (a fixed camera, as NeuFace's clips are): centred on
    the union of the landmark boxes, resized (area) to ``size``; the points follow.
    """
    import torch.nn.functional as F

    x = torch.as_tensor(frames, dtype=torch.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"frames: expected (T, H, W, 3), got {tuple(x.shape)}")
    T = x.shape[0]
    size = check_int(size, name="size", minimum=16)
    if landmarks is None:
        from facelab.landmarks import detect

        pts, ok = np.zeros((T, 68, 2), np.float32), np.zeros(T, bool)
        for t in range(T):
            det = detect(x[t])
            if det is not None:
                pts[t], ok[t] = det.landmarks, True
    else:
        pts = np.asarray(landmarks, dtype=np.float32)
        if pts.shape != (T, 68, 2):
            raise ValueError(f"landmarks: expected ({T}, 68, 2), got {pts.shape}")
        ok = np.isfinite(pts).all(axis=(1, 2))
    if not ok.any():
        raise ValueError("frames: no face found in any frame")
    seen = pts[ok]
    lo, hi = seen.reshape(-1, 2).min(0), seen.reshape(-1, 2).max(0)
    centre, side = 0.5 * (lo + hi), float(margin * (hi - lo).max())
    x0, y0 = centre - 0.5 * side
    # crop (with edge padding) and resize
    pad = int(np.ceil(side))
    padded = F.pad(x.permute(0, 3, 1, 2), (pad, pad, pad, pad), mode="replicate")
    i0, j0 = round(float(y0)) + pad, round(float(x0)) + pad
    n = round(side)
    crop = padded[:, :, i0:i0 + n, j0:j0 + n]
    images = F.interpolate(crop, size=(size, size), mode="area").permute(0, 2, 3, 1)
    k = size / n
    det = (np.nan_to_num(pts) - np.array([round(float(x0)), round(float(y0))], np.float32)) * k
    weights = np.repeat(ok[:, None], 68, axis=1).astype(np.float32)
    det = det * weights[..., None]
    return TalkingClip(images.clamp(0, 1)[:, None].contiguous(),
                       torch.from_numpy(det)[:, None].float(),
                       torch.from_numpy(weights)[:, None],
                       meta={"frames": T, "views": 1, "image_size": size,
                             "crop": [float(x0), float(y0), float(n)]})
