"""Pictures for people: captions, landmark markers, display normalisation, captioned grids.

What ``facelab demo``, ``facelab fit`` and MoFA's demo write are figures, not tensors: each
image carries a caption band naming what it shows, is at least :data:`MIN_FIGURE_SIZE`
pixels on its short side, and small or dim renders are processed for display (smooth
upsampling, contrast stretched over the face) instead of being blown up pixel by pixel.

Images are (H, W, 3) float in [0, 1] (torch or NumPy) in, (H', W', 3) float32 NumPy out.
Text is drawn with Pillow's bundled font (FreeType, so no system font is needed).
"""

from __future__ import annotations

import numpy as np
import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_int, check_shape

__all__ = ["CAPTION_BACKGROUND", "CAPTION_TEXT", "MIN_FIGURE_SIZE", "caption",
           "captioned_grid", "draw_landmarks", "framing_translation", "normalize_display",
           "upsample"]

#: Smallest side, in pixels, of every picture facelab writes for people to look at.
MIN_FIGURE_SIZE = 224
CAPTION_BACKGROUND = (0.11, 0.12, 0.14)
CAPTION_TEXT = (0.95, 0.95, 0.95)


def _image(image, name: str = "image") -> np.ndarray:
    """Validate an (H, W, 3) float image in [0, 1] (torch or NumPy) -> float32 NumPy."""
    t, _ = as_tensor(image, name=name)
    check_shape(t, "H W 3", name=name)
    check_floating(t, name=name)
    check_finite(t, name=name)
    return t.detach().cpu().to(torch.float32).numpy().clip(0.0, 1.0)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError):  # pragma: no cover - very old Pillow / no FreeType
        return ImageFont.load_default()


def _fit_text(draw, text: str, width: int, size: int):
    """The largest font <= size whose rendering of ``text`` fits in ``width`` pixels."""
    while True:
        font = _font(size)
        left, _, right, _ = draw.textbbox((0, 0), text, font=font)
        if right - left <= width or size <= 8:
            return font
        size -= 1


