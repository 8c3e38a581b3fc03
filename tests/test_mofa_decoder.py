"""MoFA decoder (Sec. 5, Eq. 5) and loss (Sec. 6, Eqs. 7-10): values, shapes, errors, gradcheck."""

import math

import numpy as np
import pytest
import torch
from fixtures_models import dome_mesh

import facelab as fl
from facelab.methods.mofa.decoder import (
    AMBIENT_OFFSET,
    decode,
    mean_face_code,
    render_layers,
    visible_vertices,
)
from facelab.methods.mofa.layout import MOFA_LAYOUT, CodeLayout
from facelab.methods.mofa.loss import MofaLossConfig, mofa_loss

H = W = 32


def tiny_model(dtype=torch.float64):
    """A 72-vertex dome with 2 identity / 2 expression / 2 albedo modes and 68 landmarks."""
    verts, faces = dome_mesh(scale_mm=60.0)
    rng = np.random.default_rng(0)
    V = verts.shape[0]
    return fl.MorphableModel(
        name="tiny", mean_shape=verts, id_basis=rng.normal(0, 2.0, (V, 3, 2)),
        exp_basis=rng.normal(0, 1.0, (V, 3, 2)), mean_albedo=rng.uniform(0.3, 0.7, (V, 3)),
        albedo_basis=rng.normal(0, 0.05, (V, 3, 2)), faces=faces,
        landmarks=rng.integers(0, V, 68),
    ).to(dtype=dtype)


def camera(B, dtype=torch.float64):
    focal, principal = fl.cameras.intrinsics_from_fov(16.0, H, W, dtype=dtype)
    return focal.expand(B, 2).contiguous(), principal.expand(B, 2).contiguous()


