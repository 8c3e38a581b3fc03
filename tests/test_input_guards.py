"""Inputs that used to give silent garbage now give a clear error or a correct result."""

from __future__ import annotations

import dataclasses
import resource

import numpy as np
import pytest
import torch
from PIL import Image

import facelab as fl
from facelab.export import load_obj
from facelab.image_io import read_image
from facelab.raster import MAX_RASTER_PIXELS, interpolate, rasterize

TRI = torch.tensor([[[0.0, 0, 1], [10, 0, 1], [0, 10, 1]]])  # (1, 3, 3) screen vertices
FACE = torch.tensor([[0, 1, 2]])


def test_16_bit_png_is_scaled_not_saturated(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.shape == (64, 64, 3)
    np.testing.assert_allclose(img[..., 0].numpy(), ramp / 65535.0, atol=1e-6)
    assert float((img >= 0.999).float().mean()) < 0.01  # was 89 % at 1.0


def test_unreadable_or_huge_images_are_refused_clearly(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ValueError, match="cannot be read as an image"):
        read_image(tmp_path / "x.png")
    Image.new("L", (9000, 40)).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match="<= 8192 pixels"):
        read_image(tmp_path / "wide.png")


@pytest.mark.parametrize("focal", [0.0, -300.0, float("nan")])
def test_focal_must_be_positive_for_every_perspective_caller(focal):
    verts = torch.tensor([[[0.0, 0.0, 500.0], [10.0, 5.0, 480.0]]])
    principal = torch.tensor([[64.0, 64.0]])
    for fn in (fl.cameras.project_perspective, fl.cameras.screen_from_camera):
        with pytest.raises(ValueError, match="focal"):
            fn(verts, torch.tensor([focal]), principal)
    with pytest.raises(ValueError, match="focal"):
        fl.cameras.project_perspective(verts, torch.tensor([[300.0, focal]]), principal)


def test_pinhole_camera_refuses_non_positive_focal():
    camera, _ = fl.default_camera(1, 32, 32)
    for bad in (-camera.focal, torch.zeros_like(camera.focal)):
        with pytest.raises(ValueError, match="focal"):
            fl.cameras.Pinhole(bad, camera.principal)


def test_perspective_raster_needs_near_at_least_zero_and_stays_finite():
    with pytest.raises(ValueError, match="near: expected a number >= 0"):
        rasterize(TRI, FACE, 8, 8, perspective_correct=True, near=-1.0)
    for z0 in (0.0, 1e-39, 1e-30, 1e-12):
        v = TRI.clone()
        v[0, 0, 2] = z0
        frags = rasterize(v, FACE, 8, 8, perspective_correct=True)
        assert torch.isfinite(frags.bary).all() and torch.isfinite(frags.depth).all()
    rasterize(TRI, FACE, 8, 8, perspective_correct=False, near=-1.0)  # fine without 1/z


def test_far_vertices_are_refused_not_dropped():
    v = TRI.clone()
    v[0, 0, 0] = -3e38
    with pytest.raises(ValueError, match=r"\|coordinates\| <= 1e\+12"):
        rasterize(v, FACE, 8, 8)
    v[0, 0, 0] = -1e9  # huge but within the limit: the triangle still covers the image
    assert (rasterize(v, FACE, 8, 8).face_index == 0).any()


def test_raster_size_limit_is_up_front():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with pytest.raises(ValueError, match="MAX_RASTER_PIXELS"):
        rasterize(TRI, FACE, 20000, 20000)  # used to allocate 5 GB before MemoryError
    with pytest.raises(ValueError, match="MAX_RASTER_PIXELS"):
        fl.vertex_visibility(TRI.expand(2, -1, -1), FACE, 8192, 8192)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown < 500 * 1024  # refused before allocating the raster
    assert MAX_RASTER_PIXELS == 8192 * 8192


def test_interpolate_refuses_nan_barycentrics_and_degenerate_positions():
    frags = rasterize(TRI, FACE, 8, 8)
    attrs = torch.rand(1, 3, 2)
    bad = dataclasses.replace(frags, bary=frags.bary * float("nan")) \
        if dataclasses.is_dataclass(frags) else frags._replace(bary=frags.bary * float("nan"))
    with pytest.raises(ValueError, match="fragments.bary: expected finite"):
        interpolate(attrs, bad, FACE)
    flat = TRI.clone()
    flat[0, 2] = flat[0, 1]  # zero-area triangle in the positions given for gradients
    with pytest.raises(ValueError, match="degenerate"):
        interpolate(attrs, frags, FACE, screen_verts=flat)
    out = interpolate(attrs, frags, FACE, screen_verts=TRI)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("scale", [1e12, 1e20, 1e30, 3e37])
def test_vertex_normals_are_scale_safe(scale):
    verts = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.5]]])
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    want = fl.vertex_normals(verts, faces)
    got = fl.vertex_normals(verts * scale, faces)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    v64 = (verts.double() * scale).requires_grad_()
    fl.vertex_normals(v64, faces).sum().backward()
    assert torch.isfinite(v64.grad).all()


def test_meta_tensors_are_refused_at_the_boundary():
    meta = torch.empty(1, 3, 3, device="meta")
    with pytest.raises(TypeError, match="device 'meta'"):
        rasterize(meta, FACE, 8, 8)
    with pytest.raises(TypeError, match="device 'meta'"):
        fl.vertex_normals(meta, FACE)


def test_load_obj_refuses_nan_images_and_empty_files(tmp_path):
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="NaN"):
        load_obj(tmp_path / "nan.obj")
    Image.new("RGB", (8, 8)).save(tmp_path / "img.obj", format="PNG")
    with pytest.raises(ValueError, match="not a text OBJ file"):
        load_obj(tmp_path / "img.obj")
    (tmp_path / "empty.obj").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no 'v x y z' lines"):
        load_obj(tmp_path / "empty.obj")
    (tmp_path / "bad.obj").write_text("v 0 0 zero\n")
    with pytest.raises(ValueError, match="line 1"):
        load_obj(tmp_path / "bad.obj")


def test_video_frames_are_bounded(tmp_path, monkeypatch):
    iio = pytest.importorskip("imageio.v3")
    import facelab.image_io as fio

    frames = (np.random.default_rng(0).random((6, 40, 40, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "c.gif", frames, duration=100, loop=0)
    monkeypatch.setattr(fio, "MAX_VIDEO_PIXELS", 4 * 40 * 40)
    with pytest.raises(ValueError, match="MAX_VIDEO_PIXELS"):
        fio.read_video(tmp_path / "c.gif")
    assert fio.read_video(tmp_path / "c.gif", max_frames=4).shape[0] == 4
