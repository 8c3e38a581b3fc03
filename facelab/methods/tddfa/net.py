"""A MobileNet-style regressor for 3DDFA_V2 (Sec. 2, Fig. 2), small enough for 2 CPU cores.

Depthwise-separable convolutions (MobileNet v1: a 3x3 depthwise conv, then a 1x1 pointwise
conv, each with batch norm and ReLU), global average pooling, and two linear heads on the
pooled feature: the 62-d parameter head (Z-scores, Sec. 2.1) and the landmark-regression
head of Sec. 2.3 (136 = 68 x 2 normalised coordinates), which only training uses. The paper
runs MobileNet v1 (3.27 M parameters) on 120 x 120 crops; this one has ~0.2 M parameters for
64 x 64 crops.
"""

from __future__ import annotations

import torch
from torch import nn

from facelab._checks import check_finite, check_floating, check_int, check_shape

__all__ = ["MobileNetRegressor", "depthwise_separable"]

# (out_channels, stride) of the depthwise-separable blocks after the stem (MobileNet v1's
# pattern, shortened).
_BLOCKS = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1))


def depthwise_separable(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """3x3 depthwise conv (groups = c_in) + BN + ReLU, then 1x1 pointwise conv + BN + ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class MobileNetRegressor(nn.Module):
    """images (B, H, W, 3) in [0, 1] -> Z-scored parameters (B, n_params) [+ landmarks].

    n_params: length of the regression target (62).
    n_landmarks: landmarks of the regression branch (68 -> 136 outputs), 0 to omit it.
    width: channel multiplier (MobileNet's alpha).
    """

    def __init__(self, n_params: int = 62, n_landmarks: int = 68, width: float = 1.0):
        super().__init__()
        self.n_params = check_int(n_params, name="n_params", minimum=1)
        self.n_landmarks = check_int(n_landmarks, name="n_landmarks", minimum=0)
        self.width = float(width)
        ch = max(8, round(16 * width))
        layers: list[nn.Module] = [nn.Conv2d(3, ch, 3, 2, 1, bias=False), nn.BatchNorm2d(ch),
                                   nn.ReLU(inplace=True)]
        for c_out, stride in _BLOCKS:
            c_out = max(8, round(c_out * width))
            layers.append(depthwise_separable(ch, c_out, stride))
            ch = c_out
        self.features = nn.Sequential(*layers)
        self.param_head = nn.Linear(ch, self.n_params)
        self.landmark_head = nn.Linear(ch, 2 * self.n_landmarks) if self.n_landmarks else None

    def _pooled(self, images: torch.Tensor) -> torch.Tensor:
        check_shape(images, "B H W 3", name="images")
        check_floating(images, name="images")
        check_finite(images, name="images")
        x = images.permute(0, 3, 1, 2)  # (B, 3, H, W)
        x = (x - 0.5) / 0.25
        return self.features(x).mean(dim=(2, 3))  # (B, C)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, H, W, 3) float in [0, 1]. Returns Z-scores (B, n_params)."""
        return self.param_head(self._pooled(images))

    def forward_train(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Both heads: ``(z (B, n_params), landmarks (B, L, 2) or None)``.

        Landmarks are in crop-normalised coordinates ``(x / W, y / H)`` (y down), the
        target of the landmark-regression regularisation (3DDFA_V2 Sec. 2.3).
        """
        f = self._pooled(images)
        lm = None
        if self.landmark_head is not None:
            lm = self.landmark_head(f).reshape(-1, self.n_landmarks, 2)  # (B, L, 2)
        return self.param_head(f), lm
