"""facelab.atomic_io: whole files or nothing, no silent overwrite, never into the package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import facelab
from facelab.atomic_io import (
    PACKAGE_DIR,
    OutputExistsError,
    atomic_path,
    refuse_existing,
    refuse_package_path,
    write_json,
)
from facelab.export import save_obj, save_ply


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_path_renames_only_a_complete_file(tmp_path):
    dest = tmp_path / "sub" / "out.txt"
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.suffix == ".txt" and not dest.exists()
        tmp.write_text("new")
    assert dest.read_text() == "new" and _leftovers(dest.parent) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_write_keeps_the_old_file(tmp_path, error):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"old complete file")
    with pytest.raises(error):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half of a new fi")
            raise error()
    assert dest.read_bytes() == b"old complete file" and _leftovers(tmp_path) == []


def test_no_overwrite_without_asking(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("mine")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        with atomic_path(dest, overwrite=False) as tmp:
            tmp.write_text("theirs")
    assert dest.read_text() == "mine"
    # a file that appears while writing is not replaced either
    other = tmp_path / "late.txt"
    with pytest.raises(FileExistsError):
        with atomic_path(other, overwrite=False) as tmp:
            tmp.write_text("theirs")
            other.write_text("appeared meanwhile")
    assert other.read_text() == "appeared meanwhile" and _leftovers(tmp_path) == []
    with pytest.raises(FileExistsError, match="--force"):
        refuse_existing([tmp_path / "nothing", dest])
    refuse_existing([tmp_path / "nothing"])


def test_package_paths_are_refused(tmp_path):
    assert PACKAGE_DIR == __import__("pathlib").Path(facelab.__file__).resolve().parent
    for p in (PACKAGE_DIR / "weights" / "mofa_photo.pt", PACKAGE_DIR,
              PACKAGE_DIR / "weights" / ".." / "x.npz"):
        with pytest.raises(ValueError, match="inside the installed facelab package"):
            refuse_package_path(p)
        with pytest.raises(ValueError):
            with atomic_path(p):
                pass
    assert refuse_package_path(tmp_path / "x.pt") == tmp_path / "x.pt"
    with pytest.raises(TypeError, match="path"):
        refuse_package_path(3)


def test_mesh_writers_are_atomic_and_can_refuse(tmp_path, monkeypatch):
    verts = torch.rand(4, 3, dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    path = save_obj(tmp_path / "m.obj", verts, faces)
    good = path.read_bytes()
    with pytest.raises(FileExistsError):
        save_obj(path, verts, faces, overwrite=False)
    with pytest.raises(FileExistsError):
        save_ply(save_ply(tmp_path / "m.ply", verts, faces), verts, faces, overwrite=False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savetxt", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_obj(path, verts * 2, faces)
    assert path.read_bytes() == good and _leftovers(tmp_path) == []


def test_write_json_writes_the_results_format_atomically(tmp_path):
    import json

    dest = tmp_path / "r.json"
    data = {"b": [1.5, 2], "a": {"x": None}}
    assert write_json(dest, data) == dest
    assert dest.read_text() == json.dumps(data, indent=1) and _leftovers(tmp_path) == []
    with pytest.raises(OutputExistsError):
        write_json(dest, {"c": 1}, overwrite=False)
    assert json.loads(dest.read_text()) == data  # untouched
    write_json(dest, data, sort_keys=True)
    assert dest.read_text() == json.dumps(data, indent=1, sort_keys=True)
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists() and _leftovers(tmp_path) == []
