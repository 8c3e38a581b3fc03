"""Rotation representations: Euler angles, axis-angle, quaternions, 6D <-> 3x3 matrices.

Every function is batched over any number of leading dimensions (``...``), accepts
torch tensors (CPU or CUDA, float32 or float64; the result keeps dtype and device)
or NumPy arrays (the result comes back as NumPy), and is differentiable in torch.

Conventions used throughout:

- Matrices act on column vectors: ``x' = R @ x``. Rotations are right-handed
  (a positive angle turns counter-clockwise when looking down the axis toward the
  origin), so a 90 degree turn about x maps +y to +z, about y maps +z to +x, and
  about z maps +x to +y.
- Euler angles are always stored as ``(pitch, yaw, roll)`` = the angles about the
  x, y and z axis, in radians, whatever the composition order (see
  :func:`euler_to_matrix`).
- Quaternions are ``(w, x, y, z)`` (scalar first).
- The 6D representation (Zhou et al., "On the Continuity of Rotation
  Representations in Neural Networks", CVPR 2019, Sec. 4.2) is the first two
  *columns* of R, concatenated: ``(R[:, 0], R[:, 1])``. (PyTorch3D uses the first
  two rows instead; the two are not interchangeable.)
"""

from __future__ import annotations

import itertools

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape, like_input

__all__ = [
    "axis_angle_to_matrix",
    "euler_to_matrix",
    "head_rotation",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "matrix_to_rotation_6d",
    "quaternion_to_matrix",
    "rotation_6d_to_matrix",
]

_AXIS = {"x": 0, "y": 1, "z": 2}
# The six Tait-Bryan orders, each naming the axes in the order they are applied.
_CONVENTIONS = tuple("".join(p) for p in itertools.permutations("xyz"))
# Axis-angle: below this angle (radians) the Rodrigues coefficients use their Taylor series.
_SMALL_ANGLE = 1e-3


def _input(x, spec: str, name: str) -> tuple[torch.Tensor, bool]:
    """Validate a public floating-point input; return ``(tensor, was_numpy)``."""
    t, was_numpy = as_tensor(x, name=name)
    check_shape(t, spec, name=name)
    check_floating(t, name=name)
    check_finite(t, name=name)
    return t, was_numpy


def _parse_convention(convention) -> tuple[int, int, int]:
    if not isinstance(convention, str):
        raise TypeError(f"convention: expected a str, got {type(convention).__name__}")
    if convention.lower() not in _CONVENTIONS:
        raise ValueError(f"convention: expected one of {_CONVENTIONS}, got {convention!r}")
    return tuple(_AXIS[c] for c in convention.lower())


