"""Tests of ``facelab fit`` / ``facelab fit-video`` (facelab.fit_cli): every promised file."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from facelab.data.photos import sample_landmarks, sample_photo
from facelab.export import load_obj
from facelab.fit_cli import (
    add_fit_parser,
    add_fit_video_parser,
    fit_main,
    fit_video_main,
    run_fit,
)
from facelab.image_io import read_image, read_video, to_uint8


def test_fit_sample_writes_everything(tmp_path, capsys):
    import trimesh

    from facelab.fit_cli import fit_outputs

    out = tmp_path / "out"
    assert fit_main(["--sample", "astronaut", "-o", str(out), "--quiet"]) == 0
    for path in fit_outputs(out, "astronaut"):
        assert path.is_file() and path.stat().st_size > 0, path.name
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in fit_outputs(out, "astronaut"))
    photo = sample_photo("astronaut").numpy()
    with Image.open(out / "astronaut_overlay.png") as im:
        assert im.size == (512, 512)  # photo-sized: lines up with the photo
        overlay = np.asarray(im.convert("RGB"), dtype=np.float64) / 255
    box = slice(100, 160), slice(190, 260)  # on the face: grey mesh blended in
    assert np.abs(overlay[box] - photo[box]).mean() > 0.02
    np.testing.assert_allclose(overlay[400:, :50], photo[400:, :50], atol=1 / 255 + 1e-6)
    lm = sample_landmarks("astronaut", as_numpy=True)
    red = (overlay[..., 0] > 0.9) & (overlay[..., 1] < 0.35) & (overlay[..., 2] < 0.35)
    green = (overlay[..., 1] > 0.85) & (overlay[..., 0] < 0.3)
    assert red.sum() > 68 and green.sum() > 68  # both sets of landmarks drawn
    x0, y0 = lm.min(0) - 10
    x1, y1 = lm.max(0) + 10
    assert green[int(y0):int(y1), int(x0):int(x1)].sum() == green.sum()  # around the face
    for name in ("panels", "views"):
        with Image.open(out / f"astronaut_{name}.png") as im:
            img = np.asarray(im.convert("RGB"), dtype=np.float64) / 255
        assert img.shape[0] >= 224 + 20, name  # picture + caption band
        band = img[-12:]  # the caption: dark band with light text
        assert band.mean() < 0.35 and band.max() > 0.8, name
    with Image.open(out / "astronaut_panels.png") as im:
        assert im.size[0] >= 5 * 224  # five panels side by side
    with Image.open(out / "astronaut_views.png") as im:
        assert im.size[0] >= 5 * 384 and im.size[1] >= 384  # 3 views, texture, weights
    params = np.load(out / "astronaut_params.npz")
    for key in ("id_coeffs", "exp_coeffs", "albedo_coeffs", "gamma", "rotation", "translation",
                "focal", "principal", "landmarks"):
        assert key in params and np.isfinite(params[key]).all(), key
    verts, faces, _, uv, uv_faces = load_obj(out / "astronaut.obj", uv=True)
    assert verts.shape[1] == 3 and faces.shape[1] == 3 and uv_faces.shape == faces.shape
    assert float(uv.min()) >= 0 and float(uv.max()) <= 1
    mesh = trimesh.load(out / "astronaut.obj", process=False)
    np.testing.assert_allclose(np.asarray(mesh.vertices)[np.asarray(mesh.faces)],
                               verts.numpy()[faces.numpy()], atol=1e-4)
    texture = np.asarray(mesh.visual.material.image.convert("RGB"))
    assert texture.shape == (512, 512, 3)
    with Image.open(out / "astronaut_texture.png") as im:
        np.testing.assert_array_equal(texture, np.asarray(im.convert("RGB")))
    skin = texture[texture.shape[0] // 2 - 20: texture.shape[0] // 2 + 20,
                   texture.shape[1] // 2 - 60: texture.shape[1] // 2 - 20] / 255.0  # a cheek
    assert 0.35 < skin.mean() < 0.95 and skin[..., 0].mean() > skin[..., 2].mean()  # skin-ish
    ply = trimesh.load(out / "astronaut.ply", process=False)
    assert len(ply.vertices) == len(verts) and ply.visual.kind == "vertex"
    printed = capsys.readouterr().out
    assert "landmark NME" in printed and "texture" in printed


def test_fit_path_with_landmark_file(tmp_path):
    photo = tmp_path / "me.jpg"
    Image.fromarray(to_uint8(sample_photo("grace_hopper"))).save(photo, quality=95)
    lm = tmp_path / "me.txt"
    np.savetxt(lm, sample_landmarks("grace_hopper", as_numpy=True))
    out = tmp_path / "o"
    assert fit_main([str(photo), "--landmarks", str(lm), "-o", str(out), "--quiet"]) == 0
    assert (out / "me_overlay.png").is_file() and (out / "me_params.npz").is_file()


def test_fit_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        fit_main([])  # neither PATH nor --sample
    with pytest.raises(FileNotFoundError, match="no such image"):
        fit_main([str(tmp_path / "missing.png"), "--quiet"])
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="--landmarks"):
        fit_main(["--sample", "astronaut", "--landmarks", str(bad), "-o", str(tmp_path)])


def test_read_image_converts_gray_and_rgba(tmp_path):
    gray = tmp_path / "g.png"
    Image.fromarray(np.full((40, 50), 128, np.uint8)).save(gray)
    img = read_image(gray)
    assert img.shape == (40, 50, 3) and abs(float(img.mean()) - 128 / 255) < 1e-6
    rgba = tmp_path / "a.png"
    arr = np.zeros((40, 50, 4), np.uint8)  # fully transparent black -> white
    Image.fromarray(arr).save(rgba)
    assert float(read_image(rgba).min()) == 1.0


def test_parsers_wire_into_a_main_parser():
    parser = argparse.ArgumentParser(prog="facelab")
    sub = parser.add_subparsers(dest="command")
    add_fit_parser(sub)
    add_fit_video_parser(sub)
    args = parser.parse_args(["fit", "--sample", "astronaut"])
    assert args.command == "fit" and args.sample == "astronaut" and run_fit is not None
    args = parser.parse_args(["fit-video", "clip.mp4", "--max-frames", "3"])
    assert args.command == "fit-video" and args.max_frames == 3


def _synthetic_clip(T=3, size=160):
    import facelab as fl
    from facelab.lighting import random_sh
    from facelab.model.registry import load_model

    model = load_model("synthetic", resolution="teaching", version=1)
    g = torch.Generator().manual_seed(5)
    angles = torch.zeros(T, 3)
    angles[:, 1] = torch.linspace(-0.2, 0.2, T)
    camera, trans = fl.default_camera(T, size, size)
    params = fl.FaceParams.from_euler(
        angles, translation=trans,
        gamma=random_sh(1, generator=g, front=(0.0, 0.0, -1.0)).expand(T, -1, -1))
    f = fl.form(model, params, camera)
    image, _ = fl.render(f, size, size, background=torch.tensor([0.3, 0.4, 0.5]))
    return image, f.landmarks_2d


def test_fit_video_writes_everything(tmp_path, capsys):
    import imageio.v3 as iio

    frames, lms = _synthetic_clip(T=2)
    clip = tmp_path / "clip.gif"
    iio.imwrite(clip, to_uint8(frames), duration=100, loop=0)
    back = read_video(clip)
    assert back.shape == frames.shape
    np.save(tmp_path / "lm.npy", lms.numpy())
    out = tmp_path / "v"
    assert fit_video_main([str(clip), "--landmarks", str(tmp_path / "lm.npy"), "-o", str(out),
                           "--keyframes", "1", "--quiet"]) == 0
    for i in range(2):
        assert (out / "frames" / f"frame_{i:04d}_overlay.png").is_file()
        assert (out / "frames" / f"frame_{i:04d}.obj").is_file()
    params = np.load(out / "params.npz")
    assert params["id_coeffs"].shape[0] == 2 and params["rotation"].shape == (2, 3, 3)
    assert (out / "overlay.gif").is_file()
    assert len(read_video(out / "overlay.gif")) == 2
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return
    assert (out / "overlay.mp4").is_file() and (out / "overlay.mp4").stat().st_size > 0
    assert "per frame" in capsys.readouterr().out


def test_read_video_options_and_errors(tmp_path):
    import imageio.v3 as iio

    frames = (np.random.default_rng(0).random((5, 40, 40, 3)) * 255).astype(np.uint8)
    clip = tmp_path / "c.gif"
    iio.imwrite(clip, frames, duration=100, loop=0)
    assert read_video(clip, step=2).shape[0] == 3
    assert read_video(clip, max_frames=2).shape[0] == 2
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "none.mp4")
    with pytest.raises(ValueError, match="step"):
        read_video(clip, step=0)
