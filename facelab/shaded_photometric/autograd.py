"""Shading + photometric loss (MoFA Eqs. 4 and 8) as one torch.autograd.Function, and its
validated per-image wrapper."""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_positive,
    check_shape,
    like_input,
)
from facelab.shaded_photometric import cpu

__all__ = ["ShadedPhotometricLoss", "shaded_photometric", "shaded_photometric_per_image"]


def _backend(t: torch.Tensor):
    if t.device.type == "cpu":
        return cpu
    if t.device.type == "cuda":
        from facelab.shaded_photometric import cuda

        return cuda
    raise ValueError(f"shaded photometric loss: expected CPU or CUDA tensors, got device "
                     f"{t.device}")


class ShadedPhotometricLoss(torch.autograd.Function):
    """Per-image photometric loss of SH-shaded vertex colours, compiled both ways.

    apply(image (B,H,W,3), positions (B,V,2), albedo (B,V,3), normals (B,V,3), gamma (B,9,3),
    weights (B,V), eps, reduction="none") → (B,), or a scalar for reduction "sum" | "mean"
    (the batch reduction inside the op: no separate node in the graph). Inputs must be
    validated, of one dtype and device; weights of that dtype, or bool (0/1 visibility: the
    CPU kernels read it as is, no float copy).
    Differentiable (first order) in positions, albedo, normals and gamma; image (the target),
    weights and eps are constants.

    On the CPU, when a gradient is needed, the forward's one compiled pass also computes the
    gradients of each image's loss (:func:`cpu.shaded_photometric_forward_grad`; Σ w comes
    from a cheap pre-pass, so they are already normalised); backward returns them as they
    are when ∂L/∂loss = 1 (a batch-1 sum or mean) and otherwise scales them by ∂L/∂loss_b in
    place (the per-vertex work is done once, not recomputed; a second backward through a
    retained graph runs the forward's pass again, so repeated backwards agree bit for bit).
    On CUDA, backward recomputes from the saved inputs (its own kernel).
    """

    @staticmethod
    def forward(ctx, image, positions, albedo, normals, gamma, weights, eps, reduction="none"):
        needs = ctx.needs_input_grad
        ctx.state, ctx.needs = None, tuple(bool(n) for n in needs[1:5])
        ctx.cpu_grad = albedo.is_cpu and any(ctx.needs)
        if albedo.is_cpu:
            if ctx.cpu_grad:
                loss, count, ctx.state = cpu.shaded_photometric_forward_grad(
                    image, positions, albedo, normals, gamma, weights, eps, needs[1:5])
            else:
                loss, count = cpu.shaded_photometric_forward(image, positions, albedo, normals,
                                                             gamma, weights, eps)
        else:
            if weights.dtype == torch.bool:
                weights = weights.to(albedo.dtype)  # the CUDA kernels read float weights
            loss, count = _backend(albedo).shaded_photometric_forward(
                image, positions, albedo, normals, gamma, weights, eps)
        ctx.save_for_backward(image, positions, albedo, normals, gamma, weights, count)
        ctx.eps = eps
        ctx.reduction = reduction
        ctx.n_img = albedo.shape[0]
        if reduction == "none":
            return loss
        if reduction == "mean" and loss.numel():
            return loss.mean()
        return loss.sum()

    @staticmethod
    def backward(ctx, grad_loss):
        if torch.is_grad_enabled():  # create_graph=True: first order only (an error on a
            return _backward_once(ctx, grad_loss)  # second differentiation)
        return _backward(ctx, grad_loss)


def _backward(ctx, grad_out):
    """:meth:`ShadedPhotometricLoss.backward` (no graph of its own). grad_out: (B,), or a
    scalar for the reductions "sum" (∂L/∂loss_b = grad_out) and "mean" (grad_out / B)."""
    reduction = ctx.reduction
    if ctx.cpu_grad:  # CPU: computed by the forward's pass, at most scaled here (in place)
        state, ctx.state = ctx.state, None
        if state is None:  # a second backward through a retained graph: the forward's own
            # pass again, so every backward gives bit-identical gradients (reentrant)
            image, positions, albedo, normals, gamma, weights, _ = ctx.saved_tensors
            _, _, state = cpu.shaded_photometric_forward_grad(
                image, positions, albedo, normals, gamma, weights, ctx.eps, ctx.needs)
        if reduction == "none":
            factors = grad_out.tolist()  # ∂L/∂loss_b
        else:
            factors = [grad_out.item() / (ctx.n_img if reduction == "mean" and ctx.n_img else 1)]
        return (None, *_scale_in_place(state, factors), None, None, None)
    image, positions, albedo, normals, gamma, weights, count = ctx.saved_tensors
    if reduction != "none":
        n_img = image.shape[0]
        grad_out = grad_out.expand(n_img) / n_img if reduction == "mean" and n_img else \
            grad_out.expand(n_img)
    needs = tuple(bool(n) for n in ctx.needs_input_grad[1:5])
    grads = _backend(albedo).shaded_photometric_backward(
        image, positions, albedo, normals, gamma, weights, ctx.eps, count,
        grad_out.contiguous(), needs)
    return (None, *grads, None, None, None)


