"""Multi-level face model learning (Tewari et al., CVPR 2018, "... at over 250 Hz", supplement).

A base level (MoFA's 3DMM regressor, :mod:`facelab.methods.mofa`) and a final level that adds
learned per-vertex shape and reflectance correctives F(delta | Theta) = M delta + b, regressed
by the same CNN, trained self-supervised in two stages.

* :mod:`.corpus` — :class:`DetailFaces`: synthetic ground truth with out-of-3DMM detail;
* :mod:`.correctives` — :class:`CorrectiveSpace` (supp. Eqs. 1-3: linear, one and two
  non-linearities);
* :mod:`.network` — :class:`MultilevelNet` (base code, corrective parameters, per-level light);
* :mod:`.regularisers` — smoothness, stabilisation, local reflectance sparsity, global
  reflectance constancy (definitions and citations there);
* :mod:`.loss` — :func:`multilevel_loss`, :class:`MultilevelLossConfig` (supplement weights);
* :mod:`.training` — :func:`pretrain`, :func:`finetune` (two stages, supp. Sec. 1);
* :mod:`.evaluation` — errors on ground truth, size of a reconstruction, regressor rate;
* :mod:`.fitting` — :func:`fit_free_correctives`, per-image free correctives (the failure modes);
* :mod:`.experiments` — the script behind the committed tables (``results/``).
"""

from facelab.methods.multilevel.corpus import DetailConfig, DetailFaces, detail_bases
from facelab.methods.multilevel.correctives import KINDS, CorrectiveSpace
from facelab.methods.multilevel.evaluation import (
    PAPER,
    evaluate,
    oracle_errors,
    reconstruction_size,
    reflectance_image,
    regressor_rate,
    shading_leak,
)
from facelab.methods.multilevel.experiments import (
    format_table,
    load_modes,
    load_results,
    modes_model,
    test_set,
)
from facelab.methods.multilevel.fitting import fit_free_correctives
from facelab.methods.multilevel.loss import MultilevelLossConfig, multilevel_loss
from facelab.methods.multilevel.network import MultilevelCode, MultilevelNet
from facelab.methods.multilevel.training import MultilevelTrainConfig, finetune, pretrain, train

__all__ = [
    "KINDS",
    "PAPER",
    "CorrectiveSpace",
    "DetailConfig",
    "DetailFaces",
    "MultilevelCode",
    "MultilevelLossConfig",
    "MultilevelNet",
    "MultilevelTrainConfig",
    "detail_bases",
    "evaluate",
    "finetune",
    "fit_free_correctives",
    "format_table",
    "load_modes",
    "load_results",
    "modes_model",
    "multilevel_loss",
    "oracle_errors",
    "pretrain",
    "reconstruction_size",
    "reflectance_image",
    "regressor_rate",
    "shading_leak",
    "test_set",
    "train",
]
