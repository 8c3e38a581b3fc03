"""Named blocks of a flat parameter vector: sizes in order -> slices and views.

Every method's parameter vector is a concatenation of named blocks (MoFA's code, Eq. (1):
``id | exp | albedo | rotation | translation | sh``; 3DDFA_V2's ``pose | id | exp``; NeuFace's
``[r, θ, β, ψ, s, tx, ty]``; HuMoR-Face's motion state ``[φ, φ̇, θ, J, J̇]``), and STYLE.md
rule 7 asks that they are split by name through one layout object, never by length. Each
layout says only its blocks' sizes (:attr:`BlockLayout.sizes`); this module derives the rest
the same way for all of them:

    slices[k] = [o_k, o_k + n_k),  o_k = n_0 + ... + n_{k-1},  size = n_0 + ... + n_{K-1}

Checks of the blocks' values (shapes, batch, dtype) stay with each layout, whose vectors
differ in rank ((B, D) codes, (..., D) states).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import torch

__all__ = ["BlockLayout", "block_slices", "block_views"]


def block_slices(sizes: Mapping[str, int]) -> dict[str, slice]:
    """Block name -> slice of the vector's last axis, consecutive in ``sizes``' order.

    sizes: {name: n_k} with n_k >= 0 ints (a 0-size block gets an empty slice).
    """
    out, start = {}, 0
    for name, n in sizes.items():
        out[name] = slice(start, start + n)
        start += n
    return out


def block_views(x: torch.Tensor, slices: Mapping[str, slice]) -> dict[str, torch.Tensor]:
    """x: (..., D) -> {name: (..., n_k)} views of its last axis (differentiable, no copy).

    The caller checks D against its layout first (each layout words its own error).
    """
    return {name: x[..., sl] for name, sl in slices.items()}


class BlockLayout(ABC):
    """Base of a layout: a subclass gives :attr:`sizes` (ordered); :attr:`size` and
    :attr:`slices` follow (module docs). Subclasses are frozen dataclasses."""

    @property
    @abstractmethod
    def sizes(self) -> dict[str, int]:
        """Block name -> length n_k, in the vector's order."""

    @property
    def size(self) -> int:
        """D, the length of the whole vector."""
        return sum(self.sizes.values())

    @property
    def slices(self) -> dict[str, slice]:
        """Block name -> slice of the vector's last axis, in the vector's order."""
        return block_slices(self.sizes)