def _axis_rotation(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """Right-handed rotation by ``angle`` (...,) about coordinate ``axis``: (..., 3, 3)."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == 0:  # Rx = [[1, 0, 0], [0, c, -s], [0, s, c]]
        rows = (one, zero, zero, zero, c, -s, zero, s, c)
    elif axis == 1:  # Ry = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        rows = (c, zero, s, zero, one, zero, -s, zero, c)
    else:  # Rz = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
        rows = (c, -s, zero, s, c, zero, zero, zero, one)
    return torch.stack(rows, dim=-1).unflatten(-1, (3, 3))  # (..., 3, 3)


def euler_to_matrix(angles, convention: str = "xyz"):
    """Rotation matrices from Euler angles, composed about the fixed (extrinsic) axes.

    angles: (..., 3) float32/float64, ``(pitch, yaw, roll)`` = angles about the x, y
        and z axis in radians. The order of the three numbers never changes; the
        convention only says in which order the rotations are applied.
    convention: the application order, one of ``"xyz"``, ``"xzy"``, ``"yxz"``,
        ``"yzx"``, ``"zxy"``, ``"zyx"``. ``"xyz"`` means x first, then y, then z,
        about the fixed axes, so for column vectors ``R = Rz(roll) @ Ry(yaw) @
        Rx(pitch)``; ``"zyx"`` means ``R = Rx(pitch) @ Ry(yaw) @ Rz(roll)``.
        (These equal SciPy's extrinsic ``Rotation.from_euler(convention, ...)``
        with the angles listed in application order.)

    Returns R: (..., 3, 3), same dtype/device (NumPy in, NumPy out).

    3DDFA's pose convention: 3DDFA (Zhu et al.; face3d's ``angle2matrix_3ddfa``,
    documented as "the same as in 3DDFA") turns ``(pitch, yaw, roll)`` into
    ``Rx(-pitch) @ Ry(-yaw) @ Rz(-roll)``: use ``euler_to_matrix(-angles,
    convention="zyx")``, equivalently the transpose of ``euler_to_matrix(angles,
    "xyz")``. 3DDFA_V2 regresses the 3x4 T instead (Eq. (3)); its released
    ``calc_pose`` reads T's rotation R as ``(yaw, pitch, roll) = (-b, a, c)`` with
    ``(a, b, c) = matrix_to_euler(R, "xyz")``.
    """
    order = _parse_convention(convention)
    a, was_numpy = _input(angles, "... 3", "angles")
    R = None
    for axis in order:  # left-multiply: the first applied ends up rightmost
        Ri = _axis_rotation(axis, a[..., axis])  # (..., 3, 3)
        R = Ri if R is None else Ri @ R
    return like_input(R, was_numpy)


def _matrix_to_euler_xyz(R: torch.Tensor) -> torch.Tensor:
    """``(a, b, c)`` with ``R = Rz(c) Ry(b) Rx(a)``; b in [-pi/2, pi/2], a, c in (-pi, pi].

    Peel off one angle at a time (M. Day, "Extracting Euler angles from a rotation
    matrix", 2014): c from the first column, then undo Rz(c) and read b and a from
    ``Rz(c)^T R = Ry(b) Rx(a) = [[cb, sb sa, sb ca], [0, ca, -sa], [-sb, cb sa, cb ca]]``.
    Because a is read after removing the c actually chosen, the triple reproduces R
    to rounding even at gimbal lock (cb = 0), where c is arbitrary and we pick 0.
    """
    r00, r01, r02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    r10, r11, r12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    r20 = R[..., 2, 0]
    # R00 = cc cb, R10 = sc cb. At gimbal lock both vanish: use c = 0 with a safe
    # atan2 argument so the gradient stays finite.
    lock = torch.hypot(r00, r10) <= torch.finfo(R.dtype).eps
    c = torch.atan2(torch.where(lock, 0.0, r10), torch.where(lock, 1.0, r00))
    cc, sc = torch.cos(c), torch.sin(c)
    b = torch.atan2(-r20, cc * r00 + sc * r10)
    a = torch.atan2(sc * r02 - cc * r12, cc * r11 - sc * r01)
    return torch.stack([a, b, c], dim=-1)  # (..., 3)


def matrix_to_euler(R, convention: str = "xyz"):
    """Euler angles ``(pitch, yaw, roll)`` of rotation matrices; inverse of :func:`euler_to_matrix`.

    R: (..., 3, 3) float32/float64 rotation matrices.
    convention: application order, as in :func:`euler_to_matrix`.

    Returns angles: (..., 3) radians, ordered (about x, about y, about z). The
    middle angle of the convention (the yaw for ``"xyz"`` and ``"zyx"``) lies in
    [-pi/2, pi/2], the other two in (-pi, pi]. At gimbal lock (middle angle
    +-pi/2) only the sum or difference of the other two is defined; the last
    applied angle is then set to 0 and the first absorbs the rest, so
    ``euler_to_matrix(matrix_to_euler(R))`` reproduces R to rounding everywhere.

    Any order ``(i, j, k)`` reduces to ``"xyz"``: with P the permutation matrix
    whose columns are ``e_i, e_j, e_k`` and s = det(P) = +-1,
    ``Rk(g) Rj(b) Ri(a) = P Rz(s g) Ry(s b) Rx(s a) P^T``.
    """
    order = _parse_convention(convention)
    m, was_numpy = _input(R, "... 3 3", "R")
    perm = list(order)
    sign = 1.0 if order in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0  # det(P)
    m_xyz = m[..., perm, :][..., :, perm]  # P^T R P, (..., 3, 3)
    applied = sign * _matrix_to_euler_xyz(m_xyz)  # (..., 3), angles in application order
    inverse = [perm.index(axis) for axis in range(3)]
    angles = applied[..., inverse]  # back to (about x, about y, about z)
    return like_input(angles, was_numpy)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrix [v]_x of (..., 3) vectors: (..., 3, 3)."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).unflatten(-1, (3, 3))


def axis_angle_to_matrix(aa):
    """Rodrigues' formula: rotation matrices from axis-angle vectors.

    aa: (..., 3) float32/float64, rotation axis times angle (radians).

    Returns R: (..., 3, 3) with ``R = I + A K + B K^2``, ``K = [aa]_x``,
    ``A = sin(t)/t``, ``B = (1 - cos(t))/t^2 = 2 sin^2(t/2)/t^2``, ``t = |aa|``.
    Below t = 1e-3 the coefficients use their Taylor series
    (``A = 1 - t^2/6 + t^4/120``, ``B = 1/2 - t^2/24 + t^4/720``) in ``t^2``, so
    the value and the gradient are exact at t = 0 (dR/daa_i = [e_i]_x there).
    """
    v, was_numpy = _input(aa, "... 3", "aa")
    t2 = (v * v).sum(-1)[..., None, None]  # (..., 1, 1)
    small = t2 < _SMALL_ANGLE**2
    t2_safe = torch.where(small, torch.ones_like(t2), t2)
    t = torch.sqrt(t2_safe)
    A = torch.where(small, 1.0 - t2 / 6.0 + t2 * t2 / 120.0, torch.sin(t) / t)
    B = torch.where(
        small, 0.5 - t2 / 24.0 + t2 * t2 / 720.0, 2.0 * torch.sin(0.5 * t) ** 2 / t2_safe
    )
    K = _skew(v)  # (..., 3, 3)
    eye = torch.eye(3, dtype=v.dtype, device=v.device)
    R = eye + A * K + B * (K @ K)
    return like_input(R, was_numpy)


def _matrix_to_quaternion(m: torch.Tensor) -> torch.Tensor:
    """Shepperd's method on validated tensors: (..., 3, 3) -> (..., 4) unit, w >= 0."""
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # d = (4w^2, 4x^2, 4y^2, 4z^2) from the diagonal; the largest (>= 1 for a
    # rotation, as they sum to 4) is the stable one to divide by.
    d = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22],
        dim=-1,
    )  # (..., 4)
    # Row k holds 4 q_k * (w, x, y, z), read off the off-diagonal sums/differences.
    rows = torch.stack(
        [
            torch.stack([d[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, d[..., 1], m01 + m10, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m01 + m10, d[..., 2], m12 + m21], dim=-1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, d[..., 3]], dim=-1),
        ],
        dim=-2,
    )  # (..., 4, 4)
    # 4 q_k = 2 sqrt(d_k). The clamp only touches rows that are never selected and
    # keeps their (discarded) gradients finite.
    cand = rows / (2.0 * torch.sqrt(d.clamp(min=0.1)))[..., None]  # (..., 4, 4)
    best = d.argmax(dim=-1)  # (...,)
    idx = best[..., None, None].expand(*best.shape, 1, 4)
    q = torch.gather(cand, -2, idx).squeeze(-2)  # (..., 4)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_quaternion(R):
    """Unit quaternions ``(w, x, y, z)`` with w >= 0 from rotation matrices (Shepperd 1978).

    R: (..., 3, 3) float32/float64 rotation matrices.

    Returns q: (..., 4), unit norm, w >= 0 (q and -q are the same rotation; at
    exactly 180 degrees w = 0 and the sign of the vector part is arbitrary).
    Shepperd's method computes whichever of |w|, |x|, |y|, |z| is largest from the
    diagonal and the other three from off-diagonal sums and differences, so it
    never divides by a small number.
    """
    m, was_numpy = _input(R, "... 3 3", "R")
    return like_input(_matrix_to_quaternion(m), was_numpy)


