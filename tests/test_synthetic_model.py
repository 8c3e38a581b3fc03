"""Tests of the built-in synthetic morphable model and ``load_model``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelab.model import registry
from facelab.model import synthetic as syn
from facelab.model.morphable import MorphableModel
from facelab.model.registry import load_model
from facelab.model.synthetic import cache as syn_cache
from facelab.model.synthetic.surface import MIRROR_68, OFFSET


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep the on-disk cache of these tests out of the user's home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FACELAB_CACHE", str(tmp_path_factory.mktemp("facelab_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def model() -> MorphableModel:
    return load_model("synthetic", "teaching", version=1)


@pytest.fixture(scope="module")
def arrays():
    return syn.synthetic_arrays("teaching")


def _lm(model, verts=None):
    v = model.mean_shape if verts is None else verts
    return v[model.landmarks].double()  # (68, 3)


def _with_expression(model, name, amount=1.0):
    e = model.expression(name, amount)[None]
    return model.shape(torch.zeros(1, model.n_id), e)[0]


# ------------------------------------------------------------------ shapes
def test_smoke_and_counts(model):
    assert isinstance(model, MorphableModel)
    v = model.num_vertices
    assert 2700 <= v <= 3300
    assert 1.85 * v <= model.num_faces <= 2.0 * v
    assert (model.n_id, model.n_exp, model.n_albedo) == (80, 64, 80)
    assert model.mean_shape.shape == (v, 3) and model.mean_shape.dtype == torch.float32
    assert model.id_basis.shape == (v, 3, 80)
    assert model.exp_basis.shape == (v, 3, 64)
    assert model.albedo_basis.shape == (v, 3, 80)
    assert model.faces.dtype == torch.int64 and model.landmarks.shape == (68,)
    assert model.face_mask.dtype == torch.bool and model.face_mask.shape == (v,)
    assert model.jaw_joint.shape == (3,) and model.jaw_weights.shape == (v,)
    assert model.id_std.shape == (80,) and model.exp_std.shape == (64,)
    assert model.albedo_std.shape == (80,)
    assert model.name == "synthetic-teaching" and model.source == "built-in"


@pytest.mark.parametrize("resolution, lo, hi", [("medium", 11000, 13000), (5000, 4500, 5500)])
def test_other_resolutions(resolution, lo, hi):
    m = load_model(resolution=resolution, version=1)
    assert lo <= m.num_vertices <= hi
    assert m.landmarks.shape == (68,) and m.n_id == 80


@pytest.mark.slow
def test_bfm_resolution():
    m = load_model(resolution="bfm", version=1)
    assert 36000 <= m.num_vertices <= 40000
    assert 72000 <= m.num_faces <= 80000
    _check_mesh(m, syn.synthetic_arrays("bfm")["kind"])


def test_float64(model):
    m64 = load_model(resolution="teaching", dtype=torch.float64, version=1)
    assert m64.mean_shape.dtype == torch.float64 and m64.id_basis.dtype == torch.float64
    assert m64.expressions["smile"].dtype == torch.float64
    # float64 holds the same (float32-generated) numbers
    assert torch.equal(m64.id_basis.float(), model.id_basis)


def test_geometry_scale_and_frame(model):
    v = model.mean_shape.double()
    lo, hi = v.min(0).values, v.max(0).values
    assert 140.0 <= float(hi[0] - lo[0]) <= 160.0  # ~150 mm wide
    centre = (lo + hi) / 2
    assert torch.all(centre.abs() < 5.0)  # centred at the origin
    lm = _lm(model)
    assert float(lm[30, 2]) == pytest.approx(float(v[:, 2].max()), abs=3.0)  # nose tip in front (+z)
    assert lm[19, 1] > lm[37, 1] > lm[30, 1] > lm[51, 1] > lm[57, 1] > lm[8, 1]  # y up


# ----------------------------------------------------------------- mesh
def _check_mesh(m, kind):
    v = m.mean_shape.double().numpy()
    f = m.faces.numpy()
    tri = v[f]  # (F, 3, 3)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(n, axis=1)
    assert area.min() > 1e-3  # no degenerate faces
    assert len(np.unique(np.sort(f, axis=1), axis=0)) == len(f)  # no duplicates
    assert np.all((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2]))
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    # consistently oriented manifold: each directed edge once, each edge in <= 2 faces
    assert len(np.unique(directed, axis=0)) == len(directed)
    und, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert counts.max() == 2
    # boundary edges form simple loops: every boundary vertex has exactly 2 boundary edges
    _, bcount = np.unique(und[counts == 1].ravel(), return_counts=True)
    assert np.all(bcount == 2)
    assert len(np.unique(f)) == len(v)  # no unused vertices
    # front-facing: the frontal region's normals point to +z
    centre = tri.mean(1)
    skin = (kind[f] != 3).all(1)  # the mouth interior faces every way
    front = (np.abs(centre[:, 0]) < 40) & (np.abs(centre[:, 1]) < 60) & skin
    unit = n[front] / np.linalg.norm(n[front], axis=1, keepdims=True)
    assert unit.mean(0)[2] > 0.6 and np.mean(unit[:, 2] > 0) > 0.98
    # skin triangles are well shaped: nearly all have a smallest angle above 15 degrees
    # (the mouth interior's corner fans are thin by design; they are only non-degenerate)
    def smallest_angle(t):
        out = []
        for i in range(3):
            a, b = t[:, (i + 1) % 3] - t[:, i], t[:, (i + 2) % 3] - t[:, i]
            cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            out.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
        return np.min(out, axis=0)

    ang = smallest_angle(tri[skin])
    assert np.mean(ang > 15.0) > 0.99 and ang.min() > 5.0
    assert smallest_angle(tri).min() > 1.0


def test_mesh_validity(model, arrays):
    _check_mesh(model, arrays["kind"])


def test_no_self_intersection(model, arrays):
    """The skin is a radial height field over (theta, y): its triangles keep their
    orientation in that plane, so the surface cannot fold over itself."""
    v = model.mean_shape.double().numpy() - OFFSET
    skin = arrays["kind"] != 3
    f = model.faces.numpy()
    f = f[skin[f].all(1)]
    theta = np.arctan2(v[:, 0], v[:, 2])
    uv = np.stack([theta, v[:, 1]], -1)[f]  # (F, 3, 2)
    a, b, c = uv[:, 0], uv[:, 1], uv[:, 2]
    signed = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    # the slit's upper and lower copies coincide, so only their (closed) triangles may be flat
    assert np.all(signed > -1e-9)
    assert np.mean(signed > 0) > 0.999


def test_mouth_slit_and_interior(model, arrays):
    kind = arrays["kind"]
    up, low = np.nonzero(kind == 1)[0], np.nonzero(kind == 2)[0]
    assert len(up) == len(low) > 5
    v = model.mean_shape.numpy()
    # closed mouth: the two lips' edges coincide, but are different vertices
    order_u = up[np.argsort(v[up, 0])]
    order_l = low[np.argsort(v[low, 0])]
    assert np.allclose(v[order_u], v[order_l])
    pouch = arrays["mouth_interior"]
    assert pouch.sum() > 20 and not model.face_mask[torch.from_numpy(pouch)].any()
    assert np.all(v[pouch, 2] < v[order_u, 2].max())  # the interior lies behind the lips


# ----------------------------------------------------------------- bases
@pytest.mark.parametrize("basis, std", [("id_basis", "id_std"), ("exp_basis", "exp_std"),
                                        ("albedo_basis", "albedo_std")])
def test_modes_scaled_and_ordered(model, basis, std):
    e = getattr(model, basis).double().reshape(-1, getattr(model, basis).shape[2])  # (3V, K)
    s = getattr(model, std).double()
    assert torch.all(s[:-1] >= s[1:]) and torch.all(s > 0)  # decreasing variance
    gram = e.T @ e  # MoFA: E^T E = diag(sigma^2) (times V: std is an RMS per vertex)
    v = model.num_vertices
    assert torch.allclose(torch.diagonal(gram), v * s**2, rtol=1e-4)
    off = gram - torch.diag(torch.diagonal(gram))
    assert off.abs().max() < 1e-4 * gram.diagonal().max()


def test_identity_magnitudes(model):
    assert 2.0 < float(model.id_std[0]) < 6.0  # a few mm, BFM-like
    assert float(model.id_std[79]) < 0.2 * float(model.id_std[0])


def test_coefficients_are_unit_normal(model):
    """Sample shapes with N(0, 1) coefficients, project back: unit variance per mode."""
    gen = torch.Generator().manual_seed(0)
    alpha = torch.randn(2000, model.n_id, generator=gen, dtype=torch.float64)
    verts = model.shape(alpha) - model.mean_shape.double()  # (B, V, 3)
    e = model.id_basis.double().reshape(-1, model.n_id)
    coef = torch.linalg.lstsq(e, verts.reshape(len(alpha), -1).T).solution.T  # (B, K)
    var = coef.var(0)
    assert torch.allclose(var, torch.ones_like(var), atol=0.12)
    # and the per-vertex spread of mode k is id_std[k] (RMS over vertices)
    rms = model.id_basis.double().pow(2).sum(1).mean(0).sqrt()
    assert torch.allclose(rms, model.id_std.double(), rtol=1e-4)


def test_albedo_plausible(model, arrays):
    mean = model.mean_albedo.double()
    assert mean.min() >= 0 and mean.max() <= 1
    lm = model.landmarks
    skin = mean[lm[29]]  # nose bridge
    lips = mean[lm[62]]
    assert lips[0] / lips[1] > 1.3 * skin[0] / skin[1]  # redder lips
    assert mean[lm[19]].sum() < 0.7 * skin.sum()  # darker brows
    eye = torch.from_numpy(arrays["kind"] == 0)
    assert float(mean[eye].min()) < 0.05  # the pupil
    # each mode at +-2 sigma, and random faces, stay (mostly) in [0, 1]
    beta = 2.0 * torch.cat([torch.eye(model.n_albedo), -torch.eye(model.n_albedo)])
    samples = model.albedo(beta)
    inside = ((samples >= 0) & (samples <= 1)).float().mean(dim=(1, 2))  # (2 Kalb,)
    assert inside.min() > 0.99
    gen = torch.Generator().manual_seed(1)
    samples = model.albedo(torch.randn(64, model.n_albedo, generator=gen))
    assert ((samples >= 0) & (samples <= 1)).float().mean() > 0.99


# ----------------------------------------------------------- determinism
def test_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path))
    monkeypatch.setattr(syn, "_MEMORY", {})
    fresh = syn.synthetic_arrays(2000, cache=False)
    again = syn.synthetic_arrays(2000, cache=False)
    for k in fresh:
        assert np.array_equal(fresh[k], again[k]), k
    cached_first = syn.synthetic_arrays(2000)  # generates and writes
    path = syn_cache.cache_path(syn.cache_key(), 2000)
    assert path.is_file()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # atomic write left no temp
    monkeypatch.setattr(syn, "_MEMORY", {})
    from_disk = syn.synthetic_arrays(2000)
    for k in fresh:
        assert np.array_equal(fresh[k], from_disk[k]), k
        assert np.array_equal(fresh[k], cached_first[k]), k


def test_corrupted_and_stale_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path))
    monkeypatch.setattr(syn, "_MEMORY", {})
    path = syn_cache.cache_path(syn.cache_key(), 1500)
    path.write_bytes(b"not an npz file")
    m = load_model(resolution=1500, version=1)
    assert m.num_vertices > 1000
    with np.load(path) as data:  # regenerated and rewritten
        assert str(data["version"]) == syn.cache_key()
    assert syn_cache.load_cached("0-old", 1500, ["mean_shape"]) is None
    np.savez(path, version=np.array("0-old"), mean_shape=np.zeros((3, 3)))
    assert syn_cache.load_cached(syn.cache_key(), 1500, ["mean_shape"]) is None


def test_cache_key_tracks_the_generator_source():
    key = syn.cache_key()
    assert key.startswith(syn.GENERATOR_VERSION + "-") and len(key) > len(syn.GENERATOR_VERSION) + 8


def test_golden_values(model, arrays):
    """Checksums of the generator (update only with GENERATOR_VERSION)."""
    g = GOLDEN
    assert model.num_vertices == g["V"] and model.num_faces == g["F"]
    assert model.landmarks.tolist() == g["landmarks"]
    assert float(model.mean_shape.double().sum()) == pytest.approx(g["mean_sum"], abs=1e-2)
    assert float(model.mean_shape.double().abs().sum()) == pytest.approx(g["mean_abs"], rel=1e-6)
    for k, (a, b) in enumerate(zip(model.id_std.tolist()[:3], g["id_std"], strict=True)):
        assert a == pytest.approx(b, rel=1e-5), k
    assert float(model.exp_std[0]) == pytest.approx(g["exp_std0"], rel=1e-5)
    assert float(model.albedo_std[0]) == pytest.approx(g["alb_std0"], rel=1e-5)
    assert float(model.id_basis[..., 0].double().abs().sum()) == pytest.approx(g["id0_abs"], rel=1e-5)
    assert float(model.mean_albedo.double().sum()) == pytest.approx(g["alb_sum"], rel=1e-6)
    tip = model.mean_shape[model.landmarks[30]].tolist()
    assert tip == pytest.approx(g["tip"], abs=1e-4)


GOLDEN = {  # "teaching", GENERATOR_VERSION "1"
    "V": 3015, "F": 5826,
    "landmarks": [1691, 1322, 952, 724, 477, 267, 128, 72, 51, 83, 149, 298, 515, 769, 1005, 1377,
                  1746, 2073, 2076, 2140, 2142, 2145, 2153, 2156, 2158, 2099, 2102, 1903, 1780,
                  1534, 1165, 976, 977, 918, 980, 981, 1891, 1955, 1958, 1837, 1773, 1832, 1846,
                  1971, 1974, 1915, 1851, 1787, 586, 689, 745, 693, 748, 697, 598, 500, 452, 496,
                  449, 492, 587, 590, 592, 594, 597, 2912, 2910, 2908],
    "mean_sum": 19623.9098, "mean_abs": 323355.721, "id_std": [3.70806, 2.31764, 2.018691],
    "exp_std0": 3.851071, "alb_std0": 0.1979859, "id0_abs": 16441.7151, "alb_sum": 3438.1738,
    "tip": [0.0, -9.41958, 55.2932],
}


# -------------------------------------------------------------- landmarks
def test_landmark_symmetry(model, arrays):
    lm = _lm(model)
    mir = lm[torch.from_numpy(MIRROR_68)]
    assert torch.allclose(lm[:, 0], -mir[:, 0], atol=1e-4)
    assert torch.allclose(lm[:, 1:], mir[:, 1:], atol=1e-4)
    # and the whole mesh is mirror-symmetric through the vertex mirror map
    v = model.mean_shape.double()
    m = v[torch.from_numpy(arrays["mirror"])]
    assert torch.allclose(v[:, 0], -m[:, 0], atol=1e-4) and torch.allclose(v[:, 1:], m[:, 1:],
                                                                           atol=1e-4)


def test_landmark_order(model):
    """Subject's right = image left = -x (the face looks toward +z)."""
    x = _lm(model)[:, 0]
    y = _lm(model)[:, 1]
    assert torch.all(x[:8] < 0) and abs(float(x[8])) < 1e-6 and torch.all(x[9:17] > 0)
    assert torch.all(x[1:17] > x[:16] - 0.5)  # jaw contour from right to left
    assert int(torch.argmin(y[:17])) == 8  # the chin is the lowest contour point
    assert torch.all(x[18:22] > x[17:21]) and torch.all(x[23:27] > x[22:26])  # brows
    assert torch.all(y[28:31] < y[27:30])  # nose bridge going down
    assert torch.all(x[32:36] > x[31:35])  # nostrils right to left
    assert x[36] < x[39] < 0 < x[42] < x[45]  # eye corners
    assert torch.all(y[[37, 38]] > y[[41, 40]]) and torch.all(y[[43, 44]] > y[[47, 46]])
    assert x[48] < x[51] < x[54] and y[51] > y[57]
    assert torch.all(y[17:27] > y[36:48].max())  # brows above the eyes
    assert torch.equal(_lm(model)[62], _lm(model)[66])  # closed mouth: inner lips meet
    assert model.landmarks[62] != model.landmarks[66]  # ... as different vertices


