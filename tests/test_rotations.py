"""Tests for facelab.rotations: kornia's menu (smoke, shapes, values, errors, gradcheck).

SciPy's ``Rotation`` serves as the independent reference.
"""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from facelab import rotations as rot

DTYPES = [torch.float32, torch.float64]
CONVENTIONS = ["xyz", "xzy", "yxz", "yzx", "zxy", "zyx"]
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def _tol(dtype):
    return {"atol": TOL[dtype], "rtol": 0.0}


def _random_rotations(n, dtype, seed=0):
    return torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix(), dtype=dtype)


def _assert_rotation(R, dtype):
    eye = torch.eye(3, dtype=dtype).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=10 * TOL[dtype], rtol=0)
    torch.testing.assert_close(
        torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=dtype), atol=10 * TOL[dtype], rtol=0
    )


def _scipy_euler(conv, angles):
    """SciPy extrinsic Euler with our (x, y, z)-ordered angles."""
    order = ["xyz".index(c) for c in conv]
    return Rotation.from_euler(conv, np.asarray(angles)[..., order]).as_matrix()


# ---------------------------------------------------------------- known values


@pytest.mark.parametrize("dtype", DTYPES)
def test_euler_90_degrees_about_each_axis(dtype):
    h = math.pi / 2
    ex, ey, ez = torch.eye(3, dtype=dtype)
    Rx = rot.euler_to_matrix(torch.tensor([h, 0, 0], dtype=dtype))
    Ry = rot.euler_to_matrix(torch.tensor([0, h, 0], dtype=dtype))
    Rz = rot.euler_to_matrix(torch.tensor([0, 0, h], dtype=dtype))
    torch.testing.assert_close(Rx @ ey, ez, **_tol(dtype))  # y -> z
    torch.testing.assert_close(Ry @ ez, ex, **_tol(dtype))  # z -> x
    torch.testing.assert_close(Rz @ ex, ey, **_tol(dtype))  # x -> y


@pytest.mark.parametrize("dtype", DTYPES)
def test_euler_composition_order(dtype):
    a = torch.tensor([0.3, -0.7, 1.1], dtype=dtype)
    Rx = rot.euler_to_matrix(torch.tensor([0.3, 0, 0], dtype=dtype))
    Ry = rot.euler_to_matrix(torch.tensor([0, -0.7, 0], dtype=dtype))
    Rz = rot.euler_to_matrix(torch.tensor([0, 0, 1.1], dtype=dtype))
    torch.testing.assert_close(rot.euler_to_matrix(a, "xyz"), Rz @ Ry @ Rx, **_tol(dtype))
    torch.testing.assert_close(rot.euler_to_matrix(a, "zyx"), Rx @ Ry @ Rz, **_tol(dtype))


def test_axis_angle_and_quaternion_known_values():
    h = math.pi / 2
    R = rot.axis_angle_to_matrix(torch.tensor([0.0, 0.0, h], dtype=torch.float64))
    expected = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(R, expected, atol=1e-15, rtol=0)
    q = torch.tensor([math.cos(h / 2), 0, 0, math.sin(h / 2)], dtype=torch.float64)
    torch.testing.assert_close(rot.quaternion_to_matrix(q), expected, atol=1e-15, rtol=0)
    torch.testing.assert_close(rot.matrix_to_quaternion(expected), q, atol=1e-15, rtol=0)
    aa = rot.matrix_to_axis_angle(expected)
    torch.testing.assert_close(aa, torch.tensor([0, 0, h], dtype=torch.float64), atol=1e-15, rtol=0)
    six = rot.matrix_to_rotation_6d(expected)
    torch.testing.assert_close(six, torch.tensor([0.0, 1, 0, -1, 0, 0], dtype=torch.float64))


