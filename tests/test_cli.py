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


def test_demo_writes_pngs_sheet_and_obj(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--count", "3", "--size", "64", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    mofa = sorted(p.name for p in (out / "mofa").iterdir())
    assert {"mofa_input.png", "mofa_overlay.png", "mofa_geometry.png", "mofa_reflectance.png",
            "mofa_illumination.png", "mofa_error.png"} <= set(mofa)
    for name in mofa:
        assert str(out / "mofa" / name) in printed
    assert files == sorted(["contact_sheet.png", "face_00.obj", "face_00_landmarks.txt",
                            "face_00.png", "face_01.png", "face_02.png"])
    for name in files:
        assert str(out / name) in printed  # it says what it wrote
    img = np.asarray(Image.open(out / "face_00.png"))
    assert img.shape == (64, 64, 3)
    background = np.array([0.18, 0.2, 0.24]) * 255
    face = np.abs(img.astype(float) - background).sum(-1) > 10
    assert 0.1 < face.mean() < 0.9  # a face in the middle, background around it
    assert np.asarray(Image.open(out / "contact_sheet.png")).shape == (64, 192, 3)
    verts, faces, colors = load_obj(out / "face_00.obj")
    assert verts.shape[1] == 3 and faces.shape[1] == 3 and colors is not None
    assert np.loadtxt(out / "face_00_landmarks.txt").shape == (68, 4)


def test_demo_is_reproducible(tmp_path):
    for run in ("a", "b"):
        main(["demo", "--out", str(tmp_path / run), "--count", "2", "--size", "48"])
    a = np.asarray(Image.open(tmp_path / "a" / "contact_sheet.png"))
    b = np.asarray(Image.open(tmp_path / "b" / "contact_sheet.png"))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("args", [["demo", "--count", "0"], ["demo", "--size", "4"],
                                  ["demo", "--resolution", "huge"]])
def test_demo_bad_arguments(args, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path)]) == 1  # one line on stderr, no traceback
    assert capsys.readouterr().err.startswith("facelab demo: error: ")
    assert not list(tmp_path.iterdir())


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "synthetic-teaching" in out and "smile" in out


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "facelab.cli", "--help"], capture_output=True,
                          text=True, check=True)
    assert "demo" in proc.stdout
