"""MoFA's encoder: a small CNN from an image to the semantic code vector (MoFA Sec. 7).

MoFA fine-tunes AlexNet / VGG-Face on 240 x 240 crops. facelab's encoder is a four-stage
strided CNN (conv-BatchNorm-ReLU) for 64 x 64 images that trains on two CPU cores in minutes
(~0.4 M parameters, 1.6 MB in float32). BatchNorm matters here: without it the features reaching
the zero-initialised head are ~1e-2 in size, so for hundreds of steps only the head's bias moves
and every image gets the same pose. What it keeps from the paper (Sec. 7):

* the last fully connected layer is initialised to zero, so the first prediction is "the
  average face placed in the middle of the screen and lit by ambient light": the output is
  ``code = offset + scale * head(features)`` with ``offset = mean_face_code(...)`` (translation
  (0, 0, distance), gamma_0 = 0.7, the paper's ambient offset) and ``head`` zero at init;
* per-block output scales (:data:`OUTPUT_SCALE`) play the role of MoFA's per-parameter
  learning rates (the paper lowers it for the z translation): one unit of network output is
  one standard deviation of a coefficient, 0.25 rad of rotation, 20 mm of x/y or 50 mm of z
  translation, 0.25 of an SH coefficient.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from facelab._checks import check_finite, check_floating, check_int, check_positive, check_shape
from facelab.methods.mofa.decoder import AMBIENT_OFFSET, mean_face_code
from facelab.methods.mofa.layout import MOFA_LAYOUT, CodeLayout

__all__ = ["MofaEncoder", "OUTPUT_SCALE"]

OUTPUT_SCALE = {"id": 1.0, "exp": 1.0, "albedo": 1.0, "rotation": 0.25,
                "translation": (20.0, 20.0, 50.0), "sh": 0.25}
"""Size of one unit of network output per code block (coefficient std, rad, mm, SH units)."""

DEFAULT_DISTANCE = 950.0
"""mm: the middle of the synthetic corpus' camera distances (facelab.data.FaceSampling)."""


class MofaEncoder(nn.Module):
    """Image (B, H, W, 3) in [0, 1] -> code (B, D) in the units of :class:`CodeLayout`.

    layout: the code layout (default MoFA's 257). image_size: H = W (a multiple of 16, >= 32).
    width: channels of the first stage (doubling each stage: 16, 32, 64, 128 by default).
    hidden: units of the fully connected layer before the (zero-initialised) output layer.
    distance: camera distance (mm) of the initial, mean-face prediction. ambient: its gamma_0.
    z_scale: mm of z translation per unit of output (default 50). MoFA trains z with a 200x
        smaller learning rate than the rest (Sec. 7); a small z_scale (e.g. 2.5) does the same.
        (It does not by itself stop the unsupervised collapse: the face then shrinks through
        the identity coefficients instead; see :mod:`.loss`.)
    reduce: channels of a 1x1 convolution between the last stage and the fully connected
        layer (default 16), which keeps the fully connected layer (and the weights file)
        small: ~0.17 M parameters instead of ~0.4 M; None: no reduction (older files).
    Holds parameters, so it is an ``nn.Module``; its configuration is saved with the weights
    (see :meth:`config`).
    """

    def __init__(self, layout: CodeLayout = MOFA_LAYOUT, image_size: int = 64, width: int = 16,
                 hidden: int = 128, distance: float = DEFAULT_DISTANCE,
                 ambient: float = AMBIENT_OFFSET, z_scale: float = 50.0,
                 reduce: int | None = 16):
        super().__init__()
        if not isinstance(layout, CodeLayout):
            raise TypeError(f"layout: expected a CodeLayout, got {type(layout).__name__}")
        self.layout = layout
        self.image_size = check_int(image_size, name="image_size", minimum=32)
        if self.image_size % 16:
            raise ValueError(f"image_size: expected a multiple of 16, got {image_size}")
        self.width = check_int(width, name="width", minimum=1)
        self.hidden = check_int(hidden, name="hidden", minimum=1)
        self.distance = check_positive(distance, name="distance")
        self.ambient = float(ambient)
        self.z_scale = check_positive(z_scale, name="z_scale")
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.reduce = None if reduce is None else check_int(reduce, name="reduce", minimum=1)
        if self.reduce is not None:
            layers += [nn.Conv2d(chans[-1], self.reduce, 1, bias=False),
                       nn.BatchNorm2d(self.reduce), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        cells = (self.image_size // 16) ** 2
        last = chans[-1] if self.reduce is None else self.reduce
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(last * cells, hidden),
                                nn.ReLU(inplace=True))
        self.head = nn.Linear(hidden, layout.size)
        nn.init.zeros_(self.head.weight)  # MoFA Sec. 7: last layer starts at zero
        nn.init.zeros_(self.head.bias)
        self.register_buffer("offset", mean_face_code(layout, 1, distance=self.distance,
                                                      ambient=self.ambient)[0])
        scale = torch.cat([torch.as_tensor(OUTPUT_SCALE[name], dtype=torch.float32).expand(
            getattr(layout, name)) for name in layout.slices])
        scale[layout.slices["translation"].start + 2] = self.z_scale
        self.register_buffer("scale", scale)

    def config(self) -> dict:
        """Constructor arguments (for saving next to the weights)."""
        lay = self.layout
        return {"layout": {"id": lay.id, "exp": lay.exp, "albedo": lay.albedo},
                "image_size": self.image_size, "width": self.width, "hidden": self.hidden,
                "distance": self.distance, "ambient": self.ambient, "z_scale": self.z_scale,
                "reduce": self.reduce}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, H, W, 3) float in [0, 1], H = W = image_size. Returns (B, D) codes."""
        dims = check_shape(image, "B H W 3", name="image")
        if dims["H"] != self.image_size or dims["W"] != self.image_size:
            raise ValueError(f"image: expected (B, {self.image_size}, {self.image_size}, 3), "
                             f"got {tuple(image.shape)}")
        check_floating(image, name="image")
        check_finite(image, name="image")
        p = self.offset
        x = (image.to(p).permute(0, 3, 1, 2) - 0.5) * 2.0  # (B, 3, H, W) in [-1, 1]
        raw = self.head(self.fc(self.features(x)))  # (B, D)
        return self.offset + self.scale * raw