def test_landmarks_on_features(model):
    lm = _lm(model)
    v = model.mean_shape.double()
    assert float(lm[30, 2] - lm[27, 2]) > 12.0  # the tip projects beyond the bridge
    assert 55.0 < float(lm[45, 0] - lm[36, 0]) < 105.0
    assert 40.0 < float(lm[54, 0] - lm[48, 0]) < 60.0
    assert float(lm[8, 1]) < float(v[:, 1].min()) + 20.0  # menton near the bottom


# ------------------------------------------------------------ expressions
def test_named_expressions(model):
    for name in ("jaw_open", "smile", "brow_raise", "eye_close", "pucker", "eye_close_left",
                 "eye_close_right", "frown", "mouth_left", "mouth_right", "cheek_puff", "surprise"):
        assert name in model.expressions
        assert model.expressions[name].shape == (64,)


def test_expression_projection_residual(arrays):
    from facelab.model.synthetic import blendshapes
    from facelab.model.synthetic.surface import build_surface

    s = build_surface(syn.RESOLUTIONS["teaching"])
    names, gens = blendshapes.expression_generators(s)
    e = arrays["exp_basis"].astype(np.float64).reshape(-1, 64)
    keys = list(arrays["expression_names"])
    for key, w in blendshapes.named_expressions(names).items():
        target = np.tensordot(w, gens, axes=1).reshape(-1)
        coeffs = arrays["expression_coeffs"][keys.index(key)].astype(np.float64)
        resid = np.linalg.norm(target - e @ coeffs) / np.linalg.norm(target)
        assert resid < 0.06, (key, resid)


