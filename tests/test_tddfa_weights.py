"""The committed 3DDFA_V2 weights and results know their model and are not stale.

The weights file records the model (name, version, digest), the command that trained it and
its NME on a small held-out check set; loading refuses another model with that command in the
message, and re-evaluating the check set must give the stored numbers (stale -> fail).
"""

import dataclasses
import json
import statistics

import pytest
import torch

from facelab import metrics
from facelab.methods.tddfa import cli, experiments
from facelab.methods.tddfa.corpus import TDDFA_MODEL_VERSION, build_motion_videos, tddfa_model
from facelab.methods.tddfa.regressor import load_pretrained


@pytest.fixture(scope="module")
def reg():
    torch.set_num_threads(1)
    return load_pretrained()


def test_committed_weights_record_model_and_command(reg):
    meta = reg.meta
    model = tddfa_model(version=TDDFA_MODEL_VERSION)
    assert meta["model_version"] == TDDFA_MODEL_VERSION == 2
    assert meta["model"]["digest"] == model.digest() and meta["model"]["name"] == model.name
    assert meta["command"] == cli.TRAIN_COMMAND
    assert reg.model.num_vertices == model.num_vertices


def test_loading_refuses_another_model_naming_the_command():
    v1 = tddfa_model(version=1)
    with pytest.raises(ValueError, match="retrain: facelab train tddfa --out"):
        load_pretrained(model=v1)
    renamed = dataclasses.replace(tddfa_model(), name="synthetic2-teaching")
    renamed.exp_basis = renamed.exp_basis * 1.001
    with pytest.raises(ValueError, match="digest"):
        load_pretrained(model=renamed)


def test_committed_weights_numbers_are_current(reg):
    stored = reg.meta["check"]
    fresh = cli.check_numbers(reg.net, reg.stats, reg.model, reg.image_size)
    assert fresh["spec"] == stored["spec"]
    assert abs(fresh["nme"] - stored["nme"]) < 0.05, (fresh, stored)
    assert abs(fresh["dense"] - stored["dense"]) < 0.05, (fresh, stored)


def test_committed_experiments_are_current():
    result = json.loads(experiments.RESULTS.read_text())
    model = tddfa_model()
    assert result["model"]["digest"] == model.digest() and result["model_version"] == 2
    assert result["command"].startswith("python -m facelab.methods.tddfa.experiments")
    rows = result["rows"]
    names = {r["name"] for r in rows}
    assert set(experiments.options(experiments.Scale(**result["scale"]))) == names
    assert all(sum(r["name"] == n for r in rows) >= 5 for n in names)
    for r in rows:  # gradient steps as configured (meta-joint: two per advanced step)
        assert r["grad_steps"] == r["config"]["steps"] * (2 if r["config"]["loss"] ==
                                                         "meta_joint" else 1)
    # re-evaluate a part: the static predictor's stability is the clips' own motion
    v = build_motion_videos(model, count=8, frames=24, size=result["image_size"], seed=2000)
    gt = v["landmarks"]
    motion = statistics.mean(metrics.stability(gt[i, :1].expand_as(gt[i]).clone(), gt[i]) * 100
                             for i in range(8))
    assert abs(motion - result["baselines"]["static: truth of frame 0"]["stability"]) < 1e-3
    assert "Paired NME differences" in experiments.summary_tables(result)


def test_committed_sgd_experiment_records_its_run():
    """Algorithm 1 with plain gradient steps (--optimizer sgd): same model, >= 3 seeds."""
    path = experiments.RESULTS.parent / "experiments_sgd.json"
    result = json.loads(path.read_text())
    assert result["model"]["digest"] == tddfa_model().digest()
    assert "--optimizer sgd" in result["command"] and result["scale"]["optimizer"] == "sgd"
    rows = result["rows"]
    assert all(r["config"]["optimizer"] == "sgd" for r in rows)
    assert all(sum(r["name"] == n for r in rows) >= 3 for n in {r["name"] for r in rows})
    meta = [r for r in rows if r["name"] == "Meta-joint"]
    assert all(len(r["choices"]) == r["config"]["steps"] // r["config"]["look_ahead"]
               for r in meta)
    assert "Paired NME differences" in experiments.summary_tables(result)


def test_paired_difference_and_cli_refusals(tmp_path, capsys):
    rows = [{"name": n, "seed": s, "v": v} for n, vals in (("a", (1.0, 2.0, 3.0)),
                                                          ("b", (2.0, 2.5, 4.5)))
            for s, v in enumerate(vals)]
    d = experiments.paired_difference(rows, "a", "b", lambda r: r["v"])
    assert d["n"] == 3 and d["wins"] == 3 and abs(d["mean"] + 1.0) < 1e-12
    assert d["ci"][0] < d["mean"] < d["ci"][1]  # t interval with 2 dof: [-2.24, +0.24]
    assert abs(d["ci"][0] - (-1.0 - 4.302653 * 0.5 / 3 ** 0.5)) < 1e-4
    with pytest.raises(ValueError, match="need >= 2 seeds"):
        experiments.paired_difference(rows[:1] + rows[3:4], "a", "b", lambda r: r["v"])
    for argv, match in ((["--out", str(tmp_path), "--options", "nope"], "--options: unknown"),
                        (["--out", str(tmp_path), "--seeds", "0"], "--seeds"),
                        (["--out", str(tmp_path), "--steps", "0"], "--steps")):
        with pytest.raises(SystemExit):
            experiments.main(argv)
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1, err
