"""3D-aided short-video synthesis, 3DDFA_V2 Sec. 2.4 (Fig. 5, Algorithm 1 line 4).

One still image x_0 with its ground truth p_0 becomes n adjacent frames

    x_j = (T o F)(x_{j-1}),   x'_j = (M o P)(x_j),   1 <= j <= n - 1,

* F — out-of-plane motion: the face is turned by a small yaw / pitch step and **re-rendered**
  from its 3D parameters (the paper uses face profiling [54] on real photos; with a
  morphable-model corpus the re-rendering is exact). In T = [f R | t] this is
  ``f R -> E f R`` with E = Ry(dyaw) Rx(dpitch) about the camera's axes, t unchanged.
* T — in-plane similarity, Eq. (8): scale ds, rotation dtheta and shift (dt1, dt2) about
  the image centre; the whole frame (face and background) is warped, and the parameters
  follow exactly: T's rows x, y are rotated / scaled / shifted, its z row scaled.
* P — noise, P(x) = x + N(0, sigma^2 I).   * M — motion blur, M(x) = K * x (a line kernel).

Frames are built here from the parameters and the background, not by resampling x_{j-1}:
frame j's background is x_0's background warped by the accumulated similarity, and the face
is rendered with p_j, so the ground truth is consistent with every pixel.

Angles in T's frame: 3DDFA's image frame, x right, **y up**, z toward the viewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_int,
    check_shape,
)
from facelab.formation import form, render
from facelab.methods.tddfa.params import TDDFA_LAYOUT, ParamLayout, pack_params, split_params
from facelab.methods.tddfa.reconstruct import landmarks_screen
from facelab.model.morphable import MorphableModel

__all__ = [
    "VideoSynthesis",
    "add_noise",
    "motion_blur",
    "render_params",
    "rotate_out_of_plane",
    "similarity_matrix",
    "similarity_params",
    "synthesize_video",
    "warp_images",
]

@dataclass(frozen=True)
class VideoSynthesis:
    """Per-frame perturbation ranges of the short-video synthesis (3DDFA_V2 Sec. 2.4).

    The paper gives no values; these keep adjacent frames "slightly and smoothly" different
    on 64-128 px crops. Each step draws uniformly in [-max, max] (scale: 1 + U(-s, s)).
    frames: n, frames per clip including the still x_0.
    scale_step, rotation_step_deg, shift_step_px: Eq. (8) in-plane similarity.
    yaw_step_deg, pitch_step_deg: out-of-plane steps F (a clip keeps one direction,
        progressively increasing the angles, as in Fig. 5).
    noise_std: sigma of P (image in [0, 1]).
    blur_max_px: motion-blur kernel length drawn in [1, blur_max_px] (1 = no blur).
    """

    frames: int = 4
    scale_step: float = 0.03
    rotation_step_deg: float = 3.0
    shift_step_px: float = 1.5
    yaw_step_deg: float = 4.0
    pitch_step_deg: float = 2.0
    noise_std: float = 0.01
    blur_max_px: float = 3.0


def _batch_images(images, name="images"):
    x, _was_numpy = as_tensor(images, name=name)
    check_shape(x, "B H W 3", name=name)
    check_floating(x, name=name)
    check_finite(x, name=name)
    return x


def similarity_matrix(scale, angle, shift, height: int, width: int) -> torch.Tensor:
    """Eq. (8) as a (B, 2, 3) affine map of facelab pixel coordinates (x right, y down).

    scale: (B,) ds; angle: (B,) dtheta in radians, counter-clockwise **as seen in the image**
    (the face turns to the viewer's left for angle > 0); shift: (B, 2) (dt1, dt2) pixels,
    x right / y down. The rotation and scaling are about the image centre (W/2, H/2).
    """
    s = torch.as_tensor(scale)
    a = torch.as_tensor(angle).to(s)
    d = torch.as_tensor(shift).to(s)
    c, si = torch.cos(a), torch.sin(a)
    # counter-clockwise on screen = clockwise in y-down coordinates: [[c, s], [-s, c]]
    lin = s[:, None, None] * torch.stack([torch.stack([c, si], -1), torch.stack([-si, c], -1)],
                                         dim=1)  # (B, 2, 2)
    centre = torch.tensor([width / 2.0, height / 2.0], dtype=s.dtype)
    trans = centre - lin @ centre + d  # (B, 2)
    return torch.cat([lin, trans[:, :, None]], dim=2)  # (B, 2, 3)


def _compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Affine a o b for (B, 2, 3) maps."""
    lin = a[:, :, :2] @ b[:, :, :2]
    return torch.cat([lin, (a[:, :, :2] @ b[:, :, 2:]) + a[:, :, 2:]], dim=2)


def warp_images(images, affine):
    """Warp images by a pixel-space affine map (forward: source point -> destination).

    images: (B, H, W, 3) float; affine: (B, 2, 3) from :func:`similarity_matrix`.
    Bilinear resampling at pixel centres, reflection at the borders. Returns (B, H, W, 3).
    """
    x = _batch_images(images)
    B, H, W, _ = x.shape
    A = torch.as_tensor(affine).to(x)
    check_shape(A, "B 2 3", name="affine", dims={"B": B})
    lin_inv = torch.linalg.inv(A[:, :, :2])  # (B, 2, 2)
    jj, ii = torch.meshgrid(torch.arange(W, dtype=x.dtype) + 0.5,
                            torch.arange(H, dtype=x.dtype) + 0.5, indexing="xy")
    q = torch.stack([jj, ii], -1).reshape(1, -1, 2) - A[:, None, :, 2]  # (B, H*W, 2)
    p = q @ lin_inv.transpose(1, 2)  # source pixel coordinates
    grid = torch.stack([2 * p[..., 0] / W - 1, 2 * p[..., 1] / H - 1], -1).reshape(B, H, W, 2)
    out = F.grid_sample(x.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="reflection",
                        align_corners=False)
    return out.permute(0, 2, 3, 1)


def similarity_params(params, affine, height: int, layout: ParamLayout = TDDFA_LAYOUT):
    """The parameters of a face after the pixel-space similarity ``affine`` (Eq. 8).

    params: (B, 62) raw p; affine: (B, 2, 3) similarity of facelab pixels (y down);
    height: crop height (T lives in the y-up frame, y_up = H - y). Returns (B, 62): T's x/y
    rows mapped by the similarity, its z row scaled by the same factor, so a scaled
    rotation stays one.
    """
    T, a_id, a_exp = split_params(params, layout)
    A = torch.as_tensor(affine).to(T)
    flip = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, float(height)]], dtype=T.dtype)
    # y-up version: A_up = Fl A Fl with Fl(x, y) = (x, H - y) (its own inverse)
    fl3 = torch.cat([flip, torch.tensor([[0.0, 0.0, 1.0]], dtype=T.dtype)])  # (3, 3)
    A3 = torch.cat([A, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=T.dtype).expand(A.shape[0], 1, 3)],
                   1)
    A_up = fl3 @ A3 @ fl3  # (B, 3, 3)
    lin, trans = A_up[:, :2, :2], A_up[:, :2, 2]
    scale = torch.sqrt(torch.linalg.det(lin).abs())  # (B,)
    xy = lin @ T[:, :2, :]  # (B, 2, 4)
    xy[:, :, 3] = xy[:, :, 3] + trans
    z = scale[:, None] * T[:, 2, :]  # (B, 4)
    return pack_params(torch.cat([xy, z[:, None]], dim=1), a_id, a_exp, layout)


