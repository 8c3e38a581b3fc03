"""``FaceParams``: the one batch-first bundle of everything that makes a face image.

Every method adapts to it: MoFA's 257-d code and 3DDFA_V2's 62-d vector are layouts that turn
into ``(FaceParams, camera)``; the fitter optimises its fields; the synthetic corpus samples
it; the widgets set it from sliders. :func:`facelab.form` turns it into geometry and colour.

Blocks (B = batch; K* <= the model's number of modes, leading modes used):

==================  ===================  ==================================================
field               shape                meaning (default when missing)
==================  ===================  ==================================================
``id``              (B, Kid)             identity alpha, MoFA Eq. (2), ~N(0, 1) (mean face)
``exp``             (B, Kexp)            expression delta, MoFA Eq. (2) (neutral)
``albedo``          (B, Kalb)            reflectance beta, MoFA Eq. (3) (mean albedo)
``rotation``        (B, 3, 3)            head rotation, applied in model space (identity)
``translation``     (B, 3)               camera-space translation, mm, OpenCV axes (zeros)
``gamma``           (B, 9, 3)            camera-space SH light, MoFA Eq. (4) (ambient 0.7)
``neck``            (B, 3) or None       neck axis-angle, models with a neck joint (rest)
``jaw``             (B, 3) or None       jaw axis-angle, models with a jaw joint (rest pose)
``eyes``            (B, 2, 3) or None    left, right eyeball axis-angles (rest pose)
``vertex_offsets``  (B, V, 3) or None    free model-space displacement added to the
                                         blendshape geometry (correctives, per-vertex
                                         refinement, gradients w.r.t. vertices) (none)
``albedo_offsets``  (B, V, 3) or None    free displacement of the reflectance (none)
==================  ===================  ==================================================

Joint poses are FLAME's (Li et al. 2017): axis-angle rotations of the model's joints below the
root ("neck", "jaw", "eye_left", "eye_right"; :class:`facelab.model.skinning.Skeleton`), posed
by linear blend skinning in :func:`facelab.form`; ``rotation`` is the root (global) rotation.

"Ambient 0.7" is :func:`facelab.lighting.ambient_sh` (irradiance 0.7 everywhere), so a
``FaceParams`` with nothing set renders the mean face, neutral, evenly lit.
"""

from __future__ import annotations

import torch

from facelab import rotations
from facelab._checks import as_tensor, check_finite, check_floating, check_int, check_shape

__all__ = ["DEFAULT_AMBIENT", "JOINT_BLOCKS", "FaceParams"]

DEFAULT_AMBIENT = 0.7
"""Irradiance of the default light (the ambient offset of MoFA Sec. 7)."""

_AMBIENT: dict = {}


