"""Joints and linear blend skinning: FLAME-style pose (neck, jaw, eyes) for morphable models.

FLAME (Li et al. 2017, Eq. 2) poses a shaped template with linear blend skinning,

    M(beta, theta, psi) = W(T_P(beta, theta, psi), J(beta), theta, weights),

rotating each vertex by the skinning-weighted blend of its joints' world transforms. facelab
keeps the head's own (root) rotation in :class:`facelab.FaceParams` ``rotation`` (applied
about the model origin, after skinning: the same map as FLAME's global joint up to a
translation, which ``translation`` absorbs); a :class:`Skeleton` holds the joints *below* the
root — FLAME's neck, jaw and eyes, the built-in model's jaw. Pose correctives (FLAME's
``posedirs``) are not modelled.

A joint ``j`` with parent ``p`` (``-1`` = the root) rotates its subtree by ``R_j`` about its
position ``J_j``; its world transform composes down the chain,

    G_j(x) = G_p(R_j (x - J_j) + J_j),   G_root = identity,

and a vertex with weights ``w_vj`` (the rest, ``1 - sum_j w_vj``, belongs to the root) moves to
``sum_j w_vj G_j(v) + (1 - sum_j w_vj) v``. Joint positions either stay fixed (``regressor``
None) or follow the shaped mesh, ``J = regressor @ V`` (FLAME's J(beta)).
"""

from __future__ import annotations

import dataclasses

import torch

from facelab._checks import check_finite, check_floating, check_shape

__all__ = ["Skeleton", "blend_skinning"]


@dataclasses.dataclass(frozen=True, eq=False)
class Skeleton:
    """The joints of a model below its root, in an order where parents come first.

    names: (J,) joint names, e.g. ``("neck", "jaw", "eye_left", "eye_right")``.
    parents: (J,) parent index of each joint, ``-1`` for a child of the root.
    positions: (J, 3) float, joint positions on the mean shape, model space (mm).
    weights: (V, J) float in [0, 1], skinning weight of each joint per vertex; each row sums
        to at most 1 (the rest is the root's).
    regressor: (J, V) float or None; when given, joints follow the shaped mesh:
        ``J = regressor @ verts`` (rows sum to 1), else ``positions`` are used for every shape.
    """

    names: tuple
    parents: tuple
    positions: torch.Tensor
    weights: torch.Tensor
    regressor: torch.Tensor | None = None

    def __post_init__(self):
        names, parents = tuple(self.names), tuple(int(p) for p in self.parents)
        if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"names: expected distinct joint names, got {names}")
        if len(parents) != len(names):
            raise ValueError(f"parents: expected {len(names)} parent indices, got {parents}")
        for j, p in enumerate(parents):
            if not -1 <= p < j:
                raise ValueError(f"parents: joint {names[j]!r} needs a parent listed before it "
                                 f"(or -1 for the root), got {p}")
        d = {"J": len(names)}
        check_shape(self.positions, "J 3", name="positions", dims=d)
        check_shape(self.weights, "V J", name="weights", dims=d)
        for name in ("positions", "weights"):
            check_floating(getattr(self, name), name=name)
            check_finite(getattr(self, name), name=name)
        w = self.weights
        if bool((w < 0).any()) or bool((w.sum(1) > 1 + 1e-4).any()):
            raise ValueError("weights: expected values >= 0 with rows summing to at most 1")
        if self.regressor is not None:
            check_shape(self.regressor, "J V", name="regressor", dims={**d, "V": w.shape[0]})
            check_finite(self.regressor, name="regressor")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "parents", parents)

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"joint: expected one of {list(self.names)}, got {name!r}")
        return self.names.index(name)

    def to(self, device=None, dtype=None) -> Skeleton:
        def cast(t):
            return None if t is None else t.to(device=device, dtype=dtype)

        return Skeleton(self.names, self.parents, cast(self.positions), cast(self.weights),
                        cast(self.regressor))


def blend_skinning(verts: torch.Tensor, skeleton: Skeleton, rotations: dict,
                   joints: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Pose ``verts`` by linear blend skinning (FLAME Eq. 2, without pose correctives).

    verts: (B, V, 3) shaped vertices, model space (mm).
    skeleton: a :class:`Skeleton`; rotations: {joint name: (B, 3, 3) rotation} for the joints
        that move (the others stay at rest); joints: (B, J, 3) joint positions.
    weights: (V, J) skinning weights of these vertices (default ``skeleton.weights``; pass
        its rows for a vertex subset).
    Returns (B, V, 3). Differentiable in verts, rotations and joints. No validation (callers
    validate at their boundary: :meth:`MorphableModel.pose_joints`, :func:`facelab.form`).
    """
    B = verts.shape[0]
    eye = torch.eye(3, dtype=verts.dtype, device=verts.device).expand(B, 3, 3)
    # G_j(x) = A_j (x - J_j) + c_j with c_j = G_j(J_j): for a child of the root A_j = R_j and
    # c_j = J_j; below a parent p, A_j = A_p R_j and c_j = A_p (J_j - J_p) + c_p.
    A: list[torch.Tensor] = []  # (B, 3, 3)
    c: list[torch.Tensor] = []  # (B, 3)
    for j, parent in enumerate(skeleton.parents):
        R = rotations.get(skeleton.names[j], eye)
        if parent < 0:
            A.append(R)
            c.append(joints[:, j])
        else:
            A.append(A[parent] @ R)
            offset = (joints[:, j] - joints[:, parent])[..., None]  # (B, 3, 1)
            c.append((A[parent] @ offset)[..., 0] + c[parent])
    w = (skeleton.weights if weights is None else weights).to(verts)  # (V, J)
    out = verts
    for j, name in enumerate(skeleton.names):
        if name not in rotations and skeleton.parents[j] < 0:
            continue  # a joint at rest directly under the root moves nothing
        moved = torch.einsum("bij,bvj->bvi", A[j], verts - joints[:, j, None]) + c[j][:, None]
        out = out + w[None, :, j, None] * (moved - verts)  # v + sum_j w_j (G_j(v) - v)
    return out
