"""MoFA: model-based deep convolutional face autoencoder (Tewari et al., ICCV 2017).

A CNN encoder regresses the semantic code vector (Eq. 1: identity, expression, reflectance,
rotation, translation, SH light) and an expert-designed, differentiable decoder renders it
(Sec. 5); training minimises a dense photometric loss (Sec. 6) without labels.

* :mod:`.layout` — the code vector, split by name (:data:`MOFA_LAYOUT`, 257 numbers);
* :mod:`.decoder` — :func:`decode` (Eq. 5), visibility, rendering of the layers of Figs. 1-2;
* :mod:`.loss` — :func:`mofa_loss` (Eqs. 7-10) with :class:`MofaLossConfig` (paper weights),
  and the additions that make it train from scratch: :func:`silhouette_loss`,
  :func:`pose_prior`, :func:`recipe_loss`;
* :mod:`.encoder` — :class:`MofaEncoder`, a small CNN with a zero-initialised last layer;
* :mod:`.training` — :func:`train` on the synthetic corpus, :func:`load_encoder`;
* :mod:`.evaluation` — Sec. 7 errors, the optimisation baseline, the table beside the paper;
* :mod:`.experiments` — the ablation over loss terms and seeds
  (``python -m facelab.methods.mofa.experiments --out DIR``);
* :mod:`.cli` — ``facelab train mofa`` (:func:`train_main`) and :func:`reconstruct_demo`.
"""

from facelab.methods.mofa.decoder import (
    decode,
    face_region_pixels,
    mean_face_code,
    render_layers,
    visible_vertices,
)
from facelab.methods.mofa.encoder import MofaEncoder
from facelab.methods.mofa.evaluation import (
    PAPER,
    FitConfig,
    collapse_diagnostics,
    fit_optimization,
    format_table,
    mean_errors,
    reconstruction_errors,
    run_evaluation,
    test_batch,
    time_encoder,
)
from facelab.methods.mofa.layout import MOFA_LAYOUT, CodeLayout, CodeParts
from facelab.methods.mofa.loss import (
    MofaLossConfig,
    mofa_loss,
    photometric_vertex_loss,
    pose_prior,
    recipe_loss,
    silhouette_loss,
)
from facelab.methods.mofa.training import (
    TrainConfig,
    cached_corpus,
    code_from_batch,
    load_encoder,
    save_encoder,
    train,
    training_corpus,
    weights_model,
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
    "cached_corpus",
    "code_from_batch",
    "collapse_diagnostics",
    "decode",
    "face_region_pixels",
    "fit_optimization",
    "format_table",
    "load_encoder",
    "mean_errors",
    "mean_face_code",
    "mofa_loss",
    "photometric_vertex_loss",
    "pose_prior",
    "recipe_loss",
    "reconstruction_errors",
    "run_evaluation",
    "render_layers",
    "save_encoder",
    "silhouette_loss",
    "test_batch",
    "time_encoder",
    "train",
    "training_corpus",
    "visible_vertices",
    "weights_model",
]
