"""Fit a video frame by frame: one identity for the whole clip, warm starts between frames.

1. **Identity** — ``keyframes`` frames spread over the clip are fitted independently with
   :func:`facelab.fitting.fit_image`; their identity and reflectance coefficients are averaged
   (a person's shape and skin do not change within a clip).
2. **Tracking** — every frame is fitted with that identity and reflectance fixed
   (``fit_identity=False``), starting from the previous frame's pose, expression and light
   (``init=``), with the shorter :data:`TRACK_SETTINGS` schedule.

No temporal smoothing yet: each frame's pose and expression come from its own image (NeuFace's
temporal consistency is a later chapter).
"""

from __future__ import annotations

import dataclasses

import torch

from facelab._checks import as_tensor, check_int
from facelab.fitting.fit_image import FitResult, FitSettings, fit_image
from facelab.model.morphable import MorphableModel
from facelab.progress import History, track

__all__ = ["TRACK_SETTINGS", "fit_video"]

# frames after the first skip the photometric refinement stage (time per frame)
TRACK_SETTINGS = FitSettings(steps_pose=10, steps_shape=40, steps_color=20, refine=None)


def _frames(frames) -> list:
    if isinstance(frames, (list, tuple)):
        items = list(frames)
    else:
        t, _ = as_tensor(frames, name="frames")
        if t.ndim != 4:
            raise ValueError(f"frames: expected (T, H, W, 3), got {tuple(t.shape)}")
        items = list(t)
    if not items:
        raise ValueError("frames: expected at least one frame, got none")
    return items


def fit_video(frames, model: MorphableModel | None = None, landmarks=None, *,
              settings: FitSettings | None = None, track_settings: FitSettings = TRACK_SETTINGS,
              keyframes: int = 3, callback=None) -> list[FitResult]:
    """Fit every frame of a clip with a shared identity (see the module docstring).

    frames: (T, H, W, 3) RGB (uint8 or float in [0, 1], NumPy or torch), or a list of T
        (H, W, 3) frames, e.g. from :func:`facelab.image_io.read_video`.
    model: as for :func:`fit_image` (default: the built-in teaching model).
    landmarks: (T, 68, 2) iBUG points per frame in pixels, or None to detect them per frame
        with MediaPipe (the ``facelab[landmarks]`` extra); a frame without a face raises
        ``ValueError`` naming its index.
    settings: :class:`FitSettings` of the identity (keyframe) fits; track_settings: those of
        the per-frame fits.
    keyframes: how many frames determine the identity (spread evenly; at most T).
    callback: None (tqdm over frames) or a :mod:`facelab.progress` callback; receives one step
        per frame with that frame's final "land" and "photo" terms.

    Returns a list of T :class:`FitResult` with identical ``id_coeffs`` and ``albedo_coeffs``.
    """
    items = _frames(frames)
    T = len(items)
    keyframes = check_int(keyframes, name="keyframes", minimum=1)
    if model is None:
        from facelab.model.registry import load_model

        model = load_model("synthetic", resolution="teaching")
    if landmarks is None:
        from facelab.landmarks import detect

        points = []
        for i, frame in enumerate(items):
            det = detect(frame)
            if det is None:
                raise ValueError(f"frames[{i}]: no face found by MediaPipe; pass landmarks="
                                 "(T, 68, 2) yourself or trim the clip")
            points.append(torch.from_numpy(det.landmarks))
        lms = torch.stack(points)
    else:
        lms, _ = as_tensor(landmarks, name="landmarks")
        if lms.ndim != 3 or tuple(lms.shape[1:]) != (68, 2) or lms.shape[0] != T:
            raise ValueError(f"landmarks: expected ({T}, 68, 2), got {tuple(lms.shape)}")

    k = min(keyframes, T)
    picks = sorted({round(i * (T - 1) / max(k - 1, 1)) for i in range(k)})
    key_fits = [fit_image(items[i], model, lms[i], settings=settings, callback=History())
                for i in picks]
    # the warm start of the tracking: keyframe 0 with the averaged identity and reflectance
    # (only its parameters are read by fit_image(init=...))
    shared = dataclasses.replace(key_fits[0], params=key_fits[0].params.replace(
        id=torch.cat([f.params.id for f in key_fits]).mean(0, keepdim=True),
        albedo=torch.cat([f.params.albedo for f in key_fits]).mean(0, keepdim=True)))

    results: list[FitResult] = []
    previous = shared
    progress = track(range(T), callback=callback, desc="fit_video")
    for i in progress:
        res = fit_image(items[i], model, lms[i], settings=track_settings, init=previous,
                        fit_identity=False, callback=History())
        results.append(res)
        previous = res
        progress.log({"land": res.losses["land"], "photo": res.losses["photo"]})
    return results