def _band(text: str, width: int, band: int) -> np.ndarray:
    """A (band, width, 3) caption strip with ``text`` centred (shrunk to fit the width)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (width, band), tuple(round(255 * c) for c in CAPTION_BACKGROUND))
    draw = ImageDraw.Draw(canvas)
    font = _fit_text(draw, text, width - 8, int(band * 0.62))
    draw.text((width / 2, band / 2), text, fill=tuple(round(255 * c) for c in CAPTION_TEXT),
              font=font, anchor="mm")
    return np.asarray(canvas, dtype=np.float32) / 255.0


def caption(image, text: str, *, band: int | None = None) -> np.ndarray:
    """The image with a caption band under it: (H + band, W, 3) float32.

    image: (H, W, 3) float in [0, 1]. text: one line (shrunk to fit the width).
    band: height of the band in pixels; default max(20, H / 10).
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    img = _image(image)
    H, W = img.shape[:2]
    band = max(20, H // 10) if band is None else check_int(band, name="band", minimum=8)
    return np.concatenate([img, _band(text, W, band)], axis=0)


def upsample(image, size: int) -> np.ndarray:
    """Resize so the short side is ``size`` pixels, smoothly (Lanczos, not nearest pixels):
    (H', W', 3) float32. Images already that large are returned unchanged."""
    from PIL import Image

    img = _image(image)
    size = check_int(size, name="size", minimum=1)
    H, W = img.shape[:2]
    if min(H, W) >= size:
        return img
    scale = size / min(H, W)
    pil = Image.fromarray((img * 255.0 + 0.5).astype(np.uint8))
    pil = pil.resize((round(W * scale), round(H * scale)), Image.LANCZOS)
    return np.asarray(pil, dtype=np.float32) / 255.0


def normalize_display(image, mask=None, *, low: float | None = 1.0, high: float = 99.0,
                      gamma: float = 1.0) -> np.ndarray:
    """Stretch the contrast for display: the ``low``/``high`` percentiles of the luminance
    (over ``mask`` when given) map to 0 and 1, colours keep their ratios; (H, W, 3) float32.

    image: (H, W, 3) float in [0, 1]. mask: optional (H, W) bool, where the statistics are
    taken (e.g. the rendered face, eroded by a pixel so anti-aliased edges do not count);
    pixels outside it are left as they are. low: None keeps 0 at 0 (a pure scaling, for
    quantities whose zero means something: irradiance, errors). gamma: applied after the
    stretch (< 1 brightens mid-tones). A flat image (no contrast inside the mask) is
    returned unchanged.
    """
    img = _image(image)
    lum = img @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # (H, W)
    keep = None
    if mask is not None:
        m, _ = as_tensor(mask, name="mask")
        check_shape(m, "H W", name="mask", dims={"H": img.shape[0], "W": img.shape[1]})
        inside = m.detach().cpu().numpy().astype(bool)
        sel, keep = lum[inside], ~inside
    else:
        sel = lum.reshape(-1)
    if sel.size == 0:
        return img
    hi = float(np.percentile(sel, high))
    lo = 0.0 if low is None else float(np.percentile(sel, low))
    if not hi - lo > 1e-6:
        return img
    out = ((img - lo) / (hi - lo)).clip(0.0, 1.0)
    if gamma != 1.0:
        out = out ** float(gamma)
    if keep is not None:
        out[keep] = img[keep]
    return out.astype(np.float32)


def draw_landmarks(image, points, color=(0.1, 0.9, 0.2), *, radius: int | None = None,
                   outline=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Dots at ``points`` (L, 2) pixels (x right, y down) on a copy of the image.

    radius: dot radius in pixels (default 1 per 256 px of the image's short side, >= 2).
    outline: the dots' dark rim (None for none), so they read on skin and on background.
    Returns (H, W, 3) float32.
    """
    from PIL import Image, ImageDraw

    img = _image(image)
    p, _ = as_tensor(points, name="points")
    check_shape(p, "L 2", name="points")
    check_finite(p, name="points")
    H, W = img.shape[:2]
    r = max(2, round(min(H, W) / 256)) if radius is None else check_int(radius, name="radius",
                                                                         minimum=1)
    pil = Image.fromarray((img * 255.0 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    fill = tuple(round(255 * c) for c in color)
    rim = None if outline is None else tuple(round(255 * c) for c in outline)
    for x, y in p.detach().cpu().double().numpy():
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=rim)
    return np.asarray(pil, dtype=np.float32) / 255.0


def captioned_grid(images, captions, *, ncols: int | None = None, size: int = MIN_FIGURE_SIZE,
                   gap: int = 4, title: str | None = None) -> np.ndarray:
    """Images side by side in rows, each resized to height ``size`` and captioned:
    (H, W, 3) float32 on the caption colour.

    images: sequence of (H_i, W_i, 3) floats in [0, 1]. captions: one str per image.
    ncols: images per row (default all in one row). title: optional band above the grid.
    """
    from PIL import Image

    images, captions = list(images), list(captions)
    if not images or len(images) != len(captions):
        raise ValueError(f"images, captions: expected the same non-zero number, got "
                         f"{len(images)} images and {len(captions)} captions")
    size = check_int(size, name="size", minimum=16)
    ncols = len(images) if ncols is None else check_int(ncols, name="ncols", minimum=1)
    tiles = []
    for k, (im, text) in enumerate(zip(images, captions, strict=True)):
        img = _image(im, name=f"images[{k}]")
        H, W = img.shape[:2]
        if H != size:
            pil = Image.fromarray((img * 255.0 + 0.5).astype(np.uint8))
            pil = pil.resize((max(1, round(W * size / H)), size), Image.LANCZOS)
            img = np.asarray(pil, dtype=np.float32) / 255.0
        tiles.append(caption(img, text, band=max(20, size // 9)))
    rows = [tiles[i:i + ncols] for i in range(0, len(tiles), ncols)]
    width = max(sum(t.shape[1] for t in row) + gap * (len(row) - 1) for row in rows)
    height = max(t.shape[0] for t in tiles)
    out = np.empty((len(rows) * height + gap * (len(rows) - 1), width, 3), np.float32)
    out[:] = CAPTION_BACKGROUND
    for r, row in enumerate(rows):
        x = 0
        for t in row:
            out[r * (height + gap): r * (height + gap) + t.shape[0], x:x + t.shape[1]] = t
            x += t.shape[1] + gap
    if title is not None:
        out = np.concatenate([_band(title, out.shape[1], max(24, size // 7)), out], axis=0)
    return out


def framing_translation(model, *, fov_deg: float | None = None, fill: float = 0.88,
                        batch: int = 1) -> torch.Tensor:
    """Camera-space translation (B, 3) that frames a whole model in a portrait picture.

    The model's mean shape (its bounding box half-extent r in x and y, centre c_y) fills
    ``fill`` of the half field of view: distance ``max(DEFAULT_DISTANCE_MM, r / (fill
    tan(fov / 2)))``, so the built-in face mask keeps :func:`facelab.default_camera`'s 800 mm
    and a full head with neck moves back until it fits; ``t_y = c_y`` puts the box's centre on
    the optical axis (camera y = -model y + t_y, the flip diag(1, -1, -1)).
    fov_deg: vertical field of view (default :data:`facelab.formation.DEFAULT_FOV_DEG`).
    """
    import math

    from facelab.formation import DEFAULT_DISTANCE_MM, DEFAULT_FOV_DEG
    from facelab.model.morphable import MorphableModel

    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    fov = DEFAULT_FOV_DEG if fov_deg is None else float(fov_deg)
    if not (0.0 < fov < 180.0) or not (0.0 < float(fill) <= 1.0):
        raise ValueError(f"fov_deg, fill: expected (0, 180) and (0, 1], got {fov}, {fill}")
    v = model.mean_shape.detach().cpu().double()
    lo, hi = v.amin(0), v.amax(0)
    r = float(torch.maximum(hi[:2] - lo[:2], torch.zeros(2)).max()) / 2
    distance = max(DEFAULT_DISTANCE_MM, r / (float(fill) * math.tan(math.radians(fov) / 2)))
    t = torch.tensor([0.0, float(lo[1] + hi[1]) / 2, distance], dtype=torch.float32)
    return t.expand(check_int(batch, name="batch", minimum=1), 3).clone()
