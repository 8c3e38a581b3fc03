"""Tests of the BFM 2009/2017, FLAME and 3DDFA_V2 loaders on small files written at test time.

Fixture files (tests/fixtures_models.py) follow the real layouts; expected values
are computed here from the raw arrays, independently of the loaders.
"""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import pytest
import scipy.io
import torch
from fixtures_models import (
    bfm2009_arrays,
    bfm2017_arrays,
    dome_mesh,
    flame_arrays,
    tddfa_arrays,
    write_bfm2009_v5,
    write_bfm2009_v73,
    write_flame,
    write_h5,
    write_tddfa,
)

import facelab as fl
from facelab.model.bfm import load_bfm2009, load_bfm2017
from facelab.model.flame import RestrictedUnpickler, load_flame
from facelab.model.morphable import MorphableModel
from facelab.model.safe_pickle import ArrayRecipe, ReadBudget, decode_array
from facelab.model.sources import MODEL_SOURCES, faces_front_ccw
from facelab.model.tddfa import load_3ddfa

V, F = 72, 112


def _unit(k: int, n: int, dtype=torch.float32) -> torch.Tensor:
    c = torch.zeros(1, n, dtype=dtype)
    c[0, k] = 1.0
    return c


def _front_normal_z(model: MorphableModel) -> float:
    """Sum of z of the area vectors of the front-half faces (> 0 when counter-clockwise)."""
    v = model.mean_shape.double()
    tri = v[model.faces]  # (F, 3, 3)
    n = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3)
    z = tri[:, :, 2].mean(1)
    return float(n[z > z.median(), 2].sum())


def _check_common(m: MorphableModel, k_id: int, k_exp: int, k_alb: int) -> None:
    assert isinstance(m, MorphableModel)
    assert m.mean_shape.shape == (V, 3) and m.mean_shape.dtype == torch.float32
    assert m.id_basis.shape == (V, 3, k_id)
    assert m.exp_basis.shape == (V, 3, k_exp)
    assert m.mean_albedo.shape == (V, 3)
    assert m.albedo_basis.shape == (V, 3, k_alb)
    assert m.faces.shape == (F, 3) and m.faces.dtype == torch.int64
    assert int(m.faces.min()) >= 0 and int(m.faces.max()) < V
    assert _front_normal_z(m) > 0
    # Evaluation works in float32 and float64 and returns the coefficients' dtype.
    for dtype in (torch.float32, torch.float64):
        out = m.shape(torch.zeros(2, k_id, dtype=dtype), torch.zeros(2, k_exp, dtype=dtype))
        assert out.shape == (2, V, 3) and out.dtype == dtype
        torch.testing.assert_close(out[1], m.mean_shape.to(dtype))
    m64 = m.to(dtype=torch.float64)
    assert m64.id_basis.dtype == torch.float64 and m64.faces.dtype == torch.int64


def _assert_mentions_source(message: str, key: str) -> None:
    src = MODEL_SOURCES[key]
    assert src.url.split()[0] in message
    assert src.licence in message


# ===================================================================== sources
def test_model_sources_table_names_url_and_licence():
    assert set(MODEL_SOURCES) == {"bfm2009", "bfm2017", "flame", "3ddfa"}
    assert "non-commercial" in MODEL_SOURCES["bfm2009"].licence
    assert "CC BY 4.0" in MODEL_SOURCES["flame"].licence
    assert "BFM licence" in MODEL_SOURCES["3ddfa"].licence
    assert MODEL_SOURCES["bfm2017"].url == "https://faces.dmi.unibas.ch/bfm/bfm2017.html"


def test_faces_front_ccw_flips_only_clockwise_meshes():
    verts, faces = dome_mesh()
    same, flipped = faces_front_ccw(verts, faces)
    assert not flipped and np.array_equal(same, faces)
    fixed, flipped = faces_front_ccw(verts, faces[:, [0, 2, 1]])
    assert flipped and np.array_equal(fixed, faces)