def _scale_in_place(state, factors: list) -> tuple:
    """The forward's per-image gradients (state: tensors (B, ...) or None) times ∂L/∂loss_b,
    in place (the state is used up): ``factors`` has B numbers, or one for every image; all
    ones cost nothing."""
    if all(f == 1.0 for f in factors):
        return tuple(state)
    if len(factors) == 1:
        return tuple(None if g is None else g.mul_(factors[0]) for g in state)
    out = []
    for g in state:
        if g is not None:
            g = g.mul_(torch.tensor(factors, dtype=g.dtype).view(-1, *([1] * (g.ndim - 1))))
        out.append(g)
    return tuple(out)


# torch's wrapper (a no_grad context and the error on a second differentiation) only where a
# graph of the backward is being built: on the usual path it costs more than the scaling.
_backward_once = once_differentiable(_backward)


_SPECS = (("image", "B H W 3"), ("positions", "B V 2"), ("albedo", "B V 3"),
          ("normals", "B V 3"), ("gamma", "B 9 3"))


def _check_all_finite(names, tensors) -> None:
    """ValueError naming the first input with NaN/Inf — for inputs not on the CPU. On the CPU
    the compiled passes check what they read (the kernels: positions, albedo, normals,
    weights; :func:`cpu._count`: image and γ; :func:`cpu._name_non_finite` names the input),
    so the validated entry point makes no separate pass over the inputs (1.7 MB at 38k
    vertices and 224²)."""
    for name, t in zip(names, tensors, strict=True):
        check_finite(t, name=name)


_FLOAT_DTYPES = (torch.float32, torch.float64)


def _usual_cpu_call(image, positions, albedo, normals, gamma, visibility, eps):
    """The weights to pass on when the inputs are the usual ones, else None (the full
    validation then runs and names what is wrong): CPU tensors of one float dtype, shapes
    (B, H, W, 3), (B, V, 2), (B, V, 3) × 2, (B, 9, 3), (B, V), visibility bool (or float and
    >= 0), eps a positive float. The same conditions as the full checks, tested with a few
    attribute reads: at 38k vertices the op's whole call costs ~0.4 ms, and its Python part
    several times what it does warm when other work ran in between (a training step), so it
    is kept to a minimum. Finiteness is checked by the compiled passes either way."""
    T = torch.Tensor
    if not (isinstance(image, T) and isinstance(positions, T) and isinstance(albedo, T)
            and isinstance(normals, T) and isinstance(gamma, T) and isinstance(visibility, T)):
        return None
    dt = albedo.dtype
    if (dt not in _FLOAT_DTYPES or image.dtype != dt or positions.dtype != dt
            or normals.dtype != dt or gamma.dtype != dt or type(eps) is not float
            or not 0.0 < eps < math.inf):
        return None
    if not (image.is_cpu and positions.is_cpu and albedo.is_cpu and normals.is_cpu
            and gamma.is_cpu and visibility.is_cpu):
        return None
    shape = albedo.shape
    if len(shape) != 3 or shape[2] != 3:
        return None
    n_img, n_vert = shape[0], shape[1]
    si = image.shape
    if (len(si) != 4 or si[0] != n_img or si[3] != 3 or normals.shape != shape
            or positions.shape != (n_img, n_vert, 2) or gamma.shape != (n_img, 9, 3)
            or visibility.shape != (n_img, n_vert)):
        return None
    if visibility.dtype == torch.bool:
        return visibility
    if visibility.dtype != dt:
        return None
    weights = visibility.detach()
    if weights.numel() and not bool((weights >= 0).all()):
        return None  # NaN or negative: named by the full checks
    return weights


