"""Assemble the synthetic morphable model: mean mesh, PCA bases, annotations.

``generate_arrays(n_vertices)`` runs the whole recipe and returns plain NumPy
arrays (float64 maths, deterministic: one seeded PCG64 generator per basis):

1. ``surface.build_surface``: the mean mesh, landmarks, face mask, jaw joint and weights.
2. Identity: semantic variations (``blendshapes.identity_generators``) plus smooth
   random fields along the surface normal and in the image plane; a sampled
   population of faces; PCA (``bases.population_pca``) -> 80 modes (MoFA's E_s).
3. Expression: semantic blendshapes plus random local deformations; a sampled
   population of expressions; PCA -> 64 modes (MoFA's E_e); the named expressions
   are the least-squares projections of their blendshapes onto those modes.
4. Albedo: mean reflectance, semantic colour variations and random blotches;
   PCA -> 80 modes (MoFA's E_r).
"""

from __future__ import annotations

import numpy as np

from facelab.model.synthetic import albedo as alb
from facelab.model.synthetic import bases, blendshapes
from facelab.model.synthetic.surface import KIND_POUCH, build_surface

N_ID, N_EXP, N_ALBEDO = 80, 64, 80
SEED_ID, SEED_EXP, SEED_ALBEDO = 20240601, 20240602, 20240603
N_PAIRS = 300  # the population has 2 * N_PAIRS samples (antithetic pairs)


def _identity(s, rng):
    _, semantic = blendshapes.identity_generators(s)  # (Ms, V, 3)
    rad = np.stack([np.sin(s.theta), np.zeros_like(s.theta), np.cos(s.theta)], -1)  # (V, 3)
    cos_n, f_n = bases.cosine_fields(s.u, s.v, 7)  # (63, V)
    normal = cos_n[:, :, None] * rad[None] * (1.6 / (1.0 + 0.3 * f_n**2))[:, None, None]
    cos_t, f_t = bases.cosine_fields(s.u, s.v, 3)  # (15, V)
    amp_t = (1.0 / (1.0 + 0.3 * f_t**2))[:, None]
    tang_x = np.stack([cos_t * amp_t, 0 * cos_t, 0 * cos_t], -1)  # (15, V, 3)
    tang_y = np.stack([0 * cos_t, cos_t * amp_t, 0 * cos_t], -1)
    gens = np.concatenate([semantic, normal, tang_x, tang_y])  # (M, V, 3)
    coeffs = bases.sample_coefficients(rng, np.ones(len(gens)), N_PAIRS)
    return bases.population_pca(gens.reshape(len(gens), -1), coeffs, N_ID, len(s.u))


def _expression(s, rng):
    names, semantic = blendshapes.expression_generators(s)  # (Ms, V, 3)
    rad = np.stack([np.sin(s.theta), np.zeros_like(s.theta), np.cos(s.theta)], -1)
    bumps, *_ = bases.gaussian_bumps(s.u, s.v, rng, 56, (8.0, 16.0), 60.0, (-95.0, 60.0))
    dirs = rng.standard_normal((56, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)  # (radial, x, y) mix per bump
    ex = np.array([1.0, 0.0, 0.0])
    ey = np.array([0.0, 1.0, 0.0])
    d0, d1, d2 = dirs[:, 0, None, None], dirs[:, 1, None, None], dirs[:, 2, None, None]
    local = 1.5 * bumps[:, :, None] * (d0 * rad[None] + d1 * ex + d2 * ey)  # (56, V, 3)
    gens = np.concatenate([semantic, local])
    std = np.concatenate([np.full(len(semantic), 0.5), np.ones(len(local))])
    coeffs = bases.sample_coefficients(rng, std, N_PAIRS)
    basis, sd = bases.population_pca(gens.reshape(len(gens), -1), coeffs, N_EXP, len(s.u))
    named = {}
    norms2 = (basis**2).sum(0)  # (K,) the columns are orthogonal
    for key, weights in blendshapes.named_expressions(names).items():
        target = np.tensordot(weights, semantic, axes=1).reshape(-1)  # (3V,)
        named[key] = basis.T @ target / norms2
    return basis, sd, named


def _albedo(s, rng):
    mean = alb.mean_albedo(s)
    _, semantic = alb.albedo_generators(s, mean)
    w = alb._region_weights(s)
    skin = np.clip(1.0 - w["eye"] - w["pouch"], 0.0, 1.0)
    bumps, *_ = bases.gaussian_bumps(s.u, s.v, rng, 90, (5.0, 25.0), 80.0, (-100.0, 90.0))
    # relative (multiplicative) colour changes keep dark regions dark
    rel = rng.standard_normal((90, 3)) * 0.25 - 0.75 / np.sqrt(3.0)
    rel *= 0.06 / np.linalg.norm(rel, axis=1, keepdims=True)
    blot = bumps[:, :, None] * (skin[:, None] * mean)[None] * rel[:, None, :]  # (90, V, 3)
    gens = np.concatenate([semantic, blot])
    coeffs = bases.sample_coefficients(rng, np.ones(len(gens)), N_PAIRS)
    basis, sd = bases.population_pca(gens.reshape(len(gens), -1), coeffs, N_ALBEDO, len(s.u))
    return mean, basis, sd


def generate_arrays(n_vertices: int) -> dict[str, np.ndarray]:
    """All arrays of the synthetic model at about ``n_vertices`` vertices (float32)."""
    s = build_surface(n_vertices)
    v = len(s.u)
    id_basis, id_std = _identity(s, bases.rng_for(SEED_ID))
    exp_basis, exp_std, named = _expression(s, bases.rng_for(SEED_EXP))
    mean_alb, alb_basis, alb_std = _albedo(s, bases.rng_for(SEED_ALBEDO))
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    out = {
        "mean_shape": f32(s.verts),
        "id_basis": f32(id_basis.reshape(v, 3, N_ID)),
        "id_std": f32(id_std),
        "exp_basis": f32(exp_basis.reshape(v, 3, N_EXP)),
        "exp_std": f32(exp_std),
        "mean_albedo": f32(mean_alb),
        "albedo_basis": f32(alb_basis.reshape(v, 3, N_ALBEDO)),
        "albedo_std": f32(alb_std),
        "faces": s.faces.astype(np.int64),
        "landmarks": s.landmarks.astype(np.int64),
        "face_mask": s.face_mask.astype(bool),
        "jaw_joint": f32(s.jaw_joint),
        "jaw_weights": f32(s.jaw_weights),
        "mirror": s.mirror.astype(np.int64),
        "kind": s.kind.astype(np.int8),
        "expression_names": np.array(list(named)),
        "expression_coeffs": f32(np.stack(list(named.values()))),
    }
    out["mouth_interior"] = out["kind"] == KIND_POUCH
    return out
