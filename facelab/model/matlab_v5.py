"""A small MATLAB v5 ``.mat`` reader for numeric matrices, in NumPy only, for BFM 2009.

SciPy's reader (``scipy.io.loadmat``) is compiled code that trusts the file: mutated
``.mat`` files crash it with a segmentation fault (found by tests/test_properties_loaders.py),
and it inflates a compressed variable whole before reading its header. A BFM 2009 file
holds plain numeric matrices, so this module parses exactly that much of the format
(MathWorks, "MAT-File Format", v5) with every length checked against the data present:

    file     = 128-byte header (text, version, endian mark "IM"/"MI") + data elements
    element  = tag (uint32 type, uint32 nbytes; or the 4-byte "small" form) + data,
               padded to 8 bytes; type 15 (miCOMPRESSED) holds one zlib-compressed element
    miMATRIX = array flags (class, complex bit) + dimensions (int32) + name (int8)
               + real part (any numeric storage type, converted to the class), column-major

Only the variables asked for are decoded; every other element is skipped by its length.
Sparse, complex, cell, struct, object and character arrays are refused when asked for.
All sizes are charged to a :class:`~facelab.model.safe_pickle.ReadBudget` before
allocation, and compressed streams are inflated in bounded steps. Errors are ValueError.
"""

from __future__ import annotations

import zlib

import numpy as np

from facelab.model.safe_pickle import ReadBudget

__all__ = ["read_mat_v5"]

_MI_MATRIX, _MI_COMPRESSED = 14, 15
# storage types (miINT8 ... miUINT64) -> dtype code
_STORAGE = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8",
            12: "i8", 13: "u8"}
# array classes (mxDOUBLE ... mxUINT64) -> dtype code; 1-5 are cell/struct/object/char/sparse
_CLASSES = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4",
            14: "i8", 15: "u8"}
_CLASS_NAMES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse"}
_COMPLEX = 0x800
_MAX_DIMS = 8


class _Reader:
    """Bounds-checked reads from one byte buffer in the file's byte order."""

    def __init__(self, data, order: str, where: str):
        self.data, self.order, self.where = memoryview(data), order, where
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def tag(self, lenient: bool = False) -> tuple[int, int, int]:
        """(type, nbytes, start of data); the data of a small element is at start.

        lenient: clamp a length that runs past the buffer (reading only a prefix).
        """
        if self.left() < 8:
            raise ValueError(f"{self.where}: truncated element tag")
        first = int(np.frombuffer(self.data[self.pos:self.pos + 4], f"{self.order}u4")[0])
        if first >> 16:  # small data element: nbytes in the upper half, data in 4 bytes
            kind, nbytes, start = first & 0xFFFF, first >> 16, self.pos + 4
            if nbytes > 4:
                raise ValueError(f"{self.where}: malformed small data element")
            self.pos += 8
            return kind, nbytes, start
        nbytes = int(np.frombuffer(self.data[self.pos + 4:self.pos + 8], f"{self.order}u4")[0])
        start = self.pos + 8
        if nbytes > len(self.data) - start:
            if not lenient:
                raise ValueError(f"{self.where}: an element declares {nbytes:,} bytes but "
                                 f"only {len(self.data) - start:,} remain")
            nbytes = len(self.data) - start
        self.pos = min(start + nbytes + (-nbytes) % 8, len(self.data))
        return first, nbytes, start

    def array(self, expect_kind: tuple[int, ...], what: str) -> np.ndarray:
        kind, nbytes, start = self.tag()
        if kind not in expect_kind or kind not in _STORAGE:
            raise ValueError(f"{self.where}: {what} has storage type {kind}")
        dtype = np.dtype(_STORAGE[kind]).newbyteorder(self.order)
        if nbytes % dtype.itemsize:
            raise ValueError(f"{self.where}: {what} has {nbytes} bytes, not a whole number "
                             f"of {dtype} values")
        return np.frombuffer(self.data[start:start + nbytes], dtype)


def _inflate(stream, limit: int, where: str) -> bytes:
    """Inflate a zlib stream, refusing more than ``limit`` bytes of output."""
    inflate = zlib.decompressobj()
    parts, total = [], 0
    try:
        chunk = inflate.decompress(stream, limit + 1)
        while True:
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{where}: a compressed variable inflates to more than "
                                 f"max_bytes={limit:,} bytes; pass a larger max_bytes if "
                                 "this really is such a large model")
            if not inflate.unconsumed_tail:
                break
            chunk = inflate.decompress(inflate.unconsumed_tail, limit + 1 - total)
    except zlib.error as exc:
        raise ValueError(f"{where}: a compressed variable is corrupt ({exc})") from exc
    return b"".join(parts)