# ==================================================================== BFM 2009
@pytest.mark.parametrize("writer", [write_bfm2009_v5, write_bfm2009_v73], ids=["v5", "v7.3"])
def test_bfm2009_shapes_units_and_scaling(tmp_path, writer):
    a = bfm2009_arrays()
    path = tmp_path / "01_MorphableModel.mat"
    writer(path, a)
    m = load_bfm2009(path)
    _check_common(m, 5, 0, 4)
    assert m.name == "bfm2009" and m.landmarks is None and m.jaw_joint is None
    verts, faces = dome_mesh()
    torch.testing.assert_close(m.mean_shape, torch.from_numpy(verts).float(), atol=1e-3, rtol=0)
    assert np.array_equal(m.faces.numpy(), faces)  # tl - 1, already counter-clockwise
    torch.testing.assert_close(m.id_std, torch.from_numpy(a["shapeEV"][:, 0] / 1000.0))
    for k in range(5):  # shape(id = e_k) - mean = PC_k * EV_k (um -> mm), xyz interleaved
        want = (a["shapePC"][:, k] * a["shapeEV"][k, 0] / 1000.0).reshape(V, 3)
        got = m.shape(_unit(k, 5))[0] - m.mean_shape
        torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(m.mean_albedo, torch.from_numpy(a["texMU"].reshape(V, 3) / 255.0))
    want = (a["texPC"][:, 2] * a["texEV"][2, 0] / 255.0).reshape(V, 3)
    got = m.albedo(_unit(2, 4))[0] - m.mean_albedo
    torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-5, rtol=1e-4)
    assert 0.0 <= float(m.mean_albedo.min()) and float(m.mean_albedo.max()) <= 1.0


def test_bfm2009_v5_and_v73_agree(tmp_path):
    a = bfm2009_arrays(seed=5)
    write_bfm2009_v5(tmp_path / "a.mat", a)
    write_bfm2009_v73(tmp_path / "b.mat", a)
    with pytest.raises(NotImplementedError):  # scipy refuses v7.3: the loader must use h5py
        scipy.io.loadmat(tmp_path / "b.mat")
    m5, m73 = load_bfm2009(tmp_path / "a.mat"), load_bfm2009(str(tmp_path / "b.mat"))
    for name in ("mean_shape", "id_basis", "mean_albedo", "albedo_basis", "faces", "id_std"):
        assert torch.equal(getattr(m5, name), getattr(m73, name)), name


def test_bfm2009_compressed_v5_reads_like_uncompressed(tmp_path):
    a = bfm2009_arrays(seed=6)
    write_bfm2009_v5(tmp_path / "a.mat", a)
    scipy.io.savemat(tmp_path / "z.mat", a, format="5", do_compression=True)
    ma, mz = load_bfm2009(tmp_path / "a.mat"), load_bfm2009(tmp_path / "z.mat")
    for name in ("mean_shape", "id_basis", "mean_albedo", "albedo_basis", "faces", "id_std"):
        assert torch.equal(getattr(ma, name), getattr(mz, name)), name


def test_bfm2009_rewinds_clockwise_triangles(tmp_path):
    a = bfm2009_arrays(reverse=True)
    write_bfm2009_v5(tmp_path / "m.mat", a)
    m = load_bfm2009(tmp_path / "m.mat")
    raw = a["tl"].astype(np.int64) - 1
    assert np.array_equal(m.faces.numpy(), raw[:, [0, 2, 1]])
    assert _front_normal_z(m) > 0


def test_bfm2009_landmarks_argument(tmp_path):
    write_bfm2009_v5(tmp_path / "m.mat", bfm2009_arrays())
    lmk = np.arange(68) % V
    for given in (lmk, torch.from_numpy(lmk).int(), list(lmk)):
        m = load_bfm2009(tmp_path / "m.mat", landmarks=given)
        assert m.landmarks.dtype == torch.int64 and torch.equal(m.landmarks, torch.from_numpy(lmk))
        assert m.landmarks_3d(m.shape(torch.zeros(1, 5))).shape == (1, 68, 3)
    with pytest.raises(ValueError, match=r"landmarks: expected \(68,\)"):
        load_bfm2009(tmp_path / "m.mat", landmarks=np.arange(67))
    with pytest.raises(ValueError, match=r"landmarks: expected indices in \[0, 72\)"):
        load_bfm2009(tmp_path / "m.mat", landmarks=np.arange(68) + 10)
    with pytest.raises(TypeError, match="landmarks: expected an integer dtype"):
        load_bfm2009(tmp_path / "m.mat", landmarks=np.zeros(68))
    with pytest.raises(TypeError, match="landmarks"):
        load_bfm2009(tmp_path / "m.mat", landmarks="nose")


