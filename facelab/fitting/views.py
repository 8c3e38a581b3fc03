"""Pictures of a fit: the overlay on the photo and the side-by-side panels of ``facelab fit``.

All are rendered with :func:`facelab.render` at the photo's resolution from the fit's
:class:`~facelab.Formation` (formed with the photo-frame camera), so they line up with the photo
pixel for pixel; the geometry and lighting panels re-shade its camera-space normals.
"""

from __future__ import annotations

import torch

from facelab.fitting.fit_image import FitResult
from facelab.formation import PICTURE_ANTIALIAS, render
from facelab.image_io import as_rgb_image
from facelab.lighting import sh_from_direction
from facelab.shading import sh_shade

__all__ = ["PANEL_NAMES", "render_overlay", "render_panels", "side_by_side"]

PANEL_NAMES = ("input", "overlay", "geometry", "reflectance", "lighting")


def _check_result(result) -> FitResult:
    if not isinstance(result, FitResult):
        raise TypeError(f"result: expected a FitResult, got {type(result).__name__}")
    return result


def _render(result: FitResult, colors, background):
    h, w = result.image_size
    image, mask = render(result.formation, h, w, colors=colors[None].to(torch.float32),
                         background=background, antialias=PICTURE_ANTIALIAS)
    return image[0], mask[0]  # (H, W, 3), (H, W)


def render_overlay(result: FitResult, image, *, alpha: float = 1.0) -> torch.Tensor:
    """The fitted, shaded face drawn over the photo: (H, W, 3) float32 in [0, 1].

    result: a :class:`FitResult` of this photo. image: the photo (H, W, 3).
    alpha: opacity of the face (1 = opaque; 0.6 shows the photo through it).
    """
    result = _check_result(result)
    photo = as_rgb_image(image)
    if tuple(photo.shape[:2]) != tuple(result.image_size):
        raise ValueError(f"image: expected {result.image_size} (the fitted photo's size), "
                         f"got {tuple(photo.shape[:2])}")
    face, mask = _render(result, result.colors.clamp(0, 1), photo[None])
    out = torch.where(mask[..., None], alpha * face + (1 - alpha) * photo, photo)
    return out.clamp(0, 1)


def render_panels(result: FitResult, image, *, crop: bool = False) -> dict[str, torch.Tensor]:
    """Five (H, W, 3) pictures keyed by :data:`PANEL_NAMES`.

    crop: cut every panel to the fit's face box (clipped to the photo), e.g. for a close-up.

    input: the photo; overlay: :func:`render_overlay`; geometry: the mesh in grey under a
    fixed light from the upper left (shape only); reflectance: the fitted albedo, unlit;
    lighting: a white surface under the fitted SH light (MoFA Eq. 4's shading term alone).
    """
    result = _check_result(result)
    photo = as_rgb_image(image)
    dark = torch.tensor([0.12, 0.12, 0.14])
    normals = result.formation.normals  # (1, V, 3) camera space
    grey = torch.full_like(result.albedo, 0.75)[None]  # (1, V, 3)
    key = sh_from_direction(torch.tensor([-0.4, -0.5, -0.75]), intensity=0.7, ambient=0.45)
    geometry = sh_shade(grey, normals, key.to(normals))[0]  # camera space: light up-left-front
    white = torch.ones_like(result.albedo)[None]
    lighting = sh_shade(white, normals, result.gamma[None].to(normals))[0]
    lighting = lighting / lighting.max().clamp(min=1e-6)  # shading pattern, brightest = 1
    panels = {
        "input": photo,
        "overlay": render_overlay(result, photo),
        "geometry": _render(result, geometry.clamp(0, 1), dark)[0],
        "reflectance": _render(result, result.albedo.clamp(0, 1), dark)[0],
        "lighting": _render(result, lighting.clamp(0, 1), dark)[0],
    }
    if crop:
        h, w = result.image_size
        x0, y0, x1, y1 = result.box.tolist()
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(w, round(x1)), min(h, round(y1))
        panels = {k: v[y0:y1, x0:x1] for k, v in panels.items()}
    return panels


def side_by_side(panels: dict[str, torch.Tensor], *, height: int | None = None) -> torch.Tensor:
    """Concatenate the panels left to right: (H, n·W, 3). ``height`` resizes them first."""
    images = [panels[k] for k in PANEL_NAMES if k in panels]
    if not images:
        raise ValueError(f"panels: expected some of {PANEL_NAMES}, got {sorted(panels)}")
    if height is not None:
        import torch.nn.functional as F

        h, w = images[0].shape[:2]
        size = (int(height), max(1, round(w * height / h)))
        images = [F.interpolate(im.permute(2, 0, 1)[None], size=size, mode="bilinear",
                                antialias=True, align_corners=False)[0].permute(1, 2, 0)
                  for im in images]
    return torch.cat(images, dim=1).clamp(0, 1)