def test_expression_directions(model):
    lm0 = _lm(model)
    d = {k: _lm(model, _with_expression(model, k)) - lm0 for k in
         ("smile", "brow_raise", "jaw_open", "pucker", "eye_close", "eye_close_left")}
    assert torch.all(d["smile"][[48, 54], 1] > 3.0)  # mouth corners up
    assert torch.all(d["brow_raise"][17:27, 1] > 2.0)  # brows up
    assert float(d["brow_raise"][17:27, 1].mean()) > 4.0
    assert float(d["jaw_open"][8, 1]) < -10.0  # chin down
    gap = (lm0 + d["jaw_open"])[62] - (lm0 + d["jaw_open"])[66]
    assert 15.0 <= float(gap.norm()) <= 20.0  # the mouth opens 15-20 mm
    assert float(d["jaw_open"][51].norm()) < 1.0  # the upper lip stays
    assert torch.all(d["pucker"][[51, 57, 62, 66], 2] > 3.0)  # lips forward
    closed = lm0 + d["eye_close"]
    for a, b in ((37, 41), (38, 40), (43, 47), (44, 46)):
        assert (closed[a] - closed[b]).norm() < 0.35 * (lm0[a] - lm0[b]).norm()
    left = lm0 + d["eye_close_left"]
    assert (left[43] - left[47]).norm() < 0.35 * (lm0[43] - lm0[47]).norm()
    assert torch.allclose(left[36:42], lm0[36:42], atol=0.3)  # the right eye stays open


