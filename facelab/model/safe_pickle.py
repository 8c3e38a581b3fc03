"""Reading model pickles as data: parse the file, never execute it, never trust a size.

A Python pickle is a program: every global it names is called with arguments the
file chooses. Even NumPy's own reconstruction helpers are unsafe with hostile
arguments (``numpy.core.multiarray.scalar`` with a crafted object dtype increments a
reference count at an address the file picks), so :class:`RestrictedUnpickler`
resolves *no* NumPy, SciPy or chumpy callable at all. Each allowed global is mapped
to an inert recipe that only records its arguments:

* ``numpy.core.multiarray._reconstruct`` + ``BUILD``  -> :class:`ArrayRecipe`
  (shape, dtype recipe, Fortran flag, raw bytes);
* ``numpy.core.numeric._frombuffer`` (protocol 5)      -> :class:`ArrayRecipe`;
* ``numpy.core.multiarray.scalar``                     -> :class:`ArrayRecipe` of shape ();
* ``numpy.dtype``                                      -> :class:`DtypeRecipe`;
* SciPy CSC/CSR matrices                               -> :class:`SparseStandIn`;
* chumpy classes                                       -> :class:`ChumpyStandIn`;
* ``_codecs.encode(text, "latin1")`` / ``bytes()``     -> bytes (how protocol <= 2 stores them).

Only after unpickling does :func:`decode_array` turn a recipe into an array, and only
with checks: the dtype must be a plain numeric/bool/string dtype (never an object,
structured or sub-array dtype; it is rebuilt from its short code such as ``"<f8"``),
the declared shape must be non-negative integers whose byte size is exactly the
length of the stored bytes, and every array's bytes are charged to a
:class:`ReadBudget` *before* anything is allocated. Sparse matrices are checked
(shape against the caller's expectation and the budget, ``indptr`` monotone,
indices in range) before they are densified, in NumPy, without SciPy.

Errors are ``ValueError``; only an allow-list refusal
(:class:`UnsafePickleError`, also a ``pickle.UnpicklingError``) says that the
file may try to run code.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import re

import numpy as np

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ArrayRecipe",
    "ChumpyStandIn",
    "DtypeRecipe",
    "ReadBudget",
    "RestrictedUnpickler",
    "SparseStandIn",
    "UnsafePickleError",
    "decode_array",
    "restricted_load",
]

#: Default limit on the bytes of all arrays read from one model file (1 GiB). The
#: released BFM 2009/2017, FLAME and 3DDFA_V2 files need at most about 0.5 GiB;
#: pass ``max_bytes=`` to a loader to read a genuinely larger model.
DEFAULT_MAX_BYTES = 1 << 30
# Arrays stored as (nested) Python lists are small tables in real files; a list of more
# numbers than this is refused (shared sub-lists make huge lists from a few bytes).
_MAX_LIST_NUMBERS = 1 << 20


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle names a global outside the allow-list (it may try to run code)."""


