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
from facelab._checks import as_tensor, check_finite, check_floating, check_positive, check_shape
from facelab.model.morphable import MorphableModel
from facelab.normals import vertex_normals
from facelab.render import render
from facelab.shading import sh_shade

__all__ = ["FaceRender", "default_camera", "render_face", "head_rotation"]

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
