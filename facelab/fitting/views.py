"""Pictures of a fit: overlays on the photo, the side-by-side panels and novel views.

The overlays and panels are rendered with :func:`facelab.render` at the photo's resolution
from the fit's :class:`~facelab.Formation` (formed with the photo-frame camera), so they line
up with the photo pixel for pixel; the geometry and lighting panels re-shade its camera-space
normals. :func:`render_mesh_overlay` is the picture the field shows for a fit (3DDFA_V2,
DECA, EMOCA): the shaded grey mesh blended over the photo, with the detected and the fitted
landmarks. :func:`render_novel_views` turns the fitted head, carrying the photo's texture
(:func:`facelab.fitting.texture.extract_texture`), to other yaw angles.
"""

from __future__ import annotations

import torch

from facelab._checks import as_tensor, check_shape
from facelab.fitting.fit_image import FitResult
from facelab.formation import PICTURE_ANTIALIAS, default_camera, form, render
from facelab.image_io import as_rgb_image
from facelab.lighting import sh_from_direction
from facelab.shading import sh_shade

__all__ = ["DETECTED_COLOR", "FITTED_COLOR", "NOVEL_YAWS", "PANEL_NAMES", "render_mesh_overlay",
           "render_novel_views", "render_overlay", "render_panels", "render_textured",
           "side_by_side"]

PANEL_NAMES = ("input", "overlay", "geometry", "reflectance", "lighting")
NOVEL_YAWS = (-45.0, 0.0, 45.0)
#: Landmark colours of :func:`render_mesh_overlay`: the detected (target) points in green,
#: the fitted model's projected landmarks in red.
DETECTED_COLOR = (0.15, 0.95, 0.3)
FITTED_COLOR = (1.0, 0.2, 0.2)
_GREY = 0.72  # reflectance of the grey geometry
_BACKDROP = (0.12, 0.12, 0.14)


def _key_light(like: torch.Tensor) -> torch.Tensor:
    """(1, 9, 3) camera-space SH: a key light from the upper left of the camera + ambient."""
    return sh_from_direction(torch.tensor([-0.4, -0.5, -0.75]), intensity=0.7,
                             ambient=0.45).to(like)


def _grey_geometry(normals: torch.Tensor, gamma=None) -> torch.Tensor:
    """Shape alone: a grey surface (reflectance 0.72) shaded by ``gamma`` (default the key
    light), MoFA Eq. (4) with a constant albedo: (1, V, 3) in [0, 1]."""
    grey = torch.full_like(normals, _GREY)
    light = _key_light(normals) if gamma is None else gamma.reshape(1, 9, 3).to(normals)
    return sh_shade(grey, normals, light).clamp(0, 1)


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


def render_mesh_overlay(result: FitResult, image, *, alpha: float = 0.6,
                        light: str = "fixed", landmarks: bool = True,
                        region: str = "face") -> torch.Tensor:
    """The fitted mesh as shaded grey geometry blended over the photo: (H, W, 3) float32.

    result: a :class:`FitResult` of this photo. image: the photo (H, W, 3).
    alpha: opacity of the mesh, in [0, 1] (anti-aliased edges blend by coverage too).
    light: "fixed" (a key light from the upper left, shape only) or "fitted" (the fit's SH
        light, MoFA Eq. 4 with a grey reflectance).
    landmarks: draw the detected (target) landmarks in :data:`DETECTED_COLOR` and the fitted
        model's projected landmarks in :data:`FITTED_COLOR`.
    region: "face" (default) blends only the model's face region (``model.face_mask``, what
        the fit explains: a full head's scalp and neck would paint over hair and collar, as in
        the field's figures), "all" the whole mesh.
    """
    from facelab.figures import draw_landmarks

    result = _check_result(result)
    photo = _check_photo(result, image)
    if not (isinstance(alpha, (int, float)) and 0.0 <= float(alpha) <= 1.0):
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
    if light not in ("fixed", "fitted"):
        raise ValueError(f"light: expected 'fixed' or 'fitted', got {light!r}")
    normals = result.formation.normals  # (1, V, 3) camera space
    grey = _grey_geometry(normals, None if light == "fixed" else result.gamma)
    if region not in ("face", "all"):
        raise ValueError(f"region: expected 'face' or 'all', got {region!r}")
    mesh, _ = _render(result, grey[0], photo[None])  # anti-aliased over the photo
    weight = torch.full_like(photo[..., :1], float(alpha))
    if region == "face":  # the face region's anti-aliased coverage, visible parts only
        inside = result.model.face_mask.to(grey.dtype)[:, None].expand(-1, 3)
        cover, _ = _render(result, inside, None)
        weight = weight * cover[..., :1]
    out = (weight * mesh + (1 - weight) * photo).clamp(0, 1)
    if landmarks:
        out = draw_landmarks(out, result.target_landmarks, DETECTED_COLOR)
        out = torch.from_numpy(draw_landmarks(out, result.landmarks, FITTED_COLOR))
    return out


def _check_photo(result: FitResult, image) -> torch.Tensor:
    photo = as_rgb_image(image)
    if tuple(photo.shape[:2]) != tuple(result.image_size):
        raise ValueError(f"image: expected {result.image_size} (the fitted photo's size), "
                         f"got {tuple(photo.shape[:2])}")
    return photo


