"""Tests for facelab.methods.tddfa.params and .reconstruct (3DDFA_V2 Sec. 2.1, Eqs. 3, 5)."""

import numpy as np
import pytest
import torch

from facelab import cameras
from facelab.methods.tddfa import params as P
from facelab.methods.tddfa import reconstruct as R
from facelab.methods.tddfa.params import pack_params
from facelab.model.morphable import MorphableModel
from facelab.rotations import euler_to_matrix

DTYPES = [torch.float32, torch.float64]


# ------------------------------------------------ shared helpers (also used by other tddfa tests)
def tiny_model(dtype=torch.float64, n_verts: int = 12, seed: int = 0) -> MorphableModel:
    """V vertices, 40 id / 10 exp modes, 68 landmark indices (with repeats), mm scale."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(n_verts, 3, generator=g, dtype=torch.float64) * 50
    return MorphableModel(
        name="tiny",
        mean_shape=mean.to(dtype),
        id_basis=(torch.randn(n_verts, 3, 40, generator=g, dtype=torch.float64) * 2).to(dtype),
        exp_basis=torch.randn(n_verts, 3, 10, generator=g, dtype=torch.float64).to(dtype),
        mean_albedo=torch.full((n_verts, 3), 0.5, dtype=dtype),
        albedo_basis=torch.zeros(n_verts, 3, 1, dtype=dtype),
        faces=torch.tensor([[0, 1, 2], [1, 3, 2]]),
        landmarks=torch.arange(68) % n_verts,
    )


def random_params(batch: int, dtype=torch.float64, seed: int = 0, noise: float = 0.0):
    """(pred, target) raw 62-d vectors; the target's T is an exact scaled rotation."""
    g = torch.Generator().manual_seed(seed)
    R = euler_to_matrix(torch.randn(batch, 3, generator=g, dtype=torch.float64) * 0.6)
    scale = 0.2 + 0.3 * torch.rand(batch, generator=g, dtype=torch.float64)
    t = torch.randn(batch, 3, generator=g, dtype=torch.float64) * 10
    t[:, 2] = 0
    T = torch.cat([scale[:, None, None] * R, t[:, :, None]], dim=-1)  # (B, 3, 4)
    target = pack_params(T, torch.randn(batch, 40, generator=g, dtype=torch.float64),
                         torch.randn(batch, 10, generator=g, dtype=torch.float64))
    pred = target + noise * torch.randn(batch, 62, generator=g, dtype=torch.float64)
    return pred.to(dtype), target.to(dtype)