# -------------------------------------------------------------------- jaw
def test_jaw_weights(model, arrays):
    w = model.jaw_weights.double()
    assert float(w.min()) >= 0.0 and float(w.max()) <= 1.0
    lm = model.landmarks
    assert torch.all(w[lm[[7, 8, 9, 56, 57, 58, 65, 66, 67]]] > 0.99)  # chin, lower lip
    assert torch.all(w[lm[17:48]] < 1e-6) and torch.all(w[lm[[50, 51, 52, 61, 62, 63]]] < 1e-3)
    # smooth: across skin edges (not the slit) the weight changes little
    f = model.faces.numpy()
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    skin = arrays["kind"] == 0
    e = e[skin[e].all(1)]
    jump = np.abs(w.numpy()[e[:, 0]] - w.numpy()[e[:, 1]])
    away = np.abs(model.mean_shape.numpy()[e[:, 0], 0]) > 45.0  # well beyond the mouth corners
    assert jump[away].max() < 0.3


def test_pose_jaw(model):
    pytest.importorskip("facelab.rotations")
    v = model.mean_shape[None].double()
    posed = model.pose_jaw(v, torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64))
    assert torch.isfinite(posed).all()
    lm0, lm1 = v[0, model.landmarks], posed[0, model.landmarks]
    assert torch.all(lm1[[57, 66], 1] < lm0[[57, 66], 1] - 15.0)  # lower lip moves down
    assert torch.allclose(lm1[[51, 62]], lm0[[51, 62]], atol=1e-6)  # upper lip does not
    assert torch.allclose(lm1[17:48], lm0[17:48])  # nor the eyes and brows


