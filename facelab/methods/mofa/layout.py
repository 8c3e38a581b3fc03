"""The semantic code vector of MoFA, Eq. (1), split and joined by name.

    x = (alpha, delta, beta, T, t, gamma)                                   MoFA Eq. (1)
        identity 80, expression 64, reflectance 80, rotation 3, translation 3, SH 27 = 257

The blocks have an exact meaning (that is the point of a *model-based* autoencoder):

* ``id`` alpha (B, 80), ``exp`` delta (B, 64), ``albedo`` beta (B, 80): morphable-model
  coefficients, ~N(0, 1) because facelab's bases are pre-scaled by their standard deviations;
* ``rotation`` (B, 3): head rotation as Euler angles (pitch, yaw, roll) in radians, turned into
  a matrix by :func:`facelab.rotations.head_rotation` (``euler_to_matrix``, "xyz") and
  applied in model space. Why Euler: it keeps MoFA's 257-dimensional code (SO(3) has 3 degrees
  of freedom), the zero code is the frontal pose, each number is readable in a notebook, and the
  synthetic corpus stays within +-40 degrees, far from the gimbal lock at pitch = +-90 degrees.
  (A 6D rotation would be smoother near gimbal lock but adds 3 redundant outputs.);
* ``translation`` (B, 3): camera-space translation t in millimetres (OpenCV: x right, y down,
  z forward; the model-to-camera flip diag(1, -1, -1) happens in
  :func:`facelab.cameras.model_to_camera`);
* ``sh`` (B, 27): camera-space SH illumination gamma, laid out as ``gamma.reshape(B, 9, 3)``
  (coefficient-major, RGB fastest), the convention of :mod:`facelab.lighting`.

Never slice a code vector by position or guess a layout from its length: use
``layout.split(code).id`` or ``layout.join(id=..., ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_int, check_shape
from facelab.face_params import FaceParams
from facelab.methods.block_layout import BlockLayout, block_views
from facelab.rotations import head_rotation, matrix_to_euler

__all__ = ["BLOCK_NAMES", "CodeLayout", "CodeParts", "MOFA_LAYOUT"]

BLOCK_NAMES = ("id", "exp", "albedo", "rotation", "translation", "sh")


class CodeParts(NamedTuple):
    """A code vector split into its named blocks (all (B, k) views of the code)."""

    id: torch.Tensor
    exp: torch.Tensor
    albedo: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor
    sh: torch.Tensor

    @property
    def gamma(self) -> torch.Tensor:
        """(B, 9, 3) SH illumination, the ``sh`` block reshaped (coefficient-major, RGB fastest)."""
        return self.sh.reshape(self.sh.shape[0], 9, 3)


@dataclass(frozen=True)
class CodeLayout(BlockLayout):
    """Sizes of the blocks of the semantic code vector, MoFA Eq. (1), in the paper's order.

    id, exp, albedo: number of identity / expression / reflectance coefficients (MoFA: 80/64/80).
    rotation: 3 (Euler pitch, yaw, roll in radians). translation: 3 (mm, camera space).
    sh: 27 (9 SH coefficients x RGB, camera space).
    The default is MoFA's 257-dimensional layout; :meth:`for_model` sizes it for a model.
    """

    id: int = 80
    exp: int = 64
    albedo: int = 80
    rotation: int = 3
    translation: int = 3
    sh: int = 27

    def __post_init__(self):
        for f in fields(self):
            check_int(getattr(self, f.name), name=f.name, minimum=0)
        if self.rotation != 3:
            raise ValueError(f"rotation: expected 3 (Euler angles), got {self.rotation}")
        if self.translation != 3:
            raise ValueError(f"translation: expected 3, got {self.translation}")
        if self.sh != 27:
            raise ValueError(f"sh: expected 27 (9 SH coefficients x RGB), got {self.sh}")

    @classmethod
    def for_model(cls, model) -> CodeLayout:
        """The layout whose face blocks match ``model`` (a MorphableModel)'s Kid, Kexp, Kalb."""
        return cls(id=model.n_id, exp=model.n_exp, albedo=model.n_albedo)

    @property
    def sizes(self) -> dict[str, int]:
        """Block name -> size, in the paper's order (:data:`BLOCK_NAMES`); ``size`` (D, 257
        for MoFA) and ``slices`` follow (:class:`facelab.methods.block_layout.BlockLayout`)."""
        return {name: getattr(self, name) for name in BLOCK_NAMES}

    def _check_code(self, code, name: str = "code") -> torch.Tensor:
        c, _ = as_tensor(code, name=name)
        check_shape(c, "B D", name=name, dims={"D": self.size})
        check_floating(c, name=name)
        return c

    def split(self, code) -> CodeParts:
        """Split ``code`` (B, D) float into :class:`CodeParts` (views, differentiable)."""
        c = self._check_code(code)
        return CodeParts(**block_views(c, self.slices))

    def join(self, *, id=None, exp=None, albedo=None, rotation=None, translation=None,
             sh=None, batch: int | None = None, dtype: torch.dtype | None = None,
             device=None) -> torch.Tensor:
        """Assemble a (B, D) code from named blocks; a missing block is zeros.

        Each block is (B, k) float with k its size in this layout; ``sh`` may also be given as
        (B, 9, 3) gamma. ``batch``/``dtype``/``device`` are needed only when no block is given
        (else they come from the blocks). Differentiable in every block.
        """
        given = {"id": id, "exp": exp, "albedo": albedo, "rotation": rotation,
                 "translation": translation, "sh": sh}
        tensors = {}
        dims: dict = {} if batch is None else {"B": check_int(batch, name="batch", minimum=1)}
        for name, value in given.items():
            if value is None:
                continue
            t, _ = as_tensor(value, name=name)
            if name == "sh" and t.ndim == 3:
                check_shape(t, "B 9 3", name=name, dims=dims)
                t = t.reshape(t.shape[0], 27)  # (B, 27)
            check_shape(t, f"B {getattr(self, name)}", name=name, dims=dims)
            check_floating(t, name=name)
            check_finite(t, name=name)
            tensors[name] = t
        if "B" not in dims:
            raise ValueError("batch: expected an int when no block is given, got None")
        like = next(iter(tensors.values()), None)
        dtype = like.dtype if like is not None else (dtype or torch.float32)
        device = like.device if like is not None else device
        parts = []
        for name in BLOCK_NAMES:
            t = tensors.get(name)
            if t is None:
                t = torch.zeros(dims["B"], getattr(self, name), dtype=dtype, device=device)
            parts.append(t.to(dtype=dtype, device=device))
        return torch.cat(parts, dim=1)  # (B, D)

    def to_face(self, code) -> FaceParams:
        """The adapter into facelab's image formation: code (B, D) -> :class:`FaceParams`.

        alpha, delta, beta -> id, exp, albedo; the Euler block -> ``rotation`` by
        :func:`facelab.rotations.head_rotation`; t -> ``translation``; the 27 SH numbers ->
        ``gamma`` (B, 9, 3). The camera is MoFA's pinhole (fixed intrinsics per image, not
        part of the code). Differentiable in the code.
        """
        parts = self.split(code)
        return FaceParams(id=parts.id, exp=parts.exp, albedo=parts.albedo,
                          rotation=head_rotation(parts.rotation), translation=parts.translation,
                          gamma=parts.gamma)

    def from_face(self, params: FaceParams) -> torch.Tensor:
        """The inverse adapter: :class:`FaceParams` -> code (B, D).

        Coefficient blocks shorter than the layout's are zero-padded (longer ones refused); the
        rotation matrix becomes Euler angles (:func:`facelab.rotations.matrix_to_euler`, "xyz");
        joint poses and free offsets have no place in MoFA's code and must be absent.
        """
        if not isinstance(params, FaceParams):
            raise TypeError(f"params: expected a FaceParams, got {type(params).__name__}")
        for name in ("neck", "jaw", "eyes", "vertex_offsets", "albedo_offsets"):
            if getattr(params, name) is not None:
                raise ValueError(f"params.{name}: MoFA's code has no {name} block; expected None")
        blocks = {}
        for name in ("id", "exp", "albedo"):
            t = getattr(params, name)
            k = getattr(self, name)
            if t.shape[1] > k:
                raise ValueError(f"params.{name}: expected at most {k} coefficients, got "
                                 f"{tuple(t.shape)}")
            blocks[name] = torch.nn.functional.pad(t, (0, k - t.shape[1]))
        return self.join(rotation=matrix_to_euler(params.rotation, "xyz"),
                         translation=params.translation, sh=params.gamma, **blocks)


MOFA_LAYOUT = CodeLayout()
"""MoFA's 257-dimensional layout: id 80, exp 64, albedo 80, rotation 3, translation 3, sh 27."""
