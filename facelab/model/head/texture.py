"""Texture-space albedo of the full head: the UV layout, the mean map and the PCA basis maps.

**Layout** (``TEXTURE_SIZE`` square, OBJ convention: u right, v up, row 0 the top):

* the head shell at ``U = 0.5 + SCALE * G``, ``V = V_TOP - SCALE * (H_top - H)`` with
  ``(G, H) = (warp_u(u), warp_v(v))`` (:mod:`facelab.model.head.shape`): the lattice the mesh
  is built on, mirror-symmetric about ``U = 0.5`` (texel (U, V) mirrors to (1 - U, V)); the
  face (|u| < ~70 mm, v in [-112, 96] mm) keeps its millimetres (about 0.8 texel per mm at
  256 px), the back of the head, crown and neck are compressed 3-3.5 times;
* a strip below it (V < ``STRIP``) holds mirror pairs of islands: the eyeballs (azimuthal
  maps about the pupil, radius ``(alpha / ALPHA_RIM) ** 0.6`` for the angle alpha from the
  gaze, so the iris and pupil get most texels; the hidden back of the ball sits on the rim),
  the two halves of the mouth interior (``(|u|, psi)``), and of each dental arch.

**Albedo** (MoFA Eq. 3 per texel, linear RGB): the mean paints skin (a cheek flush, a lighter
scalp, redder ears), lips, brows, lashes, nostrils, the eyes (sclera, a streaked iris with a
dark limbal ring, the pupil), the mouth interior (dark red, darker deep inside) and ivory
teeth. The basis is PCA (version 1's :func:`facelab.model.synthetic.bases.population_pca`)
of a sampled population of texture generators: version 1's semantic variations (skin tone,
redness, yellowness, lip colour and darkness, brow darkness, cheek flush, beard shadow), the
iris toward hazel and toward blue-grey, scalp and ear tone, and random blotches placed by
their *3-D* position (so a blotch is continuous across the back seam). ``N_ALBEDO`` modes at
``TEXTURE_SIZE``^2 float32 are ~79 MB for 256^2 x 100, the size we accept for one model;
per-vertex albedo is the bilinear sample of the maps at each vertex's texture coordinates.
"""

from __future__ import annotations

import functools

import numpy as np

from facelab.model.head import shape as S
from facelab.model.synthetic import anatomy as A
from facelab.model.synthetic import bases

TEXTURE_SIZE = 256
N_ALBEDO = 100
SEED_ALBEDO = 20261201
N_PAIRS = 300
STRIP = 0.16  # islands live below this V
V_TOP = 0.99
ALPHA_RIM = np.deg2rad(110.0)  # eyeball angle from the gaze mapped to the island's rim
EYE_ISLAND = (0.095, 0.08, 0.075)  # (U centre of the right eye, V centre, radius)
POUCH_ISLAND = (0.46, 0.015, 0.18, 0.13)  # right half: U anchor (its inner edge), V0, w, h
TEETH_UP_ISLAND = (0.25, 0.015, 0.06, 0.055)
TEETH_LOW_ISLAND = (0.25, 0.085, 0.06, 0.055)

SKIN = np.array([0.58, 0.36, 0.27])
LIPS = np.array([0.46, 0.17, 0.15])
BROW = np.array([0.07, 0.045, 0.03])
SCLERA = np.array([0.72, 0.68, 0.64])
IRIS = np.array([0.16, 0.085, 0.04])
PUPIL = np.array([0.01, 0.01, 0.01])
MOUTH = np.array([0.22, 0.04, 0.04])
TEETH = np.array([0.72, 0.66, 0.55])
CARUNCLE = np.array([0.55, 0.25, 0.22])
IRIS_ALPHA = np.arcsin(5.8 / S.EYE_RADIUS)  # iris radius 5.8 mm on a 12 mm ball
PUPIL_ALPHA = np.arcsin(2.0 / S.EYE_RADIUS)