def test_face_mask(model, arrays):
    mask = model.face_mask
    frac = float(mask.float().mean())
    assert 0.6 < frac < 0.95
    assert torch.all(mask[model.landmarks[17:68]])  # brows, eyes, nose, lips are in
    assert not mask[torch.from_numpy(arrays["mouth_interior"])].any()
    f = model.faces.numpy()
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    edges, counts = np.unique(e, axis=0, return_counts=True)
    border = np.unique(edges[counts == 1].ravel())
    assert not mask[torch.from_numpy(border)].any()  # the outer border is out
    v = model.mean_shape.double().numpy() - OFFSET
    ears = np.abs(np.arctan2(v[:, 0], v[:, 2])) > 1.28
    assert ears.any() and not mask[torch.from_numpy(ears)].any()  # so is the band near the ears


# ----------------------------------------------------------- bad arguments
def test_bad_arguments():
    with pytest.raises(ValueError, match="synthetic"):
        load_model("bfm9999", version=1)
    with pytest.raises(ValueError, match="teaching"):
        load_model("synthetic", "huge", version=1)
    with pytest.raises(ValueError, match="resolution"):
        load_model("synthetic", 10, version=1)
    with pytest.raises(ValueError, match="resolution"):
        load_model("synthetic", 10**7, version=1)
    with pytest.raises(TypeError, match="resolution"):
        load_model("synthetic", 3000.0, version=1)
    with pytest.raises(TypeError, match="resolution"):
        load_model("synthetic", True, version=1)
    with pytest.raises(TypeError, match="dtype"):
        load_model("synthetic", dtype=torch.int32, version=1)
    with pytest.raises(TypeError, match="name"):
        load_model(3, version=1)
    assert registry.MODEL_NAMES == ("synthetic",)


def test_prints_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path))
    monkeypatch.setattr(syn, "_MEMORY", {})
    load_model(resolution=1200, version=1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
