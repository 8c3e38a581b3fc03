"""Tests of facelab.fitting.texture: UV layouts, baking a photo into them, the mirror fill."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import facelab as fl
from facelab.fitting import FitSettings, fit_image
from facelab.fitting.texture import (
    SOURCE_MIRROR,
    SOURCE_MODEL,
    SOURCE_NONE,
    SOURCE_PHOTO,
    _layout_fragments,
    _layout_interpolate,
    _outer_depth,
    bake_texture,
    cylindrical_uv,
    extract_texture,
    mirror_symmetric,
    texture_vertex_colors,
    uv_layout,
)
from facelab.lighting import sh_from_direction
from facelab.model.morphable import MorphableModel
from facelab.progress import History
from facelab.rotations import head_rotation

SIZE = 256  # photo side
TEX = 128  # texture side


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=1)


def _mirror_pairs(model):
    """(i, j): vertex j is vertex i mirrored (x -> -x) in the mean shape."""
    from scipy.spatial import cKDTree

    v = model.mean_shape.double().numpy()
    dist, j = cKDTree(v).query(v * np.array([-1.0, 1.0, 1.0]))
    keep = dist < 1e-3
    return np.nonzero(keep)[0], j[keep]


def _scene(model, yaw: float):
    """A face rendered at ``yaw`` (radians) under a side light: (image, formation, camera)."""
    g = torch.Generator().manual_seed(7)
    camera, trans = fl.default_camera(1, SIZE, SIZE)
    params = fl.FaceParams(id=0.7 * torch.randn(1, 20, generator=g),
                           albedo=0.7 * torch.randn(1, 10, generator=g),
                           rotation=head_rotation(torch.tensor([[0.1, yaw, 0.0]])),
                           translation=trans,
                           gamma=sh_from_direction(torch.tensor([0.4, -0.3, -1.0]), 0.5, 0.6))
    f = fl.form(model, params, camera)
    image, _ = fl.render(f, SIZE, SIZE, background=torch.tensor([0.1, 0.5, 0.9]))
    return image[0].clamp(0, 1), f, camera


def _truth(formation, uv, uv_faces, size):
    """Albedo x shading (the formation's per-vertex colours) over the layout: (Ht, Wt, 3)."""
    depth = _outer_depth(formation.verts[0].double(), formation.faces, uv_faces, len(uv))
    face, bary = _layout_fragments(uv, uv_faces, size, depth)
    covered = face >= 0
    out = torch.zeros(size, size, 3, dtype=torch.float64)
    out[covered] = _layout_interpolate(formation.colors[0].double(), face[covered],
                                       bary[covered], formation.faces)
    return out.float().clamp(0, 1), covered


# ---------------------------------------------------------------------------------- layouts
def test_cylindrical_uv_in_range_and_mirror_symmetric(model):
    uv, uv_faces = cylindrical_uv(model)
    assert uv.shape == (model.num_vertices, 2) and uv_faces.shape == model.faces.shape
    assert uv.dtype == torch.float32 and uv_faces.dtype == torch.int64
    assert float(uv.min()) >= 0.0 and float(uv.max()) <= 1.0
    i, j = _mirror_pairs(model)
    assert len(i) > 0.9 * model.num_vertices
    torch.testing.assert_close(uv[j, 0], 1.0 - uv[i, 0], rtol=0, atol=1e-5)  # (1 - u, v)
    torch.testing.assert_close(uv[j, 1], uv[i, 1], rtol=0, atol=1e-6)
    assert mirror_symmetric(model) and mirror_symmetric(model, uv, uv_faces)
    # a layout that is not mirrored is detected
    assert not mirror_symmetric(model, uv * torch.tensor([0.5, 1.0]), uv_faces)
    assert uv_layout(model)[2] == "cylindrical"


def _sphere_model():
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=3)
    v = torch.as_tensor(s.vertices, dtype=torch.float32) * 80.0
    V = v.shape[0]
    return MorphableModel(name="sphere", mean_shape=v, id_basis=torch.zeros(V, 3, 1),
                          exp_basis=torch.zeros(V, 3, 0), mean_albedo=torch.full((V, 3), 0.5),
                          albedo_basis=torch.zeros(V, 3, 1),
                          faces=torch.as_tensor(s.faces, dtype=torch.int64))


def test_cylindrical_uv_cuts_a_closed_head_at_the_back():
    m = _sphere_model()
    uv, uv_faces = cylindrical_uv(m, margin=0.0)
    assert uv.shape[0] > m.num_vertices  # seam corners duplicated
    assert float(uv.min()) >= 0.0 and float(uv.max()) <= 1.0
    span = uv[uv_faces][..., 0].amax(1) - uv[uv_faces][..., 0].amin(1)  # (F,)
    polar = m.mean_shape[m.faces][..., 1].abs().amax(1) > 0.95 * 80  # around the axis
    assert float(span[~polar].max()) < 0.1  # no triangle stretched across the texture
    front = m.mean_shape[:, 2] > 70  # the front pole area maps to the middle
    assert bool(((uv[: m.num_vertices][front, 0] - 0.5).abs() < 0.1).all())


