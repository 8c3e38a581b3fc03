"""The fitter's first three stages as energies with closed-form gradients, and Adam on one flat
vector: no autograd graph for a few hundred unknowns.

:func:`facelab.fitting.fit_image`'s landmark stages (pose, then pose + identity + expression)
and colour stage (reflectance + light on fixed geometry) take 180 Adam steps on tiny tensors.
Through autograd each step built and walked a graph of ~100 nodes (``form`` on the 68 landmark
vertices, the loss terms, the prior, a per-tensor optimiser): ~1 ms of per-op overhead for a
few thousand flops (issue 15). Here each step is the energy's value and its gradient written
out, ~30 tensor operations, and one Adam update of a flat vector.

Landmark energy (MoFA Eqs. 2, 9, 10 with the pinhole camera of :func:`facelab.form`):

    X = X̄ + E c            (68, 3) landmark vertices, c = (α, δ) identity and expression
    Y = F (X Rᵀ) + t        F = diag(1, −1, −1), R = Rodrigues(δR) R₀, t = t(s)
    u = f Y_xy / Y_z + p    (68, 2) pixels
    E = w_land Σ_j w_j |u_j − s_j|² + w_reg (w_id |α|² + w_exp |δ|²),  w_j = c_j / Σ c

with the chain rule by hand: g_u = 2 w_land w_j (u_j − s_j), g_Y = (g_u f / Y_z,
−g_u·(f Y_xy) / Y_z²), g_t = Σ_j g_Y, G_R = (F g_Y)ᵀ X, g_X = (F g_Y) R, g_c = Eᵀ g_X, and the
pose's six unknowns by :mod:`facelab.fitting.pose_step`'s analytic Rodrigues derivative.

Colour energy (MoFA Eqs. 3, 4, 8, 10) on the visible face vertices of the fixed geometry:
the reflectance r = r̄ + E_alb β, then one call of the compiled shading + photometric pass
(:func:`facelab.shaded_photometric.cpu.shaded_photometric_forward_grad`), which returns the
loss and its gradients to r and γ; g_β = E_albᵀ g_r + 2 w_reg w_alb β.

Both are checked against autograd through :func:`facelab.form` and the public losses in
``tests/test_fitting_energies.py`` (float64: values and gradients to ~1e-10).
"""

from __future__ import annotations

import math

import torch

from facelab.fitting.pose_step import _matmul, _rodrigues_vjp, rodrigues
from facelab.losses import PriorWeights
from facelab.model.morphable import MorphableModel

__all__ = ["ColourEnergy", "FlatAdam", "LandmarkEnergy"]

_FLIP = (1.0, -1.0, -1.0)  # model -> OpenCV camera axes (facelab.cameras._MODEL_TO_OPENCV)
_DEPTH_EPS = 1e-6  # the pinhole's depth clamp (facelab.cameras._pinhole_screen)
_PHOTO_EPS = 1e-6  # MoFA Eq. 8's l2 smoothing (facelab.losses.shaded_photometric_loss)