@functools.cache
def layout() -> dict:
    """The shell's placement: SCALE (texture units per warped mm) and H_top."""
    t = S.tables()
    h_top = float(S.warp_v(S.v_ref()))
    h_bot = float(S.warp_v(S.v_bottom(np.linspace(0.0, np.pi, 181))).min())
    g_max = float(S.warp_u(t["arc"][:, -1].max()))
    scale = min((V_TOP - STRIP - 0.01) / (h_top - h_bot), 0.98 / (2.0 * g_max))
    return {"scale": scale, "h_top": h_top, "h_bot": h_bot, "g_max": g_max}


def shell_uv(gh: np.ndarray) -> np.ndarray:
    """(n, 2) texture coordinates of shell points given in warped (G, H)."""
    lay = layout()
    return np.stack([0.5 + lay["scale"] * gh[:, 0],
                     V_TOP - lay["scale"] * (lay["h_top"] - gh[:, 1])], -1)


def _island(local, left, anchor_u, v0, w, h):
    """Right/left island pair: local (n, 2) with x in [-1, 0] on the right half, [0, 1] on the
    left (``left`` (n,) bool), y in [0, 1]; the right half spans [anchor_u - w, anchor_u], the
    left its mirror [1 - anchor_u, 1 - anchor_u + w]."""
    x, y = local[:, 0], local[:, 1]
    u = np.where(left, 1.0 - anchor_u + x * w, anchor_u + x * w)
    return np.stack([u, v0 + y * h], -1)


def island_uv(local: np.ndarray, island: np.ndarray) -> np.ndarray:
    """Texture coordinates of island-local points (see ``mesh.Shell.uv_island``)."""
    out = np.zeros_like(local)
    uc, vc, r = EYE_ISLAND
    for code, centre_u in ((1, uc), (2, 1.0 - uc)):
        sel = island == code
        out[sel] = np.stack([centre_u + r * local[sel, 0], vc + r * local[sel, 1]], -1)
    for code, box in ((3, POUCH_ISLAND), (4, TEETH_UP_ISLAND), (5, TEETH_LOW_ISLAND)):
        sel = (island == code) | (island == code + 10)
        out[sel] = _island(local[sel], island[sel] == code + 10, *box)
    return out


def eye_local_radius(alpha):
    """Island radius (0 centre .. 1 rim) of the eyeball point at angle alpha from the gaze."""
    return np.clip(np.asarray(alpha) / ALPHA_RIM, 0.0, 1.0) ** 0.6


def texture_uv(uv_gh: np.ndarray, uv_island: np.ndarray) -> np.ndarray:
    """(Vt, 2) texture coordinates of the mesh's uv points (shell in warped mm, islands local)."""
    out = island_uv(uv_gh, uv_island)
    shell = uv_island == 0
    out[shell] = shell_uv(uv_gh[shell])
    eyes = (uv_island == 1) | (uv_island == 2)
    # eyeball locals are (r_alpha cos b, r_alpha sin b) with r_alpha = (alpha / pi) ** 0.6
    loc = uv_gh[eyes]
    rr = np.hypot(loc[:, 0], loc[:, 1])
    alpha = np.pi * rr ** (1.0 / 0.6)
    scale = np.where(rr > 0, eye_local_radius(alpha) / np.maximum(rr, 1e-12), 0.0)
    uc, vc, r = EYE_ISLAND
    cu = np.where(uv_island[eyes] == 1, uc, 1.0 - uc)
    out[eyes] = np.stack([cu + r * loc[:, 0] * scale, vc + r * loc[:, 1] * scale], -1)
    return out


# -------------------------------------------------------------------- texels
def _texel_grid(n=TEXTURE_SIZE):
    c = (np.arange(n) + 0.5) / n
    uu, vv = np.meshgrid(c, 1.0 - c)  # (n, n): row 0 the top (V near 1)
    return uu.ravel(), vv.ravel()


