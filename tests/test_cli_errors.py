"""Every user error of the ``facelab`` command: one line, a non-zero status, no traceback.

Also: option values are checked before any work, outputs are never overwritten without
``--force``, and no command writes into the installed package (checksums before/after).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facelab
from facelab.cli import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(facelab.__file__).resolve().parent


def _one_line_error(capsys, status, command: str) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert status not in (0, None), err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"facelab {command}: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


def _run(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse usage errors: status 2, one line
        return exc.code


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(path)
    return path


# ----------------------------------------------------------------- bad option values
@pytest.mark.parametrize(("argv", "command", "pattern"), [
    (["demo", "--count", "0"], "demo", "--count: expected an int >= 1"),
    (["demo", "--count", "100000"], "demo", "<= 64"),
    (["demo", "--size", "4"], "demo", "--size: expected an int >= 224"),
    (["demo", "--size", "20000"], "demo", "<= 2048"),
    (["demo", "--count", "abc"], "demo", "invalid int value"),
    (["demo", "--resolution", "huge"], "demo", "--resolution: expected one of teaching"),
    (["demo", "--mofa-weights", "nope.pt"], "demo", "--mofa-weights"),
    (["demo", "--count", "64", "--size", "2048"], "demo", "MAX_RASTER_PIXELS"),
    (["info", "--resolution", "7"], "info", "--resolution"),
    (["fit-video", "clip.gif", "--fps", "0"], "fit-video", "--fps: expected a number > 0"),
    (["fit-video", "clip.gif", "--fps", "-5"], "fit-video", "--fps: expected a number > 0"),
    (["fit-video", "clip.gif", "--fps", "nan"], "fit-video", "--fps"),
    (["fit-video", "clip.gif", "--step", "0"], "fit-video", "--step: expected an int >= 1"),
    (["fit-video", "clip.gif", "--max-frames", "0"], "fit-video", "--max-frames"),
    (["fit-video", "clip.gif", "--keyframes", "0"], "fit-video", "--keyframes"),
    (["fit", "--sample", "astronaut", "--resolution", "x"], "fit", "--resolution"),
    (["fit", "--sample", "nobody"], "fit", "invalid choice"),
    (["fit"], "fit", "one of the arguments"),
    (["train", "mofa", "--steps", "0"], "train mofa", "--steps: expected an int >= 1"),
    (["train", "mofa", "--lr", "-1"], "train mofa", "--lr: expected a number > 0"),
    (["train", "mofa", "--bogus"], "train mofa", "unrecognized arguments"),
    (["train", "tddfa", "--steps", "0"], "train tddfa", "--steps"),
    (["train", "tddfa", "--ablation", "x.json", "--ablation-options", "nope"], "train tddfa",
     "--ablation-options: unknown"),
])
def test_bad_option_values_fail_in_one_line_before_any_work(argv, command, pattern, tmp_path,
                                                             capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")  # existence only: options fail first
    status = _run(argv)
    line = _one_line_error(capsys, status, command)
    assert pattern in line
    assert not any(p.name.startswith("facelab-") for p in tmp_path.iterdir())  # nothing written


# ------------------------------------------------------------- missing / unsupported files
def test_missing_and_unsupported_inputs(tmp_path, capsys, photo):
    cases = [
        (["fit", str(tmp_path / "missing.jpg")], "fit", "no such image file"),
        (["fit", str(tmp_path)], "fit", "expected an image file, got the folder"),
        (["fit-video", str(tmp_path / "missing.mp4")], "fit-video", "no such video file"),
        (["fit", str(photo), "--landmarks", str(tmp_path / "none.txt")], "fit",
         "--landmarks: no such landmark file"),
        (["fit-video", str(photo)], "fit-video", "expected a video file"),
    ]
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    cases.append((["fit", str(notes)], "fit", "expected an image file (.png"))
    for argv, command, pattern in cases:
        line = _one_line_error(capsys, _run([*argv, "-o", str(tmp_path / "o")]), command)
        assert pattern in line, line


def test_corrupt_image_and_video_get_one_line(tmp_path, capsys):
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    lm = tmp_path / "lm.txt"
    np.savetxt(lm, np.zeros((68, 2)))
    line = _one_line_error(capsys, _run(["fit", str(bad_png), "--landmarks", str(lm),
                                         "-o", str(tmp_path / "o")]), "fit")
    assert "cannot be read as an image" in line
    for name, content in (("empty.mp4", b""), ("corrupt.mp4", b"\0\0\0\x18ftypmp42" + b"x" * 500),
                          ("text.gif", b"GIF89a not really")):
        clip = tmp_path / name
        clip.write_bytes(content)
        np.save(tmp_path / "lm.npy", np.zeros((1, 68, 2)))
        line = _one_line_error(capsys, _run(["fit-video", str(clip), "--landmarks",
                                             str(tmp_path / "lm.npy"), "-o",
                                             str(tmp_path / f"o_{name}")]), "fit-video")
        assert "cannot be read as a video" in line or "no frames" in line, line


def test_bad_landmark_file(tmp_path, capsys):
    lm = tmp_path / "lm.txt"
    lm.write_text("not numbers at all\n")
    line = _one_line_error(capsys, _run(["fit", "--sample", "astronaut", "--landmarks", str(lm),
                                         "-o", str(tmp_path / "o")]), "fit")
    assert "--landmarks: cannot read" in line
    np.savetxt(lm, np.full((68, 2), np.nan))
    line = _one_line_error(capsys, _run(["fit", "--sample", "astronaut", "--landmarks", str(lm),
                                         "-o", str(tmp_path / "o")]), "fit")
    assert "NaN" in line


def test_no_face_found_is_one_line(tmp_path, capsys, photo):
    from facelab.landmarks import mediapipe_available

    if not mediapipe_available():
        pytest.skip("needs the landmarks extra")
    line = _one_line_error(capsys, _run(["fit", str(photo), "-o", str(tmp_path / "o"),
                                         "--quiet"]), "fit")
    assert "no face found" in line


def test_missing_extra_names_the_install_command(tmp_path, capsys, photo, monkeypatch):
    import facelab.landmarks

    monkeypatch.setattr(facelab.landmarks, "mediapipe_available", lambda: False)
    line = _one_line_error(capsys, _run(["fit", str(photo), "-o", str(tmp_path / "o")]), "fit")
    assert '.venv/bin/pip install -e ".[landmarks]"' in line
    assert "facelab[landmarks]'" not in line  # facelab is not on a package index


def test_bad_weights_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    line = _one_line_error(capsys, _run(["demo", "--out", str(tmp_path / "d"), "--count", "1",
                                         "--size", "224", "--mofa-weights", str(bad)]), "demo")
    assert "is not a MoFA encoder file" in line
    assert not (tmp_path / "d").exists()  # refused before any rendering


def test_debug_shows_the_traceback(tmp_path, capsys):
    status = _run(["fit", str(tmp_path / "missing.jpg"), "--debug"])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" in err and "facelab fit: error: " in err


def test_console_command_exit_status_and_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "facelab.cli", "fit", str(tmp_path / "me.jpg")],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"facelab fit: error: path: no such image file: {tmp_path / 'me.jpg'}"]


# ------------------------------------------------------------------- outputs and package
def _fingerprint(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_existing_outputs_are_refused_before_work_unless_force(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    mine = out / "astronaut_overlay.png"
    mine.write_bytes(b"my own file")
    line = _one_line_error(capsys, _run(["fit", "--sample", "astronaut", "-o", str(out),
                                         "--quiet"]), "fit")
    assert "astronaut_overlay.png already exists" in line and "--force" in line
    assert mine.read_bytes() == b"my own file" and sorted(os.listdir(out)) == [mine.name]
    demo = tmp_path / "d"
    demo.mkdir()
    (demo / "face_01.png").write_bytes(b"keep")
    line = _one_line_error(capsys, _run(["demo", "--out", str(demo), "--count", "2"]), "demo")
    assert "face_01.png already exists" in line
    assert (demo / "face_01.png").read_bytes() == b"keep"
    (out / "frames").mkdir()
    (out / "frames" / "frame_0000.obj").write_text("v 0 0 0\n")
    clip = tmp_path / "c.gif"
    clip.write_bytes(b"GIF89a")
    np.save(tmp_path / "lm.npy", np.zeros((1, 68, 2)))
    line = _one_line_error(capsys, _run(["fit-video", str(clip), "--landmarks",
                                         str(tmp_path / "lm.npy"), "-o", str(out)]), "fit-video")
    assert "earlier run" in line


def test_fit_force_overwrites_and_train_and_fit_leave_the_package_alone(tmp_path, capsys,
                                                                         monkeypatch):
    before = _fingerprint(PACKAGE)
    monkeypatch.chdir(tmp_path)
    # training writes into ./facelab-train by default and says so
    assert _run(["train", "mofa", "--steps", "1", "--batch-size", "2", "--corpus-size", "4",
                 "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "facelab-train" / "mofa_photo.pt").is_file()
    assert str((tmp_path / "facelab-train" / "mofa_photo.pt").resolve()) in printed
    # a second run refuses to replace it; --force does
    line = _one_line_error(capsys, _run(["train", "mofa", "--steps", "1"]), "train mofa")
    assert "already exists" in line
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "cache"))
    assert _run(["train", "tddfa", "--steps", "2", "--batch-size", "8", "--look-ahead", "1",
                 "--train-count", "16", "--test-count", "8", "--size", "32",
                 "--clip-frames", "2"]) == 0
    assert (tmp_path / "facelab-train" / "tddfa_mobilenet.pt").is_file()
    capsys.readouterr()
    # the trained weights are one argument away
    from facelab.methods.mofa.training import load_encoder

    assert load_encoder(tmp_path / "facelab-train" / "mofa_photo.pt").metadata["config"]["steps"] \
        == 1
    # asking for the package's own files is refused, before training
    for argv, command in (
            (["train", "mofa", "--out", str(PACKAGE / "weights" / "mofa_photo.pt"), "--force"],
             "train mofa"),
            (["train", "tddfa", "--out", str(PACKAGE / "weights" / "tddfa_mobilenet.pt"),
              "--force"], "train tddfa"),
            (["demo", "--out", str(PACKAGE / "weights"), "--force"], "demo")):
        line = _one_line_error(capsys, _run(argv), command)
        assert "inside the installed facelab package" in line
    # fit twice into one folder: refused, then replaced with --force
    out = tmp_path / "fit"
    assert _run(["fit", "--sample", "astronaut", "-o", str(out), "--quiet"]) == 0
    first = (out / "astronaut_params.npz").stat().st_mtime_ns
    capsys.readouterr()
    _one_line_error(capsys, _run(["fit", "--sample", "astronaut", "-o", str(out), "--quiet"]),
                    "fit")
    assert _run(["fit", "--sample", "astronaut", "-o", str(out), "--quiet", "--force"]) == 0
    assert (out / "astronaut_params.npz").stat().st_mtime_ns >= first
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert _fingerprint(PACKAGE) == before


def test_seed_and_thread_options_are_checked_by_the_shared_helpers():
    from facelab.command_errors import check_count, check_seeds

    check_seeds([0, 3])
    with pytest.raises(ValueError, match="--seeds: expected non-negative integers, got \\[0, -1\\]"):
        check_seeds([0, -1])
    with pytest.raises(ValueError, match="--seeds"):
        check_seeds([])
    with pytest.raises(ValueError, match="--threads: expected an int >= 1, got 0"):
        check_count(0, "--threads")
