"""Lm2Vertex (Liu et al., the paper's [11]/[47]): a linear regressor from 2D landmarks to 3DMM
parameters, applied to the model (Sec. IV-C: "Lm2Vertex trains a linear regressor from 2D facial
landmarks to model parameters of 3DMM and generates 3D faces by applying the parameters").

Features: the 68 landmarks centred on their mean and divided by their RMS radius (translation
and scale removed; rotation left to the regressor, as a linear map must). Targets: the
ground-truth mesh's least-squares coefficients in the identity + expression bases (the best the
model can do; detail outside the span is lost by construction). Ridge regression, closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape
from facelab.model.morphable import MorphableModel

__all__ = ["Lm2Vertex", "landmark_features", "model_coefficients"]


def landmark_features(landmarks_2d) -> torch.Tensor:
    """(B, L, 2) pixels -> (B, 2L) centred, RMS-normalised landmark coordinates."""
    L, _ = as_tensor(landmarks_2d, name="landmarks_2d")
    check_shape(L, "B L 2", name="landmarks_2d")
    check_floating(L, name="landmarks_2d")
    check_finite(L, name="landmarks_2d")
    c = L - L.mean(1, keepdim=True)
    r = c.pow(2).sum(-1).mean(-1).sqrt().clamp_min(1e-9)  # (B,)
    return (c / r[:, None, None]).reshape(L.shape[0], -1)


def _basis(model: MorphableModel) -> torch.Tensor:
    return torch.cat([model.id_basis, model.exp_basis], dim=2).to(torch.float64)  # (V, 3, K)


def model_coefficients(model: MorphableModel, verts, *, vertices=None) -> torch.Tensor:
    """Least-squares [alpha_id, alpha_exp] (B, Kid + Kexp) of meshes (B, V, 3) (mm)."""
    v, _ = as_tensor(verts, name="verts")
    check_shape(v, "B V 3", name="verts", dims={"V": model.num_vertices})
    rows = torch.arange(model.num_vertices) if vertices is None else torch.as_tensor(vertices)
    A = _basis(model)[rows].reshape(-1, model.n_id + model.n_exp)  # (3R, K)
    y = (v.to(torch.float64) - model.mean_shape.to(torch.float64))[:, rows].reshape(v.shape[0],
                                                                                    -1)
    return torch.linalg.lstsq(A, y.T).solution.T  # (B, K)


@dataclass
class Lm2Vertex:
    """The fitted linear map: coefficients = [features, 1] @ weights (ridge, closed form)."""

    weights: torch.Tensor  # (2L + 1, K) float64

    @classmethod
    def fit(cls, model: MorphableModel, landmarks_2d, verts, *, ridge: float = 1e-2,
            vertices=None) -> Lm2Vertex:
        """Fit on training landmarks (M, 68, 2) and ground-truth meshes (M, V, 3).

        ridge: lambda > 0 of ``min |X W - A|^2 + lambda |W|^2`` (bias not penalised).
        """
        if not ridge > 0:
            raise ValueError(f"ridge: expected a number > 0, got {ridge!r}")
        X = landmark_features(landmarks_2d).to(torch.float64)
        X = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1)  # (M, 2L + 1)
        A = model_coefficients(model, verts, vertices=vertices)  # (M, K)
        reg = ridge * torch.eye(X.shape[1], dtype=X.dtype)
        reg[-1, -1] = 0
        W = torch.linalg.solve(X.T @ X + reg, X.T @ A)
        return cls(W)

    def predict(self, model: MorphableModel, landmarks_2d) -> torch.Tensor:
        """Meshes (B, V, 3) float32, model space (mm), from landmarks (B, 68, 2)."""
        X = landmark_features(landmarks_2d).to(torch.float64)
        X = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1)
        coef = X @ self.weights  # (B, K)
        out = model.mean_shape.to(torch.float64) + torch.einsum("vdk,bk->bvd", _basis(model),
                                                                coef)
        return out.to(torch.float32)
