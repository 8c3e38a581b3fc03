"""fit_image measured in 3D (NoW-style scan-to-mesh error): the committed results are current.

The file records its model (built-in version 2, ``digest()``), the command and the seeds;
:func:`load_results` refuses another model. The test re-runs one case of the table (seed 0,
yaw 30°: its photo, its scan, the mean face and the default fit) and compares it with the
stored numbers, so a change to the data, the fitter or the metric that moves them fails here.
"""

import json

import pytest

from facelab.fitting import evaluate3d as E
from facelab.fitting.fit_image import FitSettings


@pytest.fixture(scope="module")
def model():
    return E.pinned_model()


@pytest.fixture(scope="module")
def results(model):
    return E.load_results(model=model)


def test_file_records_its_origin_and_meets_the_goal(model, results):
    assert results["model"]["version"] == 2 and results["model"]["digest"] == model.digest()
    assert results["command"].startswith("python -m facelab.fitting.evaluate3d")
    assert len(results["seeds"]) >= 3 and sorted(results["yaws"]) == [0.0, 30.0]
    for meth in E.METHODS:
        for y in results["yaws"]:
            per_seed = [c[meth]["median"] for c in results["cases"] if c["yaw"] == y]
            stats = results["table"][meth][str(y)]["median"]
            assert stats["n"] == len(results["seeds"]) == len(per_seed)
            assert stats["mean"] == pytest.approx(sum(per_seed) / len(per_seed))
    # the goal: the default fit's median at least 25 % below the mean face's, at both poses
    for y in results["yaws"]:
        assert results["reduction"][E.DEFAULT_METHOD][str(y)] >= 0.25
    assert set(results["fit_settings"]) == set(E.METHODS[1:])


@pytest.mark.slow
def test_one_case_reproduces(model, results):
    stored = next(c for c in results["cases"] if c["seed"] == 0 and c["yaw"] == 30.0)
    row = E.evaluate_case(model, 0, 30.0, {E.DEFAULT_METHOD: FitSettings()})
    for meth in ("mean face", E.DEFAULT_METHOD):
        for k in ("median", "mean", "std"):
            assert row[meth][k] == pytest.approx(stored[meth][k], abs=2e-3), (meth, k)


def test_refuses_another_model(tmp_path, results):
    bad = dict(results, model={**results["model"], "digest": "0" * 16})
    path = tmp_path / "evaluate3d.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="digest"):
        E.load_results(path)
    path.write_text(json.dumps(dict(results, format_version=99)))
    with pytest.raises(ValueError, match="format_version"):
        E.load_results(path)


def test_scan_is_a_cropped_face_region(model):
    case = E.make_case(model, 1, 0.0)
    scan, lm = E.scan_points(model, case["verts"], 1)
    assert scan.shape == (E.CASES.scan_points, 3) and lm.shape == (7, 3)
    nose = case["verts"][model.landmarks[30]].double().numpy()
    assert ((scan - nose) ** 2).sum(1).max() ** 0.5 <= E.CASES.scan_radius + 1e-9
    # the ground truth scored against itself is ~0 (the metric's own floor on this mesh)
    assert E.evaluate_mesh(model, case["verts"], scan, lm).median < 1e-3


def test_cli_refuses_bad_arguments(tmp_path, capsys):
    assert E.main(["--out", str(tmp_path), "--yaws", "90"]) != 0
    assert "--yaws" in capsys.readouterr().err
