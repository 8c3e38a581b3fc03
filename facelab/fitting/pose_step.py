"""The fitter's head pose as one autograd node: rotation ``R = Rodrigues(delta) R_base`` and
translation ``t = (t0x + z0 s_x, t0y + z0 s_y, z0 exp(s_z))`` from the six pose unknowns.

Why a node of its own: the fitter evaluates this 180 times per photo on two 3-vectors. As
tensor code (``rotations.axis_angle_to_matrix``, then a matrix product and a stack) it is ~45
torch operations forward and as many autograd nodes backward, each costing microseconds of
dispatch for a handful of flops — a third of a landmark step. Here the forward and the
analytic backward run on Python floats (double precision) in one node.

Rodrigues' formula (the same as :func:`facelab.rotations.axis_angle_to_matrix`), with
``K = [v]_x``, ``t² = |v|²``, ``K² = v vᵀ − t² I``:

    R(v) = I + A(t²) K + B(t²) K²,   A = sin t / t,   B = (1 − cos t) / t²

and below ``t = 1e-3`` the Taylor series in t² (``A = 1 − t²/6 + t⁴/120``,
``B = 1/2 − t²/24 + t⁴/720``), so the value and gradient are exact at v = 0. Its derivative,
used by the backward:

    ∂R/∂v_k = 2 v_k (A' K + B' K²) + A ∂K/∂v_k + B (e_k vᵀ + v e_kᵀ − 2 v_k I)

with A', B' the derivatives in t².
"""

from __future__ import annotations

import math

import torch

__all__ = ["pose_from_unknowns", "rodrigues"]

_SMALL = 1e-3  # below this angle (radians) A and B use their Taylor series in t²


def _coefficients(t2: float) -> tuple[float, float, float, float]:
    """(A, B, dA/dt², dB/dt²) of Rodrigues' formula at squared angle t²."""
    if t2 < _SMALL * _SMALL:
        return (1.0 - t2 / 6.0 + t2 * t2 / 120.0, 0.5 - t2 / 24.0 + t2 * t2 / 720.0,
                -1.0 / 6.0 + t2 / 60.0 - t2 * t2 / 1680.0,
                -1.0 / 24.0 + t2 / 360.0 - t2 * t2 / 13440.0)
    t = math.sqrt(t2)
    s, c = math.sin(t), math.cos(t)
    return (s / t, (1.0 - c) / t2, (t * c - s) / (2.0 * t2 * t),
            (t * s - 2.0 * (1.0 - c)) / (2.0 * t2 * t2))


def _skew(a: float, b: float, c: float) -> list[list[float]]:
    return [[0.0, -c, b], [c, 0.0, -a], [-b, a, 0.0]]


def rodrigues(v) -> list[list[float]]:
    """R (3 × 3 nested lists) of one axis-angle vector v (3 floats), Rodrigues' formula."""
    a, b, c = v
    t2 = a * a + b * b + c * c
    A, B, _, _ = _coefficients(t2)
    K = _skew(a, b, c)
    return [[(1.0 if i == j else 0.0) + A * K[i][j] + B * (v[i] * v[j] - (t2 if i == j else 0.0))
             for j in range(3)] for i in range(3)]


def _rodrigues_vjp(v, G) -> list[float]:
    """Σ_ij G_ij ∂R_ij/∂v_k for k = 0, 1, 2 (G: 3 × 3 nested lists)."""
    a, b, c = v
    t2 = a * a + b * b + c * c
    A, B, dA, dB = _coefficients(t2)
    K = _skew(a, b, c)
    gK = sum(G[i][j] * K[i][j] for i in range(3) for j in range(3))  # <G, K>
    gK2 = sum(G[i][j] * (v[i] * v[j] - (t2 if i == j else 0.0))
              for i in range(3) for j in range(3))  # <G, K²>
    trace = G[0][0] + G[1][1] + G[2][2]
    # <G, ∂K/∂v_k>: ∂K/∂a = e3 e2ᵀ − e2 e3ᵀ, ∂K/∂b = e1 e3ᵀ − e3 e1ᵀ, ∂K/∂c = e2 e1ᵀ − e1 e2ᵀ
    dK = (G[2][1] - G[1][2], G[0][2] - G[2][0], G[1][0] - G[0][1])
    out = []
    for k in range(3):
        # <G, e_k vᵀ + v e_kᵀ> = (G v)_k + (Gᵀ v)_k
        sym = sum((G[k][j] + G[j][k]) * v[j] for j in range(3))
        out.append(2.0 * v[k] * (dA * gK + dB * gK2) + A * dK[k]
                   + B * (sym - 2.0 * v[k] * trace))
    return out


def _matmul(X, Y):
    return [[sum(X[i][k] * Y[k][j] for k in range(3)) for j in range(3)] for i in range(3)]


class _PoseFunction(torch.autograd.Function):
    """(delta (3,), shift (3,), base (3, 3), t0 (3,)) → (R (3, 3), t (3,)); gradients to delta
    and shift (base and t0 are constants)."""

    @staticmethod
    def forward(ctx, delta, shift, base, t0, linear_depth):
        v = delta.tolist()
        s = shift.tolist()
        base_l = base.tolist()
        x0, y0, z0 = t0.tolist()
        R = _matmul(rodrigues(v), base_l)
        ez = 1.0 if linear_depth else math.exp(s[2])  # ∂t_z/∂s_z = z0 ez either way
        t = [x0 + z0 * s[0], y0 + z0 * s[1], z0 * (1.0 + s[2]) if linear_depth else z0 * ez]
        ctx.state = (v, base_l, z0, ez)
        opts = {"dtype": delta.dtype, "device": delta.device}
        return torch.tensor(R, **opts), torch.tensor(t, **opts)

    @staticmethod
    def backward(ctx, grad_R, grad_t):
        v, base_l, z0, ez = ctx.state
        opts = {"dtype": grad_R.dtype, "device": grad_R.device}
        g_delta = g_shift = None
        if ctx.needs_input_grad[0]:
            G = _matmul(grad_R.tolist(), [list(r) for r in zip(*base_l, strict=True)])  # G Bᵀ
            g_delta = torch.tensor(_rodrigues_vjp(v, G), **opts)
        if ctx.needs_input_grad[1]:
            gx, gy, gz = grad_t.tolist()
            g_shift = torch.tensor([gx * z0, gy * z0, gz * z0 * ez], **opts)
        return g_delta, g_shift, None, None, None


def pose_from_unknowns(delta: torch.Tensor, shift: torch.Tensor, base: torch.Tensor,
                       t0: torch.Tensor, *, linear_depth: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The fitter's pose: R = Rodrigues(delta) @ base (3, 3) and
    t = (t0x + z0 shift_x, t0y + z0 shift_y, z0 exp(shift_z)) (3,), z0 = t0z; with
    ``linear_depth`` t_z = z0 (1 + shift_z) instead (the refinement stage's parametrisation,
    :class:`facelab.fitting.refine.RefineStage`).

    delta: (3,) axis-angle residual (radians); shift: (3,) relative translation; base (3, 3)
    and t0 (3,) constants; float32/float64 CPU tensors. One autograd node (analytic backward
    to delta and shift), computed in double precision and returned in delta's dtype.
    """
    return _PoseFunction.apply(delta, shift, base, t0, bool(linear_depth))
