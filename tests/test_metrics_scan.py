"""The NoW-style scan-to-mesh metric and the exact closest point on a triangle surface."""

import numpy as np
import pytest
import torch

from facelab import metrics
from facelab.mesh import closest_points
from facelab.rotations import euler_to_matrix

TRIANGLE = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
ONE_FACE = np.array([[0, 1, 2]])


def _grid(n: int, size: float, z: float = 0.0):
    """A square n x n grid of side ``size`` in the plane z, triangulated: (n², 3), (F, 3)."""
    xs = np.linspace(-size / 2, size / 2, n)
    x, y = np.meshgrid(xs, xs)
    verts = np.stack([x.ravel(), y.ravel(), np.full(n * n, z)], 1)
    i = np.arange(n - 1)
    a = (i[:, None] * n + i[None, :]).ravel()
    faces = np.concatenate([np.stack([a, a + 1, a + n + 1], 1), np.stack([a, a + n + 1, a + n], 1)])
    return verts, faces


def _sphere_mesh(n: int = 24):
    """A UV sphere of radius 50 mm with a bump, (V, 3), (F, 3)."""
    th, ph = np.meshgrid(np.linspace(0.2, np.pi - 0.2, n), np.linspace(0, 2 * np.pi, 2 * n,
                                                                        endpoint=False))
    r = 50.0 + 8.0 * np.exp(-((th - 1.2) ** 2 + (ph - 1.0) ** 2) / 0.2)
    verts = np.stack([r * np.sin(th) * np.cos(ph), r * np.sin(th) * np.sin(ph), r * np.cos(th)],
                     -1).reshape(-1, 3)
    idx = np.arange(2 * n * n).reshape(2 * n, n)
    a, b = idx[:, :-1], np.roll(idx, -1, axis=0)[:, :-1]
    c, d = np.roll(idx, -1, axis=0)[:, 1:], idx[:, 1:]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3),
                            np.stack([a, c, d], -1).reshape(-1, 3)])
    return verts, faces


def test_point_triangle_hand_computed():
    # one query in each of the seven Voronoi regions of the triangle (0,0,0), (1,0,0), (0,1,0)
    points = np.array([
        [0.25, 0.25, 2.0],   # interior, above: foot (0.25, 0.25, 0), distance 2
        [-1.0, -1.0, 0.0],   # vertex a: sqrt(2)
        [2.0, -0.5, 0.0],    # vertex b: |(1, -0.5)| = sqrt(1.25)
        [0.0, 3.0, 0.0],     # vertex c: 2
        [0.5, -1.0, 1.0],    # edge ab: foot (0.5, 0, 0), sqrt(1 + 1)
        [-3.0, 0.5, 0.0],    # edge ac: foot (0, 0.5, 0), 3
        [1.0, 1.0, 0.0],     # edge bc: foot (0.5, 0.5, 0), sqrt(0.5)
        [0.5, 0.5, -3.0],    # on edge bc's foot, below: 3
    ])
    expected_foot = np.array([[0.25, 0.25, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0.5, 0, 0],
                              [0, 0.5, 0], [0.5, 0.5, 0], [0.5, 0.5, 0]])
    expected = np.array([2.0, 2 ** 0.5, 1.25 ** 0.5, 2.0, 2 ** 0.5, 3.0, 0.5 ** 0.5, 3.0])
    closest, dist, face = closest_points(points, TRIANGLE, ONE_FACE)
    np.testing.assert_allclose(dist, expected, atol=1e-12)
    np.testing.assert_allclose(closest, expected_foot, atol=1e-12)
    assert isinstance(dist, np.ndarray) and (face == 0).all()
    # torch in, torch out, dtype kept
    c_t, d_t, _ = closest_points(torch.tensor(points, dtype=torch.float32),
                                 torch.tensor(TRIANGLE, dtype=torch.float32),
                                 torch.tensor(ONE_FACE))
    assert d_t.dtype == torch.float32 and isinstance(c_t, torch.Tensor)
    np.testing.assert_allclose(d_t.numpy(), expected, atol=1e-6)


