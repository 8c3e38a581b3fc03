"""MotionLatentExplorer: one latent dimension of a HuMoR-Face model under sliders."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("ipywidgets")

import facelab as fl
from facelab.methods import motion_prior as mp
from facelab.methods.motion_prior.data import truth_states
from facelab.methods.motion_prior.experiments import rest_state
from facelab.methods.motion_prior.sampling import FaceProjection


@pytest.fixture(scope="module")
def setup():
    model = fl.load_model("synthetic", "teaching", version=1)
    seqs = [truth_states(model, "diverse", 1000)]
    net = mp.train_prior(seqs, mp.TrainSettings(steps=3, batch=4, window=1, latent=3,
                                                hidden=8)).net
    return model, net


def test_sliders_redecode_and_the_bundle_has_a_picture(setup):
    import matplotlib

    matplotlib.use("Agg")
    model, net = setup
    ex = fl.widgets.MotionLatentExplorer(net, model, rest_state(model), FaceProjection(model),
                                         frames=6)
    assert ex.states.shape == (7, 420) and ex.redraws == 1
    before = ex.states.clone()
    ex.value.value = -3.0
    assert ex.redraws == 2 and not torch.equal(before, ex.states)
    data, _ = ex._repr_mimebundle_()
    assert "image/png" in data and "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith("MotionLatentExplorer(dim 0")


def test_rejects_a_non_prior(setup):
    model, _ = setup
    with pytest.raises(TypeError, match="net: expected a MotionPriorCVAE"):
        fl.widgets.MotionLatentExplorer(object(), model, rest_state(model))
