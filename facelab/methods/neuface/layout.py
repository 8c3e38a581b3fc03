"""NeuFace's per-image parameter vector [Θ, p] = [r, θ, β, ψ, s, tx, ty] (Sec. 3.1).

FLAME's Θ = [r, θ, β, ψ] (head orientation, joint poses, shape, expression) and the weak-
perspective camera p = (s, tx, ty) of DECA, for any facelab :class:`MorphableModel`:

=========  =====================  ======================================================
block      size                   meaning (units of one network output)
=========  =====================  ======================================================
rotation   3                      head orientation r, axis-angle (rad)
jaw        3 (0 without a jaw)    jaw joint θ, axis-angle (rad)
id         n_id (<= 100)          identity β, ~N(0, 1) (FLAME: 100)
exp        n_exp (<= 50)          expression ψ, ~N(0, 1) (FLAME: 50)
camera     3                      (log(s / s0), tx, ty): weak perspective, s0 = SCALE0
=========  =====================  ======================================================

Neck and eye joints (a full-head model) are left at rest: NeuFace's θ is FLAME's 12-d pose
(neck, jaw, eyes), but DECA regresses only the jaw; the head orientation r absorbs the neck.
Every split goes through :class:`NeuFaceLayout` (never by length).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab._checks import check_finite, check_floating, check_int, check_shape
from facelab.camera_objects import WeakPerspective
from facelab.data.talking import CLIP_DEPTH_MM, has_joint
from facelab.face_params import FaceParams
from facelab.methods.block_layout import BlockLayout, block_views
from facelab.model.morphable import MorphableModel
from facelab.rotations import axis_angle_to_matrix

__all__ = ["SCALE0", "NeuFaceLayout"]

SCALE0 = 2.0 * 0.7 / 200.0
"""Weak-perspective scale (normalised image units per mm) of a 200 mm face filling 70 % of the
image height: the camera block's log-scale is relative to it."""


@dataclass(frozen=True)
class NeuFaceLayout(BlockLayout):
    """Sizes of the blocks (module table); ``jaw`` is 3 or 0. ``size`` and ``slices`` come
    from :class:`facelab.methods.block_layout.BlockLayout`."""

    n_id: int
    n_exp: int
    jaw: int = 3

    def __post_init__(self):
        check_int(self.n_id, name="n_id", minimum=0)
        check_int(self.n_exp, name="n_exp", minimum=0)
        if self.jaw not in (0, 3):
            raise ValueError(f"jaw: expected 0 or 3, got {self.jaw!r}")

    @classmethod
    def for_model(cls, model: MorphableModel, n_id: int = 100, n_exp: int = 50):
        """FLAME's sizes (100 / 50) capped by the model's modes; a jaw block iff it has one."""
        return cls(min(n_id, model.n_id), min(n_exp, model.n_exp),
                   3 if has_joint(model, "jaw") else 0)

    @property
    def sizes(self) -> dict[str, int]:
        return {"rotation": 3, "jaw": self.jaw, "id": self.n_id, "exp": self.n_exp,
                "camera": 3}

    def split(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """vec: (B, size) -> {block: (B, n)} views."""
        check_shape(vec, f"B {self.size}", name="vec")
        return block_views(vec, self.slices)

    def pack(self, blocks: dict) -> torch.Tensor:
        """{block: (B, n)} -> (B, size); missing blocks are zeros."""
        ref = next(iter(blocks.values()))
        parts = [blocks.get(name, ref.new_zeros(ref.shape[0], n)) if n else
                 ref.new_zeros(ref.shape[0], 0) for name, n in self.sizes.items()]
        for (name, n), p in zip(self.sizes.items(), parts, strict=True):
            check_shape(p, f"B {n}", name=f"blocks[{name!r}]")
        return torch.cat(parts, dim=1)

    def share_identity(self, vec: torch.Tensor) -> torch.Tensor:
        """vec (B, size) with every row's β replaced by the mean β of all rows (one subject
        per clip); differentiable, the gradient of the shared β reaches every row."""
        check_shape(vec, f"B {self.size}", name="vec")
        sl = self.slices["id"]
        beta = vec[:, sl].mean(0, keepdim=True).expand(vec.shape[0], -1)
        return torch.cat([vec[:, :sl.start], beta, vec[:, sl.stop:]], dim=1)

    def to_face(self, vec: torch.Tensor, height: int, width: int):
        """vec: (B, size) float -> (FaceParams, WeakPerspective) for :func:`facelab.form`.

        rotation = Rodrigues(r); jaw = θ (None without a jaw block); id = β, exp = ψ;
        s = SCALE0 exp(camera[0]), (tx, ty) = camera[1:]; translation (0, 0, CLIP_DEPTH_MM)
        only places the depth. Differentiable in ``vec``.
        """
        check_floating(vec, name="vec")
        check_finite(vec, name="vec")
        b = self.split(vec)
        B = vec.shape[0]
        translation = vec.new_zeros(B, 3)
        translation[:, 2] = CLIP_DEPTH_MM
        params = FaceParams(rotation=axis_angle_to_matrix(b["rotation"]), id=b["id"],
                            exp=b["exp"], jaw=b["jaw"] if self.jaw else None,
                            translation=translation)
        cam = b["camera"]
        camera = WeakPerspective(SCALE0 * torch.exp(cam[:, 0]), cam[:, 1:], height, width)
        return params, camera

    def from_face(self, params: FaceParams, camera: WeakPerspective) -> torch.Tensor:
        """The inverse of :meth:`to_face` (coefficients truncated or zero-padded): (B, size)."""
        from facelab.rotations import matrix_to_axis_angle

        B = params.batch_size

        def coeffs(x, n):
            x = x[:, :n]
            return torch.nn.functional.pad(x, (0, n - x.shape[1]))

        blocks = {"rotation": matrix_to_axis_angle(params.rotation),
                  "id": coeffs(params.id, self.n_id), "exp": coeffs(params.exp, self.n_exp),
                  "camera": torch.cat([torch.log(camera.scale / SCALE0)[:, None],
                                       camera.trans], dim=1).expand(B, 3)}
        if self.jaw:
            blocks["jaw"] = params.jaw if params.jaw is not None else params.rotation.new_zeros(
                B, 3)
        return self.pack(blocks)
