"""Image formation: from model coefficients, pose, camera and light to a rendered face.

This is the forward model every chapter shares (MoFA Sec. 5, "Parametric model-based
decoder"): geometry and reflectance from the morphable model (MoFA Eqs. 2-3), a rigid
head pose, a full-perspective pinhole camera, per-vertex camera-space normals,
Lambertian spherical-harmonics shading (MoFA Eq. 4) and rasterization into an image
(MoFA Eq. 5 evaluates the same colours per vertex; the rasterizer fills the pixels).

Conventions: model space in mm (y up, face toward +z); the head rotation is applied in
model space, then :func:`facelab.cameras.model_to_camera` flips into OpenCV camera space
(x right, y down, z forward). Lighting ``gamma`` is expressed in **camera space**, so a
light placed at the camera has direction (0, 0, -1) (use ``random_sh(..., front=(0, 0, -1))``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from facelab import cameras
from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_int,
    check_positive,
    check_shape,
)
from facelab.model.morphable import MorphableModel
from facelab.normals import vertex_normals
from facelab.render import render
from facelab.shading import sh_shade

__all__ = ["FaceRender", "default_camera", "head_rotation", "render_face", "render_preview"]

DEFAULT_FOV_DEG = 16.0
DEFAULT_DISTANCE_MM = 800.0


class FaceRender(NamedTuple):
    """Everything :func:`render_face` computes, for inspection and losses.

    image: (B, H, W, 3) rendered colours over the background.
    mask: (B, H, W) bool, pixels covered by the face.
    verts: (B, V, 3) posed model-space vertices (mm).
    verts_cam: (B, V, 3) camera-space vertices (OpenCV, mm).
    screen_verts: (B, V, 3) (u, v, z): pixel position and camera depth.
    normals: (B, V, 3) unit camera-space vertex normals.
    albedo: (B, V, 3) per-vertex reflectance.
    colors: (B, V, 3) shaded per-vertex colours (MoFA Eq. 4).
    """

    image: torch.Tensor
    mask: torch.Tensor
    verts: torch.Tensor
    verts_cam: torch.Tensor
    screen_verts: torch.Tensor
    normals: torch.Tensor
    albedo: torch.Tensor
    colors: torch.Tensor


def head_rotation(angles) -> torch.Tensor:
    """(B, 3) (pitch, yaw, roll) in radians -> (B, 3, 3) rotation (``euler_to_matrix``, "xyz")."""
    from facelab.rotations import euler_to_matrix

    return euler_to_matrix(angles, convention="xyz")


def default_camera(batch: int, height: int, width: int, *, fov_deg: float = DEFAULT_FOV_DEG,
                   distance: float = DEFAULT_DISTANCE_MM, dtype=torch.float32, device=None):
    """A camera that frames the built-in face.

    Returns ``(focal (B, 2), principal (B, 2), translation (B, 3))``: pixels, pixels, mm.

    fov_deg: vertical field of view; distance: camera-to-model-origin distance (mm).
    """
    check_positive(distance, name="distance")
    focal, principal = cameras.intrinsics_from_fov(fov_deg, height, width, dtype=dtype,
                                                   device=device)
    focal = focal.expand(batch, 2).contiguous()
    principal = principal.expand(batch, 2).contiguous()
    translation = torch.zeros(batch, 3, dtype=dtype, device=device)
    translation[:, 2] = distance
    return focal, principal, translation


def render_face(model: MorphableModel, id_coeffs, exp_coeffs, albedo_coeffs, rotation,
                translation, gamma, focal, principal, height: int, width: int, *,
                jaw_pose=None, background=None) -> FaceRender:
    """Render faces of ``model`` (MoFA Sec. 5 image formation).

    model: a :class:`MorphableModel`.
    id_coeffs: (B, k_id) identity coefficients (k_id <= Kid; ~N(0, 1)).
    exp_coeffs: (B, k_exp) expression coefficients, or None (neutral).
    albedo_coeffs: (B, k_alb) reflectance coefficients.
    rotation: (B, 3, 3) head rotation in model space (see :func:`head_rotation`).
    translation: (B, 3) camera-space translation (mm), e.g. (0, 0, 800).
    gamma: (B, 9, 3) SH lighting in camera space (MoFA's 27 illumination parameters).
    focal: (B,) or (B, 2) pixels; principal: (B, 2) pixels.
    height, width: image size in pixels.
    jaw_pose: optional (B, 3) axis-angle jaw rotation (models with a jaw joint).
    background: None (black), (3,) colour or (B, H, W, 3) image.

    Returns a :class:`FaceRender`; differentiable in every float input (silhouettes excepted).
    """
    a, _ = as_tensor(id_coeffs, name="id_coeffs")
    check_floating(a, name="id_coeffs")
    dims = check_shape(a, "B K", name="id_coeffs")
    g, _ = as_tensor(gamma, name="gamma")
    check_shape(g, "B 9 3", name="gamma", dims={"B": dims["B"]})
    check_finite(g, name="gamma")
    verts = model.shape(a, exp_coeffs)  # (B, V, 3) model space
    if jaw_pose is not None:
        verts = model.pose_jaw(verts, jaw_pose)
    verts_cam = cameras.model_to_camera(verts, rotation, translation)  # (B, V, 3)
    screen = cameras.screen_from_camera(verts_cam, focal, principal)  # (B, V, 3) (u, v, z)
    normals = vertex_normals(verts_cam, model.faces.to(a.device))  # (B, V, 3)
    albedo = model.albedo(albedo_coeffs).to(a)  # (B, V, 3)
    colors = sh_shade(albedo, normals, g.to(a))  # (B, V, 3), MoFA Eq. 4
    image, mask = render(screen, model.faces.to(a.device), colors, height, width,
                         background=background, perspective_correct=True)
    return FaceRender(image, mask, verts, verts_cam, screen, normals, albedo, colors)


def render_preview(model: MorphableModel, id_coeffs=None, exp_coeffs=None, albedo_coeffs=None,
                   angles=(0.0, 0.0, 0.0), gamma=None, jaw: float | None = None,
                   size: int = 192, background=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """One quick look at the model: a single face, default camera, one call.

    id_coeffs: (k_id,) or None (mean identity); exp_coeffs: (k_exp,) or None (neutral);
    albedo_coeffs: (k_alb,) or None (mean reflectance) — coefficients ~N(0, 1).
    angles: (pitch, yaw, roll) in radians (:func:`head_rotation`).
    gamma: (1, 9, 3) or (9, 3) camera-space SH light, or None for a key light from the upper
        left of the camera plus ambient.
    jaw: jaw opening in radians (models with a jaw joint), or None.
    size: image height = width in pixels; background: (3,) colour.
    Returns the image, (size, size, 3) float32, without gradients (for teaching figures; use
    :func:`render_face` for batches, gradients and every intermediate).
    """
    size = check_int(size, name="size", minimum=8)

    def coeffs(c, k, name):
        if c is None:
            return torch.zeros(1, k)
        t, _ = as_tensor(c, name=name, dtype=torch.float32)
        check_shape(t, "K", name=name)
        return t.reshape(1, -1)

    a = coeffs(id_coeffs, model.n_id, "id_coeffs")
    e = None if exp_coeffs is None else coeffs(exp_coeffs, model.n_exp, "exp_coeffs")
    b = coeffs(albedo_coeffs, model.n_albedo, "albedo_coeffs")
    ang = torch.as_tensor(angles, dtype=torch.float32)
    check_shape(ang, "3", name="angles")
    check_finite(ang, name="angles")
    if gamma is None:
        from facelab.lighting import sh_from_direction

        gamma = sh_from_direction(torch.tensor([0.3, -0.3, -1.0]), 0.5, 0.6)
    g, _ = as_tensor(gamma, name="gamma", dtype=torch.float32)
    g = g.reshape(1, 9, 3) if g.shape == (9, 3) else g
    jaw_pose = None if jaw is None else torch.tensor([[float(jaw), 0.0, 0.0]])
    focal, principal, t = default_camera(1, size, size)
    with torch.no_grad():
        out = render_face(model.to(dtype=torch.float32), a, e, b, head_rotation(ang[None]), t, g,
                          focal, principal, size, size, jaw_pose=jaw_pose,
                          background=torch.as_tensor(background, dtype=torch.float32))
    return out.image[0]
