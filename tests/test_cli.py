"""The `facelab` command: demo writes what it promises, help documents every subcommand."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facelab.cli import build_parser, main
from facelab.export import load_obj


def test_help_documents_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    subcommands = build_parser()._subparsers._group_actions[0].choices
    assert set(subcommands) >= {"demo", "info"}
    for name in subcommands:
        assert name in text
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "usage: facelab " + name in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def _caption_band(img: np.ndarray, band: int = 16) -> np.ndarray:
    return img[-band:].astype(float) / 255


def _has_caption(img: np.ndarray) -> bool:
    """A caption band at the bottom: dark, uniform background with light text in it, unlike
    the picture above it."""
    band = _caption_band(img)
    background = np.array([0.11, 0.12, 0.14])
    dark = np.abs(band - background).max(-1) < 0.02
    text = band.min(-1) > 0.7
    above = img[-60:-30].astype(float) / 255
    return dark.mean() > 0.5 and text.sum() > 10 and np.abs(above - background).max() > 0.1


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    code = main(["demo", "--out", str(out), "--count", "3", "--size", "224", "--seed", "1"])
    return out, code


def test_demo_writes_captioned_pngs_sheet_and_obj(demo_run, capsys):
    from facelab.cli import demo_outputs

    out, code = demo_run
    assert code == 0
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert files == sorted(["contact_sheet.png", "expressions.png", "face_00.obj",
                            "face_00_landmarks.txt", "face_00.png", "face_01.png",
                            "face_02.png"])
    assert all(p.is_file() for p in demo_outputs(out, 3))
    pngs = [out / n for n in files if n.endswith(".png")]
    pngs += sorted((out / "mofa").iterdir())
    assert len(pngs) == 5 + 7
    for path in pngs:
        img = np.asarray(Image.open(path).convert("RGB"))
        assert min(img.shape[:2]) >= 224, path.name  # every picture >= 224 px
        assert _has_caption(img), path.name  # and captioned
    img = np.asarray(Image.open(out / "face_00.png"))
    assert img.shape[1] == 224 and img.shape[0] > 224  # the render and its caption band
    background = np.array([0.18, 0.2, 0.24]) * 255
    face = np.abs(img[:224].astype(float) - background).sum(-1) > 10
    assert 0.1 < face.mean() < 0.9  # a face in the middle, background around it
    verts, faces, colors = load_obj(out / "face_00.obj")
    assert verts.shape[1] == 3 and faces.shape[1] == 3 and colors is not None
    assert np.loadtxt(out / "face_00_landmarks.txt").shape == (68, 4)


def test_demo_expressions_are_clean_and_labelled(demo_run):
    """face i wears exactly one named expression at coefficient 1, and says which."""
    import torch

    from facelab.cli import _expression_faces, _sample_faces
    from facelab.model.registry import load_model

    out, _ = demo_run
    model = load_model("synthetic", "teaching")
    p = _sample_faces(model, 3, 1, 224)
    for i, name in enumerate(p["expressions"]):
        torch.testing.assert_close(p["params"].exp[i], model.expression(name, 1.0))
    params, _, names = _expression_faces(model, 224)
    assert names == ["neutral", *model.expression_names]
    assert float(params.exp[0].abs().max()) == 0.0  # neutral
    assert params.id.numel() == 0 or float(params.id.abs().max()) == 0.0  # the mean face
    for i, name in enumerate(names[1:], start=1):
        torch.testing.assert_close(params.exp[i], model.expression(name, 1.0))
    sheet = np.asarray(Image.open(out / "expressions.png"))
    assert sheet.shape[1] >= 5 * 224 and sheet.shape[0] >= 3 * 224


def test_demo_prints_what_it_wrote(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["demo", "--out", str(out), "--count", "1", "--size", "224"]) == 0
    printed = capsys.readouterr().out
    for path in [*out.iterdir(), *(out / "mofa").iterdir()]:
        if path.is_file():
            assert str(path) in printed, path
    assert "expression=" in printed


def test_demo_is_reproducible(tmp_path):
    for run in ("a", "b"):
        main(["demo", "--out", str(tmp_path / run), "--count", "2", "--size", "224"])
    a = np.asarray(Image.open(tmp_path / "a" / "contact_sheet.png"))
    b = np.asarray(Image.open(tmp_path / "b" / "contact_sheet.png"))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("args", [["demo", "--count", "0"], ["demo", "--size", "4"],
                                  ["demo", "--size", "200"], ["demo", "--resolution", "huge"]])
def test_demo_bad_arguments(args, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path)]) == 1  # one line on stderr, no traceback
    assert capsys.readouterr().err.startswith("facelab demo: error: ")
    assert not list(tmp_path.iterdir())


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "synthetic2-teaching" in out and "smile" in out  # the default: version 2


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "facelab.cli", "--help"], capture_output=True,
                          text=True, check=True)
    assert "demo" in proc.stdout