def _regions_shell(u, v):
    """Soft region weights of shell texels at unwrapped (u, v) (version 1's regions + more)."""
    au = np.abs(u)
    face = au < 90.0
    lips = np.clip(A.lip_relief(u, v) / 2.0, 0.0, 1.0) ** 0.5
    lips = np.where(np.abs(v - A.MOUTH_V) < 0.8, 1.0, lips) * (au <= A.MOUTH_HALF_WIDTH + 1.0)
    d_brow = v - A.brow_curve(u) - 0.5
    brow = np.exp(-0.5 * (d_brow / 3.6) ** 4) * A._smoothstep(12.0, 17.0, au)
    brow *= 1.0 - A._smoothstep(50.0, 58.0, au + 0.15 * d_brow)
    brow *= (1.0 - 0.35 * A._smoothstep(20.0, 50.0, au)) * face
    up, low = A.lid_curves(u)
    gap = np.minimum(up - v, v - low)
    xi = np.abs(A.eye_local(u))
    opening = ((gap > -0.2) & (xi < 1.0) & face).astype(float)
    lash = np.exp(-0.5 * ((v - up) / 0.9) ** 2) * (gap < 0.3) * (v > low) * (xi < 1.05) * face
    low_lash = 0.4 * np.exp(-0.5 * ((v - low) / 0.6) ** 2) * (gap < 0.3) * (xi < 1.0) * face
    nostril = np.exp(-0.5 * (((au - 6.5) / 2.6) ** 2 + ((v + 27.5) / 1.6) ** 2))
    cheek = np.exp(-0.5 * (((au - 38.0) / 12.0) ** 2 + ((v + 18.0) / 10.0) ** 2))
    beard = A._smoothstep(-28.0, -45.0, v) * (1.0 - lips) * (1.0 - A._smoothstep(50.0, 70.0, au))
    beard *= A._smoothstep(-150.0, -120.0, v)
    a, b = S.ear_coords(u, v)
    ear = 1.0 - A._smoothstep(0.8, 1.1, np.sqrt(a**2 + b**2))
    scalp = A._smoothstep(95.0, 125.0, v) + (1.0 - A._smoothstep(95.0, 125.0, v)) * (
        A._smoothstep(95.0, 140.0, au) * A._smoothstep(0.0, 40.0, v))
    return dict(lips=lips, brow=brow, opening=opening, lash=np.maximum(lash, low_lash),
                nostril=nostril, cheek=cheek, beard=beard, ear=ear, scalp=np.clip(scalp, 0, 1))


def _shell_texels():
    """Unwrapped (u, v) and base 3-D points of every texel, read as a shell texel."""
    U, V = _texel_grid()
    lay = layout()
    g = (U - 0.5) / lay["scale"]
    h = lay["h_top"] - (V_TOP - V) / lay["scale"]
    u = S.unwarp_u(g)
    v = np.clip(S.unwarp_v(h), S.v_bottom(np.pi) - 80.0, S.v_ref())
    return u, v


def _island_texels():
    """Per texel: island code (0 none) and island-local coordinates."""
    U, V = _texel_grid()
    code = np.zeros(U.shape, np.int8)
    local = np.zeros((len(U), 2))
    uc, vc, r = EYE_ISLAND
    for c, cu in ((1, uc), (2, 1.0 - uc)):
        x, y = (U - cu) / r, (V - vc) / r
        sel = np.hypot(x, y) <= 1.08
        code[sel], local[sel] = c, np.stack([x[sel], y[sel]], -1)
    for c, (au, v0, w, h) in ((3, POUCH_ISLAND), (4, TEETH_UP_ISLAND), (5, TEETH_LOW_ISLAND)):
        y = (V - v0) / h
        xr = (U - au) / w
        xl = (U - (1.0 - au)) / w
        for x, keep in ((xr, (xr >= -1.04) & (xr <= 0.04)), (xl, (xl >= -0.04) & (xl <= 1.04))):
            sel = keep & (y >= -0.04) & (y <= 1.04)
            code[sel], local[sel] = c, np.stack([x[sel], y[sel]], -1)
    return code, local


