"""The facial motion state of HuMoR-Face (NeuFace App. A, after HuMoR Sec. 3).

    x_t = [φ_t, φ̇_t, θ_t, J_t, J̇_t]                                     (D = 420)

=========  ====  ===================================================================
block      size  meaning
=========  ====  ===================================================================
phi        6     head (root) orientation R_t in the 6D representation: its first two
                 columns (Zhou et al. 2019; :func:`facelab.rotations.matrix_to_rotation_6d`)
phi_dot    3     angular velocity ω_t = log(R_t R_{t-1}ᵀ) · fps, axis-angle, rad/s
theta      3     jaw pose θ_t, axis-angle (rad): FLAME's pose block restricted to the jaw,
                 the only joint of the built-in model version 1
J          204   the 68 iBUG 3D landmarks with the head rotation applied, R_t X_t[lm],
                 in centimetres about the model origin (the head's pivot); the
                 weak-perspective image translation is not part of the 3D state
J_dot      204   landmark velocities (J_t - J_{t-1}) · fps, cm/s
=========  ====  ===================================================================

Velocities are backward differences, so a sequence of T frames gives T - 1 states (frame 0
has no velocity) and the velocity of a state is exactly the difference of its positions and
the previous state's: the consistency the training regulariser asks of predictions
(:mod:`facelab.methods.motion_prior.loss`). Every split goes through :data:`STATE` (never by
length).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_positive, check_shape
from facelab.methods.block_layout import BlockLayout, block_views
from facelab.rotations import matrix_to_axis_angle, matrix_to_rotation_6d, rotation_6d_to_matrix

__all__ = ["STATE", "StateLayout", "motion_states", "orthonormalize_states",
           "relative_rotation_vector"]

MM_PER_CM = 10.0


@dataclass(frozen=True)
class StateLayout(BlockLayout):
    """Sizes of the state's blocks (module table); ``size`` and ``slices`` come from
    :class:`facelab.methods.block_layout.BlockLayout`."""

    landmarks: int = 68

    @property
    def sizes(self) -> dict[str, int]:
        L3 = 3 * self.landmarks
        return {"phi": 6, "phi_dot": 3, "theta": 3, "J": L3, "J_dot": L3}

    def split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (..., D) -> {block: (..., n)} views."""
        if x.shape[-1] != self.size:
            raise ValueError(f"x: expected (..., {self.size}), got {tuple(x.shape)}")
        return block_views(x, self.slices)

    def pack(self, blocks: dict) -> torch.Tensor:
        """{block: (..., n)} -> (..., D), in the table's order (every block required)."""
        missing = set(self.sizes) - set(blocks)
        if missing:
            raise ValueError(f"blocks: missing {sorted(missing)}")
        for name, n in self.sizes.items():
            if blocks[name].shape[-1] != n:
                raise ValueError(f"blocks[{name!r}]: expected (..., {n}), got "
                                 f"{tuple(blocks[name].shape)}")
        return torch.cat([blocks[name] for name in self.sizes], dim=-1)

    def landmarks_of(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., D) -> J as (..., L, 3) cm."""
        return self.split(x)["J"].unflatten(-1, (self.landmarks, 3))


STATE = StateLayout()
"""The 420-d state of the 68-landmark face."""


def relative_rotation_vector(R_next: torch.Tensor, R_prev: torch.Tensor,
                             exact: bool = True) -> torch.Tensor:
    """Axis-angle of R_next R_prevᵀ: (..., 3, 3) x2 -> (..., 3) rad.

    exact: the true log map (:func:`facelab.rotations.matrix_to_axis_angle`); False: its
    small-angle form vee((A - Aᵀ) / 2), A = R_next R_prevᵀ (differentiable everywhere, within
    0.1 % of the angle below 3° per frame; used in the training loss).
    """
    A = R_next @ R_prev.transpose(-1, -2)  # (..., 3, 3)
    if exact:
        return matrix_to_axis_angle(A)
    S = 0.5 * (A - A.transpose(-1, -2))
    return torch.stack([S[..., 2, 1], S[..., 0, 2], S[..., 1, 0]], dim=-1)


def motion_states(rotation, jaw, landmarks, *, fps: float = 30.0) -> torch.Tensor:
    """States x_1 .. x_{T-1} of one sequence (module table).

    rotation: (T, 3, 3) head rotations R_t (model space -> camera-aligned model space).
    jaw: (T, 3) jaw axis-angle (rad).
    landmarks: (T, 68, 3) pose-free model-space landmarks X_t[lm] in mm (identity,
        expression and jaw applied: :attr:`facelab.Formation.verts` at the model's landmarks).
    fps: frame rate.
    Returns (T - 1, 420) float32.
    """
    R, _ = as_tensor(rotation, name="rotation")
    th, _ = as_tensor(jaw, name="jaw")
    X, _ = as_tensor(landmarks, name="landmarks")
    dims = check_shape(R, "T 3 3", name="rotation")
    check_shape(th, "T 3", name="jaw", dims=dims)
    check_shape(X, f"T {STATE.landmarks} 3", name="landmarks", dims=dims)
    for t, n in ((R, "rotation"), (th, "jaw"), (X, "landmarks")):
        check_floating(t, name=n)
        check_finite(t, name=n)
    if dims["T"] < 2:
        raise ValueError(f"rotation: expected at least T=2 frames, got {tuple(R.shape)}")
    fps = check_positive(fps, name="fps")
    R, th, X = R.double(), th.double(), X.double()
    J = X @ R.transpose(1, 2) / MM_PER_CM  # (T, 68, 3) R X, cm
    omega = relative_rotation_vector(R[1:], R[:-1]) * fps  # (T-1, 3)
    J_dot = (J[1:] - J[:-1]) * fps  # (T-1, 68, 3)
    x = STATE.pack({"phi": matrix_to_rotation_6d(R[1:]), "phi_dot": omega, "theta": th[1:],
                    "J": J[1:].flatten(1), "J_dot": J_dot.flatten(1)})
    return x.float()


def orthonormalize_states(x: torch.Tensor) -> torch.Tensor:
    """x: (..., 420) with φ replaced by the 6D of the nearest rotation (Gram-Schmidt,
    :func:`facelab.rotations.rotation_6d_to_matrix`): what autoregressive sampling feeds back,
    as HuMoR does with its predicted rotations."""
    b = STATE.split(x)
    phi = matrix_to_rotation_6d(rotation_6d_to_matrix(b["phi"]))
    return torch.cat([phi, x[..., 6:]], dim=-1)
