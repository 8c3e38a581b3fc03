"""Textured rendering through the one chain: form() carries the UV layout, the irradiance and
the albedo maps; render() paints the texture (own maps, an explicit texture, or per-vertex
colours), with anti-aliasing and backgrounds; gradients to texture, lighting and geometry."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fixtures_texture import quadrant_texture, setup, textured_teaching_model

import facelab as fl
from facelab.formation import AlbedoMaps

SIZE = 64


@pytest.fixture(scope="module")
def model():
    return textured_teaching_model(256)


@pytest.fixture(scope="module")
def plain():
    return fl.load_model("synthetic", "teaching", version=1)


def test_formation_carries_texturing_only_for_models_with_uvs(model, plain):
    p, camera = setup(model)
    f = fl.form(model, p, camera)
    assert f.uv is model.uv and torch.equal(f.uv_faces, model.uv_faces)
    assert f.irradiance.shape == (2, model.num_vertices, 3)
    torch.testing.assert_close(f.colors, f.albedo * f.irradiance, rtol=1e-5, atol=1e-6)
    assert isinstance(f.albedo_maps, AlbedoMaps) and f.albedo_maps.shape == (2, 256, 256, 3)
    torch.testing.assert_close(f.albedo_texture, model.albedo_map(p.albedo))
    assert f.albedo_texture is f.albedo_texture  # formed once
    g = fl.form(plain, p, camera)
    assert g.uv is g.uv_faces is g.irradiance is g.albedo_maps is g.albedo_texture is None
    bare = fl.form(model, p, camera, shade=False)
    assert bare.irradiance is None and bare.albedo_maps is not None
    with pytest.raises(ValueError, match="texture: the formation was formed with shade=False"):
        fl.render(bare, SIZE, SIZE)


@pytest.mark.parametrize("antialias", [1, 3])
def test_textured_render_of_the_baked_albedo_matches_the_per_vertex_render(model, antialias):
    """The maps were baked from the per-vertex albedo, so T(uv(p)) ~ interpolated albedo and
    the textured image ~ the per-vertex one (interpolating albedo x irradiance vs albedo times
    interpolated irradiance, and the bilinear lookup of a piecewise-linear map, differ a
    little)."""
    p, camera = setup(model, batch=2, dtype=torch.float64)
    f = fl.form(model, p, camera)
    tex, mask = fl.render(f, SIZE, SIZE, antialias=antialias)
    vert, vmask = fl.render(f, SIZE, SIZE, antialias=antialias, texture=False)
    assert torch.equal(mask, vmask) and mask.sum() > 0.2 * mask.numel()
    diff = (tex - vert).abs().amax(-1)[mask]
    assert float(diff.mean()) < 0.002  # measured 5e-4 (antialias 1 and 3)
    assert float(diff.quantile(0.99)) < 0.02  # measured 0.011 / 0.008
    assert not torch.equal(tex, vert)  # the texture path really ran


def test_per_vertex_path_is_unchanged_for_textured_models(model):
    p, camera = setup(model)
    f = fl.form(model, p, camera)
    bg = torch.tensor([0.2, 0.3, 0.4])
    image, mask = fl.render(f, SIZE, SIZE, background=bg, texture=False)
    want, want_mask = fl.render_mesh(f.screen_verts, model.faces, f.colors, SIZE, SIZE,
                                     background=bg, perspective_correct=True)
    assert torch.equal(image, want) and torch.equal(mask, want_mask)
    colors = torch.rand_like(f.colors)
    image, _ = fl.render(f, SIZE, SIZE, colors=colors)  # explicit colours are never textured
    assert torch.equal(image, fl.render_mesh(f.screen_verts, model.faces, colors, SIZE, SIZE,
                                             perspective_correct=True)[0])


def test_quadrant_texture_orientation_v_up_u_right(model):
    """Row 0 of a texture is its top (v = 1): the red/green half lands on the forehead (top
    of the image, y down), blue/white on the chin; u grows to the right of the image."""
    p, camera = setup(model, batch=1, yaw=0.0, ambient=True)
    p = p.replace(id=torch.zeros_like(p.id), exp=torch.zeros_like(p.exp))
    f = fl.form(model, p, camera)
    image, mask = fl.render(f, SIZE, SIZE, texture=quadrant_texture())
    rows, cols = torch.nonzero(mask[0], as_tuple=True)
    top, bottom = rows.min().item(), rows.max().item()
    left, right = cols.min().item(), cols.max().item()
    q = lambda r0, r1, c0, c1: image[0, r0:r1, c0:c1][mask[0, r0:r1, c0:c1]].mean(0)  # noqa: E731
    h, w = (bottom - top) // 4, (right - left) // 4
    tl = q(top + h // 2, top + 2 * h - 2, left + w, left + 2 * w - 2)
    tr = q(top + h // 2, top + 2 * h - 2, right - 2 * w + 2, right - w)
    bl = q(bottom - 2 * h + 2, bottom - h // 2, left + w, left + 2 * w - 2)
    br = q(bottom - 2 * h + 2, bottom - h // 2, right - 2 * w + 2, right - w)
    assert tl.argmax() == 0 and tl[0] > 2 * tl[1:].max()  # red, top left
    assert tr.argmax() == 1 and tr[1] > 2 * tr[[0, 2]].max()  # green, top right
    assert bl.argmax() == 2 and bl[2] > 2 * bl[:2].max()  # blue, bottom left
    assert br.min() > 0.6  # white, bottom right


def test_seams_uv_faces_index_their_own_table(model):
    """A UV layout with seams (Vt > V): the same coordinates reached through another index
    table render the same image."""
    V = model.num_vertices
    half = model.faces.shape[0] // 2
    uv_faces = model.faces.clone()
    uv_faces[half:] += V  # the second half of the triangles reads a copy of the table
    seamed = dataclasses.replace(model, uv=torch.cat([model.uv, model.uv]), uv_faces=uv_faces)
    p, camera = setup(model, batch=1, dtype=torch.float64)
    a, _ = fl.render(fl.form(model, p, camera), SIZE, SIZE)
    b, _ = fl.render(fl.form(seamed, p, camera), SIZE, SIZE)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_explicit_texture_background_and_antialias(model, plain):
    p, camera = setup(model, batch=2)
    f = fl.form(model, p, camera)
    grey = torch.full((1, 8, 8, 3), 0.5)
    bg = torch.rand(2, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(3))
    image, mask = fl.render(f, SIZE, SIZE, texture=grey, background=bg, antialias=2)
    # a constant texture is the irradiance times that constant
    flat, _ = fl.render(f, SIZE, SIZE, colors=0.5 * f.irradiance, background=bg, antialias=2)
    torch.testing.assert_close(image, flat, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(image[~mask], bg[~mask])
    # (B, ...) textures, float64 textures on a float32 formation, NumPy textures
    per_image = torch.stack([torch.full((8, 8, 3), 0.5), torch.full((8, 8, 3), 0.25)])
    two, _ = fl.render(f, SIZE, SIZE, texture=per_image.double().numpy())
    assert two.dtype == torch.float32
    torch.testing.assert_close(two[1][mask[1] & two[1].gt(0).all(-1)] * 2,
                               fl.render(f, SIZE, SIZE, texture=grey)[0][1][
                                   mask[1] & two[1].gt(0).all(-1)], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no UV layout"):
        fl.render(fl.form(plain, p, camera), SIZE, SIZE, texture=grey)
    with pytest.raises(ValueError, match="colors, texture: give"):
        fl.render(f, SIZE, SIZE, texture=grey, colors=f.colors)
    with pytest.raises(TypeError, match="texture: expected None, False or"):
        fl.render(f, SIZE, SIZE, texture=True)
    with pytest.raises(ValueError, match=r"texture: expected \(N, Ht, Wt, 3\)"):
        fl.render(f, SIZE, SIZE, texture=torch.zeros(8, 8, 3))
    with pytest.raises(ValueError, match="texture: expected \\(B, Ht, Wt, 3\\) with B=1 or 2"):
        fl.render(f, SIZE, SIZE, texture=torch.zeros(3, 8, 8, 3))
    nan = grey.clone()
    nan[0, 1, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="texture: expected finite values"):
        fl.render(f, SIZE, SIZE, texture=nan)


def test_albedo_offsets_are_added_to_the_texture(model):
    p, camera = setup(model, batch=1, dtype=torch.float64)
    off = torch.zeros(1, model.num_vertices, 3, dtype=torch.float64)
    off[..., 0] = 0.1
    f0 = fl.form(model, p, camera)
    f1 = fl.form(model, p.replace(albedo_offsets=off), camera)
    a, mask = fl.render(f0, SIZE, SIZE)
    b, _ = fl.render(f1, SIZE, SIZE)
    irr, _ = fl.render(f0, SIZE, SIZE, colors=f0.irradiance)
    torch.testing.assert_close((b - a)[..., 0][mask], 0.1 * irr[..., 0][mask])
    torch.testing.assert_close(b[..., 1:], a[..., 1:])


def test_textured_render_is_differentiable_in_albedo_light_and_geometry(model):
    p, camera = setup(model, batch=1, dtype=torch.float64)
    leaves = {k: getattr(p, k).clone().requires_grad_() for k in ("albedo", "gamma", "id")}
    image, _ = fl.render(fl.form(model, p.replace(**leaves), camera), SIZE, SIZE, antialias=2)
    (image * torch.linspace(0, 1, SIZE, dtype=torch.float64)[:, None, None]).sum().backward()
    for name, leaf in leaves.items():
        assert torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0, name


def _tiny_formation(dtype=torch.float64, perspective=False):
    """Two triangles (a quad) on a 10 x 10 image, UVs over part of a 5 x 4 texture."""
    screen = torch.tensor([[[1.3, 1.2, 2.0], [8.65, 1.7, 2.5], [8.2, 8.9, 3.0],
                            [1.1, 8.4, 2.2]]], dtype=dtype)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uv = torch.tensor([[0.07, 0.93], [0.88, 0.81], [0.79, 0.11], [0.13, 0.17]], dtype=dtype)
    normals = torch.nn.functional.normalize(torch.tensor(
        [[[0.1, -0.2, -1.0], [0.3, 0.1, -1.0], [-0.2, 0.2, -1.0], [0.0, 0.3, -1.0]]],
        dtype=dtype), dim=-1)
    irr = torch.tensor([[[0.9, 0.8, 0.7], [0.5, 0.6, 0.7], [1.1, 0.9, 1.0], [0.7, 0.7, 0.8]]],
                       dtype=dtype)
    return fl.Formation(screen, screen, screen, normals, None, None, screen[:, :0, :2], faces,
                        perspective, uv, faces, irr, None)


@pytest.mark.parametrize("perspective", [False, True])
def test_gradcheck_render_wrt_texture_irradiance_and_positions(perspective):
    f = _tiny_formation(perspective=perspective)
    tex = torch.rand(1, 4, 5, 3, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(0)).requires_grad_()
    irr = f.irradiance.clone().requires_grad_()
    xy = f.screen_verts[..., :2].clone().requires_grad_()

    def fn(t, s, q):
        screen = torch.cat([q, f.screen_verts[..., 2:]], -1)
        return fl.render(f._replace(screen_verts=screen, irradiance=s), 10, 10, texture=t)[0]

    assert torch.autograd.gradcheck(fn, (tex, irr, xy), eps=1e-7, atol=1e-6)


def test_render_preview_and_corpus_are_textured(model, plain):
    img = fl.render_preview(model, size=48)
    with torch.no_grad():
        camera, t = fl.default_camera(1, 48, 48)
        from facelab.lighting import sh_from_direction
        from facelab.rotations import head_rotation

        p = fl.FaceParams(rotation=head_rotation(torch.zeros(1, 3)), translation=t,
                          gamma=sh_from_direction(torch.tensor([0.3, -0.3, -1.0]), 0.5, 0.6),
                          dtype=torch.float32)
        f = fl.form(model, p, camera)
        want, _ = fl.render(f, 48, 48, background=torch.ones(3), antialias=3)
        vert, _ = fl.render(f, 48, 48, background=torch.ones(3), antialias=3, texture=False)
    assert torch.equal(img, want[0]) and not torch.equal(img, vert[0])
    from facelab.data import SyntheticFaces

    textured = SyntheticFaces(model, size=32, length=2, seed=0).batch(0, 2)
    per_vertex = SyntheticFaces(plain, size=32, length=2, seed=0).batch(0, 2)  # same draws
    assert torch.equal(textured["mask"], per_vertex["mask"]) and textured["mask"].any()
    diff = (textured["image"] - per_vertex["image"]).abs()[textured["mask"]]
    assert 0 < float(diff.mean()) < 0.01  # the baked texture: textured, and close