class ReadBudget:
    """Bytes a loader may still allocate for one file's arrays; charged before allocating.

    max_bytes: the limit (int > 0). what: the file, for messages.
    """

    def __init__(self, max_bytes: int, what: str = "the file"):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)):
            raise TypeError(f"max_bytes: expected an int, got {type(max_bytes).__name__}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes: expected an int > 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.used = 0
        self.what = what

    def charge(self, nbytes: int, name: str) -> None:
        """Count ``nbytes`` for array ``name``; raise ValueError past the limit."""
        nbytes = int(nbytes)
        if nbytes < 0 or self.used + nbytes > self.max_bytes:
            raise ValueError(
                f"{name} declares {nbytes:,} bytes, which takes {self.what} past the limit "
                f"max_bytes={self.max_bytes:,} ({self.used:,} bytes already read); pass a "
                f"larger max_bytes to the loader if this really is such a large model"
            )
        self.used += nbytes


# ------------------------------------------------------------------------- recipes
class _Marker:
    """An allowed global that is only ever an argument (``numpy.ndarray``, ``object``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise ValueError(f"{self.name} cannot be called while reading a model file")

    def __setstate__(self, state):  # BUILD on a shared marker must not change it
        raise ValueError(f"{self.name} cannot be given a state")

    def __repr__(self) -> str:
        return f"<{self.name}>"


class _Guarded:
    """An allowed callable; a pickle's BUILD cannot set attributes on it (no ``__dict__``)."""

    __slots__ = ("fn", "name")

    def __init__(self, fn, name: str):
        self.fn, self.name = fn, name

    def __call__(self, *args):
        return self.fn(*args)

    def __setstate__(self, state):
        raise ValueError(f"{self.name} cannot be given a state")


_NDARRAY = _Marker("numpy.ndarray")
_OBJECT = _Marker("object")


class DtypeRecipe:
    """A pickled ``numpy.dtype``: its code (``"f8"``) and state; no dtype is built here."""

    code = None
    state = None

    def __init__(self, code=None, align=False, copy=True):
        self.code = code
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def build(self, name: str) -> np.dtype:
        """The checked dtype: plain bool/int/uint/float/complex/bytes/str, no fields."""
        code = self.code
        shown = repr(code[:20]) if isinstance(code, str) else f"of type {type(code).__name__}"
        if not isinstance(code, str) or not re.fullmatch(r"[biufc]\d{1,2}|[SU]\d{1,6}", code):
            raise ValueError(f"{name} has dtype {shown}; only plain numeric, bool or string "
                             "arrays can be read (no object or structured dtypes)")
        order = "|"
        st = self.state
        if st is not None:
            if not isinstance(st, tuple) or len(st) not in (8, 9):
                raise ValueError(f"{name} has a malformed dtype state")
            order, subarray, names, fields = st[1], st[2], st[3], st[4]
            if subarray is not None or names is not None or fields is not None:
                raise ValueError(f"{name} has a structured or sub-array dtype")
            if not isinstance(order, str) or order not in ("<", ">", "|", "="):
                raise ValueError(f"{name} has a malformed dtype byte order")
        try:
            dtype = np.dtype(code)
        except TypeError as exc:  # e.g. "i16": well-formed but not a NumPy type
            raise ValueError(f"{name} has dtype {shown}, which NumPy does not know") from exc
        return dtype.newbyteorder(order) if order in "<>" else dtype


class ArrayRecipe:
    """A pickled NumPy array or scalar: declared shape, dtype recipe and raw bytes.

    Nothing is allocated until :func:`decode_array` has checked them.
    """

    shape = dtype = data = decoded = None
    fortran = scalar = False

    def __init__(self, shape=None, dtype=None, data=None, fortran=False, scalar=False):
        self.shape, self.dtype, self.data = shape, dtype, data
        self.fortran, self.scalar = fortran, scalar
        self.decoded = None

    @classmethod
    def reconstruct(cls, subtype=None, shape=None, dtype_code=None, *rest):
        """Stands in for ``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``."""
        if subtype is not _NDARRAY:
            raise ValueError("array reconstruction of a type other than numpy.ndarray")
        return cls()

    @classmethod
    def frombuffer(cls, buffer=None, dtype=None, shape=None, order="C", *rest):
        """Stands in for ``numpy.core.numeric._frombuffer(buf, dtype, shape, order)``."""
        return cls(shape=shape, dtype=dtype, data=buffer, fortran=order == "F")

    @classmethod
    def from_scalar(cls, dtype=None, data=None, *rest):
        """Stands in for ``numpy.core.multiarray.scalar(dtype, bytes)``."""
        return cls(shape=(), dtype=dtype, data=data, scalar=True)

    def __setstate__(self, state):
        # ndarray.__setstate__: (version, shape, dtype, is_fortran, rawdata) or without version
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            raise ValueError("malformed array state")
        self.shape, self.dtype, self.fortran, self.data = state


def _latin1_encode(text=None, encoding="utf-8", errors="strict"):
    """Stands in for ``_codecs.encode``: protocol <= 2 stores bytes as latin-1 text."""
    if not isinstance(text, str) or str(encoding).lower().replace("_", "-") not in (
            "latin1", "latin-1", "iso-8859-1", "iso8859-1"):
        raise ValueError("_codecs.encode is only accepted for latin-1 text")
    return text.encode("latin1")


def _bytes(*args):
    """Stands in for ``bytes()``/``bytearray(b)``: empty, or a copy of existing bytes."""
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    raise ValueError("bytes()/bytearray() is only accepted with no argument or bytes")


def _reconstructor(cls=None, base=None, state=None):
    """Stands in for ``copyreg._reconstructor`` (protocol 0/1 objects): stand-ins only."""
    if base is _OBJECT and isinstance(cls, type) and issubclass(cls, (ChumpyStandIn,
                                                                      SparseStandIn)):
        return cls.__new__(cls)
    raise ValueError("copyreg._reconstructor is only accepted for chumpy/sparse containers")


class ChumpyStandIn:
    """Inert stand-in for a chumpy object: it only records the pickled state.

    ``chumpy_class`` names the original class (e.g. ``"chumpy.ch.Ch"``); the
    array of a plain ``Ch`` is ``state["x"]``. Nothing from chumpy is imported.
    """

    chumpy_class = "chumpy"
    state: dict | None = None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}