def test_bfm2009_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_bfm2009(tmp_path / "01_MorphableModel.mat")
    msg = str(err.value)
    assert "01_MorphableModel.mat" in msg and "shapePC (3V, K)" in msg
    _assert_mentions_source(msg, "bfm2009")
    with pytest.raises(TypeError, match="path"):
        load_bfm2009(None)


@pytest.mark.parametrize("writer", [write_bfm2009_v5, write_bfm2009_v73], ids=["v5", "v7.3"])
def test_bfm2009_missing_variable(tmp_path, writer):
    a = bfm2009_arrays()
    del a["texEV"]
    writer(tmp_path / "m.mat", a)
    with pytest.raises(ValueError, match="missing variable 'texEV'") as err:
        load_bfm2009(tmp_path / "m.mat")
    _assert_mentions_source(str(err.value), "bfm2009")


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        ("shapePC", np.zeros((10, 5), np.float32), r"shapePC must be \(216, K\)"),
        ("shapeEV", np.ones((4, 1), np.float32), r"shapeEV must be \(5, 1\)"),
        ("shapeMU", np.ones((215, 1), np.float32), "shapeMU must be"),
        ("texMU", np.ones((6, 1), np.float32), "texPC must be"),
        ("tl", np.ones((F, 4)), r"tl must be \(F, 3\)"),
        ("tl", np.zeros((F, 3)), "1-based"),
        ("shapeMU", np.full((216, 1), np.nan, np.float32), "finite"),
    ],
)
def test_bfm2009_malformed_variables(tmp_path, key, value, pattern):
    a = bfm2009_arrays()
    a[key] = value
    write_bfm2009_v5(tmp_path / "m.mat", a)
    with pytest.raises(ValueError, match=pattern):
        load_bfm2009(tmp_path / "m.mat")


def test_bfm2009_not_a_mat_file(tmp_path):
    (tmp_path / "m.mat").write_bytes(b"this is not a MATLAB file at all" * 8)
    with pytest.raises(ValueError, match="not a valid BFM 2009 file"):
        load_bfm2009(tmp_path / "m.mat")


# ==================================================================== BFM 2017
def test_bfm2017_shapes_units_and_scaling(tmp_path):
    a = bfm2017_arrays()
    path = tmp_path / "model2017-1_bfm_nomouth.h5"
    write_h5(path, a)
    m = load_bfm2017(path)
    _check_common(m, 6, 4, 5)
    assert m.name == "bfm2017"
    verts, faces = dome_mesh()
    # mean_shape = shape mean + expression mean (mm, no unit change)
    torch.testing.assert_close(m.mean_shape, torch.from_numpy(verts).float(), atol=1e-4, rtol=0)
    assert np.array_equal(m.faces.numpy(), faces)  # cells (3, F) transposed
    sd = np.sqrt(a["shape/model/pcaVariance"])
    torch.testing.assert_close(m.id_std, torch.from_numpy(sd))
    for k in (0, 5):
        want = (a["shape/model/pcaBasis"][:, k] * sd[k]).reshape(V, 3)
        got = m.shape(_unit(k, 6))[0] - m.mean_shape
        torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-4, rtol=1e-4)
    se = np.sqrt(a["expression/model/pcaVariance"])
    want = (a["expression/model/pcaBasis"][:, 1] * se[1]).reshape(V, 3)
    got = m.shape(torch.zeros(1, 6), _unit(1, 4))[0] - m.mean_shape
    torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-4, rtol=1e-4)
    sc = np.sqrt(a["color/model/pcaVariance"])
    torch.testing.assert_close(m.mean_albedo, torch.from_numpy(a["color/model/mean"].reshape(V, 3)))
    want = (a["color/model/pcaBasis"][:, 3] * sc[3]).reshape(V, 3)
    got = m.albedo(_unit(3, 5))[0] - m.mean_albedo
    torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-5, rtol=1e-4)