def _default_gamma(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """:func:`facelab.lighting.ambient_sh` at :data:`DEFAULT_AMBIENT`, (9, 3), made once."""
    key = (dtype, device)
    if key not in _AMBIENT:
        from facelab.lighting import ambient_sh

        _AMBIENT[key] = ambient_sh(DEFAULT_AMBIENT, dtype=dtype, device=device)
    return _AMBIENT[key]


JOINT_BLOCKS = {"neck": ("neck",), "jaw": ("jaw",), "eyes": ("eye_left", "eye_right")}
"""FaceParams joint block -> the skeleton joint names it poses (``eyes[:, 0]`` is the left)."""

# field -> (shape spec after B, may stay None)
_SPECS = {
    "id": ("K", False),
    "exp": ("K", False),
    "albedo": ("K", False),
    "rotation": ("3 3", False),
    "translation": ("3", False),
    "gamma": ("9 3", False),
    "neck": ("3", True),
    "jaw": ("3", True),
    "eyes": ("2 3", True),
    "vertex_offsets": ("V 3", True),
    "albedo_offsets": ("V 3", True),
}


class FaceParams:
    """Batch-first face parameters; see the module docstring for every block.

    Construct with keywords; any block may be omitted and takes its default (the batch size,
    dtype and device come from the blocks given, or from ``batch``/``dtype``/``device``).
    Tensors are kept as given (no copy), so autograd flows from leaf tensors a fitter owns.
    """

    def __init__(self, *, id=None, exp=None, albedo=None, rotation=None, translation=None,
                 gamma=None, neck=None, jaw=None, eyes=None, vertex_offsets=None,
                 albedo_offsets=None, batch: int | None = None, dtype: torch.dtype | None = None,
                 device=None):
        self.id, self.exp, self.albedo = id, exp, albedo
        self.rotation, self.translation, self.gamma = rotation, translation, gamma
        self.neck, self.jaw, self.eyes = neck, jaw, eyes
        self.vertex_offsets, self.albedo_offsets = vertex_offsets, albedo_offsets
        given = {}
        for name, (spec, _) in _SPECS.items():
            value = getattr(self, name)
            if value is None:
                continue
            t, _ = as_tensor(value, name=name)
            check_floating(t, name=name)
            check_shape(t, "B " + spec, name=name)
            given[name] = t
        first = next(iter(given.values()), None)
        if batch is None:
            batch = first.shape[0] if first is not None else 1
        batch = check_int(batch, name="batch", minimum=0)
        if dtype is None:
            dtype = first.dtype if first is not None else torch.float32
        if device is None:
            device = first.device if first is not None else torch.device("cpu")
        for name, t in given.items():
            if t.shape[0] != batch:
                raise ValueError(f"{name}: expected batch size B={batch}, got {tuple(t.shape)}")
            if t.dtype != dtype or t.device != torch.device(device):
                t = t.to(device=device, dtype=dtype)
            check_finite(t, name=name)
            setattr(self, name, t)
        if self.vertex_offsets is not None and self.albedo_offsets is not None:
            check_shape(self.albedo_offsets, "B V 3", name="albedo_offsets",
                        dims={"V": self.vertex_offsets.shape[1]})
        opts = {"dtype": dtype, "device": device}
        for name in ("id", "exp", "albedo"):
            if getattr(self, name) is None:
                setattr(self, name, torch.zeros(batch, 0, **opts))
        if self.rotation is None:
            self.rotation = torch.eye(3, **opts).expand(batch, 3, 3).clone()
        if self.translation is None:
            self.translation = torch.zeros(batch, 3, **opts)
        if self.gamma is None:
            self.gamma = _default_gamma(dtype, torch.device(device)).expand(batch, 9, 3).clone()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_euler(cls, angles, convention: str = "xyz", **blocks) -> FaceParams:
        """``angles``: (B, 3) radians, (pitch, yaw, roll) for "xyz"
        (:func:`facelab.rotations.euler_to_matrix`); other blocks by keyword."""
        return cls(rotation=rotations.euler_to_matrix(angles, convention), **blocks)

    @classmethod
    def from_axis_angle(cls, axis_angle, **blocks) -> FaceParams:
        """``axis_angle``: (B, 3) rotation vector, radians (Rodrigues)."""
        return cls(rotation=rotations.axis_angle_to_matrix(axis_angle), **blocks)

    @classmethod
    def from_quaternion(cls, quaternion, **blocks) -> FaceParams:
        """``quaternion``: (B, 4) (w, x, y, z), normalised on the way in."""
        return cls(rotation=rotations.quaternion_to_matrix(quaternion), **blocks)

    @classmethod
    def from_rotation_6d(cls, rotation_6d, **blocks) -> FaceParams:
        """``rotation_6d``: (B, 6), the continuous 6D representation (Zhou et al. 2019)."""
        return cls(rotation=rotations.rotation_6d_to_matrix(rotation_6d), **blocks)

    # ------------------------------------------------------------------ batch plumbing
    @property
    def batch_size(self) -> int:
        return int(self.rotation.shape[0])

    def __len__(self) -> int:
        return self.batch_size

    @property
    def dtype(self) -> torch.dtype:
        """The blocks' dtype."""
        return self.rotation.dtype

    @property
    def device(self) -> torch.device:
        return self.rotation.device

    def joint_poses(self) -> dict:
        """{skeleton joint name: (B, 3) axis-angle} for the joint blocks that are set."""
        out = {}
        for block, names in JOINT_BLOCKS.items():
            value = getattr(self, block)
            if value is not None:
                parts = [value] if value.ndim == 2 else list(value.unbind(1))
                out.update(zip(names, parts, strict=True))
        return out

    def blocks(self) -> dict:
        """``{field: tensor or None}`` for every block, in the table's order."""
        return {name: getattr(self, name) for name in _SPECS}

    def _map(self, fn) -> FaceParams:
        return FaceParams(**{k: None if v is None else fn(v) for k, v in self.blocks().items()})

    def to(self, device=None, dtype=None) -> FaceParams:
        """The same parameters on ``device`` / in ``dtype``."""
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> FaceParams:
        return self._map(torch.Tensor.detach)

    def clone(self) -> FaceParams:
        return self._map(torch.Tensor.clone)

    def replace(self, **blocks) -> FaceParams:
        """A copy with some blocks replaced (the others shared, not copied)."""
        unknown = set(blocks) - set(_SPECS)
        if unknown:
            raise TypeError(f"blocks: unknown FaceParams fields {sorted(unknown)}; "
                            f"expected some of {list(_SPECS)}")
        return FaceParams(**{**self.blocks(), **blocks})

    def __getitem__(self, index) -> FaceParams:
        """Select along the batch axis; an int keeps the axis (B = 1)."""
        if isinstance(index, int):
            b = self.batch_size
            if not -b <= index < b:
                raise IndexError(f"index: expected an int in [{-b}, {b}), got {index}")
            index = slice(index % b, index % b + 1)
        return self._map(lambda t: t[index])

    @staticmethod
    def cat(items) -> FaceParams:
        """Concatenate along the batch axis. Coefficient blocks of different lengths are
        zero-padded to the longest; a block None in some items takes its default there."""
        items = list(items)
        if not items or not all(isinstance(p, FaceParams) for p in items):
            raise TypeError("items: expected a non-empty sequence of FaceParams")
        dtype, device = items[0].dtype, items[0].device
        items = [p.to(device=device, dtype=dtype) for p in items]
        out = {}
        for name in _SPECS:
            values = [getattr(p, name) for p in items]
            if all(v is None for v in values):
                out[name] = None
                continue
            if name in ("id", "exp", "albedo"):
                k = max(v.shape[1] for v in values)
                values = [torch.nn.functional.pad(v, (0, k - v.shape[1])) for v in values]
            else:
                ref = next(v for v in values if v is not None)
                values = [torch.zeros((p.batch_size, *ref.shape[1:]), dtype=dtype,
                                      device=device) if v is None else v
                          for v, p in zip(values, items, strict=True)]
            out[name] = torch.cat(values)
        return FaceParams(**out)

    def __repr__(self) -> str:
        parts = [f"B={self.batch_size}"]
        for name, v in self.blocks().items():
            if v is not None and not (name in ("id", "exp", "albedo") and v.shape[1] == 0):
                parts.append(f"{name}={tuple(v.shape[1:])}")
        return f"FaceParams({', '.join(parts)}, dtype={self.dtype})"
