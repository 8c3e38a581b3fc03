"""Input validation used at every public boundary of facelab.

One helper set, one message format (kornia's ``KORNIA_CHECK_SHAPE`` idea)::

    >>> check_shape(torch.zeros(4, 100), "B V 3", name="verts")
    Traceback (most recent call last):
    ValueError: verts: expected (B, V, 3), got (4, 100)

Shape specs are space-separated tokens: an integer is a fixed size, a name is a
size that must agree wherever the same name appears (within one call, or across
calls through ``dims``), ``*`` matches any single size, and a leading ``...``
matches any number of leading dimensions.

Public functions also accept NumPy arrays where their docstrings say so;
:func:`as_tensor` converts them and :func:`like_input` converts results back.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "check_bounded",
    "check_device",
    "check_finite",
    "check_floating",
    "check_indices",
    "check_int",
    "check_positive",
    "check_shape",
    "like_input",
]

_FLOAT_DTYPES = (torch.float32, torch.float64)


def _fmt(shape) -> str:
    dims = tuple(shape)
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(str(d) for d in dims) + ")"


@functools.lru_cache(maxsize=512)
def _parse_spec(spec: str) -> tuple:
    """(leading "...", tokens, ((kind, value) per token), the expected-shape text) of a shape
    spec, parsed once per spec (check_shape runs ~15 times per fitting step)."""
    tokens = tuple(spec.split())
    ellipsis = bool(tokens) and tokens[0] == "..."
    if ellipsis:
        tokens = tokens[1:]
        expected = "(..., " + ", ".join(tokens) + ")"
    else:
        expected = "(" + ", ".join(tokens) + ")" if len(tokens) != 1 else f"({tokens[0]},)"
    parsed = tuple(("*", None) if tok == "*" else ("int", int(tok)) if tok.lstrip("-").isdigit()
                   else ("name", tok) for tok in tokens)
    return ellipsis, tokens, parsed, expected


def check_shape(x, spec: str, *, name: str, dims: dict | None = None) -> dict:
    """Check that ``x`` has the shape described by ``spec``.

    x: torch.Tensor or np.ndarray.
    spec: e.g. ``"B V 3"``, ``"... 3 3"``, ``"F 3"``.
    name: the argument's name, used in the error message.
    dims: optional mapping of already-bound names (e.g. ``{"V": 5023}``); it is
        updated in place with the names this call binds, so consecutive calls can
        tie the sizes of several arguments together.

    Returns the mapping of bound names. Raises ``TypeError`` when ``x`` is not an
    array and ``ValueError`` when the shape does not match.
    """
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    ellipsis, tokens, parsed, expected = _parse_spec(spec)
    shape = tuple(x.shape)
    bound = dims if dims is not None else {}
    if ellipsis:
        if len(shape) < len(tokens):
            raise ValueError(f"{name}: expected (..., {', '.join(tokens)}), got {_fmt(shape)}")
        shape = shape[len(shape) - len(tokens):]
    elif len(shape) != len(tokens):
        raise ValueError(f"{name}: expected {expected}, got {_fmt(x.shape)}")
    new = {}
    for (kind, value), size in zip(parsed, shape, strict=True):
        if kind == "*":
            continue
        if kind == "int":
            if size != value:
                raise ValueError(f"{name}: expected {expected}, got {_fmt(x.shape)}")
            continue
        want = bound.get(value, new.get(value))
        if want is not None and want != size:
            raise ValueError(
                f"{name}: expected {expected} with {value}={want}, got {_fmt(x.shape)}"
            )
        new[value] = size
    bound.update(new)
    return bound


def check_floating(x, *, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` is float32 or float64 (torch or NumPy)."""
    if isinstance(x, torch.Tensor):
        ok = x.dtype in _FLOAT_DTYPES
    elif isinstance(x, np.ndarray):
        ok = x.dtype in (np.float32, np.float64)
    else:
        raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if not ok:
        raise TypeError(f"{name}: expected float32 or float64, got {x.dtype}")


_SMALL_TENSOR = 16384  # below torch's intra-op grain size (32768): summed on the calling thread


