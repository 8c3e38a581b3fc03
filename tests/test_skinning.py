"""Joints and linear blend skinning (FLAME Eq. 2): Skeleton, MorphableModel.pose_joints, form()."""

import math

import numpy as np
import pytest
import torch
from fixtures_models import dome_mesh

import facelab as fl
from facelab.model.skinning import Skeleton, blend_skinning
from facelab.rotations import axis_angle_to_matrix


def flame_like_model(dtype=torch.float64, regressor=False):
    """A dome with FLAME's joints below the root: neck -> jaw, neck -> eyes.

    Lower half skinned to the jaw, two small patches to the eyes, the rest to the neck.
    """
    verts, faces = dome_mesh(scale_mm=60.0)
    V = verts.shape[0]
    rng = np.random.default_rng(0)
    w = np.zeros((V, 4))
    lower = verts[:, 1] < -20
    left = np.linalg.norm(verts[:, :2] - [-25, 20], axis=1) < 12
    right = np.linalg.norm(verts[:, :2] - [25, 20], axis=1) < 12
    w[:, 0] = 1.0
    w[lower] = [0.0, 1.0, 0.0, 0.0]
    w[left] = [0.0, 0.0, 1.0, 0.0]
    w[right] = [0.0, 0.0, 0.0, 1.0]
    positions = np.array([[0.0, -70.0, -20.0], [0.0, -25.0, -10.0], [-25, 20, 10], [25, 20, 10]])
    reg = None
    if regressor:  # each joint = the mean of a few vertices near its position
        reg = np.zeros((4, V))
        for j, p in enumerate(positions):
            near = np.argsort(np.linalg.norm(verts - p, axis=1))[:4]
            reg[j, near] = 0.25
        positions = reg @ verts
    sk = Skeleton(("neck", "jaw", "eye_left", "eye_right"), (-1, 0, 0, 0),
                  torch.tensor(positions), torch.tensor(w),
                  None if reg is None else torch.tensor(reg))
    return fl.MorphableModel(
        name="flame-like", mean_shape=verts, id_basis=rng.normal(0, 2.0, (V, 3, 3)),
        exp_basis=rng.normal(0, 1.0, (V, 3, 2)), mean_albedo=np.full((V, 3), 0.5),
        albedo_basis=np.zeros((V, 3, 1)), faces=faces, skeleton=sk).to(dtype=dtype)


def test_single_joint_is_the_jaw_formula():
    m = fl.load_model("synthetic", resolution="teaching", version=1).to(dtype=torch.float64)
    assert m.skeleton.names == ("jaw",)
    verts = m.shape(torch.randn(2, 10, dtype=torch.float64))
    jaw = torch.tensor([[0.2, 0.0, 0.0], [0.1, 0.05, 0.0]], dtype=torch.float64)
    R = axis_angle_to_matrix(jaw)
    j, w = m.jaw_joint, m.jaw_weights[None, :, None]
    want = verts + w * (torch.einsum("bij,bvj->bvi", R, verts - j) + j - verts)
    assert torch.equal(m.pose_jaw(verts, jaw), want)
    assert torch.equal(m.pose_joints(verts, {"jaw": jaw}), want)


def test_chain_children_follow_their_parent():
    m = flame_like_model()
    verts = m.mean_shape[None]
    neck = torch.tensor([[0.0, 0.4, 0.0]], dtype=torch.float64)
    posed = m.pose_joints(verts, {"neck": neck})
    # with only the neck turned, every vertex (all fully skinned below it) turns rigidly about
    # the neck joint
    R = axis_angle_to_matrix(neck)[0]
    J = m.skeleton.positions[0]
    torch.testing.assert_close(posed[0], (verts[0] - J) @ R.T + J)
    # the jaw opening then happens in the turned frame: jaw-only vertices differ, others not
    jaw = torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64)
    both = m.pose_joints(verts, {"neck": neck, "jaw": jaw})
    lower = m.skeleton.weights[:, 1] > 0
    torch.testing.assert_close(both[0, ~lower], posed[0, ~lower])
    assert (both[0, lower] - posed[0, lower]).norm(dim=-1).min() > 1e-3
    # a joint rotation leaves its own position fixed (vertices at the joint do not move)
    at_joint = m.pose_joints(m.skeleton.positions[None, 1:2].expand(1, 1, 3).expand(
        1, m.num_vertices, 3).contiguous(), {"jaw": jaw})
    torch.testing.assert_close(at_joint[0, lower], m.skeleton.positions[1].expand(
        int(lower.sum()), 3))


