"""Writing output files safely: atomically, never over a file unasked, never into the package.

Every facelab writer (meshes, images, parameters, weights, GIFs) goes through
:func:`atomic_path`: the content is written to a temporary file in the destination's
folder and renamed onto the destination only when complete, so an interrupt or a
crash leaves either the old file or the new one, never a truncated one.

Commands decide up front what they will write: :func:`refuse_existing` lists the
outputs that already exist (a command then stops before any work unless ``--force``
was given), and :func:`refuse_package_path` keeps every command away from the files
the package ships (``facelab/weights/*.pt`` and the rest of the installed package).
:func:`write_json` is the experiments scripts' results file, written through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["PACKAGE_DIR", "OutputExistsError", "atomic_path", "refuse_existing",
           "refuse_package_path", "write_json"]

#: The installed ``facelab`` package folder; nothing inside it is ever written by a command.
PACKAGE_DIR = Path(__file__).resolve().parent


class OutputExistsError(FileExistsError):
    """An output file exists and overwriting was not asked for."""


def _as_path(path, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def refuse_package_path(path, *, name: str = "path") -> Path:
    """Return ``path`` as a Path; raise ValueError when it lies inside the facelab package.

    The package's files (e.g. the shipped weights ``facelab/weights/*.pt``, which
    ``facelab demo`` and the notebooks load) are never written by facelab itself.
    """
    p = _as_path(path, name)
    resolved = p.expanduser().resolve()
    if resolved == PACKAGE_DIR or PACKAGE_DIR in resolved.parents:
        raise ValueError(
            f"{name}: refusing to write {str(p)!r} inside the installed facelab package "
            f"({PACKAGE_DIR}); write to a folder of your own (to update the shipped files, "
            "copy the result there by hand and commit it)"
        )
    return p


def refuse_existing(paths: Iterable, *, option: str = "--force") -> None:
    """Raise :class:`OutputExistsError` naming the first existing file among ``paths``.

    option: how the caller allows overwriting, for the message (``"--force"`` or
    ``"overwrite=True"``).
    """
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(
            f"{existing[0]} already exists{more}; pass {option} to overwrite, or choose "
            "another output folder"
        )


@contextlib.contextmanager
def atomic_path(path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` once written.

    path: the destination (str or PathLike); its parent folder is created and it must
        not lie inside the facelab package (:func:`refuse_package_path`).
    overwrite: when False, an existing destination raises :class:`OutputExistsError`
        (checked before writing and again, without a race, when renaming).

    The temporary name keeps the destination's suffix, so writers that pick a format
    from the extension (PIL, imageio, ``numpy.savez``) behave as for the real name.
    On any exception (including ``KeyboardInterrupt``) the temporary file is removed
    and the destination is left untouched.
    """
    dest = refuse_package_path(path)
    if not overwrite and dest.exists():
        refuse_existing([dest], option="overwrite=True")
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{dest.suffix}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield tmp
        except OSError as exc:  # name the destination, not the temporary file
            if exc.errno is None:
                raise
            raise type(exc)(exc.errno, f"cannot write {dest}: {exc.strerror}") from exc
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the writer did not create its file")
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)  # fails if dest appeared meanwhile: no silent overwrite
            except FileExistsError:
                refuse_existing([dest], option="overwrite=True")
            except OSError:  # a file system without hard links
                if dest.exists():
                    refuse_existing([dest], option="overwrite=True")
                os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path, data, *, overwrite: bool = True, sort_keys: bool = False) -> Path:
    """Write ``data`` (JSON-able) to ``path`` as ``json.dumps(data, indent=1)`` through
    :func:`atomic_path` (same ``overwrite``); returns the destination."""
    text = json.dumps(data, indent=1, sort_keys=sort_keys)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(path)
