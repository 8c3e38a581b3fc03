"""MoFA's parametric model-based decoder, Sec. 5: code vector -> per-vertex position and colour.

For every vertex i the decoder computes (MoFA Eq. 5)

    u_i(x) = Pi(Phi_{T,t}(V_i(alpha, delta)))        screen position (pixels)
    c_i(x) = C(R_i(beta), T n_i(alpha, delta), gamma)  shaded colour (MoFA Eq. 4)

with the affine face and reflectance models V = A_s + E_s alpha + E_e delta (Eq. 2) and
R = A_r + E_r beta (Eq. 3), a full-perspective pinhole camera Pi, and 9-band-coefficient SH
Lambertian shading with 27 parameters gamma in camera space.

facelab's rigid map (:func:`facelab.cameras.model_to_camera`) is X_cam = F (R X) + t with
F = diag(1, -1, -1): the head rotation R (Euler, see :mod:`.layout`) acts in model space (y up,
face toward +z), F flips into OpenCV camera space (y down, z forward) and t is the camera-space
translation. MoFA writes the same map as T^-1 (v - t_w) for a camera posed in world space.
F R is a proper rotation (det = +1), so the normals of the camera-space mesh are exactly
"T n_i" of Eq. (5) and the triangles keep their counter-clockwise winding.

The decoder is an adapter on facelab's one image-formation core: :meth:`CodeLayout.to_face`
turns the code into a :class:`facelab.FaceParams`, the intrinsics make a
:class:`facelab.cameras.Pinhole`, and :func:`facelab.form` does the rest. The backward pass
(MoFA Eq. 6) is autograd through torch ops plus the compiled kernels (vertex normals and SH
shading in ``form``, the photometric loss in :mod:`.loss`).
"""

from __future__ import annotations

import torch

from facelab import cameras
from facelab._checks import check_int, check_positive
from facelab.formation import DEFAULT_DISTANCE_MM, PICTURE_ANTIALIAS, Formation, form, render
from facelab.lighting import sh_from_direction
from facelab.methods.mofa.layout import CodeLayout
from facelab.raster import rasterize, vertex_visibility
from facelab.shading import sh_shade

__all__ = [
    "AMBIENT_OFFSET",
    "decode",
    "face_region_pixels",
    "mean_face_code",
    "render_layers",
    "visible_vertices",
]

AMBIENT_OFFSET = 0.7
"""MoFA Sec. 7: "the ambient coefficients of our renderer have an offset of 0.7": gamma_0 = 0.7
per channel (with facelab's irradiance basis that is a uniform irradiance of 0.62)."""

VISIBILITY_MODES = ("front_facing", "raster")


def layout_for(model, layout: CodeLayout | None) -> CodeLayout:
    """The code layout for ``model`` (default: sized for it), checked against its mode counts."""
    layout = CodeLayout.for_model(model) if layout is None else layout
    if not isinstance(layout, CodeLayout):
        raise TypeError(f"layout: expected a CodeLayout, got {type(layout).__name__}")
    if (layout.id, layout.exp, layout.albedo) != (model.n_id, model.n_exp, model.n_albedo):
        raise ValueError(f"layout: expected id/exp/albedo sizes {model.n_id}/{model.n_exp}/"
                         f"{model.n_albedo} (those of the model), got {layout.id}/{layout.exp}/"
                         f"{layout.albedo}")
    return layout


def decode(code, model, focal, principal, *, layout: CodeLayout | None = None,
           shade: bool = True) -> Formation:
    """The model-based decoder, MoFA Sec. 5 / Eq. (5): code vectors -> per-vertex u_i and c_i.

    code: (B, D) float32/float64 semantic code vectors, MoFA Eq. (1) (D = layout.size, 257).
    model: a :class:`facelab.MorphableModel` (cast to the code's dtype and device).
    focal: (B,) or (B, 2) pixels; principal: (B, 2) pixels (pinhole intrinsics, fixed per image;
        cast to the code's dtype and device).
    layout: the :class:`CodeLayout` (default: sized for ``model``, i.e. MoFA's for 80/64/80).
    shade: False leaves ``colors`` None, for :func:`.loss.mofa_loss`, which shades inside its
        fused photometric op (``form(..., shade=False)``).

    Returns the :class:`facelab.Formation` of :func:`facelab.form`: ``verts`` is V(alpha, delta)
    (Eq. 2, model space), ``screen_verts[..., :2]`` the u_i, ``normals`` T n_i, ``albedo``
    R(beta) (Eq. 3), ``colors`` the c_i (Eq. 4). Differentiable in ``code``. Vertices behind
    the camera project to huge but finite pixels (:func:`facelab.cameras.project_perspective`).
    """
    params = layout_for(model, layout).to_face(code)
    camera = cameras.Pinhole(torch.as_tensor(focal).to(params.rotation),
                             torch.as_tensor(principal).to(params.rotation))
    return form(model, params, camera, shade=shade)


