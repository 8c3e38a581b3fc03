"""Hostile and careless model files: parsed, never executed; sizes checked before allocation.

Every case is written here, then all are loaded in one child Python process, so a
segfault (the old object-dtype ``scalar`` exploit) or an allocation bomb fails these
tests instead of killing the suite. The child reports, per case, the exception type,
its message and the peak-memory growth during the load.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse
from fixtures_models import (
    bfm2009_arrays,
    bfm2017_arrays,
    flame_arrays,
    tddfa_arrays,
    write_flame,
    write_h5,
    write_tddfa,
)

from facelab.model.safe_pickle import ReadBudget, RestrictedUnpickler, decode_array

ROOT = Path(__file__).resolve().parents[1]
_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray


class _Reduce:
    """Pickles as ``func(*args)`` (+ BUILD ``state``): crafts what a hostile file contains."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        if self.state is None:
            return (self.func, self.args)
        return (self.func, self.args, self.state)


def _object_dtype():
    # numpy.dtype("O8") with cleared flags: the first half of the memory-corruption primitive
    return _Reduce(np.dtype, ("O8", False, True), (3, "|", None, None, None, 8, 8, 0))


def _raw_array(shape, code="f8", data=b""):
    """An ndarray pickle whose declared shape and bytes disagree (what a bomb declares)."""
    dtype = _Reduce(np.dtype, (code, False, True), (3, "<", None, None, None, -1, -1, 0))
    return _Reduce(_MULTIARRAY._reconstruct, (np.ndarray, (0,), b"b"),
                   (1, shape, dtype, False, data))


def _dump(path, obj, protocol=2):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def _flame_with(path, **replace):
    a = flame_arrays()
    data = {k: v for k, v in a.items()}
    data.update(replace)
    _dump(path, data)


def _real_part_tag(blob: bytes) -> int:
    """Offset of the first variable's real-part tag in an uncompressed little-endian v5 file."""
    pos = 128 + 8  # first miMATRIX element's body
    for _ in range(3):  # array flags, dimensions, name
        word, nbytes = np.frombuffer(blob[pos:pos + 8], "<u4")
        pos += 8 if word >> 16 else 8 + int(nbytes) + (-int(nbytes)) % 8
    return pos