def _rot_x(a):
    c, s = torch.cos(a), torch.sin(a)
    o, z = torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(-1, 3, 3)


def _rot_y(a):
    c, s = torch.cos(a), torch.sin(a)
    o, z = torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(-1, 3, 3)


def rotate_out_of_plane(params, yaw, pitch, layout: ParamLayout = TDDFA_LAYOUT):
    """F: turn the head by (yaw, pitch) radians about the camera's y and x axes (Sec. 2.4).

    params: (B, 62) raw p; yaw, pitch: (B,). ``f R -> Ry(yaw) Rx(pitch) f R``; t unchanged
    (the head turns about the model origin). Returns (B, 62).
    """
    T, a_id, a_exp = split_params(params, layout)
    yaw = torch.as_tensor(yaw).to(T)
    pitch = torch.as_tensor(pitch).to(T)
    E = _rot_y(yaw) @ _rot_x(pitch)  # (B, 3, 3)
    T2 = torch.cat([E @ T[:, :, :3], T[:, :, 3:]], dim=2)
    return pack_params(T2, a_id, a_exp, layout)


def render_params(model: MorphableModel, params, albedo_coeffs, gamma, height: int,
                  background=None, layout: ParamLayout = TDDFA_LAYOUT):
    """Render faces under 3DDFA's scaled-orthographic camera (what the corpus renders).

    params: (B, 62) raw p; albedo_coeffs: (B, Kalb); gamma: (B, 9, 3) camera-space SH;
    height: square crop size; background: None (black), (3,) or (B, H, W, 3).
    An adapter: :meth:`ParamLayout.to_face` gives ``(FaceParams, ScaledOrthographic)`` and
    :func:`facelab.form` / :func:`facelab.render` do the rest. Returns (images, mask).
    """
    face, camera = layout.to_face(params, height, albedo=albedo_coeffs, gamma=gamma)
    image, mask = render(form(model, face, camera), height, height, background=background)
    return image.clamp(0, 1), mask


