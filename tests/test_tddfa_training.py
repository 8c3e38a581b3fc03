"""Tests for facelab.methods.tddfa training, backbone, regressor I/O and the CLI entry."""

import math

import pytest
import torch

from facelab.methods.tddfa import evaluation as E
from facelab.methods.tddfa.corpus import CorpusSpec, build_corpus, tddfa_model
from facelab.methods.tddfa.net import MobileNetRegressor
from facelab.methods.tddfa.regressor import TDDFARegressor, load_pretrained, save_pretrained
from facelab.methods.tddfa.training import TrainConfig, train_tddfa
from facelab.progress import History

SIZE = 32


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    model = tddfa_model()
    corpus = build_corpus(model, CorpusSpec(count=48, size=SIZE, seed=5, clip_frames=2))
    return model, corpus


def _train_nme(net, stats, model, corpus):
    p = E.predict_params(net, stats, corpus["image"])
    from facelab.methods.tddfa.reconstruct import landmarks_screen

    return float(E.metrics.nme(landmarks_screen(model, p, SIZE), corpus["landmarks"]).mean())


def test_corpus_layout(data):
    _model, c = data
    assert c["image"].shape == (48, SIZE, SIZE, 3) and c["image"].dtype == torch.uint8
    assert c["params"].shape == (48, 62) and c["landmarks"].shape == (48, 68, 2)
    assert c["clip_image"].shape == (48, 2, SIZE, SIZE, 3)
    torch.testing.assert_close(c["clip_params"][:, 0], c["params"])
    assert float(c["params"][:, 11].abs().max()) == 0.0  # t_z = 0 as in 3DDFA_V2
    yaw = torch.rad2deg(c["angles"][:, 1])
    assert float(yaw.min()) >= -90 and float(yaw.max()) <= 90 and float(yaw.abs().max()) > 45


def test_backbone_shapes_and_errors():
    net = MobileNetRegressor(width=0.5)
    z, lm = net.forward_train(torch.rand(2, SIZE, SIZE, 3))
    assert z.shape == (2, 62) and lm.shape == (2, 68, 2)
    assert net(torch.rand(1, 64, 64, 3)).shape == (1, 62)
    assert MobileNetRegressor(n_landmarks=0).forward_train(torch.rand(1, 32, 32, 3))[1] is None
    with pytest.raises(ValueError, match=r"images: expected \(B, H, W, 3\)"):
        net(torch.rand(2, 3, SIZE, SIZE))
    with pytest.raises(TypeError, match="images: expected float32 or float64"):
        net(torch.zeros(1, SIZE, SIZE, 3, dtype=torch.uint8))