def _write_cases(d: Path) -> dict:
    """Write every hostile file; return {case: [loader, path, kwargs]}."""
    cases = {}
    # 1. object-dtype scalar (the segfault): FLAME and the 3DDFA_V2 statistics pickle
    evil = _Reduce(_MULTIARRAY.scalar, (_object_dtype(), b"AAAAAAAA"))
    _flame_with(d / "scalar.pkl", v_template=evil)
    cases["object_scalar_flame"] = ["load_flame", "scalar.pkl", {}]
    t = d / "tddfa"
    t.mkdir()
    write_tddfa(t, tddfa_arrays())
    _dump(t / "param_mean_std_62d_120x120.pkl", {"mean": evil, "std": evil})
    cases["object_scalar_3ddfa_stats"] = ["load_3ddfa", "tddfa/bfm_noneck_v3.pkl", {}]
    # an object-dtype array (pointers in its raw bytes)
    _flame_with(d / "objarr.pkl", f=_Reduce(_MULTIARRAY._reconstruct, (np.ndarray, (0,), b"b"),
                                             (1, (2,), _object_dtype(), False, b"A" * 16)))
    cases["object_array"] = ["load_flame", "objarr.pkl", {}]
    # 2. size bombs
    a = [1.0] * 100
    for _ in range(3):
        a = [a] * 100  # 1e8 floats from shared references, a few hundred bytes on disk
    _flame_with(d / "lists.pkl", v_template=a)
    cases["shared_nested_lists"] = ["load_flame", "lists.pkl", {}]
    _dump(d / "ndarray_call.pkl", {"v_template": _Reduce(np.ndarray, ((16777216, 3),))})
    cases["ndarray_uninitialised"] = ["load_flame", "ndarray_call.pkl", {}]
    _flame_with(d / "declared.pkl", shapedirs=_raw_array((5023, 3, 10 ** 7)))
    cases["declared_shape_bomb"] = ["load_flame", "declared.pkl", {}]
    _flame_with(d / "mismatch.pkl", v_template=_raw_array((72, 3), data=b"\0" * 64))
    cases["bytes_shorter_than_shape"] = ["load_flame", "mismatch.pkl", {}]
    sp = scipy.sparse.csc_matrix(np.ones((5, 10 ** 6)))
    data = dict(flame_arrays())
    with open(d / "sparse_shape.pkl", "wb") as fh:
        data["J_regressor"] = scipy.sparse.csc_matrix((sp.data[:3], sp.indices[:3],
                                                       np.r_[0, np.full(10 ** 6, 3)]),
                                                      shape=(5, 10 ** 6))
        pickle.dump(data, fh, protocol=2)
    cases["sparse_wrong_shape"] = ["load_flame", "sparse_shape.pkl", {}]
    jreg = scipy.sparse.csc_matrix(flame_arrays()["J_regressor"])
    jreg.indices[:] = 10 ** 9  # out of range: densifying would write out of bounds
    data["J_regressor"] = jreg
    _dump(d / "sparse_oob.pkl", data)
    cases["sparse_out_of_range"] = ["load_flame", "sparse_oob.pkl", {}]
    # HDF5 files declaring tens of GiB in a few KB (unallocated chunks)
    b09 = bfm2009_arrays()
    with h5py.File(d / "bomb.mat", "w") as f:
        for k, v in b09.items():
            if k == "shapePC":
                f.create_dataset(k, shape=(36000, 216 * 800), dtype="f4", chunks=(64, 64),
                                 compression="gzip")
            else:
                f.create_dataset(k, data=np.ascontiguousarray(v.T))
    cases["bfm2009_hdf5_22gib"] = ["load_bfm2009", "bomb.mat", {}]
    zipped = dict(b09, shapePC=np.zeros((216, 20000)))  # 34 MB of zeros in ~40 KB of zlib
    scipy.io.savemat(d / "zip.mat", zipped, format="5", do_compression=True)
    assert (d / "zip.mat").stat().st_size < 1_000_000
    cases["bfm2009_v5_zip_bomb"] = ["load_bfm2009", "zip.mat", {"max_bytes": 10_000_000}]
    # an invalid storage type in a variable's data tag: scipy.io.loadmat segfaults on it
    scipy.io.savemat(d / "type.mat", b09, format="5")
    blob = bytearray((d / "type.mat").read_bytes())
    blob[_real_part_tag(blob)] = 39
    (d / "type.mat").write_bytes(bytes(blob))
    cases["bfm2009_v5_bad_storage_type"] = ["load_bfm2009", "type.mat", {}]
    b17 = bfm2017_arrays()
    with h5py.File(d / "bomb.h5", "w") as f:
        for k, v in b17.items():
            if k == "shape/model/pcaBasis":
                f.create_dataset(k, shape=(216, 10 ** 8), dtype="f8", chunks=(8, 4096),
                                 compression="gzip")
            else:
                f.create_dataset(k, data=v)
    cases["bfm2017_declared_bomb"] = ["load_bfm2017", "bomb.h5", {}]
    # 3. careless inputs with clear messages
    (d / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    cases["png_as_flame"] = ["load_flame", "photo.png", {}]
    write_h5(d / "full.h5", b17)
    raw = (d / "full.h5").read_bytes()
    (d / "truncated.h5").write_bytes(raw[: len(raw) // 2])
    cases["truncated_h5"] = ["load_bfm2017", "truncated.h5", {}]
    with h5py.File(d / "group.h5", "w") as f:
        for k, v in b17.items():
            if k == "shape/model/pcaVariance":
                f.create_group(k).create_dataset("x", data=v)
            else:
                f.create_dataset(k, data=v)
    cases["dataset_is_group"] = ["load_bfm2017", "group.h5", {}]
    (d / "snod.h5").write_bytes(raw.replace(b"SNOD", b"XNOD"))  # corrupt group structure
    cases["corrupt_hdf5_structure"] = ["load_bfm2017", "snod.h5", {}]
    # a small limit refuses a legitimate file, a raised one reads it
    write_flame(d / "ok.pkl", flame_arrays())
    cases["limit_too_small"] = ["load_flame", "ok.pkl", {"max_bytes": 100_000}]
    cases["limit_raised"] = ["load_flame", "ok.pkl", {"max_bytes": 1 << 31}]
    return cases


_CHILD = r"""
import json, resource, sys
import facelab.model as fm
cases, folder = json.loads(sys.argv[1]), sys.argv[2]
out = {}
fm.load_flame(folder + "/ok.pkl")  # warm up: lazy imports are not the loads' memory
for name, (loader, rel, kwargs) in cases.items():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        m = getattr(fm, loader)(folder + "/" + rel, **kwargs)
        res = {"type": None, "message": "", "vertices": int(m.num_vertices)}
    except BaseException as exc:
        res = {"type": type(exc).__name__, "message": str(exc),
               "value_error": isinstance(exc, ValueError)}
    res["grew_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    out[name] = res
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    cases = _write_cases(d)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases), str(d)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (  # a crash (e.g. -11, SIGSEGV) or MemoryError kill fails here
        f"loader process died with status {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("case", "pattern"), [
    ("object_scalar_flame", r"not a valid FLAME file.*dtype 'O8'"),
    ("object_scalar_3ddfa_stats", r"not a valid 3DDFA_V2 file.*dtype 'O8'"),
    ("object_array", r"not a valid FLAME file.*dtype 'O8'"),
    ("shared_nested_lists", r"v_template is a nested list of more than"),
    ("ndarray_uninitialised", r"not a valid FLAME file: cannot be unpickled.*numpy\.ndarray"),
    ("declared_shape_bomb", r"shapedirs declares [\d,]+ bytes.*max_bytes=1,073,741,824"),
    ("bytes_shorter_than_shape", r"v_template declares shape \(72, 3\).*stores 64 bytes"),
    ("sparse_wrong_shape", r"J_regressor must be \(5, 72\), got a sparse matrix"),
    ("sparse_out_of_range", r"J_regressor: sparse indices must lie in \[0, 5\)"),
    ("bfm2009_hdf5_22gib", r"not a valid BFM 2009 file.*'shapePC' declares .*max_bytes"),
    ("bfm2009_v5_bad_storage_type", r"not a valid BFM 2009 file: .*storage type 39"),
    ("bfm2009_v5_zip_bomb", r"compressed variable inflates to more than max_bytes="),
    ("bfm2017_declared_bomb", r"not a valid BFM 2017 file.*pcaBasis' declares .*max_bytes"),
    ("png_as_flame", r"not a valid FLAME file: cannot be unpickled"),
    ("truncated_h5", r"not a valid BFM 2017 file: cannot be opened as HDF5"),
    ("corrupt_hdf5_structure", r"not a valid BFM 2017 file: its HDF5 structure is corrupt"),
    ("dataset_is_group", r"'shape/model/pcaVariance' must be a dataset, got an HDF5 group"),
    ("limit_too_small", r"above the limit max_bytes=100,000"),
])
def test_hostile_file_gets_a_clear_value_error(outcomes, case, pattern):
    import re

    res = outcomes[case]
    assert res["type"] is not None and res["value_error"], res
    assert re.search(pattern, res["message"], re.S), res["message"][:600]
    assert "run code" not in res["message"]  # only allow-list refusals mention code
    assert res["grew_mb"] < 300, f"{case}: peak memory grew by {res['grew_mb']:.0f} MB"


def test_raised_limit_reads_the_file(outcomes):
    assert outcomes["limit_raised"]["type"] is None and outcomes["limit_raised"]["vertices"] == 72


def test_allow_list_refusal_is_both_unpickling_and_value_error(tmp_path):
    from facelab.model.flame import load_flame
    from facelab.model.safe_pickle import UnsafePickleError

    _dump(tmp_path / "evil.pkl", _Reduce(os.system, ("true",)))
    with pytest.raises(UnsafePickleError, match="may try to run code") as err:
        load_flame(tmp_path / "evil.pkl")
    assert isinstance(err.value, ValueError) and isinstance(err.value, pickle.UnpicklingError)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("value", [np.zeros((0, 3)), np.arange(6, dtype=">i4").reshape(2, 3),
                                   np.asfortranarray(np.arange(12.0).reshape(3, 4)),
                                   np.float32(2.5), np.array([True, False])],
                         ids=["empty", "big-endian", "fortran", "scalar", "bool"])
def test_legitimate_arrays_round_trip_every_protocol(value, protocol):
    blob = pickle.dumps({"a": value}, protocol=protocol)
    out = RestrictedUnpickler(io.BytesIO(blob)).load()
    got = decode_array(out["a"], "a", ReadBudget(1 << 20))
    assert got.shape == np.shape(value) and np.array_equal(got, value)
    assert got.dtype.kind == np.asarray(value).dtype.kind


def test_repr_and_recursion_bombs_are_not_expanded():
    # a shape made of shared nested tuples has an exponential repr; a deep list recurses
    t = (1,)
    for _ in range(60):
        t = (t, t)
    deep = [1.0]
    for _ in range(100_000):
        deep = [deep]
    dtype = _Reduce(np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0))
    arr = _Reduce(_MULTIARRAY._reconstruct, (np.ndarray, (0,), b"b"), (1, t, dtype, False, b""))
    out = RestrictedUnpickler(io.BytesIO(pickle.dumps({"a": arr}, protocol=4))).load()
    with pytest.raises(ValueError, match="malformed shape"):
        decode_array(out["a"], "a", ReadBudget(1 << 20))
    with pytest.raises(ValueError, match="nested too deeply|more than"):
        decode_array(deep, "b", ReadBudget(1 << 20))


def test_build_cannot_change_the_shared_recipes():
    # BUILD on an allowed global (a marker or callable) must not change it for later loads
    blob = (b"\x80\x02cnumpy\nndarray\n}X\x04\x00\x00\x00nameX\x03\x00\x00\x00bad\x73b.")
    with pytest.raises(ValueError):
        RestrictedUnpickler(io.BytesIO(blob)).load()
    from facelab.model import safe_pickle

    assert safe_pickle._NDARRAY.name == "numpy.ndarray"


def test_values_beyond_float32_are_a_clear_error(tmp_path):
    import warnings

    from facelab.model.flame import load_flame

    a = flame_arrays()
    a["shapedirs"] = a["shapedirs"].copy()
    a["shapedirs"][0, 0, 0] = 1e300  # finite in the float64 file, Inf as float32 mm
    write_flame(tmp_path / "big.pkl", a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way
        with pytest.raises(ValueError, match="not a valid FLAME file: its values overflow float32"):
            load_flame(tmp_path / "big.pkl")
