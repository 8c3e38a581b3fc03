"""The multi-level regularisers on hand-worked cases (definitions: regularisers module)."""

import math

import pytest
import torch

from facelab.mesh import laplacian, mesh_edges
from facelab.methods.multilevel import regularisers as R


@pytest.fixture(scope="module")
def teaching_model_v1():
    import facelab as fl

    return fl.load_model("synthetic", "teaching", version=1)


# a unit square split into two triangles: edges 01, 12, 02, 23, 03
FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])


def test_smoothness_hand_worked():
    L = laplacian(FACES, 4, "uniform")
    d = torch.zeros(1, 4, 3)
    d[0, 1, 0] = 1.0  # 1 mm along x at vertex 1 (valence 2, neighbours 0 and 2)
    # (L D) rows in metres: v1 = 2e-3, v0 = -1e-3, v2 = -1e-3, v3 = 0 -> mean of squares
    expected = (4e-6 + 1e-6 + 1e-6) / 4
    assert R.smoothness(d, L).item() == pytest.approx(expected, rel=1e-5)
    # a rigid translation of every vertex costs nothing
    assert R.smoothness(torch.ones(2, 4, 3) * 5.0, L).abs().max().item() < 1e-12


def test_stabilisation_hand_worked():
    d = torch.zeros(1, 2, 3)
    d[0, 0] = torch.tensor([3.0, 4.0, 0.0])  # |D_0| = 5 mm = 5e-3 m
    assert R.stabilisation(d).item() == pytest.approx(25e-6 / 2, rel=1e-5)


def test_local_sparsity_hand_worked():
    edges = torch.tensor([[0, 1]])
    r = torch.tensor([[[0.0, 0.0, 0.0], [0.3, 0.4, 0.0]]])  # ||r0 - r1|| = 0.5
    same = torch.full((1, 2, 3), 1 / 3)
    value = R.local_sparsity(r, same, edges, p=0.9, eps=1e-6).item()
    assert value == pytest.approx(0.5 ** 0.9, rel=1e-4)
    # chromaticities 0.02 apart: weight exp(-50 * 0.02) = exp(-1)
    k = same.clone()
    k[0, 1] = torch.tensor([1 / 3 + 0.02, 1 / 3, 1 / 3 - 0.0])
    k[0, 1] = k[0, 1] / k[0, 1].sum()
    dist = (k[0, 0] - k[0, 1]).norm().item()
    got = R.local_sparsity(r, k, edges, p=0.9, eps=1e-6).item()
    assert got == pytest.approx(math.exp(-50 * dist) * 0.5 ** 0.9, rel=1e-4)
    # p < 1: one large jump costs less than the same total change spread over two edges
    r3 = torch.tensor([[[0.0, 0, 0], [0.0, 0, 0], [0.6, 0, 0]]])
    r3s = torch.tensor([[[0.0, 0, 0], [0.3, 0, 0], [0.6, 0, 0]]])
    e3 = torch.tensor([[0, 1], [1, 2]])
    k3 = torch.full((1, 3, 3), 1 / 3)
    assert R.local_sparsity(r3, k3, e3).item() < R.local_sparsity(r3s, k3, e3).item()
    # an edge with an invisible end does not count; equal reflectance costs exactly 0
    assert R.local_sparsity(r, same, edges, torch.tensor([[True, False]])).item() == 0.0
    assert R.local_sparsity(torch.ones(1, 2, 3), same, edges).item() == 0.0


def test_global_constancy_hand_worked():
    r = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [5.0, 5, 5]]])  # vertex 2 is not skin
    skin = torch.tensor([0, 1])
    partners = torch.tensor([[1], [0]])
    assert R.global_constancy(r, skin, partners).item() == pytest.approx(1.0)


def test_image_chromaticity():
    image = torch.zeros(1, 4, 4, 3)
    image[..., 0], image[..., 1], image[..., 2] = 0.2, 0.4, 0.2
    k = R.image_chromaticity(image, torch.tensor([[[1.5, 2.5], [0.0, 0.0]]]))
    assert torch.allclose(k, torch.tensor([0.25, 0.5, 0.25]).expand(1, 2, 3))


def test_skin_region_excludes_features(teaching_model_v1):
    m = teaching_model_v1
    skin = R.skin_region(m)
    assert m.face_mask[skin].all()
    assert 0.3 * int(m.face_mask.sum()) < len(skin) < int(m.face_mask.sum())
    for lm in (48, 54, 36, 45, 19):  # mouth corners, eye corners, a brow
        assert int(m.landmarks[lm]) not in set(skin.tolist())
    partners = R.skin_partners(skin, 4, seed=0)
    assert partners.shape == (len(skin), 4)
    assert set(partners.flatten().tolist()) <= set(skin.tolist())
    assert torch.equal(partners, R.skin_partners(skin, 4, seed=0))


def test_mesh_terms(teaching_model_v1):
    t = R.mesh_terms(teaching_model_v1)
    assert t["L"].shape == (teaching_model_v1.num_vertices,) * 2
    assert torch.equal(t["edges"], mesh_edges(teaching_model_v1.faces,
                                              teaching_model_v1.num_vertices))


@pytest.mark.parametrize("bad", [torch.zeros(4, 3), torch.zeros(1, 4, 2)])
def test_validation(bad):
    with pytest.raises(ValueError, match="displacements"):
        R.stabilisation(bad)
    with pytest.raises(ValueError, match="reflectance"):
        R.global_constancy(bad, torch.tensor([0]), torch.tensor([[0]]))


def test_rejects_nan():
    with pytest.raises(ValueError, match="displacements"):
        R.stabilisation(torch.full((1, 2, 3), float("nan")))
