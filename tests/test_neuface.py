"""NeuFace: layout, E-step targets, objective, optimisation and baseline on tiny clips."""

from __future__ import annotations

import math

import pytest
import torch

import facelab as fl
from facelab.data.talking import TalkingHeadConfig, synthesize_clip
from facelab.methods.neuface.baseline import BaselineConfig, fit_baseline
from facelab.methods.neuface.estep import (
    align_quaternion_signs,
    bootstrap_mesh,
    smooth_quaternions,
    vertex_confidence,
)
from facelab.methods.neuface.evaluate import evaluate_clip
from facelab.methods.neuface.layout import NeuFaceLayout
from facelab.methods.neuface.net import NeuFaceNet
from facelab.methods.neuface.objective import LossWeights, clip_losses
from facelab.methods.neuface.optimize import neuface_optimize, predict
from facelab.methods.neuface.pretrain import load_phi


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=1)


@pytest.fixture(scope="module")
def clip(model):
    cfg = TalkingHeadConfig(frames=6, views=2, image_size=64, landmark_noise=0.0,
                            outlier_prob=0.0, dropout_prob=0.0)
    return synthesize_clip(model, cfg, seed=3)


def _truth(model, clip):
    layout = NeuFaceLayout.for_model(model, n_id=model.n_id, n_exp=model.n_exp)
    return layout, layout.from_face(clip.params, clip.camera)


def test_layout_round_trip_and_model_agnostic(model, clip):
    layout, vec = _truth(model, clip)
    assert layout.jaw == 3 and layout.size == 3 + 3 + model.n_id + model.n_exp + 3
    params, camera = layout.to_face(vec, *clip.image_size)
    torch.testing.assert_close(params.rotation, clip.params.rotation, atol=1e-5, rtol=0)
    torch.testing.assert_close(camera.scale, clip.camera.scale, atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(layout.from_face(params, camera), vec, atol=1e-5, rtol=0)
    no_jaw = NeuFaceLayout(5, 4, jaw=0)
    p, _ = no_jaw.to_face(torch.zeros(2, no_jaw.size), 32, 32)
    assert p.jaw is None and p.neck is None and p.eyes is None
    with pytest.raises(ValueError, match="jaw"):
        NeuFaceLayout(5, 4, jaw=2)
    with pytest.raises(ValueError, match="vec"):
        layout.split(torch.zeros(2, 7))


def test_quaternion_signs_and_smoothing():
    q = torch.tensor([1.0, 0.0, 0.0, 0.0])
    flipping = torch.stack([q, -q, q, -q, q])[:, None]  # (T=5, N=1, 4): one rotation
    assert (align_quaternion_signs(flipping) == q).all()
    torch.testing.assert_close(smooth_quaternions(flipping, 3), q.expand(5, 1, 4))
    # window 3 at the middle frame: mean of (1,0,0,0), (0,1,0,0), (1,0,0,0) -> (2,1,0,0)/sqrt5
    seq = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0.0, 1, 0, 0], [1.0, 0, 0, 0],
                        [1.0, 0, 0, 0]])[:, None]
    mid = smooth_quaternions(seq, 3)[1, 0]
    torch.testing.assert_close(mid, torch.tensor([2.0, 1, 0, 0]) / math.sqrt(5))
    # the median ignores the single outlier frame entirely
    torch.testing.assert_close(smooth_quaternions(seq, 3, "median")[2, 0],
                               torch.tensor([1.0, 0, 0, 0]))
    with pytest.raises(ValueError, match="odd"):
        smooth_quaternions(seq, 4)
    with pytest.raises(ValueError, match="mode"):
        smooth_quaternions(seq, 3, "mode")


