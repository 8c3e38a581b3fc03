"""The appearance-to-structure residual network T_L of Fan et al. (Sec. III-A, Table I, Eq. 3).

Table I's layout at CPU scale: "Conv + max pooling" (7x7, stride 2, then 3x3 max pooling,
stride 2), bottleneck residual blocks [1x1, c; 3x3, c; 1x1, 4c] in stages that halve the
resolution, a 1x1 "Conv + BN + ReLU" that reduces the channels, and a last "Conv + BN + ReLU"
whose kernel covers the whole map (7x7 in the paper) -- here into a 128-d code followed by a
linear layer to the 3V per-vertex offsets (the paper's single conv outputs 3V = 10,344 values
directly; a 4x4x32 -> 9,045 conv would hold 4.6 M weights for a few hundred training faces).
The ResNet-50 of the paper (Table II) becomes c = 16, 32, 64 with one block per stage on
64 x 64 images; the output layer starts at zero so an untrained network returns S_bar.

Training minimises the loss after Eq. (3): ``sum_m |T_L(I_m; I_m) - (S_hat_m - S_bar_m)|^2``
(:func:`residual_loss`, :func:`train_residual`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from facelab._checks import check_int, check_shape

__all__ = ["ResNetConfig", "ResidualRegressor", "residual_loss", "train_residual"]


class _Bottleneck(nn.Module):
    """[1x1, c; 3x3, c (stride s); 1x1, 4c] + projection shortcut (He et al.; Table I rows)."""

    def __init__(self, c_in: int, c: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 4 * c, 1, bias=False), nn.BatchNorm2d(4 * c))
        self.skip = nn.Sequential(nn.Conv2d(c_in, 4 * c, 1, stride=stride, bias=False),
                                  nn.BatchNorm2d(4 * c))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ResidualRegressor(nn.Module):
    """T_L: image (B, H, W, 3) in [0, 1] -> per-vertex offsets (B, V, 3) in mm (Table I, scaled).

    num_vertices: V. image_size: H = W (a multiple of 16). width: c of the first stage.
    """

    def __init__(self, num_vertices: int, image_size: int = 64, width: int = 16):
        super().__init__()
        self.num_vertices = check_int(num_vertices, name="num_vertices", minimum=1)
        self.image_size = check_int(image_size, name="image_size", minimum=16)
        if image_size % 16:
            raise ValueError(f"image_size: expected a multiple of 16, got {image_size}")
        c = check_int(width, name="width", minimum=1)
        self.stem = nn.Sequential(nn.Conv2d(3, 2 * c, 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, stride=2, padding=1))  # H / 4
        self.stages = nn.Sequential(_Bottleneck(2 * c, c, 1), _Bottleneck(4 * c, 2 * c, 2),
                                    _Bottleneck(8 * c, 4 * c, 2))  # H / 16, 16c channels
        side = image_size // 16
        self.reduce = nn.Sequential(nn.Conv2d(16 * c, 2 * c, 1, bias=False),
                                    nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True))
        self.cover = nn.Sequential(nn.Conv2d(2 * c, 128, side, bias=False), nn.BatchNorm2d(128),
                                   nn.ReLU(inplace=True))  # the whole-map conv -> 1 x 1
        self.out = nn.Linear(128, 3 * self.num_vertices)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_shape(image, "B S S 3", name="image", dims={"S": self.image_size})
        x = image.permute(0, 3, 1, 2)  # (B, 3, H, W)
        x = self.cover(self.reduce(self.stages(self.stem(x)))).flatten(1)  # (B, 128)
        return self.out(x).reshape(-1, self.num_vertices, 3)


def residual_loss(pred, target_residual, *, vertices=None) -> torch.Tensor:
    """Eq. (3)'s training loss: mean over faces of sum_v |T_L(I) - (S_hat - S_bar)|^2 / V.

    pred, target_residual: (B, V, 3) mm. vertices: optional (R,) indices to sum over.
    """
    dims = check_shape(pred, "B V 3", name="pred")
    check_shape(target_residual, "B V 3", name="target_residual", dims=dims)
    d = pred - target_residual
    if vertices is not None:
        d = d[:, vertices]
    return (d * d).sum(-1).mean()


@dataclass(frozen=True)
class ResNetConfig:
    """CPU-scale training of :class:`ResidualRegressor` (Adam, cosine schedule)."""

    width: int = 16
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        for name in ("width", "epochs", "batch_size"):
            check_int(getattr(self, name), name=name, minimum=1)
        check_int(self.seed, name="seed", minimum=0)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: expected a finite number > 0, got {self.lr}")


def train_residual(images: torch.Tensor, target_residual: torch.Tensor, config: ResNetConfig,
                   *, vertices=None) -> ResidualRegressor:
    """Fit T_L to the residuals S_hat - S_bar of M training faces (the loss after Eq. 3).

    images: (M, H, W, 3) in [0, 1]; target_residual: (M, V, 3) mm; vertices: optional (R,)
    indices the loss is summed over (e.g. the face region). Returns the network in eval mode.
    """
    dims = check_shape(images, "M H W 3", name="images")
    check_shape(target_residual, "M V 3", name="target_residual", dims=dims)
    if not isinstance(config, ResNetConfig):
        raise TypeError(f"config: expected a ResNetConfig, got {type(config).__name__}")
    torch.manual_seed(config.seed)
    net = ResidualRegressor(target_residual.shape[1], images.shape[1], config.width)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    rng = np.random.default_rng(config.seed)
    M = dims["M"]
    net.train()
    for _ in range(config.epochs):
        order = torch.as_tensor(rng.permutation(M))
        for s in range(0, M - 1, config.batch_size):
            b = order[s:s + config.batch_size]
            if len(b) < 2:  # BatchNorm needs two samples
                continue
            loss = residual_loss(net(images[b]), target_residual[b], vertices=vertices)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    return net
