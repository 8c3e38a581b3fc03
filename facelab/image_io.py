"""Images and video frames in: validation of user photos and reading video files.

Every entry point that takes a user's photo (:func:`facelab.landmarks.detect`,
:func:`facelab.fitting.fit_image`, the ``facelab fit`` command) goes through
:func:`as_rgb_image`, so a grayscale, RGBA, tiny, huge or NaN image gets the same clear
message everywhere. Video frames are read with ``imageio`` (the ``facelab[video]`` extra,
``imageio[ffmpeg]`` for MP4/AVI/MOV; GIFs need only ``imageio``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facelab._checks import as_tensor, check_finite, check_int

__all__ = ["MAX_SIDE", "MAX_VIDEO_PIXELS", "MIN_SIDE", "as_rgb_image", "read_image", "read_video",
           "to_uint8"]

MIN_SIDE = 32  # smallest image side (pixels) a face can be fitted in
MAX_SIDE = 8192  # largest image side; resize bigger photos first (memory of the overlay render)
MAX_VIDEO_PIXELS = 1 << 28  # frames x height x width read_video keeps (~3 GB as float32)


def as_rgb_image(image, *, name: str = "image") -> torch.Tensor:
    """Validate a photo and return it as a (H, W, 3) float32 torch tensor in [0, 1].

    image: (H, W, 3) RGB, NumPy or torch; uint8 in [0, 255] or float32/float64 in [0, 1].
        A (1, H, W, 3) batch of one is accepted. Grayscale (H, W) / (H, W, 1) and RGBA
        (H, W, 4) are refused with a message saying how to convert them (explicit is better
        than a silent guess about alpha or channel order).
    Raises ``TypeError`` (not an array, bool/int other than uint8) or ``ValueError``
    (shape, size outside [MIN_SIDE, MAX_SIDE], NaN/Inf, floats outside [0, 1]).
    """
    if isinstance(image, (str, Path)):
        raise TypeError(f"{name}: expected an array, got a path {str(image)!r}; "
                        "use facelab.fitting.read_image(path) first")
    t, _ = as_tensor(image, name=name)
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    shape = tuple(t.shape)
    if t.ndim == 2 or (t.ndim == 3 and t.shape[-1] == 1):
        raise ValueError(f"{name}: expected an RGB image (H, W, 3), got grayscale {shape}; "
                         "convert it with np.repeat(gray[..., None], 3, axis=-1)")
    if t.ndim == 3 and t.shape[-1] == 4:
        raise ValueError(f"{name}: expected an RGB image (H, W, 3), got RGBA {shape}; drop or "
                         "composite the alpha channel first, e.g. rgba[..., :3]")
    if t.ndim != 3 or t.shape[-1] != 3:
        raise ValueError(f"{name}: expected an RGB image (H, W, 3), got {shape}")
    h, w = shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{name}: expected both sides >= {MIN_SIDE} pixels, got {h}x{w}; "
                         "the photo is too small to fit a face in")
    if max(h, w) > MAX_SIDE:
        raise ValueError(f"{name}: expected both sides <= {MAX_SIDE} pixels, got {h}x{w}; "
                         "resize the photo first")
    if t.dtype == torch.uint8:
        return t.to(torch.float32) / 255.0
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name}: expected uint8, float32 or float64, got {t.dtype}")
    check_finite(t, name=name)
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name}: expected float values in [0, 1], got [{lo:.4g}, {hi:.4g}]; "
                         "divide uint8-range floats by 255")
    return t.to(torch.float32)


def to_uint8(image) -> np.ndarray:
    """(..., 3) float image in [0, 1] (torch or NumPy) -> uint8 NumPy array (clipped, rounded)."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def read_image(path) -> torch.Tensor:
    """Read a photo file (PNG, JPEG, ...) with Pillow: (H, W, 3) float32 in [0, 1].

    Grayscale and palette images are converted to RGB; RGBA is composited on white.
    16-bit grayscale (Pillow modes ``I;16*``, ``I``) is scaled by 1/65535, not clipped
    at 255; a file Pillow cannot read raises ValueError naming it.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: no such image file: {p}")
    try:
        with Image.open(p) as im:
            w, h = im.size
            if max(w, h) > MAX_SIDE:  # refuse before decoding the pixels
                raise ValueError(f"{p}: expected both sides <= {MAX_SIDE} pixels, got "
                                 f"{h}x{w}; resize the photo first")
            if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grayscale
                gray = np.asarray(im).astype(np.float64)  # (H, W)
                if im.mode == "F":
                    full = 1.0
                elif im.mode.startswith("I;16") or gray.max(initial=0) <= 65535:
                    full = 65535.0
                else:
                    full = 4294967295.0
                gray = np.clip(gray / full, 0.0, 1.0).astype(np.float32)
                return as_rgb_image(np.repeat(gray[..., None], 3, axis=-1), name=str(p))
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            rgb = np.array(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{p}: cannot be read as an image ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())})") from exc
    return as_rgb_image(rgb, name=str(p))


def read_video(path, *, max_frames: int | None = None, step: int = 1) -> torch.Tensor:
    """Read video frames with imageio: (T, H, W, 3) float32 in [0, 1].

    path: a video (MP4/AVI/MOV need ``imageio-ffmpeg``, GIF only ``imageio``).
    max_frames: keep at most this many frames (after ``step``); None keeps all.
    step: keep every ``step``-th frame.
    Needs the ``video`` extra (``.venv/bin/pip install -e ".[video]"``). A file that
    cannot be decoded (corrupt, empty, not a video) raises ValueError in one line, and so
    does a clip whose kept frames exceed ``MAX_VIDEO_PIXELS`` (frames x height x width):
    pass ``max_frames`` / ``step`` to keep fewer.
    """
    try:
        import imageio.v3 as iio
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("read_video needs imageio and imageio-ffmpeg: run "
                          '.venv/bin/pip install -e ".[video]"') from err
    step = check_int(step, name="step", minimum=1)
    if max_frames is not None:
        max_frames = check_int(max_frames, name="max_frames", minimum=1)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: no such video file: {p}")
    frames, pixels = [], 0
    try:
        for i, frame in enumerate(iio.imiter(p)):
            if i % step:
                continue
            frame = np.asarray(frame)
            pixels += frame.shape[0] * frame.shape[1] if frame.ndim >= 2 else 0
            if pixels > MAX_VIDEO_PIXELS:
                raise ValueError(f"path: the frames of {p.name} kept so far exceed "
                                 f"MAX_VIDEO_PIXELS = {MAX_VIDEO_PIXELS:,} pixels "
                                 f"(facelab.image_io); keep fewer frames with max_frames or "
                                 f"step (--max-frames, --step)")
            if frame.ndim == 2:
                frame = np.repeat(frame[..., None], 3, axis=-1)
            frames.append(as_rgb_image(frame[..., :3], name=f"{p.name}[{i}]"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    except (OSError, RuntimeError, ValueError, SyntaxError, StopIteration) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith((f"{p.name}[", "path: ")):
            raise  # a frame that as_rgb_image refused or the size limit: already clear
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise ValueError(f"path: {p} cannot be read as a video ({type(exc).__name__}: "
                         f"{first[:200]})") from exc
    if not frames:
        raise ValueError(f"path: no frames could be read from {p}")
    return torch.stack(frames)
