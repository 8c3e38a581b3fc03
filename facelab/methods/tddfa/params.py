"""3DDFA_V2's 62-d regression target and its Z-score normalisation (Guo et al. 2020, Sec. 2.1).

The network regresses ``p = [T (3x4), alpha_id (40), alpha_exp (10)]``: the scaled
orthographic similarity transform ``T = [f R | t]`` (replacing the Euler angles, scale
and 2D translation of Eq. (2), which suffer from gimbal lock near profile views) and the
leading 40 identity / 10 expression coefficients of the morphable model. ``T`` is
flattened row-major, so ``p[0:4]`` is T's first row and ``p[3], p[7], p[11]`` its
translation. Because the entries of ``T`` (pixels per mm, pixels) and ``alpha`` (~N(0, 1))
differ by orders of magnitude, the network predicts the Z-scores
``z = (p - mu_p) / sigma_p`` with the mean and standard deviation of the training corpus.

Every split of a parameter vector goes through :class:`ParamLayout` (never by length).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab import cameras
from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_int,
    check_positive,
    check_shape,
    like_input,
)
from facelab.face_params import FaceParams
from facelab.methods.block_layout import BlockLayout

__all__ = [
    "TDDFA_LAYOUT",
    "ParamLayout",
    "ParamStats",
    "denormalize_params",
    "fit_param_stats",
    "normalize_params",
    "pack_params",
    "split_params",
]


@dataclass(frozen=True)
class ParamLayout(BlockLayout):
    """Names and sizes of the regression target, in order (3DDFA_V2 Sec. 2.1).

    pose: 12, the 3x4 matrix T flattened row-major.
    id: identity coefficients (3DDFA_V2: the first 40 of BFM's 199).
    exp: expression coefficients (3DDFA_V2: the first 10 of 29).
    """

    pose: int = 12
    id: int = 40
    exp: int = 10

    def __post_init__(self):
        if self.pose != 12:
            raise ValueError(f"pose: expected 12 (a 3x4 matrix T), got {self.pose}")
        check_int(self.id, name="id", minimum=0)
        check_int(self.exp, name="exp", minimum=0)

    @property
    def sizes(self) -> dict[str, int]:
        """``{"pose": 12, "id": 40, "exp": 10}`` by default; ``size`` (62 for 3DDFA_V2) and
        ``slices`` (``{"pose": slice(0, 12), "id": slice(12, 52), "exp": slice(52, 62)}``)
        follow (:class:`facelab.methods.block_layout.BlockLayout`)."""
        return {"pose": self.pose, "id": self.id, "exp": self.exp}

    @property
    def translation_index(self) -> tuple[int, int, int]:
        """Positions of T's translation column (3, 7, 11) in p."""
        return (3, 7, 11)

    def to_face(self, params, height: float, *, albedo=None, gamma=None):
        """The adapter into facelab's image formation: p (B, P) -> ``(FaceParams, camera)``.

        params: (B, P) raw (not normalised) p; height: the crop height H of T's y-up frame.
        albedo: optional (B, Kalb) reflectance; gamma: optional (B, 9, 3) camera-space SH
        (3DDFA_V2 regresses neither; renders use the corpus' values or the defaults).

        ``T = [f R | t3]`` is split by :func:`facelab.cameras.decompose_scaled_orthographic`
        (polar decomposition: exact for a scaled rotation, the nearest one for a regressed T):
        R -> ``rotation``, f and ``(t3x, H - t3y)`` -> a
        :class:`~facelab.cameras.ScaledOrthographic` camera, and t3z (depth only) ->
        ``translation = (0, 0, -t3z / f)``. Not differentiable in T (an SVD with repeated
        singular values); VDC/WPDC use T directly (:mod:`.vertex_distance`).
        """
        T, a_id, a_exp = split_params(params, self)
        h = check_positive(height, name="height")
        scale, R, t3 = cameras.decompose_scaled_orthographic(T)  # (B,), (B, 3, 3), (B, 3)
        zeros = torch.zeros_like(scale)
        face = FaceParams(id=a_id, exp=a_exp, albedo=albedo, rotation=R, gamma=gamma,
                          translation=torch.stack([zeros, zeros, -t3[:, 2] / scale], dim=1))
        camera = cameras.ScaledOrthographic(scale, torch.stack([t3[:, 0], h - t3[:, 1]], dim=1))
        return face, camera

    def from_face(self, face: FaceParams, camera, height: float):
        """The inverse adapter: ``(FaceParams, ScaledOrthographic)`` -> p (B, P).

        ``T = [f R | (ox + f tx, H - (oy + f ty), -f tz)]``; coefficient blocks shorter than
        the layout's are zero-padded, longer ones are cut to the layout's leading modes (the
        3DDFA_V2 target keeps 40 / 10). The camera may be shared (B = 1).
        """
        if not isinstance(face, FaceParams):
            raise TypeError(f"face: expected a FaceParams, got {type(face).__name__}")
        if not isinstance(camera, cameras.ScaledOrthographic):
            raise TypeError(f"camera: expected a ScaledOrthographic camera, got "
                            f"{type(camera).__name__}")
        h = check_positive(height, name="height")
        cam = camera.to(dtype=face.dtype, device=face.device).expand(face.batch_size)
        f, (ox, oy), t = cam.scale, cam.offset.unbind(-1), face.translation
        t3 = torch.stack([ox + f * t[:, 0], h - (oy + f * t[:, 1]), -f * t[:, 2]], dim=1)
        T = torch.cat([f[:, None, None] * face.rotation, t3[:, :, None]], dim=2)  # (B, 3, 4)

        def block(c, k):
            c = c[:, :k]
            return torch.nn.functional.pad(c, (0, k - c.shape[1]))

        return pack_params(T, block(face.id, self.id), block(face.exp, self.exp), self)


TDDFA_LAYOUT = ParamLayout()


def _vector(x, layout: ParamLayout, name: str) -> tuple[torch.Tensor, bool]:
    p, was_numpy = as_tensor(x, name=name)
    check_shape(p, f"B {layout.size}", name=name)
    check_floating(p, name=name)
    check_finite(p, name=name)
    return p, was_numpy


def split_params(params, layout: ParamLayout = TDDFA_LAYOUT):
    """Split p into ``(T (B, 3, 4), alpha_id (B, Kid), alpha_exp (B, Kexp))`` by name.

    params: (B, P) float32/float64 with P = layout.size (62), torch or NumPy (NumPy back).
    Views of the input (differentiable).
    """
    p, was_numpy = _vector(params, layout, "params")
    s = layout.slices
    T = p[:, s["pose"]].reshape(-1, 3, 4)  # (B, 3, 4), row-major
    return (like_input(T, was_numpy), like_input(p[:, s["id"]], was_numpy),
            like_input(p[:, s["exp"]], was_numpy))


def pack_params(T, id_coeffs, exp_coeffs, layout: ParamLayout = TDDFA_LAYOUT):
    """Inverse of :func:`split_params`: (B, 3, 4), (B, Kid), (B, Kexp) -> p (B, P).

    The dtype/device (and NumPy-ness) of ``T`` decide those of the result.
    """
    t, was_numpy = as_tensor(T, name="T")
    d = check_shape(t, "B 3 4", name="T")
    check_floating(t, name="T")
    a, _ = as_tensor(id_coeffs, name="id_coeffs")
    e, _ = as_tensor(exp_coeffs, name="exp_coeffs")
    check_shape(a, f"B {layout.id}", name="id_coeffs", dims=d)
    check_shape(e, f"B {layout.exp}", name="exp_coeffs", dims=d)
    out = torch.cat([t.reshape(-1, 12), a.to(t), e.to(t)], dim=1)  # (B, P)
    return like_input(out, was_numpy)


@dataclass(frozen=True)
class ParamStats:
    """Mean and standard deviation of p over a training corpus (3DDFA_V2 Sec. 2.1).

    mean, std: (P,) float tensors; std > 0 everywhere (constant entries, e.g. T's
    translation z which 3DDFA_V2 fixes to 0, get std 1 so their Z-score is the offset).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __post_init__(self):
        check_shape(self.mean, "P", name="mean")
        check_shape(self.std, "P", name="std", dims={"P": self.mean.shape[0]})
        check_floating(self.mean, name="mean")
        check_floating(self.std, name="std")
        check_finite(self.std, name="std")
        if bool((self.std <= 0).any()):
            raise ValueError("std: expected all entries > 0")

    def to(self, device=None, dtype=None) -> ParamStats:
        return ParamStats(self.mean.to(device=device, dtype=dtype),
                          self.std.to(device=device, dtype=dtype))

    def state_dict(self) -> dict:
        return {"mean": self.mean.detach().cpu(), "std": self.std.detach().cpu()}

    @classmethod
    def identity(cls, size: int = 62, dtype=torch.float32) -> ParamStats:
        """mean 0, std 1: normalisation that does nothing."""
        return cls(torch.zeros(size, dtype=dtype), torch.ones(size, dtype=dtype))


def fit_param_stats(params, *, min_std: float = 1e-6) -> ParamStats:
    """Z-score statistics of a corpus of parameter vectors.

    params: (N, P) float32/float64, N >= 2 raw (unnormalised) vectors.
    min_std: entries whose std is below this are treated as constant (std = 1).
    Returns :class:`ParamStats` in the input's dtype (torch tensors).
    """
    p, _ = as_tensor(params, name="params")
    check_shape(p, "N P", name="params")
    check_floating(p, name="params")
    check_finite(p, name="params")
    if p.shape[0] < 2:
        raise ValueError(f"params: expected (N, P) with N >= 2, got {tuple(p.shape)}")
    mean = p.mean(0)
    std = p.std(0)
    std = torch.where(std < min_std, torch.ones_like(std), std)
    return ParamStats(mean.detach().clone(), std.detach().clone())


def _stats_like(stats: ParamStats, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(stats, ParamStats):
        raise TypeError(f"stats: expected a ParamStats, got {type(stats).__name__}")
    if stats.mean.shape[0] != p.shape[1]:
        raise ValueError(f"stats: expected statistics of length {p.shape[1]}, "
                         f"got {stats.mean.shape[0]}")
    return stats.mean.to(p), stats.std.to(p)


def normalize_params(params, stats: ParamStats):
    """Z-score: ``z = (p - mu_p) / sigma_p`` (3DDFA_V2 Sec. 2.1).

    params: (B, P) float32/float64 raw vectors (torch or NumPy). Returns (B, P).
    """
    p, was_numpy = as_tensor(params, name="params")
    check_shape(p, "B P", name="params")
    check_floating(p, name="params")
    mean, std = _stats_like(stats, p)
    return like_input((p - mean) / std, was_numpy)


def denormalize_params(z, stats: ParamStats):
    """Inverse Z-score: ``p = z sigma_p + mu_p``; differentiable in z.

    z: (B, P) float32/float64 network outputs (torch or NumPy). Returns (B, P).
    """
    t, was_numpy = as_tensor(z, name="z")
    check_shape(t, "B P", name="z")
    check_floating(t, name="z")
    mean, std = _stats_like(stats, t)
    return like_input(t * std + mean, was_numpy)
