"""Camera objects: one protocol, ``project(verts_cam) -> (B, V, 3)`` screen (u, v, depth).

:class:`Pinhole` (MoFA), :class:`ScaledOrthographic` (3DDFA_V2) and :class:`WeakPerspective`
(DECA / NeuFace) hold per-batch parameters and call the functional forms of
:mod:`facelab.cameras`, which re-exports them (``facelab.cameras.Pinhole``); :func:`facelab.form`
takes any of them. Camera space is OpenCV's (x right, y down, z forward) for all three; the
screen convention is facelab's (pixels, y down, depth growing away from the camera).
"""

from __future__ import annotations

import dataclasses

import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_int,
    check_shape,
    like_input,
)
from facelab.cameras import (
    _MODEL_TO_OPENCV,
    _affine,
    _pinhole_screen,
    _points,
    _weak_screen,
    intrinsics_from_fov,
    scaled_orthographic_matrix,
)

__all__ = ["CAMERA_TYPES", "Pinhole", "ScaledOrthographic", "WeakPerspective"]


def _camera_tensor(x, tail: str, name: str) -> torch.Tensor:
    """Validate one camera parameter: (B, *tail), floating, finite."""
    t, _ = as_tensor(x, name=name)
    check_shape(t, ("B " + tail).strip(), name=name)
    check_floating(t, name=name)
    check_finite(t, name=name)
    return t


