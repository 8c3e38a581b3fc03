"""The committed multi-level results: provenance, freshness, consistency (stale -> fail)."""

import json

import numpy as np
import pytest
import torch

from facelab.methods.multilevel import experiments as ex
from facelab.methods.multilevel.evaluation import evaluate, oracle_errors
from facelab.methods.multilevel.network import MultilevelNet

RESULTS = ex.RESULTS_DIR / "experiments.json"


@pytest.fixture(scope="module")
def results():
    return ex.load_results()


@pytest.fixture(scope="module")
def model():
    return ex.load_model()


def test_provenance(results, model):
    assert results["version"] == 1 and results["model"] == "synthetic/teaching"
    assert results["digest"] == model.digest()
    assert results["command"].startswith("python -m facelab.methods.multilevel.experiments")
    assert len(results["seeds"]) >= 3
    for row in ex.FINETUNES:
        assert len(results["runs"][row]) == len(results["seeds"])


def test_refuses_another_models_results(tmp_path, results):
    bad = dict(results, digest="0" * 64)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="digest"):
        ex.load_results(path)
    modes = ex.load_modes()
    path = tmp_path / "m.npz"
    np.savez(path, **{**modes, "version": np.array(2)})
    with pytest.raises(ValueError, match="version"):
        ex.load_modes(path)


def test_summary_matches_runs(results):
    for row, by_seed in results["runs"].items():
        ok = [m for m in by_seed.values() if "failed" not in m]
        for key, (mean, sd) in ((k, v) for k, v in results["summary"][row].items()
                                if isinstance(v, list)):
            values = [m[key] for m in ok]
            assert mean == pytest.approx(float(np.mean(values)), rel=1e-9)
            assert sd == pytest.approx(float(np.std(values, ddof=1)), rel=1e-9, abs=1e-12)


def test_trivial_baseline_row_is_current(results, model):
    """Re-evaluate the untrained network (mean face) on the test images: corpus, evaluation
    and model must be those that made the committed table."""
    torch.set_num_threads(1)
    test = ex.test_set(model)
    net = MultilevelNet(*ex._net_args(model), 0)
    fresh = {k: float(v.mean()) for k, v in evaluate(net, model, test).items()}
    stored = results["runs"]["mean face (untrained)"][str(results["seeds"][0])]
    for key in ("photo_base", "geometry_base_mm", "reflectance_base", "scale_ratio_base"):
        assert fresh[key] == pytest.approx(stored[key], rel=1e-4, abs=1e-6), key
    oracle = {k: float(v.mean()) for k, v in oracle_errors(model, test).items()}
    for key, value in results["oracle"].items():
        assert oracle[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_training_fingerprint_is_current(results):
    """A tiny deterministic run of the whole pipeline (corpus, both training stages,
    evaluation) reproduces the numbers stored with the results."""
    fresh = ex.fingerprint()
    for key, value in results["fingerprint"].items():
        assert fresh[key] == pytest.approx(value, rel=1e-3, abs=1e-5), key


def test_modes_file(model):
    modes = ex.load_modes()
    n = model.num_vertices
    assert modes["geometry_modes"].shape[1:] == (n, 3)
    assert modes["reflectance_modes"].shape[1:] == (n, 3)
    s = modes["geometry_singular"]
    assert np.all(np.diff(s) <= 1e-6)  # singular values, descending
    assert (ex.RESULTS_DIR / "modes.npz").stat().st_size < 400_000
    assert RESULTS.stat().st_size < 200_000
