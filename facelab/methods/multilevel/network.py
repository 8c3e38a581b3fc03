"""The multi-level regressor: MoFA's encoder (base level) + corrective parameters (final level).

One CNN (:class:`facelab.methods.mofa.MofaEncoder`) regresses, from one image,

* the base level: MoFA's semantic code (identity, expression, reflectance, pose, light);
* the final level: C geometry corrective parameters delta_geo, C reflectance corrective
  parameters delta_ref, and **its own** illumination ("the illumination estimate for rendering
  the base and final model is not shared between the two levels, but independently regressed",
  supp. Sec. 1),

and the corrective spaces F_geo, F_ref (:class:`.correctives.CorrectiveSpace`) turn delta into
per-vertex shape and reflectance correctives. Both levels form images through
:func:`facelab.form`: the final level is the base :class:`facelab.FaceParams` with
``vertex_offsets = GEO_UNIT_MM * F_geo(delta_geo)``, ``albedo_offsets = F_ref(delta_ref)`` and
its own ``gamma``.

The corrective heads start at zero and the final light head starts as a copy of the base
light head (:meth:`MultilevelNet.begin_finetune`), so at the start of fine-tuning the final
level renders exactly the base level.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from facelab._checks import check_finite, check_floating, check_int, check_shape
from facelab.face_params import FaceParams
from facelab.methods.mofa.encoder import MofaEncoder
from facelab.methods.mofa.layout import CodeLayout
from facelab.methods.multilevel.correctives import KINDS, CorrectiveSpace

__all__ = ["GEO_UNIT_MM", "MultilevelCode", "MultilevelNet"]

GEO_UNIT_MM = 1.0
"""mm of displacement per unit of F_geo's output."""


class MultilevelCode(NamedTuple):
    """What :class:`MultilevelNet` regresses for a batch (all batch-first).

    base: (B, D) MoFA code (base level). sh_final: (B, 27) the final level's own SH light.
    delta_geo, delta_ref: (B, C) corrective parameters.
    """

    base: torch.Tensor
    sh_final: torch.Tensor
    delta_geo: torch.Tensor
    delta_ref: torch.Tensor


class _Empty(nn.Module):
    """features (B, H) -> (B, 0): the corrective head of a model with C = 0."""

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return feat.new_zeros(feat.shape[0], 0)


class MultilevelNet(nn.Module):
    """Image (B, H, W, 3) in [0, 1] -> :class:`MultilevelCode`; holds the corrective spaces.

    layout: the base level's :class:`CodeLayout` (``CodeLayout.for_model(model)``; a layout
        with fewer reflectance modes than the model limits the base, as in Fig. 8).
    num_vertices: N of the model. correctives: C (0, 100, 250, 500 in Fig. 4; default 500).
    kind: the corrective space, one of :data:`.correctives.KINDS` (supp. Eqs. 1-3).
    image_size, z_scale: of the base :class:`MofaEncoder` (z_scale 2.5: MoFA's slow z).
    """

    def __init__(self, layout: CodeLayout, num_vertices: int, correctives: int = 500,
                 kind: str = "linear", image_size: int = 64, z_scale: float = 2.5):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        self.correctives = check_int(correctives, name="correctives", minimum=0)
        self.kind = kind
        self.base = MofaEncoder(layout, image_size=image_size, z_scale=z_scale,
                                reduce=None)  # the architecture the results were made with
        hidden = self.base.hidden
        # the corrective heads are zero-initialised like MoFA's last layer (delta = 0 at start);
        # with C = 0 they are empty parameter-free maps (no zero-size nn.Linear)
        self.geo_head = self._head(hidden, self.correctives)
        self.ref_head = self._head(hidden, self.correctives)
        self.sh_head = self._head(hidden, layout.sh)
        self.geo_space = CorrectiveSpace(self.correctives, num_vertices, kind)
        self.ref_space = CorrectiveSpace(self.correctives, num_vertices, kind)

    @staticmethod
    def _head(hidden: int, size: int) -> nn.Module:
        if size == 0:
            return _Empty()
        head = nn.Linear(hidden, size)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        return head

    @property
    def layout(self) -> CodeLayout:
        return self.base.layout

    def config(self) -> dict:
        """Constructor arguments (to save next to the weights)."""
        lay = self.layout
        return {"layout": {"id": lay.id, "exp": lay.exp, "albedo": lay.albedo},
                "num_vertices": self.geo_space.num_vertices, "correctives": self.correctives,
                "kind": self.kind, "image_size": self.base.image_size,
                "z_scale": self.base.z_scale}

    def begin_finetune(self) -> None:
        """Start the final level's light where the base level's is (supp. Sec. 1: the two
        lights are regressed independently, from here on)."""
        s = self.layout.slices["sh"]
        with torch.no_grad():
            self.sh_head.weight.copy_(self.base.head.weight[s])
            self.sh_head.bias.copy_(self.base.head.bias[s])

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by learning-rate group (supp. Sec. 1): "base" (the pretrained encoder and
        the final light head), "geometry" (delta_geo head + F_geo), "reflectance"."""
        return {"base": list(self.base.parameters()) + list(self.sh_head.parameters()),
                "geometry": list(self.geo_head.parameters()) + list(self.geo_space.parameters()),
                "reflectance": (list(self.ref_head.parameters())
                                + list(self.ref_space.parameters()))}

    def forward(self, image: torch.Tensor) -> MultilevelCode:
        """image: (B, H, W, 3) float in [0, 1], H = W = image_size."""
        size = self.base.image_size
        check_shape(image, "B H W 3", name="image", dims={"H": size, "W": size})
        check_floating(image, name="image")
        check_finite(image, name="image")
        enc = self.base
        x = (image.to(enc.offset).permute(0, 3, 1, 2) - 0.5) * 2.0  # (B, 3, H, W), as MoFA's
        feat = enc.fc(enc.features(x))  # (B, hidden)
        base = enc.offset + enc.scale * enc.head(feat)  # (B, D)
        s = self.layout.slices["sh"]
        sh_final = enc.offset[s] + enc.scale[s] * self.sh_head(feat)  # (B, 27)
        return MultilevelCode(base, sh_final, self.geo_head(feat), self.ref_head(feat))

    def face_params(self, code: MultilevelCode) -> tuple[FaceParams, FaceParams]:
        """(base, final) :class:`FaceParams` of a regressed code, both for :func:`facelab.form`.

        final = base with vertex_offsets = GEO_UNIT_MM F_geo(delta_geo) (B, N, 3) mm,
        albedo_offsets = F_ref(delta_ref) (B, N, 3), gamma = sh_final (B, 9, 3).
        """
        base = self.layout.to_face(code.base)
        b = code.base.shape[0]
        final = base.replace(vertex_offsets=GEO_UNIT_MM * self.geo_space(code.delta_geo),
                             albedo_offsets=self.ref_space(code.delta_ref),
                             gamma=code.sh_final.reshape(b, 9, 3))
        return base, final
