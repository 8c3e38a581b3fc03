"""The trained 3DDFA_V2 regressor as one reusable module: image -> p -> dense face.

:class:`TDDFARegressor` bundles the backbone, the Z-score statistics (Sec. 2.1) and the
morphable model, and returns the 62-d parameters, the dense vertices of Eq. (5) and the 68
landmarks in facelab's screen space. It is the component later chapters (NeuFace)
re-parameterise. :func:`load_pretrained` reads the committed weights
``facelab/weights/tddfa_mobilenet.pt`` (trained on version 2 of the built-in model by
``facelab train tddfa``, :data:`facelab.methods.tddfa.cli.TRAIN_COMMAND`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from facelab.methods.tddfa.net import MobileNetRegressor
from facelab.methods.tddfa.params import (
    TDDFA_LAYOUT,
    ParamStats,
    denormalize_params,
    split_params,
)
from facelab.methods.tddfa.reconstruct import basis_matrix, image_to_screen
from facelab.model.morphable import MorphableModel

__all__ = ["DEFAULT_WEIGHTS", "TDDFARegressor", "load_pretrained", "save_pretrained"]

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "tddfa_mobilenet.pt"


class TDDFARegressor(nn.Module):
    """images (B, H, W, 3) in [0, 1] -> 3DDFA_V2 parameters and reconstruction.

    net: a :class:`MobileNetRegressor`; stats: its :class:`ParamStats`; model: the 40 / 10
    mode morphable model (e.g. ``corpus.tddfa_model()``); image_size: the crop size it was
    trained on (square).
    """

    def __init__(self, net: MobileNetRegressor, stats: ParamStats, model: MorphableModel,
                 image_size: int):
        super().__init__()
        self.net = net
        self.model = model.to(dtype=torch.float32)
        self.image_size = int(image_size)
        self.register_buffer("param_mean", stats.mean.float().clone())
        self.register_buffer("param_std", stats.std.float().clone())
        mean, A = basis_matrix(self.model, TDDFA_LAYOUT)  # (V, 3), (V, 3, K)
        # cached once: S = mean + A alpha as one (3V, K) matmul
        self.register_buffer("shape_mean", mean.reshape(-1).clone(), persistent=False)
        self.register_buffer("shape_basis", A.reshape(-1, A.shape[-1]).clone(), persistent=False)

    @property
    def stats(self) -> ParamStats:
        return ParamStats(self.param_mean, self.param_std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw 62-d parameters p (B, 62) (de-normalised network output)."""
        return denormalize_params(self.net(images), self.stats)

    def dense(self, params: torch.Tensor) -> torch.Tensor:
        """V3d(p), Eq. (5): (B, 62) raw p -> (B, V, 3), with the bases cached as one matrix
        (equal to :func:`reconstruct_dense`; no input checks, for speed)."""
        T, a_id, a_exp = split_params(params, TDDFA_LAYOUT)
        alpha = torch.cat([a_id, a_exp], dim=1)  # (B, K)
        S = (self.shape_mean + alpha @ self.shape_basis.T).reshape(params.shape[0], -1, 3)
        return S @ T[:, :, :3].transpose(1, 2) + T[:, None, :, 3]  # (B, V, 3)

    def reconstruct(self, images: torch.Tensor) -> dict:
        """params (B, 62); verts (B, V, 3) Eq. (5) in 3DDFA's y-up frame; screen_verts
        (B, V, 3) facelab screen space; landmarks (B, 68, 2) facelab pixels (y down)."""
        p = self(images)
        verts = self.dense(p)
        screen = image_to_screen(verts, images.shape[1])
        return {"params": p, "verts": verts, "screen_verts": screen,
                "landmarks": self.model.landmark_points(screen)[..., :2]}


def save_pretrained(path, net: MobileNetRegressor, stats: ParamStats, meta: dict, *,
                    overwrite: bool = True) -> None:
    """Write weights + statistics + settings (a small, weights_only-loadable file).

    Written atomically (a temporary file renamed into place), never inside the installed
    package (:func:`facelab.atomic_io.refuse_package_path`); an existing file is replaced only
    when ``overwrite``.
    """
    from facelab.atomic_io import atomic_path, refuse_package_path

    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    blob = {"state_dict": state, "param_mean": stats.mean.float().cpu(),
            "param_std": stats.std.float().cpu(), "width": net.width,
            "n_landmarks": net.n_landmarks, "meta": meta}
    with atomic_path(refuse_package_path(path), overwrite=overwrite) as tmp:
        torch.save(blob, tmp)


def load_pretrained(path=None, model: MorphableModel | None = None) -> TDDFARegressor:
    """Load a :class:`TDDFARegressor` (eval mode) from ``path`` (default: committed weights).

    model: the morphable model; default :func:`facelab.methods.tddfa.corpus.tddfa_model` at
    the resolution and ``version`` recorded in the file (``meta["model_version"]``; files
    without one were trained on version 1). The file's recorded model (``meta["model"]``,
    :func:`facelab.model.provenance.model_record`: name, digest, vertices, modes) must match
    it, else ValueError naming the command that trained the file (``meta["command"]``).
    """
    path = DEFAULT_WEIGHTS if path is None else Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no 3DDFA_V2 weights at {str(path)!r}; train them with "
                                f"`facelab train tddfa`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net = MobileNetRegressor(n_landmarks=blob["n_landmarks"], width=blob["width"])
        net.load_state_dict(blob["state_dict"])
        blob["param_mean"], blob["param_std"], blob["meta"]["image_size"]
    except Exception as exc:  # truncated, not a .pt, another network's weights, ...
        raise ValueError(f"path: {str(path)!r} is not a 3DDFA_V2 weights file written by "
                         f"`facelab train tddfa` ({type(exc).__name__}: {exc})") from exc
    if model is None:
        from facelab.methods.tddfa.corpus import tddfa_model

        model = tddfa_model(blob["meta"].get("resolution", "teaching"),
                            version=int(blob["meta"].get("model_version", 1)))
    from facelab.model.provenance import check_model

    check_model(blob["meta"].get("model"), model, what=f"3DDFA_V2 weights {str(path)!r}",
                retrain=blob["meta"].get("command", "facelab train tddfa"))
    reg = TDDFARegressor(net, ParamStats(blob["param_mean"], blob["param_std"]), model,
                         blob["meta"]["image_size"])
    reg.meta = blob["meta"]
    return reg.eval()