def test_eyes_rotate_only_their_patch():
    m = flame_like_model()
    p = fl.FaceParams(eyes=torch.tensor([[[0.0, 0.3, 0.0], [0.0, -0.3, 0.0]]],
                                        dtype=torch.float64), translation=torch.tensor(
        [[0.0, 0.0, 600.0]], dtype=torch.float64))
    rest = fl.form(m, p.replace(eyes=None), fl.cameras.Pinhole.from_fov(64, 64,
                                                                       dtype=torch.float64))
    moved = fl.form(m, p, fl.cameras.Pinhole.from_fov(64, 64, dtype=torch.float64))
    changed = (moved.verts - rest.verts).norm(dim=-1)[0] > 1e-9
    eye_w = m.skeleton.weights[:, 2:].sum(1) > 0
    assert torch.equal(changed, eye_w & changed) and changed.sum() > 0
    assert p.joint_poses().keys() == {"eye_left", "eye_right"}


def test_joints_follow_the_shape_through_the_regressor():
    m = flame_like_model(regressor=True)
    ids = torch.randn(2, 3, dtype=torch.float64)
    verts = m.shape(ids)
    joints = m.joint_positions(verts)
    torch.testing.assert_close(joints, torch.einsum("jv,bvk->bjk", m.skeleton.regressor, verts))
    # form() computes the same joints from the blocks alone, also for a vertex subset
    p = fl.FaceParams(id=ids, jaw=torch.tensor([[0.3, 0, 0]] * 2, dtype=torch.float64),
                      translation=torch.tensor([[0, 0, 600.0]] * 2, dtype=torch.float64))
    cam = fl.cameras.Pinhole.from_fov(64, 64, dtype=torch.float64)
    full = fl.form(m, p, cam)
    torch.testing.assert_close(full.verts, m.pose_joints(verts, {"jaw": p.jaw}))
    rows = torch.arange(0, m.num_vertices, 7)
    sub = fl.form(m, p, cam, vertex_subset=rows)
    torch.testing.assert_close(sub.verts, full.verts[:, rows])


def test_gradients_through_skinning():
    m = flame_like_model(regressor=True)
    cam = fl.cameras.Pinhole.from_fov(32, 32, dtype=torch.float64)

    def fn(neck, jaw, ids):
        p = fl.FaceParams(id=ids, neck=neck, jaw=jaw, translation=torch.tensor(
            [[0, 0, 600.0]], dtype=torch.float64))
        return fl.form(m, p, cam).screen_verts

    args = [torch.tensor([[0.1, 0.2, 0.0]], dtype=torch.float64, requires_grad=True),
            torch.tensor([[0.2, 0.0, 0.05]], dtype=torch.float64, requires_grad=True),
            torch.randn(1, 3, dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(fn, args)


def test_skeleton_and_pose_validation():
    m = flame_like_model()
    V = m.num_vertices
    pos, w = torch.zeros(2, 3), torch.zeros(V, 2)
    with pytest.raises(ValueError, match="parents: joint 'b' needs a parent listed before it"):
        Skeleton(("a", "b"), (-1, 1), pos, w)
    with pytest.raises(ValueError, match="names: expected distinct"):
        Skeleton(("a", "a"), (-1, 0), pos, w)
    with pytest.raises(ValueError, match="weights: expected values >= 0"):
        Skeleton(("a", "b"), (-1, 0), pos, torch.full((V, 2), 0.6))
    with pytest.raises(ValueError, match="joint: expected one of"):
        m.pose_joints(m.mean_shape[None], {"tail": torch.zeros(1, 3, dtype=torch.float64)})
    with pytest.raises(ValueError, match="poses\\['jaw'\\]: expected \\(B, 3\\)"):
        m.pose_joints(m.mean_shape[None], {"jaw": torch.zeros(2, 3, dtype=torch.float64)})
    with pytest.raises(ValueError, match="has no joints"):
        fl.MorphableModel(name="x", mean_shape=m.mean_shape, id_basis=m.id_basis,
                          exp_basis=m.exp_basis, mean_albedo=m.mean_albedo,
                          albedo_basis=m.albedo_basis, faces=m.faces).pose_joints(
            m.mean_shape[None], {})
    teaching = fl.load_model("synthetic", resolution="teaching", version=1)
    p = fl.FaceParams(neck=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="params.neck: model .* has no joint neck"):
        fl.form(teaching, p, fl.cameras.Pinhole.from_fov(32, 32))
    assert math.isclose(float(m.skeleton.weights.sum(1).max()), 1.0)


def test_blend_skinning_at_rest_is_the_identity():
    m = flame_like_model()
    verts = m.mean_shape[None]
    out = blend_skinning(verts, m.skeleton, {}, m.skeleton.positions[None])
    torch.testing.assert_close(out, verts, rtol=0, atol=1e-12)
    moved = m.to(dtype=torch.float32)
    assert moved.skeleton.positions.dtype == torch.float32
    assert moved.jaw_joint is not None and moved.jaw_weights.shape == (m.num_vertices,)