class FlatAdam:
    """Adam (Kingma & Ba 2015, Algorithm 1) on one flat vector, a learning rate per slice.

    groups: ``[(slice, lr), ...]``; entries outside every slice are not updated. Per element
    the same operations as :class:`facelab.fitting.adam.Adam` (and ``torch.optim.Adam``'s
    single-tensor CPU path), so given the same gradients the iterates are bit-identical to
    Adam over separate tensors: m ← lerp(m, g, 1 − β1), v ← β2 v + (1 − β2) g²,
    x ← x − lr / (1 − β1ᵗ) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps).
    """

    def __init__(self, x: torch.Tensor, groups, betas=(0.9, 0.999), eps: float = 1e-8):
        self.groups = [(sl, float(lr)) for sl, lr in groups]
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.exp_avg = torch.zeros_like(x)
        self.exp_avg_sq = torch.zeros_like(x)
        self.steps = 0

    @torch.no_grad()
    def step(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        """One update of ``x`` (in place) with gradient ``grad`` (same shape)."""
        beta1, beta2 = self.betas
        self.steps += 1
        m, v = self.exp_avg, self.exp_avg_sq
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** float(self.steps)
        bias_correction2 = 1 - beta2 ** float(self.steps)
        denom = v.sqrt().div_(bias_correction2**0.5).add_(self.eps)
        for sl, lr in self.groups:
            x[sl].addcdiv_(m[sl], denom[sl], value=-lr / bias_correction1)


def _pose(x: list, base: list, t0: list, linear_depth: bool):
    """R (3 × 3 lists), t (3 floats) and the state for the gradient, from x[:6]."""
    v, s = x[:3], x[3:6]
    R = _matmul(rodrigues(v), base)
    x0, y0, z0 = t0
    ez = 1.0 if linear_depth else math.exp(s[2])
    tz = z0 * (1.0 + s[2]) if linear_depth else z0 * ez
    return R, [x0 + z0 * s[0], y0 + z0 * s[1], tz], (v, z0, ez)


def _pose_grad(G_R: list, g_t: list, base: list, state) -> list:
    """∂E/∂(δR, s) (6 floats) from ∂E/∂R (3 × 3) and ∂E/∂t (3)."""
    v, z0, ez = state
    G = _matmul(G_R, [list(r) for r in zip(*base, strict=True)])  # G R₀ᵀ
    return [*_rodrigues_vjp(v, G), g_t[0] * z0, g_t[1] * z0, g_t[2] * z0 * ez]


class LandmarkEnergy:
    """E(x) = w_land E_land (MoFA Eq. 9, confidence-weighted mean of squared crop pixels)
    [+ w_reg E_reg (Eq. 10) on identity and expression] and its gradient, in closed form.

    model: the fitted :class:`MorphableModel` (its dtype is the energy's); k_id, k_exp: the
    fitted modes. focal, principal: (2,) the crop camera's pinhole intrinsics. targets:
    (68, 2) crop pixels; confidence: (68,) c_j ≥ 0. base (3, 3) and t0 (3,): the pose the six
    pose unknowns are relative to (:func:`facelab.fitting.pose_step.pose_from_unknowns`).
    prior: :class:`PriorWeights`; fit_identity: False leaves identity out of E_reg.

    The unknowns, flat (dtype of the model): ``x = (δR (3), s (3), α (k_id), δ (k_exp))``.
    """

    def __init__(self, model: MorphableModel, k_id: int, k_exp: int, focal, principal,
                 targets, confidence, base, t0, *, prior: PriorWeights, w_land: float,
                 w_reg: float, fit_identity: bool = True):
        dt = model.dtype
        L = model.landmarks.shape[0]
        self.k_id, self.k_exp = k_id, k_exp
        # the landmark points' rows (the vertices, or the landmark embedding's affine
        # combinations of them: MorphableModel.landmark_rows), so X = X̄ + E c is exact
        self.mean = model.landmark_rows(model.mean_shape).to(dt)  # (L, 3)
        self.basis = model.landmark_rows(torch.cat(
            [model.id_basis[:, :, :k_id], model.exp_basis[:, :, :k_exp]], dim=2)
        ).reshape(3 * L, k_id + k_exp).contiguous()  # (3L, K)
        self.focal = focal.reshape(1, 2).to(dt)
        self.principal = principal.reshape(1, 2).to(dt)
        self.targets = targets.to(dt)
        conf = confidence.to(dt)
        self.weights = (conf / conf.sum())[:, None]  # (L, 1) w_j
        self.conf, self.conf_sum = conf, conf.sum()
        self.flip = torch.tensor(_FLIP, dtype=dt)
        self.base = base.to(torch.float64).tolist()
        self.t0 = t0.to(torch.float64).tolist()
        self.w_land, self.w_reg = float(w_land), float(w_reg)
        self.w_id = float(prior.id) if fit_identity else 0.0
        self.w_exp = float(prior.exp)
        self.prior_scale = torch.cat([torch.full((k_id,), self.w_id, dtype=dt),
                                      torch.full((k_exp,), self.w_exp, dtype=dt)])  # (K,)
        self.size = 6 + k_id + k_exp

    def points(self, x: torch.Tensor) -> torch.Tensor:
        """(68, 2) projected landmarks u of the unknowns ``x`` (no gradient)."""
        return self._forward(x)[0]

    def _forward(self, x):
        xs = x[:6].tolist()
        R_l, t_l, state = _pose(xs, self.base, self.t0, False)
        R = torch.tensor(R_l, dtype=x.dtype)
        t = torch.tensor(t_l, dtype=x.dtype)
        X = self.mean + (self.basis @ x[6:]).view(-1, 3)  # (L, 3) MoFA Eq. 2
        Y = (X @ R.T) * self.flip + t  # (L, 3) camera space
        z = Y[:, 2:].clamp(min=_DEPTH_EPS)  # (L, 1)
        u = self.focal * Y[:, :2] / z + self.principal  # (L, 2) pixels
        return u, X, Y, z, R, state

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, *, with_prior: bool):
        """``(E_land, E_reg, total, grad)``: the two terms (0-d tensors; E_reg 0 without the
        prior), the weighted total and ∂total/∂x (same shape as x)."""
        u, X, Y, z, R, state = self._forward(x)
        d = u - self.targets  # (L, 2)
        e_land = (self.conf * (d * d).sum(-1)).sum() / self.conf_sum  # Eq. 9, mean px²
        g_u = (2.0 * self.w_land) * self.weights * d  # (L, 2)
        a = g_u * self.focal / z  # ∂E/∂Y_xy
        g_z = -(a * Y[:, :2]).sum(-1, keepdim=True) / z * (Y[:, 2:] > _DEPTH_EPS)
        h = torch.cat([a, g_z], dim=1) * self.flip  # (L, 3) ∂E/∂(X Rᵀ)
        g_t = torch.cat([a, g_z], dim=1).sum(0)  # (3,)
        G_R = h.T @ X  # (3, 3)
        g_c = self.basis.T @ (h @ R).reshape(-1)  # (K,) Eᵀ g_X
        total = self.w_land * e_land
        c = x[6:]
        if with_prior:
            e_reg = (self.prior_scale * c * c).sum()  # Eq. 10
            total = total + self.w_reg * e_reg
            g_c = g_c + (2.0 * self.w_reg) * self.prior_scale * c
        else:
            e_reg = torch.zeros((), dtype=x.dtype)
        g_pose = torch.tensor(_pose_grad(G_R.tolist(), g_t.tolist(), self.base, state),
                              dtype=x.dtype)
        return e_land, e_reg, total, torch.cat([g_pose, g_c])


