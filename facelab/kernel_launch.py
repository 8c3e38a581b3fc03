"""Kernel signatures, declared once, and the one ``launch`` for every op (CuPy or host emulation).

Each op's ``cuda.py`` declares its kernels' parameter lists once, as a small table::

    KERNELS = declare_kernels("interpolate", {
        "interpolate_forward": "in T* attrs, in i64* face_index, in T* bary, in i64* faces, "
                               "i32 B, i32 V, i32 H, i32 W, i32 C, out T* out",
    })

One parameter is ``<kind> <name>`` (scalar) or ``<direction> <kind>* <name>`` (pointer);
kinds are ``f32 f64 i32 i64 u64`` and ``T``, the kernel's float type: a kernel whose
declaration uses ``T`` exists twice, ``<name>_f32`` (T = f32) and ``<name>_f64`` (T = f64).
Directions say what the kernel does with the buffer:

* ``in``    read only (a ``const`` pointer in the ``.cu`` file);
* ``out``   written with plain stores; ``inout`` read and written (e.g. ``atomicMin``);
  both must come out bit-identical whatever order the GPU runs the threads in;
* ``sum``   a float buffer accumulated with ``atomicAdd``: its rounding depends on the order
  of the additions, so the order check below compares it within a proven bound.

From that one declaration :func:`launch` derives both launches:

* GPU (``emulate=False``): tensors become ``cupy.from_dlpack`` views and scalars NumPy scalars
  of the declared type (CuPy passes a scalar by its dtype), launched on torch's current stream;
* host (``emulate=True``): each value becomes the declared ctypes type and the values are passed
  by address (the ``cuLaunchKernel`` convention) to ``host_<kernel>`` of the op's host build
  (``facelab_cuda.h``). Before the first call the declaration is checked against the signature
  the host build derives from the kernel's own C parameter list, so the two cannot drift apart.

Shuffled-order check (host only). A GPU runs a grid's threads in no fixed order, so a kernel's
result must not depend on that order. The host launch runs every grid twice: once in a
pseudo-random order (blocks shuffled, and each block's threads shuffled; the seed is fixed per
kernel name, so runs are reproducible) and once in exactly the reverse order, so every pair of
threads runs in both relative orders. Outputs are snapshotted before the first run and restored
before the second (else ``atomicAdd`` accumulators would count twice); then ``out``/``inout``
buffers (and integer ``sum`` buffers) must be bit-identical, and float ``sum`` buffers must
agree within the recursive-summation bound described in :func:`_sum_bound`. A mismatch raises
:class:`KernelOrderError`. :func:`emulate_launch` returns the comparison as a report.
"""

from __future__ import annotations

import ctypes
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch

from facelab.kernel_sources import compile_for_host, raw_module

__all__ = [
    "BufferCheck",
    "KernelOrderError",
    "KernelSignature",
    "KernelTable",
    "OrderReport",
    "Param",
    "declare_kernels",
    "emulate_launch",
    "launch",
]

_SCALARS = {  # kind -> (NumPy scalar type for CuPy, ctypes type for the host build)
    "f32": (np.float32, ctypes.c_float),
    "f64": (np.float64, ctypes.c_double),
    "i32": (np.int32, ctypes.c_int32),
    "i64": (np.int64, ctypes.c_int64),
    "u64": (np.uint64, ctypes.c_uint64),
}
_BUFFER_DTYPES = {  # pointer kind -> torch dtypes accepted for it
    "f32": (torch.float32,),
    "f64": (torch.float64,),
    "i32": (torch.int32,),
    "i64": (torch.int64,),
    "u64": (torch.int64, torch.uint64),  # the rasterizer's packed keys live in int64 tensors
}
_DIRECTIONS = ("in", "out", "inout", "sum")
_PARAM = re.compile(r"^(?:(in|out|inout|sum)\s+)?(T|f32|f64|i32|i64|u64)(\*)?\s+([A-Za-z_]\w*)$")
_MAX_WATCH = 8  # fl_launch.watch in facelab_cuda.h


class KernelOrderError(RuntimeError):
    """An emulated kernel gave different results in two thread orders (order-dependent write)."""