def test_3ddfa_pose_convention():
    """3DDFA builds Rx(-pitch) Ry(-yaw) Rz(-roll) from (pitch, yaw, roll) (its own matrices)."""
    p, y, r = 0.2, -0.6, 0.35
    c, s = math.cos, math.sin
    # 3DDFA writes the transposed elementary rotations, with positive angles.
    rx = np.array([[1, 0, 0], [0, c(p), s(p)], [0, -s(p), c(p)]])
    ry = np.array([[c(y), 0, -s(y)], [0, 1, 0], [s(y), 0, c(y)]])
    rz = np.array([[c(r), s(r), 0], [-s(r), c(r), 0], [0, 0, 1]])
    expected = rx @ ry @ rz
    angles = np.array([p, y, r])
    np.testing.assert_allclose(rot.euler_to_matrix(-angles, "zyx"), expected, atol=1e-14)
    np.testing.assert_allclose(rot.euler_to_matrix(angles, "xyz").T, expected, atol=1e-14)


# ---------------------------------------------------------------- against SciPy, round trips


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("conv", CONVENTIONS)
def test_euler_matches_scipy_and_round_trips(conv, dtype):
    gen = torch.Generator().manual_seed(1)
    angles = (torch.rand(200, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 3.0
    R = rot.euler_to_matrix(angles.to(dtype), conv)
    assert R.shape == (200, 3, 3) and R.dtype == dtype
    torch.testing.assert_close(R, torch.as_tensor(_scipy_euler(conv, angles), dtype=dtype),
                               **_tol(dtype))
    back = rot.matrix_to_euler(R, conv)
    assert back.shape == (200, 3) and back.dtype == dtype
    torch.testing.assert_close(rot.euler_to_matrix(back, conv), R, **_tol(dtype))
    middle = back[:, "xyz".index(conv[1])]
    assert bool((middle.abs() <= math.pi / 2 + 1e-6).all())


@pytest.mark.parametrize("conv", ["xyz", "zyx"])
def test_euler_recovers_angles_in_principal_range(conv):
    gen = torch.Generator().manual_seed(2)
    angles = (torch.rand(100, 3, generator=gen, dtype=torch.float64) * 2 - 1) * torch.tensor(
        [3.0, 1.5, 3.0], dtype=torch.float64
    )
    back = rot.matrix_to_euler(rot.euler_to_matrix(angles, conv), conv)
    torch.testing.assert_close(back, angles, atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("conv", ["xyz", "zyx", "yxz"])
@pytest.mark.parametrize("middle", [math.pi / 2, -math.pi / 2])
def test_euler_gimbal_lock(conv, middle, dtype):
    # Middle angle at +-90 deg; two first/last combinations that only differ by a shared offset.
    j = "xyz".index(conv[1])
    angles = torch.tensor([[0.4, 0.4, 0.4], [-1.2, -1.2, 2.5], [0.0, 0.0, 0.0]], dtype=dtype)
    angles[:, j] = middle
    R = rot.euler_to_matrix(angles, conv)
    back = rot.matrix_to_euler(R, conv)
    assert bool(torch.isfinite(back).all())
    torch.testing.assert_close(back[:, j], torch.full((3,), middle, dtype=dtype),
                               atol=1e-3 if dtype == torch.float32 else 1e-7, rtol=0)
    torch.testing.assert_close(rot.euler_to_matrix(back, conv), R, **_tol(dtype))


def test_euler_gimbal_lock_exact_matrix():
    # An exactly representable gimbal-lock matrix: R = Ry(90 deg) (entries 0/1).
    R = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=torch.float64)
    back = rot.matrix_to_euler(R, "xyz")
    torch.testing.assert_close(back, torch.tensor([0, math.pi / 2, 0], dtype=torch.float64))
    torch.testing.assert_close(rot.euler_to_matrix(back), R, atol=1e-15, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_axis_angle_matches_scipy_and_round_trips(dtype):
    R = _random_rotations(300, dtype, seed=3)
    aa = rot.matrix_to_axis_angle(R)
    ref = Rotation.from_matrix(R.double().numpy()).as_rotvec()
    torch.testing.assert_close(aa, torch.as_tensor(ref, dtype=dtype), atol=10 * TOL[dtype], rtol=0)
    torch.testing.assert_close(rot.axis_angle_to_matrix(aa), R, **_tol(dtype))
    ref_R = Rotation.from_rotvec(aa.double().numpy()).as_matrix()
    torch.testing.assert_close(rot.axis_angle_to_matrix(aa), torch.as_tensor(ref_R, dtype=dtype),
                               **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-7, 1e-4, 9e-4, 1.1e-3, 0.5])
def test_axis_angle_near_zero(angle, dtype):
    axis = torch.tensor([0.48, -0.6, 0.64], dtype=torch.float64)  # unit
    aa = axis * angle
    R = rot.axis_angle_to_matrix(aa.to(dtype))
    ref = torch.as_tensor(Rotation.from_rotvec(aa.numpy()).as_matrix(), dtype=dtype)
    torch.testing.assert_close(R, ref, **_tol(dtype))
    back = rot.matrix_to_axis_angle(R)
    torch.testing.assert_close(rot.axis_angle_to_matrix(back), R, **_tol(dtype))
    if dtype == torch.float64:
        torch.testing.assert_close(back, aa, atol=1e-15, rtol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("delta", [0.0, 1e-9, 1e-6, 1e-3])
def test_axis_angle_near_pi(delta, dtype):
    axis = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0.6, 0, 0.8], [0.48, -0.6, 0.64]],
                        dtype=torch.float64)
    aa = axis * (math.pi - delta)
    R = torch.as_tensor(Rotation.from_rotvec(aa.numpy()).as_matrix(), dtype=dtype)
    back = rot.matrix_to_axis_angle(R)
    torch.testing.assert_close(rot.axis_angle_to_matrix(back), R, atol=10 * TOL[dtype], rtol=0)
    norm = torch.linalg.vector_norm(back, dim=-1)
    tol = 1e-5 if dtype == torch.float64 else 2e-3
    torch.testing.assert_close(norm, torch.full_like(norm, math.pi - delta), atol=tol, rtol=0)
    # Same axis up to sign (aa and -aa coincide at pi).
    cos = (back.double() / norm.double()[:, None] * axis).sum(-1).abs()
    torch.testing.assert_close(cos, torch.ones_like(cos), atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_quaternion_matches_scipy_and_round_trips(dtype):
    R = _random_rotations(300, dtype, seed=4)
    q = rot.matrix_to_quaternion(R)
    assert q.shape == (300, 4) and bool((q[:, 0] >= 0).all())
    ref = Rotation.from_matrix(R.double().numpy()).as_quat()[:, [3, 0, 1, 2]]  # scalar first
    ref *= np.sign(ref[:, :1])
    torch.testing.assert_close(q, torch.as_tensor(ref, dtype=dtype), atol=10 * TOL[dtype], rtol=0)
    torch.testing.assert_close(rot.quaternion_to_matrix(q), R, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_quaternion_shepperd_branches(dtype):
    # 180 degrees about x, y, z and a generic axis: the trace branch would divide by ~0.
    aa = torch.tensor([[math.pi, 0, 0], [0, math.pi, 0], [0, 0, math.pi], [0, 0, 0],
                       [2.0, 2.0, 1.0]], dtype=torch.float64)
    R = torch.as_tensor(Rotation.from_rotvec(aa.numpy()).as_matrix(), dtype=dtype)
    q = rot.matrix_to_quaternion(R)
    assert bool(torch.isfinite(q).all()) and bool((q[:, 0] >= 0).all())
    torch.testing.assert_close(rot.quaternion_to_matrix(q), R, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_quaternion_input_is_normalised(dtype):
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(50, 4, generator=gen, dtype=dtype)
    R = rot.quaternion_to_matrix(q * 3.7)
    _assert_rotation(R, dtype)
    torch.testing.assert_close(R, rot.quaternion_to_matrix(-q), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotation_6d_round_trip_and_gram_schmidt(dtype):
    R = _random_rotations(100, dtype, seed=6)
    six = rot.matrix_to_rotation_6d(R)
    assert six.shape == (100, 6)
    torch.testing.assert_close(rot.rotation_6d_to_matrix(six), R, **_tol(dtype))
    # Arbitrary (non-orthonormal) input -> a rotation whose first column is a1's direction.
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(100, 6, generator=gen, dtype=dtype)
    Rx = rot.rotation_6d_to_matrix(x)
    _assert_rotation(Rx, dtype)
    a1 = x[:, :3] / torch.linalg.vector_norm(x[:, :3], dim=-1, keepdim=True)
    torch.testing.assert_close(Rx[:, :, 0], a1, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_outputs_are_rotations(dtype):
    gen = torch.Generator().manual_seed(8)
    v = torch.randn(64, 3, generator=gen, dtype=dtype) * 2
    _assert_rotation(rot.euler_to_matrix(v), dtype)
    _assert_rotation(rot.euler_to_matrix(v, "zyx"), dtype)
    _assert_rotation(rot.axis_angle_to_matrix(v), dtype)
    _assert_rotation(rot.axis_angle_to_matrix(v * 1e-5), dtype)


def test_leading_dimensions_and_device_dtype_preserved():
    aa = torch.zeros(2, 5, 3, dtype=torch.float64)
    R = rot.axis_angle_to_matrix(aa)
    assert R.shape == (2, 5, 3, 3) and R.dtype == torch.float64
    assert rot.matrix_to_quaternion(R).shape == (2, 5, 4)
    assert rot.matrix_to_axis_angle(R).shape == (2, 5, 3)
    assert rot.matrix_to_euler(R).shape == (2, 5, 3)
    assert rot.matrix_to_rotation_6d(R).shape == (2, 5, 6)
    assert rot.euler_to_matrix(torch.zeros(3)).shape == (3, 3)
    assert rot.quaternion_to_matrix(torch.tensor([1.0, 0, 0, 0])).shape == (3, 3)


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64])
def test_numpy_in_numpy_out(np_dtype):
    R = Rotation.random(20, random_state=9).as_matrix().astype(np_dtype)
    pairs = [
        (rot.matrix_to_euler, rot.euler_to_matrix),
        (rot.matrix_to_axis_angle, rot.axis_angle_to_matrix),
        (rot.matrix_to_quaternion, rot.quaternion_to_matrix),
        (rot.matrix_to_rotation_6d, rot.rotation_6d_to_matrix),
    ]
    for forward, inverse in pairs:
        x = forward(R)
        assert isinstance(x, np.ndarray) and x.dtype == np_dtype
        back = inverse(x)
        assert isinstance(back, np.ndarray) and back.dtype == np_dtype
        np.testing.assert_allclose(back, R, atol=1e-5 if np_dtype == np.float32 else 1e-12)


# ---------------------------------------------------------------- gradients


def test_gradcheck_to_matrix():
    gen = torch.Generator().manual_seed(10)
    opts = {"eps": 1e-6, "atol": 1e-6}
    a = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    for conv in ("xyz", "zyx"):
        assert torch.autograd.gradcheck(lambda x, c=conv: rot.euler_to_matrix(x, c), (a,), **opts)
    assert torch.autograd.gradcheck(rot.axis_angle_to_matrix, (a,), **opts)
    q = torch.randn(4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot.quaternion_to_matrix, (q,), **opts)
    x6 = torch.randn(4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot.rotation_6d_to_matrix, (x6,), **opts)


@pytest.mark.parametrize("scale", [0.0, 1e-8, 5e-4, 2e-3])
def test_gradcheck_axis_angle_near_zero(scale):
    aa = torch.tensor([[0.3, -0.5, 0.8]], dtype=torch.float64) * scale
    aa.requires_grad_(True)
    assert torch.autograd.gradcheck(rot.axis_angle_to_matrix, (aa,), eps=1e-7, atol=1e-6)


def test_axis_angle_gradient_at_zero_is_skew():
    aa = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(rot.axis_angle_to_matrix, aa)  # (3, 3, 3)
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = 1
        expected = torch.linalg.cross(e.expand(3, 3), torch.eye(3, dtype=torch.float64)).T
        torch.testing.assert_close(jac[..., i], expected)


def test_gradcheck_from_matrix_generic_points():
    R = _random_rotations(3, torch.float64, seed=11).requires_grad_(True)
    opts = {"eps": 1e-6, "atol": 1e-5}
    assert torch.autograd.gradcheck(rot.matrix_to_quaternion, (R,), **opts)
    assert torch.autograd.gradcheck(rot.matrix_to_axis_angle, (R,), **opts)
    assert torch.autograd.gradcheck(rot.matrix_to_euler, (R,), **opts)
    assert torch.autograd.gradcheck(rot.matrix_to_rotation_6d, (R,), **opts)


def test_matrix_to_euler_gradient_finite_at_gimbal_lock():
    R = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=torch.float64, requires_grad=True)
    rot.matrix_to_euler(R).sum().backward()
    assert bool(torch.isfinite(R.grad).all())


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fn", "name", "good_shape", "bad_shape"),
    [
        (rot.euler_to_matrix, "angles", (2, 3), (2, 4)),
        (rot.axis_angle_to_matrix, "aa", (2, 3), (2, 2)),
        (rot.quaternion_to_matrix, "q", (2, 4), (2, 3)),
        (rot.rotation_6d_to_matrix, "x", (2, 6), (2, 9)),
        (rot.matrix_to_euler, "R", (2, 3, 3), (2, 3, 4)),
        (rot.matrix_to_axis_angle, "R", (2, 3, 3), (2, 9)),
        (rot.matrix_to_quaternion, "R", (2, 3, 3), (3,)),
        (rot.matrix_to_rotation_6d, "R", (2, 3, 3), (2, 2, 3)),
    ],
)
def test_bad_input(fn, name, good_shape, bad_shape):
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        fn(torch.ones(bad_shape))
    with pytest.raises(TypeError, match=f"^{name}: expected float32 or float64"):
        fn(torch.ones(good_shape, dtype=torch.int64))
    with pytest.raises(TypeError, match=f"^{name}: expected float32 or float64"):
        fn(np.ones(good_shape, dtype=np.int32))
    bad = torch.ones(good_shape)
    bad.view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=f"^{name}: expected finite"):
        fn(bad)
    with pytest.raises(TypeError, match=f"^{name}: expected a torch.Tensor"):
        fn([[1.0, 0.0, 0.0]])