def motion_blur(images, length, angle):
    """M(x) = K * x with K a normalised line of ``length`` px at ``angle`` rad (per image).

    images: (B, H, W, 3); length: (B,) >= 1 (1 = identity); angle: (B,). Returns (B, H, W, 3).
    """
    x = _batch_images(images)
    L = torch.as_tensor(length, dtype=x.dtype)
    a = torch.as_tensor(angle, dtype=x.dtype)
    k = 2 * math.ceil(float(L.max()) / 2) + 1
    r = torch.arange(k, dtype=x.dtype) - k // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        if float(L[b]) <= 1.0:
            out[b] = x[b]
            continue
        t = torch.linspace(-0.5, 0.5, 9, dtype=x.dtype) * (L[b] - 1)
        px, py = t * torch.cos(a[b]), t * torch.sin(a[b])
        d2 = (xx[None] - px[:, None, None]) ** 2 + (yy[None] - py[:, None, None]) ** 2
        K = torch.exp(-d2 / 0.18).sum(0)
        K = (K / K.sum()).expand(3, 1, k, k)
        img = F.pad(x[b].permute(2, 0, 1)[None], (k // 2,) * 4, mode="replicate")
        out[b] = F.conv2d(img, K, groups=3)[0].permute(1, 2, 0)
    return out


def add_noise(images, std: float, generator: torch.Generator | None = None):
    """P(x) = x + N(0, std^2 I), clamped to [0, 1]. images: (B, H, W, 3)."""
    x = _batch_images(images)
    n = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return (x + std * n).clamp(0, 1)


def synthesize_video(model: MorphableModel, params, albedo_coeffs, gamma, background,
                     config: VideoSynthesis | None = None,
                     generator: torch.Generator | None = None,
                     layout: ParamLayout = TDDFA_LAYOUT) -> dict:
    """Expand stills into short clips (3DDFA_V2 Sec. 2.4, Algorithm 1 line 4).

    model: the morphable model the stills were rendered with.
    params: (B, 62) raw p of the stills; albedo_coeffs (B, Kalb); gamma (B, 9, 3);
    background: (B, H, W, 3) the stills' backgrounds (frame 0 = still over it).
    Returns dict with ``images`` (B, n, H, W, 3), ``params`` (B, n, 62), ``landmarks``
    (B, n, 68, 2) facelab pixels (y down), ``mask`` (B, n, H, W).
    """
    cfg = VideoSynthesis() if config is None else config
    n = check_int(cfg.frames, name="frames", minimum=1)
    bg = _batch_images(background, "background")
    B, H, W, _ = bg.shape
    if H != W:
        raise ValueError(f"background: expected square images, got {tuple(bg.shape)}")
    p = torch.as_tensor(params).to(bg)
    check_shape(p, f"B {layout.size}", name="params", dims={"B": B})
    g = generator

    def u(*shape):
        return 2 * torch.rand(*shape, generator=g, dtype=bg.dtype) - 1

    yaw_dir = cfg.yaw_step_deg * torch.rand(B, generator=g, dtype=bg.dtype) * torch.sign(u(B))
    pitch_dir = cfg.pitch_step_deg * u(B)
    affine = torch.eye(2, 3, dtype=bg.dtype).expand(B, 2, 3).clone()
    frames, ps, masks = [], [], []
    for j in range(n):
        if j > 0:
            p = rotate_out_of_plane(p, torch.deg2rad(yaw_dir), torch.deg2rad(pitch_dir), layout)
            step = similarity_matrix(1 + cfg.scale_step * u(B),
                                     torch.deg2rad(cfg.rotation_step_deg * u(B)),
                                     cfg.shift_step_px * u(B, 2), H, W)
            p = similarity_params(p, step, H, layout)
            affine = _compose(step, affine)
        back = bg if j == 0 else warp_images(bg, affine)
        img, mask = render_params(model, p, albedo_coeffs, gamma, H, back, layout)
        if j > 0:
            img = add_noise(img, cfg.noise_std, g)
            length = 1 + (cfg.blur_max_px - 1) * torch.rand(B, generator=g, dtype=bg.dtype)
            img = motion_blur(img, length, math.pi * torch.rand(B, generator=g, dtype=bg.dtype))
            img = img.clamp(0, 1)
        frames.append(img)
        ps.append(p)
        masks.append(mask)
    params_all = torch.stack(ps, 1)  # (B, n, 62)
    lm = landmarks_screen(model, params_all.reshape(B * n, -1), H, layout).reshape(B, n, -1, 2)
    return {"images": torch.stack(frames, 1), "params": params_all, "landmarks": lm,
            "mask": torch.stack(masks, 1)}
