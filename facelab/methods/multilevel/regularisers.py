"""The regularisers of the final level (supplement Secs. 1, 4; Figs. 5-7).

Only the supplement is available, which names the terms and their weights but not their
formulas; the definitions below are ours, each resting on the sentence cited.

* Smoothness of the geometry correctives, w_smo = 3.2e4 — "Both corrective smoothness and
  stabilization terms help in obtaining nice geometry estimates" (Fig. 7); without the shape
  regularisers "all corrective per-vertex displacements are independent and thus the
  reconstruction problem is severely underconstrained" (Sec. 4). Definition (ours): the mean
  squared uniform-graph Laplacian of the displacements,
      E_smo(D) = (1/N) sum_i ||(L D)_i||^2,   L = facelab.mesh.laplacian(faces, N, "uniform"),
  D (N, 3) in **metres** (the built-in model is in mm; see below).
* Stabilisation, w_sta = 0.08 — "stabilization" (Sec. 4, Fig. 7): keep the displacements small,
      E_sta(D) = (1/N) sum_i ||D_i||^2   (metres).
* Local reflectance sparsity, w_ref = 13 — "reflectance sparsity priors (local and global)";
  without them "all shading information is wrongly explained by reflectance variation"
  (Sec. 4, Fig. 5). Definition (ours): a robust (p < 1) norm of the reflectance differences
  across mesh edges, weighted by how alike the input image's chromaticity is at both ends,
      E_ref(r) = (1/|E|) sum_{(i,j) in E} w_ij ||r_i - r_j||_2^p,
      w_ij = exp(-alpha ||k_i - k_j||_2),  k = I(u) / (I_r + I_g + I_b)(u),
  with p = 0.9 and alpha = 50 (our choices), edges with both ends visible, w_ij constant.
  Neighbours of similar chromaticity differ by shading, not reflectance, so their reflectance
  is pulled together; a chromaticity edge (a lip border, a beard) is left free.
* Global reflectance constancy, w_glo = 80 — "Both local sparsity and global constancy terms
  help in obtaining plausible reflectance estimates" (Fig. 6). Definition (ours): over a skin
  region S (:func:`skin_region`), each skin vertex is pulled toward G fixed random skin
  vertices,  E_glo(r) = (1/(|S| G)) sum_{i in S} sum_{j in G_i} ||r_i - r_j||^2.

**Units.** The supplement's weights were set for its own model's units, which it does not
state. facelab's geometry is in mm; expressing the displacements of E_smo and E_sta in metres
(x 1e-3) puts w_smo E_smo for a 1 mm per-vertex noise (~1e-2) at the size of the photometric
term w_photo E_photo (~0.2 x 0.05) while a smooth 3 mm bump costs ~100x less; in mm the
default w_smo would freeze the correctives. Reflectance is in [0, 1] (as the paper's colours).
"""

from __future__ import annotations

import torch

from facelab._checks import check_finite, check_floating, check_int, check_shape
from facelab.mesh import laplacian, mesh_edges

__all__ = ["MM_TO_M", "global_constancy", "image_chromaticity", "local_sparsity", "mesh_terms",
           "skin_region", "skin_partners", "smoothness", "stabilisation"]

MM_TO_M = 1e-3
"""Displacements enter E_smo and E_sta in metres (see the module docstring)."""

EYE_LANDMARKS = tuple(range(36, 48))
BROW_LANDMARKS = tuple(range(17, 27))
MOUTH_LANDMARKS = tuple(range(48, 68))


def _check_field(x, name: str, n: int | None = None) -> dict:
    d = check_shape(x, "B N 3", name=name, dims={} if n is None else {"N": n})
    check_floating(x, name=name)
    check_finite(x, name=name)
    return d


def smoothness(displacements, L) -> torch.Tensor:
    """E_smo per image (B,): (1/N) sum_i ||(L D)_i||^2, D in metres (see module docstring).

    displacements: (B, N, 3) float, model space, **mm** (FaceParams.vertex_offsets).
    L: (N, N) sparse or dense Laplacian (:func:`facelab.mesh.laplacian`).
    """
    d = _check_field(displacements, "displacements")
    check_shape(L, "N N", name="L", dims={"N": d["N"]})
    D = displacements * MM_TO_M
    flat = D.permute(1, 0, 2).reshape(d["N"], -1)  # (N, B*3)
    Lm = L.to(device=D.device, dtype=D.dtype)
    lap = (torch.sparse.mm(Lm, flat) if Lm.is_sparse else Lm @ flat)  # (N, B*3)
    lap = lap.reshape(d["N"], d["B"], 3)
    return (lap ** 2).sum(-1).mean(0)


def stabilisation(displacements) -> torch.Tensor:
    """E_sta per image (B,): (1/N) sum_i ||D_i||^2, D in metres; displacements (B, N, 3) mm."""
    _check_field(displacements, "displacements")
    return ((displacements * MM_TO_M) ** 2).sum(-1).mean(-1)