def _eye_regions(local):
    """Iris, pupil, limbus and streak weights of eye-island texels."""
    rr = np.clip(np.hypot(local[:, 0], local[:, 1]), 0.0, 1.0)
    alpha = ALPHA_RIM * rr ** (1.0 / 0.6)
    beta = np.arctan2(local[:, 1], local[:, 0])
    iris = 1.0 - A._smoothstep(IRIS_ALPHA - 0.04, IRIS_ALPHA + 0.02, alpha)
    pupil = 1.0 - A._smoothstep(PUPIL_ALPHA - 0.02, PUPIL_ALPHA + 0.02, alpha)
    limbus = np.exp(-0.5 * ((alpha - IRIS_ALPHA + 0.03) / 0.035) ** 2)
    streak = 0.5 + 0.5 * np.cos(23.0 * beta) * np.cos(7.0 * beta + 3.0 * alpha)
    deep = A._smoothstep(np.deg2rad(60.0), np.deg2rad(100.0), alpha)
    return dict(iris=iris, pupil=pupil, limbus=limbus, streak=streak, deep=deep)


@functools.cache
def texel_data():
    """Per-texel inputs of the albedo: shell (u, v), regions, island codes/locals, 3-D points."""
    u, v = _shell_texels()
    code, local = _island_texels()
    reg = _regions_shell(u, v)
    eye = _eye_regions(local)
    pts = S.base_design_point(u, v)
    return u, v, code, local, reg, eye, pts


def mean_texture() -> np.ndarray:
    """(T*T, 3) linear RGB mean reflectance, texels in row-major order (row 0 the top)."""
    u, _, code, local, w, e, _ = texel_data()
    n = len(u)
    c = np.tile(SKIN, (n, 1))
    c = c + w["cheek"][:, None] * np.array([0.05, -0.02, -0.015])
    c = c + w["scalp"][:, None] * np.array([0.02, 0.015, 0.02])
    c = c + w["ear"][:, None] * np.array([0.03, -0.02, -0.015])
    mix = lambda c, w, col: c * (1.0 - w[:, None]) + w[:, None] * col  # noqa: E731
    c = mix(c, w["lips"], LIPS)
    c = mix(c, 0.85 * w["brow"], BROW)
    c = mix(c, 0.8 * w["lash"], BROW)
    c = mix(c, 0.7 * w["nostril"], np.array([0.08, 0.03, 0.025]))
    c = mix(c, 0.9 * w["opening"], CARUNCLE)
    eyes = (code == 1) | (code == 2)
    sclera = SCLERA + e["deep"][:, None] * np.array([0.0, -0.12, -0.12])
    iris_col = IRIS * (0.75 + 0.5 * e["streak"])[:, None]
    ec = mix(sclera, e["iris"], iris_col)
    ec = mix(ec, 0.6 * e["limbus"], np.array([0.03, 0.02, 0.015]))
    ec = mix(ec, e["pupil"], PUPIL)
    c[eyes] = ec[eyes]
    pouch = code == 3
    q = np.clip(local[:, 1], 0.0, 1.0)
    depth = np.sin(np.pi * q) ** 0.7
    mouth = LIPS * (1.0 - A._smoothstep(0.0, 0.12, np.minimum(q, 1 - q)))[:, None] + MOUTH * (
        A._smoothstep(0.0, 0.12, np.minimum(q, 1 - q)) * (1.0 - 0.75 * depth))[:, None]
    c[pouch] = mouth[pouch]
    c[(code == 4) | (code == 5)] = TEETH
    return c


