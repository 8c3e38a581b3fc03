"""The morphable face model container shared by every loader and method.

A 3D morphable model (Blanz & Vetter 1999; MoFA Eqs. (2)-(3)) is an affine
model of geometry and reflectance::

    V(alpha, delta) = mean_shape + id_basis @ alpha + exp_basis @ delta      (MoFA Eq. 2)
    R(beta)         = mean_albedo + albedo_basis @ beta                       (MoFA Eq. 3)

The bases are stored pre-scaled by their standard deviations, so the
coefficients alpha, delta, beta are ~N(0, 1) (as in MoFA). Every loader
(built-in synthetic, BFM 2009/2017, FLAME, 3DDFA) returns this one class.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_indices,
    check_shape,
    like_input,
)
from facelab.model.skinning import Skeleton, blend_skinning

__all__ = ["MorphableModel"]


@dataclass(eq=False)
class MorphableModel:
    """A morphable face model: mean, scaled bases, topology and annotations.

    Attributes (V vertices, F faces; all torch tensors):
        name: short identifier, e.g. ``"synthetic-teaching"`` or ``"bfm2009"``.
        mean_shape: (V, 3) float, model space in millimetres, y up, face toward +z.
        id_basis: (V, 3, Kid) float, identity modes scaled by their std (mm).
        exp_basis: (V, 3, Kexp) float, expression modes scaled by their std (mm);
            Kexp may be 0 for models without expressions (BFM 2009).
        mean_albedo: (V, 3) float, linear RGB reflectance in [0, 1].
        albedo_basis: (V, 3, Kalb) float, reflectance modes scaled by their std.
        faces: (F, 3) int64 vertex indices, counter-clockwise seen from the front (+z).
        landmarks: (68,) int64 vertex indices of the iBUG-68 points, or None when
            the source file carries none.
        face_mask: (V,) bool, True on the face region (used by photometric losses).
        jaw_joint: (3,) float, the jaw's rotation centre in model space, or None.
        jaw_weights: (V,) float in [0, 1], linear-blend-skinning weight of the jaw
            joint per vertex (FLAME-style pose), or None. A shorthand for a skeleton with
            one joint, "jaw"; with ``skeleton`` given they are derived from its "jaw" joint.
        skeleton: a :class:`facelab.model.skinning.Skeleton` of the joints below the root
            (e.g. FLAME's neck, jaw and eyes), or None; see :meth:`pose_joints`.
        expressions: named semantic expressions as (Kexp,) coefficient vectors
            (e.g. ``"jaw_open"``, ``"smile"``), possibly empty.
        id_std / exp_std / albedo_std: (K,) float, the standard deviation folded
            into each mode (mm for geometry); informative, and ordered decreasing
            for the built-in model.
        source: where the model came from (a path, or ``"built-in"``).
        uv: (Vt, 2) float texture coordinates in [0, 1], OBJ convention (u to the right,
            v up: texel row = (1 - v) * Ht, column = u * Wt, row 0 the top of the image),
            or None for models without a UV layout (BFM, FLAME files without one).
        uv_faces: (F, 3) int64 indices into ``uv``, one per triangle corner (a UV layout may
            have seams, so Vt may exceed V); required with ``uv``.
        albedo_texture: (Ht, Wt, 3) float, the mean linear-RGB reflectance as a texture map
            (row 0 at the top), or None.
        albedo_texture_basis: (Ht, Wt, 3, Kalb) float, the reflectance modes as texture maps,
            scaled by ``albedo_std`` and driven by the same coefficients as ``albedo_basis``
            (MoFA Eq. 3 per texel); required with ``albedo_texture``.
        landmark_vertices: (68, K) int64 and landmark_weights: (68, K) float, rows summing to
            1, or both None: an optional landmark embedding. Landmark ``i`` is then the affine
            combination ``sum_k w_ik X[v_ik]`` of K vertices (a point that may lie off the
            surface, inside the head or in front of it, and follows the mesh through identity,
            expression and pose, like FLAME's landmark embedding or a joint regressor). Without
            one, landmark ``i`` is the vertex ``landmarks[i]`` (one-hot). ``landmarks`` stays the
            dominant (surveyed) vertex for viewers; every computation on landmark positions goes
            through :meth:`landmark_points` / :meth:`landmark_rows`.
    """

    name: str
    mean_shape: torch.Tensor
    id_basis: torch.Tensor
    exp_basis: torch.Tensor
    mean_albedo: torch.Tensor
    albedo_basis: torch.Tensor
    faces: torch.Tensor
    landmarks: torch.Tensor | None = None
    face_mask: torch.Tensor | None = None
    jaw_joint: torch.Tensor | None = None
    jaw_weights: torch.Tensor | None = None
    expressions: dict[str, torch.Tensor] = field(default_factory=dict)
    id_std: torch.Tensor | None = None
    exp_std: torch.Tensor | None = None
    albedo_std: torch.Tensor | None = None
    source: str = "built-in"
    skeleton: Skeleton | None = None
    uv: torch.Tensor | None = None
    uv_faces: torch.Tensor | None = None
    albedo_texture: torch.Tensor | None = None
    albedo_texture_basis: torch.Tensor | None = None
    landmark_vertices: torch.Tensor | None = None
    landmark_weights: torch.Tensor | None = None

    def __post_init__(self):
        tensors = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = torch.from_numpy(np.ascontiguousarray(value))
                setattr(self, f.name, value)
            tensors[f.name] = value
        d: dict = {}
        check_shape(self.mean_shape, "V 3", name="mean_shape", dims=d)
        check_floating(self.mean_shape, name="mean_shape")
        dtype = self.mean_shape.dtype
        check_shape(self.id_basis, "V 3 Kid", name="id_basis", dims=d)
        check_shape(self.exp_basis, "V 3 Kexp", name="exp_basis", dims=d)
        check_shape(self.mean_albedo, "V 3", name="mean_albedo", dims=d)
        check_shape(self.albedo_basis, "V 3 Kalb", name="albedo_basis", dims=d)
        for n in ("mean_shape", "id_basis", "exp_basis", "mean_albedo", "albedo_basis"):
            t = getattr(self, n)
            check_floating(t, name=n)
            check_finite(t, name=n)
            setattr(self, n, t.to(dtype))
        check_shape(self.faces, "F 3", name="faces")
        check_indices(self.faces, d["V"], name="faces")
        self.faces = self.faces.long()
        if self.landmarks is not None:
            check_shape(self.landmarks, "L", name="landmarks")
            check_indices(self.landmarks, d["V"], name="landmarks")
            self.landmarks = self.landmarks.long()
        if (self.landmark_vertices is None) != (self.landmark_weights is None):
            raise ValueError("landmark_vertices and landmark_weights: give both or neither")
        if self.landmark_vertices is not None:
            if self.landmarks is None:
                raise ValueError("landmark_vertices: needs landmarks to be given")
            e = {"L": len(self.landmarks)}
            check_shape(self.landmark_vertices, "L K", name="landmark_vertices", dims=e)
            check_indices(self.landmark_vertices, d["V"], name="landmark_vertices")
            check_shape(self.landmark_weights, "L K", name="landmark_weights", dims=e)
            check_floating(self.landmark_weights, name="landmark_weights")
            check_finite(self.landmark_weights, name="landmark_weights")
            rows = self.landmark_weights.double().sum(1)
            if not torch.allclose(rows, torch.ones_like(rows), atol=1e-5):
                k = int((rows - 1).abs().argmax())
                raise ValueError(f"landmark_weights: expected rows summing to 1, row {k} sums "
                                 f"to {float(rows[k]):.6g}")
            self.landmark_vertices = self.landmark_vertices.long()
            self.landmark_weights = self.landmark_weights.to(dtype)
        if self.face_mask is None:
            self.face_mask = torch.ones(d["V"], dtype=torch.bool)
        check_shape(self.face_mask, "V", name="face_mask", dims=d)
        self.face_mask = self.face_mask.bool()
        if self.skeleton is not None:
            if not isinstance(self.skeleton, Skeleton):
                raise TypeError(f"skeleton: expected a Skeleton, got "
                                f"{type(self.skeleton).__name__}")
            check_shape(self.skeleton.weights, "V J", name="skeleton.weights", dims=d)
            self.skeleton = self.skeleton.to(dtype=dtype)
            if "jaw" in self.skeleton.names:  # the shorthand fields, derived
                j = self.skeleton.index("jaw")
                self.jaw_joint = self.skeleton.positions[j]
                self.jaw_weights = self.skeleton.weights[:, j]
            else:
                self.jaw_joint = self.jaw_weights = None
        if (self.jaw_joint is None) != (self.jaw_weights is None):
            raise ValueError("jaw_joint and jaw_weights: give both or neither")
        if self.jaw_joint is not None:
            check_shape(self.jaw_joint, "3", name="jaw_joint")
            check_shape(self.jaw_weights, "V", name="jaw_weights", dims=d)
            self.jaw_joint = self.jaw_joint.to(dtype)
            self.jaw_weights = self.jaw_weights.to(dtype)
            if self.skeleton is None:
                self.skeleton = Skeleton(("jaw",), (-1,), self.jaw_joint[None],
                                         self.jaw_weights[:, None])
        if (self.uv is None) != (self.uv_faces is None):
            raise ValueError("uv and uv_faces: give both or neither")
        if self.uv is not None:
            check_shape(self.uv, "Vt 2", name="uv")
            check_floating(self.uv, name="uv")
            check_finite(self.uv, name="uv")
            if tuple(self.uv_faces.shape) != tuple(self.faces.shape):
                raise ValueError(f"uv_faces: expected shape {tuple(self.faces.shape)} (one uv "
                                 f"index per triangle corner), got {tuple(self.uv_faces.shape)}")
            check_indices(self.uv_faces, self.uv.shape[0], name="uv_faces")
            self.uv = self.uv.to(dtype)
            self.uv_faces = self.uv_faces.long()
        if (self.albedo_texture is None) != (self.albedo_texture_basis is None):
            raise ValueError("albedo_texture and albedo_texture_basis: give both or neither")
        if self.albedo_texture is not None:
            if self.uv is None:
                raise ValueError("albedo_texture: needs uv and uv_faces to be given")
            check_shape(self.albedo_texture, "Ht Wt 3", name="albedo_texture", dims=d)
            check_shape(self.albedo_texture_basis, "Ht Wt 3 Kalb",
                        name="albedo_texture_basis", dims=d)
            for n in ("albedo_texture", "albedo_texture_basis"):
                t = getattr(self, n)
                check_floating(t, name=n)
                check_finite(t, name=n)
                setattr(self, n, t.to(dtype))
        for key, coeffs in list(self.expressions.items()):
            coeffs = torch.as_tensor(coeffs)
            check_shape(coeffs, "Kexp", name=f"expressions[{key!r}]", dims=d)
            self.expressions[key] = coeffs.to(dtype)
        for n, k in (("id_std", "Kid"), ("exp_std", "Kexp"), ("albedo_std", "Kalb")):
            t = getattr(self, n)
            if t is not None:
                check_shape(t, k, name=n, dims=d)
                setattr(self, n, t.to(dtype))

    # ------------------------------------------------------------------ sizes
    @property
    def num_vertices(self) -> int:
        """V, the number of vertices."""
        return self.mean_shape.shape[0]

    @property
    def num_faces(self) -> int:
        """F, the number of triangles."""
        return self.faces.shape[0]

    @property
    def n_id(self) -> int:
        """Kid, the number of identity modes."""
        return self.id_basis.shape[2]

    @property
    def n_exp(self) -> int:
        """Kexp, the number of expression modes."""
        return self.exp_basis.shape[2]

    @property
    def n_albedo(self) -> int:
        """Kalb, the number of reflectance modes."""
        return self.albedo_basis.shape[2]

    @property
    def dtype(self) -> torch.dtype:
        return self.mean_shape.dtype

    @property
    def device(self) -> torch.device:
        return self.mean_shape.device

    @property
    def expression_names(self) -> list[str]:
        """Names of the semantic expressions, in insertion order."""
        return list(self.expressions)

    def __repr__(self) -> str:
        return (
            f"MorphableModel({self.name!r}, V={self.num_vertices}, F={self.num_faces}, "
            f"Kid={self.n_id}, Kexp={self.n_exp}, Kalb={self.n_albedo}, "
            f"landmarks={'68' if self.landmarks is not None else 'none'}, "
            f"jaw={'yes' if self.jaw_joint is not None else 'no'}, dtype={self.dtype})"
        )

    # -------------------------------------------------------------- evaluation
    def _coeffs(self, coeffs, k_max: int, name: str, batch: int | None):
        """Validate (B, k) coefficients with k <= k_max; return (tensor, was_numpy)."""
        c, was_numpy = as_tensor(coeffs, name=name)
        check_shape(c, "B K", name=name)
        check_floating(c, name=name)
        check_finite(c, name=name)
        if c.shape[1] > k_max:
            raise ValueError(f"{name}: expected (B, K) with K <= {k_max}, got {tuple(c.shape)}")
        if batch is not None and c.shape[0] != batch:
            raise ValueError(f"{name}: expected (B, K) with B={batch}, got {tuple(c.shape)}")
        return c, was_numpy

    @staticmethod
    def _combine(mean: torch.Tensor, basis: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        k = c.shape[1]
        basis = basis[..., :k].to(device=c.device, dtype=c.dtype)  # (V, 3, k)
        return torch.einsum("vdk,bk->bvd", basis, c)

    def shape(self, id_coeffs, exp_coeffs=None):
        """Geometry of the model, MoFA Eq. (2) / BFM: mean + identity + expression.

        id_coeffs: (B, k_id) float with k_id <= Kid; only the leading modes are
            used when k_id < Kid (3DDFA_V2 uses 40).
        exp_coeffs: (B, k_exp) float with k_exp <= Kexp, or None for neutral.
        Returns (B, V, 3) vertices in model space (mm), same dtype and device as
        ``id_coeffs`` (NumPy in, NumPy out).
        """
        a, was_numpy = self._coeffs(id_coeffs, self.n_id, "id_coeffs", None)
        mean = self.mean_shape.to(device=a.device, dtype=a.dtype)
        verts = mean.unsqueeze(0) + self._combine(mean, self.id_basis, a)
        if exp_coeffs is not None:
            e, _ = self._coeffs(exp_coeffs, self.n_exp, "exp_coeffs", a.shape[0])
            verts = verts + self._combine(mean, self.exp_basis, e.to(a))
        return like_input(verts, was_numpy)

    def albedo(self, albedo_coeffs):
        """Per-vertex reflectance, MoFA Eq. (3): mean_albedo + albedo_basis @ beta.

        albedo_coeffs: (B, k_alb) float with k_alb <= Kalb.
        Returns (B, V, 3) linear RGB (not clamped; plausible coefficients stay in [0, 1]).
        """
        b, was_numpy = self._coeffs(albedo_coeffs, self.n_albedo, "albedo_coeffs", None)
        mean = self.mean_albedo.to(device=b.device, dtype=b.dtype)
        return like_input(mean.unsqueeze(0) + self._combine(mean, self.albedo_basis, b), was_numpy)

    @property
    def has_texture(self) -> bool:
        """True when the model carries a UV layout and albedo texture maps."""
        return self.albedo_texture is not None

    def albedo_map(self, albedo_coeffs):
        """Reflectance as texture maps, MoFA Eq. (3) per texel.

        albedo_coeffs: (B, k_alb) float with k_alb <= Kalb (the same beta as :meth:`albedo`).
        Returns (B, Ht, Wt, 3) linear RGB, row 0 at the top (see ``uv``). Raises ValueError
        for a model without texture maps.
        """
        if self.albedo_texture is None:
            raise ValueError(f"albedo_map: model {self.name!r} has no albedo texture maps "
                             f"(use albedo() for per-vertex reflectance)")
        b, was_numpy = self._coeffs(albedo_coeffs, self.n_albedo, "albedo_coeffs", None)
        mean = self.albedo_texture.to(device=b.device, dtype=b.dtype)
        basis = self.albedo_texture_basis[..., : b.shape[1]].to(device=b.device, dtype=b.dtype)
        out = mean.unsqueeze(0) + torch.einsum("hwck,bk->bhwc", basis, b)
        return like_input(out, was_numpy)

    def expression(self, name: str, amount: float = 1.0) -> torch.Tensor:
        """The (Kexp,) coefficients of a named semantic expression, scaled by ``amount``."""
        if name not in self.expressions:
            raise ValueError(
                f"name: expected one of {self.expression_names} for model {self.name!r}, "
                f"got {name!r}"
            )
        return self.expressions[name] * float(amount)

    def joint_positions(self, verts=None):
        """Joint positions of the skeleton: (J, 3) at the mean shape, or (B, J, 3) for ``verts``.

        verts: optional (B, V, 3) shaped vertices (before posing); with a skeleton regressor
            (FLAME's J(beta)) the joints follow them, ``J = regressor @ verts``.
        """
        sk = self._require_skeleton("verts")
        if verts is None:
            return sk.positions
        v, _ = as_tensor(verts, name="verts")
        d = check_shape(v, "B V 3", name="verts", dims={"V": self.num_vertices})
        if sk.regressor is None:
            return sk.positions.to(v).expand(d["B"], -1, -1)
        return torch.einsum("jv,bvk->bjk", sk.regressor.to(v), v)  # (B, J, 3)

    def _require_skeleton(self, name: str) -> Skeleton:
        if self.skeleton is None:
            raise ValueError(f"{name}: model {self.name!r} has no joints")
        return self.skeleton

    def pose_joints(self, verts, poses: dict):
        """Pose the joints below the root by linear blend skinning (FLAME Eq. 2).

        verts: (B, V, 3) float, shaped model-space vertices (mm), e.g. from :meth:`shape`.
        poses: {joint name: (B, 3) axis-angle rotation (radians)}, e.g. ``{"jaw": ...}``
            (a positive rotation about +x opens the mouth); joints not named stay at rest.
        Returns (B, V, 3); the joints sit at :meth:`joint_positions` of ``verts``.
        """
        from facelab.rotations import axis_angle_to_matrix

        sk = self._require_skeleton("poses")
        v, was_numpy = as_tensor(verts, name="verts")
        d = check_shape(v, "B V 3", name="verts", dims={"V": self.num_vertices})
        check_floating(v, name="verts")
        if not isinstance(poses, dict):
            raise TypeError(f"poses: expected a dict of joint name -> (B, 3), got "
                            f"{type(poses).__name__}")
        rotations = {}
        for name, pose in poses.items():
            sk.index(name)
            p, _ = as_tensor(pose, name=f"poses[{name!r}]")
            check_shape(p, "B 3", name=f"poses[{name!r}]", dims={"B": d["B"]})
            check_floating(p, name=f"poses[{name!r}]")
            check_finite(p, name=f"poses[{name!r}]")
            rotations[name] = axis_angle_to_matrix(p.to(v))  # (B, 3, 3)
        out = blend_skinning(v, sk, rotations, self.joint_positions(v))
        return like_input(out, was_numpy)

    def pose_jaw(self, verts, jaw_pose):
        """Rotate the jaw about its joint: ``pose_joints(verts, {"jaw": jaw_pose})``.

        verts: (B, V, 3) float, model space (mm); jaw_pose: (B, 3) axis-angle (radians), a
        positive rotation about +x opens the mouth. Returns (B, V, 3):
        ``v + w_v (R (v - j) + j - v)`` with the jaw weights w.
        """
        if self.jaw_joint is None:
            raise ValueError(f"jaw_pose: model {self.name!r} has no jaw joint")
        return self.pose_joints(verts, {"jaw": jaw_pose})

    @property
    def has_landmark_embedding(self) -> bool:
        """Whether landmarks are affine combinations of vertices (``landmark_weights``) rather
        than single vertices."""
        return self.landmark_weights is not None

    def _require_landmarks(self, name: str):
        if self.landmarks is None:
            raise ValueError(f"{name}: model {self.name!r} has no landmark annotation")

    def landmark_points(self, verts):
        """The landmark positions of a batch of meshes: (B, V, 3) -> (B, L, 3).

        ``X_i = sum_k w_ik X[v_ik]`` with the landmark embedding (``landmark_vertices``,
        ``landmark_weights``), else ``X[landmarks[i]]`` (one-hot; bit-identical to indexing).
        Affine in the vertices, so it commutes with MoFA Eq. (2), linear blend skinning and the
        rigid pose: apply it to model-space, posed or camera-space vertices alike. Also
        accepts (B, V, 2) screen points, which is exact only for affine cameras; use it on 3-D
        points and project them (as :func:`facelab.formation.form` does) for a perspective one.
        """
        self._require_landmarks("verts")
        v, was_numpy = as_tensor(verts, name="verts")
        d = check_shape(v, "B V C", name="verts", dims={"V": self.num_vertices})
        if d["C"] not in (2, 3):
            raise ValueError(f"verts: expected shape (B, V, 3) or (B, V, 2), got "
                             f"{tuple(v.shape)}")
        if not self.has_landmark_embedding:
            return like_input(v[:, self.landmarks.to(v.device)], was_numpy)
        idx = self.landmark_vertices.to(v.device)
        w = self.landmark_weights.to(device=v.device, dtype=v.dtype)
        return like_input(torch.einsum("blkc,lk->blc", v[:, idx], w), was_numpy)

    def landmarks_3d(self, verts):
        """The 68 landmark points: (B, V, 3) -> (B, 68, 3); see :meth:`landmark_points`."""
        return self.landmark_points(verts)

    def landmark_rows(self, array):
        """Per-vertex rows combined into per-landmark rows: (V, ...) -> (L, ...).

        The same affine combination as :meth:`landmark_points`, applied to any per-vertex
        array: the mean shape (V, 3), a basis (V, 3, K) (3DDFA_V2's sparse reconstruction
        keeps only these rows, MoFA Eq. 2 restricted to the landmarks), skinning weights
        (V, J). One-hot models return ``array[landmarks]`` unchanged.
        """
        self._require_landmarks("array")
        a, was_numpy = as_tensor(array, name="array")
        if a.ndim < 1 or a.shape[0] != self.num_vertices:
            raise ValueError(f"array: expected shape (V={self.num_vertices}, ...), got "
                             f"{tuple(a.shape)}")
        if not self.has_landmark_embedding:
            return like_input(a[self.landmarks.to(a.device)], was_numpy)
        idx = self.landmark_vertices.to(a.device)
        w = self.landmark_weights.to(device=a.device,
                                     dtype=a.dtype if a.is_floating_point() else self.dtype)
        return like_input(torch.einsum("lk...,lk->l...", a[idx].to(w.dtype), w), was_numpy)

    # ------------------------------------------------------------- conversion
    def to(self, device=None, dtype: torch.dtype | None = None) -> MorphableModel:
        """A copy on ``device`` with floating tensors in ``dtype`` (indices stay int64)."""
        changes = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                if value.is_floating_point():
                    changes[f.name] = value.to(device=device, dtype=dtype)
                else:
                    changes[f.name] = value.to(device=device)
            elif f.name == "expressions":
                changes[f.name] = {k: c.to(device=device, dtype=dtype) for k, c in value.items()}
            elif f.name == "skeleton" and value is not None:
                changes[f.name] = value.to(device=device, dtype=dtype)
        return dataclasses.replace(self, **changes)

    def digest(self) -> str:
        """A 16-hex-digit fingerprint of what results depend on.

        SHA-256 over the float32 bytes of ``mean_shape``, the three bases, the mean albedo,
        the texture maps and UVs when present, the int64 ``faces``, ``landmarks`` and
        ``uv_faces``, and the landmark embedding when present (int64 vertices, float32
        weights), in that order (dtype and device do not
        change it; truncation and any edit to the bases do). Weights and cached results
        record it and refuse to load against a model with another digest.
        """
        import hashlib

        h = hashlib.sha256()
        for t in (self.mean_shape, self.id_basis, self.exp_basis, self.mean_albedo,
                  self.albedo_basis, self.albedo_texture, self.albedo_texture_basis, self.uv):
            if t is None:
                continue
            a = np.ascontiguousarray(t.detach().cpu().to(torch.float32).numpy())
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
        for t in (self.faces, self.landmarks, self.uv_faces):
            if t is not None:
                h.update(np.ascontiguousarray(t.detach().cpu().to(torch.int64).numpy()).tobytes())
        if self.landmark_vertices is not None:  # absent: the digest of models without one
            h.update(b"landmark_embedding")
            h.update(np.ascontiguousarray(self.landmark_vertices.cpu().numpy()).tobytes())
            w = self.landmark_weights.detach().cpu().to(torch.float32).numpy()
            h.update(np.ascontiguousarray(w).tobytes())
        return h.hexdigest()[:16]

    def truncated(self, n_id: int | None = None, n_exp: int | None = None,
                  n_albedo: int | None = None) -> MorphableModel:
        """A copy keeping only the leading modes of each basis (e.g. 3DDFA's 40/10)."""
        def cut(basis, std, n, label):
            if n is None:
                return basis, std
            if not 0 <= n <= basis.shape[2]:
                raise ValueError(f"{label}: expected 0 <= {label} <= {basis.shape[2]}, got {n}")
            return basis[..., :n].contiguous(), (None if std is None else std[:n].contiguous())

        id_basis, id_std = cut(self.id_basis, self.id_std, n_id, "n_id")
        exp_basis, exp_std = cut(self.exp_basis, self.exp_std, n_exp, "n_exp")
        alb_basis, alb_std = cut(self.albedo_basis, self.albedo_std, n_albedo, "n_albedo")
        tex_basis = self.albedo_texture_basis
        if tex_basis is not None and n_albedo is not None:
            tex_basis = tex_basis[..., :n_albedo].contiguous()
        k = exp_basis.shape[2]
        # Named expressions keep their (projected) leading coefficients.
        expressions = {name: c[:k].clone() for name, c in self.expressions.items()}
        return dataclasses.replace(
            self, id_basis=id_basis, id_std=id_std, exp_basis=exp_basis, exp_std=exp_std,
            albedo_basis=alb_basis, albedo_std=alb_std, expressions=expressions,
            albedo_texture_basis=tex_basis,
        )