@dataclass(frozen=True)
class Param:
    """One kernel parameter: ``kind`` is the (element) type, ``direction`` is None for scalars."""

    name: str
    kind: str
    direction: str | None = None

    @property
    def pointer(self) -> bool:
        return self.direction is not None

    @property
    def c_kind(self) -> str:
        """As the host build spells it: ``"i32"``, ``"f32*"``, ``"const i64*"``."""
        if not self.pointer:
            return self.kind
        return f"{'const ' if self.direction == 'in' else ''}{self.kind}*"


@dataclass(frozen=True)
class KernelSignature:
    """Kernel ``name`` of ``kernels/<op>.cu`` with its ordered parameters."""

    op: str
    name: str
    params: tuple[Param, ...]

    @property
    def c_signature(self) -> str:
        return ",".join(p.c_kind for p in self.params)

    def __str__(self) -> str:
        parts = [f"{p.direction + ' ' if p.pointer else ''}{p.c_kind.removeprefix('const ')} "
                 f"{p.name}" for p in self.params]
        return f"{self.name}({', '.join(parts)})"


def _parse(op: str, name: str, spec: str) -> tuple[Param, ...]:
    params = []
    for item in (s.strip() for s in spec.split(",")):
        m = _PARAM.match(item)
        if m is None:
            raise ValueError(f"{op}.{name}: cannot parse parameter {item!r} (expected "
                             "'<kind> <name>' or '<in|out|inout|sum> <kind>* <name>')")
        direction, kind, star, pname = m.groups()
        if bool(direction) != bool(star):
            raise ValueError(f"{op}.{name}: {item!r}: a pointer needs a direction "
                             f"{_DIRECTIONS} and a direction needs a pointer")
        params.append(Param(pname, kind, direction))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"{op}.{name}: duplicate parameter names in {names}")
    return tuple(params)


class KernelTable(Mapping):
    """The declared kernels of one op: full kernel name -> :class:`KernelSignature`."""

    def __init__(self, op: str, declarations: Mapping[str, str]):
        self.op = op
        self._kernels: dict[str, KernelSignature] = {}
        for base, spec in declarations.items():
            params = _parse(op, base, spec)
            if not any(p.kind == "T" for p in params):
                self._kernels[base] = KernelSignature(op, base, params)
                continue
            for real in ("f32", "f64"):  # one kernel per float type, named <base>_<real>
                concrete = tuple(Param(p.name, real if p.kind == "T" else p.kind, p.direction)
                                 for p in params)
                self._kernels[f"{base}_{real}"] = KernelSignature(op, f"{base}_{real}", concrete)

    def __getitem__(self, name: str) -> KernelSignature:
        try:
            return self._kernels[name]
        except KeyError:
            raise KeyError(f"{self.op}: no kernel {name!r}; declared: {sorted(self)}") from None

    def __iter__(self):
        return iter(self._kernels)

    def __len__(self) -> int:
        return len(self._kernels)

    def for_dtype(self, base: str, dtype: torch.dtype) -> KernelSignature:
        """The ``_f32`` or ``_f64`` variant of kernel ``base`` for a float32/float64 dtype."""
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{self.op}.{base}: expected a float32 or float64 dtype, got {dtype}")
        return self[f"{base}_{'f32' if dtype == torch.float32 else 'f64'}"]


def declare_kernels(op: str, declarations: Mapping[str, str]) -> KernelTable:
    """Declare the kernels of ``kernels/<op>.cu`` once (format: see the module docstring)."""
    return KernelTable(op, declarations)


# ----------------------------------------------------------------------------- arguments


def _scalar(sig: KernelSignature, p: Param, value):
    np_type = _SCALARS[p.kind][0]
    if p.kind.startswith("f"):
        if not isinstance(value, Real) or isinstance(value, bool):
            raise TypeError(f"{sig.name}: {p.name}: expected a real number, got "
                            f"{type(value).__name__}")
        return np_type(value)
    if not isinstance(value, Integral):  # includes NumPy integers and bool
        raise TypeError(f"{sig.name}: {p.name}: expected an integer, got {type(value).__name__}")
    info = np.iinfo(np_type)
    if not info.min <= int(value) <= info.max:
        raise OverflowError(f"{sig.name}: {p.name}: {int(value)} does not fit in {p.kind}")
    return np_type(int(value))