def albedo_generators(mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(M, T*T, 3) texture generators at +1 std: semantic, then 3-D-placed blotches."""
    u, _, code, _, w, e, pts = texel_data()
    shell = (code == 0).astype(float)
    skin = np.clip(1.0 - w["opening"] - w["lips"] * 0.0, 0.0, 1.0) * shell
    eyes = ((code == 1) | (code == 2)).astype(float)
    iris = e["iris"] * (1.0 - e["pupil"]) * eyes
    n = len(u)

    def col(weight, rgb):
        return np.asarray(weight)[:, None] * np.asarray(rgb)[None, :] * np.ones((n, 3))

    sk = skin[:, None]
    fields = [
        -0.28 * mean * sk,  # skin tone
        mean * sk * np.array([0.06, -0.05, -0.04]),  # redness
        mean * sk * np.array([0.02, 0.04, -0.07]),  # yellowness
        col(w["lips"] * shell, [0.05, -0.025, -0.015]),  # lip colour
        -0.25 * mean * (w["lips"] * shell)[:, None],  # lip darkness
        -0.25 * (mean - BROW) * (w["brow"] * shell)[:, None],  # brow darkness
        mean * (w["cheek"] * shell)[:, None] * np.array([0.07, -0.04, -0.03]),  # cheek flush
        0.5 * iris[:, None] * (np.array([0.24, 0.17, 0.07]) - IRIS),  # brown to hazel
        0.5 * iris[:, None] * (np.array([0.12, 0.18, 0.24]) - IRIS),  # brown to blue-grey
        mean * (w["beard"] * skin)[:, None] * np.array([-0.1, -0.08, -0.05]),  # beard shadow
        mean * (w["scalp"] * skin)[:, None] * np.array([-0.05, -0.05, -0.04]),  # scalp tone
        mean * (w["ear"] * skin)[:, None] * np.array([0.05, -0.03, -0.02]),  # ear redness
    ]
    n_b = 120
    inside = np.nonzero(shell > 0)[0]
    centres = pts[inside[rng.integers(0, len(inside), n_b)]]
    sig = rng.uniform(6.0, 30.0, n_b)
    rel = rng.standard_normal((n_b, 3)) * 0.25 - 0.75 / np.sqrt(3.0)
    rel *= 0.07 / np.linalg.norm(rel, axis=1, keepdims=True)
    for k in range(n_b):
        d2 = ((pts - centres[k]) ** 2).sum(1)
        bump = np.exp(-0.5 * d2 / sig[k] ** 2) * skin
        fields.append(bump[:, None] * mean * rel[k][None, :])
    return np.stack(fields)


@functools.cache
def albedo_maps():
    """(mean (T, T, 3), basis (T, T, 3, N_ALBEDO), std (N_ALBEDO,)) float32, by PCA.

    The std is the RMS per texel of each mode (``bases.population_pca``), decreasing.
    """
    mean = mean_texture()
    gens = albedo_generators(mean, bases.rng_for(SEED_ALBEDO))
    m = len(gens)
    coeffs = bases.sample_coefficients(bases.rng_for(SEED_ALBEDO + 1), np.ones(m), N_PAIRS)
    basis, std = bases.population_pca(gens.reshape(m, -1), coeffs, N_ALBEDO, gens.shape[1])
    T = TEXTURE_SIZE
    return (np.ascontiguousarray(mean.reshape(T, T, 3), np.float32),
            np.ascontiguousarray(basis.reshape(T, T, 3, N_ALBEDO), np.float32),
            np.ascontiguousarray(std, np.float32))


def sample_bilinear(maps: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of texture maps at OBJ-convention uv.

    maps: (T, T, ...) row 0 the top; uv: (n, 2) in [0, 1]. Texel (i, j) has its centre at
    ``u = (j + 0.5) / T``, ``v = 1 - (i + 0.5) / T``; lookups clamp at the border.
    Returns (n, ...).
    """
    T = maps.shape[0]
    x = np.clip(uv[:, 0] * T - 0.5, 0.0, T - 1.0)
    y = np.clip((1.0 - uv[:, 1]) * T - 0.5, 0.0, T - 1.0)
    j0 = np.minimum(np.floor(x).astype(np.int64), T - 2)
    i0 = np.minimum(np.floor(y).astype(np.int64), T - 2)
    a = (x - j0).reshape((-1,) + (1,) * (maps.ndim - 2))
    b = (y - i0).reshape((-1,) + (1,) * (maps.ndim - 2))
    return ((1 - a) * (1 - b) * maps[i0, j0] + a * (1 - b) * maps[i0, j0 + 1]
            + (1 - a) * b * maps[i0 + 1, j0] + a * b * maps[i0 + 1, j0 + 1])
