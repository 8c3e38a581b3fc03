"""MorphableModel: the container every loader returns (MoFA Eqs. 2-3)."""

import numpy as np
import pytest
import torch

from facelab.model.morphable import MorphableModel


def tiny_model(dtype=torch.float64, kid=4, kexp=3, kalb=2, with_jaw=True):
    g = torch.Generator().manual_seed(0)
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0.5, -1, 0]], dtype=dtype)
    v = verts.shape[0]
    return MorphableModel(
        name="tiny",
        mean_shape=verts,
        id_basis=torch.randn(v, 3, kid, generator=g, dtype=dtype),
        exp_basis=torch.randn(v, 3, kexp, generator=g, dtype=dtype),
        mean_albedo=torch.full((v, 3), 0.5, dtype=dtype),
        albedo_basis=torch.randn(v, 3, kalb, generator=g, dtype=dtype) * 0.1,
        faces=torch.tensor([[0, 1, 2], [1, 3, 2], [0, 4, 1]]),
        landmarks=torch.tensor([0, 3]),
        jaw_joint=torch.tensor([0.5, 0.0, -1.0], dtype=dtype) if with_jaw else None,
        jaw_weights=torch.tensor([0, 0, 0, 0, 1.0], dtype=dtype) if with_jaw else None,
        expressions={"smile": torch.tensor([1.0, 0.0, 0.0], dtype=dtype)[:kexp]},
    )


def test_sizes_and_repr():
    m = tiny_model()
    assert (m.num_vertices, m.num_faces, m.n_id, m.n_exp, m.n_albedo) == (5, 3, 4, 3, 2)
    assert "tiny" in repr(m) and "V=5" in repr(m)
    assert m.face_mask.dtype == torch.bool and m.face_mask.all()


def test_shape_is_affine_in_coefficients():
    m = tiny_model()
    a = torch.randn(2, 4, dtype=torch.float64)
    e = torch.randn(2, 3, dtype=torch.float64)
    v = m.shape(a, e)
    assert v.shape == (2, 5, 3)
    expected = m.mean_shape + torch.einsum("vdk,bk->bvd", m.id_basis, a) + torch.einsum(
        "vdk,bk->bvd", m.exp_basis, e)
    torch.testing.assert_close(v, expected)
    torch.testing.assert_close(m.shape(torch.zeros(1, 4, dtype=torch.float64))[0], m.mean_shape)


def test_leading_modes_only():
    m = tiny_model()
    a = torch.randn(1, 2, dtype=torch.float64)
    full = torch.cat([a, torch.zeros(1, 2, dtype=torch.float64)], 1)
    torch.testing.assert_close(m.shape(a), m.shape(full))


def test_numpy_in_numpy_out_and_dtype_follows_coefficients():
    m = tiny_model(dtype=torch.float32)
    out = m.albedo(np.zeros((3, 2)))
    assert isinstance(out, np.ndarray) and out.shape == (3, 5, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, 0.5)


def test_named_expression():
    m = tiny_model()
    torch.testing.assert_close(m.expression("smile", 2.0), torch.tensor([2.0, 0, 0], dtype=torch.float64))
    with pytest.raises(ValueError, match="name: expected one of \\['smile'\\]"):
        m.expression("frown")


