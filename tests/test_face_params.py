"""FaceParams: defaults, validation, batch plumbing, rotation constructors."""

import math

import pytest
import torch

import facelab as fl
from facelab import rotations
from facelab.face_params import DEFAULT_AMBIENT


def _params(batch=3, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return fl.FaceParams(id=torch.randn(batch, 10, generator=g).to(dtype),
                         exp=torch.randn(batch, 4, generator=g).to(dtype),
                         translation=torch.randn(batch, 3, generator=g).to(dtype),
                         jaw=torch.randn(batch, 3, generator=g).to(dtype))


def test_defaults_are_mean_face_neutral_ambient_light():
    p = fl.FaceParams(batch=2)
    assert p.batch_size == len(p) == 2 and p.dtype == torch.float32
    assert p.id.shape == p.exp.shape == p.albedo.shape == (2, 0)
    torch.testing.assert_close(p.rotation, torch.eye(3).expand(2, 3, 3))
    torch.testing.assert_close(p.translation, torch.zeros(2, 3))
    torch.testing.assert_close(p.gamma, fl.ambient_sh(DEFAULT_AMBIENT).expand(2, 9, 3))
    assert p.jaw is None and p.vertex_offsets is None and p.albedo_offsets is None
    q = fl.FaceParams(batch=1, dtype=torch.float64)
    assert q.gamma.dtype == torch.float64


def test_batch_dtype_device_come_from_the_blocks():
    p = fl.FaceParams(id=torch.zeros(4, 3, dtype=torch.float64))
    assert p.batch_size == 4 and p.dtype == torch.float64
    assert p.rotation.dtype == torch.float64 and p.gamma.shape == (4, 9, 3)
    # blocks of another dtype are cast to the first's
    p = fl.FaceParams(id=torch.zeros(2, 3, dtype=torch.float64), translation=torch.zeros(2, 3))
    assert p.translation.dtype == torch.float64


def test_tensors_are_kept_so_gradients_flow():
    leaf = torch.zeros(2, 5, requires_grad=True)
    p = fl.FaceParams(id=leaf)
    assert p.id is leaf


def test_validation_names_the_block():
    with pytest.raises(ValueError, match="rotation: expected \\(B, 3, 3\\), got \\(2, 3\\)"):
        fl.FaceParams(rotation=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="translation: expected batch size B=2"):
        fl.FaceParams(id=torch.zeros(2, 3), translation=torch.zeros(3, 3))
    with pytest.raises(TypeError, match="id"):
        fl.FaceParams(id=torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="gamma: expected finite"):
        fl.FaceParams(gamma=torch.full((1, 9, 3), math.inf))
    with pytest.raises(ValueError, match="albedo_offsets"):
        fl.FaceParams(vertex_offsets=torch.zeros(1, 5, 3), albedo_offsets=torch.zeros(1, 6, 3))
    with pytest.raises(TypeError, match="unknown FaceParams fields"):
        fl.FaceParams().replace(pose=torch.zeros(1, 3))


def test_indexing_keeps_the_batch_axis():
    p = _params()
    one = p[1]
    assert one.batch_size == 1
    torch.testing.assert_close(one.id, p.id[1:2])
    torch.testing.assert_close(p[-1].jaw, p.jaw[2:3])
    two = p[torch.tensor([0, 2])]
    torch.testing.assert_close(two.translation, p.translation[[0, 2]])
    assert p[1:].batch_size == 2
    with pytest.raises(IndexError):
        p[3]


def test_cat_pads_coefficients_and_fills_missing_blocks():
    a = _params(batch=2)
    b = fl.FaceParams(id=torch.ones(1, 12))
    c = fl.FaceParams.cat([a, b])
    assert c.batch_size == 3 and c.id.shape == (3, 12)
    torch.testing.assert_close(c.id[:2, :10], a.id)
    assert (c.id[:2, 10:] == 0).all() and (c.id[2] == 1).all()
    torch.testing.assert_close(c.jaw[2], torch.zeros(3))  # b had no jaw: rest pose
    assert c.vertex_offsets is None
    with pytest.raises(TypeError, match="FaceParams"):
        fl.FaceParams.cat([])


def test_to_detach_clone():
    leaf = torch.zeros(2, 5, requires_grad=True)
    p = fl.FaceParams(id=leaf * 2)
    d = p.detach()
    assert not d.id.requires_grad and p.id.requires_grad
    c = p.clone()
    assert c.id is not p.id and torch.equal(c.id, p.id)
    q = p.to(dtype=torch.float64)
    assert q.dtype == torch.float64 and q.gamma.dtype == torch.float64
    assert "FaceParams(B=2" in repr(p)


@pytest.mark.parametrize("kind", ["euler", "axis_angle", "quaternion", "rotation_6d"])
def test_rotation_constructors_agree(kind):
    R = rotations.euler_to_matrix(torch.tensor([[0.2, -0.5, 0.1], [0.0, 0.3, -0.2]]))
    value = {"euler": rotations.matrix_to_euler(R),
             "axis_angle": rotations.matrix_to_axis_angle(R),
             "quaternion": rotations.matrix_to_quaternion(R),
             "rotation_6d": rotations.matrix_to_rotation_6d(R)}[kind]
    p = getattr(fl.FaceParams, f"from_{kind}")(value, translation=torch.ones(2, 3))
    torch.testing.assert_close(p.rotation, R, rtol=0, atol=1e-5)
    torch.testing.assert_close(p.translation, torch.ones(2, 3))


def test_joint_blocks():
    p = fl.FaceParams(neck=torch.zeros(2, 3), eyes=torch.ones(2, 2, 3))
    poses = p.joint_poses()
    assert set(poses) == {"neck", "eye_left", "eye_right"}
    assert poses["eye_right"].shape == (2, 3)
    with pytest.raises(ValueError, match="eyes: expected \\(B, 2, 3\\)"):
        fl.FaceParams(eyes=torch.zeros(2, 3))
    c = fl.FaceParams.cat([p, fl.FaceParams(batch=1)])
    assert c.eyes.shape == (3, 2, 3) and float(c.eyes[2].abs().sum()) == 0.0
