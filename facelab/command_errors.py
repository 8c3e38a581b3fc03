"""How every ``facelab`` command reports a problem: one line, a non-zero status, no traceback.

    facelab fit: error: path: no such image file: me.jpg

* :class:`CommandParser` is the ``argparse`` parser of every command and subcommand: a bad
  option prints ``facelab <command>: error: <message> (see facelab <command> --help)`` and
  exits with status 2 (argparse's status for usage errors), without the usage block.
* :func:`run_reporting` runs a command: any exception becomes
  ``facelab <command>: error: <one line>`` on stderr and status 1 (130 for Ctrl-C);
  with ``debug=True`` (the ``--debug`` flag) the traceback is printed first.
* The ``check_*`` helpers validate option values before any work starts.
* :data:`INSTALL` gives the command that installs each optional extra, the way the README
  installs things (an editable install in ``.venv``: facelab is not on a package index).
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

__all__ = ["INSTALL", "CommandParser", "check_count", "check_input_file", "check_rate",
           "check_resolution", "check_seeds", "one_line", "run_reporting"]

#: The command that installs each optional extra (run in the facelab checkout).
INSTALL = {
    "landmarks": '.venv/bin/pip install -e ".[landmarks]"',
    "video": '.venv/bin/pip install -e ".[video]"',
    "dev": '.venv/bin/pip install -e ".[dev]"',
    "core": ".venv/bin/pip install -e .",
}
# Python packages that come with an extra -> that extra (for "No module named ..." errors).
_MODULE_EXTRA = {"mediapipe": "landmarks", "imageio": "video", "imageio_ffmpeg": "video",
                 "hypothesis": "dev", "trimesh": "dev"}
# Exceptions that describe a problem with the user's input or environment, not a bug.
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError, pickle.UnpicklingError,
                MemoryError)


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line (module docs)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} "
                     f"(see {self.prog} --help)\n")


def one_line(exc: BaseException) -> str:
    """The one-line message for ``exc`` (module docs); bugs are labelled as such."""
    text = " ".join(str(exc).split())
    if isinstance(exc, ModuleNotFoundError) and exc.name and "pip install" not in text:
        top = exc.name.split(".")[0]
        extra = _MODULE_EXTRA.get(top, "core")
        return f"missing Python package {top!r}: run {INSTALL[extra]} in the facelab checkout"
    if isinstance(exc, MemoryError):
        return ("out of memory" + (f" ({text})" if text else "")
                + "; use a smaller image, model resolution or batch")
    if isinstance(exc, _USER_ERRORS):
        return text or type(exc).__name__
    return (f"internal error ({type(exc).__name__}: {text}); rerun with --debug for the "
            "traceback and report it")


def run_reporting(prog: str, command: Callable[[], int | None], *, debug: bool = False) -> int:
    """Run ``command()``; return its status, or report an exception in one line (module docs)."""
    try:
        status = command()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # every error becomes one line; --debug adds the traceback
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0 if status is None else int(status)


# ------------------------------------------------------------------- option checks
def check_count(value: int | None, option: str, *, minimum: int = 1,
                maximum: int | None = None) -> None:
    """Raise ValueError unless ``value`` is None or an int in [minimum, maximum]."""
    if value is None:
        return
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{option}: expected an int >= {minimum}{upper}, got {value}")


def check_seeds(seeds, option: str = "--seeds") -> None:
    """Raise ValueError unless ``seeds`` (a non-empty list of ints) are all >= 0."""
    if not seeds or min(seeds) < 0:
        raise ValueError(f"{option}: expected non-negative integers, got {seeds}")


def check_rate(value: float, option: str, *, maximum: float) -> None:
    """Raise ValueError unless ``value`` is a finite number in (0, maximum]."""
    if not math.isfinite(value) or value <= 0 or value > maximum:
        raise ValueError(f"{option}: expected a number > 0 and <= {maximum:g}, got {value:g}")


def check_input_file(path, option: str, *, kind: str, suffixes: tuple[str, ...] = ()) -> Path:
    """Raise FileNotFoundError/ValueError unless ``path`` is an existing file (of ``suffixes``)."""
    p = Path(path)
    a_kind = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    if p.is_dir():
        raise ValueError(f"{option}: expected {a_kind} file, got the folder {p}")
    if not p.is_file():
        raise FileNotFoundError(f"{option}: no such {kind} file: {p}")
    if suffixes and p.suffix.lower() not in suffixes:
        raise ValueError(f"{option}: expected {a_kind} file ({', '.join(suffixes)}), got "
                         f"{p.name}")
    return p


def check_resolution(value) -> int | str:
    """The built-in model resolution of an option: a name or a vertex count (ValueError)."""
    from facelab.model.synthetic import RESOLUTIONS

    text = str(value)
    if text.isdigit() and 1000 <= int(text) <= 250_000:
        return int(text)
    if text in RESOLUTIONS:
        return text
    raise ValueError(f"--resolution: expected one of {', '.join(RESOLUTIONS)} or a vertex "
                     f"count from 1000 to 250000, got {text!r}")