def shaded_photometric_per_image(image, positions, albedo, normals, gamma, visibility, *,
                                 eps: float = 1e-6):
    """Dense photometric alignment of SH-shaded colours per image, MoFA Eqs. (4) + (8), fused.

    Same value as ``photometric_per_image(image, positions, sh_shade(albedo, normals, gamma),
    visibility, eps=eps)``, computed in one compiled pass per direction (no colour buffer, one
    autograd Function):

        c_i = r_i ⊙ Σ_b γ_b H_b(n_i)                                          (Eq. 4)
        E_b = (1 / Σ_i w_i) Σ_i w_i (sqrt(||I(u_i) − c_i||² + ε²) − ε)           (Eq. 8)

    with I(u) the bilinear image sample at u (pixel centres at (j + 0.5, i + 0.5), neighbours
    clamped to the border) and w_i = visibility_i × [u_i inside [0, W) × [0, H)]. An image
    without visible vertices gives 0 and zero gradients.

    Args:
        image: (B, H, W, 3) float32/float64 target image in [0, 1]; a constant (no gradient).
        positions: (B, V, 2) same dtype, screen positions u_i in pixels.
        albedo: (B, V, 3) same dtype, reflectance r_i (MoFA Eq. 3).
        normals: (B, V, 3) same dtype, unit normals in the frame of ``gamma`` (camera space).
        gamma: (B, 9, 3) same dtype, SH lighting coefficients.
        visibility: (B, V) bool or non-negative float weights (a constant).
        eps: positive float, l2-norm smoothing (default 1e-6).

    NumPy arrays are accepted (NumPy comes back). All float inputs share dtype and device.

    Returns:
        (B,) per-image loss; differentiable (first order) in positions, albedo, normals, gamma.
    """
    return shaded_photometric(image, positions, albedo, normals, gamma, visibility, eps=eps,
                              reduction="none")


def shaded_photometric(image, positions, albedo, normals, gamma, visibility, *, eps: float,
                       reduction: str):
    """:func:`shaded_photometric_per_image` reduced over the batch inside the autograd op
    (``reduction`` "none" | "sum" | "mean", checked by the caller): no separate reduction
    node in the graph (:func:`facelab.losses.shaded_photometric_loss`)."""
    weights = _usual_cpu_call(image, positions, albedo, normals, gamma, visibility, eps)
    if weights is not None:
        return ShadedPhotometricLoss.apply(image, positions, albedo, normals, gamma, weights,
                                           eps, reduction)
    eps = check_positive(eps, name="eps")
    d: dict = {}
    was_numpy = False
    floats = []
    for (name, spec), x in zip(_SPECS, (image, positions, albedo, normals, gamma), strict=True):
        check_shape(x, spec, name=name, dims=d)
        check_floating(x, name=name)
        t, was_np = as_tensor(x, name=name)
        was_numpy = was_numpy or was_np
        floats.append(t)
    check_shape(visibility, "B V", name="visibility", dims=d)
    vis_t, was_np = as_tensor(visibility, name="visibility")
    was_numpy = was_numpy or was_np
    if vis_t.is_complex() or not (vis_t.dtype == torch.bool or vis_t.is_floating_point()):
        raise TypeError(f"visibility: expected bool or float, got {vis_t.dtype}")
    first = floats[0]
    for (name, _), t in zip(_SPECS[1:], floats[1:], strict=True):
        if t.dtype != first.dtype:
            raise TypeError(f"{name}: expected dtype {first.dtype} (that of image), got {t.dtype}")
        if t.device != first.device:
            raise ValueError(f"{name}: expected device {first.device} (that of image), got "
                             f"{t.device}")
    if vis_t.device != first.device:
        raise ValueError(f"visibility: expected device {first.device} (that of image), got "
                         f"{vis_t.device}")
    if vis_t.dtype == torch.bool and first.device.type == "cpu":
        weights = vis_t.detach()  # read as 0/1 by the kernels: no (B, V) float copy
    else:
        weights = vis_t.detach().to(first.dtype)
    if first.device.type != "cpu":  # on the CPU the compiled passes check finiteness
        _check_all_finite(("image", "positions", "albedo", "normals", "gamma", "visibility"),
                          (*floats, weights))
    if vis_t.is_floating_point() and weights.numel() and not bool((weights >= 0).all()):
        check_finite(weights, name="visibility")  # NaN/-Inf: named as non-finite first
        raise ValueError("visibility: expected values >= 0, got negative weights")
    loss = ShadedPhotometricLoss.apply(*floats, weights, eps, reduction)
    return like_input(loss, was_numpy)