def matrix_to_axis_angle(R):
    """Axis-angle vectors (axis times angle in [0, pi]) from rotation matrices.

    R: (..., 3, 3) float32/float64 rotation matrices.

    Returns aa: (..., 3). Goes through the quaternion (Shepperd), then
    ``t = 2 atan2(|v|, w)`` and ``aa = v t / |v|`` with v the vector part; the
    ratio ``t/|v|`` uses its Taylor series ``(2/w)(1 - |v|^2/(3 w^2))`` for tiny
    |v|. Both ends are stable: near 0 nothing is divided by the angle, near pi
    the quaternion's vector part is large and accurate. At exactly pi, aa and -aa
    are the same rotation and either may be returned.
    """
    m, was_numpy = _input(R, "... 3 3", "R")
    q = _matrix_to_quaternion(m)  # (..., 4), w >= 0
    w, v = q[..., :1], q[..., 1:]
    n2 = (v * v).sum(-1, keepdim=True)  # (..., 1)
    small = n2 < 1e-12
    n = torch.sqrt(torch.where(small, torch.ones_like(n2), n2))
    w_safe = torch.where(small, w, torch.ones_like(w))  # w ~ 1 wherever |v| is tiny
    ratio = torch.where(
        small,
        (2.0 / w_safe) * (1.0 - n2 / (3.0 * w_safe * w_safe)),
        2.0 * torch.atan2(n, w) / n,
    )
    return like_input(v * ratio, was_numpy)