def test_layout_errors(model):
    with pytest.raises(TypeError, match="model"):
        cylindrical_uv(model.mean_shape)
    with pytest.raises(ValueError, match="margin"):
        cylindrical_uv(model, margin=0.4)
    with pytest.raises(TypeError, match="model"):
        uv_layout("synthetic")


# ----------------------------------------------------------------------------------- baking
def test_bake_matches_albedo_times_shading_where_seen(model):
    image, f, camera = _scene(model, yaw=0.5)
    uv, uv_faces = cylindrical_uv(model)
    out = bake_texture(image, f, camera, uv, uv_faces, size=TEX, prior=f.albedo[0])
    assert out.texture.shape == (TEX, TEX, 3) and out.texture.dtype == torch.float32
    assert out.weight.shape == (TEX, TEX) and out.source.dtype == torch.int8
    assert float(out.weight.min()) >= 0.0 and float(out.weight.max()) <= 1.0
    assert float(out.texture.min()) >= 0.0 and float(out.texture.max()) <= 1.0
    truth, covered = _truth(f, uv, uv_faces, TEX)
    seen = out.weight > 0.5
    assert int(seen.sum()) > 0.3 * int(covered.sum())
    err = (out.texture - truth).abs().amax(-1)[seen]
    assert float(err.mean()) < 0.005 and float(err.quantile(0.99)) < 0.05
    assert not bool((out.weight[~covered] > 0).any())
    assert bool((out.source[~covered] == SOURCE_NONE).all())
    # turned right by 0.5 rad, the head hides one cheek; the layout's other half sees it
    left, right = out.weight[:, : TEX // 2], out.weight[:, TEX // 2:]
    assert abs(float(left.mean()) - float(right.mean())) > 0.05


def test_hidden_side_is_filled_from_the_mirror(model):
    image, f, camera = _scene(model, yaw=0.7)
    uv, uv_faces = cylindrical_uv(model)
    out = bake_texture(image, f, camera, uv, uv_faces, size=TEX, prior=f.albedo[0])
    mirror = torch.flip(out.texture, dims=[1])
    w_m = torch.flip(out.weight, dims=[1])
    hidden = (out.weight == 0) & (w_m >= 0.3) & (out.source != SOURCE_NONE)
    assert int(hidden.sum()) > 200
    assert bool((out.source[hidden] == SOURCE_MIRROR).all())
    torch.testing.assert_close(out.texture[hidden], mirror[hidden], rtol=0, atol=1e-6)
    # and the mirrored colours are the true colours of the other side
    truth, _ = _truth(f, uv, uv_faces, TEX)
    err = (out.texture[hidden] - torch.flip(truth, dims=[1])[hidden]).abs().amax(-1)
    assert float(err.median()) < 0.01
    # without symmetry the same texels come from the prior instead
    plain = bake_texture(image, f, camera, uv, uv_faces, size=TEX, prior=f.albedo[0],
                         symmetric=False)
    assert bool((plain.source[hidden] == SOURCE_MODEL).all())
    assert not plain.symmetric and out.symmetric


def test_unseen_texels_take_the_colour_matched_prior(model):
    image, f, camera = _scene(model, yaw=0.0)
    uv, uv_faces = cylindrical_uv(model)
    dark = (0.5 * image).clamp(0, 1)  # the same face, half as bright
    out = bake_texture(dark, f, camera, uv, uv_faces, size=TEX, prior=f.albedo[0])
    nowhere = out.source == SOURCE_MODEL
    assert int(nowhere.sum()) > 0
    photo = out.source == SOURCE_PHOTO
    # the prior is scaled to the photo's brightness: similar means where each applies
    assert abs(float(out.texture[nowhere].mean()) - float(out.texture[photo].mean())) < 0.15
    # a constant prior stays constant up to the gain
    grey = bake_texture(dark, f, camera, uv, uv_faces, size=TEX, symmetric=False)
    values = grey.texture[(grey.source == SOURCE_MODEL) & (grey.weight == 0)]
    assert float((values - values[0]).abs().max()) < 1e-5


def test_bake_bad_inputs(model):
    image, f, camera = _scene(model, yaw=0.0)
    uv, uv_faces = cylindrical_uv(model)
    with pytest.raises(TypeError, match="formation"):
        bake_texture(image, f.verts, camera, uv, uv_faces)
    with pytest.raises(TypeError, match="camera"):
        bake_texture(image, f, "pinhole", uv, uv_faces)
    with pytest.raises(ValueError, match="uv_faces"):
        bake_texture(image, f, camera, uv, uv_faces[:10])
    with pytest.raises(ValueError, match="uv_faces"):
        bake_texture(image, f, camera, uv, uv_faces + 10**6)
    with pytest.raises(ValueError, match="uv"):
        bake_texture(image, f, camera, uv[:, :1], uv_faces)
    with pytest.raises(ValueError, match="uv"):
        bake_texture(image, f, camera, uv * float("nan"), uv_faces)
    with pytest.raises(ValueError, match="size"):
        bake_texture(image, f, camera, uv, uv_faces, size=4)
    with pytest.raises(ValueError, match="size"):
        bake_texture(image, f, camera, uv, uv_faces, size=10**5)
    with pytest.raises(ValueError, match="prior"):
        bake_texture(image, f, camera, uv, uv_faces, size=TEX, prior=torch.zeros(5, 3))
    with pytest.raises(ValueError, match="full_weight"):
        bake_texture(image, f, camera, uv, uv_faces, full_weight=0.0)
    with pytest.raises(ValueError, match="image"):
        bake_texture(image[..., :2], f, camera, uv, uv_faces)
    two = fl.form(model, fl.FaceParams(rotation=torch.eye(3).expand(2, 3, 3),
                                       translation=torch.tensor([[0.0, 0, 800]] * 2)), camera)
    with pytest.raises(ValueError, match="batch"):
        bake_texture(image, two, camera, uv, uv_faces)


def test_texture_vertex_colors_round_trip(model):
    image, f, camera = _scene(model, yaw=0.0)
    uv, uv_faces = cylindrical_uv(model)
    out = bake_texture(image, f, camera, uv, uv_faces, size=512, prior=f.albedo[0])
    colors = texture_vertex_colors(out.texture, uv, uv_faces, model.faces, model.num_vertices)
    assert colors.shape == (model.num_vertices, 3)
    vis = fl.vertex_visibility(f.screen_verts, model.faces, SIZE, SIZE)[0]
    err = (colors - f.colors[0].clamp(0, 1)).abs().amax(-1)[vis]
    assert float(err.median()) < 0.02
    with pytest.raises(ValueError, match="texture"):
        texture_vertex_colors(out.texture[..., 0], uv, uv_faces, model.faces, model.num_vertices)
    with pytest.raises(ValueError, match="faces"):
        texture_vertex_colors(out.texture, uv, uv_faces, model.faces, 10)


# -------------------------------------------------------------------------------- from a fit
def _textured_model(model, size=64):
    """The teaching model with a UV layout and albedo texture maps (the v2 head's form)."""
    uv, uv_faces = cylindrical_uv(model)
    face, bary = _layout_fragments(uv, uv_faces, size)
    covered = face >= 0

    def bake(per_vertex):  # (V, C) -> (size, size, C)
        out = torch.zeros(size, size, per_vertex.shape[1], dtype=torch.float64)
        out[covered] = _layout_interpolate(per_vertex.double(), face[covered], bary[covered],
                                           model.faces)
        return out.float()

    k = 10
    basis = bake(model.albedo_basis[..., :k].reshape(model.num_vertices, -1))
    return dataclasses.replace(
        model.truncated(n_albedo=k), name="textured", uv=uv, uv_faces=uv_faces,
        albedo_texture=bake(model.mean_albedo), albedo_texture_basis=basis.reshape(size, size,
                                                                                   3, k))


@pytest.mark.parametrize("textured", [False, True])
def test_extract_texture_from_a_fit(model, textured):
    m = _textured_model(model) if textured else model
    image, f, _ = _scene(m, yaw=0.3)
    fit = fit_image(image, m, f.landmarks_2d[0], callback=History(),
                    settings=FitSettings(steps_pose=10, steps_shape=20, steps_color=10,
                                         n_albedo=10))
    out = extract_texture(image, fit, size=None if textured else TEX)
    side = 512 if textured else TEX  # default: max(512, the model map side 64)
    assert out.texture.shape == (side, side, 3) and out.symmetric
    assert uv_layout(m)[2] == ("model" if textured else "cylindrical")
    assert float(out.weight.max()) > 0.9 and float(out.weight.min()) >= 0.0
    counts = {s: int((out.source == s).sum()) for s in (SOURCE_PHOTO, SOURCE_MIRROR)}
    assert counts[SOURCE_PHOTO] > counts[SOURCE_MIRROR] > 0
    truth, _ = _truth(f, out.uv, out.uv_faces, side)  # the fit is close: colours agree
    err = (out.texture - truth).abs().amax(-1)[out.weight > 0.5]
    assert float(err.median()) < 0.05
    from facelab.fitting.views import render_novel_views

    views = render_novel_views(fit, out, yaws=(-45.0, 45.0), size=96)
    assert len(views) == 2 and views[0].shape == (96, 96, 3)
    covered = [(v - views[0][0, 0]).abs().amax(-1) > 1e-3 for v in views]  # not backdrop
    assert all(0.05 < float(c.float().mean()) < 0.9 for c in covered)
    # turned the other way: the silhouette's centre moves sideways
    cols = [float((c.float().sum(0) * torch.arange(96)).sum() / c.float().sum()) for c in covered]
    assert abs(cols[0] - cols[1]) > 5
    with pytest.raises(TypeError, match="texture"):
        render_novel_views(fit, out.texture)
    with pytest.raises(ValueError, match="image"):
        extract_texture(image[:100], fit)
    with pytest.raises(TypeError, match="fit"):
        extract_texture(image, f)
    assert math.isfinite(float(out.texture.sum()))
