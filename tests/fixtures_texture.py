"""A textured stand-in for the built-in model (until a model ships with texture maps): the v1
teaching model with a cylindrical UV unwrap and albedo maps baked from its own per-vertex
albedo, plus procedural textures (halves, quadrants) for orientation tests."""

from __future__ import annotations

import dataclasses
import functools

import torch

import facelab as fl


def cylindrical_uv(verts: torch.Tensor, axis_z: float = -120.0) -> torch.Tensor:
    """(V, 2) UVs of a cylinder around the vertical axis through (0, ·, axis_z): u = the
    angle (0.5 straight ahead, +x to the right), v = the height (up), both scaled into
    [0.05, 0.95] (a margin keeps bilinear lookups inside the baked island)."""
    theta = torch.atan2(verts[:, 0], verts[:, 2] - axis_z)  # (V,) angle around the axis
    u, v = theta, verts[:, 1]
    u = (u - u.min()) / (u.max() - u.min())
    v = (v - v.min()) / (v.max() - v.min())
    return (0.05 + 0.9 * torch.stack([u, v], dim=1)).to(verts.dtype)


def bake(model: fl.MorphableModel, uv: torch.Tensor, attrs: torch.Tensor, size: int,
         fill: torch.Tensor) -> torch.Tensor:
    """Rasterize per-vertex ``attrs`` (V, C) into a (size, size, C) map over the UV layout
    (texel row = (1 - v) size); texels no triangle covers take ``fill`` (C,)."""
    screen = torch.cat([uv[:, :1] * size, (1 - uv[:, 1:]) * size,
                        torch.ones_like(uv[:, :1])], dim=1)[None].double()  # (1, V, 3)
    frags = fl.rasterize(screen, model.faces, size, size)
    maps = fl.interpolate(attrs[None].double(), frags, model.faces)[0]  # (size, size, C)
    empty = torch.as_tensor(frags.face_index[0]) < 0
    maps[empty] = fill.double()
    return maps.to(attrs.dtype)


@functools.cache
def textured_teaching_model(size: int = 256) -> fl.MorphableModel:
    """v1 teaching model + cylindrical UVs (uv_faces = faces) + albedo maps baked from its
    mean albedo and albedo basis (so the texture equals the per-vertex albedo interpolated)."""
    m = fl.load_model("synthetic", "teaching", version=1)
    uv = cylindrical_uv(m.mean_shape)
    V, K = m.num_vertices, m.n_albedo
    mean = bake(m, uv, m.mean_albedo, size, m.mean_albedo.mean(0))
    basis = bake(m, uv, m.albedo_basis.reshape(V, 3 * K), size, torch.zeros(3 * K))
    return dataclasses.replace(m, uv=uv, uv_faces=m.faces.clone(), albedo_texture=mean,
                               albedo_texture_basis=basis.reshape(size, size, 3, K))


def quadrant_texture(size: int = 64, dtype=torch.float32) -> torch.Tensor:
    """(1, size, size, 3): top-left red, top-right green, bottom-left blue, bottom-right
    white (row 0 is the top of the image, i.e. v = 1)."""
    tex = torch.zeros(1, size, size, 3, dtype=dtype)
    h = size // 2
    tex[0, :h, :h] = torch.tensor([1.0, 0, 0])
    tex[0, :h, h:] = torch.tensor([0, 1.0, 0])
    tex[0, h:, :h] = torch.tensor([0, 0, 1.0])
    tex[0, h:, h:] = 1.0
    return tex


def setup(model, batch=2, dtype=torch.float32, size=64, seed=0, yaw=0.3, ambient=False):
    """FaceParams and a pinhole camera framing the face (random light, or pure ambient)."""
    g = torch.Generator().manual_seed(seed)
    camera, t = fl.default_camera(batch, size, size, dtype=dtype)
    angles = torch.zeros(batch, 3, dtype=dtype)
    angles[:, 1] = yaw * torch.linspace(-1, 1, batch, dtype=dtype)
    gamma = (fl.ambient_sh(1.0)[None].repeat(batch, 1, 1) if ambient else
             fl.random_sh(batch, generator=g, front=(0, 0, -1))).to(dtype)
    params = fl.FaceParams(
        id=torch.randn(batch, model.n_id, generator=g).to(dtype),
        exp=0.5 * torch.randn(batch, model.n_exp, generator=g).to(dtype),
        albedo=torch.randn(batch, model.n_albedo, generator=g).to(dtype),
        rotation=fl.rotations.head_rotation(angles), translation=t, gamma=gamma)
    return params, camera


__all__ = ["bake", "cylindrical_uv", "quadrant_texture", "setup", "textured_teaching_model"]