def test_closest_points_uses_the_surface_not_the_vertices():
    verts, faces = _grid(3, 100.0)  # vertices 50 mm apart
    q = np.array([[10.0, -20.0, 7.0], [25.0, 25.0, -3.0]])
    _, dist, _ = closest_points(q, verts, faces)
    np.testing.assert_allclose(dist, [7.0, 3.0], atol=1e-12)  # nearest vertex is ~25 mm away


def test_closest_points_match_brute_force():
    verts, faces = _sphere_mesh()
    rng = np.random.default_rng(0)
    q = rng.normal(size=(300, 3)) * 40.0
    closest, dist, face = closest_points(q, verts, faces, chunk=64)
    # brute force: every point against every triangle
    t = verts[faces]  # (F, 3, 3)
    from facelab.mesh import _closest_on_triangles

    rep = np.repeat(q, len(faces), axis=0)
    tt = np.tile(t, (len(q), 1, 1))
    allp = _closest_on_triangles(rep, tt[:, 0], tt[:, 1], tt[:, 2])
    brute = np.sqrt(((allp - rep) ** 2).sum(1)).reshape(len(q), len(faces)).min(1)
    np.testing.assert_allclose(dist, brute, atol=1e-9)
    np.testing.assert_allclose(np.sqrt(((closest - q) ** 2).sum(1)), dist, atol=1e-9)
    on_face = _closest_on_triangles(closest, t[face, 0], t[face, 1], t[face, 2])
    np.testing.assert_allclose(on_face, closest, atol=1e-9)  # the point lies on its triangle


def test_closest_points_match_trimesh():
    verts, faces = _sphere_mesh()
    q = np.random.default_rng(0).normal(size=(300, 3)) * 40.0
    _, dist, _ = closest_points(q, verts, faces)
    trimesh = pytest.importorskip("trimesh")
    pytest.importorskip("rtree")  # trimesh's proximity queries need it
    _, d_tm, _ = trimesh.proximity.closest_point(trimesh.Trimesh(verts, faces, process=False), q)
    np.testing.assert_allclose(dist, d_tm, atol=1e-6)


def test_mesh_against_its_similarity_transform_is_zero():
    verts, faces = _sphere_mesh()
    scan = verts[::3]
    lm_idx = np.array([5, 200, 400, 700, 900, 1100, 1150])
    R = euler_to_matrix(torch.tensor([[0.3, -0.5, 0.2]], dtype=torch.float64))[0].numpy()
    pred = 1.3 * verts @ R.T + np.array([100.0, -20.0, 400.0])
    err = metrics.scan_to_mesh_error(scan, verts[lm_idx], pred, faces, pred[lm_idx])
    assert err.median < 1e-6 and err.mean < 1e-6 and err.landmark_rms < 1e-6
    assert err.scale == pytest.approx(1 / 1.3)
    np.testing.assert_allclose(err.aligned_verts, verts, atol=1e-6)
    assert err.distances.shape == (len(scan),)


def test_icp_recovers_what_bad_landmarks_miss():
    verts, faces = _sphere_mesh()
    scan = verts[::2]
    lm_idx = np.array([5, 200, 400, 700, 900, 1100, 1150])
    noisy = verts[lm_idx] + np.random.default_rng(1).normal(size=(7, 3)) * 3.0
    only_landmarks = metrics.scan_to_mesh_error(scan, noisy, verts, faces, verts[lm_idx],
                                                icp_iterations=0)
    with_icp = metrics.scan_to_mesh_error(scan, noisy, verts, faces, verts[lm_idx])
    assert only_landmarks.median > 0.5 and only_landmarks.iterations == 0
    assert with_icp.median < 0.05 * only_landmarks.median and with_icp.iterations > 0