def test_bfm2017_rewinds_and_landmarks(tmp_path):
    write_h5(tmp_path / "m.h5", bfm2017_arrays(reverse=True))
    lmk = np.arange(68)
    m = load_bfm2017(tmp_path / "m.h5", landmarks=lmk)
    _, faces = dome_mesh()
    assert np.array_equal(m.faces.numpy(), faces)
    assert torch.equal(m.landmarks, torch.arange(68))


def test_bfm2017_without_expression_and_color(tmp_path):
    a = {k: v for k, v in bfm2017_arrays().items() if k.startswith("shape/")}
    write_h5(tmp_path / "m.h5", a)
    m = load_bfm2017(tmp_path / "m.h5")
    _check_common(m, 6, 0, 0)
    torch.testing.assert_close(m.mean_albedo, torch.full((V, 3), 0.5))


def test_bfm2017_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_bfm2017(tmp_path / "model2017-1_bfm_nomouth.h5")
    _assert_mentions_source(str(err.value), "bfm2017")
    assert "shape/model/pcaBasis" in str(err.value)

    a = bfm2017_arrays()
    del a["shape/model/pcaVariance"]
    write_h5(tmp_path / "a.h5", a)
    with pytest.raises(ValueError, match="missing dataset 'shape/model/pcaVariance'") as err:
        load_bfm2017(tmp_path / "a.h5")
    _assert_mentions_source(str(err.value), "bfm2017")

    a = bfm2017_arrays()
    a["shape/representer/cells"] = a["shape/representer/cells"].T.copy()  # (F, 3)
    write_h5(tmp_path / "b.h5", a)
    with pytest.raises(ValueError, match=r"cells must be \(3, F\)"):
        load_bfm2017(tmp_path / "b.h5")

    a = bfm2017_arrays()
    a["expression/model/mean"] = a["expression/model/mean"][:9]
    write_h5(tmp_path / "c.h5", a)
    with pytest.raises(ValueError, match="expression/model/mean"):
        load_bfm2017(tmp_path / "c.h5")

    a = bfm2017_arrays()
    a["shape/representer/cells"] = a["shape/representer/cells"] + 1  # 1-based by mistake
    write_h5(tmp_path / "d.h5", a)
    with pytest.raises(ValueError, match="0-based"):
        load_bfm2017(tmp_path / "d.h5")

    (tmp_path / "e.h5").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not an HDF5 file"):
        load_bfm2017(tmp_path / "e.h5")


# ======================================================================= FLAME
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_flame_shapes_units_and_scaling(tmp_path, protocol):
    a = flame_arrays()
    path = tmp_path / "generic_model.pkl"
    write_flame(path, a, protocol=protocol)
    assert "chumpy" not in sys.modules
    m = load_flame(path)
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules  # never imported
    _check_common(m, 300, 100, 0)
    assert m.name == "flame"
    torch.testing.assert_close(m.mean_shape, torch.from_numpy(a["v_template"] * 1000).float())
    dirs_mm = torch.from_numpy(a["shapedirs"] * 1000).float()  # (V, 3, 400)
    torch.testing.assert_close(m.id_basis, dirs_mm[..., :300])
    torch.testing.assert_close(m.exp_basis, dirs_mm[..., 300:])
    got = m.shape(torch.zeros(1, 300), _unit(7, 100))[0] - m.mean_shape
    torch.testing.assert_close(got, torch.from_numpy(a["shapedirs"][..., 307] * 1000).float(),
                               atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(m.id_std, dirs_mm[..., :300].norm(dim=(0, 1)))
    joints = a["J_regressor"] @ a["v_template"]  # (5, 3) metres; joint 2 is the jaw
    torch.testing.assert_close(m.jaw_joint, torch.from_numpy(joints[2] * 1000).float())
    torch.testing.assert_close(m.jaw_weights, torch.from_numpy(a["weights"][:, 2]).float())
    assert np.array_equal(m.faces.numpy(), a["f"].astype(np.int64))
    torch.testing.assert_close(m.mean_albedo, m.mean_albedo[:1].expand(V, 3))  # constant tone


def test_flame_jaw_pose_is_lbs_about_the_jaw_joint(tmp_path):
    a = flame_arrays()
    write_flame(tmp_path / "f.pkl", a)
    m = load_flame(tmp_path / "f.pkl")
    verts = m.shape(torch.zeros(1, 300, dtype=torch.float64))
    torch.testing.assert_close(m.pose_jaw(verts, torch.zeros(1, 3, dtype=torch.float64)), verts)
    posed = m.pose_jaw(verts, torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64))
    # Vertex-wise: v + w (R (v - j) + j - v) with R a rotation of 0.3 rad about x.
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    v = verts[0].numpy()
    j = m.jaw_joint.double().numpy()
    w = a["weights"][:, 2:3]
    want = v + w * ((v - j) @ rot.T + j - v)
    torch.testing.assert_close(posed[0], torch.from_numpy(want), atol=1e-6, rtol=1e-6)


