"""Property-based tests (Hypothesis) of the model and file loaders on hostile bytes.

Contract: a clear ``ValueError``/``TypeError`` (``UnsafePickleError`` is both a ValueError
and a ``pickle.UnpicklingError``), or a valid, finite result; never a crash, a hang or an
allocation beyond the loader's ``max_bytes``. Inputs: random byte strings, and real-layout
fixture files (tests/fixtures_models.py) mutated byte by byte (flips, truncation,
insertion) or structurally (random dtype codes, declared shapes and raw data lengths).
HDF5 files are mutated both structurally and byte by byte (libhdf5 is C code: its
errors must come out as ValueError too).
Example counts come from the Hypothesis profile (tests/conftest.py).
"""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
import h5py  # noqa: E402
from fixtures_models import (  # noqa: E402
    bfm2009_arrays,
    bfm2017_arrays,
    flame_arrays,
    tddfa_arrays,
    write_bfm2009_v5,
    write_flame,
    write_h5,
    write_tddfa,
)
from hypothesis import event, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from facelab.export import load_obj  # noqa: E402
from facelab.image_io import read_image  # noqa: E402
from facelab.model import load_3ddfa, load_bfm2009, load_bfm2017, load_flame  # noqa: E402
from facelab.model.morphable import MorphableModel  # noqa: E402
from facelab.model.safe_pickle import (  # noqa: E402
    ReadBudget,
    RestrictedUnpickler,
    decode_array,
)

LIMIT = 50_000_000  # max_bytes for the fuzzed loads: a mutated size cannot allocate more


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Bytes of valid fixture files in the real layouts, written once."""
    d = tmp_path_factory.mktemp("originals")
    write_flame(d / "flame.pkl", flame_arrays(k_total=310))
    write_tddfa(d, tddfa_arrays())
    write_bfm2009_v5(d / "bfm.mat", bfm2009_arrays())
    return {"flame": (d / "flame.pkl").read_bytes(),
            "tddfa": (d / "bfm_noneck_v3.pkl").read_bytes(),
            "stats": (d / "param_mean_std_62d_120x120.pkl").read_bytes(),
            "tri": (d / "tri.pkl").read_bytes(),
            "mat": (d / "bfm.mat").read_bytes()}


@st.composite
def mutations(draw, data: bytes):
    """``data`` with a few random byte flips, a truncation or an insertion."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "truncate", "insert", "overwrite"]))
        pos = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif out:
            value = draw(st.sampled_from([b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00",
                                          b"\xff" * 8, b"O8", b"V8"]))
            out[pos:pos + len(value)] = value
    return bytes(out)


def _accept(load, path) -> None:
    """Run a loader: a clear ValueError/TypeError, or a finite MorphableModel."""
    try:
        m = load(path)
    except (ValueError, TypeError) as err:
        event(f"clear {type(err).__name__}")
        assert str(err), "errors carry a message"
        return
    event("loaded")
    assert isinstance(m, MorphableModel)
    for name in ("mean_shape", "id_basis", "exp_basis", "mean_albedo", "albedo_basis"):
        assert torch.isfinite(getattr(m, name)).all(), name
    assert int(m.faces.min()) >= 0 and int(m.faces.max()) < m.num_vertices


# ------------------------------------------------------------------------ random bytes
@given(blob=st.binary(max_size=600))
def test_random_bytes_never_crash_a_loader(tmp_path_factory, blob):
    d = tmp_path_factory.mktemp("random")
    for name in ("generic_model.pkl", "01_MorphableModel.mat", "m.h5", "mesh.obj", "x.png"):
        (d / name).write_bytes(blob)
    _accept(lambda p: load_flame(p, max_bytes=LIMIT), d / "generic_model.pkl")
    _accept(lambda p: load_bfm2009(p, max_bytes=LIMIT), d / "01_MorphableModel.mat")
    if not blob.startswith(b"\x89HDF"):
        _accept(lambda p: load_bfm2017(p, max_bytes=LIMIT), d / "m.h5")
    for reader in (load_obj, read_image):
        try:
            reader(d / ("mesh.obj" if reader is load_obj else "x.png"))
        except (ValueError, TypeError):
            pass


