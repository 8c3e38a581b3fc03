"""Multi-level model: corrective spaces, network, loss, corpus, training settings."""

import dataclasses

import pytest
import torch

import facelab as fl
from facelab import cameras
from facelab.formation import form
from facelab.methods.mofa.layout import CodeLayout
from facelab.methods.multilevel import regularisers as R
from facelab.methods.multilevel.corpus import DetailConfig, DetailFaces
from facelab.methods.multilevel.correctives import KINDS, CorrectiveSpace
from facelab.methods.multilevel.evaluation import reconstruction_size, regressor_rate
from facelab.methods.multilevel.loss import MultilevelLossConfig, multilevel_loss
from facelab.methods.multilevel.network import MultilevelNet
from facelab.methods.multilevel.training import MultilevelTrainConfig, base_model


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=1)


@pytest.fixture(scope="module")
def batch(model):
    return DetailFaces(model, 64, 4, seed=3).batch(0, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_corrective_space_shape_and_zero_at_zero(kind):
    torch.manual_seed(0)
    space = CorrectiveSpace(7, 5, kind)
    assert space(torch.randn(3, 7)).shape == (3, 5, 3)
    assert space(torch.zeros(2, 7)).abs().max().item() < 1e-6  # F(0) = 0
    with pytest.raises(ValueError, match="delta"):
        space(torch.zeros(2, 6))


def test_linear_space_is_m_delta_plus_b():
    torch.manual_seed(0)
    space = CorrectiveSpace(4, 3, "linear")
    with torch.no_grad():
        space.layers[0].bias.copy_(torch.arange(9.0))
    delta = torch.randn(2, 4)
    expected = torch.einsum("nck,bk->bnc", space.basis, delta) + space.offset  # supp. Eq. 1
    assert torch.allclose(space(delta), expected, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_corrective_space_gradients_reach_every_layer_at_init(kind):
    torch.manual_seed(0)
    space = CorrectiveSpace(6, 4, kind)
    delta = torch.zeros(2, 6, requires_grad=True)
    target = torch.randn(2, 4, 3)
    ((space(delta) - target) ** 2).sum().backward()
    assert delta.grad.abs().sum() > 0  # the regressor's corrective head learns first
    last = space.layers[-1]
    if kind == "linear":  # dF/dM = delta = 0 here: M moves once the head does, b at once
        assert last.bias.grad.abs().sum() > 0
    else:  # the hidden units are on (biases 0.1), so the last layer learns at once
        assert last.weight.grad.abs().sum() > 0


def test_empty_space_and_validation():
    space = CorrectiveSpace(0, 5)
    assert torch.equal(space(torch.zeros(2, 0)), torch.zeros(2, 5, 3))
    assert len(list(space.parameters())) == 0
    with pytest.raises(ValueError, match="kind"):
        CorrectiveSpace(3, 5, "cubic")
    with pytest.raises(ValueError, match="size"):
        CorrectiveSpace(-1, 5)
    with pytest.raises(ValueError, match="basis"):
        _ = CorrectiveSpace(3, 5, "one_nonlinearity").basis


def _net(model, c=8, kind="linear"):
    torch.manual_seed(0)
    return MultilevelNet(CodeLayout.for_model(model), model.num_vertices, c, kind)


def test_final_level_equals_base_at_start_of_finetuning(model, batch):
    net = _net(model, 8, "two_nonlinearities")
    with torch.no_grad():  # a "pretrained" base: a non-zero head, lit differently
        net.base.head.weight.normal_(0, 0.01)
        net.base.head.bias.normal_(0, 0.1)
    net.begin_finetune()
    net.eval()
    with torch.no_grad():
        code = net(batch["image"])
        base, final = net.face_params(code)
        camera = cameras.Pinhole(batch["focal"], batch["principal"])
        fb, ff = form(model, base, camera), form(model, final, camera)
    assert code.delta_geo.shape == (2, 8) and code.sh_final.shape == (2, 27)
    assert final.vertex_offsets.shape == (2, model.num_vertices, 3)
    assert torch.allclose(fb.verts, ff.verts, atol=1e-4)
    assert torch.allclose(fb.colors, ff.colors, atol=1e-5)


def test_zero_correctives_is_the_base_model(model, batch):
    net = _net(model, 0)
    with torch.no_grad():
        code = net(batch["image"])
    base, final = net.face_params(code)
    assert code.delta_geo.shape == (2, 0)
    assert final.vertex_offsets.abs().max() == 0 and final.albedo_offsets.abs().max() == 0
    assert torch.equal(base.albedo, final.albedo)


def test_gradient_flows_to_every_group(model, batch):
    net = _net(model, 8)
    net.begin_finetune()
    code = net(batch["image"])
    terms = multilevel_loss(net, code, model, batch, MultilevelLossConfig(),
                            R.mesh_terms(model))
    assert set(terms) == {"total", "photo", "photo_final", "land", "reg", "smo", "sta", "ref",
                          "glo"}
    assert torch.isfinite(terms["total"])
    terms["total"].backward()
    for group, params in net.parameter_groups().items():
        assert sum(float(p.grad.abs().sum()) for p in params if p.grad is not None) > 0, group
    assert net.geo_head.weight.grad.abs().sum() > 0
    assert net.ref_space.layers[0].weight.grad.abs().sum() > 0 or \
        net.ref_head.weight.grad.abs().sum() > 0


def test_pretraining_loss_has_no_final_level(model, batch):
    net = _net(model, 8)
    code = net(batch["image"])
    terms = multilevel_loss(net, code, model, batch, MultilevelLossConfig.pretraining())
    assert terms["photo_final"] == 0 and terms["smo"] == 0
    with pytest.raises(ValueError, match="mesh"):
        multilevel_loss(net, code, model, batch, MultilevelLossConfig())


def test_loss_config_defaults_are_the_supplements():
    c = MultilevelLossConfig()
    assert (c.photo, c.reg, c.rstd, c.smo, c.ref, c.glo, c.sta) == (
        0.2, 0.003, 0.002, 3.2e4, 13.0, 80.0, 0.08)
    p = MultilevelLossConfig.pretraining()
    assert (p.photo, p.reg, p.rstd, p.smo, p.ref, p.glo, p.sta) == (
        1.9, 3e-5, 0.002, 0.0, 0.0, 0.0, 0.0)
    t = MultilevelTrainConfig()
    assert (t.lr_base, t.lr_geometry, t.lr_reflectance, t.correctives) == (
        0.001, 0.005, 0.01, 500)
    with pytest.raises(ValueError, match="photo"):
        MultilevelLossConfig(photo=-1.0)


def test_train_config_validation():
    with pytest.raises(ValueError, match="corpus_size"):
        MultilevelTrainConfig(batch_size=8, corpus_size=12)
    with pytest.raises(ValueError, match="kind"):
        MultilevelTrainConfig(kind="quadratic")
    with pytest.raises(TypeError, match="loss"):
        MultilevelTrainConfig(loss={"photo": 1.0})


def test_base_model_limits_reflectance(model):
    bm = base_model(model, MultilevelTrainConfig(base_albedo=40))
    assert bm.n_albedo == 40 and bm.n_id == model.n_id


def test_network_validation(model):
    net = _net(model)
    with pytest.raises(ValueError, match="image"):
        net(torch.zeros(1, 32, 32, 3))
    with pytest.raises(ValueError, match="image"):
        net(torch.full((1, 64, 64, 3), float("nan")))
    with pytest.raises(ValueError, match="kind"):
        MultilevelNet(CodeLayout.for_model(model), model.num_vertices, 4, "cubic")


def test_detail_corpus(model):
    plain = DetailFaces(model, 32, 2, seed=4, detail=DetailConfig(geometry_mm=0,
                                                                   reflectance=0))
    b0 = plain.batch(0, 2)
    ref = plain.faces.batch(0, 2)  # the same 3DMM sample through the same chain
    assert torch.allclose(b0["image"], ref["image"], atol=1e-5)
    detailed = DetailFaces(model, 32, 2, seed=4)
    b1 = detailed.batch(0, 2)
    assert not torch.allclose(b1["image"], b0["image"], atol=1e-3)
    assert b1["vertex_offsets"].norm(dim=-1)[:, ~model.face_mask].max() < 1e-3
    assert b1["vertex_offsets"].norm(dim=-1).max() > 1.0  # mm
    assert torch.equal(b1["image"], detailed.batch(0, 2)["image"])  # deterministic
    assert torch.equal(detailed.batch(1, 1)["albedo_offsets"], b1["albedo_offsets"][1:])
    with pytest.raises(ValueError, match="decay"):
        DetailConfig(decay=-1.0)
    with pytest.raises(TypeError, match="detail"):
        DetailFaces(model, detail={"geometry_mm": 1.0})


def test_reconstruction_size_and_rate(model):
    net = _net(model, 500)
    size = reconstruction_size(net)
    # the supplement's count: (500 + 80) + (500 + 80 + 64) floats = 4896 bytes < 5 KB
    assert size["reflectance"] == 4 * 580 and size["geometry"] == 4 * 644
    assert size["paper_count"] < 5000 < size["total"]
    rate = regressor_rate(net, 1, repeats=2)
    assert rate["hz"] > 0 and rate["threads"] == 1


def test_train_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MultilevelTrainConfig().seed = 3
