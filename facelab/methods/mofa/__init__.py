"""MoFA: model-based deep convolutional face autoencoder (Tewari et al., ICCV 2017).

A CNN encoder regresses the semantic code vector (Eq. 1: identity, expression, reflectance,
rotation, translation, SH light) and an expert-designed, differentiable decoder renders it
(Sec. 5); training minimises a dense photometric loss (Sec. 6) without labels.

* :mod:`.layout` — the code vector, split by name (:data:`MOFA_LAYOUT`, 257 numbers);
* :mod:`.decoder` — :func:`decode` (Eq. 5), visibility, rendering of the layers of Figs. 1-2;
* :mod:`.loss` — :func:`mofa_loss` (Eqs. 7-10) with :class:`MofaLossConfig` (paper weights);
* :mod:`.encoder` — :class:`MofaEncoder`, a small CNN with a zero-initialised last layer;
* :mod:`.training` — :func:`train` on the synthetic corpus, :func:`load_encoder`;
* :mod:`.evaluation` — Sec. 7 errors, the optimisation baseline, the table beside the paper;
* :mod:`.cli` — ``facelab train mofa`` (:func:`train_main`) and :func:`reconstruct_demo`.
"""

from facelab.methods.mofa.decoder import (
    decode,
    mean_face_code,
    render_layers,
    visible_vertices,
)
from facelab.methods.mofa.encoder import MofaEncoder
from facelab.methods.mofa.evaluation import (
    PAPER,
    FitConfig,
    fit_optimization,
    format_table,
    mean_errors,
    reconstruction_errors,
    run_evaluation,
    test_batch,
    time_encoder,
)
from facelab.methods.mofa.layout import MOFA_LAYOUT, CodeLayout, CodeParts
from facelab.methods.mofa.loss import MofaLossConfig, mofa_loss, photometric_vertex_loss
from facelab.methods.mofa.training import (
    TrainConfig,
    code_from_batch,
    load_encoder,
    save_encoder,
    train,
    training_corpus,
)

__all__ = [
    "MOFA_LAYOUT",
    "PAPER",
    "CodeLayout",
    "CodeParts",
    "FitConfig",
    "MofaEncoder",
    "MofaLossConfig",
    "TrainConfig",
    "code_from_batch",
    "decode",
    "fit_optimization",
    "format_table",
    "load_encoder",
    "mean_errors",
    "mean_face_code",
    "mofa_loss",
    "photometric_vertex_loss",
    "reconstruction_errors",
    "run_evaluation",
    "render_layers",
    "save_encoder",
    "test_batch",
    "time_encoder",
    "train",
    "training_corpus",
    "visible_vertices",
]
