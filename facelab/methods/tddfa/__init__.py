"""3DDFA_V2 (Guo et al., ECCV 2020): fast, accurate and stable dense face alignment.

Submodules, one concept each: ``params`` (the 62-d target and its Z-score), ``reconstruct``
(dense / sparse faces under the scaled-orthographic camera), ``net`` (the MobileNet-style
regressor), ``training`` (VDC / fWPDC / vanilla-joint / meta-joint loops with the
landmark-regression branch), ``synthesis`` (3D-aided short-video synthesis), ``corpus`` (the
300W-LP-like synthetic training set), ``evaluation`` (the paper's tables), ``regressor`` (the
trained network as one module, :func:`load_pretrained`) and ``cli``.
The losses (VDC, WPDC, fWPDC) live beside it in :mod:`.vertex_distance`.
"""

from facelab.methods.tddfa.net import MobileNetRegressor
from facelab.methods.tddfa.params import (
    TDDFA_LAYOUT,
    ParamLayout,
    ParamStats,
    denormalize_params,
    fit_param_stats,
    normalize_params,
    pack_params,
    split_params,
)
from facelab.methods.tddfa.reconstruct import (
    basis_matrix,
    image_to_screen,
    landmarks_screen,
    reconstruct_dense,
    reconstruct_shape,
    reconstruct_sparse,
)
from facelab.methods.tddfa.regressor import TDDFARegressor, load_pretrained, save_pretrained
from facelab.methods.tddfa.synthesis import VideoSynthesis, synthesize_video
from facelab.methods.tddfa.training import TrainConfig, TrainResult, train_tddfa

__all__ = [
    "TDDFA_LAYOUT",
    "MobileNetRegressor",
    "ParamLayout",
    "ParamStats",
    "TDDFARegressor",
    "TrainConfig",
    "TrainResult",
    "VideoSynthesis",
    "basis_matrix",
    "denormalize_params",
    "fit_param_stats",
    "image_to_screen",
    "landmarks_screen",
    "load_pretrained",
    "normalize_params",
    "pack_params",
    "reconstruct_dense",
    "reconstruct_shape",
    "reconstruct_sparse",
    "save_pretrained",
    "split_params",
    "synthesize_video",
    "train_tddfa",
]
