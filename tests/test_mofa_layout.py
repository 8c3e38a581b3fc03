"""MoFA code vector layout (Eq. 1): sizes, round trip, errors."""

import numpy as np
import pytest
import torch

from facelab.methods.mofa.layout import BLOCK_NAMES, MOFA_LAYOUT, CodeLayout


def test_mofa_layout_is_257_in_paper_order():
    assert MOFA_LAYOUT.size == 257
    sl = MOFA_LAYOUT.slices
    assert list(sl) == list(BLOCK_NAMES)
    assert sl["id"] == slice(0, 80) and sl["exp"] == slice(80, 144)
    assert sl["albedo"] == slice(144, 224) and sl["rotation"] == slice(224, 227)
    assert sl["translation"] == slice(227, 230) and sl["sh"] == slice(230, 257)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_split_join_round_trip(dtype):
    code = torch.randn(4, 257, dtype=dtype)
    parts = MOFA_LAYOUT.split(code)
    assert parts.id.shape == (4, 80) and parts.exp.shape == (4, 64)
    assert parts.albedo.shape == (4, 80) and parts.rotation.shape == (4, 3)
    assert parts.translation.shape == (4, 3) and parts.gamma.shape == (4, 9, 3)
    assert torch.equal(parts.gamma[:, 2, 1], code[:, 230 + 2 * 3 + 1])  # coefficient-major
    back = MOFA_LAYOUT.join(**parts._asdict())
    assert back.dtype == dtype and torch.equal(back, code)
    back2 = MOFA_LAYOUT.join(**{**parts._asdict(), "sh": parts.gamma})
    assert torch.equal(back2, code)


def test_join_missing_blocks_are_zero_and_grad_flows():
    t = torch.tensor([[1.0, 2.0, 900.0]], requires_grad=True)
    code = MOFA_LAYOUT.join(translation=t)
    assert code.shape == (1, 257)
    assert torch.equal(code[0, 227:230], t[0].detach())
    assert float(code.detach().abs().sum()) == pytest.approx(903.0)
    code.sum().backward()
    assert torch.equal(t.grad, torch.ones(1, 3))
    empty = MOFA_LAYOUT.join(batch=2, dtype=torch.float64)
    assert empty.shape == (2, 257) and empty.dtype == torch.float64


def test_for_model_sizes():
    class M:
        n_id, n_exp, n_albedo = 5, 3, 4
    lay = CodeLayout.for_model(M())
    assert lay.size == 5 + 3 + 4 + 3 + 3 + 27
    assert MOFA_LAYOUT.split(np.zeros((2, 257), np.float32)).id.shape == (2, 80)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"code: expected \(B, D\) with D=257"):
        MOFA_LAYOUT.split(torch.zeros(2, 256))
    with pytest.raises(ValueError, match="code"):
        MOFA_LAYOUT.split(torch.zeros(257))
    with pytest.raises(TypeError, match="code: expected float32 or float64"):
        MOFA_LAYOUT.split(torch.zeros(2, 257, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"id: expected \(B, 80\)"):
        MOFA_LAYOUT.join(id=torch.zeros(2, 79))
    with pytest.raises(ValueError, match="translation"):
        MOFA_LAYOUT.join(id=torch.zeros(2, 80), translation=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="finite"):
        MOFA_LAYOUT.join(id=torch.full((1, 80), float("nan")))
    with pytest.raises(ValueError, match="batch"):
        MOFA_LAYOUT.join()
    with pytest.raises(ValueError, match="rotation: expected 3"):
        CodeLayout(rotation=6)
    with pytest.raises(ValueError, match="id: expected an int >= 0"):
        CodeLayout(id=-1)


def test_code_round_trips_through_face_params():
    import facelab as fl

    g = torch.Generator().manual_seed(0)
    code = torch.randn(4, MOFA_LAYOUT.size, generator=g, dtype=torch.float64)
    code[:, MOFA_LAYOUT.slices["rotation"]] *= 0.4  # Euler angles away from gimbal lock
    face = MOFA_LAYOUT.to_face(code)
    assert isinstance(face, fl.FaceParams) and face.batch_size == 4
    parts = MOFA_LAYOUT.split(code)
    assert torch.equal(face.id, parts.id) and torch.equal(face.gamma, parts.gamma)
    torch.testing.assert_close(face.rotation, fl.rotations.head_rotation(parts.rotation))
    back = MOFA_LAYOUT.from_face(face)
    torch.testing.assert_close(back, code, rtol=0, atol=1e-12)
    # shorter coefficient blocks are zero-padded; joints have no place in the code
    short = MOFA_LAYOUT.from_face(fl.FaceParams(id=torch.ones(1, 3)))
    assert short.shape == (1, 257) and float(short[0, :3].sum()) == 3.0
    assert float(short[0, 3:80].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="params.jaw"):
        MOFA_LAYOUT.from_face(fl.FaceParams(jaw=torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="params.id: expected at most 80"):
        MOFA_LAYOUT.from_face(fl.FaceParams(id=torch.zeros(1, 81)))
    with pytest.raises(TypeError, match="FaceParams"):
        MOFA_LAYOUT.from_face(code)