# ------------------------------------------------------------- mutated real-layout files
@given(data=st.data())
def test_mutated_flame_pickles(originals, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    path.write_bytes(data.draw(mutations(originals["flame"])))
    _accept(lambda p: load_flame(p, max_bytes=LIMIT), path)


@given(data=st.data(), which=st.sampled_from(["tddfa", "stats", "tri"]))
def test_mutated_3ddfa_pickles(originals, tmp_path_factory, data, which):
    d = tmp_path_factory.mktemp("tddfa")
    names = {"tddfa": "bfm_noneck_v3.pkl", "stats": "param_mean_std_62d_120x120.pkl",
             "tri": "tri.pkl"}
    for key, name in names.items():
        blob = originals[key]
        (d / name).write_bytes(data.draw(mutations(blob)) if key == which else blob)
    _accept(lambda p: load_3ddfa(p, max_bytes=LIMIT), d / "bfm_noneck_v3.pkl")


@given(data=st.data())
def test_mutated_bfm2009_mat_files(originals, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("mat") / "01_MorphableModel.mat"
    path.write_bytes(data.draw(mutations(originals["mat"])))
    _accept(lambda p: load_bfm2009(p, max_bytes=LIMIT), path)


@pytest.fixture(scope="module")
def h5_original(tmp_path_factory):
    path = tmp_path_factory.mktemp("h5orig") / "m.h5"
    write_h5(path, bfm2017_arrays())
    return path.read_bytes()


@given(data=st.data())
def test_mutated_bfm2017_bytes(h5_original, tmp_path_factory, data):
    head, tail = h5_original[:4096], h5_original[4096:]  # metadata lives at the start
    path = tmp_path_factory.mktemp("h5bytes") / "m.h5"
    path.write_bytes(data.draw(mutations(head)) + tail)
    _accept(lambda p: load_bfm2017(p, max_bytes=LIMIT), path)


@given(key=st.sampled_from(sorted(bfm2017_arrays())),
       change=st.sampled_from(["drop", "transpose", "shrink", "nan", "int", "string", "group",
                               "huge"]))
def test_structurally_mutated_bfm2017_files(tmp_path_factory, key, change):
    arrays = bfm2017_arrays()
    a = np.asarray(arrays[key])
    path = tmp_path_factory.mktemp("h5") / "m.h5"
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if k != key:
                f.create_dataset(k, data=v)
            elif change == "transpose":
                f.create_dataset(k, data=np.ascontiguousarray(a.T))
            elif change == "shrink":
                f.create_dataset(k, data=a.reshape(-1)[: max(a.size // 2, 1)])
            elif change == "nan":
                f.create_dataset(k, data=np.full(a.shape, np.nan))
            elif change == "int":
                f.create_dataset(k, data=np.ones(a.shape, np.int8))
            elif change == "string":
                f.create_dataset(k, data=np.bytes_("not numbers"))
            elif change == "group":
                f.create_group(k)
            elif change == "huge":
                f.create_dataset(k, shape=(216, 10 ** 7), dtype="f8", chunks=(8, 1024))
    _accept(lambda p: load_bfm2017(p, max_bytes=LIMIT), path)


# ------------------------------------------------------------------ array recipes
class _Reduce:
    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args,
                                                                  self.state)


_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray


@given(code=st.sampled_from(["f8", "f4", "i4", "u1", "b1", "c16", "O8", "V8", "M8", "m8",
                             "U3", "S2", "f16", "i16", "b2", "x", "f8,f8", 7, None]),
       order=st.sampled_from(["<", ">", "|", "=", "?"]),
       shape=st.lists(st.one_of(st.integers(-2, 6), st.just(10 ** 12)), max_size=4),
       nbytes=st.one_of(st.none(), st.integers(0, 400)), fortran=st.booleans(),
       extra=st.sampled_from([None, None, ("f8", (2,)), ("a", "b")]))
def test_array_recipes_are_checked_before_allocation(code, order, shape, nbytes, fortran,
                                                     extra):
    if nbytes is None:  # bytes that match the declared shape (a plausible array)
        try:
            nbytes = int(np.prod(shape, dtype=object)) * np.dtype(str(code)).itemsize
        except (TypeError, ValueError):
            nbytes = 8
        if not 0 <= nbytes <= 400:
            nbytes = 8
    dtype = _Reduce(np.dtype, (code, False, True),
                    (3, order, extra, None, None, -1, -1, 0) if extra is None or
                    isinstance(extra[1], tuple) else (3, order, None, extra, {}, -1, -1, 0))
    arr = _Reduce(_MULTIARRAY._reconstruct, (np.ndarray, (0,), b"b"),
                  (1, tuple(shape), dtype, fortran, b"\x01" * nbytes))
    try:
        blob = pickle.dumps({"a": arr}, protocol=2)
    except Exception:  # crafting may fail: not a test
        return
    budget = ReadBudget(1 << 20)
    try:
        value = RestrictedUnpickler(io.BytesIO(blob)).load()["a"]
        out = decode_array(value, "a", budget)
    except ValueError as err:
        event("clear ValueError")
        assert str(err)
        return
    event("decoded")
    assert not out.dtype.hasobject and out.dtype.kind in "biufcSU"
    assert out.shape == tuple(shape) and out.nbytes == nbytes <= budget.max_bytes