class SparseStandIn:
    """Inert stand-in for a pickled SciPy CSC/CSR matrix: it records the state only.

    :func:`decode_array` checks and densifies it (``data``, ``indices``, ``indptr``, shape).
    """

    sparse_format = "csc"
    state: dict | None = None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


# --------------------------------------------------------------------- unpickler
_NUMPY_RECIPES = {
    ("multiarray", "_reconstruct"): _Guarded(ArrayRecipe.reconstruct, "_reconstruct"),
    ("multiarray", "scalar"): _Guarded(ArrayRecipe.from_scalar, "scalar"),
    ("numeric", "_frombuffer"): _Guarded(ArrayRecipe.frombuffer, "_frombuffer"),
}
_BUILTINS = {"set": set, "frozenset": frozenset, "complex": complex, "object": _OBJECT,
             "bytes": _Guarded(_bytes, "bytes"), "bytearray": _Guarded(_bytes, "bytearray")}
_CODECS_ENCODE = _Guarded(_latin1_encode, "_codecs.encode")
_RECONSTRUCTOR = _Guarded(_reconstructor, "copyreg._reconstructor")
_SPARSE_MODULES = {
    "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr",
}
_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "csc_array", "csr_array"}


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose every allowed global is an inert recipe (module docs).

    Allowed: NumPy array/scalar/dtype reconstruction (``numpy.core`` and ``numpy._core``
    names) as :class:`ArrayRecipe` / :class:`DtypeRecipe`, ``numpy.ndarray`` as a marker,
    ``_codecs.encode`` for latin-1 text, ``copyreg._reconstructor`` for stand-ins, and
    the builtins set/frozenset/complex/bytes/bytearray/object; with ``allow_sparse``
    SciPy CSC/CSR matrices (as :class:`SparseStandIn`); with ``allow_chumpy`` any
    ``chumpy.*`` class (as a :class:`ChumpyStandIn` subclass). Nothing is imported.
    Anything else (``os.system``, ``builtins.eval``, ...) raises
    :class:`UnsafePickleError` naming the global, before it could be called.
    Python 2 names are mapped as ``pickle`` does.
    """

    def __init__(self, file, *, allow_chumpy: bool = True, allow_sparse: bool = True):
        super().__init__(file, encoding="latin1")
        self.allow_chumpy = allow_chumpy
        self.allow_sparse = allow_sparse
        self._stand_ins: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        mod, nm = module, name
        if (mod, nm) in _compat_pickle.NAME_MAPPING:  # Python 2 names (copy_reg, __builtin__)
            mod, nm = _compat_pickle.NAME_MAPPING[(mod, nm)]
        elif mod in _compat_pickle.IMPORT_MAPPING:
            mod = _compat_pickle.IMPORT_MAPPING[mod]
        if mod.startswith(("numpy.core.", "numpy._core.")):
            recipe = _NUMPY_RECIPES.get((mod.split(".", 2)[2], nm))
            if recipe is not None:
                return recipe
        if mod == "numpy" and nm == "ndarray":
            return _NDARRAY
        if mod == "numpy" and nm == "dtype":
            return DtypeRecipe
        if mod == "_codecs" and nm == "encode":
            return _CODECS_ENCODE
        if mod == "copyreg" and nm == "_reconstructor":
            return _RECONSTRUCTOR
        if mod == "builtins" and nm in _BUILTINS:
            return _BUILTINS[nm]
        if self.allow_sparse and mod in _SPARSE_MODULES and nm in _SPARSE_NAMES:
            return self._stand_in(SparseStandIn, f"{mod}.{nm}", sparse_format=nm[:3])
        if self.allow_chumpy and (mod == "chumpy" or mod.startswith("chumpy.")):
            return self._stand_in(ChumpyStandIn, f"{mod}.{nm}", chumpy_class=f"{mod}.{nm}")
        raise UnsafePickleError(
            f"refusing to load global '{module[:80]}.{name[:80]}': facelab reads model "
            "pickles with a restricted unpickler that only allows NumPy arrays"
            + (", SciPy sparse matrices" if self.allow_sparse else "")
            + (" and chumpy containers" if self.allow_chumpy else "")
            + "; this file is not a plain model file and may try to run code"
        )

    def persistent_load(self, pid):
        raise ValueError("persistent ids are not allowed in model files")

    def _stand_in(self, base: type, qualname: str, **attrs) -> type:
        if qualname not in self._stand_ins:
            self._stand_ins[qualname] = type(qualname.rsplit(".", 1)[1], (base,), attrs)
        return self._stand_ins[qualname]


def restricted_load(path, *, allow_chumpy: bool = True, allow_sparse: bool = True,
                    max_bytes: int = DEFAULT_MAX_BYTES):
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; arrays stay recipes.

    The file is read whole (it must be at most ``max_bytes``) and parsed from memory,
    so a length field cannot make the parser allocate more than the file holds.
    Raises :class:`UnsafePickleError` for a global outside the allow-list and
    ValueError for anything else that is not a readable pickle.
    """
    size = os.path.getsize(path)
    if size > max_bytes:
        raise ValueError(f"the file has {size:,} bytes, above the limit max_bytes={max_bytes:,}; "
                         "pass a larger max_bytes to the loader if this really is such a "
                         "large model")
    with open(path, "rb") as fh:
        blob = fh.read()
    try:
        return RestrictedUnpickler(io.BytesIO(blob), allow_chumpy=allow_chumpy,
                                   allow_sparse=allow_sparse).load()
    except UnsafePickleError:
        raise
    except RecursionError as exc:
        raise ValueError("cannot be unpickled (nested too deeply)") from exc
    except MemoryError as exc:
        raise ValueError("cannot be unpickled (out of memory)") from exc
    except Exception as exc:  # truncated file, not a pickle, a recipe refusing its arguments
        raise ValueError(f"cannot be unpickled ({type(exc).__name__}: {exc})") from exc


