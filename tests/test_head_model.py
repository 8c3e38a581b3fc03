"""The built-in full-head model (synthetic version 2): mesh, rig, bases, texture, cache."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

import facelab as fl
from facelab.model import head as H
from facelab.model.head import mesh as M
from facelab.model.head import rig
from facelab.model.head import shape as S
from facelab.model.head import texture as T
from facelab.model.registry import DEFAULT_SYNTHETIC_VERSION, SYNTHETIC_VERSIONS

V1_TEACHING_DIGESTS = ("c76008d6d199eef8", "a9baa982e26498b5")


@pytest.fixture(scope="module")
def model():
    return fl.load_model("synthetic", "teaching", version=2)


@pytest.fixture(scope="module")
def arrays(model):
    return H.head_arrays("teaching")


def _edges(faces):
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def _components(faces, n):
    e = _edges(faces)
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(a, directed=False)


# ------------------------------------------------------------------- the mesh
def test_one_shell_two_eyeballs_two_arches(model, arrays):
    faces = model.faces.numpy()
    n, label = _components(faces, model.num_vertices)
    assert n == 5
    kinds = sorted(tuple(np.unique(arrays["kind"][label == i]).tolist()) for i in range(n))
    assert kinds == [(0, 1, 2, 3), (4,), (5,), (6,), (7,)]
    assert len(np.unique(faces)) == model.num_vertices  # no unused vertex


def test_boundary_only_at_the_neck_and_manifold(model):
    faces = model.faces.numpy()
    key = np.sort(_edges(faces), axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    assert counts.max() == 2  # every edge has one or two triangles
    boundary = np.unique(uniq[counts == 1])
    y = model.mean_shape.numpy()[:, 1]
    y_cut = S.Y_BOTTOM + S.OFFSET[1]
    assert len(boundary) > 20
    assert np.all(y[boundary] < y_cut + 1.0), y[boundary].max() - y_cut
    assert np.all(y[boundary] > y_cut - 1e-3)
    # consistent orientation: no directed edge twice
    _, dcounts = np.unique(_edges(faces), axis=0, return_counts=True)
    assert dcounts.max() == 1


def test_no_degenerate_triangles(model):
    f = model.faces.numpy()
    assert np.all((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2]))
    p = model.mean_shape.numpy().astype(np.float64)[f]
    area = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    assert area.min() > 0.05  # mm^2


def test_outward_normals(model, arrays):
    f = model.faces.numpy()
    p = model.mean_shape.numpy().astype(np.float64)[f]
    kind = arrays["kind"][f[:, 0]]
    # closed components: positive signed volume
    for k in (4, 5, 6, 7):
        q = p[kind == k]
        vol = np.einsum("fi,fi->f", q[:, 0], np.cross(q[:, 1], q[:, 2])).sum() / 6.0
        assert vol > 0, k
    # the shell, closed at the neck by a fan to its boundary's centroid: positive volume
    shell = kind <= M.KIND_POUCH
    q = p[shell] - (S.CENTRE + S.OFFSET)
    vol = np.einsum("fi,fi->f", q[:, 0], np.cross(q[:, 1], q[:, 2])).sum() / 6.0
    assert vol > 1e6  # a head is a few litres (mm^3); a flipped shell is negative
    # the skin is a radial graph from the centre: its triangles face away from it
    skin = shell & (kind == 0)
    n = np.cross(p[skin, 1] - p[skin, 0], p[skin, 2] - p[skin, 0])
    out = np.einsum("fi,fi->f", n, p[skin].mean(1) - (S.CENTRE + S.OFFSET))
    assert (out > 0).mean() > 0.97


def test_resolution_counts():
    assert H.HEAD_RESOLUTIONS == {"teaching": 5000, "medium": 12000, "bfm": 38000, "high": 50000}
    a = H.head_arrays(4000, cache=False)
    assert 0.85 * 4000 < len(a["mean_shape"]) < 1.1 * 4000


def test_bad_resolution_and_version():
    with pytest.raises(ValueError, match="resolution"):
        fl.load_model("synthetic", 100, version=2)
    with pytest.raises(ValueError, match="resolution"):
        fl.load_model("synthetic", "huge", version=2)
    with pytest.raises(ValueError, match="version"):
        fl.load_model("synthetic", "teaching", version=3)
    assert SYNTHETIC_VERSIONS == (1, 2)


# ------------------------------------------------------------------- the rig
def _posed(model, **joints):
    B = 1
    params = fl.FaceParams(id=torch.zeros(B, model.n_id), **joints)
    camera, t = fl.default_camera(B, 64, 64)
    params.translation = t
    with torch.no_grad():
        return fl.form(model, params, camera).verts[0].numpy()


def test_skeleton_is_flames_tree(model):
    sk = model.skeleton
    assert sk.names == ("neck", "jaw", "eye_left", "eye_right")
    assert sk.parents == (-1, 0, 0, 0)
    rest = sk.regressor @ model.mean_shape
    assert torch.allclose(rest, sk.positions, atol=1e-3)


def test_joint_rotations_move_only_their_region(model, arrays):
    rest = model.mean_shape.numpy()
    kind = arrays["kind"]
    w = arrays["joint_weights"]
    moved = lambda v: np.linalg.norm(v - rest, axis=1) > 1e-4  # noqa: E731
    # jaw: only vertices with jaw weight; the skull, ears, eyes and upper teeth stay
    jaw = moved(_posed(model, jaw=torch.tensor([[0.3, 0.0, 0.0]])))
    assert not jaw[w[:, 1] == 0].any() and jaw[w[:, 1] > 1e-3].all()
    assert not jaw[rest[:, 1] > S.OFFSET[1]].any()  # nothing above the nose base
    assert jaw[kind == M.KIND_TEETH_LOW].all() and not jaw[kind == M.KIND_TEETH_UP].any()
    assert not jaw[(kind == M.KIND_EYE_LEFT) | (kind == M.KIND_EYE_RIGHT)].any()
    # eyes: eyes[:, 0] is the left eyeball (model +x), eyes[:, 1] the right one; nothing else
    left = moved(_posed(model, eyes=torch.tensor([[[0.1, 0.4, 0.05], [0.0, 0.0, 0.0]]])))
    assert np.array_equal(left, kind == M.KIND_EYE_LEFT)
    assert rest[kind == M.KIND_EYE_LEFT, 0].mean() > 0
    right = moved(_posed(model, eyes=torch.tensor([[[0.0, 0.0, 0.0], [0.3, 0.1, 0.05]]])))
    assert np.array_equal(right, kind == M.KIND_EYE_RIGHT)
    # neck: the head turns, the neck's cut stays
    posed = _posed(model, neck=torch.tensor([[0.0, 0.4, 0.0]]))
    neck = moved(posed)
    assert not neck[w.sum(1) == 0].any() and neck[w.sum(1) > 1e-3].all()
    y = rest[:, 1]
    assert not neck[y < S.Y_BOTTOM + S.OFFSET[1] + 5.0].any()
    assert neck[y > 0].all()


def test_eye_rotation_keeps_the_eyeball(model, arrays):
    posed = _posed(model, eyes=torch.tensor([[[0.2, 0.5, 0.0], [0.1, -0.4, 0.0]]]))
    for k, j in ((M.KIND_EYE_LEFT, 2), (M.KIND_EYE_RIGHT, 3)):
        centre = model.skeleton.positions[j].numpy()
        r = np.linalg.norm(posed[arrays["kind"] == k] - centre, axis=1)
        np.testing.assert_allclose(r, S.EYE_RADIUS, atol=1e-3)


# ------------------------------------------------------------------- the bases
def test_mode_counts_and_order(model):
    assert model.n_id >= 100 and model.n_exp >= 50 and model.n_albedo >= 100
    for std in (model.id_std, model.exp_std, model.albedo_std):
        assert torch.all(std[1:] <= std[:-1] + 1e-6)
        assert std[-1] > 0
    V = model.num_vertices
    norms = model.id_basis.reshape(V * 3, -1).norm(dim=0) / np.sqrt(V)
    torch.testing.assert_close(norms, model.id_std, rtol=1e-3, atol=1e-5)


def test_determinism_and_disk_cache(tmp_path, monkeypatch):
    a = H.head_arrays(3000, cache=False)
    b = H.head_arrays(3000, cache=False)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path))
    monkeypatch.setattr(H, "_MEMORY", {})
    monkeypatch.setattr(H, "TIMINGS", {})
    c = H.head_arrays(3000)
    assert "build_s" in H.TIMINGS[3000]
    assert any(p.name.endswith(f"-{3000}.npz") for p in tmp_path.iterdir())
    monkeypatch.setattr(H, "_MEMORY", {})
    d = H.head_arrays(3000)
    assert "load_s" in H.TIMINGS[3000] and "load_s" in H.TIMINGS[0]
    for k in a:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)
        np.testing.assert_array_equal(a[k], d[k], err_msg=k)


def _disp(model, name):
    d = model.shape(torch.zeros(1, 1), model.expression(name)[None])[0] - model.mean_shape
    return d.norm(dim=1).numpy()


def test_named_expressions_act_where_they_should(model, arrays):
    rest = model.mean_shape.numpy()
    u = H.head_arrays("teaching")  # noqa: F841 (the same arrays)
    x, y = rest[:, 0], rest[:, 1]
    kind = arrays["kind"]
    skin = kind == 0
    lid_y = 22.0 + S.OFFSET[1]  # the eyes' height in model space (design v = y there)
    lid = skin & (np.abs(y - lid_y - 3.0) < 6.0) & (np.abs(np.abs(x) - 32.0) < 10.0)
    right, left = lid & (x < 0), lid & (x > 0)
    d = _disp(model, "eye_close_right")
    assert d[right].max() > 3.0, d[right].max()  # the upper lid comes down ~4-5 mm
    assert d[left].max() < 0.1 * d[right].max()
    d = _disp(model, "eye_close_left")
    assert d[left].max() > 3.0 and d[right].max() < 0.1 * d[left].max()
    # jaw_open: the chin drops, the forehead stays
    d = model.shape(torch.zeros(1, 1), model.expression("jaw_open")[None])[0].numpy() - rest
    chin = model.landmarks[8].item()
    assert d[chin, 1] < -8.0
    assert np.abs(d[y > 40.0 + S.OFFSET[1]]).max() < 0.5
    # smile lifts the mouth corners, brow_raise the brows
    for name, idx, lo in (("smile", (48, 54), 3.0), ("brow_raise", (19, 24), 3.0)):
        d = model.shape(torch.zeros(1, 1), model.expression(name)[None])[0].numpy() - rest
        for i in idx:
            assert d[model.landmarks[i].item(), 1] > lo, (name, i)


# ------------------------------------------------------------------- annotations
def test_landmarks(model, arrays):
    lm = model.landmarks.numpy()
    assert lm.shape == (68,) and len(np.unique(lm)) == 68
    assert np.all(arrays["kind"][lm] <= M.KIND_SLIT_LOW)
    np.testing.assert_array_equal(lm[rig.MIRROR_68], arrays["mirror"][lm])
    p = model.mean_shape.numpy()[lm]
    assert p[36, 0] < p[39, 0] < 0 < p[42, 0] < p[45, 0]  # eye corners, subject's right = -x
    assert np.argmax(p[:, 2]) == 30  # the nose tip is the most forward point
    assert p[8, 1] < p[:, 1].min() + 3.0  # the chin among the lowest
    assert p[62, 1] == pytest.approx(p[66, 1], abs=1e-4)  # a closed mouth


def test_landmark_embedding(model, arrays):
    """The landmarks are affine combinations of K vertices (rows sum to 1), anchored on the
    surveyed vertex ``model.landmarks``, mirror-symmetric, and the same mean-head points at
    every resolution (``rig.LANDMARK_EMBEDDING``)."""
    idx, w = model.landmark_vertices.numpy(), model.landmark_weights.double().numpy()
    assert idx.shape == w.shape == (68, 4) and model.has_landmark_embedding
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(idx[:, 0], model.landmarks.numpy())
    assert np.all(arrays["kind"][idx] <= M.KIND_SLIT_LOW)  # skin and lips only
    np.testing.assert_array_equal(idx[rig.MIRROR_68], arrays["mirror"][idx])
    np.testing.assert_allclose(w[rig.MIRROR_68], w)
    pts = model.landmark_points(model.mean_shape[None])[0].double().numpy()
    np.testing.assert_allclose(pts[rig.MIRROR_68] * [-1, 1, 1], pts, atol=1e-3)
    for i, (point, _) in rig.LANDMARK_EMBEDDING.items():
        np.testing.assert_allclose(pts[i], np.asarray(point) + S.OFFSET, atol=1.0)  # ridge-damped
    assert pts[36, 0] < pts[39, 0] < 0 < pts[42, 0] < pts[45, 0]
    assert np.abs(w).max() < 10.0  # no wild extrapolation
    # one method for every consumer: rows of any per-vertex array, points of any batch
    torch.testing.assert_close(model.landmark_rows(model.mean_shape),
                               model.landmark_points(model.mean_shape[None])[0])
    B = model.landmark_rows(model.id_basis[..., :3])  # (68, 3, 3)
    a = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.landmark_points(model.shape(a)),
                               model.landmark_rows(model.mean_shape) + torch.einsum(
                                   "ldk,bk->bld", B, a), rtol=0, atol=1e-3)


def test_landmark_embedding_is_validated(model):
    import dataclasses

    with pytest.raises(ValueError, match="landmark_weights"):
        dataclasses.replace(model, landmark_weights=model.landmark_weights * 2)
    with pytest.raises(ValueError, match="give both or neither"):
        dataclasses.replace(model, landmark_weights=None)
    with pytest.raises(ValueError, match="landmark_weights: expected"):
        dataclasses.replace(model, landmark_vertices=model.landmark_vertices[:, :3])
    bad = model.landmark_vertices.clone()
    bad[0, 0] = model.num_vertices
    with pytest.raises(ValueError, match="landmark_vertices"):
        dataclasses.replace(model, landmark_vertices=bad)
    with pytest.raises(ValueError, match="verts"):
        model.landmark_points(torch.zeros(1, 5, 3))
    one_hot = dataclasses.replace(model, landmark_vertices=None, landmark_weights=None)
    assert not one_hot.has_landmark_embedding and one_hot.digest() != model.digest()
    v = model.mean_shape[None]
    torch.testing.assert_close(one_hot.landmark_points(v), v[:, model.landmarks], rtol=0, atol=0)


def test_mirror_map(model, arrays):
    m = arrays["mirror"]
    np.testing.assert_array_equal(m[m], np.arange(len(m)))
    v = model.mean_shape.numpy()
    np.testing.assert_allclose(v[m], v * np.array([-1.0, 1.0, 1.0]), atol=1e-3)


def test_face_mask(model, arrays):
    mask = model.face_mask.numpy()
    v = model.mean_shape.numpy()
    assert 0.15 * len(mask) < mask.sum() < 0.6 * len(mask)
    assert np.all(arrays["kind"][mask] <= M.KIND_SLIT_LOW)
    assert np.all(v[mask, 2] - S.OFFSET[2] > 0)  # the front of the head only
    assert mask[model.landmarks.numpy()[17:]].all()


# ------------------------------------------------------------------- texture
def test_uv_layout_is_mirror_symmetric(model, arrays):
    """Every (vertex, uv) corner has a mirror corner (mirror vertex, (1 - u, v))."""
    f, fu = model.faces.numpy(), model.uv_faces.numpy()
    uv = model.uv.numpy().astype(np.float64)
    corners = np.unique(np.stack([f.ravel(), fu.ravel()], -1), axis=0)
    m = arrays["mirror"]
    want = {}
    for vtx, t in corners.tolist():
        want.setdefault(vtx, []).append(uv[t])
    worst = 0.0
    for vtx, t in corners.tolist():
        if arrays["kind"][vtx] in (M.KIND_EYE_LEFT, M.KIND_EYE_RIGHT) and np.hypot(
                *(uv[t] - [T.EYE_ISLAND[0] if uv[t][0] < 0.5 else 1 - T.EYE_ISLAND[0],
                           T.EYE_ISLAND[1]])) > 0.99 * T.EYE_ISLAND[2]:
            continue  # the hidden back pole of an eyeball: one uv per fan triangle
        target = np.array([1.0 - uv[t][0], uv[t][1]])
        worst = max(worst, min(np.abs(c - target).max() for c in want[m[vtx]]))
    assert worst < 1e-5


def test_uv_islands(model, arrays):
    f, fu = model.faces.numpy(), model.uv_faces.numpy()
    uv = model.uv.numpy()
    assert uv.min() >= 0.0 and uv.max() <= 1.0
    kind = arrays["kind"][f].max(1)
    shell_uv = uv[fu[kind <= M.KIND_SLIT_LOW]].reshape(-1, 2)
    assert shell_uv[:, 1].min() > T.STRIP  # the skin's layout is above the island strip
    for k in (M.KIND_EYE_LEFT, M.KIND_EYE_RIGHT, M.KIND_POUCH, M.KIND_TEETH_UP):
        assert uv[fu[kind == k]].reshape(-1, 2)[:, 1].max() < T.STRIP
    # the eyeballs' islands are a mirror pair: right eye on the left of the texture
    assert uv[fu[kind == M.KIND_EYE_RIGHT]][..., 0].max() < 0.5
    assert uv[fu[kind == M.KIND_EYE_LEFT]][..., 0].min() > 0.5


def test_texture_and_vertex_albedo_agree(model):
    f, fu = model.faces.numpy(), model.uv_faces.numpy()
    pairs = np.unique(np.stack([f.ravel(), fu.ravel()], -1), axis=0)
    single = np.bincount(pairs[:, 0]) == 1
    vert = pairs[single[pairs[:, 0]], 0]
    tex = pairs[single[pairs[:, 0]], 1]
    beta = torch.randn(1, model.n_albedo, generator=torch.Generator().manual_seed(0))
    maps = model.albedo_map(beta)[0].numpy().astype(np.float64)
    sampled = T.sample_bilinear(maps, model.uv.numpy().astype(np.float64)[tex])
    per_vertex = model.albedo(beta)[0].numpy()[vert]
    np.testing.assert_allclose(per_vertex, sampled, atol=2e-5)
    # the eyes: a dark pupil at the front of each eyeball, a light sclera around it
    kind = H.head_arrays("teaching")["kind"]
    alb = model.mean_albedo.numpy()
    eye = model.mean_shape.numpy()
    for k, j in ((M.KIND_EYE_LEFT, 2), (M.KIND_EYE_RIGHT, 3)):
        sel = np.nonzero(kind == k)[0]
        d = eye[sel] - model.skeleton.positions[j].numpy()
        front = sel[np.argmax(d[:, 2])]
        side = sel[np.argmax(d[:, 0] * (1 if k == M.KIND_EYE_LEFT else -1))]
        assert alb[front].mean() < 0.05 and alb[side].mean() > 0.5


def test_mean_texture_regions(model):
    tex = model.albedo_texture.numpy()
    uv_lip = T.shell_uv(np.array([[S.warp_u(0.0), S.warp_v(-57.0)]]))
    uv_cheek = T.shell_uv(np.array([[S.warp_u(40.0), S.warp_v(-10.0)]]))
    lip, cheek = T.sample_bilinear(tex, uv_lip)[0], T.sample_bilinear(tex, uv_cheek)[0]
    assert lip[0] / lip[1] > cheek[0] / cheek[1] * 1.3  # lips are redder than skin


# ------------------------------------------------------------------- version 1
def test_version_1_digest_is_independent_of_blas_threads_and_2_is_default():
    """Version 1 is generated on one BLAS thread, so its float32 bases (and digest) are the
    same whatever the machine's thread count (before, 2 threads gave c76008d6d199eef8 and 1
    gave a9baa982e26498b5). Version 2 is the default."""
    from threadpoolctl import threadpool_limits

    from facelab.model.morphable import MorphableModel
    from facelab.model.synthetic import synthetic_arrays

    with threadpool_limits(limits=2, user_api="blas"):
        fresh = synthetic_arrays(3000, cache=False)
    m1 = fl.load_model("synthetic", "teaching", version=1)
    assert m1.digest() == "a9baa982e26498b5"
    rebuilt = MorphableModel(
        name="x", mean_shape=fresh["mean_shape"], id_basis=fresh["id_basis"],
        exp_basis=fresh["exp_basis"], mean_albedo=fresh["mean_albedo"],
        albedo_basis=fresh["albedo_basis"], faces=fresh["faces"], landmarks=fresh["landmarks"])
    assert rebuilt.digest() == m1.digest()
    assert not m1.has_landmark_embedding  # one-hot: the same points as indexing, bit for bit
    v = m1.mean_shape[None]
    assert torch.equal(m1.landmark_points(v), v[:, m1.landmarks])
    assert torch.equal(m1.landmark_rows(m1.id_basis), m1.id_basis[m1.landmarks])
    assert DEFAULT_SYNTHETIC_VERSION == 2
    assert fl.load_model("synthetic", "teaching").name == "synthetic2-teaching"


def test_version_2_digest_is_its_own(model):
    assert model.name == "synthetic2-teaching"
    assert model.digest() not in V1_TEACHING_DIGESTS
    assert model.has_texture and tuple(model.albedo_texture.shape) == (256, 256, 3)
