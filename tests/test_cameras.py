"""Tests for facelab.cameras: analytic values, orientation, shapes, errors, gradcheck."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from facelab import cameras, rotations
from facelab import cameras as cam

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}

# A caricature face in model space (mm, y up, looking toward +z).
FACE = {
    "nose": (0.0, 0.0, 100.0),
    "forehead": (0.0, 60.0, 60.0),
    "chin": (0.0, -70.0, 50.0),
    "ear_right_of_viewer": (75.0, 0.0, 0.0),
    "ear_left_of_viewer": (-75.0, 0.0, 0.0),
}
NAMES = list(FACE)


def _face(dtype, batch=1):
    return torch.tensor([list(FACE.values())], dtype=dtype).expand(batch, -1, -1).clone()


def _close(a, b, dtype, scale=1.0):
    torch.testing.assert_close(a, b, atol=TOL[dtype] * scale, rtol=TOL[dtype])


def _rotations(n, dtype, seed):
    return torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix(), dtype=dtype)


# ---------------------------------------------------------------- scaled orthographic (3DDFA)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scaled_orthographic_analytic(dtype):
    verts = _face(dtype, batch=2)
    T = torch.zeros(2, 3, 4, dtype=dtype)
    T[:, :, :3] = 0.5 * torch.eye(3, dtype=dtype)
    T[:, :, 3] = torch.tensor([60.0, 61.0, 7.0], dtype=dtype)
    p2 = cam.project_scaled_orthographic(verts, T)
    p3 = cam.scaled_orthographic_transform(verts, T)
    assert p2.shape == (2, 5, 2) and p3.shape == (2, 5, 3) and p2.dtype == dtype
    _close(p2, 0.5 * verts[..., :2] + torch.tensor([60.0, 61.0], dtype=dtype), dtype)
    _close(p3[..., 2], 0.5 * verts[..., 2] + 7.0, dtype)
    _close(p3[..., :2], p2, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scaled_orthographic_random_matrix_and_broadcast(dtype):
    gen = torch.Generator().manual_seed(0)
    verts = torch.randn(3, 7, 3, generator=gen, dtype=dtype)
    T = torch.randn(3, 3, 4, generator=gen, dtype=dtype)
    expected = torch.einsum("bij,bvj->bvi", T[:, :, :3], verts) + T[:, None, :, 3]
    _close(cam.scaled_orthographic_transform(verts, T), expected, dtype, 10)
    _close(cam.project_scaled_orthographic(verts, T), expected[..., :2], dtype, 10)
    shared = cam.project_scaled_orthographic(verts, T[:1])  # one camera for the batch
    _close(shared[2], cam.project_scaled_orthographic(verts[2:], T[:1])[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [2, 3])
def test_scaled_orthographic_compose_decompose_round_trip(rows, dtype):
    R = _rotations(8, dtype, seed=1)
    gen = torch.Generator().manual_seed(1)
    scale = (torch.rand(8, generator=gen, dtype=torch.float64) * 2 + 0.1).to(dtype)
    t = torch.randn(8, 3, generator=gen, dtype=dtype) * 50
    T = cam.scaled_orthographic_matrix(scale, R, t)
    assert T.shape == (8, 3, 4)
    _close(T[:, :, :3], scale[:, None, None] * R, dtype)
    s2, R2, t2 = cam.decompose_scaled_orthographic(T, rows=rows)
    assert s2.shape == (8,) and R2.shape == (8, 3, 3) and t2.shape == (8, 3)
    _close(s2, scale, dtype, 100)
    _close(R2, R, dtype, 100)
    _close(t2, t, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_decompose_is_polar_factor_of_noisy_matrix(dtype):
    # M = f R0 P with P symmetric positive definite: the polar rotation is exactly R0.
    R0 = _rotations(4, torch.float64, seed=2)
    gen = torch.Generator().manual_seed(2)
    A = torch.randn(4, 3, 3, generator=gen, dtype=torch.float64) * 0.1
    P = torch.eye(3, dtype=torch.float64) + A @ A.transpose(-1, -2)
    T = torch.zeros(4, 3, 4, dtype=torch.float64)
    T[:, :, :3] = 1.7 * R0 @ P
    s, R, _ = cam.decompose_scaled_orthographic(T.to(dtype))
    _close(R, R0.to(dtype), dtype, 100)
    trace = P.diagonal(dim1=-2, dim2=-1).sum(-1)
    _close(s, (1.7 * trace / 3).to(dtype), dtype, 100)


@pytest.mark.parametrize("dtype", DTYPES)
def test_decompose_rows_2_ignores_third_row_and_fixes_reflections(dtype):
    R0 = _rotations(4, dtype, seed=3)
    T = cam.scaled_orthographic_matrix(torch.full((4,), 2.0, dtype=dtype), R0,
                                       torch.zeros(4, 3, dtype=dtype))
    garbage = T.clone()
    garbage[:, 2, :3] = torch.tensor([5.0, -1.0, 0.3], dtype=dtype)
    s, R, _ = cam.decompose_scaled_orthographic(garbage, rows=2)
    _close(R, R0, dtype, 100)
    _close(s, torch.full((4,), 2.0, dtype=dtype), dtype, 100)
    # A reflection (det < 0) still yields a proper rotation.
    mirrored = T.clone()
    mirrored[:, 2] = -mirrored[:, 2]
    _, Rm, _ = cam.decompose_scaled_orthographic(mirrored, rows=3)
    torch.testing.assert_close(torch.linalg.det(Rm), torch.ones(4, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_flip_y(dtype):
    p = torch.tensor([[[10.0, 20.0], [0.0, 120.0]]], dtype=dtype)
    out = cam.flip_y(p, 120)
    _close(out, torch.tensor([[[10.0, 100.0], [0.0, 0.0]]], dtype=dtype), dtype)
    _close(cam.flip_y(out, 120), p, dtype)
    p3 = torch.tensor([1.0, 2.0, 3.0], dtype=dtype)
    _close(cam.flip_y(p3, 10.0), torch.tensor([1.0, 8.0, 3.0], dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_screen_from_scaled_orthographic_is_upright(dtype):
    verts = _face(dtype)
    T = torch.zeros(1, 3, 4, dtype=dtype)
    T[:, :, :3] = 0.4 * torch.eye(3, dtype=dtype)
    T[:, :2, 3] = 60.0  # face centred in a 120 x 120 crop (3DDFA_V2)
    screen = cam.screen_from_scaled_orthographic(verts, T, 120)
    assert screen.shape == (1, 5, 3)
    p = cam.scaled_orthographic_transform(verts, T)
    _close(screen, torch.stack([p[..., 0], 120 - p[..., 1], -p[..., 2]], -1), dtype)
    s = {n: screen[0, i] for i, n in enumerate(NAMES)}
    assert s["forehead"][1] < s["nose"][1] < s["chin"][1]  # y down
    assert s["ear_left_of_viewer"][0] < s["nose"][0] < s["ear_right_of_viewer"][0]
    assert int(screen[0, :, 2].argmin()) == NAMES.index("nose")  # nearest


# ---------------------------------------------------------------- weak perspective (DECA/NeuFace)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weak_perspective_analytic(dtype):
    verts = _face(dtype, batch=2)
    scale = torch.tensor([0.01, 0.02], dtype=dtype)
    trans = torch.tensor([[0.1, -0.2], [0.0, 0.3]], dtype=dtype)
    p = cam.project_weak_perspective(verts, scale, trans)
    assert p.shape == (2, 5, 2) and p.dtype == dtype
    _close(p, scale[:, None, None] * verts[..., :2] + trans[:, None, :], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weak_perspective_to_screen_corners_and_centres(dtype):
    H, W = 40, 60
    p = torch.tensor([[[-1.0, 1.0], [1.0, -1.0], [0.0, 0.0],
                       [1 / W - 1, 1 - 1 / H]]], dtype=dtype)
    out = cam.weak_perspective_to_screen(p, H, W)
    expected = torch.tensor([[[0.0, 0.0], [W, H], [W / 2, H / 2], [0.5, 0.5]]], dtype=dtype)
    _close(out, expected, dtype, 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_screen_from_weak_perspective_is_upright(dtype):
    verts = _face(dtype)
    scale = torch.tensor([0.008], dtype=dtype)
    trans = torch.zeros(1, 2, dtype=dtype)
    screen = cam.screen_from_weak_perspective(verts, scale, trans, 64, 64)
    xy = cam.weak_perspective_to_screen(cam.project_weak_perspective(verts, scale, trans), 64, 64)
    _close(screen[..., :2], xy, dtype)
    _close(screen[..., 2], -0.008 * verts[..., 2] * 32, dtype)
    s = {n: screen[0, i] for i, n in enumerate(NAMES)}
    assert s["forehead"][1] < s["nose"][1] < s["chin"][1]
    assert s["ear_left_of_viewer"][0] < s["nose"][0] < s["ear_right_of_viewer"][0]
    assert int(screen[0, :, 2].argmin()) == NAMES.index("nose")


# ---------------------------------------------------------------- pinhole perspective (MoFA)


@pytest.mark.parametrize("dtype", DTYPES)
def test_project_perspective_analytic(dtype):
    verts = torch.tensor([[[10.0, -20.0, 500.0], [0.0, 0.0, 250.0]]], dtype=dtype)
    focal = torch.tensor([[1000.0, 800.0]], dtype=dtype)
    principal = torch.tensor([[320.0, 240.0]], dtype=dtype)
    uv = cam.project_perspective(verts, focal, principal)
    expected = torch.tensor([[[1000 * 10 / 500 + 320, 800 * -20 / 500 + 240], [320, 240]]],
                            dtype=dtype)
    _close(uv, expected, dtype, 100)
    screen = cam.screen_from_camera(verts, focal, principal)
    assert screen.shape == (1, 2, 3)
    _close(screen[..., :2], uv, dtype)
    _close(screen[..., 2], verts[..., 2], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_focal_scalar_equals_pair_and_batch_broadcast(dtype):
    gen = torch.Generator().manual_seed(4)
    verts = torch.randn(3, 6, 3, generator=gen, dtype=dtype) + torch.tensor([0, 0, 5], dtype=dtype)
    f = torch.tensor([500.0, 600.0, 700.0], dtype=dtype)
    c = torch.tensor([[32.0, 24.0]], dtype=dtype).expand(3, 2)
    a = cam.project_perspective(verts, f, c)
    b = cam.project_perspective(verts, torch.stack([f, f], -1), c)
    _close(a, b, dtype)
    one = cam.project_perspective(verts, f[:1], c[:1])  # (1,) and (1, 2) broadcast
    _close(one, cam.project_perspective(verts, f[:1].expand(3), c), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_perspective_behind_camera_is_finite_and_masked(dtype):
    verts = torch.tensor([[[1.0, 1.0, 100.0], [1.0, 1.0, 0.0], [1.0, -1.0, -5.0],
                           [0.0, 0.0, 0.5]]], dtype=dtype)
    f = torch.tensor([100.0], dtype=dtype)
    c = torch.zeros(1, 2, dtype=dtype)
    uv = cam.project_perspective(verts, f, c)
    assert bool(torch.isfinite(uv).all())
    _close(uv[0, 1], torch.tensor([100.0, 100.0], dtype=dtype) / 1e-6, dtype, 1e7)
    mask = cam.perspective_depth_valid(verts, near=1.0)
    assert mask.dtype == torch.bool and mask.shape == (1, 4)
    assert mask.tolist() == [[True, False, False, False]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_model_to_camera_face_looks_at_camera_upright(dtype):
    verts = _face(dtype)
    R = torch.eye(3, dtype=dtype)[None]
    t = torch.tensor([[0.0, 0.0, 600.0]], dtype=dtype)
    vc = cam.model_to_camera(verts, R, t)
    _close(vc, verts * torch.tensor([1.0, -1.0, -1.0], dtype=dtype) + t[:, None], dtype)
    i = {n: k for k, n in enumerate(NAMES)}
    # The nose tip (largest model z) is the closest point to the camera.
    assert int(vc[0, :, 2].argmin()) == i["nose"]
    assert bool((vc[0, :, 2] > 0).all())
    focal, principal = cam.intrinsics_from_fov(30.0, 256, 256, dtype=dtype)
    uv = cam.project_perspective(vc, focal, principal)
    # Higher on the face (larger model y) -> higher in the image (smaller v).
    assert uv[0, i["forehead"], 1] < uv[0, i["nose"], 1] < uv[0, i["chin"], 1]
    # The viewer's right stays on the right of the image.
    assert uv[0, i["ear_left_of_viewer"], 0] < uv[0, i["nose"], 0]
    assert uv[0, i["nose"], 0] < uv[0, i["ear_right_of_viewer"], 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_model_to_camera_rotation_then_flip_then_translation(dtype):
    R = _rotations(2, dtype, seed=5)
    gen = torch.Generator().manual_seed(5)
    verts = torch.randn(2, 9, 3, generator=gen, dtype=dtype)
    t = torch.randn(2, 3, generator=gen, dtype=dtype)
    F = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype))
    expected = torch.einsum("ij,bjk,bvk->bvi", F, R, verts) + t[:, None]
    _close(cam.model_to_camera(verts, R, t), expected, dtype, 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_intrinsics_from_fov(dtype):
    focal, principal = cam.intrinsics_from_fov(90.0, 100, 200, dtype=dtype)
    assert focal.shape == (1, 2) and principal.shape == (1, 2) and focal.dtype == dtype
    _close(focal, torch.tensor([[50.0, 50.0]], dtype=dtype), dtype, 10)
    _close(principal, torch.tensor([[100.0, 50.0]], dtype=dtype), dtype)
    fov = torch.tensor([60.0, 20.0], dtype=dtype)
    focal, principal = cam.intrinsics_from_fov(fov, 100, 100)
    assert focal.shape == (2, 2) and principal.shape == (2, 2)
    # A point on the upper edge of the field of view projects onto the image's top edge.
    z = 300.0
    edge = torch.tensor([[[0.0, -z * math.tan(math.radians(30.0)), z]]], dtype=dtype)
    v = cam.project_perspective(edge, focal[:1], principal[:1])[0, 0, 1]
    _close(v, torch.tensor(0.0, dtype=dtype), dtype, 1e3)


# ---------------------------------------------------------------- NumPy


def test_numpy_in_numpy_out():
    verts = _face(torch.float64).numpy()
    T = np.zeros((1, 3, 4))
    T[0, :, :3] = np.eye(3)
    p = cam.project_scaled_orthographic(verts, T)
    assert isinstance(p, np.ndarray) and p.shape == (1, 5, 2)
    s, R, t = cam.decompose_scaled_orthographic(T)
    assert all(isinstance(x, np.ndarray) for x in (s, R, t))
    q = cam.project_weak_perspective(verts.astype(np.float32), np.ones(1, np.float32),
                                     np.zeros((1, 2), np.float32))
    assert isinstance(q, np.ndarray) and q.dtype == np.float32
    front = verts + np.array([0.0, 0.0, 500.0])
    uv = cam.screen_from_camera(front, np.array([800.0]), np.array([[64.0, 64.0]]))
    assert isinstance(uv, np.ndarray) and uv.shape == (1, 5, 3)
    assert isinstance(cam.flip_y(verts, 10), np.ndarray)


# ---------------------------------------------------------------- gradients


def test_gradcheck_projections():
    gen = torch.Generator().manual_seed(6)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(True)

    verts, T = rnd(2, 4, 3), rnd(2, 3, 4)
    gc = torch.autograd.gradcheck
    assert gc(cam.project_scaled_orthographic, (verts, T))
    assert gc(cam.scaled_orthographic_transform, (verts, T))
    assert gc(lambda v, m: cam.screen_from_scaled_orthographic(v, m, 120), (verts, T))
    assert gc(cam.scaled_orthographic_matrix, (rnd(2), rnd(2, 3, 3), rnd(2, 3)))
    scale, trans = rnd(2), rnd(2, 2)
    assert gc(cam.project_weak_perspective, (verts, scale, trans))
    assert gc(lambda p: cam.weak_perspective_to_screen(p, 32, 48), (rnd(2, 4, 2),))
    assert gc(lambda v, s, t: cam.screen_from_weak_perspective(v, s, t, 32, 32),
              (verts, scale, trans))
    assert gc(cam.model_to_camera, (verts, rnd(2, 3, 3), rnd(2, 3)))
    front = (torch.randn(2, 4, 3, generator=gen, dtype=torch.float64)
             + torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)).requires_grad_(True)
    focal = (torch.rand(2, generator=gen, dtype=torch.float64) + 1).requires_grad_(True)
    focal2 = (torch.rand(2, 2, generator=gen, dtype=torch.float64) + 1).requires_grad_(True)
    principal = rnd(2, 2)
    assert gc(cam.project_perspective, (front, focal, principal))
    assert gc(cam.project_perspective, (front, focal2, principal))
    assert gc(cam.screen_from_camera, (front, focal2, principal))


# ---------------------------------------------------------------- bad input


def test_bad_shapes_name_the_argument():
    v = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match=r"^verts: expected \(B, V, 3\), got \(5, 3\)"):
        cam.project_scaled_orthographic(torch.zeros(5, 3), torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match=r"^T: expected \(B, 3, 4\), got \(2, 2, 4\)"):
        cam.project_scaled_orthographic(v, torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match=r"^T: expected \(B, 3, 4\) with B=2 or 1, got \(3, 3,"):
        cam.scaled_orthographic_transform(v, torch.zeros(3, 3, 4))
    with pytest.raises(ValueError, match=r"^scale: expected \(B,\) with B=2 or 1"):
        cam.project_weak_perspective(v, torch.ones(3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^trans: expected"):
        cam.project_weak_perspective(v, torch.ones(2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^focal: expected"):
        cam.project_perspective(v, torch.ones(2, 2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^principal: expected"):
        cam.project_perspective(v, torch.ones(2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^rotation: expected"):
        cam.model_to_camera(v, torch.eye(4)[None], torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"^translation: expected"):
        cam.model_to_camera(v, torch.eye(3)[None], torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"^points: expected \(B, V, 2\)"):
        cam.weak_perspective_to_screen(torch.zeros(2, 5, 3), 10, 10)
    with pytest.raises(ValueError, match=r"^points: expected \(..., D\) with D >= 2"):
        cam.flip_y(torch.zeros(4, 1), 10)


def test_bad_dtypes_and_values():
    v = torch.zeros(2, 5, 3)
    with pytest.raises(TypeError, match=r"^verts: expected float32 or float64"):
        cam.project_weak_perspective(v.long(), torch.ones(2), torch.zeros(2, 2))
    with pytest.raises(TypeError, match=r"^scale: expected dtype torch.float32 \(that of verts\)"):
        cam.project_weak_perspective(v, torch.ones(2, dtype=torch.float64), torch.zeros(2, 2))
    with pytest.raises(TypeError, match=r"^T: expected float32 or float64"):
        cam.project_scaled_orthographic(v, torch.zeros(2, 3, 4, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"^verts: expected a torch.Tensor"):
        cam.model_to_camera([[0.0, 0.0, 0.0]], torch.eye(3)[None], torch.zeros(1, 3))
    nan = v.clone()
    nan[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^verts_cam: expected finite"):
        cam.project_perspective(nan, torch.ones(2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^focal: expected finite"):
        cam.project_perspective(v, torch.tensor([1.0, float("inf")]), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^near: expected a finite positive"):
        cam.perspective_depth_valid(v, near=-1.0)
    with pytest.raises(ValueError, match=r"^eps: expected a finite positive"):
        cam.project_perspective(v, torch.ones(2), torch.zeros(2, 2), eps=0.0)
    with pytest.raises(TypeError, match=r"^height: expected an int"):
        cam.weak_perspective_to_screen(torch.zeros(1, 2, 2), 10.5, 10)
    with pytest.raises(ValueError, match=r"^height: expected a finite positive"):
        cam.flip_y(torch.zeros(1, 2, 2), 0)
    with pytest.raises(ValueError, match=r"^rows: expected 2 or 3"):
        cam.decompose_scaled_orthographic(torch.zeros(1, 3, 4), rows=4)
    with pytest.raises(ValueError, match=r"^fov_deg: expected"):
        cam.intrinsics_from_fov(180.0, 10, 10)
    with pytest.raises(ValueError, match=r"^fov_deg: expected"):
        cam.intrinsics_from_fov(torch.tensor([30.0, -5.0]), 10, 10)
    with pytest.raises(ValueError, match=r"^width: expected an int >= 1"):
        cam.intrinsics_from_fov(30.0, 10, 0)


# ------------------------------------------------------------------------ camera objects
def test_pinhole_project_hand_computed():
    cam = cameras.Pinhole(torch.tensor([[100.0, 200.0]]), torch.tensor([[32.0, 24.0]]))
    pts = torch.tensor([[[10.0, -5.0, 500.0], [0.0, 0.0, 250.0]]])
    out = cam.project(pts)
    # u = fx x / z + cx = 100 * 10 / 500 + 32 = 34; v = 200 * -5 / 500 + 24 = 22; depth = z
    torch.testing.assert_close(out, torch.tensor([[[34.0, 22.0, 500.0], [32.0, 24.0, 250.0]]]))
    assert cam.perspective_correct and cam.batch == 1
    same = cameras.Pinhole(torch.tensor([100.0]), torch.tensor([[32.0, 24.0]]))
    torch.testing.assert_close(same.focal, torch.tensor([[100.0, 100.0]]))


def test_pinhole_from_fov_and_batch_plumbing():
    cam = cameras.Pinhole.from_fov(64, 80, fov_deg=90.0, batch=2)
    # f = (H / 2) / tan(45 deg) = 32
    torch.testing.assert_close(cam.focal, torch.full((2, 2), 32.0))
    torch.testing.assert_close(cam.principal, torch.tensor([[40.0, 32.0]] * 2))
    both = cameras.Pinhole.cat([cam, cam[0]])
    assert both.batch == 3 and cam[1].batch == 1
    assert cam.to(dtype=torch.float64).focal.dtype == torch.float64
    with pytest.raises(ValueError, match="cannot expand"):
        cam.expand(5)


def test_scaled_orthographic_project_hand_computed():
    cam = cameras.ScaledOrthographic(torch.tensor([2.0]), torch.tensor([[10.0, 20.0]]))
    pts = torch.tensor([[[1.0, -3.0, 5.0]]])
    # (u, v, depth) = f (x, y, z) + (ox, oy, 0) = (12, 14, 10)
    torch.testing.assert_close(cam.project(pts), torch.tensor([[[12.0, 14.0, 10.0]]]))
    assert not cam.perspective_correct
    torch.testing.assert_close(cam.matrix(), torch.tensor([[[2.0, 0, 0, 10], [0, 2.0, 0, 20],
                                                          [0, 0, 2.0, 0]]]))


def test_scaled_orthographic_equals_3ddfa_T_frame():
    """Camera-space projection == screen_from_scaled_orthographic of model-space points."""
    g = torch.Generator().manual_seed(0)
    R = rotations.euler_to_matrix(0.3 * torch.randn(2, 3, generator=g, dtype=torch.float64))
    f = torch.tensor([0.5, 0.7], dtype=torch.float64)
    t3 = torch.tensor([[30.0, 40.0, 5.0], [50.0, 20.0, -3.0]], dtype=torch.float64)
    T = cameras.scaled_orthographic_matrix(f, R, t3)
    X = torch.randn(2, 7, 3, generator=g, dtype=torch.float64) * 50
    want = cameras.screen_from_scaled_orthographic(X, T, 120.0)
    cam = cameras.ScaledOrthographic(f, torch.stack([t3[:, 0], 120.0 - t3[:, 1]], 1))
    trans = torch.stack([torch.zeros(2), torch.zeros(2), -t3[:, 2] / f], 1).double()
    got = cam.project(cameras.model_to_camera(X, R, trans))
    torch.testing.assert_close(got, want)


def test_weak_perspective_project_hand_computed():
    cam = cameras.WeakPerspective(torch.tensor([0.01]), torch.tensor([[0.1, -0.2]]), 100, 200)
    # camera space (y down, z forward) -> model axes (y up, z to viewer): (10, 20, -30) ->
    # (10, -20, 30); normalised (s x + tx, s y + ty) = (0.2, -0.4);
    # pixels x = (0.2 + 1) / 2 * 200 = 120, y = (1 + 0.4) / 2 * 100 = 70; depth = -s z_up H/2
    out = cam.project(torch.tensor([[[10.0, 20.0, -30.0]]]))
    torch.testing.assert_close(out, torch.tensor([[[120.0, 70.0, -15.0]]]))


def test_camera_objects_validate():
    with pytest.raises(ValueError, match="focal: expected positive"):
        cameras.Pinhole(torch.tensor([[0.0, 10.0]]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="principal: expected \\(B, 2\\)"):
        cameras.Pinhole(torch.ones(2, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="scale: expected positive"):
        cameras.ScaledOrthographic(torch.tensor([-1.0]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="focal: expected finite"):
        cameras.Pinhole(torch.tensor([[math.nan, 1.0]]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="height"):
        cameras.WeakPerspective(torch.ones(1), torch.zeros(1, 2), 0, 10)
    with pytest.raises(TypeError, match="cams"):
        cameras.Pinhole.cat([cameras.ScaledOrthographic(torch.ones(1), torch.zeros(1, 2))])