class ColourEnergy:
    """E(y) = w_photo E_photo (MoFA Eqs. 3, 4, 8 on fixed geometry) + w_reg w_alb |β|²
    (Eq. 10) and its gradient, through one compiled shading + photometric pass.

    model: the fitted model; rows: (S,) the visible face vertices shaded; k_alb: fitted
    reflectance modes. image: (H, W, 3) the crop; positions: (1, S, 2) their (fixed) pixel
    positions; normals: (1, S, 3) their (fixed) camera-space normals.

    The unknowns, flat: ``y = (γ (27, i.e. (9, 3) row-major), β (k_alb))``.
    """

    def __init__(self, model: MorphableModel, rows, k_alb: int, image, positions, normals, *,
                 prior: PriorWeights, w_photo: float, w_reg: float):
        from facelab.shaded_photometric import cpu

        self._cpu = cpu
        dt = model.dtype
        S = rows.numel()
        self.mean = model.mean_albedo[rows].reshape(-1).to(dt)  # (3S,)
        self.basis = model.albedo_basis[rows, :, :k_alb].reshape(3 * S, k_alb).contiguous()
        self.image = image[None].contiguous()
        self.positions = positions.contiguous()
        self.normals = normals.contiguous()
        self.ones = torch.ones(1, S, dtype=dt)
        self.w_photo, self.w_reg = float(w_photo), float(w_reg)
        self.w_alb = float(prior.albedo)
        self.size = 27 + k_alb

    @torch.no_grad()
    def __call__(self, y: torch.Tensor):
        """``(E_photo, E_reg, total, grad)`` as :meth:`LandmarkEnergy.__call__`."""
        gamma, beta = y[:27].view(1, 9, 3), y[27:]
        albedo = (self.mean + self.basis @ beta).view(1, -1, 3)  # MoFA Eq. 3
        loss, _, (_, g_alb, _, g_gamma) = self._cpu.shaded_photometric_forward_grad(
            self.image, self.positions, albedo, self.normals, gamma, self.ones, _PHOTO_EPS,
            (False, True, False, True))  # Eqs. 4 + 8 and their gradients
        scale = self.w_photo  # the pass's gradients are already of the normalised loss
        e_photo = loss[0]
        e_reg = self.w_alb * (beta * beta).sum()
        total = self.w_photo * e_photo + self.w_reg * e_reg
        g_beta = self.basis.T @ g_alb.reshape(-1)
        g_beta.mul_(scale).add_(beta, alpha=2.0 * self.w_reg * self.w_alb)
        return e_photo, e_reg, total, torch.cat([g_gamma.reshape(-1).mul_(scale), g_beta])