def _head_name(stream, order: str, where: str) -> str | None:
    """The name of the miMATRIX inside a compressed stream, from its first bytes only."""
    try:
        head = zlib.decompressobj().decompress(stream, 512)
    except zlib.error:
        return None
    try:
        return _matrix(_Reader(head, order, where), names_only=True, lenient=True)[0]
    except ValueError:
        return None


def _matrix(r: _Reader, *, names_only: bool = False, lenient: bool = False,
            budget: ReadBudget | None = None):
    """Parse one miMATRIX element at r.pos: (name, array or None).

    names_only: stop after the name. lenient: the buffer may hold only a prefix.
    """
    kind, nbytes, start = r.tag(lenient)
    if kind != _MI_MATRIX:
        raise ValueError(f"{r.where}: expected a matrix element, got type {kind}")
    body = _Reader(r.data[start:start + nbytes], r.order, r.where)
    flags = body.array((6,), "the array flags")
    if flags.size < 1:
        raise ValueError(f"{r.where}: empty array flags")
    mx_class, is_complex = int(flags[0]) & 0xFF, bool(int(flags[0]) & _COMPLEX)
    dims = body.array((5,), "the dimensions")
    name_bytes = body.array((1, 2), "the name")
    name = bytes(name_bytes.astype(np.uint8)).decode("latin1")
    if names_only:
        return name, None
    if mx_class not in _CLASSES:
        raise ValueError(f"{r.where}: {name} is a {_CLASS_NAMES.get(mx_class, 'unknown')} "
                         "array, not a numeric matrix")
    if is_complex:
        raise ValueError(f"{r.where}: {name} is complex, not a real matrix")
    if not 1 <= dims.size <= _MAX_DIMS or (dims < 0).any():
        raise ValueError(f"{r.where}: {name} declares malformed dimensions")
    shape = tuple(int(d) for d in dims)
    count = 1
    for d in shape:
        count *= d
    out_dtype = np.dtype(_CLASSES[mx_class])
    budget.charge(count * out_dtype.itemsize, name)
    if count == 0:
        return name, np.zeros(shape, out_dtype)
    real = body.array(tuple(_STORAGE), f"{name}'s values")
    if real.size != count:
        raise ValueError(f"{r.where}: {name} declares {count:,} values in {shape} but stores "
                         f"{real.size:,}")
    return name, real.astype(out_dtype).reshape(shape, order="F")


def read_mat_v5(path, names, budget: ReadBudget) -> dict[str, np.ndarray]:
    """Read the numeric matrices ``names`` from a MATLAB v5 file; others are skipped.

    Returns {name: array} for the names found (MATLAB shapes, at least 2-D). Raises
    ValueError for anything that is not a well-formed v5 file or a wanted variable that is
    not a real numeric matrix, and when sizes pass ``budget``.
    """
    where = "the MATLAB file"
    with open(path, "rb") as fh:
        data = fh.read(budget.max_bytes + 129)
    if len(data) > budget.max_bytes + 128:
        raise ValueError(f"the file is larger than max_bytes={budget.max_bytes:,}")
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        raise ValueError("not a MATLAB v5 file (no 128-byte header with an endian mark)")
    order = "<" if data[126:128] == b"IM" else ">"
    r = _Reader(data, order, where)
    r.pos = 128
    wanted, out = set(names), {}
    while r.left() >= 8 and wanted - set(out):
        element = r.pos
        kind, nbytes, start = r.tag()
        if kind == _MI_COMPRESSED:
            stream = r.data[start:start + nbytes]
            r.pos = start + nbytes  # compressed elements carry no padding
            if _head_name(stream, order, where) not in wanted:
                continue
            inner = _Reader(_inflate(stream, budget.max_bytes - budget.used, where), order,
                            where)
            name, value = _matrix(inner, budget=budget)
        elif kind == _MI_MATRIX:
            r.pos = element
            name = _matrix(r, names_only=True)[0]  # leaves r after the element
            if name not in wanted:
                continue
            r.pos = element
            name, value = _matrix(r, budget=budget)
        else:
            continue  # another element type: skipped by its length
        if name in wanted and name not in out:
            out[name] = value
    return out
