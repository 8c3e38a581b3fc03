"""Writers of small fake model files in the exact layouts of BFM 2009/2017, FLAME and 3DDFA_V2.

Used by tests/test_loaders.py; every file is written at test time into a
temporary directory (nothing binary is committed). Each writer returns the raw
arrays it wrote so tests can compute expected values independently of the loaders.
Layouts follow the real files: interleaved xyz, 1-based ``tl`` (BFM 2009),
(3, F) ``cells`` (BFM 2017) and ``tri`` (3DDFA), a chumpy ``Ch`` ``shapedirs``
and a SciPy-sparse ``J_regressor`` in a protocol-2 FLAME pickle.
"""

from __future__ import annotations

import pickle
import sys
import types

import h5py
import numpy as np
import scipy.io
import scipy.sparse

NX, NY = 9, 8  # 72 vertices, 112 triangles


def dome_mesh(scale_mm: float = 75.0):
    """A face-like dome, y up, bulging toward +z: verts (V, 3) mm, faces (F, 3) CCW from +z."""
    xs = np.linspace(-1.0, 1.0, NX)
    ys = np.linspace(-1.2, 1.2, NY)
    gx, gy = np.meshgrid(xs, ys)  # (NY, NX)
    gz = 0.6 * np.exp(-(gx**2 + 0.5 * gy**2))
    verts = np.stack([gx, gy, gz], -1).reshape(-1, 3) * scale_mm  # (V, 3)
    faces = []
    for i in range(NY - 1):
        for j in range(NX - 1):
            a, b, c, d = i * NX + j, i * NX + j + 1, (i + 1) * NX + j, (i + 1) * NX + j + 1
            faces += [(a, b, d), (a, d, c)]  # counter-clockwise seen from +z (x right, y up)
    return verts, np.asarray(faces, np.int64)