def test_vertex_confidence_hand_worked():
    a = math.radians(60.0)
    normals = torch.tensor([[[0.0, 0.0, -1.0], [math.sin(a), 0.0, -math.cos(a)],
                             [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]])
    depth = torch.tensor([[0.0, 0.0, 0.0, -0.1]])
    conf = vertex_confidence(normals, depth)
    # facing: 1; 60 degrees (< 72): cos 60 = 0.5; 90 degrees: 0; facing but too deep: 0
    torch.testing.assert_close(conf, torch.tensor([[1.0, 0.5, 0.0, 0.0]]))
    assert vertex_confidence(normals, depth, tau_a_deg=50.0)[0, 1] == 0


def test_bootstrap_mesh_hand_worked():
    meshes = torch.zeros(1, 2, 2, 3)
    meshes[0, 1] = 4.0
    conf = torch.tensor([[[1.0, 0.0], [3.0, 0.0]]])  # vertex 1: nobody is confident
    target = bootstrap_mesh(meshes, conf)
    torch.testing.assert_close(target[0, 0], torch.full((3,), 3.0))  # (0 * 1 + 4 * 3) / 4
    torch.testing.assert_close(target[0, 1], torch.full((3,), 2.0))  # plain mean
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mesh(meshes, -conf)


def test_objective_at_the_truth(model, clip):
    layout, vec = _truth(model, clip)
    terms = clip_losses(model, layout, vec, clip, LossWeights())
    assert float(terms["l2d"]) < 1e-3  # noise-free detections
    assert float(terms["multiview"]) < 1e-3  # one face seen by two cameras
    # the target smooths real motion a little: a small, nonzero temporal term
    assert 0 < float(terms["temporal"]) < 0.02
    naive = clip_losses(model, layout, vec, clip, LossWeights(style="naive"))
    assert float(naive["multiview"]) < 1e-3 and float(naive["temporal"]) > 0
    noisy = vec + 0.05 * torch.randn(vec.shape, generator=torch.Generator().manual_seed(0))
    worse = clip_losses(model, layout, noisy, clip, LossWeights())
    assert float(worse["l2d"]) > 0.1 and float(worse["multiview"]) > float(terms["multiview"])
    with pytest.raises(ValueError, match="style"):
        LossWeights(style="gibbs")
    with pytest.raises(ValueError, match="vec"):
        clip_losses(model, layout, vec[:5], clip, LossWeights())


def test_neuface_optimize_updates_a_copy_of_phi(model, clip):
    net = load_phi(model)
    layout = net.layout
    before = [p.detach().clone() for p in net.parameters()]
    res = neuface_optimize(model, net, clip, iterations=15, lr=1e-3)
    assert len(res.history) == 15 and res.vec.shape == (12, layout.size)
    assert res.history[-1]["total"] < 0.8 * res.history[0]["total"]
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert set(res.timing) == {"setup", "network", "losses", "backward", "final"}
    assert sum(res.timing.values()) <= res.seconds
    shared = neuface_optimize(model, net, clip, iterations=2, lr=1e-3, share_identity=True)
    beta = layout.split(shared.vec)["id"]
    assert torch.equal(beta[0], beta[-1])
    assert not torch.equal(layout.split(res.vec)["id"][0], layout.split(res.vec)["id"][-1])
    with pytest.raises(TypeError, match="clip"):
        neuface_optimize(model, net, clip.images, iterations=1)
    with pytest.raises(TypeError, match="net"):
        neuface_optimize(model, layout, clip, iterations=1)
    metrics = evaluate_clip(model, layout, res.vec, clip)
    assert {"nme", "mpve", "cvd", "msi_l", "msi_v", "beta_norm", "beta_sd"} <= set(metrics)
    start = evaluate_clip(model, layout, predict(net, clip), clip)
    assert metrics["nme"] < start["nme"]


def test_baseline_fits_landmarks(model, clip):
    torch.manual_seed(0)
    layout = NeuFaceLayout.for_model(model, n_id=10, n_exp=10)
    net = NeuFaceNet(layout, image_size=64, width=4, hidden=16)
    init = predict(net, clip)
    vec, seconds = fit_baseline(model, layout, init, clip,
                                config=BaselineConfig(coarse_steps=15, fine_steps=15, lr=3e-2))
    assert vec.shape == init.shape and seconds > 0
    assert (evaluate_clip(model, layout, vec, clip)["nme"]
            < 0.5 * evaluate_clip(model, layout, init, clip)["nme"])


def test_shipped_phi_is_pinned_to_model_v1(model):
    net = load_phi(model)
    assert net.layout == NeuFaceLayout.for_model(model)
    other = model.truncated(n_id=40)
    with pytest.raises(ValueError, match="NeuFace weights"):
        load_phi(other)
    with pytest.raises(FileNotFoundError, match="path"):
        load_phi(model, "/nonexistent/phi.pt")