def _checked_args(sig: KernelSignature, args: tuple, emulate: bool) -> list:
    """Tensors checked against the declaration; scalars converted to their declared type."""
    if len(args) != len(sig.params):
        raise TypeError(f"{sig.name}: expected {len(sig.params)} arguments, got {len(args)}; "
                        f"declared as {sig}")
    if not any(p.pointer for p in sig.params):
        raise TypeError(f"{sig.name}: a kernel needs at least one buffer parameter")
    out, device = [], None
    for p, a in zip(sig.params, args, strict=True):
        if not p.pointer:
            out.append(_scalar(sig, p, a))
            continue
        if not isinstance(a, torch.Tensor):
            raise TypeError(f"{sig.name}: {p.name}: expected a tensor, got {type(a).__name__}")
        if a.dtype not in _BUFFER_DTYPES[p.kind]:
            raise TypeError(f"{sig.name}: {p.name}: expected {p.kind} elements, got {a.dtype}")
        if not a.is_contiguous():
            raise ValueError(f"{sig.name}: {p.name}: expected a contiguous tensor")
        if emulate and a.device.type != "cpu":
            raise ValueError(f"{sig.name}: {p.name}: emulate=True needs CPU tensors, "
                             f"got {a.device}")
        if not emulate:
            if a.device.type != "cuda":
                raise ValueError(f"{sig.name}: {p.name}: expected a CUDA tensor, got {a.device}")
            if device is not None and a.device != device:
                raise ValueError(f"{sig.name}: {p.name}: on {a.device}, others on {device}")
            device = a.device
        out.append(a)
    return out


def _dims(name: str, dims) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in dims)
    if not 1 <= len(dims) <= 3 or min(dims) < 1:
        raise ValueError(f"{name}: expected 1 to 3 positive sizes, got {dims}")
    return (*dims, 1, 1)[:3]


def launch(sig: KernelSignature, grid, block, args: tuple, *, emulate: bool) -> None:
    """Launch declared kernel ``sig`` with a grid and block of up to 3 dimensions.

    args: in the declared order; buffers are contiguous torch tensors of the declared element
    type, scalars Python/NumPy numbers (converted to the declared type). ``emulate=False``: all
    tensors on one CUDA device, launched with CuPy on torch's current stream of that device.
    ``emulate=True``: CPU tensors, run by the host build twice in shuffled orders (module
    docstring); raises :class:`KernelOrderError` if the two runs disagree.
    """
    grid, block = _dims("grid", grid), _dims("block", block)
    values = _checked_args(sig, args, emulate)
    if emulate:
        report = _emulate(sig, grid, block, values)
        if not report.ok:
            raise KernelOrderError(str(report))
        return
    import cupy

    device = next(a.device for a in values if isinstance(a, torch.Tensor))
    index = device.index if device.index is not None else torch.cuda.current_device()
    fn = raw_module(sig.op, index).get_function(sig.name)
    stream = torch.cuda.current_stream(index)
    with cupy.cuda.Device(index), cupy.cuda.ExternalStream(stream.cuda_stream, index):
        fn(grid, block, tuple(cupy.from_dlpack(a) if isinstance(a, torch.Tensor) else a
                              for a in values))


# ----------------------------------------------------------------------------- host emulation


class _SumWatch(ctypes.Structure):  # fl_sum_watch in facelab_cuda.h
    _fields_ = [("base", ctypes.c_void_p), ("n", ctypes.c_ulonglong),
                ("elem_size", ctypes.c_ulonglong), ("abs_sum", ctypes.c_void_p),
                ("count", ctypes.c_void_p)]


class _Launch(ctypes.Structure):  # fl_launch in facelab_cuda.h
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("seed", ctypes.c_ulonglong), ("reverse", ctypes.c_int),
                ("n_watch", ctypes.c_int), ("watch", _SumWatch * _MAX_WATCH)]


