"""HuMoR-Face: a learned facial motion prior (NeuFace Sec. 5.1 and App. A, after HuMoR).

* :mod:`~facelab.methods.motion_prior.state` — the state x_t = [φ, φ̇, θ, J, J̇] (420-d);
* :mod:`~facelab.methods.motion_prior.model` — the conditional VAE: learned prior p(z | x_t),
  encoder q(z | x_t, x_{t+1}), decoder of the change of state;
* :mod:`~facelab.methods.motion_prior.loss` — reconstruction + KL + velocity consistency;
* :mod:`~facelab.methods.motion_prior.training` — training with scheduled sampling;
* :mod:`~facelab.methods.motion_prior.sampling` — autoregressive long-term sampling, meshes
  for viewing;
* :mod:`~facelab.methods.motion_prior.data` — diverse and narrow NeuFace-annotated motions;
* :mod:`~facelab.methods.motion_prior.experiments` — Table 4 (FD, APD) over seeds, the
  committed weights and results (``results/``).

Pinned to the built-in model version 1 (its jaw joint and the NeuFace annotator's Φ).
"""

from facelab.methods.motion_prior.loss import LossWeights, gaussian_kl, transition_loss
from facelab.methods.motion_prior.model import MotionPriorCVAE
from facelab.methods.motion_prior.sampling import meshes_from_states, sample_motion
from facelab.methods.motion_prior.state import STATE, StateLayout, motion_states
from facelab.methods.motion_prior.training import TrainResult, TrainSettings, train_prior

__all__ = ["STATE", "LossWeights", "MotionPriorCVAE", "StateLayout", "TrainResult",
           "TrainSettings", "gaussian_kl", "meshes_from_states", "motion_states",
           "sample_motion", "train_prior", "transition_loss"]
