"""The committed Table III / Fig. 3 results of the dual networks are current.

They record the model they were made from (name, version 1, ``digest()``), the command and the
seeds; :func:`load_results` refuses another model. The slow test re-runs the file's own small
configuration (the closed-form rows on the full data, a 2-epoch MRF and a 1-epoch ResNetGC on
60 faces, seed 0) and compares with the stored numbers: a change to the data, the template,
the networks or the training loop that moves them makes the committed tables stale and fails.
"""

import json
import shutil

import pytest

from facelab.methods.dualnet import experiments as E


@pytest.fixture(scope="module")
def model():
    return E.pinned_model()


@pytest.fixture(scope="module")
def table3(model):
    return E.load_results("table3", model=model)


def test_files_record_their_origin(model, table3):
    fig3 = E.load_results("fig3", model=model)
    scaling = E.load_results("scaling", model=model)
    crossfit = E.load_results("crossfit", model=model)
    for data in (table3, fig3, scaling, crossfit):
        assert data["model"] == {"name": "synthetic", "resolution": "teaching", "version": 1,
                                 "digest": model.digest()}
        assert data["format_version"] == E.FORMAT_VERSION
        assert data["command"].startswith("python -m facelab.methods.dualnet.experiments")
        assert len(data["seeds"]) >= 3
    for m in E.METHODS:
        row = table3["rows"][m]
        assert row["n"] == len(table3["seeds"]) == len(row["per_seed"])
        assert row["mean"] == pytest.approx(sum(row["per_seed"]) / row["n"])
        assert len(table3["per_face"][m]) == row["n"]
        assert len(table3["per_face"][m][0]) == table3["data"]["test_count"]
    for axis in ("k", "hidden"):
        assert all(v["n"] == len(fig3["seeds"]) for v in fig3[axis].values())
    for n in scaling["config"]["train_counts"]:
        assert scaling[str(n)]["test"]["n"] == len(scaling["seeds"])
    # the template rows of the three files come from the same data and the same Eq. (4) fit
    assert scaling["template_test"] == pytest.approx(table3["rows"]["Template (GC)"]["mean"],
                                                     abs=1e-4)
    assert fig3["template"] == pytest.approx(table3["rows"]["Template (GC)"]["mean"], abs=1e-4)
    # the cross-fitting run's full MRF is Table III's seed-0 MRFGC
    assert crossfit["mrf_test"] == pytest.approx(table3["rows"]["MRFGC"]["per_seed"][0], abs=1e-3)
    assert crossfit["dual_out_of_fold"]["n"] == len(crossfit["seeds"])
    heat = table3["heat"]
    assert max(max(r) for r in heat["face_map"]) == pytest.approx(10.0)
    assert len(heat["face_map"]) == len(heat["methods"])


def test_refuses_another_model(tmp_path, model):
    for name in ("table3", "fig3", "scaling", "crossfit"):
        shutil.copy(E.RESULTS_DIR / f"{name}.json", tmp_path / f"{name}.json")
    path = tmp_path / "table3.json"
    data = json.loads(path.read_text())
    data["model"]["digest"] = "0" * 16
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="digest"):
        E.load_results("table3", tmp_path, model=model)
    assert E.load_results("fig3", tmp_path, model=model)["model"]["version"] == 1
    with pytest.raises(ValueError, match="name"):
        E.load_results("table9", tmp_path, model=model)


@pytest.mark.slow
def test_stored_numbers_are_current(model, table3):
    """Re-run the stored check configuration; closed-form rows to 1e-3 mm, trained to 2 %."""
    import torch

    torch.set_num_threads(1)
    data = E.build_data(model)
    got = E.check_run(model, data)
    want = table3["check"]["result"]
    assert table3["check"]["config"] == E.CHECK
    for name in ("Mean face", "Template (GC)", "Lm2Vertex"):
        assert got[name] == pytest.approx(want[name], abs=1e-3), name
        # the seed-independent rows of the table are these same numbers
        assert table3["rows"][name]["mean"] == pytest.approx(got[name], abs=1e-3), name
    for name in ("MRFGC", "ResNetGC"):
        assert got[name] == pytest.approx(want[name], rel=0.02), name


def test_command_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "fig3.json").write_text("{}")
    for argv, expected in ((["--out", str(tmp_path), "--only", "fig3"], "already exists"),
                           (["--out", str(E.RESULTS_DIR)], "inside the installed facelab"),
                           (["--out", str(tmp_path / "new"), "--seeds", "-1"], "--seeds")):
        assert E.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err and "Traceback" not in err
    assert (tmp_path / "fig3.json").read_text() == "{}"  # never overwritten without --force
    assert not (tmp_path / "new").exists()