def test_pose_jaw_moves_only_weighted_vertices():
    m = tiny_model()
    v = m.shape(torch.zeros(1, 4, dtype=torch.float64))
    posed = m.pose_jaw(v, torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(posed[:, :4], v[:, :4])
    assert not torch.allclose(posed[:, 4], v[:, 4])
    # a rotation about the joint keeps the distance to the joint
    d0 = (v[0, 4] - m.jaw_joint).norm()
    d1 = (posed[0, 4] - m.jaw_joint).norm()
    torch.testing.assert_close(d0, d1)


def test_pose_jaw_without_joint_is_an_error():
    m = tiny_model(with_jaw=False)
    with pytest.raises(ValueError, match="has no jaw joint"):
        m.pose_jaw(torch.zeros(1, 5, 3), torch.zeros(1, 3))


def test_landmarks_3d():
    m = tiny_model()
    v = m.shape(torch.zeros(2, 4, dtype=torch.float64))
    torch.testing.assert_close(m.landmarks_3d(v), v[:, [0, 3]])


def test_to_and_truncated():
    m = tiny_model().to(dtype=torch.float32)
    assert m.id_basis.dtype == torch.float32 and m.faces.dtype == torch.int64
    t = m.truncated(n_id=2, n_exp=1)
    assert (t.n_id, t.n_exp, t.n_albedo) == (2, 1, 2)
    assert t.expressions["smile"].shape == (1,)
    with pytest.raises(ValueError, match="n_id"):
        m.truncated(n_id=9)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m.shape(torch.zeros(2, 5, dtype=torch.float64)), "id_coeffs: expected \\(B, K\\) with K <= 4"),
        (lambda m: m.shape(torch.zeros(2, 4)[None]), "id_coeffs: expected \\(B, K\\)"),
        (lambda m: m.shape(torch.zeros(2, 4), torch.zeros(3, 3)), "exp_coeffs: expected \\(B, K\\) with B=2"),
        (lambda m: m.shape(torch.full((1, 4), float("nan"))), "id_coeffs: expected finite"),
        (lambda m: m.albedo([[0.0, 0.0]]), "albedo_coeffs: expected a torch.Tensor"),
    ],
)
def test_bad_coefficients(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(tiny_model())


def test_int_coefficients_rejected():
    with pytest.raises(TypeError, match="id_coeffs: expected float32 or float64"):
        tiny_model().shape(torch.zeros(1, 4, dtype=torch.long))


def test_construction_validates_arrays():
    m = tiny_model()
    with pytest.raises(ValueError, match="faces: expected indices in \\[0, 5\\)"):
        MorphableModel("bad", m.mean_shape, m.id_basis, m.exp_basis, m.mean_albedo,
                       m.albedo_basis, torch.tensor([[0, 1, 5]]))
    with pytest.raises(ValueError, match="id_basis: expected \\(V, 3, Kid\\) with V=5"):
        MorphableModel("bad", m.mean_shape, m.id_basis[:4], m.exp_basis, m.mean_albedo,
                       m.albedo_basis, m.faces)
    with pytest.raises(ValueError, match="jaw_joint and jaw_weights"):
        MorphableModel("bad", m.mean_shape, m.id_basis, m.exp_basis, m.mean_albedo,
                       m.albedo_basis, m.faces, jaw_joint=torch.zeros(3))
    nan_mean = m.mean_shape.clone()
    nan_mean[0, 0] = float("nan")
    with pytest.raises(ValueError, match="mean_shape: expected finite"):
        MorphableModel("bad", nan_mean, m.id_basis, m.exp_basis, m.mean_albedo, m.albedo_basis, m.faces)


def test_empty_bases_are_allowed():
    m = tiny_model(kexp=0, kalb=0)
    v = m.shape(torch.zeros(1, 4, dtype=torch.float64), torch.zeros(1, 0, dtype=torch.float64))
    assert v.shape == (1, 5, 3)
    assert m.albedo(torch.zeros(1, 0, dtype=torch.float64)).shape == (1, 5, 3)


def test_digest_tracks_bases_not_dtype():
    import facelab as fl

    m = fl.load_model("synthetic", "teaching", version=1)
    d = m.digest()
    assert len(d) == 16 and d == m.to(dtype=torch.float64).digest()
    assert m.truncated(40, 10).digest() != d
    edited = m.to()
    edited.id_basis = edited.id_basis.clone()
    edited.id_basis[0, 0, 0] += 1e-3
    assert edited.digest() != d


def test_load_model_version_is_checked():
    import facelab as fl

    with pytest.raises(ValueError, match="version"):
        fl.load_model("synthetic", version=99)
    with pytest.raises(TypeError, match="version"):
        fl.load_model("synthetic", version="1")


def _textured(model, ht=8, wt=6):
    import dataclasses

    g = torch.Generator().manual_seed(0)
    k = model.n_albedo
    uv = torch.rand(model.num_vertices, 2, generator=g)
    return dataclasses.replace(
        model, uv=uv, uv_faces=model.faces.clone(),
        albedo_texture=torch.rand(ht, wt, 3, generator=g),
        albedo_texture_basis=torch.randn(ht, wt, 3, k, generator=g) * 0.01,
    )


def test_albedo_map_is_eq3_per_texel_and_truncates():
    import facelab as fl

    m = _textured(fl.load_model("synthetic", "teaching", version=1))
    beta = torch.randn(2, 5)
    maps = m.albedo_map(beta)
    assert maps.shape == (2, 8, 6, 3)
    want = m.albedo_texture + (m.albedo_texture_basis[..., :5] * beta[1]).sum(-1)
    torch.testing.assert_close(maps[1], want)
    t = m.truncated(n_albedo=5)
    assert t.albedo_texture_basis.shape[-1] == 5
    assert t.digest() != m.digest()
    with pytest.raises(ValueError, match="albedo_map"):
        fl.load_model("synthetic", "teaching", version=1).albedo_map(beta)


def test_texture_fields_are_validated():
    import dataclasses

    import facelab as fl

    m = fl.load_model("synthetic", "teaching", version=1)
    with pytest.raises(ValueError, match="uv and uv_faces"):
        dataclasses.replace(m, uv=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="uv_faces"):
        dataclasses.replace(m, uv=torch.zeros(3, 2), uv_faces=torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="albedo_texture"):
        dataclasses.replace(m, albedo_texture=torch.zeros(4, 4, 3),
                            albedo_texture_basis=torch.zeros(4, 4, 3, m.n_albedo))
    with pytest.raises(ValueError, match="albedo_texture_basis"):
        _textured(m).__class__(**{**{f.name: getattr(_textured(m), f.name)
                                      for f in dataclasses.fields(m)},
                                   "albedo_texture_basis": torch.zeros(8, 6, 3, 2)})