def visible_vertices(decoded: Formation, model, height: int, width: int, *,
                     mode: str = "front_facing") -> torch.Tensor:
    """The vertex set of MoFA Eq. (8): (B, V) bool, recomputed from the current forward pass.

    decoded: a :class:`facelab.Formation` (e.g. from :func:`decode`). model: its
        MorphableModel (for faces and face_mask).
    height, width: image size in pixels.
    mode: "front_facing" (default; the paper's "front facing vertices": camera-space normal
        facing the camera, n_i . X_i < 0, cheap) or "raster" (:func:`facelab.vertex_visibility`:
        front-facing AND not occluded by a z-buffer; ~10x slower on a CPU).
    Both also require the vertex to project inside the image and to lie in ``model.face_mask``.
    Not differentiable (a constant set, as in the paper).
    """
    height = check_int(height, name="height", minimum=1)
    width = check_int(width, name="width", minimum=1)
    if mode not in VISIBILITY_MODES:
        raise ValueError(f"mode: expected one of {VISIBILITY_MODES}, got {mode!r}")
    screen = decoded.screen_verts.detach()
    mask = model.face_mask.to(screen.device)[None]  # (1, V)
    if mode == "raster":
        vis = vertex_visibility(screen, model.faces.to(screen.device), height, width,
                                perspective_correct=True)
        return vis & mask
    facing = (decoded.normals.detach() * decoded.verts_cam.detach()).sum(-1) < 0  # (B, V)
    u, v, z = screen[..., 0], screen[..., 1], screen[..., 2]
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height) & (z > 0)
    return facing & inside & mask


def face_region_pixels(screen_verts, model, height: int, width: int) -> torch.Tensor:
    """The pixels where the model's *face region* is the nearest surface: (B, H, W) bool.

    screen_verts: (B, V, 3) float (u, v, depth) pixels, y down (a Formation's
        ``screen_verts``, predicted or the corpus' ground truth).
    model: its MorphableModel; a triangle belongs to the face region when its three vertices
        are in ``model.face_mask`` (on version 2, the full head, that leaves out scalp, ears,
        neck and eyeballs, which still occlude).
    height, width: image size in pixels.
    Rasterizes the whole mesh (so occlusion is right) and keeps the face-region triangles.
    Not differentiable. Used for the coverage diagnostics and the silhouette term of
    :func:`.loss.mofa_loss` (on the ground truth: the role a face parser plays on photos).
    """
    height = check_int(height, name="height", minimum=1)
    width = check_int(width, name="width", minimum=1)
    screen = screen_verts.detach()
    faces = model.faces.to(screen.device)
    frags = rasterize(screen, faces, height, width, perspective_correct=True)
    in_region = model.face_mask.to(screen.device)[faces].all(dim=1)  # (F,)
    index = frags.face_index  # (B, H, W) int64, -1 where empty
    return (index >= 0) & in_region[index.clamp(min=0)]


def render_layers(decoded: Formation, height: int, width: int, *,
                  background=None) -> dict[str, torch.Tensor]:
    """The figures of MoFA Figs. 1-2 as (B, H, W, 3) images in [0, 1], keyed by name.

    "image": the shaded face (over ``background`` when given: the overlay);
    "geometry": grey albedo 0.7 under a frontal light, shape and pose only;
    "reflectance": the albedo R(beta) unlit; "illumination": the irradiance under the estimated
    light gamma, halved to fit [0, 1] (irradiance reaches ~1.4). Detached; for display, so
    anti-aliased (:data:`facelab.formation.PICTURE_ANTIALIAS`).
    """
    with torch.no_grad():
        ones = torch.ones_like(decoded.albedo)
        light = sh_from_direction(torch.tensor([0.3, -0.3, -1.0], dtype=ones.dtype,
                                               device=ones.device), 0.6, 0.45)
        light = light.expand(ones.shape[0], 9, 3).contiguous()  # (B, 9, 3)
        geometry = sh_shade(0.7 * ones, decoded.normals, light)
        irradiance = decoded.colors / decoded.albedo.clamp(min=1e-6)
        illum = torch.where(decoded.albedo.abs() > 1e-6, irradiance, ones)
        out = {}
        for name, cols, bg in (("image", decoded.colors, background),
                               ("geometry", geometry, None),
                               ("reflectance", decoded.albedo, None),
                               ("illumination", illum * 0.5, None)):
            img, _ = render(decoded, height, width, colors=cols, background=bg,
                            antialias=PICTURE_ANTIALIAS)
            out[name] = img.clamp(0, 1)
        return out


def mean_face_code(layout: CodeLayout, batch: int, *, distance: float = DEFAULT_DISTANCE_MM,
                   ambient: float = AMBIENT_OFFSET, dtype: torch.dtype = torch.float32,
                   device=None) -> torch.Tensor:
    """The code MoFA's encoder predicts at initialisation (Sec. 7): (B, D).

    The average face (alpha = delta = beta = 0), frontal (rotation 0), in the middle of the
    screen at ``distance`` mm (translation (0, 0, distance)), lit by ambient light
    gamma_0 = ``ambient`` per channel (the paper's 0.7 offset).
    """
    b = check_int(batch, name="batch", minimum=1)
    distance = check_positive(distance, name="distance")
    translation = torch.zeros(b, 3, dtype=dtype, device=device)
    translation[:, 2] = distance
    gamma = torch.zeros(b, 9, 3, dtype=dtype, device=device)
    gamma[:, 0] = float(ambient)
    return layout.join(translation=translation, sh=gamma)

