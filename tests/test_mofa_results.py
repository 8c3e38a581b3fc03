"""The committed MoFA ablation knows its model and its baseline row is current."""

import pytest
import torch

import facelab as fl
from facelab.methods.mofa.encoder import MofaEncoder
from facelab.methods.mofa.evaluation import test_batch as make_test_batch
from facelab.methods.mofa.experiments import (
    MEAN_FACE,
    ROWS,
    _evaluate,
    format_ablation,
    load_ablation,
)
from facelab.methods.mofa.layout import CodeLayout


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=2)


def test_ablation_records_model_command_and_seeds(model):
    result = load_ablation(model=model)
    assert result["command"].startswith("python -m facelab.methods.mofa.experiments")
    assert result["version"] == 2 and result["model"]["digest"] == model.digest()
    assert set(result["rows"]) == {MEAN_FACE, *ROWS}
    for name in ROWS:
        assert len(result["rows"][name]["per_seed"]) >= 3, name
    table = format_ablation(result)
    assert all(name in table for name in result["rows"])
    v1 = fl.load_model("synthetic", "teaching", version=1)
    with pytest.raises(ValueError, match="python -m facelab.methods.mofa.experiments"):
        load_ablation(model=v1)


def test_mean_face_row_is_current(model):
    """Re-evaluate the trivial baseline (no training needed): a changed corpus, model or
    metric makes the stored table stale and fails here."""
    result = load_ablation()
    settings = result["settings"]
    held = make_test_batch(model, count=result["count"], size=settings["image_size"])
    with torch.no_grad():
        code = MofaEncoder(CodeLayout.for_model(model), image_size=settings["image_size"],
                           z_scale=settings["z_scale"])(held["image"])
    means, _ = _evaluate(code, held, model)
    stored = result["rows"][MEAN_FACE]["mean"]
    for key in ("geometry_mm", "photometric", "coverage", "landmark_px"):
        assert means[key] == pytest.approx(stored[key], rel=1e-3), key


def test_experiments_command_writes_table_and_refuses_to_overwrite(tmp_path, capsys):
    """A tiny run of the script that made the committed table (2 steps, 8 images, 1 row,
    2 seeds, sequential): the same files, the spread over seeds, the mean-face row."""
    import json

    from facelab.methods.mofa.experiments import main

    out = tmp_path / "abl"
    argv = ["--out", str(out), "--seeds", "0", "1", "--steps", "2", "--corpus-size", "8",
            "--count", "4", "--rows", "photo only"]
    assert main(argv) == 0
    result = json.loads((out / "ablation.json").read_text())
    assert list(result["rows"]) == [MEAN_FACE, "photo only (paper: Eq. 8 + 10)"]
    row = result["rows"]["photo only (paper: Eq. 8 + 10)"]
    assert row["seeds"] == [0, 1] and len(row["per_seed"]) == 2 and row["sd"]["geometry_mm"] >= 0
    assert result["command"].endswith(" ".join(argv))
    assert "| photo only" in capsys.readouterr().out
    assert "Made by: `python -m facelab.methods.mofa.experiments" in (out / "ablation.md").read_text()
    assert main(argv) == 2  # exists: refused without --force
    assert "exists" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "x"), "--rows", "nothing"]) == 2