def render_textured(result: FitResult, texture, params, camera, size: int,
                    background=_BACKDROP) -> torch.Tensor:
    """The fitted head painted with the extracted texture, formed with ``params`` (FaceParams,
    B = 1) and ``camera``: (size, size, 3) float32, anti-aliased.

    Per pixel: the texture coordinates interpolated over the texture's own layout
    (``texture.uv`` / ``texture.uv_faces``: the model's, or the cylindrical one of a model
    without a layout) and the texture looked up bilinearly (:func:`facelab.render` with
    ``texture=``), times the SH irradiance of ``params.gamma`` (MoFA Eq. 4 with the texture as
    albedo). The texture already carries the photo's light, so pass unit ambient light
    (``ambient_sh(1.0)``) to show it as it is.
    """
    from facelab.fitting.texture import ExtractedTexture

    if not isinstance(texture, ExtractedTexture):
        raise TypeError(f"texture: expected an ExtractedTexture, got {type(texture).__name__}")
    with torch.no_grad():
        formed = form(result.model, params, camera)
        dev, dt = formed.verts.device, formed.verts.dtype
        irradiance = formed.irradiance  # formed for models with their own layout only
        if irradiance is None:  # MoFA Eq. 4 with unit albedo
            irradiance = sh_shade(torch.ones_like(formed.normals), formed.normals,
                                  params.gamma.to(dev, dt))
        formed = formed._replace(uv=texture.uv.to(device=dev, dtype=dt),  # the texture's layout
                                 uv_faces=texture.uv_faces.to(dev), irradiance=irradiance)
        image, _ = render(formed, size, size, texture=texture.texture[None].to(dev, dt),
                          background=torch.tensor(background, dtype=dt),
                          antialias=PICTURE_ANTIALIAS)
    return image[0].clamp(0, 1)


def render_novel_views(result: FitResult, texture, *, yaws=NOVEL_YAWS,
                       size: int = 384) -> list[torch.Tensor]:
    """The fitted head (identity, expression, joints) painted with the photo's texture per
    pixel (:func:`render_textured`), turned to each yaw (degrees; positive turns the face
    toward the image's right) in front of the
    default camera (:func:`facelab.default_camera`), moved back until the whole model fits
    (:func:`facelab.figures.framing_translation`): a list of (size, size, 3) float32.

    texture: the :class:`~facelab.fitting.texture.ExtractedTexture` of the fit.
    """
    from facelab._checks import check_int
    from facelab.figures import framing_translation
    from facelab.fitting.texture import ExtractedTexture
    from facelab.lighting import ambient_sh
    from facelab.rotations import head_rotation

    result = _check_result(result)
    if not isinstance(texture, ExtractedTexture):
        raise TypeError(f"texture: expected an ExtractedTexture, got {type(texture).__name__}")
    size = check_int(size, name="size", minimum=16)
    camera, _ = default_camera(1, size, size)
    translation = framing_translation(result.model)  # the whole head in the picture
    views = []
    for yaw in yaws:
        angles = torch.tensor([[0.0, float(yaw) * torch.pi / 180.0, 0.0]])
        params = result.params.replace(rotation=head_rotation(angles), translation=translation,
                                       gamma=ambient_sh(1.0)[None])  # irradiance 1: as baked
        views.append(render_textured(result, texture, params, camera, size))
    return views


def render_panels(result: FitResult, image, *, crop: bool = False,
                  overlay=None) -> dict[str, torch.Tensor]:
    """Five (H, W, 3) pictures keyed by :data:`PANEL_NAMES`.

    crop: cut every panel to the fit's face box (clipped to the photo), e.g. for a close-up.
    overlay: the (H, W, 3) :func:`render_mesh_overlay` of this photo when already made (saves
        rendering it again); None renders it.

    input: the photo; overlay: :func:`render_mesh_overlay` (grey mesh and landmarks over
    the photo); geometry: the mesh in grey under a fixed light from the upper left (shape
    only); reflectance: the fitted albedo, unlit; lighting: a white surface under the fitted
    SH light (MoFA Eq. 4's shading term alone).
    """
    result = _check_result(result)
    photo = as_rgb_image(image)
    dark = torch.tensor(_BACKDROP)
    normals = result.formation.normals  # (1, V, 3) camera space
    geometry = _grey_geometry(normals)[0]  # camera space: light up-left-front
    white = torch.ones_like(result.albedo)[None]
    lighting = sh_shade(white, normals, result.gamma[None].to(normals))[0]
    lighting = lighting / lighting.max().clamp(min=1e-6)  # shading pattern, brightest = 1
    panels = {
        "input": photo,
        "overlay": (render_mesh_overlay(result, photo) if overlay is None
                    else _given_overlay(overlay, photo)),
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


def _given_overlay(overlay, photo: torch.Tensor) -> torch.Tensor:
    t, _ = as_tensor(overlay, name="overlay")
    check_shape(t, "H W 3", name="overlay", dims={"H": photo.shape[0], "W": photo.shape[1]})
    return t.to(torch.float32)


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