def test_flame_mode_counts(tmp_path):
    write_flame(tmp_path / "f.pkl", flame_arrays())
    m = load_flame(tmp_path / "f.pkl", n_shape=10, n_exp=5)
    assert (m.n_id, m.n_exp) == (10, 5) and m.id_std.shape == (10,)
    write_flame(tmp_path / "g.pkl", flame_arrays(k_total=305))  # fewer expression modes
    assert (load_flame(tmp_path / "g.pkl").n_exp, load_flame(tmp_path / "g.pkl").n_id) == (5, 300)
    write_flame(tmp_path / "h.pkl", flame_arrays(k_total=20))  # shape modes only
    m = load_flame(tmp_path / "h.pkl")
    assert (m.n_id, m.n_exp) == (20, 0)
    with pytest.raises(ValueError, match="n_shape"):
        load_flame(tmp_path / "f.pkl", n_shape=-1)
    with pytest.raises(TypeError, match="n_exp"):
        load_flame(tmp_path / "f.pkl", n_exp=2.5)


def test_flame_plain_numpy_file_and_landmarks(tmp_path):
    a = flame_arrays(reverse=True)
    write_flame(tmp_path / "f.pkl", a, chumpy=False, sparse=False)
    m = load_flame(tmp_path / "f.pkl", landmarks=np.arange(68))
    assert np.array_equal(m.faces.numpy(), a["f"].astype(np.int64)[:, [0, 2, 1]])  # re-wound
    assert torch.equal(m.landmarks, torch.arange(68))