@pytest.mark.parametrize("d", [0.5, 3.0])
def test_plane_offset_by_d(d):
    verts, faces = _grid(11, 100.0, z=d)
    scan, _ = _grid(9, 60.0, z=0.0)  # inside the mesh plane's footprint
    lm = np.array([[-20.0, -20.0, 0.0], [20.0, -20.0, 0.0], [0.0, 25.0, 0.0]])
    # landmarks already agree (identity similarity): the error is the offset, exactly
    err = metrics.scan_to_mesh_error(scan, lm, verts, faces, lm, icp_iterations=0)
    assert err.median == pytest.approx(d) and err.mean == pytest.approx(d)
    assert err.std == pytest.approx(0.0, abs=1e-12)
    # ICP is allowed to move the plane: it removes the offset
    moved = metrics.scan_to_mesh_error(scan, lm, verts, faces, lm, scale=False)
    assert moved.median < 1e-6


def test_statistics_are_those_of_the_distances():
    verts, faces = _grid(11, 100.0)
    rng = np.random.default_rng(2)
    scan = np.concatenate([rng.uniform(-30, 30, size=(200, 2)), rng.normal(size=(200, 1))], 1)
    lm = np.array([[-20.0, -20.0, 0.0], [20.0, -20.0, 0.0], [0.0, 25.0, 0.0]])
    err = metrics.scan_to_mesh_error(scan, lm, verts, faces, lm, icp_iterations=0)
    np.testing.assert_allclose(err.distances, np.abs(scan[:, 2]), atol=1e-12)
    assert err.median == pytest.approx(np.median(np.abs(scan[:, 2])))
    assert err.std == pytest.approx(np.abs(scan[:, 2]).std())


def test_bad_input():
    verts, faces = _grid(4, 10.0)
    lm = np.array([[-2.0, -2.0, 0.0], [2.0, -2.0, 0.0], [0.0, 3.0, 0.0]])
    scan = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"scan: expected \(N, 3\)"):
        metrics.scan_to_mesh_error(np.zeros((5, 2)), lm, verts, faces, lm)
    with pytest.raises(ValueError, match="mesh_landmarks: expected .*L=3"):
        metrics.scan_to_mesh_error(scan, lm, verts, faces, lm[:2])
    with pytest.raises(ValueError, match="scan_landmarks: expected >= 3 non-collinear"):
        line = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
        metrics.scan_to_mesh_error(scan, line, verts, faces, lm)
    with pytest.raises(ValueError, match="faces: expected indices in"):
        metrics.scan_to_mesh_error(scan, lm, verts, faces + 100, lm)
    with pytest.raises(TypeError, match="faces: expected an integer dtype"):
        metrics.scan_to_mesh_error(scan, lm, verts, faces.astype(float), lm)
    with pytest.raises(ValueError, match="verts: expected finite"):
        bad = verts.copy()
        bad[0, 0] = np.nan
        metrics.scan_to_mesh_error(scan, lm, bad, faces, lm)
    with pytest.raises(ValueError, match="icp_iterations: expected an int >= 0"):
        metrics.scan_to_mesh_error(scan, lm, verts, faces, lm, icp_iterations=-1)
    with pytest.raises(TypeError, match="scan: expected a torch.Tensor or numpy.ndarray"):
        metrics.scan_to_mesh_error([[0.0, 0.0, 0.0]], lm, verts, faces, lm)
    with pytest.raises(ValueError, match="points, faces: expected at least one"):
        closest_points(np.zeros((0, 3)), verts, faces)


def test_similarity_transform_recovers_a_known_one():
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    R = euler_to_matrix(torch.tensor([[0.1, 0.7, -0.2], [0.0, -0.4, 0.3]], dtype=torch.float64))
    y = 0.7 * torch.einsum("bij,bvj->bvi", R, x) + torch.tensor([1.0, 2.0, 3.0],
                                                                 dtype=torch.float64)
    s, rot, t = metrics.similarity_transform(x, y, rotation=True)
    np.testing.assert_allclose(s.numpy(), 0.7)
    np.testing.assert_allclose(rot.numpy(), R.numpy(), atol=1e-12)
    np.testing.assert_allclose(t.numpy(), [[1.0, 2.0, 3.0]] * 2, atol=1e-12)
