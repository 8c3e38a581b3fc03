"""MoFA's additions to the paper's loss: silhouette (coverage) term, pose prior, recipe."""

import dataclasses

import pytest
import torch

import facelab as fl
from facelab.methods.mofa.decoder import decode, face_region_pixels
from facelab.methods.mofa.evaluation import test_batch as make_test_batch
from facelab.methods.mofa.layout import CodeLayout
from facelab.methods.mofa.loss import (
    LAND_WEIGHT,
    MofaLossConfig,
    mofa_loss,
    pose_prior,
    recipe_loss,
    silhouette_loss,
)
from facelab.methods.mofa.training import code_from_batch


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=2)


@pytest.fixture(scope="module")
def batch(model):
    return make_test_batch(model, count=2, size=64)


def _sil(code, batch, model):
    d = decode(code, model, batch["focal"], batch["principal"], shade=False)
    region = face_region_pixels(batch["screen_verts"], model, 64, 64)
    return silhouette_loss(d.screen_verts[..., :2], d.normals, d.verts_cam, model, region)


def test_face_region_pixels_is_the_face_part_of_the_render(model, batch):
    region = face_region_pixels(batch["screen_verts"], model, 64, 64)
    assert region.shape == (2, 64, 64) and region.dtype == torch.bool
    assert bool((region <= batch["mask"]).all())  # inside the rendered head
    assert 0.05 * 64 * 64 < float(region.sum(dim=(1, 2)).min()) < float(batch["mask"].sum())


def test_silhouette_small_at_truth_large_when_shrunk_and_differentiable(model, batch):
    layout = CodeLayout.for_model(model)
    gt = code_from_batch(batch, layout)
    at_truth = float(_sil(gt, batch, model))
    far = gt.clone()
    far[:, layout.slices["translation"].start + 2] *= 3.0
    far.requires_grad_(True)
    shrunk = _sil(far, batch, model)
    # pixels: at the truth only the 2 px grid and the vertex spacing remain (~1.4 px)
    assert at_truth < 2.0 and float(shrunk.detach()) > 2.0 * at_truth
    shrunk.backward()
    z = far.grad[:, layout.slices["translation"].start + 2]
    assert bool((z > 0).all())  # dE/dt_z > 0: descent pulls the face closer (larger)


def test_silhouette_bad_region_shape(model, batch):
    d = decode(code_from_batch(batch, CodeLayout.for_model(model)), model, batch["focal"],
               batch["principal"], shade=False)
    with pytest.raises(ValueError, match="region"):
        silhouette_loss(d.screen_verts[..., :2], d.normals, d.verts_cam, model,
                        torch.ones(3, 64, 64, dtype=torch.bool))


def test_pose_prior_zero_at_frontal_mean_distance(model):
    layout = CodeLayout.for_model(model)
    cfg = MofaLossConfig(pose=1.0)
    code = layout.join(translation=torch.tensor([[0.0, 0.0, 950.0]]))
    assert float(pose_prior(layout.split(code), cfg)) == pytest.approx(0.0)
    turned = layout.join(rotation=torch.tensor([[0.0, 0.35, 0.0]]),
                         translation=torch.tensor([[0.0, 0.0, 1050.0]]))
    assert float(pose_prior(layout.split(turned), cfg)) == pytest.approx(2.0, rel=1e-5)


def test_recipe_and_config_validation(model, batch):
    assert recipe_loss() == MofaLossConfig()  # the paper's loss, nothing added
    full = recipe_loss(sil=True, pose=True, land=True)
    assert full.land == LAND_WEIGHT and full.sil > 0 and full.pose > 0
    assert full.landmarks == "all" and recipe_loss(photo=False, land=True).photo == 0.0
    with pytest.raises(ValueError, match="sil"):
        MofaLossConfig(sil=-1.0)
    with pytest.raises(ValueError, match="pose_sigma"):
        MofaLossConfig(pose_sigma=0.0)
    layout = CodeLayout.for_model(model)
    code = code_from_batch(batch, layout)
    d = decode(code, model, batch["focal"], batch["principal"], shade=False)
    with pytest.raises(ValueError, match="region"):
        mofa_loss(d, layout.split(code), batch["image"], model, config=full,
                  landmarks=batch["landmarks_2d"])
    region = face_region_pixels(batch["screen_verts"], model, 64, 64)
    terms = mofa_loss(d, layout.split(code), batch["image"], model, config=full,
                      landmarks=batch["landmarks_2d"], region=region)
    assert set(terms) == {"total", "photo", "land", "reg", "sil", "pose"}
    expected = (full.photo * terms["photo"] + full.reg * terms["reg"]
                + full.land * terms["land"] + full.sil * terms["sil"]
                + full.pose * terms["pose"])
    assert float(terms["total"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(terms["land"]) < 1e-6  # the true code hits its own landmarks
    paper = mofa_loss(d, layout.split(code), batch["image"], model)
    assert float(paper["sil"]) == 0.0 and float(paper["pose"]) == 0.0
    assert dataclasses.replace(full, sil=0.0).sil == 0.0
