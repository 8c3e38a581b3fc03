"""HuMoR-Face (facelab.methods.motion_prior): state, CVAE, loss, training, sampling."""

from __future__ import annotations

import math

import pytest
import torch

from facelab.methods import motion_prior as mp
from facelab.methods.motion_prior.sampling import FaceProjection
from facelab.methods.motion_prior.state import STATE, orthonormalize_states
from facelab.rotations import axis_angle_to_matrix, matrix_to_rotation_6d


def _sequence(T=12, omega=0.02, fps=30.0, seed=0):
    """A head turning about y at `omega` rad/frame, a jaw opening linearly, random landmarks
    drifting: (rotation, jaw, landmarks mm)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float64)
    aa = torch.zeros(T, 3, dtype=torch.float64)
    aa[:, 1] = omega * t
    R = axis_angle_to_matrix(aa)
    jaw = torch.zeros(T, 3, dtype=torch.float64)
    jaw[:, 0] = 0.01 * t
    X = 50 * torch.randn(1, 68, 3, dtype=torch.float64, generator=g) \
        + torch.randn(T, 68, 3, dtype=torch.float64, generator=g).cumsum(0)
    return R, jaw, X


def test_state_blocks_hand_worked():
    R, jaw, X = _sequence()
    x = mp.motion_states(R, jaw, X, fps=30.0).double()
    assert x.shape == (11, 420) and STATE.size == 420
    b = STATE.split(x)
    # angular velocity: 0.02 rad/frame about y at 30 fps = 0.6 rad/s
    assert torch.allclose(b["phi_dot"], torch.tensor([0.0, 0.6, 0.0], dtype=torch.float64),
                          atol=1e-5)
    assert torch.allclose(b["phi"], matrix_to_rotation_6d(R[1:]), atol=1e-6)
    assert torch.allclose(b["theta"], jaw[1:], atol=1e-7)
    J = X @ R.transpose(1, 2) / 10.0  # cm
    assert torch.allclose(STATE.landmarks_of(x), J[1:], atol=1e-4)
    assert torch.allclose(b["J_dot"].reshape(-1, 68, 3), (J[1:] - J[:-1]) * 30, atol=1e-2)


def test_state_rejects_bad_input():
    R, jaw, X = _sequence()
    with pytest.raises(ValueError, match="landmarks"):
        mp.motion_states(R, jaw, X[:, :10])
    with pytest.raises(ValueError, match="jaw"):
        mp.motion_states(R, jaw[:5], X)
    with pytest.raises(ValueError, match="T=2"):
        mp.motion_states(R[:1], jaw[:1], X[:1])
    with pytest.raises(ValueError, match="x: expected"):
        STATE.split(torch.zeros(3, 10))


def test_gaussian_kl_closed_form():
    z = torch.zeros(1, 2)
    assert float(mp.gaussian_kl(z, z, z, z)) == 0.0
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension; KL(N(0, e^0) || N(0, e^2)) = (2 + e^-2 - 1)/2
    assert float(mp.gaussian_kl(torch.ones(1, 2), z, z, z)) == pytest.approx(1.0)
    lv = torch.full((1, 1), 2.0)
    assert float(mp.gaussian_kl(z[:, :1], z[:, :1], z[:, :1], lv)) == pytest.approx(
        0.5 * (2 + math.exp(-2) - 1))


def test_velocity_term_is_zero_for_consistent_predictions():
    R, jaw, X = _sequence(T=6)
    x = mp.motion_states(R, jaw, X)
    net = mp.MotionPriorCVAE(latent=4, hidden=8)
    net.set_normalization([x])
    out = net(x[:-1], x[1:])
    out["x_hat"] = x[1:].clone()  # a perfect prediction: its velocities are its differences
    t = mp.transition_loss(net, out, x[:-1], x[1:], weights=mp.LossWeights(), progress=1.0)
    assert float(t["rec"]) == 0.0
    assert float(t["velocity"]) < 1e-4  # float32 rounding of the 6D -> matrix round trip
    # break the consistency: J_dot off by one std
    bad = x[1:].clone()
    bad[:, STATE.slices["J_dot"]] += net.x_std[STATE.slices["J_dot"]]
    out["x_hat"] = bad
    t = mp.transition_loss(net, out, x[:-1], x[1:], weights=mp.LossWeights(), progress=1.0)
    assert float(t["velocity"]) == pytest.approx(1.0, rel=1e-3)


def test_loss_weights_anneal_and_validate():
    w = mp.LossWeights()
    assert w.kl_weight(0.0) == 0.0 and w.kl_weight(0.125) == pytest.approx(2e-4)
    assert w.kl_weight(1.0) == pytest.approx(4e-4)
    with pytest.raises(ValueError, match="rec"):
        mp.LossWeights(rec=(1.0, 1.0))


def test_cvae_shapes_and_step():
    R, jaw, X = _sequence()
    x = mp.motion_states(R, jaw, X)
    net = mp.MotionPriorCVAE(latent=5, hidden=16)
    net.set_normalization([x])
    out = net(x[:-1], x[1:])
    assert out["x_hat"].shape == (10, 420) and out["mu_q"].shape == (10, 5)
    mu, lv = net.prior(x)
    assert mu.shape == lv.shape == (11, 5)
    with torch.no_grad():
        for p in net.decoder_net[-1].parameters():
            p.zero_()
    # a zero decoder output is the mean change of the training data
    assert torch.allclose(net.step(mu, x), x + net.d_mean)
    with pytest.raises(ValueError, match=r"x: expected \(B, 420\)"):
        net(x[:, :10], x[:, :10])


def test_training_lowers_the_loss_and_is_seeded():
    seqs = [mp.motion_states(*_sequence(T=20, seed=s)) for s in range(3)]
    settings = mp.TrainSettings(steps=40, batch=16, window=2, latent=4, hidden=16,
                                rollout_start=1.0, rollout_end=1.0)  # teacher forcing only
    a = mp.train_prior(seqs, settings)
    b = mp.train_prior(seqs, settings)
    first = sum(h["rec"] for h in a.history[:5]) / 5
    last = sum(h["rec"] for h in a.history[-5:]) / 5
    assert last < first
    assert a.history[-1] == b.history[-1]
    with pytest.raises(ValueError, match="sequences\\[0\\]"):
        mp.train_prior([torch.zeros(5, 7)], settings)


def test_sampling_shapes_seeds_and_orthonormal_rotation():
    seqs = [mp.motion_states(*_sequence(T=20, seed=s)) for s in range(2)]
    net = mp.train_prior(seqs, mp.TrainSettings(steps=5, batch=4, window=1, latent=3,
                                                hidden=8)).net
    x0 = seqs[0][0]
    s1 = mp.sample_motion(net, x0, 7, samples=3, generator=torch.Generator().manual_seed(0))
    s2 = mp.sample_motion(net, x0, 7, samples=3, generator=torch.Generator().manual_seed(0))
    assert s1.shape == (3, 8, 420) and torch.equal(s1, s2)
    assert torch.equal(s1[:, 0], x0.expand(3, -1))
    assert torch.allclose(orthonormalize_states(s1), s1, atol=1e-5)
    # the same latent offsets for every sample -> the same first step for all samples
    z = torch.zeros(3, 7, 3)
    same = mp.sample_motion(net, x0, 7, samples=3, z=z)
    assert torch.allclose(same[0, 1], same[2, 1], atol=1e-5)
    assert not torch.allclose(s1[0, 1], s1[2, 1], atol=1e-5)
    with pytest.raises(ValueError, match="z: expected"):
        mp.sample_motion(net, x0, 7, samples=3, z=torch.zeros(3, 6, 3))
    with pytest.raises(ValueError, match="x0: expected"):
        mp.sample_motion(net, torch.zeros(5), 3)


@pytest.fixture(scope="module")
def model_v1():
    from facelab.model.registry import load_model

    return load_model("synthetic", "teaching", version=1)


def test_face_projection_keeps_a_model_face_and_makes_velocities_consistent(model_v1):
    m = model_v1
    g = torch.Generator().manual_seed(0)
    ids = torch.randn(1, m.n_id, generator=g).expand(4, -1)
    exps = 0.5 * torch.randn(4, m.n_exp, generator=g)
    X = m.shape(ids, exps)[:, m.landmarks]  # (4, 68, 3) mm, a model face
    R = axis_angle_to_matrix(torch.tensor([[0.0, 0.01 * k, 0.0] for k in range(4)]))
    x = mp.motion_states(R, torch.zeros(4, 3), X)  # (3, 420)
    proj = FaceProjection(m)
    off = proj.identity_offset(x[:1]).expand(2, -1)
    p = proj.project(x[1:], x[:-1], off)
    # a face of the model moves by little (the ridge prior), far less than its size (15 cm)
    assert float((STATE.landmarks_of(p) - STATE.landmarks_of(x[1:])).norm(dim=-1).mean()) < 0.3
    # velocities are exactly the differences of positions
    J = STATE.landmarks_of(p)
    assert torch.allclose(STATE.split(p)["J_dot"].reshape(2, 68, 3),
                          (J - STATE.landmarks_of(x[:-1])) * 30.0, atol=1e-3)
    # a non-face (landmarks scattered by 20 cm) is pulled back toward a face
    junk = x[1:].clone()
    junk[:, STATE.slices["J"]] += 20 * torch.randn(2, 204, generator=g)
    pj = proj.project(junk, x[:-1], off)
    assert float(STATE.landmarks_of(pj).norm(dim=-1).max()) < \
        float(STATE.landmarks_of(junk).norm(dim=-1).max())


def test_meshes_from_states_carry_the_landmarks(model_v1):
    m = model_v1
    g = torch.Generator().manual_seed(1)
    ids = torch.randn(1, m.n_id, generator=g).expand(3, -1)
    exps = 0.5 * torch.randn(3, m.n_exp, generator=g)
    jaw = torch.tensor([[0.1, 0.0, 0.0]]).expand(3, -1)
    X = m.pose_joints(m.shape(ids, exps), {"jaw": jaw})[:, m.landmarks]
    R = axis_angle_to_matrix(torch.tensor([[0.0, 0.1 * k, 0.05] for k in range(3)]))
    x = mp.motion_states(R, jaw, X)
    verts = mp.meshes_from_states(m, x)
    assert verts.shape == (2, m.num_vertices, 3)
    err = (verts[:, m.landmarks] / 10 - STATE.landmarks_of(x)).norm(dim=-1).mean()
    assert float(err) < 0.3  # cm
    with pytest.raises(ValueError, match="states"):
        mp.meshes_from_states(m, torch.zeros(2, 5))
