"""Dual networks with MRF priors (Fan et al., IEEE TMM): monocular 3D faces from one energy.

Eq. (1) ``min_S E(S, I) + R(S), S in the constraint set`` is split in two learned solvers:
a residual CNN T_L for the data term (Sec. III-A, Eqs. 2-3) and one shallow network per vertex
for a learnable MRF prior (Sec. III-B, Eqs. 5-6), started from a personalised template (Eq. 4).

Submodules, one concept each: ``template`` (Eq. 4 and the colour map), ``mrf`` (the k-NN graph
in [xyz, rgb], delta weights, the grouped per-vertex networks), ``resnet`` (T_L and Eq. 3's
loss), ``pipeline`` (the combined update S_T = S_bar + T_L(I)), ``baselines`` (Lm2Vertex),
``evaluation`` (mean error, Eq. 7's heat maps, CED curves) and ``experiments`` (Table III and
Fig. 3 over seeds; ``python -m facelab.methods.dualnet.experiments --out DIR``).
The data with detail outside the model's span is :mod:`facelab.data.detail`.
"""

from facelab.methods.dualnet.baselines import Lm2Vertex, landmark_features, model_coefficients
from facelab.methods.dualnet.evaluation import (
    PAPER_FIG3,
    PAPER_TABLE3,
    ced_curve,
    heat_map,
    mean_errors,
    normalized_errors,
    vertex_errors,
)
from facelab.methods.dualnet.mrf import (
    MRFConfig,
    VertexMLPs,
    mrf_features,
    mrf_neighbors,
    neighbor_weights,
    train_mrf,
    vertex_mlps_loop,
)
from facelab.methods.dualnet.pipeline import dual_update, prepare_inputs
from facelab.methods.dualnet.resnet import (
    ResidualRegressor,
    ResNetConfig,
    residual_loss,
    train_residual,
)
from facelab.methods.dualnet.template import (
    TemplateFit,
    fit_template,
    project_template,
    sample_vertex_colors,
    scaled_orthographic_pose,
)

__all__ = [
    "PAPER_FIG3",
    "PAPER_TABLE3",
    "Lm2Vertex",
    "MRFConfig",
    "ResNetConfig",
    "ResidualRegressor",
    "TemplateFit",
    "VertexMLPs",
    "ced_curve",
    "dual_update",
    "fit_template",
    "heat_map",
    "landmark_features",
    "mean_errors",
    "model_coefficients",
    "mrf_features",
    "mrf_neighbors",
    "neighbor_weights",
    "normalized_errors",
    "prepare_inputs",
    "project_template",
    "residual_loss",
    "sample_vertex_colors",
    "scaled_orthographic_pose",
    "train_mrf",
    "train_residual",
    "vertex_errors",
    "vertex_mlps_loop",
]