def image_chromaticity(image, positions) -> torch.Tensor:
    """k = I(u) / (I_r + I_g + I_b): (B, N, 3) chromaticity of ``image`` at ``positions``.

    image: (B, H, W, 3) in [0, 1]. positions: (B, N, 2) pixels (x right, y down; pixel centres
    at +0.5). Bilinear, border-clamped; not differentiable (used as constant weights).
    """
    d = check_shape(image, "B H W 3", name="image")
    check_shape(positions, "B N 2", name="positions", dims={"B": d["B"]})
    with torch.no_grad():
        img = image.permute(0, 3, 1, 2).to(positions.dtype)  # (B, 3, H, W)
        grid = torch.stack([positions[..., 0] / d["W"] * 2 - 1,
                            positions[..., 1] / d["H"] * 2 - 1], -1)[:, None]  # (B, 1, N, 2)
        rgb = torch.nn.functional.grid_sample(img, grid, mode="bilinear",
                                              padding_mode="border", align_corners=False)
        rgb = rgb[:, :, 0].permute(0, 2, 1)  # (B, N, 3)
        return rgb / rgb.sum(-1, keepdim=True).clamp(min=1e-4)


def local_sparsity(reflectance, chromaticity, edges, visible=None, *, alpha: float = 50.0,
                   p: float = 0.9, eps: float = 1e-4) -> torch.Tensor:
    """E_ref per image (B,): chromaticity-weighted robust norm of reflectance differences.

    reflectance: (B, N, 3) r_i. chromaticity: (B, N, 3) k_i of the input image
    (:func:`image_chromaticity`). edges: (E, 2) int64 mesh edges (:func:`facelab.mesh.mesh_edges`).
    visible: optional (B, N) bool; an edge counts where both ends are visible.
    alpha: chromaticity sharpness. p: the robust exponent (< 1 promotes sparse differences).
    eps: smoothing of ||.||_2 at 0: (||x||^2 + eps^2)^(p/2) - eps^p, so a zero difference costs
    exactly 0 and the gradient is finite.
    Returns (1/|E_b|) sum_{(i,j)} w_ij ||r_i - r_j||_2^p with w_ij = exp(-alpha ||k_i - k_j||).
    """
    d = _check_field(reflectance, "reflectance")
    check_shape(chromaticity, "B N 3", name="chromaticity", dims=d)
    check_shape(edges, "E 2", name="edges")
    i, j = edges[:, 0], edges[:, 1]
    w = torch.exp(-alpha * (chromaticity[:, i] - chromaticity[:, j]).norm(dim=-1)).detach()
    diff2 = ((reflectance[:, i] - reflectance[:, j]) ** 2).sum(-1)  # (B, E)
    robust = (diff2 + eps ** 2) ** (p / 2) - eps ** p
    if visible is None:
        mask = torch.ones_like(robust)
    else:
        check_shape(visible, "B N", name="visible", dims=d)
        mask = (visible[:, i] & visible[:, j]).to(robust)
    return (w * robust * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def global_constancy(reflectance, skin, partners) -> torch.Tensor:
    """E_glo per image (B,): mean over skin vertices i and partners j of ||r_i - r_j||^2.

    reflectance: (B, N, 3). skin: (S,) int64 skin vertex indices. partners: (S, G) int64 vertex
    indices (skin vertices, :func:`skin_partners`).
    """
    _check_field(reflectance, "reflectance")
    check_shape(skin, "S", name="skin")
    check_shape(partners, "S G", name="partners", dims={"S": skin.shape[0]})
    r_i = reflectance[:, skin][:, :, None]  # (B, S, 1, 3)
    r_j = reflectance[:, partners]  # (B, S, G, 3)
    return ((r_i - r_j) ** 2).sum(-1).mean((-1, -2))


def skin_region(model, *, eye_mm: float = 14.0, brow_mm: float = 10.0,
                mouth_mm: float = 8.0) -> torch.Tensor:
    """(S,) int64 vertices of the skin: the face mask without eyes, brows and lips.

    A vertex is excluded when its mean-shape distance to an eye, brow or mouth landmark is
    below the given radius (mm). Needs the model's 68 landmarks.
    """
    if model.landmarks is None:
        raise ValueError(f"model: {model.name!r} has no landmarks to find eyes, brows and lips")
    mean = model.mean_shape.float()
    keep = model.face_mask.clone()
    points = model.landmark_rows(mean)  # (68, 3) the mean face's landmark points
    for ids, radius in ((EYE_LANDMARKS, eye_mm), (BROW_LANDMARKS, brow_mm),
                        (MOUTH_LANDMARKS, mouth_mm)):
        pts = points[list(ids)]  # (L, 3)
        near = (torch.cdist(mean, pts) < radius).any(1)
        keep &= ~near
    return torch.nonzero(keep).squeeze(1)


def skin_partners(skin, count: int = 8, seed: int = 0) -> torch.Tensor:
    """(S, count) int64 fixed random partners j in the skin for each skin vertex i."""
    check_shape(skin, "S", name="skin")
    count = check_int(count, name="count", minimum=1)
    g = torch.Generator().manual_seed(check_int(seed, name="seed", minimum=0))
    pick = torch.randint(skin.shape[0], (skin.shape[0], count), generator=g)
    return skin[pick]


def mesh_terms(model) -> dict:
    """What the regularisers need from ``model``, built once: the uniform Laplacian ``L``
    (N, N) sparse, the ``edges`` (E, 2), the ``skin`` vertices (S,) and their ``partners``."""
    n = model.num_vertices
    skin = skin_region(model)
    return {"L": laplacian(model.faces, n, "uniform"), "edges": mesh_edges(model.faces, n),
            "skin": skin, "partners": skin_partners(skin)}