def check_finite(x, *, name: str) -> None:
    """Raise ``ValueError`` when ``x`` holds NaN or Inf (names how many)."""
    # Fast path: a finite sum proves every entry finite (one reduction instead of an isfinite
    # mask); a NaN/Inf entry always makes the sum non-finite, and an overflowing sum of finite
    # values falls through to the exact count below, which then finds nothing.
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            return
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            if bool(torch.isfinite(x.detach().sum())):
                return
            bad = int((~torch.isfinite(x.detach())).sum())  # 0: an overflowing finite sum
            if bad:
                raise ValueError(f"{name}: expected finite values, got {bad} NaN/Inf entries")
            return
        if x.numel() <= _SMALL_TENSOR:
            # small CPU tensors (a fitter's parameters, per step): torch's sum below its
            # parallel grain size runs on the calling thread; 1.8 us vs 5.5 us for NumPy's
            # sum inside an errstate context
            if math.isfinite(x.detach().sum().item()):
                return
            bad = int((~torch.isfinite(x.detach())).sum())
            if bad:
                raise ValueError(f"{name}: expected finite values, got {bad} NaN/Inf entries")
            return
        # larger CPU tensors are checked by NumPy's single-threaded sum: torch's intra-op
        # pool can stall for milliseconds on a loaded machine
        x = x.detach().numpy()
    if not np.issubdtype(x.dtype, np.floating):
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(x.sum()):
            return
    bad = int((~np.isfinite(x)).sum())
    if bad:
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/Inf entries")


def check_bounded(x, limit: float, *, name: str, what: str = "values") -> None:
    """Raise ``ValueError`` when any |value| of ``x`` exceeds ``limit`` (finite ``x`` assumed).

    what: how the values are described in the message (e.g. ``"x and y"``).
    """
    if isinstance(x, torch.Tensor):
        big = float(x.detach().abs().amax()) if x.numel() else 0.0
    else:
        big = float(np.abs(x).max()) if x.size else 0.0
    if big > limit:
        raise ValueError(f"{name}: expected |{what}| <= {limit:g}, got a value of magnitude "
                         f"{big:.4g}")


def check_device(x, *, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` is NumPy or a torch tensor on the CPU or a CUDA device.

    Catches ``meta`` tensors (shapes without data) and other devices before any kernel
    or ``.item()`` call fails deep inside torch.
    """
    if isinstance(x, torch.Tensor) and x.device.type not in ("cpu", "cuda"):
        raise TypeError(f"{name}: expected a CPU or CUDA tensor, got a tensor on device "
                        f"{x.device.type!r}")


def check_indices(idx, upper: int, *, name: str) -> None:
    """Raise unless ``idx`` is an integer array with every value in ``[0, upper)``."""
    if isinstance(idx, torch.Tensor):
        is_int = not idx.is_floating_point() and idx.dtype != torch.bool and not idx.is_complex()
        lo, hi = (int(idx.min()), int(idx.max())) if idx.numel() else (0, -1)
    elif isinstance(idx, np.ndarray):
        is_int = np.issubdtype(idx.dtype, np.integer)
        lo, hi = (int(idx.min()), int(idx.max())) if idx.size else (0, -1)
    else:
        raise TypeError(
            f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(idx).__name__}"
        )
    if not is_int:
        raise TypeError(f"{name}: expected an integer dtype, got {idx.dtype}")
    if lo < 0 or hi >= upper:
        raise ValueError(f"{name}: expected indices in [0, {upper}), got values in [{lo}, {hi}]")


def check_int(value, *, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int``; raise ``TypeError``/``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_positive(value, *, name: str) -> float:
    """Return ``value`` as a finite positive ``float``; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite positive number, got {value}")
    return float(value)


def as_tensor(x, *, name: str, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, was_numpy)`` for a torch tensor or NumPy array.

    NumPy arrays are wrapped without copying where possible; ``dtype`` (if given)
    converts. Anything else, and tensors on devices other than CPU/CUDA (e.g. ``meta``),
    raise ``TypeError`` naming the argument.
    """
    if isinstance(x, torch.Tensor):
        check_device(x, name=name)
        return (x if dtype is None else x.to(dtype)), False
    if isinstance(x, np.ndarray):
        if x.dtype.hasobject or x.dtype.fields is not None:
            raise TypeError(f"{name}: expected a numeric array, got dtype {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x))
        return (t if dtype is None else t.to(dtype)), True
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def like_input(y: torch.Tensor, was_numpy: bool):
    """Return ``y`` as NumPy when the input was NumPy, else unchanged."""
    return y.detach().cpu().numpy() if was_numpy else y
