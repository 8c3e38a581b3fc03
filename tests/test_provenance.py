"""Weights and cached results know the model they were made from."""

import dataclasses

import pytest
import torch

import facelab as fl
from facelab.model.provenance import check_model, load_result_file, model_record


@pytest.fixture(scope="module")
def v1():
    return fl.load_model("synthetic", "teaching", version=1)


def test_record_matches_its_model_and_nothing_else(v1):
    rec = model_record(v1)
    assert rec["name"] == "synthetic-teaching" and rec["digest"] == v1.digest()
    assert rec["modes"] == [v1.n_id, v1.n_exp, v1.n_albedo]
    check_model(rec, v1, what="w", retrain="cmd")
    with pytest.raises(ValueError, match=r"retrain: facelab train x"):
        check_model(rec, v1.truncated(40, 10), what="w", retrain="facelab train x")


def test_legacy_files_fit_only_version_1_models(v1):
    check_model(None, v1, what="w", retrain="cmd")
    check_model("synthetic/teaching", v1, what="w", retrain="cmd")  # early free-text record
    other = dataclasses.replace(v1, name="synthetic2-teaching")
    with pytest.raises(ValueError, match="version 1 .*version=1.*retrain: facelab train mofa"):
        check_model(None, other, what="MoFA weights", retrain="facelab train mofa")
    with pytest.raises(ValueError, match="malformed"):
        check_model({"name": "x"}, v1, what="w", retrain="cmd")
    with pytest.raises(TypeError, match="model"):
        check_model(None, "synthetic", what="w", retrain="cmd")


def test_committed_weights_refuse_another_model(v1):
    from facelab.methods.mofa.training import load_encoder
    from facelab.methods.tddfa.regressor import load_pretrained

    load_encoder("photo", fl.load_model("synthetic", "teaching", version=2))  # their model
    with pytest.raises(ValueError, match="facelab train mofa"):
        load_encoder("surrogate", v1)
    with pytest.raises(ValueError, match="facelab train tddfa"):
        load_pretrained(model=dataclasses.replace(v1.truncated(40, 10),
                                                  name="synthetic2-teaching"))


def test_trained_file_records_its_model(tmp_path, v1):
    from facelab.methods.tddfa.regressor import load_pretrained, save_pretrained

    reg = load_pretrained()
    meta = dict(reg.meta, model=model_record(reg.model))
    path = tmp_path / "w.pt"
    save_pretrained(path, reg.net, reg.stats, meta)
    assert load_pretrained(path).meta["model"]["digest"] == reg.model.digest()
    edited = reg.model.to()
    edited.id_basis = edited.id_basis * 1.01
    with pytest.raises(ValueError, match="digest"):
        load_pretrained(path, model=edited)
    assert torch.isfinite(reg.stats.mean).all()


def test_result_files_refuse_another_format_or_model(tmp_path, v1):
    import json

    path = tmp_path / "r.json"
    good = {"format_version": 3, "model": model_record(v1), "command": "python -m x --out D",
            "rows": [1.0]}
    path.write_text(json.dumps(good))
    assert load_result_file(path, format_version=3, model=v1) == good
    with pytest.raises(ValueError, match="expected format_version 2, got 3"):
        load_result_file(path, format_version=2, model=v1)
    path.write_text(json.dumps({**good, "model": {**good["model"], "digest": "0" * 16}}))
    with pytest.raises(ValueError, match=r"digest 0{16}.*re-run: python -m x --out D"):
        load_result_file(path, format_version=3, model=v1)
    with pytest.raises(TypeError, match="model"):
        load_result_file(path, format_version=3, model=None)