class _Evil:
    """A pickle payload whose __reduce__ would run a command that creates a file."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "nested"])
def test_flame_malicious_pickle_raises_and_does_not_execute(tmp_path, kind):
    marker = tmp_path / "pwned"
    touch = f"open({str(marker)!r}, 'w').close()"
    path = tmp_path / "generic_model.pkl"
    if kind == "os.system":
        payload = _Evil(os.system, f"touch {marker}")
    elif kind == "builtins.eval":
        payload = _Evil(eval, touch)
    else:
        payload = _Evil(exec, touch)
    if kind == "nested":  # hidden inside an otherwise valid FLAME dict
        write_flame(path, flame_arrays(), extra={"bs_style": payload})
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global") as err:
        load_flame(path)
    assert ("system" in str(err.value)) or ("exec" in str(err.value)) or ("eval" in str(err.value))
    assert not marker.exists()


def test_restricted_unpickler_allows_only_the_list(tmp_path):
    import io

    blob = pickle.dumps({"a": np.arange(3.0), "b": {1, 2}}, protocol=2)
    out = RestrictedUnpickler(io.BytesIO(blob)).load()
    assert isinstance(out["a"], ArrayRecipe)  # a recipe, decoded only after checks
    a = decode_array(out["a"], "a", ReadBudget(1 << 20))
    assert np.array_equal(a, np.arange(3.0)) and out["b"] == {1, 2}
    for obj in (print, pickle.loads, np.load):
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            RestrictedUnpickler(io.BytesIO(pickle.dumps(obj))).load()


def test_flame_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_flame(tmp_path / "generic_model.pkl")
    _assert_mentions_source(str(err.value), "flame")
    assert "generic_model.pkl" in str(err.value)

    a = flame_arrays()
    del a["weights"]
    write_flame(tmp_path / "a.pkl", a)
    with pytest.raises(ValueError, match="missing key 'weights'") as err:
        load_flame(tmp_path / "a.pkl")
    _assert_mentions_source(str(err.value), "flame")

    a = flame_arrays()
    a["J_regressor"] = a["J_regressor"][:4]
    write_flame(tmp_path / "b.pkl", a)
    with pytest.raises(ValueError, match=r"J_regressor must be \(5, 72\)"):
        load_flame(tmp_path / "b.pkl")

    a = flame_arrays()
    a["shapedirs"] = a["shapedirs"][:10]
    write_flame(tmp_path / "c.pkl", a)
    with pytest.raises(ValueError, match=r"shapedirs must be \(72, 3, K\)"):
        load_flame(tmp_path / "c.pkl")

    write_flame(tmp_path / "d.pkl", flame_arrays(), node_key="weights")
    with pytest.raises(ValueError, match="cannot be recovered without chumpy"):
        load_flame(tmp_path / "d.pkl")

    with open(tmp_path / "e.pkl", "wb") as fh:
        pickle.dump([1, 2, 3], fh)
    with pytest.raises(ValueError, match="expected a pickled dict"):
        load_flame(tmp_path / "e.pkl")

    (tmp_path / "f.pkl").write_bytes(b"\x80\x02}q\x00")  # truncated pickle
    with pytest.raises(ValueError, match="cannot be unpickled"):
        load_flame(tmp_path / "f.pkl")


# ==================================================================== 3DDFA_V2
def test_3ddfa_shapes_units_scaling_and_landmarks(tmp_path):
    a = tddfa_arrays()
    write_tddfa(tmp_path, a)
    m = load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")
    _check_common(m, 6, 3, 0)
    assert m.name == "3ddfa"
    bfm, std = a["bfm"], a["stats"]["std"]
    torch.testing.assert_close(m.mean_shape, torch.from_numpy(bfm["u"].reshape(V, 3) / 1000.0))
    for k in range(6):  # shape(id = e_k) - mean = w_shp_k * std_k (um -> mm)
        want = (bfm["w_shp"][:, k] * std[12 + k] / 1000.0).reshape(V, 3)
        got = m.shape(_unit(k, 6))[0] - m.mean_shape
        torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-4, rtol=1e-4)
    want = (bfm["w_exp"][:, 2] * std[12 + 6 + 2] / 1000.0).reshape(V, 3)
    got = m.shape(torch.zeros(1, 6), _unit(2, 3))[0] - m.mean_shape
    torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-4, rtol=1e-4)
    # landmark j is vertex keypoints[3 j] // 3
    assert torch.equal(m.landmarks, torch.from_numpy(a["landmarks"]))
    lm = m.landmarks_3d(m.mean_shape[None])[0]
    flat = bfm["u"].reshape(-1)[bfm["keypoints"]].reshape(68, 3) / 1000.0  # 3DDFA's u_base
    torch.testing.assert_close(lm, torch.from_numpy(flat))
    # tri.pkl (3, F) wins over the file's older 'tri'
    assert np.array_equal(m.faces.numpy(), a["faces"])


def test_3ddfa_triangle_sources(tmp_path):
    a = tddfa_arrays(reverse=True)
    write_tddfa(tmp_path, a, tri=False)
    m = load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")  # no tri.pkl: the file's own 'tri'
    in_file = a["bfm"]["tri"].T.astype(np.int64)
    assert np.array_equal(np.sort(m.faces.numpy(), 1), np.sort(in_file, 1))
    assert _front_normal_z(m) > 0
    other = tmp_path / "other_tri.pkl"
    with open(other, "wb") as fh:
        pickle.dump(a["tri"].T.copy(), fh)  # (F, 3) accepted too
    m = load_3ddfa(tmp_path / "bfm_noneck_v3.pkl", tri_path=other)
    _, faces = dome_mesh()
    assert np.array_equal(m.faces.numpy(), faces)  # clockwise fixture re-wound


def test_3ddfa_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")
    _assert_mentions_source(str(err.value), "3ddfa")

    a = tddfa_arrays()
    write_tddfa(tmp_path, a, stats=False)
    with pytest.raises(FileNotFoundError, match=r"param_mean_std_62d_120x120\.pkl") as err:
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")
    _assert_mentions_source(str(err.value), "3ddfa")
    with pytest.raises(FileNotFoundError):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl", param_stats_path=tmp_path / "nope.pkl")
    with pytest.raises(FileNotFoundError):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl", tri_path=tmp_path / "nope.pkl")

    a["stats"]["std"] = a["stats"]["std"][:-1]
    write_tddfa(tmp_path, a)
    with pytest.raises(ValueError, match=r"std must be \(21,\)"):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")

    a = tddfa_arrays()
    a["bfm"]["keypoints"] = a["bfm"]["keypoints"][::-1].copy()
    write_tddfa(tmp_path, a)
    with pytest.raises(ValueError, match="keypoints must list"):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")

    a = tddfa_arrays()
    del a["bfm"]["w_exp"]
    write_tddfa(tmp_path, a)
    with pytest.raises(ValueError, match="missing key 'w_exp'"):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")

    a = tddfa_arrays()
    a["bfm"]["w_shp"] = a["bfm"]["w_shp"][:30]
    write_tddfa(tmp_path, a)
    with pytest.raises(ValueError, match=r"w_shp must be \(216, K\)"):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")

    a = tddfa_arrays()
    a["tri"] = a["tri"] + V  # out of range
    write_tddfa(tmp_path, a)
    with pytest.raises(ValueError, match="tri must hold 0-based indices"):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")


def test_3ddfa_pickles_allow_numpy_only(tmp_path):
    a = tddfa_arrays()
    write_tddfa(tmp_path, a)
    marker = tmp_path / "pwned"
    with open(tmp_path / "tri.pkl", "wb") as fh:
        pickle.dump(_Evil(os.system, f"touch {marker}"), fh)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")
    assert not marker.exists()
    # chumpy containers are a FLAME thing: not accepted in 3DDFA files
    write_tddfa(tmp_path, a)
    write_flame(tmp_path / "bfm_noneck_v3.pkl", flame_arrays())
    with pytest.raises(pickle.UnpicklingError, match=r"chumpy\.ch\.Ch"):
        load_3ddfa(tmp_path / "bfm_noneck_v3.pkl")


def test_flame_skeleton_poses_neck_jaw_eyes_by_lbs(tmp_path):
    a = flame_arrays()
    write_flame(tmp_path / "f.pkl", a)
    m = load_flame(tmp_path / "f.pkl").to(dtype=torch.float64)
    assert m.skeleton.names == ("neck", "jaw", "eye_left", "eye_right")
    assert m.skeleton.parents == (-1, 0, 0, 0)
    ids = torch.randn(1, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    verts = m.shape(ids)
    # joints follow the shape: J(beta) = J_regressor @ verts (FLAME), rows 1..4
    torch.testing.assert_close(m.joint_positions(verts)[0],
                               torch.from_numpy(a["J_regressor"][1:]) @ verts[0])
    # a neck rotation alone turns every vertex by the weight it gives the neck's subtree
    neck = torch.tensor([[0.0, 0.2, 0.0]], dtype=torch.float64)
    posed = m.pose_joints(verts, {"neck": neck})
    R = fl.rotations.axis_angle_to_matrix(neck)[0]
    J = m.joint_positions(verts)[0, 0]
    w = torch.from_numpy(a["weights"][:, 1:].sum(1, keepdims=True))
    want = verts[0] + w * ((verts[0] - J) @ R.T + J - verts[0])
    # the file's float32 weights vs the float64 ones here: ~1e-7 relative, on ~100 mm
    torch.testing.assert_close(posed[0], want, rtol=1e-6, atol=1e-5)
    params = fl.FaceParams(id=ids, neck=neck, jaw=torch.tensor([[0.2, 0, 0]], dtype=torch.float64),
                           eyes=torch.zeros(1, 2, 3, dtype=torch.float64),
                           translation=torch.tensor([[0.0, 0.0, 0.6]], dtype=torch.float64))
    f = fl.form(m, params, fl.cameras.Pinhole.from_fov(32, 32, dtype=torch.float64))
    torch.testing.assert_close(
        f.verts, m.pose_joints(verts, {"neck": neck, "jaw": params.jaw}))