class RefineEnergy:
    """MoFA's full energy (Sec. 6, Eq. 7) on pose, identity, expression, light and reflectance
    together — the refinement stage's (:class:`facelab.fitting.refine.RefineStage`) — and its
    gradient, without an autograd graph:

        E = w_photo E_photo (Eqs. 2-4, 8) + w_land E_land (Eq. 9) + w_reg E_reg (Eq. 10)

    region: the :func:`facelab.fitting.refine.photometric_region` model (its landmarks, face
    mask and faces; bases already cut to the fitted modes). image: (H, W, 3) the crop;
    focal, principal: (2,) its pinhole; targets (68, 2) crop pixels, confidence (68,);
    base (3, 3), t0 (3,): the pose the unknowns are relative to (translation
    t0 + t0_z s, :func:`facelab.fitting.pose_step.pose_from_unknowns` with
    ``linear_depth``). prior / w_photo / w_land / w_reg as the stage's settings;
    fit_identity: False leaves identity and reflectance out of E_reg.

    The unknowns, flat: ``z = (δR (3), s (3), α (k_id), δ (k_exp), γ (27), β (k_alb))``.
    Per call: the region's vertices X = X̄ + E c, camera space Y = F (X Rᵀ) + t, pixels u,
    normals n(Y) and reflectance r = r̄ + E_alb β; one compiled shading + photometric pass
    returns E_photo with its gradients to u, r, n and γ; the compiled normals backward turns
    g_n into g_Y; the landmark points (the landmark vertices, or the embedding's affine
    combinations of them, taken in camera space and projected as :func:`facelab.form` does)
    add their gradient to their rows of g_Y; then as
    :class:`LandmarkEnergy`: g_c = Eᵀ ((F g_Y) R), G_R = (F g_Y)ᵀ X, g_t = Σ g_Y.
    """

    def __init__(self, region: MorphableModel, image, focal, principal, targets, confidence,
                 base, t0, *, prior: PriorWeights, w_photo: float, w_land: float, w_reg: float,
                 fit_identity: bool = True):
        from facelab.normals import cpu as normals_cpu
        from facelab.normals.autograd import vertex_face_table
        from facelab.shaded_photometric import cpu as photo_cpu

        self._normals, self._photo = normals_cpu, photo_cpu
        dt = region.dtype
        R_n = region.num_vertices
        self.k_id, self.k_exp, self.k_alb = region.n_id, region.n_exp, region.n_albedo
        self.table = vertex_face_table(region.faces, R_n)
        self.mean = region.mean_shape  # (R, 3)
        self.basis = torch.cat([region.id_basis, region.exp_basis],
                               dim=2).reshape(3 * R_n, -1).contiguous()  # (3R, K)
        self.albedo_mean = region.mean_albedo.reshape(-1)  # (3R,)
        self.albedo_basis = region.albedo_basis.reshape(3 * R_n, -1).contiguous()  # (3R, Ka)
        if region.has_landmark_embedding:  # landmark i = Σ_k w_ik Y[v_ik] (affine: camera space)
            self.lm_rows = region.landmark_vertices  # (68, Ke)
            self.lm_weights = region.landmark_weights  # (68, Ke)
        else:
            self.lm_rows = region.landmarks[:, None]  # (68, 1)
            self.lm_weights = torch.ones(self.lm_rows.shape, dtype=dt)
        self.lm_flat = self.lm_rows.reshape(-1)
        self.image = image[None].contiguous()
        self.focal = focal.reshape(1, 2).to(dt)
        self.principal = principal.reshape(1, 2).to(dt)
        self.targets = targets.to(dt)
        conf = confidence.to(dt)
        self.conf, self.conf_sum = conf, conf.sum()
        self.weights_lm = (conf / conf.sum())[:, None]  # (68, 1)
        self.flip = torch.tensor(_FLIP, dtype=dt)
        self.base = base.to(torch.float64).tolist()
        self.t0 = t0.to(torch.float64).tolist()
        self.w_photo, self.w_land, self.w_reg = float(w_photo), float(w_land), float(w_reg)
        ident = 1.0 if fit_identity else 0.0
        k = self.k_id + self.k_exp
        self.prior_geo = torch.cat([torch.full((self.k_id,), ident * prior.id, dtype=dt),
                                    torch.full((self.k_exp,), float(prior.exp), dtype=dt)])
        self.prior_alb = ident * float(prior.albedo)
        self.slices = (slice(0, 6), slice(6, 6 + k), slice(6 + k, 33 + k),
                       slice(33 + k, 33 + k + self.k_alb))
        self.size = 33 + k + self.k_alb

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, visibility: torch.Tensor):
        """``(E_photo, E_land, E_reg, total, grad)`` at the unknowns ``z``; ``visibility``
        (1, R) the photometric weights of the region's vertices (visible face vertices)."""
        _, s_geo, s_gamma, s_alb = self.slices
        c, beta = z[s_geo], z[s_alb]
        gamma = z[s_gamma].view(1, 9, 3)
        R_l, t_l, state = _pose(z[:6].tolist(), self.base, self.t0, True)
        R = torch.tensor(R_l, dtype=z.dtype)
        t = torch.tensor(t_l, dtype=z.dtype)
        X = self.mean + (self.basis @ c).view(-1, 3)  # (R, 3) MoFA Eq. 2
        Y = ((X @ R.T) * self.flip + t)[None]  # (1, R, 3) camera space
        depth = Y[..., 2:].clamp(min=_DEPTH_EPS)
        u = self.focal * Y[..., :2] / depth + self.principal  # (1, R, 2) pixels
        tb = self.table
        normals, inv_norm = self._normals.vertex_normals_forward(Y, tb.faces, tb.offsets,
                                                                 tb.face_ids)
        albedo = (self.albedo_mean + self.albedo_basis @ beta).view(1, -1, 3)  # MoFA Eq. 3
        loss, _, (g_u, g_alb, g_nrm, g_gamma) = self._photo.shaded_photometric_forward_grad(
            self.image, u, albedo, normals, gamma, visibility, _PHOTO_EPS,
            (True, True, True, True))  # Eqs. 4 + 8 and their gradients
        scale = self.w_photo  # the pass's gradients are already of the normalised loss
        e_photo = loss[0]
        # the landmark points: combined in camera space, then projected (as form does)
        Y_lm = (self.lm_weights[..., None] * Y[0, self.lm_rows]).sum(1)  # (68, 3)
        z_lm = Y_lm[:, 2:].clamp(min=_DEPTH_EPS)
        d = self.focal * Y_lm[:, :2] / z_lm + self.principal - self.targets  # (68, 2)
        e_land = (self.conf * (d * d).sum(-1)).sum() / self.conf_sum  # Eq. 9, mean px²
        a_lm = (2.0 * self.w_land) * self.weights_lm * d * self.focal / z_lm  # ∂E/∂Y_lm,xy
        g_lm = torch.cat([a_lm, -(a_lm * Y_lm[:, :2]).sum(-1, keepdim=True) / z_lm
                          * (Y_lm[:, 2:] > _DEPTH_EPS)], dim=1)  # (68, 3)
        g_Y = self._normals.vertex_normals_backward(
            Y, tb.faces, tb.offsets, tb.face_ids, tb.corners, normals, inv_norm,
            g_nrm.mul_(scale))[0]  # (R, 3)
        g_Y.index_add_(0, self.lm_flat,
                       (self.lm_weights[..., None] * g_lm[:, None]).reshape(-1, 3))
        a = g_u[0].mul_(scale) * self.focal / depth[0]  # ∂E/∂Y_xy through the projection
        g_Y[:, :2] += a
        g_Y[:, 2:] -= (a * Y[0, :, :2]).sum(-1, keepdim=True) / depth[0] * (Y[0, :, 2:]
                                                                              > _DEPTH_EPS)
        h = g_Y * self.flip  # ∂E/∂(X Rᵀ)
        g_c = self.basis.T @ (h @ R).reshape(-1)
        g_c.add_(self.prior_geo * c, alpha=2.0 * self.w_reg)
        g_beta = self.albedo_basis.T @ g_alb.reshape(-1)
        g_beta.mul_(scale).add_(beta, alpha=2.0 * self.w_reg * self.prior_alb)
        e_reg = (self.prior_geo * c * c).sum() + self.prior_alb * (beta * beta).sum()  # Eq. 10
        total = self.w_photo * e_photo + self.w_land * e_land + self.w_reg * e_reg
        g_pose = torch.tensor(_pose_grad((h.T @ X).tolist(), g_Y.sum(0).tolist(), self.base,
                                         state), dtype=z.dtype)
        return e_photo, e_land, e_reg, total, torch.cat([g_pose, g_c,
                                                         g_gamma.reshape(-1).mul_(scale),
                                                         g_beta])