class _CameraBase:
    """Batch plumbing shared by the camera objects (each is a frozen dataclass of tensors)."""

    _tensors: tuple[str, ...] = ()

    def _set_scale_and_shift(self, shift: str) -> None:
        """Validate the affine cameras' ``scale`` (B,) > 0 and their (B, 2) ``shift`` field."""
        s = _camera_tensor(self.scale, "", "scale")
        if bool((s <= 0).any()):
            raise ValueError(f"scale: expected positive scales, got {s.tolist()}")
        t = _camera_tensor(getattr(self, shift), "2", shift)
        check_shape(t, "B 2", name=shift, dims={"B": s.shape[0]})
        object.__setattr__(self, "scale", s)
        object.__setattr__(self, shift, t.to(s))

    @property
    def batch(self) -> int:
        """Leading size B of the parameters (1 = one camera shared by a whole batch)."""
        return int(getattr(self, self._tensors[0]).shape[0])

    def project(self, verts_cam):
        """verts_cam: (B, V, 3) OpenCV camera space (B = the camera's or any, for a shared
        camera) -> (B, V, 3) screen (u, v, depth): pixels, y down, depth growing away."""
        v, was_numpy = _points(verts_cam, "B V 3", "verts_cam")
        if self.batch not in (1, v.shape[0]):
            raise ValueError(f"verts_cam: expected batch size {self.batch} (the camera's) or a "
                             f"shared camera, got {tuple(v.shape)}")
        cam = self.to(device=v.device, dtype=v.dtype)
        return like_input(cam._project(v), was_numpy)

    def _project(self, v: torch.Tensor) -> torch.Tensor:
        """The projection on validated tensors of the camera's dtype/device (see project)."""
        raise NotImplementedError

    def _map(self, fn):
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in self._tensors:
            values[k] = fn(values[k])
        return type(self)(**values)

    def to(self, device=None, dtype=None):
        """The same camera with its tensors on ``device`` / in ``dtype`` (self if unchanged)."""
        ref = getattr(self, self._tensors[0])
        if (dtype in (None, ref.dtype)) and (device is None or torch.device(device) == ref.device):
            return self
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self):
        return self._map(lambda t: t.detach())

    def __getitem__(self, index):
        """Cameras of a batch selection; an int keeps the batch axis (B = 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return self._map(lambda t: t[index])

    def expand(self, batch: int):
        """Broadcast a shared camera (B = 1) to ``batch``; a camera of that B is returned."""
        batch = check_int(batch, name="batch", minimum=1)
        if self.batch == batch:
            return self
        if self.batch != 1:
            raise ValueError(f"batch: cannot expand a camera of B={self.batch} to {batch}")
        return self._map(lambda t: t.expand(batch, *t.shape[1:]).contiguous())

    @classmethod
    def cat(cls, cams):
        """Concatenate cameras of one type along the batch axis."""
        cams = list(cams)
        if not cams or not all(type(c) is cls for c in cams):
            raise TypeError(f"cams: expected a non-empty sequence of {cls.__name__}")
        first = cams[0]
        values = {f.name: getattr(first, f.name) for f in dataclasses.fields(first)}
        for c in cams[1:]:
            for f in dataclasses.fields(c):
                if f.name not in cls._tensors and getattr(c, f.name) != values[f.name]:
                    raise ValueError(f"cams: {f.name} differs ({getattr(c, f.name)} vs "
                                     f"{values[f.name]})")
        for k in cls._tensors:
            values[k] = torch.cat([getattr(c, k) for c in cams])
        return cls(**values)


@dataclasses.dataclass(frozen=True, eq=False)
class Pinhole(_CameraBase):
    """Full-perspective pinhole camera (MoFA Sec. 5, Pi): ``u = fx x / z + cx``.

    focal: (B, 2) (fx, fy) pixels; a (B,) tensor is taken as fx = fy.
    principal: (B, 2) (cx, cy) pixels; (W/2, H/2) is the image centre.
    ``project`` is :func:`facelab.cameras.screen_from_camera`: (u, v, z) with the camera
    depth z, which the rasterizer also uses for perspective-correct interpolation.
    """

    focal: torch.Tensor
    principal: torch.Tensor
    _tensors = ("focal", "principal")
    perspective_correct = True

    def __post_init__(self):
        f, _ = as_tensor(self.focal, name="focal")
        f = _camera_tensor(f, "" if f.ndim == 1 else "2", "focal")
        if f.ndim == 1:
            f = torch.stack([f, f], dim=-1)  # (B, 2), fx = fy
        if bool((f <= 0).any()):
            raise ValueError(f"focal: expected positive focal lengths (pixels), got {f.tolist()}")
        c = _camera_tensor(self.principal, "2", "principal")
        check_shape(c, "B 2", name="principal", dims={"B": f.shape[0]})
        object.__setattr__(self, "focal", f)
        object.__setattr__(self, "principal", c.to(f))

    @classmethod
    def from_fov(cls, height: int, width: int, *, fov_deg: float = 16.0, batch: int = 1,
                 dtype: torch.dtype = torch.float32, device=None) -> Pinhole:
        """The camera of :func:`intrinsics_from_fov` (vertical field of view), B = ``batch``."""
        focal, principal = intrinsics_from_fov(fov_deg, height, width, dtype=dtype, device=device)
        return cls(focal, principal).expand(batch)

    def _project(self, v):
        return _pinhole_screen(v, self.focal, self.principal)  # screen_from_camera's arithmetic


@dataclasses.dataclass(frozen=True, eq=False)
class ScaledOrthographic(_CameraBase):
    """Scaled-orthographic camera (3DDFA_V2 Eq. 3) on OpenCV camera axes.

    scale: (B,) f, pixels per mm. offset: (B, 2) pixel position of the camera-space origin.
    ``project``: ``(u, v, depth) = f (x, y, z) + (ox, oy, 0)`` through
    :func:`facelab.cameras.scaled_orthographic_transform` with ``T = [f I | (ox, oy, 0)]``.

    3DDFA_V2's ``T = [f R | t3]`` (y-up image of height H) is this camera with
    ``offset = (t3x, H - t3y)``, the head rotation R in :class:`facelab.FaceParams` and
    camera-space translation (0, 0, -t3z / f) (depth only); see
    ``facelab.methods.tddfa.params.ParamLayout.to_face``.
    """

    scale: torch.Tensor
    offset: torch.Tensor
    _tensors = ("scale", "offset")
    perspective_correct = False

    def __post_init__(self):
        self._set_scale_and_shift("offset")

    def matrix(self) -> torch.Tensor:
        """``T = [f I | (ox, oy, 0)]``: (B, 3, 4), acting on camera-space points."""
        eye = torch.eye(3, dtype=self.scale.dtype, device=self.scale.device)
        t = torch.cat([self.offset, torch.zeros_like(self.offset[:, :1])], dim=1)  # (B, 3)
        return scaled_orthographic_matrix(self.scale, eye.expand(self.batch, 3, 3), t)

    def _project(self, v):
        return _affine(v, self.matrix())  # scaled_orthographic_transform's arithmetic


@dataclasses.dataclass(frozen=True, eq=False)
class WeakPerspective(_CameraBase):
    """Weak-perspective camera (s, tx, ty) of DECA / NeuFace Eq. (2) for an H x W image.

    scale: (B,) s, normalised image units per mm; trans: (B, 2) (tx, ty) normalised units
    (x right, y up, [-1, 1] spans the image). ``project`` undoes the model-to-camera flip
    (back to y up) and applies :func:`facelab.cameras.screen_from_weak_perspective`;
    depth = s z H / 2 in camera space, growing away from the camera.
    """

    scale: torch.Tensor
    trans: torch.Tensor
    height: int
    width: int
    _tensors = ("scale", "trans")
    perspective_correct = False

    def __post_init__(self):
        self._set_scale_and_shift("trans")
        object.__setattr__(self, "height", check_int(self.height, name="height", minimum=1))
        object.__setattr__(self, "width", check_int(self.width, name="width", minimum=1))

    def _project(self, v):
        flip = torch.tensor(_MODEL_TO_OPENCV, dtype=v.dtype, device=v.device)  # back to y up
        return _weak_screen(v * flip, self.scale, self.trans, self.height, self.width)


CAMERA_TYPES = (Pinhole, ScaledOrthographic, WeakPerspective)