@dataclass(frozen=True)
class BufferCheck:
    """How one written buffer compared between the two thread orders.

    max_diff: largest |first - second|; bound_ratio: largest |first - second| / bound over the
    elements of a float ``sum`` buffer (0 when bit-identical; <= 1 passes); mismatches: count of
    elements outside what is allowed (bit-identity, or the bound for float ``sum`` buffers).
    """

    name: str
    direction: str
    bit_identical: bool
    max_diff: float
    bound_ratio: float
    mismatches: int


@dataclass(frozen=True)
class OrderReport:
    """Result of running one emulated launch in a shuffled order and in its reverse."""

    kernel: str
    seed: int
    buffers: tuple[BufferCheck, ...]

    @property
    def ok(self) -> bool:
        return all(b.mismatches == 0 for b in self.buffers)

    def __str__(self) -> str:
        bad = [b for b in self.buffers if b.mismatches]
        if not bad:
            return f"{self.kernel}: same results in both thread orders"
        lines = [f"{self.kernel}: results depend on the order the threads run in (seed "
                 f"{self.seed} and its reverse) — an order-dependent write or a race:"]
        for b in bad:
            lines.append(f"  {b.name} ({b.direction}): {b.mismatches} elements differ, "
                         f"max |difference| {b.max_diff:g}")
        return "\n".join(lines)


def _host_function(sig: KernelSignature):
    lib = compile_for_host(sig.op)
    try:
        fn = getattr(lib, f"host_{sig.name}")
        signature = getattr(lib, f"host_{sig.name}_signature")
    except AttributeError:
        raise RuntimeError(f"{sig.name}: kernels/{sig.op}.cu has no FL_HOST_LAUNCHER("
                           f"{sig.name})") from None
    signature.restype = ctypes.c_char_p
    signature.argtypes = []
    actual = signature().decode()
    if actual != sig.c_signature:
        raise RuntimeError(f"{sig.name}: declared as ({sig.c_signature}) but kernels/{sig.op}.cu "
                           f"has ({actual})")
    fn.restype = None
    fn.argtypes = [ctypes.POINTER(_Launch), ctypes.POINTER(ctypes.c_void_p)]
    return fn


def _seed(name: str) -> int:
    return zlib.crc32(name.encode()) | 1


def _sum_bound(abs_sum: torch.Tensor, count: torch.Tensor, initial: torch.Tensor,
               dtype: torch.dtype) -> torch.Tensor:
    """Largest legitimate |difference| of one float atomicAdd accumulator between two orders.

    An element starts at x_0 (its initial value) and receives n = ``count`` additions of x_1 ..
    x_n in some order; each ``old + v`` is rounded once. Recursive summation in any order
    satisfies |computed - exact| <= gamma_n * sum_i |x_i| with gamma_n = n u / (1 - n u) and
    u = 2^-24 (float32) or 2^-53 (float64) (Higham, Accuracy and Stability of Numerical
    Algorithms, 2nd ed., Sec. 4.2); additions whose result is subnormal are exact, so there is
    no underflow term. Two orders therefore differ by at most 2 gamma_n sum_i |x_i|. The host
    build records n and sum_{i>=1} |x_i| per element (``fl_sum_watch``); we add |x_0|.
    """
    u = 2.0**-24 if dtype == torch.float32 else 2.0**-53
    n = count.to(torch.float64)
    gamma = n * u / (1 - n * u)
    return 2 * gamma * (abs_sum + initial.abs().to(torch.float64).reshape(-1))


