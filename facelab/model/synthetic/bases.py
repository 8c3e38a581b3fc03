"""PCA of a sampled population, the way a 3DMM is learned (Blanz & Vetter 1999).

A real morphable model is learned from scans: register N faces to one mesh,
subtract the mean, and keep the leading principal components, each scaled by
its standard deviation so the coefficients are ~N(0, 1) (MoFA Eqs. (2)-(3)).

We do the same with a *synthetic* population. Every sample is a combination of
M generator fields ``g_m`` (semantic variations such as "wider nose", and smooth
random fields), ``x_n = sum_m c_nm g_m``, with coefficients drawn from a seeded
``numpy.random.Generator(PCG64)``. The samples come in antithetic pairs
(``c`` and ``-c``), so the population mean is exactly the template.

Because every sample lies in the span of the M generators, the covariance of the
population ``X^T X / N = G^T S G`` (``G``: (M, D) generators, ``S = C^T C / N``)
can be diagonalised through small M x M matrices: with ``G G^T = Q L Q^T`` and
``W = L^{-1/2} Q^T G`` (orthonormal rows) the covariance is ``W^T K W`` with
``K = L^{1/2} Q^T S Q L^{1/2}``. The eigenvectors ``U`` of ``K`` give the modes
``W^T U`` and its eigenvalues their variances. This is exact PCA, and it never
forms the D x D covariance nor the N x D data matrix.
"""

from __future__ import annotations

import numpy as np


def rng_for(seed: int) -> np.random.Generator:
    """The one random generator family used by the synthetic model (PCG64)."""
    return np.random.Generator(np.random.PCG64(seed))


def sample_coefficients(rng: np.random.Generator, coeff_std: np.ndarray, n_pairs: int):
    """(2 n_pairs, M) antithetic Gaussian coefficients with per-generator std."""
    c = rng.standard_normal((n_pairs, len(coeff_std))) * coeff_std  # (n, M)
    return np.concatenate([c, -c], axis=0)


def population_pca(generators: np.ndarray, coeffs: np.ndarray, n_modes: int, n_items: int):
    """Principal modes of the population ``coeffs @ generators`` (exact, small-matrix).

    generators: (M, D) float64 fields (a flattened (V, 3) field per row).
    coeffs: (N, M) float64 sample coefficients with zero mean.
    n_modes: K, the number of modes kept.
    n_items: V, used to report the std as an RMS per vertex.
    Returns ``basis`` (D, K), each column the mode times its population std, and
    ``std`` (K,), the RMS per-vertex displacement of each column
    (``||basis[:, k]|| / sqrt(V)``), decreasing. The sign of each mode is fixed so
    that its largest-magnitude component is positive.
    """
    n = coeffs.shape[0]
    s = coeffs.T @ coeffs / n  # (M, M) sample covariance of the coefficients
    gram = generators @ generators.T  # (M, M)
    lam, q = np.linalg.eigh(gram)
    keep = lam > lam.max() * 1e-12
    lam, q = lam[keep], q[:, keep]
    root = np.sqrt(lam)
    k_mat = (root[:, None] * (q.T @ s @ q)) * root[None, :]  # (M', M')
    k_mat = 0.5 * (k_mat + k_mat.T)
    var, u = np.linalg.eigh(k_mat)
    order = np.argsort(var)[::-1][:n_modes]
    var, u = np.clip(var[order], 0.0, None), u[:, order]
    # W^T U = G^T Q L^{-1/2} U, then scale each mode by its std
    coef = (q / root[None, :]) @ u  # (M, K)
    modes = generators.T @ coef  # (D, K), unit-norm columns
    modes /= np.linalg.norm(modes, axis=0, keepdims=True)
    big = np.argmax(np.abs(modes), axis=0)
    signs = np.sign(modes[big, np.arange(modes.shape[1])])
    modes *= signs[None, :]
    basis = modes * np.sqrt(var)[None, :]
    std = np.sqrt(var / n_items)
    return basis, std


def cosine_fields(u, v, max_freq: int, u_range=(-125.0, 125.0), v_range=(-115.0, 100.0)):
    """Smooth low-frequency scalar fields cos(a pi u') cos(b pi v') on the unwrapped face.

    Returns (fields (P, V), frequency (P,)) for 0 <= a, b <= max_freq, (a, b) != (0, 0);
    ``frequency`` is sqrt(a^2 + b^2), used to give high frequencies less variance.
    """
    uu = (np.asarray(u) - u_range[0]) / (u_range[1] - u_range[0])
    vv = (np.asarray(v) - v_range[0]) / (v_range[1] - v_range[0])
    fields, freq = [], []
    for a in range(max_freq + 1):
        for b in range(max_freq + 1):
            if a == 0 and b == 0:
                continue
            fields.append(np.cos(a * np.pi * uu) * np.cos(b * np.pi * vv))
            freq.append(np.hypot(a, b))
    return np.stack(fields), np.array(freq)


def gaussian_bumps(u, v, rng: np.random.Generator, count: int, sigma_range, u_span, v_span):
    """``count`` Gaussian bumps at random centres: (fields (count, V), centres, sigmas)."""
    cu = rng.uniform(-u_span, u_span, count)
    cv = rng.uniform(v_span[0], v_span[1], count)
    sig = rng.uniform(sigma_range[0], sigma_range[1], count)
    d2 = (np.asarray(u)[None] - cu[:, None]) ** 2 + (np.asarray(v)[None] - cv[:, None]) ** 2
    return np.exp(-0.5 * d2 / sig[:, None] ** 2), cu, cv, sig
