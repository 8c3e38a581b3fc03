"""Crop normalisation: a square box around the face, resampled to a fixed size (224²).

Fitting works in a normalised crop, as MoFA and 3DDFA do with their 224² / 120² inputs: the
box is a square of side ``scale · max(w, h)`` of the landmarks' bounding box, centred on it
and shifted up by ``lift · side`` so the forehead (which has no iBUG landmark) is inside.
A point p in image pixels maps to crop pixels as

    p_crop = (p − (x0, y0)) · size / side,

with facelab's pixel convention on both sides (pixel (i, j) covers [j, j+1) × [i, i+1)), so
box corners map to crop corners exactly. Parts of the box outside the photo are filled by
replicating the border pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_int,
    check_positive,
    check_shape,
)

__all__ = ["DEFAULT_CROP_SIZE", "crop_image", "face_box", "from_crop", "to_crop"]

DEFAULT_CROP_SIZE = 224  # MoFA's input resolution


def _box(box) -> torch.Tensor:
    b, _ = as_tensor(box, name="box")
    check_shape(b, "4", name="box")
    check_floating(b, name="box")
    check_finite(b, name="box")
    if not (float(b[2]) > float(b[0]) and float(b[3]) > float(b[1])):
        raise ValueError(f"box: expected (x0, y0, x1, y1) with x1 > x0 and y1 > y0, "
                         f"got {b.tolist()}")
    return b


def face_box(landmarks, *, scale: float = 1.6, lift: float = 0.08) -> torch.Tensor:
    """Square crop box (x0, y0, x1, y1) around 2D landmarks, in pixels: (4,) float.

    landmarks: (L, 2) float32/float64 (torch or NumPy), pixels (e.g. iBUG-68).
    scale: box side / max(width, height) of the landmarks' bounding box (default 1.6).
    lift: upward shift of the centre, as a fraction of the side (default 0.08, the forehead).
    """
    lm, _ = as_tensor(landmarks, name="landmarks")
    check_shape(lm, "L 2", name="landmarks")
    check_floating(lm, name="landmarks")
    check_finite(lm, name="landmarks")
    scale = check_positive(scale, name="scale")
    lo, hi = lm.amin(0), lm.amax(0)  # (2,), (2,)
    side = scale * float((hi - lo).max())
    if side <= 0:
        raise ValueError("landmarks: expected points spanning a non-empty box, got one point")
    centre = 0.5 * (lo + hi)
    centre = centre - torch.tensor([0.0, lift * side], dtype=lm.dtype)
    half = 0.5 * side
    return torch.stack([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def to_crop(points, box, size: int = DEFAULT_CROP_SIZE) -> torch.Tensor:
    """Image pixels -> crop pixels: (..., 2) -> (..., 2). box: (4,), size: crop side."""
    p, _ = as_tensor(points, name="points")
    check_shape(p, "... 2", name="points")
    b = _box(box).to(p)
    size = check_int(size, name="size", minimum=1)
    side = b[2] - b[0]
    return (p - b[:2]) * (size / side)


def from_crop(points, box, size: int = DEFAULT_CROP_SIZE) -> torch.Tensor:
    """Crop pixels -> image pixels: (..., 2) -> (..., 2), the inverse of :func:`to_crop`."""
    p, _ = as_tensor(points, name="points")
    check_shape(p, "... 2", name="points")
    b = _box(box).to(p)
    size = check_int(size, name="size", minimum=1)
    side = b[2] - b[0]
    return p * (side / size) + b[:2]


def crop_image(image, box, size: int = DEFAULT_CROP_SIZE) -> torch.Tensor:
    """Resample the square ``box`` of ``image`` to (size, size, 3), bilinearly.

    image: (H, W, 3) float32/float64 torch tensor in [0, 1].
    box: (4,) (x0, y0, x1, y1) pixels, square (x1 − x0 = y1 − y0), may extend past the image.
    size: output side in pixels.

    Crop pixel (i, j) samples the image at x = x0 + (j + 0.5) · side / size (and likewise y),
    the centre of its footprint. When the box is much larger than the output (a high-resolution
    photo), the image is first area-averaged so the crop does not alias.
    """
    img, _ = as_tensor(image, name="image")
    check_shape(img, "H W 3", name="image")
    check_floating(img, name="image")
    b = _box(box).to(torch.float64)
    size = check_int(size, name="size", minimum=1)
    h, w = img.shape[:2]
    side = float(b[2] - b[0])
    x = img.permute(2, 0, 1)[None]  # (1, 3, H, W)
    factor = int(side / size)
    if factor >= 2:  # anti-alias: average factor x factor blocks first
        x = F.avg_pool2d(x, factor, ceil_mode=True)
        w, h = x.shape[3] * factor, x.shape[2] * factor  # pooled pixels cover factor px each
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) * (side / size)  # (size,)
    xs = (b[0] + centres) / w * 2 - 1  # normalised, align_corners=False convention
    ys = (b[1] + centres) / h * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]  # (1, S, S, 2)
    out = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border",
                        align_corners=False)  # (1, 3, S, S)
    return out[0].permute(1, 2, 0).contiguous()  # (S, S, 3)