def test_bad_convention_and_zero_quaternion():
    with pytest.raises(ValueError, match="convention"):
        rot.euler_to_matrix(torch.zeros(3), "xyx")
    with pytest.raises(ValueError, match="convention"):
        rot.matrix_to_euler(torch.eye(3), "abc")
    with pytest.raises(TypeError, match="convention"):
        rot.euler_to_matrix(torch.zeros(3), 3)
    with pytest.raises(ValueError, match="q: expected non-zero"):
        rot.quaternion_to_matrix(torch.zeros(2, 4))


def test_gradcheck_from_matrix_at_identity():
    R = torch.eye(3, dtype=torch.float64)[None].repeat(2, 1, 1).requires_grad_(True)
    assert torch.autograd.gradcheck(rot.matrix_to_axis_angle, (R,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(rot.matrix_to_quaternion, (R,), eps=1e-6, atol=1e-5)


def test_3ddfa_v2_calc_pose_reading():
    """3DDFA_V2's calc_pose: yaw = asin(R20), pitch = atan2(R21, R22), roll = atan2(R10, R00)."""
    R = Rotation.random(20, random_state=12).as_matrix()
    yaw = np.arcsin(R[:, 2, 0])
    pitch = np.arctan2(R[:, 2, 1], R[:, 2, 2])
    roll = np.arctan2(R[:, 1, 0], R[:, 0, 0])
    a, b, c = rot.matrix_to_euler(R, "xyz").T
    np.testing.assert_allclose(np.stack([-b, a, c]), np.stack([yaw, pitch, roll]), atol=1e-12)