def quaternion_to_matrix(q):
    """Rotation matrices from quaternions ``(w, x, y, z)``; the input is normalised first.

    q: (..., 4) float32/float64, any non-zero length (q and -q give the same R).

    Returns R: (..., 3, 3) =
    ``[[1-2(y²+z²), 2(xy-wz), 2(xz+wy)], [2(xy+wz), 1-2(x²+z²), 2(yz-wx)],
    [2(xz-wy), 2(yz+wx), 1-2(x²+y²)]]`` for the unit quaternion.
    Raises ValueError for a zero quaternion.
    """
    t, was_numpy = _input(q, "... 4", "q")
    norm = torch.linalg.vector_norm(t, dim=-1, keepdim=True)  # (..., 1)
    if bool((norm == 0).any()):
        raise ValueError(f"q: expected non-zero quaternions, got {int((norm == 0).sum())} zero")
    w, x, y, z = (t / norm).unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).unflatten(-1, (3, 3))  # (..., 3, 3)
    return like_input(R, was_numpy)


def rotation_6d_to_matrix(x):
    """Rotation matrices from the 6D representation (Zhou et al. CVPR 2019, Eq. (15)-(16)).

    x: (..., 6) float32/float64, two 3-vectors ``a1 = x[..., :3]``, ``a2 = x[..., 3:]``
        (any lengths, not parallel).

    Returns R: (..., 3, 3) with columns ``b1, b2, b3``: Gram-Schmidt
    ``b1 = a1/|a1|``, ``b2 = normalise(a2 - (b1.a2) b1)``, ``b3 = b1 x b2``.
    Norms are clamped at 1e-12 so degenerate input gives a finite (meaningless)
    matrix rather than NaN.
    """
    t, was_numpy = _input(x, "... 6", "x")
    a1, a2 = t[..., :3], t[..., 3:]
    b1 = a1 / torch.linalg.vector_norm(a1, dim=-1, keepdim=True).clamp(min=1e-12)
    u2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = u2 / torch.linalg.vector_norm(u2, dim=-1, keepdim=True).clamp(min=1e-12)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    R = torch.stack([b1, b2, b3], dim=-1)  # columns, (..., 3, 3)
    return like_input(R, was_numpy)


def matrix_to_rotation_6d(R):
    """The 6D representation of rotation matrices: their first two columns (Zhou et al. 2019).

    R: (..., 3, 3) float32/float64.

    Returns x: (..., 6) = ``(R[..., :, 0], R[..., :, 1])``;
    ``rotation_6d_to_matrix(matrix_to_rotation_6d(R)) == R`` for rotations.
    """
    m, was_numpy = _input(R, "... 3 3", "R")
    x = torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)  # (..., 6)
    return like_input(x, was_numpy)


def head_rotation(angles):
    """Head rotation from (pitch, yaw, roll): (B, 3) radians -> (B, 3, 3).

    The convention every facelab layout uses for a head pose: :func:`euler_to_matrix` with
    "xyz" (about the model's x, then y (up), then z axes), applied in model space.
    """
    return euler_to_matrix(angles, convention="xyz")