def test_short_seeded_training_lowers_nme(data):
    model, c = data
    cfg = TrainConfig(loss="fwpdc", lrr=True, video=False, steps=60, batch_size=16, width=0.5,
                      lr=3e-3, seed=0)
    torch.manual_seed(0)
    start = MobileNetRegressor(width=0.5)
    from facelab.methods.tddfa.params import fit_param_stats

    stats = fit_param_stats(c["params"].double()).to(dtype=torch.float32)
    before = _train_nme(start, stats, model, c)
    hist = History()
    res = train_tddfa(model, c, cfg, callback=hist)
    after = _train_nme(res.net, res.stats, model, c)
    assert after < 0.7 * before, (before, after)
    assert hist.ended and len(hist) == 60 and set(hist.losses) == {"fwpdc", "lrr"}
    res2 = train_tddfa(model, c, cfg, callback=History())  # same seed -> same weights
    for a, b in zip(res.net.state_dict().values(), res2.net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("loss", ["meta_joint", "vanilla_joint", "vdc_from_fwpdc", "vdc"])
def test_loss_options_run(data, loss):
    model, c = data
    cfg = TrainConfig(loss=loss, lrr=False, video=True, steps=6, batch_size=8, width=0.25,
                      look_ahead=3)
    hist = History()
    res = train_tddfa(model, c, cfg, callback=hist)
    assert len(hist) == 6
    if loss == "meta_joint":
        assert len(res.choices) == 2 and set(res.choices) <= {"fwpdc", "vdc"}
        assert "choice" in hist.losses and "test_vdc_vdc" in hist.losses
    if loss == "vdc_from_fwpdc":
        f = hist.losses["fwpdc"]
        assert not any(x != x for x in f[:3]) and all(x != x for x in f[3:])  # NaN after switch


def test_config_and_data_errors(data):
    model, c = data
    with pytest.raises(ValueError, match="loss: expected one of"):
        TrainConfig(loss="l2")
    with pytest.raises(ValueError, match="beta"):
        TrainConfig(beta=2.0)
    stills = {k: v for k, v in c.items() if not k.startswith("clip")}
    with pytest.raises(ValueError, match="video=True needs clip_image"):
        train_tddfa(model, stills, TrainConfig(steps=1, batch_size=4), callback=History())
    with pytest.raises(ValueError, match="batch_size: expected a multiple"):
        train_tddfa(model, c, TrainConfig(steps=1, batch_size=5), callback=History())
    with pytest.raises(TypeError, match="model"):
        train_tddfa(None, c, TrainConfig(steps=1), callback=History())


def test_regressor_save_load_roundtrip(data, tmp_path):
    model, c = data
    net = MobileNetRegressor(width=0.25).eval()
    from facelab.methods.tddfa.params import fit_param_stats

    stats = fit_param_stats(c["params"].double()).to(dtype=torch.float32)
    path = tmp_path / "w.pt"
    from facelab.model.provenance import model_record

    bare = tmp_path / "bare.pt"  # no model record: legacy, version 1 only
    save_pretrained(bare, net, stats, {"image_size": SIZE, "resolution": "teaching"})
    with pytest.raises(ValueError, match="version 1"):
        load_pretrained(bare, model=model)
    save_pretrained(path, net, stats, {"image_size": SIZE, "resolution": "teaching",
                                       "model": model_record(model), "model_version": 2})
    reg = load_pretrained(path, model=model)
    assert load_pretrained(path).model.digest() == model.digest()  # default: the recorded one
    assert isinstance(reg, TDDFARegressor)
    x = torch.rand(2, SIZE, SIZE, 3)
    out = reg.reconstruct(x)
    assert out["params"].shape == (2, 62) and out["verts"].shape == (2, model.num_vertices, 3)
    assert out["landmarks"].shape == (2, 68, 2)
    torch.testing.assert_close(out["params"], net(x) * stats.std + stats.mean)
    with pytest.raises(FileNotFoundError, match="path: no 3DDFA_V2 weights"):
        load_pretrained(tmp_path / "missing.pt")


def test_train_main_cli(tmp_path, monkeypatch, capsys):
    from facelab.methods.tddfa.cli import train_main

    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "tddfa.pt"
    assert train_main(["--steps", "2", "--batch-size", "8", "--look-ahead", "1",
                       "--train-count", "16", "--test-count", "8", "--size", "32",
                       "--clip-frames", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NME" in text and "stability" in text and out.exists()
    reg = load_pretrained(out)
    assert reg.image_size == 32 and reg.meta["config"]["steps"] == 2
    assert set(reg.meta["evaluation"]) == {"table1", "dense", "video_nme", "stability"}
    assert len(list((tmp_path / "cache" / "tddfa").glob("*.pt"))) == 3
    with pytest.raises(SystemExit):
        train_main(["--loss", "nope"])


def test_regressor_dense_matches_reconstruct(data):
    model, c = data
    from facelab.methods.tddfa.params import fit_param_stats
    from facelab.methods.tddfa.reconstruct import reconstruct_dense

    stats = fit_param_stats(c["params"].double()).to(dtype=torch.float32)
    reg = TDDFARegressor(MobileNetRegressor(width=0.25), stats, model, SIZE)
    torch.testing.assert_close(reg.dense(c["params"][:4]), reconstruct_dense(model, c["params"][:4]),
                               atol=1e-3, rtol=1e-5)


def test_meta_joint_branches_keep_their_own_optimiser_state(data, monkeypatch):
    """Algorithm 1: both branches start each block from the kept weights, but the Adam
    moments stay per branch (VDC's larger gradients never enter fWPDC's state)."""
    import facelab.methods.tddfa.training as T

    model, c = data
    seen = []
    real_sync = T._sync

    def spy(dst, src):
        real_sync(dst, src)
        seen.append((dst, src))

    monkeypatch.setattr(T, "_sync", spy)
    made = []
    real_opt = T._optimizer

    def spy_opt(net, cfg):
        o = real_opt(net, cfg)
        made.append(o)
        return o

    monkeypatch.setattr(T, "_optimizer", spy_opt)
    cfg = TrainConfig(loss="meta_joint", lrr=False, video=False, steps=6, batch_size=4,
                      width=0.25, look_ahead=3)
    res = train_tddfa(model, c, cfg, callback=History())
    assert len(made) == 2 and len(seen) == 2 and res.grad_steps == 12
    for dst, src in seen:  # weights equal after each sync
        for a, b in zip(dst.state_dict().values(), src.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b)
    (fa, va) = ([s["exp_avg_sq"] for s in o.state.values()] for o in made)
    ratio = sum(float(v.sum()) for v in va) / sum(float(f.sum()) for f in fa)
    assert ratio > 2.0, ratio  # VDC's second moments are much larger: not shared


def test_meta_test_batch_is_disjoint_from_meta_train(data):
    from facelab.methods.tddfa.training import _Sampler

    _model, c = data
    picked = []

    class Spy(_Sampler):
        def _take(self, idx):
            picked.append(idx.clone())
            return super()._take(idx)

    s = Spy(c, 8, True, torch.Generator().manual_seed(0))  # 4 clips of 2 frames per batch
    train, test = s.block(5)
    assert len(train) == 5 and test[0].shape == (8, SIZE, SIZE, 3)
    ids = torch.cat(picked)
    assert ids.numel() == 24 and ids.unique().numel() == 24
    with pytest.raises(ValueError, match="distinct samples per block"):
        s.block(20)


def test_random_selector_sgd_and_curves(data):
    model, c = data
    cfg = TrainConfig(loss="meta_joint", lrr=False, video=False, steps=8, batch_size=4,
                      width=0.25, look_ahead=2, selector="random", optimizer="sgd",
                      lr=1e-3, eval_every=4)
    held = {k: v[:8] for k, v in c.items()}
    a = train_tddfa(model, c, cfg, callback=History(), eval_data=held)
    b = train_tddfa(model, c, cfg, callback=History(), eval_data=held)
    assert a.choices == b.choices and len(a.choices) == 4
    assert a.history["eval_grad_steps"] == [0, 4, 8, 12, 16]
    assert all(math.isfinite(x) for x in a.history["eval_vdc"])
    with pytest.raises(ValueError, match="eval_data"):
        train_tddfa(model, c, cfg, callback=History())
    with pytest.raises(ValueError, match="selector"):
        TrainConfig(selector="best")
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
