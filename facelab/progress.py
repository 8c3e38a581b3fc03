"""The training-loop callback protocol every fitting and training loop in facelab accepts.

A loop reports each step's named loss terms (and, optionally, a little state such as the
current render) to a :class:`Callback`; with no callback it shows a tqdm progress bar. One
helper, :func:`track`, does both, so a loop is written once::

    progress = track(range(steps), callback=callback, desc="fit")
    for step in progress:
        ...
        progress.log({"photo": l_photo, "land": l_land}, state={"image": pred})

``losses`` values may be Python numbers or 0-d tensors; callbacks always receive floats.
``state`` is optional and by convention holds ``"image"`` ((H, W, 3) or (B, H, W, 3) in
[0, 1], torch or NumPy) and/or ``"verts"`` ((V, 3) or (B, V, 3)); callbacks must not keep
references to it beyond the call (copy what they need), so loops may pass live tensors.
:class:`facelab.widgets.ConvergencePlot` implements this protocol (live curves in a notebook);
:class:`History` is the plain recording callback.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Callback", "History", "Progress", "track"]


@runtime_checkable
class Callback(Protocol):
    """What a training or fitting loop calls. Implement both methods."""

    def on_step(self, step: int, losses: Mapping[str, float],
                state: Mapping[str, Any] | None = None) -> None:
        """Called once per step: ``step`` counts from 0, ``losses`` maps term name -> value."""

    def on_end(self) -> None:
        """Called once when the loop finishes (also after an exception or ``break``)."""


class History:
    """A callback that records every step: ``steps`` (list of int), ``losses`` (name -> list).

    A term missing at some step is recorded as NaN there, so every list has ``len(steps)``
    entries and ``losses[name][i]`` belongs to ``steps[i]``.
    """

    def __init__(self):
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {}
        self.ended = False

    def on_step(self, step: int, losses: Mapping[str, float],
                state: Mapping[str, Any] | None = None) -> None:
        n = len(self.steps)
        self.steps.append(int(step))
        for name, value in losses.items():
            if name not in self.losses:
                self.losses[name] = [float("nan")] * n
            self.losses[name].append(float(value))
        for values in self.losses.values():
            if len(values) == n:
                values.append(float("nan"))

    def on_end(self) -> None:
        self.ended = True

    def __len__(self) -> int:
        return len(self.steps)


def _check_callback(callback) -> list:
    """Normalise ``callback`` (None, one Callback or a sequence of them) to a list."""
    if callback is None:
        return []
    items = list(callback) if isinstance(callback, Sequence) else [callback]
    for i, cb in enumerate(items):
        if not (callable(getattr(cb, "on_step", None)) and callable(getattr(cb, "on_end", None))):
            raise TypeError(f"callback: expected an object with on_step(step, losses, state) "
                            f"and on_end() (facelab.progress.Callback), got {type(cb).__name__}"
                            + (f" at index {i}" if len(items) > 1 else ""))
    return items


def _as_float(name: str, value) -> float:
    try:
        return float(value.detach()) if hasattr(value, "detach") else float(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"losses[{name!r}]: expected a number or a 0-d tensor, "
                        f"got {type(value).__name__}") from err


class Progress:
    """Iterates over ``iterable`` and forwards :meth:`log` calls to the callbacks or a tqdm bar.

    Made by :func:`track`; see there. ``step`` is the index of the current item (0-based).
    """

    def __init__(self, iterable: Iterable, callbacks: list, total: int | None, desc: str | None,
                 leave: bool):
        self._iterable = iterable
        self.callbacks = callbacks
        self.step = -1
        self.bar = None
        if not callbacks:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total if total is not None else _len(iterable), desc=desc,
                            leave=leave)

    def __iter__(self) -> Iterator:
        try:
            for step, item in enumerate(self._iterable):
                self.step = step
                yield item
                if self.bar is not None:
                    self.bar.update(1)
        finally:
            self.close()

    def log(self, losses: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        """Report this step's loss terms (name -> number or 0-d tensor) and optional state."""
        if not isinstance(losses, Mapping):
            raise TypeError(f"losses: expected a mapping of name -> number, "
                            f"got {type(losses).__name__}")
        values = {str(k): _as_float(str(k), v) for k, v in losses.items()}
        step = max(self.step, 0)
        for cb in self.callbacks:
            cb.on_step(step, values, state)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)

    def close(self) -> None:
        """End the loop: call ``on_end`` on every callback once and close the bar."""
        callbacks, self.callbacks = self.callbacks, []
        for cb in callbacks:
            cb.on_end()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _len(iterable) -> int | None:
    try:
        return len(iterable)
    except TypeError:
        return None


def track(iterable: Iterable, callback=None, total: int | None = None, desc: str | None = None,
          *, leave: bool = True) -> Progress:
    """Wrap a training loop's iterable so it reports progress.

    iterable: what the loop iterates over, e.g. ``range(steps)`` or a DataLoader.
    callback: None (show a tqdm bar; ``tqdm.auto`` picks the notebook bar in Jupyter), one
        :class:`Callback` (e.g. ``facelab.widgets.ConvergencePlot()``), or a list of them.
    total: number of steps when ``len(iterable)`` is undefined (for the bar only).
    desc: label of the bar. leave: keep the bar after the loop ends.

    Returns a :class:`Progress`: iterate over it, and call ``progress.log(losses, state)`` once
    per step. ``on_end`` runs when the loop ends, breaks or raises.
    """
    callbacks = _check_callback(callback)
    if total is not None:
        from facelab._checks import check_int

        total = check_int(total, name="total", minimum=0)
    return Progress(iterable, callbacks, total, desc, leave)