def test_layout_names_and_sizes():
    lay = P.TDDFA_LAYOUT
    assert lay.size == 62
    assert lay.slices == {"pose": slice(0, 12), "id": slice(12, 52), "exp": slice(52, 62)}
    assert P.ParamLayout(id=5, exp=3).size == 20
    with pytest.raises(ValueError, match="pose"):
        P.ParamLayout(pose=7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_pack_roundtrip(dtype):
    _, p = random_params(3, dtype)
    T, a, e = P.split_params(p)
    assert T.shape == (3, 3, 4) and a.shape == (3, 40) and e.shape == (3, 10)
    assert T.dtype == dtype
    assert float(T[1, 0, 3]) == float(p[1, 3])  # row-major: p[3] is T's x translation
    assert float(T[1, 2, 0]) == float(p[1, 8])
    torch.testing.assert_close(P.pack_params(T, a, e), p, rtol=0, atol=0)
    Tn, _an, _en = P.split_params(p.numpy())
    assert isinstance(Tn, np.ndarray) and Tn.shape == (3, 3, 4)


def test_split_bad_input():
    with pytest.raises(ValueError, match=r"params: expected \(B, 62\), got \(2, 61\)"):
        P.split_params(torch.zeros(2, 61))
    with pytest.raises(TypeError, match="params: expected float32 or float64"):
        P.split_params(torch.zeros(2, 62, dtype=torch.int64))
    with pytest.raises(ValueError, match="params: expected finite"):
        P.split_params(torch.full((2, 62), float("nan")))
    with pytest.raises(ValueError, match="id_coeffs"):
        P.pack_params(torch.zeros(2, 3, 4), torch.zeros(2, 39), torch.zeros(2, 10))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zscore_roundtrip_and_values(dtype):
    corpus = torch.randn(100, 62, dtype=dtype) * 3 + 5
    corpus[:, 11] = 0.0  # T's z translation is constant (3DDFA_V2 fixes it to 0)
    stats = P.fit_param_stats(corpus)
    assert float(stats.std[11]) == 1.0 and float(stats.mean[11]) == 0.0
    z = P.normalize_params(corpus, stats)
    torch.testing.assert_close(z.mean(0), torch.zeros(62, dtype=dtype), atol=1e-5, rtol=0)
    torch.testing.assert_close(z[:, :11].std(0), torch.ones(11, dtype=dtype), atol=1e-5, rtol=0)
    torch.testing.assert_close(P.denormalize_params(z, stats), corpus, atol=1e-4, rtol=1e-5)


def test_zscore_bad_input():
    with pytest.raises(ValueError, match="N >= 2"):
        P.fit_param_stats(torch.zeros(1, 62))
    with pytest.raises(ValueError, match="std: expected all entries > 0"):
        P.ParamStats(torch.zeros(3), torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(TypeError, match="stats: expected a ParamStats"):
        P.normalize_params(torch.zeros(2, 62), {"mean": 0})
    with pytest.raises(ValueError, match="stats: expected statistics of length 62"):
        P.normalize_params(torch.zeros(2, 62), P.ParamStats.identity(20))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reconstruct_dense_matches_camera_and_model(dtype):
    model = tiny_model(dtype)
    _, p = random_params(2, dtype)
    T, a, e = P.split_params(p)
    dense = R.reconstruct_dense(model, p)
    assert dense.shape == (2, 12, 3) and dense.dtype == dtype
    expected = cameras.scaled_orthographic_transform(model.shape(a, e), T)  # Eq. 5
    torch.testing.assert_close(dense, expected)
    torch.testing.assert_close(dense[..., :2], cameras.project_scaled_orthographic(
        model.shape(a, e), T))  # Eq. 3
    torch.testing.assert_close(R.reconstruct_shape(model, p), model.shape(a, e))


def test_reconstruct_golden_identity_pose():
    """T = [I | t] with alpha = 0 returns the mean shape shifted by t."""
    model = tiny_model(torch.float64)
    p = torch.zeros(1, 62, dtype=torch.float64)
    p[0, [0, 5, 10]] = 1.0
    p[0, [3, 7, 11]] = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    out = R.reconstruct_dense(model, p)
    torch.testing.assert_close(out[0], model.mean_shape + torch.tensor([1.0, 2.0, 3.0],
                                                                        dtype=torch.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_equals_dense_gather_and_screen(dtype):
    model = tiny_model(dtype)
    _, p = random_params(3, dtype)
    dense = R.reconstruct_dense(model, p)
    sparse = R.reconstruct_sparse(model, p)
    assert sparse.shape == (3, 68, 3)
    torch.testing.assert_close(sparse, dense[:, model.landmarks])
    lm = R.landmarks_screen(model, p, 64)
    assert lm.shape == (3, 68, 2)
    torch.testing.assert_close(lm[..., 0], dense[:, model.landmarks, 0])
    torch.testing.assert_close(lm[..., 1], 64 - dense[:, model.landmarks, 1])
    # with a landmark embedding (points as affine combinations of vertices), the sparse
    # reconstruction combines basis rows: the embedded points of the dense one
    import dataclasses

    V = model.num_vertices
    idx = torch.stack([model.landmarks, (model.landmarks + 1) % V], 1)  # (68, 2)
    w = torch.tensor([[1.5, -0.5]] * 68, dtype=dtype)
    emb = dataclasses.replace(model, landmark_vertices=idx, landmark_weights=w)
    torch.testing.assert_close(R.reconstruct_sparse(emb, p), emb.landmark_points(dense))
    assert not torch.allclose(R.reconstruct_sparse(emb, p), sparse)
    # same frame as facelab.cameras.screen_from_scaled_orthographic
    T, a, e = P.split_params(p)
    scr = cameras.screen_from_scaled_orthographic(model.shape(a, e), T, 64)
    torch.testing.assert_close(R.image_to_screen(dense, 64), scr)


def test_reconstruct_numpy_and_gradcheck():
    model = tiny_model(torch.float64)
    _, p = random_params(2, torch.float64)
    out = R.reconstruct_dense(model, p.numpy())
    assert isinstance(out, np.ndarray) and out.shape == (2, 12, 3)
    p = p.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: R.reconstruct_dense(model, x), (p,))
    assert torch.autograd.gradcheck(lambda x: R.reconstruct_sparse(model, x), (p,))


def test_reconstruct_bad_input():
    model = tiny_model(torch.float64)
    with pytest.raises(TypeError, match="model: expected a MorphableModel"):
        R.reconstruct_dense("bfm", torch.zeros(1, 62, dtype=torch.float64))
    with pytest.raises(ValueError, match="model: expected at least 40 identity"):
        R.reconstruct_dense(model.truncated(n_id=20), torch.zeros(1, 62, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"params: expected \(B, 62\)"):
        R.reconstruct_dense(model, torch.zeros(62, dtype=torch.float64))
    with pytest.raises(ValueError, match="points: expected"):
        R.image_to_screen(torch.zeros(1, 4, 5), 64)
    with pytest.raises(ValueError, match="height"):
        R.image_to_screen(torch.zeros(1, 4, 3), 0)


def _valid_params(B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    R = euler_to_matrix(0.4 * torch.randn(B, 3, generator=g, dtype=torch.float64))
    f = 0.3 + 0.2 * torch.rand(B, generator=g, dtype=torch.float64)
    t = torch.randn(B, 3, generator=g, dtype=torch.float64) * torch.tensor([5.0, 5.0, 2.0]) + 60
    T = cameras.scaled_orthographic_matrix(f, R, t)
    return pack_params(T, torch.randn(B, 40, generator=g, dtype=torch.float64),
                       torch.randn(B, 10, generator=g, dtype=torch.float64))


def test_params_round_trip_through_face_params_and_camera():
    import facelab as fl

    p = _valid_params()
    face, camera = P.TDDFA_LAYOUT.to_face(p, 120)
    assert isinstance(face, fl.FaceParams) and isinstance(camera, cameras.ScaledOrthographic)
    assert face.id.shape == (3, 40) and face.exp.shape == (3, 10)
    back = P.TDDFA_LAYOUT.from_face(face, camera, 120)
    torch.testing.assert_close(back, p, rtol=0, atol=1e-10)
    # the camera projection of the formed face is 3DDFA's screen_from_scaled_orthographic
    S = R.reconstruct_shape(tiny_model(), p)
    T, _, _ = P.split_params(p)
    want = cameras.screen_from_scaled_orthographic(S, T, 120)
    got = camera.project(cameras.model_to_camera(S, face.rotation, face.translation))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-9)


def test_from_face_validates_and_pads():
    import facelab as fl

    face = fl.FaceParams(id=torch.ones(2, 3, dtype=torch.float64))
    cam = cameras.ScaledOrthographic(torch.tensor([2.0], dtype=torch.float64),
                                     torch.tensor([[10.0, 20.0]], dtype=torch.float64))
    p = P.TDDFA_LAYOUT.from_face(face, cam, 100)  # shared camera (B = 1) expands
    T, a_id, _ = P.split_params(p)
    assert a_id.shape == (2, 40) and float(a_id[:, 3:].abs().sum()) == 0.0
    torch.testing.assert_close(T[0], torch.tensor([[2.0, 0, 0, 10], [0, 2.0, 0, 80],
                                                   [0, 0, 2.0, 0]], dtype=torch.float64))
    with pytest.raises(TypeError, match="ScaledOrthographic"):
        P.TDDFA_LAYOUT.from_face(face, cameras.Pinhole.from_fov(64, 64), 100)
    with pytest.raises(TypeError, match="FaceParams"):
        P.TDDFA_LAYOUT.from_face(p, cam, 100)
