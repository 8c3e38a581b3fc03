"""MoFA encoder (zero-initialised last layer, 0.7 ambient offset) and weight save/load."""

import pytest
import torch

from facelab.methods.mofa.decoder import AMBIENT_OFFSET, mean_face_code
from facelab.methods.mofa.encoder import DEFAULT_DISTANCE, MofaEncoder
from facelab.methods.mofa.layout import MOFA_LAYOUT, CodeLayout
from facelab.methods.mofa.training import TrainConfig, load_encoder, save_encoder


def test_initial_prediction_is_centred_ambient_mean_face():
    torch.manual_seed(0)
    enc = MofaEncoder()
    code = enc(torch.rand(3, 64, 64, 3))
    assert code.shape == (3, 257) and code.dtype == torch.float32
    expected = mean_face_code(MOFA_LAYOUT, 3, distance=DEFAULT_DISTANCE)
    assert torch.equal(code.detach(), expected)
    parts = MOFA_LAYOUT.split(code.detach())
    assert float(parts.gamma[0, 0, 0]) == pytest.approx(AMBIENT_OFFSET)
    assert float(parts.translation[0, 2]) == pytest.approx(DEFAULT_DISTANCE)
    assert float(parts.id.abs().sum()) == 0.0


def test_gradients_reach_every_layer():
    enc = MofaEncoder()
    code = enc(torch.rand(2, 64, 64, 3))
    code[:, :80].sum().backward()
    assert float(enc.head.weight.grad.abs().sum()) > 0  # the zero layer learns first
    assert all(p.grad is not None for p in enc.parameters())


def test_small_enough_to_commit():
    n = sum(p.numel() for p in MofaEncoder().parameters())
    assert n * 4 < 2_000_000


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    enc = MofaEncoder(CodeLayout(id=10, exp=5, albedo=7), image_size=32, width=4, hidden=8)
    torch.nn.init.normal_(enc.head.weight, std=0.1)
    enc(torch.rand(4, 32, 32, 3))  # update the BatchNorm running statistics
    enc.eval()
    path = save_encoder(enc, tmp_path / "m.pt", note="x")
    back = load_encoder(path)
    x = torch.rand(2, 32, 32, 3)
    assert torch.equal(enc(x), back(x))
    assert back.metadata["note"] == "x" and back.layout.size == 10 + 5 + 7 + 33
    with pytest.raises(ValueError, match="name_or_path"):
        load_encoder(tmp_path / "missing.pt")


def test_bad_inputs():
    enc = MofaEncoder()
    with pytest.raises(ValueError, match=r"image: expected \(B, 64, 64, 3\)"):
        enc(torch.rand(1, 32, 32, 3))
    with pytest.raises(ValueError, match=r"image: expected \(B, H, W, 3\)"):
        enc(torch.rand(1, 3, 64, 64))
    with pytest.raises(TypeError, match="image: expected float"):
        enc(torch.zeros(1, 64, 64, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="finite"):
        enc(torch.full((1, 64, 64, 3), float("nan")))
    with pytest.raises(ValueError, match="multiple of 16"):
        MofaEncoder(image_size=40)
    with pytest.raises(ValueError, match="corpus_size"):
        TrainConfig(batch_size=3, corpus_size=10)
