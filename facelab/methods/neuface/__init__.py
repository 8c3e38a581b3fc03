"""NeuFace (Kim et al., TMLR 2024): neural re-parameterised video face fitting.

* :mod:`~facelab.methods.neuface.layout` — [r, θ, β, ψ, s, tx, ty] per image (Sec. 3.1);
* :mod:`~facelab.methods.neuface.net` — Φ_w, the regressor that re-parameterises the faces;
* :mod:`~facelab.methods.neuface.pretrain` — Φ pre-trained on single synthetic frames (the
  role of pre-trained DECA), shipped as ``results/phi_v1.pt`` (model version 1);
* :mod:`~facelab.methods.neuface.estep` — the E-step's latent targets (Sec. 3.2, App. B);
* :mod:`~facelab.methods.neuface.objective` — Eq. (1), EM style or the naive losses of App. B;
* :mod:`~facelab.methods.neuface.optimize` — NeuFace optimisation of w over a clip (Eq. 7);
* :mod:`~facelab.methods.neuface.baseline` — the direct fitting baseline (Eq. 5, App. E.1);
* :mod:`~facelab.methods.neuface.evaluate` — NME, MPVE, CVD, MSI_3D and ‖β‖₂ of a clip.

Model-agnostic: everything goes through :class:`facelab.FaceParams` and :func:`facelab.form`;
a jaw block exists iff the model has a jaw joint, neck and eyes stay at rest.
"""

from facelab.methods.neuface.baseline import BaselineConfig, fit_baseline
from facelab.methods.neuface.evaluate import evaluate_clip, reconstruct
from facelab.methods.neuface.layout import NeuFaceLayout
from facelab.methods.neuface.net import NeuFaceNet
from facelab.methods.neuface.objective import LossWeights, clip_losses
from facelab.methods.neuface.optimize import NeuFaceResult, neuface_optimize, predict
from facelab.methods.neuface.pretrain import load_phi, pretrain_phi

__all__ = ["BaselineConfig", "LossWeights", "NeuFaceLayout", "NeuFaceNet", "NeuFaceResult",
           "clip_losses", "evaluate_clip", "fit_baseline", "load_phi", "neuface_optimize",
           "predict", "pretrain_phi", "reconstruct"]