# ------------------------------------------------------------------------ decoding
def _as_bytes(data, name: str) -> bytes | bytearray | memoryview:
    if isinstance(data, str):  # protocol 0/2 and Python 2 store raw bytes as latin-1 text
        try:
            return data.encode("latin1")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{name} stores its bytes as non-latin-1 text") from exc
    if isinstance(data, (bytes, bytearray)):
        return data
    if isinstance(data, pickle.PickleBuffer):
        return data.raw()
    raise ValueError(f"{name} has no raw data (got {type(data).__name__})")


def _shape(shape, name: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if (not isinstance(shape, (tuple, list)) or len(shape) > 8
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                       for n in shape)):
        raise ValueError(f"{name} declares a malformed shape (a {type(shape).__name__}, "
                         "not up to 8 non-negative integers)")
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"{name} declares a negative size in its shape {shape}")
    return shape


def _decode_recipe(r: ArrayRecipe, name: str, budget: ReadBudget) -> np.ndarray:
    if r.decoded is not None:
        return r.decoded
    if not isinstance(r.dtype, DtypeRecipe):
        raise ValueError(f"{name} has no valid dtype")
    dtype = r.dtype.build(name)
    shape = _shape(r.shape, name)
    count = 1
    for n in shape:
        count *= n
    nbytes = count * dtype.itemsize
    budget.charge(nbytes, name)  # before anything is allocated
    raw = _as_bytes(r.data, name)
    if len(raw) != nbytes:
        raise ValueError(f"{name} declares shape {shape} of {dtype} ({nbytes:,} bytes) but "
                         f"stores {len(raw):,} bytes")
    flat = np.frombuffer(raw, dtype=dtype, count=count)
    arr = np.array(flat.reshape(shape, order="F" if r.fortran else "C"), order="C")
    if r.scalar:
        arr = arr[()]
        arr = np.asarray(arr)
    r.decoded = arr
    return arr


def _leaf_count(value, name: str, limit: int, memo: dict) -> int:
    """Number of scalars in a nested list/tuple, shared sub-lists counted once per use."""
    key = id(value)
    if key in memo:
        if memo[key] is None:
            raise ValueError(f"{name} is a list that contains itself")
        return memo[key]
    memo[key] = None
    total = 0
    for item in value:
        total += _leaf_count(item, name, limit, memo) if isinstance(item, (list, tuple)) else 1
        if total > limit:
            raise ValueError(f"{name} is a nested list of more than {limit:,} numbers")
    memo[key] = total
    return total