def _orthonormal(rng, rows: int, cols: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q


# --------------------------------------------------------------------- BFM 2009
def bfm2009_arrays(seed: int = 0, k_shape: int = 5, k_tex: int = 4, reverse: bool = False):
    """The variables of 01_MorphableModel.mat as MATLAB shapes (column vectors, 1-based tl)."""
    rng = np.random.default_rng(seed)
    verts, faces = dome_mesh()
    nv = verts.shape[0]
    if reverse:
        faces = faces[:, [0, 2, 1]]
    return {
        "shapeMU": (verts * 1000.0).reshape(-1, 1).astype(np.float32),  # micrometres
        "shapePC": _orthonormal(rng, 3 * nv, k_shape).astype(np.float32),
        "shapeEV": np.linspace(40000.0, 8000.0, k_shape).reshape(-1, 1).astype(np.float32),
        "texMU": rng.uniform(60, 200, (3 * nv, 1)).astype(np.float32),  # 0..255
        "texPC": _orthonormal(rng, 3 * nv, k_tex).astype(np.float32),
        "texEV": np.linspace(900.0, 300.0, k_tex).reshape(-1, 1).astype(np.float32),
        "tl": (faces + 1).astype(np.float64),  # MATLAB double, 1-based
        "segbin": np.ones((nv, 4), np.uint8),
    }


def write_bfm2009_v5(path, arrays) -> None:
    scipy.io.savemat(str(path), arrays, format="5")


def write_bfm2009_v73(path, arrays) -> None:
    """A MATLAB v7.3 file: HDF5 behind a 512-byte header, arrays stored transposed."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, a in arrays.items():
            ds = f.create_dataset(key, data=np.ascontiguousarray(np.asarray(a).T))
            ds.attrs["MATLAB_class"] = np.bytes_("double" if a.dtype == np.float64 else "single")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + bytes(8) + b"\x00\x02" + b"IM")  # version, endian


# --------------------------------------------------------------------- BFM 2017
def bfm2017_arrays(seed: int = 1, k_shape: int = 6, k_exp: int = 4, k_col: int = 5,
                   reverse: bool = False):
    rng = np.random.default_rng(seed)
    verts, faces = dome_mesh()
    nv = verts.shape[0]
    if reverse:
        faces = faces[:, [0, 2, 1]]
    exp_mean = rng.normal(0, 0.5, 3 * nv).astype(np.float32)
    return {
        "shape/model/mean": (verts.reshape(-1) - exp_mean).astype(np.float32),  # mm
        "shape/model/pcaBasis": _orthonormal(rng, 3 * nv, k_shape).astype(np.float32),
        "shape/model/pcaVariance": np.linspace(900.0, 100.0, k_shape).astype(np.float32),
        "shape/model/noiseVariance": np.float32(1.0),
        "shape/representer/points": verts.T.astype(np.float32),  # (3, V)
        "shape/representer/cells": faces.T.astype(np.int32),  # (3, F) 0-based
        "expression/model/mean": exp_mean,
        "expression/model/pcaBasis": _orthonormal(rng, 3 * nv, k_exp).astype(np.float32),
        "expression/model/pcaVariance": np.linspace(400.0, 50.0, k_exp).astype(np.float32),
        "color/model/mean": rng.uniform(0.2, 0.8, 3 * nv).astype(np.float32),  # [0, 1]
        "color/model/pcaBasis": _orthonormal(rng, 3 * nv, k_col).astype(np.float32),
        "color/model/pcaVariance": np.linspace(2.0, 0.5, k_col).astype(np.float32),
    }


def write_h5(path, arrays) -> None:
    with h5py.File(path, "w") as f:
        for key, a in arrays.items():
            f.create_dataset(key, data=a)


# ------------------------------------------------------------------------ FLAME
class _ChPickler:
    """Registers a fake ``chumpy.ch.Ch`` in sys.modules only while pickling."""

    def __enter__(self):
        chumpy = types.ModuleType("chumpy")
        ch = types.ModuleType("chumpy.ch")
        ch_ops = types.ModuleType("chumpy.ch_ops")

        class Ch:  # mimics chumpy.Ch.__getstate__: the array lives in state['x']
            def __init__(self, x):
                self.x = x
                self._dirty_vars = set()
                self._itr = None
                self._depends_on_deps = {}
                self._make_dense = False
                self._make_sparse = False

        class add:  # a chumpy expression node: its state has no 'x'
            def __init__(self, a, b):
                self.a, self.b = a, b

        Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
        add.__module__, add.__qualname__ = "chumpy.ch_ops", "add"
        ch.Ch, ch_ops.add, chumpy.ch, chumpy.ch_ops = Ch, add, ch, ch_ops
        self.saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch", "chumpy.ch_ops")}
        sys.modules.update({"chumpy": chumpy, "chumpy.ch": ch, "chumpy.ch_ops": ch_ops})
        return Ch, add

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def flame_arrays(seed: int = 2, k_total: int = 400, reverse: bool = False):
    """FLAME's dict in metres: (V, 3) template, (V, 3, K) shapedirs, 5 joints."""
    rng = np.random.default_rng(seed)
    verts, faces = dome_mesh()
    nv = verts.shape[0]
    if reverse:
        faces = faces[:, [0, 2, 1]]
    jreg = np.zeros((5, nv))
    for j in range(5):
        idx = rng.choice(nv, 4, replace=False)
        jreg[j, idx] = 0.25
    weights = rng.uniform(0, 1, (nv, 5))
    weights /= weights.sum(1, keepdims=True)
    return {
        "v_template": verts / 1000.0,  # metres
        "f": faces.astype(np.uint32),
        "shapedirs": rng.normal(0, 1e-3, (nv, 3, k_total)),
        "posedirs": rng.normal(0, 1e-4, (nv, 3, 36)),
        "J_regressor": jreg,
        "weights": weights,
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write_flame(path, arrays, *, chumpy: bool = True, sparse: bool = True, protocol: int = 2,
                node_key: str | None = None, extra: dict | None = None) -> None:
    """Pickle FLAME's dict like the released (Python 2 era) files: chumpy + scipy.sparse.

    chumpy: store shapedirs as a (fake) ``chumpy.ch.Ch``; sparse: J_regressor as CSC.
    node_key: store that entry as a chumpy expression node (no ``x`` in its state).
    extra: entries added as they are (e.g. a malicious object).
    """
    data = dict(arrays)
    if sparse:
        data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    with _ChPickler() as (ch, add):
        if chumpy:
            data["shapedirs"] = ch(arrays["shapedirs"])
        if node_key is not None:
            data[node_key] = add(ch(arrays[node_key]), 1.0)
        data.update(extra or {})
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=protocol)


# -------------------------------------------------------------------- 3DDFA_V2
def tddfa_arrays(seed: int = 3, k_shp: int = 6, k_exp: int = 3, reverse: bool = False):
    rng = np.random.default_rng(seed)
    verts, faces = dome_mesh()
    nv = verts.shape[0]
    if reverse:
        faces = faces[:, [0, 2, 1]]
    lmk = rng.choice(nv, 68, replace=False)
    keypoints = (3 * lmk[:, None] + np.arange(3)).reshape(-1)  # indices into flattened xyz
    w_shp = _orthonormal(rng, 3 * nv, k_shp)
    w_exp = rng.normal(0, 2000.0, (3 * nv, k_exp))
    return {
        "bfm": {
            "u": (verts * 1000.0).reshape(-1, 1).astype(np.float32),  # micrometres
            "w_shp": w_shp.astype(np.float32),
            "w_exp": w_exp.astype(np.float32),
            "keypoints": keypoints.astype(np.int64),
            "tri": faces[::-1].T.astype(np.int32),  # an older triangle list, (3, F)
        },
        "tri": faces.T.astype(np.int32),  # configs/tri.pkl, (3, F) 0-based
        "stats": {
            "mean": rng.normal(0, 1, 12 + k_shp + k_exp).astype(np.float32),
            "std": np.concatenate([
                rng.uniform(1e-4, 1e-3, 12),
                np.linspace(5e5, 2e4, k_shp),
                np.linspace(1.6, 0.2, k_exp),
            ]).astype(np.float32),
        },
        "landmarks": lmk,
        "faces": faces,
    }


def write_tddfa(folder, arrays, *, tri: bool = True, stats: bool = True) -> None:
    """Write configs/bfm_noneck_v3.pkl (+ tri.pkl, param_mean_std_62d_120x120.pkl)."""
    with open(folder / "bfm_noneck_v3.pkl", "wb") as fh:
        pickle.dump(arrays["bfm"], fh)
    if tri:
        with open(folder / "tri.pkl", "wb") as fh:
            pickle.dump(arrays["tri"], fh)
    if stats:
        with open(folder / "param_mean_std_62d_120x120.pkl", "wb") as fh:
            pickle.dump(arrays["stats"], fh)
