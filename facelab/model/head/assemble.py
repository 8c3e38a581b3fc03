"""Assemble the full-head model (synthetic version 2): mesh, rig, PCA bases, texture albedo.

``generate_arrays(n_vertices)`` runs the whole recipe and returns plain NumPy arrays (float64
maths, deterministic: one seeded PCG64 generator per basis):

1. ``mesh.build_shell``: the head shell, mouth, eyeballs and teeth with their UV layout.
2. ``rig``: iBUG-68 landmarks, face mask, the neck/jaw/eye skeleton (weights, regressor).
3. Identity: ``population.identity_generators`` sampled and reduced by PCA
   (``bases.population_pca``) to ``N_ID`` modes (MoFA's E_s); eyeballs and teeth move with
   their anchors.
4. Expression: ``population.expression_generators`` -> ``N_EXP`` modes (MoFA's E_e); the named
   expressions are the least-squares projections of their blendshapes onto those modes.
5. Albedo: ``texture.albedo_maps`` (PCA in texture space, ``N_ALBEDO`` modes, MoFA's E_r);
   per-vertex mean and basis are the maps' bilinear samples at the vertices' texture
   coordinates (averaged over a vertex's coordinates where a seam gives it several).
"""

from __future__ import annotations

import numpy as np

from facelab.model.head import mesh as M
from facelab.model.head import population as P
from facelab.model.head import rig
from facelab.model.head import shape as S
from facelab.model.head import texture as T
from facelab.model.synthetic import bases

N_ID, N_EXP = 100, 50
N_ALBEDO = T.N_ALBEDO
SEED_ID, SEED_EXP = 20261202, 20261203
N_PAIRS = 300


def _identity(shell, rng):
    pts, anchor_of = P.shell_points(shell)
    gens = P.identity_generators(pts)[:, anchor_of]  # (M, V, 3)
    coeffs = bases.sample_coefficients(rng, np.ones(len(gens)), N_PAIRS)
    return bases.population_pca(gens.reshape(len(gens), -1), coeffs, N_ID, len(shell.u))


def _expression(shell, jaw_weights, jaw_joint, rng):
    names, gens, std = P.expression_generators(shell, jaw_weights, jaw_joint, rng)
    coeffs = bases.sample_coefficients(rng, std, N_PAIRS)
    basis, sd = bases.population_pca(gens.reshape(len(gens), -1), coeffs, N_EXP, len(shell.u))
    norms2 = (basis**2).sum(0)
    named = {}
    for key, weights in P.named_expressions(names).items():
        target = np.tensordot(weights, gens[: len(names)], axes=1).reshape(-1)
        named[key] = basis.T @ target / norms2
    return basis, sd, named


def vertex_average(faces, uv_faces, values_at_uv, n_vertices):
    """Per-vertex mean of per-uv values over each vertex's distinct texture coordinates."""
    pairs = np.unique(np.stack([faces.ravel(), uv_faces.ravel()], -1), axis=0)
    flat = values_at_uv.reshape(len(values_at_uv), -1)
    out = np.zeros((n_vertices, flat.shape[1]))
    np.add.at(out, pairs[:, 0], flat[pairs[:, 1]])
    count = np.bincount(pairs[:, 0], minlength=n_vertices)
    return (out / count[:, None]).reshape((n_vertices, *values_at_uv.shape[1:]))


def texture_arrays() -> dict[str, np.ndarray]:
    """The resolution-independent texture maps (float32), made on one BLAS thread."""
    with single_blas_thread():
        mean, basis, std = T.albedo_maps()
    return {"albedo_texture": mean, "albedo_texture_basis": basis, "albedo_std": std}


def single_blas_thread():
    """Run NumPy's BLAS/LAPACK on one thread for the duration (restored afterwards).

    The PCA's sums are ordered by the BLAS's threads, so the float32 arrays (and the model's
    ``digest()``) would otherwise depend on the machine's thread count. threadpoolctl finds
    whichever BLAS NumPy loaded (OpenBLAS, MKL, BLIS, Accelerate).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def generate_arrays(n_vertices: int, textures: dict | None = None) -> dict[str, np.ndarray]:
    """All arrays of the head model at about ``n_vertices`` vertices (float32 / int64).

    textures: the output of :func:`texture_arrays` (computed when None). Runs on one BLAS
    thread (:func:`single_blas_thread`), so the result does not depend on the thread count.
    """
    with single_blas_thread():
        return _generate_arrays(n_vertices, textures)


def _generate_arrays(n_vertices: int, textures: dict | None) -> dict[str, np.ndarray]:
    shell = M.build_shell(n_vertices)
    V = len(shell.verts)
    lm = rig.landmarks(shell)
    lm_vertices, lm_weights = rig.landmark_embedding(shell, lm)
    positions, weights, regressor = rig.skeleton_arrays(shell)
    jaw_joint = positions[1]
    id_basis, id_std = _identity(shell, bases.rng_for(SEED_ID))
    exp_basis, exp_std, named = _expression(shell, weights[:, 1], jaw_joint,
                                            bases.rng_for(SEED_EXP))
    tex = texture_arrays() if textures is None else textures
    uv = T.texture_uv(shell.uv_gh, shell.uv_island)
    sampled = T.sample_bilinear(
        np.concatenate([tex["albedo_texture"][..., None], tex["albedo_texture_basis"]], -1), uv)
    per_vertex = vertex_average(shell.faces, shell.uv_faces, sampled, V)  # (V, 3, 1 + K)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return {
        "mean_shape": f32(shell.verts + S.OFFSET),
        "id_basis": f32(id_basis.reshape(V, 3, N_ID)),
        "id_std": f32(id_std),
        "exp_basis": f32(exp_basis.reshape(V, 3, N_EXP)),
        "exp_std": f32(exp_std),
        "mean_albedo": f32(per_vertex[..., 0]),
        "albedo_basis": f32(per_vertex[..., 1:]),
        "faces": shell.faces.astype(np.int64),
        "uv": f32(uv),
        "uv_faces": shell.uv_faces.astype(np.int64),
        "landmarks": lm.astype(np.int64),
        "landmark_vertices": lm_vertices.astype(np.int64),
        "landmark_weights": f32(lm_weights),
        "face_mask": rig.face_mask(shell).astype(bool),
        "joint_positions": f32(positions + S.OFFSET),
        "joint_weights": f32(weights),
        "joint_regressor": f32(regressor),
        "mirror": shell.mirror.astype(np.int64),
        "kind": shell.kind.astype(np.int8),
        "expression_names": np.array(list(named)),
        "expression_coeffs": f32(np.stack(list(named.values()))),
    }
