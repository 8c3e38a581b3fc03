"""Φ_w: the network that re-parameterises a clip's faces (NeuFace Sec. 3.1).

The paper uses the pre-trained DECA / EMOCA encoder (ResNet-50). facelab's Φ is MoFA's small
encoder shape (four strided conv-BatchNorm-ReLU stages, a hidden layer and a linear head;
:mod:`facelab.methods.mofa.encoder`) with a :class:`NeuFaceLayout` output, pre-trained on
single synthetic frames (:mod:`facelab.methods.neuface.pretrain`) so that it plays DECA's part:
a per-image regressor that is roughly right, jittery in time and inconsistent across views.

``output = offset + scale * head(features)``: one unit of network output is 0.25 rad of
rotation or jaw, one standard deviation of β / ψ, 0.1 of log-scale or 0.1 of (tx, ty).
BatchNorm runs in eval mode during NeuFace optimisation (:meth:`NeuFaceNet.eval`): the
prediction for an image must not depend on which other frames share its batch.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from facelab._checks import check_finite, check_floating, check_int, check_shape
from facelab.methods.neuface.layout import NeuFaceLayout

__all__ = ["NeuFaceNet"]


class NeuFaceNet(nn.Module):
    """Images (B, H, W, 3) in [0, 1] -> parameter vectors (B, layout.size) (module docs).

    layout: the output layout. image_size: H = W, a multiple of 16 (>= 32).
    width: channels of the first stage (doubling each stage). hidden: fully connected units.
    """

    def __init__(self, layout: NeuFaceLayout, image_size: int = 64, width: int = 16,
                 hidden: int = 128):
        super().__init__()
        if not isinstance(layout, NeuFaceLayout):
            raise TypeError(f"layout: expected a NeuFaceLayout, got {type(layout).__name__}")
        self.layout = layout
        self.image_size = check_int(image_size, name="image_size", minimum=32)
        if self.image_size % 16:
            raise ValueError(f"image_size: expected a multiple of 16, got {image_size}")
        self.width = check_int(width, name="width", minimum=1)
        self.hidden = check_int(hidden, name="hidden", minimum=1)
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        cells = (self.image_size // 16) ** 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * cells, hidden),
                                nn.ReLU(inplace=True))
        self.head = nn.Linear(hidden, layout.size)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        unit = torch.ones(layout.size)
        sl = layout.slices
        unit[sl["rotation"]] = 0.25
        unit[sl["jaw"]] = 0.25
        unit[sl["camera"]] = 0.1
        self.register_buffer("unit", unit)

    def config(self) -> dict:
        """Constructor arguments (saved with the weights)."""
        lay = self.layout
        return {"n_id": lay.n_id, "n_exp": lay.n_exp, "jaw": lay.jaw,
                "image_size": self.image_size, "width": self.width, "hidden": self.hidden}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_shape(images, f"B {self.image_size} {self.image_size} 3", name="images")
        check_floating(images, name="images")
        x = images.permute(0, 3, 1, 2)  # (B, 3, H, W)
        out = self.unit * self.head(self.fc(self.features(x)))  # (B, size)
        check_finite(out, name="network output")
        return out
