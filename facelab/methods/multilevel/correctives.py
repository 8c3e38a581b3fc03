"""The learned corrective spaces F(delta | Theta): R^C -> R^{3N} (supplement Sec. 3).

    Linear               F(delta) = L0(delta) = M delta + b                       (supp. Eq. 1)
    One non-linearity    F(delta) = L1(Psi(L0(delta)))                            (supp. Eq. 2)
    Two non-linearities  F(delta) = L2(Psi(L1(Psi(L0(delta)))))                   (supp. Eq. 3)

"Let L_i(delta) = M_i delta + b_i be an affine/linear mapping and Theta^[i] stack all trainable
parameters, i.e., the trainable matrix M_i and the trainable offset vector b_i" (supp. Sec. 3);
Psi is a ReLU. The hidden layers of the non-linear variants have C units (the supplement does
not give their width).

Initialisation (ours): F(0) = 0 exactly, so with the regressor's corrective heads starting at
zero (delta = 0) the final level *equals* the base level when fine-tuning starts. Linear: M
~ N(0, 1/C), b = 0. Non-linear: default PyTorch layers with the hidden biases set to 0.1 (a
ReLU at exactly 0 passes no gradient) and the last bias set to -L_last(hidden(0)).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from facelab._checks import check_int, check_shape

__all__ = ["KINDS", "CorrectiveSpace"]

KINDS = ("linear", "one_nonlinearity", "two_nonlinearities")


class CorrectiveSpace(nn.Module):
    """A corrective space with C parameters for N vertices: delta (B, C) -> (B, N, 3).

    size: C >= 0 (0: the space is empty and always returns zeros, the 3DMM-only model).
    num_vertices: N. kind: one of :data:`KINDS` (supp. Eqs. 1-3).
    For ``kind="linear"``, :attr:`basis` is M reshaped to (N, 3, C) (a learned basis, as a
    3DMM's) and :attr:`offset` is b reshaped to (N, 3).
    """

    def __init__(self, size: int, num_vertices: int, kind: str = "linear"):
        super().__init__()
        self.size = check_int(size, name="size", minimum=0)
        self.num_vertices = check_int(num_vertices, name="num_vertices", minimum=1)
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        self.kind = kind
        out = 3 * self.num_vertices
        if self.size == 0:
            self.layers = nn.ModuleList()
            return
        n_layers = 1 + KINDS.index(kind)
        widths = [self.size] * n_layers + [out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        with torch.no_grad():
            if kind == "linear":
                nn.init.normal_(self.layers[0].weight, std=self.size ** -0.5)
                nn.init.zeros_(self.layers[0].bias)
            else:
                for layer in self.layers[:-1]:
                    nn.init.constant_(layer.bias, 0.1)
                last = self.layers[-1]
                nn.init.zeros_(last.bias)
                zero = self._hidden(torch.zeros(1, self.size))  # (1, C)
                last.bias.copy_(-last(zero)[0])  # F(0) = 0

    def _hidden(self, delta: torch.Tensor) -> torch.Tensor:
        h = delta
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))  # Psi(L_i(.)), supp. Eqs. 2-3
        return h

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        """delta: (B, C) float corrective parameters. Returns (B, N, 3) per-vertex correctives."""
        d = check_shape(delta, "B C", name="delta", dims={"C": self.size})
        if self.size == 0:
            return delta.new_zeros(d["B"], self.num_vertices, 3)
        out = self.layers[-1](self._hidden(delta))  # (B, 3N)
        return out.reshape(d["B"], self.num_vertices, 3)

    @property
    def basis(self) -> torch.Tensor:
        """(N, 3, C) the matrix M of the linear space (supp. Eq. 1)."""
        if self.kind != "linear":
            raise ValueError(f"basis: only the linear space has one, this is {self.kind!r}")
        if self.size == 0:
            return torch.zeros(self.num_vertices, 3, 0)
        return self.layers[0].weight.reshape(self.num_vertices, 3, self.size)

    @property
    def offset(self) -> torch.Tensor:
        """(N, 3) the offset b of the linear space (supp. Eq. 1)."""
        if self.kind != "linear":
            raise ValueError(f"offset: only the linear space has one, this is {self.kind!r}")
        if self.size == 0:
            return torch.zeros(self.num_vertices, 3)
        return self.layers[0].bias.reshape(self.num_vertices, 3)
