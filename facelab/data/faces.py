"""A synthetic corpus of rendered faces with ground truth (MoFA Sec. 7, 3DDFA_V2's 300W-LP role).

Every sample is drawn from the morphable model with random identity, expression, jaw,
reflectance, head pose and SH light, rendered over a random smooth background, and comes
with everything it was made from (coefficients, pose, camera, vertices, landmarks,
visibility). Sample ``i`` of a dataset with seed ``s`` depends only on ``(s, i)``, so a
corpus is reproducible and can be generated on the fly in any order, in any batch size.

Two cameras: ``"perspective"`` (MoFA's pinhole camera, :class:`facelab.cameras.Pinhole`) and
``"scaled_orthographic"`` (3DDFA_V2's ``T = [f R | t]`` in a y-up image frame, Eq. 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facelab import cameras
from facelab._checks import check_int
from facelab.face_params import FaceParams
from facelab.formation import DEFAULT_FOV_DEG, form, render
from facelab.lighting import random_sh
from facelab.model.morphable import MorphableModel
from facelab.raster import vertex_visibility
from facelab.rotations import head_rotation

__all__ = ["FaceSampling", "SyntheticFaces", "random_backgrounds"]

CAMERAS = ("perspective", "scaled_orthographic")
# Height (mm) of the built-in face that the orthographic scale maps to ~75% of the image.
_FACE_HEIGHT_MM = 210.0


@dataclass(frozen=True)
class FaceSampling:
    """Distributions of the synthetic population (all angles in degrees, lengths in mm).

    id_scale, exp_scale, albedo_scale: std of the N(0, s^2) coefficients (the bases are
        std-scaled, so 1.0 is the model's population).
    named_expression_prob: probability of adding one named expression (amount U(0.5, 1)).
    jaw_max: the jaw opens by U(0, jaw_max) radians (models with a jaw joint).
    yaw_deg, pitch_deg, roll_deg: uniform ranges of the head rotation.
    distance_mm: uniform range of the camera distance (perspective camera).
    shift: uniform image-plane shift of the face centre, as a fraction of the image size.
    scale_jitter: relative jitter of the face size in the image (orthographic camera).
    background: ``"random"`` (smooth colour noise, gradients) or ``"none"`` (flat grey).
    """

    id_scale: float = 1.0
    exp_scale: float = 0.6
    albedo_scale: float = 1.0
    named_expression_prob: float = 0.5
    jaw_max: float = 0.2
    yaw_deg: tuple[float, float] = (-40.0, 40.0)
    pitch_deg: tuple[float, float] = (-20.0, 20.0)
    roll_deg: tuple[float, float] = (-15.0, 15.0)
    distance_mm: tuple[float, float] = (850.0, 1050.0)
    shift: float = 0.05
    scale_jitter: float = 0.1
    background: str = "random"

    def __post_init__(self):
        if self.background not in ("random", "none"):
            raise ValueError(f"background: expected 'random' or 'none', got {self.background!r}")
        for name in ("yaw_deg", "pitch_deg", "roll_deg", "distance_mm"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: expected (low, high) with low <= high, got {(lo, hi)}")


def random_backgrounds(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Smooth random backgrounds, (count, size, size, 3) float32 in [0, 1].

    A random base colour, a linear gradient and low-frequency colour noise (bilinearly
    upsampled from 4x4 and 8x8 grids): enough clutter that a network cannot find the face
    by colour alone (MoFA trains with "background augmentation", Fig. 10).
    """
    base = torch.rand(count, 3, 1, 1, generator=generator)
    ramp = torch.linspace(-1, 1, size)
    direction = torch.randn(count, 2, generator=generator)
    grad = (direction[:, 0, None, None] * ramp[None, :, None]
            + direction[:, 1, None, None] * ramp[None, None, :])  # (count, size, size)
    noise = 0
    for cells, amp in ((4, 0.35), (8, 0.15)):
        coarse = torch.randn(count, 3, cells, cells, generator=generator)
        noise = noise + amp * F.interpolate(coarse, size=(size, size), mode="bilinear",
                                            align_corners=False)
    img = base + 0.15 * grad[:, None] + noise  # (count, 3, size, size)
    return img.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


class SyntheticFaces(torch.utils.data.Dataset):
    """Rendered faces of ``model`` with full ground truth, generated on the fly.

    model: a :class:`MorphableModel` (e.g. ``load_model("synthetic")``, or truncated).
    size: image height = width in pixels.
    length: number of samples.
    seed: sample ``i`` depends only on ``(seed, i)``.
    sampling: a :class:`FaceSampling`.
    camera: ``"perspective"`` or ``"scaled_orthographic"``.

    ``dataset[i]`` returns a dict of tensors (see :meth:`batch`, without the batch dim);
    ``dataset.batch(start, count)`` renders ``count`` consecutive samples in one call.
    """

    def __init__(self, model: MorphableModel, size: int = 128, length: int = 1000, seed: int = 0,
                 sampling: FaceSampling | None = None, camera: str = "perspective"):
        if not isinstance(model, MorphableModel):
            raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
        if camera not in CAMERAS:
            raise ValueError(f"camera: expected one of {list(CAMERAS)}, got {camera!r}")
        self.model = model.to(dtype=torch.float32)
        self.size = check_int(size, name="size", minimum=8)
        self.length = check_int(length, name="length", minimum=0)
        self.seed = check_int(seed, name="seed", minimum=0)
        self.sampling = FaceSampling() if sampling is None else sampling
        self.camera = camera

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        i = check_int(i, name="i")
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"i: expected an index in [0, {self.length}), got {i}")
        return {k: v[0] for k, v in self.batch(i, 1).items()}

    # ------------------------------------------------------------------ sampling
    def _sample_params(self, index: int) -> dict:
        """Coefficients, pose, light for one sample, from its own generator."""
        s, m = self.sampling, self.model
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        exp = s.exp_scale * torch.randn(m.n_exp, generator=g)
        if m.expressions and float(torch.rand(1, generator=g)) < s.named_expression_prob:
            names = m.expression_names
            name = names[int(torch.randint(len(names), (1,), generator=g))]
            exp = exp + m.expression(name, 0.5 + 0.5 * float(torch.rand(1, generator=g)))
        u = torch.rand(8, generator=g)
        deg = [lo + (hi - lo) * float(t) for (lo, hi), t in
               zip((s.pitch_deg, s.yaw_deg, s.roll_deg), u[:3], strict=True)]
        jaw = torch.zeros(3)
        if m.jaw_joint is not None:
            jaw[0] = s.jaw_max * max(0.0, 2.0 * float(u[3]) - 1.0)  # closed half the time
        return dict(
            id=s.id_scale * torch.randn(m.n_id, generator=g),
            exp=exp,
            albedo=s.albedo_scale * torch.randn(m.n_albedo, generator=g),
            jaw=jaw,
            angles=torch.tensor([math.radians(d) for d in deg]),
            distance=s.distance_mm[0] + (s.distance_mm[1] - s.distance_mm[0]) * float(u[4]),
            shift=(u[5:7] * 2 - 1) * s.shift * self.size,
            scale=1.0 + (float(u[7]) * 2 - 1) * s.scale_jitter,
            gamma=random_sh(1, generator=g, front=(0.0, 0.0, -1.0))[0],
            background_seed=int(torch.randint(2**31 - 1, (1,), generator=g)),
        )

    def sample(self, start: int, count: int):
        """The ground truth of samples ``start .. start + count - 1`` without rendering.

        Returns ``(params, camera, extras)``: a :class:`facelab.FaceParams` of batch ``count``
        (id, exp, albedo, rotation, translation, gamma, and jaw for models with a jaw joint),
        its camera (:class:`~facelab.cameras.Pinhole` or
        :class:`~facelab.cameras.ScaledOrthographic`), and a dict with ``angles`` (B, 3),
        the per-sample ``background_seed`` list, and ``T`` (B, 3, 4) for the orthographic
        camera (3DDFA_V2 Eq. 3, y-up image frame of height H).
        """
        start = check_int(start, name="start", minimum=0)
        count = check_int(count, name="count", minimum=1)
        if start + count > self.length:
            raise IndexError(f"start, count: expected start + count <= {self.length}, "
                             f"got {start} + {count}")
        m, size = self.model, self.size
        drawn = [self._sample_params(start + k) for k in range(count)]
        stack = {k: torch.stack([p[k] for p in drawn]) for k in
                 ("id", "exp", "albedo", "jaw", "angles", "gamma")}
        rotation = head_rotation(stack["angles"])  # (B, 3, 3)
        extras = {"angles": stack["angles"], "background_seed": [p["background_seed"]
                                                                  for p in drawn]}
        if self.camera == "perspective":
            camera = cameras.Pinhole.from_fov(size, size, fov_deg=DEFAULT_FOV_DEG, batch=count)
            dist = torch.tensor([p["distance"] for p in drawn])
            shift = torch.stack([p["shift"] for p in drawn])  # (B, 2) pixels
            # A pixel shift at the face's depth: t_xy = shift * z / f.
            translation = torch.stack([shift[:, 0] * dist / camera.focal[:, 0],
                                       shift[:, 1] * dist / camera.focal[:, 1], dist], dim=1)
        else:
            scale = torch.tensor([p["scale"] for p in drawn]) * 0.75 * size / _FACE_HEIGHT_MM
            shift = torch.stack([p["shift"] for p in drawn])  # (B, 2)
            t = torch.zeros(count, 3)
            t[:, 0] = size / 2 + shift[:, 0]
            t[:, 1] = size / 2 + shift[:, 1]
            extras["T"] = cameras.scaled_orthographic_matrix(scale, rotation, t)  # (B, 3, 4)
            # T's y-up image frame -> facelab pixels (y down): offset = (t_x, H - t_y)
            camera = cameras.ScaledOrthographic(scale, torch.stack([t[:, 0], size - t[:, 1]], 1))
            translation = torch.zeros(count, 3)
        params = FaceParams(id=stack["id"], exp=stack["exp"], albedo=stack["albedo"],
                            rotation=rotation, translation=translation, gamma=stack["gamma"],
                            jaw=stack["jaw"] if m.jaw_joint is not None else None)
        return params, camera, extras

    def batch(self, start: int, count: int) -> dict:
        """Render samples ``start .. start + count - 1``; a dict of batched tensors.

        image (B, H, W, 3) float32 in [0, 1]; mask (B, H, W) bool; id (B, Kid); exp (B, Kexp);
        albedo (B, Kalb); jaw (B, 3) axis-angle; angles (B, 3) pitch, yaw, roll (rad);
        rotation (B, 3, 3); gamma (B, 9, 3) camera-space SH; verts (B, V, 3) model space (mm,
        with the jaw pose, before the head rotation); verts_cam (B, V, 3) camera space (OpenCV
        axes; for the orthographic camera rotation + flip only, no translation); screen_verts
        (B, V, 3) (u, v, depth) pixels, y down; landmarks_2d (B, 68, 2) pixels, y down;
        visible (B, V) bool.
        Perspective: translation (B, 3) mm, focal (B, 2), principal (B, 2).
        Scaled orthographic: T (B, 3, 4) (3DDFA_V2 Eq. 3, y-up image frame of height H).
        """
        params, camera, extras = self.sample(start, count)
        m, size = self.model, self.size
        formed = form(m, params, camera)
        if self.sampling.background == "random":
            bg = torch.cat([random_backgrounds(1, size, torch.Generator().manual_seed(seed))
                            for seed in extras["background_seed"]])
        else:
            bg = torch.full((count, size, size, 3), 0.5)
        image, mask = render(formed, size, size, background=bg)
        visible = vertex_visibility(formed.screen_verts, m.faces, size, size)
        out = dict(id=params.id, exp=params.exp, albedo=params.albedo,
                   jaw=params.jaw if params.jaw is not None else torch.zeros(count, 3),
                   angles=extras["angles"], gamma=params.gamma, rotation=params.rotation,
                   verts=formed.verts, image=image.clamp(0, 1), mask=mask,
                   verts_cam=formed.verts_cam, screen_verts=formed.screen_verts,
                   landmarks_2d=formed.landmarks_2d, visible=visible)
        if isinstance(camera, cameras.Pinhole):
            out.update(translation=params.translation, focal=camera.focal,
                       principal=camera.principal)
        else:
            out.update(T=extras["T"])
        return {k: v.detach() for k, v in out.items()}