def _densify(s: SparseStandIn, name: str, budget: ReadBudget, expected_shape) -> np.ndarray:
    st = s.state or {}
    shape = st.get("_shape", st.get("shape"))
    parts = {k: st.get(k) for k in ("data", "indices", "indptr")}
    if shape is None or any(p is None for p in parts.values()):
        raise ValueError(f"{name}: sparse matrix state lacks data/indices/indptr/shape "
                         f"(keys {sorted(k for k in st if isinstance(k, str))[:20]})")
    shape = _shape(shape, name)
    if len(shape) != 2:
        raise ValueError(f"{name}: a sparse matrix must be 2-D, got shape {shape}")
    if expected_shape is not None and shape != tuple(expected_shape):
        raise ValueError(f"{name} must be {tuple(expected_shape)}, got a sparse matrix of "
                         f"shape {shape}")
    data = decode_array(parts["data"], f"{name}.data", budget)
    indices = decode_array(parts["indices"], f"{name}.indices", budget)
    indptr = decode_array(parts["indptr"], f"{name}.indptr", budget)
    rows, cols = shape
    major, minor = (cols, rows) if s.sparse_format == "csc" else (rows, cols)
    for key, a in (("indices", indices), ("indptr", indptr)):
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name}.{key} must be a 1-D integer array, got {a.shape} {a.dtype}")
    if data.ndim != 1 or data.dtype.kind not in "biuf":
        raise ValueError(f"{name}.data must be a 1-D numeric array, got {data.shape} "
                         f"{data.dtype}")
    nnz = data.shape[0]
    if indices.shape[0] != nnz or indptr.shape[0] != major + 1:
        raise ValueError(f"{name}: sparse arrays disagree (data {nnz}, indices "
                         f"{indices.shape[0]}, indptr {indptr.shape[0]} for {major} columns)")
    ptr = indptr.astype(np.int64)
    if ptr[0] != 0 or ptr[-1] != nnz or (np.diff(ptr) < 0).any():
        raise ValueError(f"{name}: sparse indptr must rise from 0 to {nnz}")
    if nnz and (indices.min() < 0 or indices.max() >= minor):
        raise ValueError(f"{name}: sparse indices must lie in [0, {minor})")
    budget.charge(rows * cols * 8, f"{name} (dense)")
    dense = np.zeros((major, minor), np.float64)
    majors = np.repeat(np.arange(major), np.diff(ptr))
    np.add.at(dense, (majors, indices.astype(np.int64)), data.astype(np.float64))
    return dense.T.copy() if s.sparse_format == "csc" else dense


def decode_array(value, name: str, budget: ReadBudget, *, expected_shape=None) -> np.ndarray:
    """A checked NumPy array from an unpickled value (module docs); ValueError otherwise.

    value: an :class:`ArrayRecipe`, chumpy ``Ch`` (its ``x``), sparse stand-in, number
        or (nested) list of numbers.
    name: the key, for messages. budget: the file's :class:`ReadBudget`.
    expected_shape: for sparse matrices, the shape required before densifying.
    """
    if isinstance(value, ArrayRecipe):
        return _decode_recipe(value, name, budget)
    if isinstance(value, SparseStandIn):
        return _densify(value, name, budget, expected_shape)
    if isinstance(value, ChumpyStandIn):
        state = value.state or {}
        x = state.get("x")
        if isinstance(x, (ArrayRecipe, SparseStandIn, ChumpyStandIn, float, int)) and not \
                isinstance(x, bool):
            return decode_array(x, name, budget, expected_shape=expected_shape)
        raise ValueError(
            f"{name} is a {value.chumpy_class} object whose array cannot be recovered "
            f"without chumpy (state keys {sorted(k for k in state if isinstance(k, str))[:20]})"
        )
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        return np.asarray(value)
    if isinstance(value, (list, tuple)):
        try:
            _leaf_count(value, name, min(budget.max_bytes // 8, _MAX_LIST_NUMBERS), {})
        except RecursionError as exc:
            raise ValueError(f"{name} is a list nested too deeply") from exc
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} is a list that is not a regular array of numbers") from exc
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} is a list that is not a regular array of numbers")
        budget.charge(arr.nbytes, name)
        return arr
    raise ValueError(f"{name} must be an array, got {type(value).__name__}")


def key_list(data: dict) -> list[str]:
    """The string keys of an unpickled dict, sorted, at most 30 (for messages)."""
    return sorted(k[:40] for k in data if isinstance(k, str))[:30]