def random_code(layout, B, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    code = mean_face_code(layout, B, distance=800.0, dtype=dtype)
    noise = layout.join(id=torch.randn(B, layout.id, generator=g, dtype=dtype),
                        exp=torch.randn(B, layout.exp, generator=g, dtype=dtype),
                        albedo=torch.randn(B, layout.albedo, generator=g, dtype=dtype),
                        rotation=0.2 * torch.randn(B, 3, generator=g, dtype=dtype),
                        translation=torch.randn(B, 3, generator=g, dtype=dtype) * 5,
                        sh=0.1 * torch.randn(B, 27, generator=g, dtype=dtype))
    return code + noise


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_decode_shapes_and_mean_face_values(dtype):
    m = tiny_model(dtype)
    lay = CodeLayout.for_model(m)
    code = mean_face_code(lay, 2, distance=800.0, dtype=dtype)
    f, p = camera(2, dtype)
    d = decode(code, m, f, p)
    assert isinstance(d, fl.Formation)
    for t in (d.verts, d.verts_cam, d.screen_verts, d.normals, d.albedo, d.colors):
        assert t.shape == (2, 72, 3) and t.dtype == dtype
    # zero code: the mean face, frontal, centred 800 mm in front of the camera
    assert torch.allclose(d.verts[0], m.mean_shape, atol=1e-5)
    assert torch.allclose(d.verts_cam[0, :, 2], 800.0 - m.mean_shape[:, 2], atol=1e-4)
    assert torch.allclose(d.screen_verts[0, :, 1], p[0, 1] - f[0, 1] * m.mean_shape[:, 1]
                          / d.verts_cam[0, :, 2], atol=1e-3)  # y up -> v down (flip F)
    # ambient light 0.7 on gamma_0: irradiance 0.7 * pi * c0 * (1 / 1) -> 0.7 * sqrt(pi)/2
    expected = m.mean_albedo * AMBIENT_OFFSET * math.pi * 0.5 / math.sqrt(math.pi)
    assert torch.allclose(d.colors[0], expected.to(dtype), atol=1e-5)
    # colours agree with the torch reference shading (Eq. 4)
    ref = fl.sh_shade(d.albedo, d.normals, MOFA_LAYOUT.split(
        torch.cat([torch.zeros(2, 224, dtype=dtype), code[:, -33:]], 1)).gamma)
    assert torch.allclose(d.colors, ref, atol=1e-5)


def test_decode_rotation_and_translation_blocks():
    m = tiny_model()
    lay = CodeLayout.for_model(m)
    f, p = camera(1)
    base = mean_face_code(lay, 1, distance=800.0, dtype=torch.float64)
    yaw = base + lay.join(rotation=torch.tensor([[0.0, 0.3, 0.0]], dtype=torch.float64))
    d0, d1 = decode(base, m, f, p), decode(yaw, m, f, p)
    R = fl.rotations.euler_to_matrix(torch.tensor([[0.0, 0.3, 0.0]], dtype=torch.float64))
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
    t = torch.tensor([0.0, 0.0, 800.0], dtype=torch.float64)
    assert torch.allclose(d1.verts, d0.verts)  # the head pose does not change the shape
    assert torch.allclose(d1.verts_cam, (d0.verts @ R.transpose(-1, -2)) * flip + t)
    shift = base + lay.join(translation=torch.tensor([[10.0, 0.0, 0.0]], dtype=torch.float64))
    d2 = decode(shift, m, f, p)
    assert torch.allclose(d2.verts_cam[..., 0], d0.verts_cam[..., 0] + 10.0)
    assert bool((d2.screen_verts[..., 0] > d0.screen_verts[..., 0]).all())  # x right


def test_decode_is_the_layout_adapter_on_form():
    m = tiny_model()
    lay = CodeLayout.for_model(m)
    code = random_code(lay, 2)
    f, p = camera(2)
    ref = fl.form(m, lay.to_face(code), fl.cameras.Pinhole(f, p))
    d = decode(code, m, f, p)
    for name in ("verts", "verts_cam", "screen_verts", "normals", "albedo", "colors"):
        assert torch.equal(getattr(d, name), getattr(ref, name)), name
    layers = render_layers(d, H, W)
    assert set(layers) == {"image", "geometry", "reflectance", "illumination"}
    assert all(v.shape == (2, H, W, 3) for v in layers.values())


def test_visible_vertices_modes():
    m = tiny_model()
    lay = CodeLayout.for_model(m)
    f, p = camera(1)
    d = decode(mean_face_code(lay, 1, distance=800.0, dtype=torch.float64), m, f, p)
    ff = visible_vertices(d, m, H, W)
    assert ff.dtype == torch.bool and ff.shape == (1, 72) and bool(ff.all())
    away = decode(mean_face_code(lay, 1, distance=800.0, dtype=torch.float64) + lay.join(
        rotation=torch.tensor([[0.0, math.pi, 0.0]], dtype=torch.float64)), m, f, p)
    assert not bool(visible_vertices(away, m, H, W).any())  # back of the dome
    assert visible_vertices(d, m, H, W, mode="raster").shape == (1, 72)
    with pytest.raises(ValueError, match="mode"):
        visible_vertices(d, m, H, W, mode="zbuffer")


def test_decode_bad_inputs():
    m = tiny_model()
    f, p = camera(2)
    with pytest.raises(ValueError, match=r"code: expected \(B, D\)"):
        decode(torch.zeros(2, 50, dtype=torch.float64), m, f, p)
    with pytest.raises(ValueError, match="layout"):
        decode(torch.zeros(2, 257, dtype=torch.float64), m, f, p, layout=MOFA_LAYOUT)
    lay = CodeLayout.for_model(m)
    bad = mean_face_code(lay, 2, dtype=torch.float64)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        decode(bad, m, f, p)
    with pytest.raises(TypeError, match="code: expected float"):
        decode(torch.zeros(2, lay.size, dtype=torch.int64), m, f, p)


def test_decode_gradcheck():
    m = tiny_model()
    lay = CodeLayout.for_model(m)
    f, p = camera(1)
    code = random_code(lay, 1).requires_grad_(True)

    def fn(c):
        d = decode(c, m, f, p)
        return d.screen_verts[..., :2], d.colors, d.normals

    assert torch.autograd.gradcheck(fn, (code,), eps=1e-6, atol=1e-5)


def test_loss_gradcheck_through_compiled_photometric():
    m = tiny_model()
    lay = CodeLayout.for_model(m)
    f, p = camera(1)
    code = random_code(lay, 1, seed=1).requires_grad_(True)
    image = torch.rand(1, H, W, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    lms = decode(code.detach(), m, f, p).screen_verts[:, m.landmarks, :2] + 1.5
    cfg = MofaLossConfig(land=1.0, reg=0.1, landmarks="all")

    def fn(c):
        d = decode(c, m, f, p)
        return mofa_loss(d, lay.split(c), image, m, config=cfg, landmarks=lms)["total"]

    assert torch.autograd.gradcheck(fn, (code,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loss_values(dtype):
    m = tiny_model(dtype)
    lay = CodeLayout.for_model(m)
    f, p = camera(2, dtype)
    code = random_code(lay, 2, dtype=dtype)
    d = decode(code, m, f, p)
    img, _ = fl.render(d, H, W)
    lms = d.screen_verts[:, m.landmarks, :2]
    out = mofa_loss(d, lay.split(code), img, m, landmarks=lms, config=MofaLossConfig(land=1.0))
    assert set(out) == {"total", "photo", "land", "reg", "sil", "pose"}
    assert float(out["sil"]) == 0.0 and float(out["pose"]) == 0.0  # additions off by default
    assert float(out["land"]) == pytest.approx(0.0, abs=1e-6)
    parts = lay.split(code)
    reg = ((parts.id**2).sum(1) + 1.7e-3 * (parts.albedo**2).sum(1)
           + 0.8 * (parts.exp**2).sum(1)).mean()  # Eq. 10
    assert float(out["reg"]) == pytest.approx(float(reg), rel=1e-5)
    assert float(out["total"]) == pytest.approx(1.92 * float(out["photo"]) + 2.9e-5 * float(reg),
                                                rel=1e-4)
    shifted = mofa_loss(d, parts, img, m, landmarks=lms + 1.0, config=MofaLossConfig(land=1.0))
    assert float(shifted["land"]) == pytest.approx(51 * 2.0, rel=1e-5)  # 51 inner points, Eq. 9
    off = mofa_loss(d, parts, img, m)  # default: unsupervised, no landmarks needed
    assert float(off["land"]) == 0.0
    darker = mofa_loss(d, parts, img * 0.5, m)
    assert float(darker["photo"]) > float(off["photo"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loss_photo_term_is_the_unfused_chain(dtype):
    """E_photo (shading and loss fused) equals photometric_loss on decoded.colors, in value and
    in the gradient with respect to the code."""
    m = tiny_model(dtype)
    lay = CodeLayout.for_model(m)
    f, p = camera(2, dtype)
    image = torch.rand(2, H, W, 3, dtype=dtype, generator=torch.Generator().manual_seed(4))
    fused_code = random_code(lay, 2, dtype=dtype, seed=3).requires_grad_(True)
    chain_code = fused_code.detach().clone().requires_grad_(True)
    d = decode(fused_code, m, f, p)
    fused = mofa_loss(d, lay.split(fused_code), image, m)["photo"]
    d2 = decode(chain_code, m, f, p)
    vis = visible_vertices(d2, m, H, W, mode=MofaLossConfig().visibility)
    chain = fl.losses.photometric_loss(image, d2.screen_verts[..., :2], d2.colors, vis)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fused, chain, **tol)
    fused.backward()
    chain.backward()
    torch.testing.assert_close(fused_code.grad, chain_code.grad, **tol)


def test_loss_bad_inputs():
    m = tiny_model()
    lay = CodeLayout.for_model(m)
    f, p = camera(2)
    code = random_code(lay, 2)
    d = decode(code, m, f, p)
    img = torch.zeros(2, H, W, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="landmarks: expected"):
        mofa_loss(d, lay.split(code), img, m, config=MofaLossConfig(land=1.0))
    with pytest.raises(ValueError, match=r"image: expected \(B, H, W, 3\)"):
        mofa_loss(d, lay.split(code), img[..., :2], m)
    with pytest.raises(ValueError, match="photo: expected a number >= 0"):
        MofaLossConfig(photo=-1.0)
    with pytest.raises(ValueError, match="visibility"):
        MofaLossConfig(visibility="all")
    with pytest.raises(TypeError, match="config"):
        mofa_loss(d, lay.split(code), img, m, config={"photo": 1.0})
    assert MofaLossConfig() == MofaLossConfig(photo=1.92, reg=2.9e-5, land=0.0, albedo=1.7e-3,
                                              exp=0.8)