def _compare(p: Param, first: torch.Tensor, second: torch.Tensor, bound) -> BufferCheck:
    """Compare the two runs' results of one written buffer, bit for bit or within ``bound``."""
    a, b = first.reshape(-1).numpy(), second.reshape(-1).numpy()
    bits = f"u{a.itemsize}"
    same = a.view(bits) == b.view(bits)  # (N,) bit-identical elements
    if a.dtype.kind == "f":
        same_or_nan = same | (np.isnan(a) & np.isnan(b))
        with np.errstate(invalid="ignore"):  # inf - inf: nan, counted as different
            diff = np.where(same_or_nan, 0.0, np.abs(a.astype(np.float64) - b))
        max_diff = float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))
    else:  # exact, in Python integers (float64 would round 64-bit keys' low bits away)
        same_or_nan = same
        diff = None
        max_diff = float(max((abs(int(x) - int(y)) for x, y in zip(a[~same], b[~same],
                                                                    strict=True)), default=0))
    if bound is None:
        allowed, ratio = same_or_nan, 0.0
    else:
        bound = bound.numpy()
        allowed = same_or_nan | (diff <= bound)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(diff > 0, diff / bound, 0.0)
        ratio = float(np.nan_to_num(ratios, nan=np.inf).max(initial=0.0))
    return BufferCheck(p.name, p.direction, bool(same.all()), max_diff, ratio,
                       int((~allowed).sum()))


def _run_once(fn, grid, block, seed: int, reverse: bool, argv, watched) -> list:
    """One host run; returns the (abs_sum, count) shadow tensors of the watched buffers."""
    cfg = _Launch()
    cfg.grid[:] = grid
    cfg.block[:] = block
    cfg.seed, cfg.reverse, cfg.n_watch = seed, int(reverse), len(watched)
    shadows = []
    for w, t in enumerate(watched):
        abs_sum = torch.zeros(t.numel(), dtype=torch.float64)
        count = torch.zeros(t.numel(), dtype=torch.int64)
        cfg.watch[w] = _SumWatch(t.data_ptr(), t.numel(), t.element_size(), abs_sum.data_ptr(),
                                 count.data_ptr())
        shadows.append((abs_sum, count))
    fn(ctypes.byref(cfg), argv)
    return shadows


def _emulate(sig: KernelSignature, grid, block, values: list) -> OrderReport:
    fn = _host_function(sig)
    cvalues = [ctypes.c_void_p(v.data_ptr()) if isinstance(v, torch.Tensor)
               else _SCALARS[p.kind][1](v.item()) for p, v in zip(sig.params, values, strict=True)]
    argv = (ctypes.c_void_p * max(1, len(cvalues)))(*[ctypes.addressof(c) for c in cvalues])
    written = [(p, v) for p, v in zip(sig.params, values, strict=True)
               if p.pointer and p.direction != "in"]
    watched_params = [(p, v) for p, v in written
                      if p.direction == "sum" and v.is_floating_point()]
    if len(watched_params) > _MAX_WATCH:
        raise ValueError(f"{sig.name}: at most {_MAX_WATCH} float 'sum' buffers are supported")
    watched = [v for _, v in watched_params]
    seed = _seed(sig.name)
    initial = [v.clone() for _, v in written]  # snapshot: the second run starts from the same
    shadows1 = _run_once(fn, grid, block, seed, False, argv, watched)
    first = [v.clone() for _, v in written]
    for (_, v), saved in zip(written, initial, strict=True):
        v.copy_(saved)  # restore, else atomicAdd accumulators would count twice
    shadows2 = _run_once(fn, grid, block, seed, True, argv, watched)
    checks = []
    for (p, v), before, result in zip(written, initial, first, strict=True):
        bound = None
        if any(v is w for w in watched):
            w = next(i for i, t in enumerate(watched) if t is v)
            abs_sum = torch.maximum(shadows1[w][0], shadows2[w][0])
            count = torch.maximum(shadows1[w][1], shadows2[w][1])
            bound = _sum_bound(abs_sum, count, before, v.dtype)
        checks.append(_compare(p, result, v, bound))
    return OrderReport(sig.name, seed, tuple(checks))


def emulate_launch(sig: KernelSignature, grid, block, args: tuple) -> OrderReport:
    """Run ``sig`` on the host in a shuffled thread order and its reverse; report, don't raise.

    Same arguments as :func:`launch` with ``emulate=True``; the buffers hold the second run's
    results afterwards.
    """
    return _emulate(sig, _dims("grid", grid), _dims("block", block),
                    _checked_args(sig, args, emulate=True))
