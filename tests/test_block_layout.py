"""facelab.methods.block_layout: every method's layout derives size and slices the same way."""

from __future__ import annotations

import pytest
import torch

from facelab.methods.block_layout import BlockLayout, block_slices, block_views
from facelab.methods.mofa.layout import MOFA_LAYOUT
from facelab.methods.motion_prior.state import STATE
from facelab.methods.neuface.layout import NeuFaceLayout
from facelab.methods.tddfa.params import TDDFA_LAYOUT


def test_slices_are_consecutive_in_order_and_allow_empty_blocks():
    sl = block_slices({"a": 2, "empty": 0, "b": 3})
    assert list(sl) == ["a", "empty", "b"]
    assert sl == {"a": slice(0, 2), "empty": slice(2, 2), "b": slice(2, 5)}
    x = torch.arange(10.0).reshape(2, 5).requires_grad_()
    v = block_views(x, sl)
    assert v["a"].shape == (2, 2) and v["empty"].shape == (2, 0)
    assert torch.equal(v["b"], x[:, 2:])
    v["b"].sum().backward()
    assert torch.equal(x.grad, torch.tensor([[0.0, 0, 1, 1, 1]] * 2))


@pytest.mark.parametrize("layout, size", [
    (MOFA_LAYOUT, 257), (TDDFA_LAYOUT, 62), (STATE, 420),
    (NeuFaceLayout(10, 5, jaw=0), 21), (NeuFaceLayout(100, 50), 159)])
def test_method_layouts_derive_from_their_sizes(layout, size):
    assert isinstance(layout, BlockLayout)
    assert layout.size == size == sum(layout.sizes.values())
    assert layout.slices == block_slices(layout.sizes)
    assert max(s.stop for s in layout.slices.values()) == size


def test_a_layout_must_state_its_sizes():
    with pytest.raises(TypeError, match="abstract"):
        BlockLayout()
