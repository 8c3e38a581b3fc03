"""Tests for facelab.methods.tddfa.synthesis: short-video synthesis keeps the ground truth."""

import math

import pytest
import torch

from facelab.data import SyntheticFaces, random_backgrounds
from facelab.methods.tddfa import synthesis as S
from facelab.methods.tddfa.corpus import TDDFA_SAMPLING, tddfa_model
from facelab.methods.tddfa.params import pack_params, split_params
from facelab.methods.tddfa.reconstruct import landmarks_screen

SIZE = 48


@pytest.fixture(scope="module")
def stills():
    model = tddfa_model()
    ds = SyntheticFaces(model, size=SIZE, length=6, seed=3, sampling=TDDFA_SAMPLING,
                        camera="scaled_orthographic")
    b = ds.batch(0, 6)
    return model, b, pack_params(b["T"], b["id"], b["exp"])


def _inside_fraction(landmarks, mask):
    """Share of landmarks whose pixel (dilated by one) is covered by the face."""
    m = torch.nn.functional.max_pool2d(mask.float()[:, None], 3, 1, 1)[:, 0] > 0
    i = landmarks[..., 1].floor().long().clamp(0, mask.shape[1] - 1)
    j = landmarks[..., 0].floor().long().clamp(0, mask.shape[2] - 1)
    return m[torch.arange(mask.shape[0])[:, None], i, j].float().mean()


def test_render_params_reproduces_corpus(stills):
    model, b, p = stills
    img, mask = S.render_params(model, p, b["albedo"], b["gamma"], SIZE, torch.full((3,), 0.5))
    torch.testing.assert_close(img, b["image"], atol=1e-4, rtol=0)
    assert bool((mask == b["mask"]).all())
    torch.testing.assert_close(landmarks_screen(model, p, SIZE), b["landmarks_2d"], atol=1e-3,
                               rtol=0)


def test_similarity_warp_matches_rerender(stills):
    """Warping the image by Eq. (8) == rendering with the transformed parameters."""
    model, b, p = stills
    bg = torch.full((3,), 0.5)
    img, _ = S.render_params(model, p, b["albedo"], b["gamma"], SIZE, bg)
    A = S.similarity_matrix(torch.full((6,), 1.08), torch.full((6,), math.radians(10)),
                            torch.tensor([[2.0, -1.5]]).expand(6, 2), SIZE, SIZE)
    warped = S.warp_images(img, A)
    p2 = S.similarity_params(p, A, SIZE)
    ref, mask = S.render_params(model, p2, b["albedo"], b["gamma"], SIZE, bg)
    interior = torch.nn.functional.max_pool2d((~mask).float()[:, None], 3, 1, 1)[:, 0] == 0
    assert float((warped - ref).abs()[interior].mean()) < 0.03
    # the transformed T is still a scaled rotation, scaled by 1.08
    T, T2 = split_params(p)[0], split_params(p2)[0]
    f = T[:, :, :3].flatten(1).norm(dim=1)
    f2 = T2[:, :, :3].flatten(1).norm(dim=1)
    torch.testing.assert_close(f2, 1.08 * f)
    M = T2[:, :, :3] / (f2[:, None, None] / 3**0.5)
    torch.testing.assert_close(M @ M.transpose(1, 2), torch.eye(3).expand(6, 3, 3), atol=1e-5,
                               rtol=0)
    # landmark positions follow the similarity exactly
    lm = landmarks_screen(model, p, SIZE)
    lm2 = landmarks_screen(model, p2, SIZE)
    mapped = lm @ A[:, :, :2].transpose(1, 2) + A[:, None, :, 2]
    torch.testing.assert_close(lm2, mapped, atol=1e-3, rtol=0)


def test_out_of_plane_rotation_turns_the_head(stills):
    _, _, p = stills
    p2 = S.rotate_out_of_plane(p, torch.full((6,), 0.1), torch.zeros(6))
    T, T2 = split_params(p)[0], split_params(p2)[0]
    torch.testing.assert_close(T2[:, :, 3], T[:, :, 3])  # translation unchanged
    f = T[:, :, :3].flatten(1).norm(dim=1)
    torch.testing.assert_close(T2[:, :, :3].flatten(1).norm(dim=1), f)
    torch.testing.assert_close(T2[:, 1, :3], T[:, 1, :3])  # yaw keeps the y row


def test_video_keeps_ground_truth_consistent(stills):
    """Landmarks land on the rendered face in every frame (the issue's consistency test)."""
    model, b, p = stills
    bg = random_backgrounds(6, SIZE, torch.Generator().manual_seed(0))
    cfg = S.VideoSynthesis(frames=4)
    v = S.synthesize_video(model, p, b["albedo"], b["gamma"], bg, cfg,
                           torch.Generator().manual_seed(1))
    assert v["images"].shape == (6, 4, SIZE, SIZE, 3)
    assert v["params"].shape == (6, 4, 62) and v["landmarks"].shape == (6, 4, 68, 2)
    torch.testing.assert_close(v["params"][:, 0], p)
    base = _inside_fraction(b["landmarks_2d"], b["mask"])
    for j in range(4):
        frac = _inside_fraction(v["landmarks"][:, j], v["mask"][:, j])
        assert float(frac) >= float(base) - 0.02, (j, float(frac), float(base))
        img = v["images"][:, j]
        assert float(img.min()) >= 0 and float(img.max()) <= 1
    # frames change smoothly: adjacent landmark offsets are a few pixels at most
    step = (v["landmarks"][:, 1:] - v["landmarks"][:, :-1]).norm(dim=-1)
    assert float(step.mean()) > 0.1 and float(step.max()) < 10
    # deterministic for a given generator
    v2 = S.synthesize_video(model, p, b["albedo"], b["gamma"], bg, cfg,
                            torch.Generator().manual_seed(1))
    torch.testing.assert_close(v2["images"], v["images"])


def test_noise_and_blur():
    x = torch.rand(2, 16, 16, 3)
    torch.testing.assert_close(S.motion_blur(x, torch.ones(2), torch.zeros(2)), x, atol=1e-5,
                               rtol=0)
    flat = torch.full((1, 16, 16, 3), 0.3)
    torch.testing.assert_close(S.motion_blur(flat, torch.full((1,), 5.0), torch.ones(1)), flat)
    stripe = torch.zeros(1, 16, 16, 3)
    stripe[:, :, 8] = 1.0
    hblur = S.motion_blur(stripe, torch.full((1,), 5.0), torch.zeros(1))  # horizontal kernel
    assert float(hblur[0, 4, 6, 0]) > 0.05 and float(hblur[0, 4, 8, 0]) < 1.0
    n = S.add_noise(flat, 0.05, torch.Generator().manual_seed(0))
    assert 0.03 < float((n - flat).std()) < 0.07
    with pytest.raises(ValueError, match="images: expected"):
        S.add_noise(torch.zeros(16, 16, 3), 0.1)
    with pytest.raises(ValueError, match="images: expected finite"):
        S.motion_blur(torch.full((1, 4, 4, 3), float("nan")), torch.ones(1), torch.zeros(1))
