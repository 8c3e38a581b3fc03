"""Evaluation of the multi-level model on synthetic ground truth (supplement Secs. 2-4).

* photometric re-rendering error (Figs. 3, 4, 9): the mean RGB distance ||I(u_i) - c_i||
  (channels in [0, 1]) between the input and the rendered model at its front-facing
  vertices, for the base and the final level (MoFA's Sec. 7 measure);
* geometric error: aligned point-to-point error (mm) against the true mesh *with* its detail
  (:func:`facelab.metrics.aligned_vertex_error`, translation + scale compensated);
* reflectance error (Fig. 8): "per-pixel RGB distances between the rendered reflectance image
  and the ground truth (we compensate for global shifts in reflectance). We render these
  images using the mean face geometry in a canonical pose" (supp. Sec. 4);
* shading leak (Fig. 5, "shading information being wrongly explained by reflectance
  variation"): the correlation, over the visible face vertices of an image, between the
  reflectance error (luminance of estimated - true) and the true shading (luminance of the
  irradiance); 0 when no shading is baked into the reflectance;
* the size of one reconstruction (supp. Sec. 0: < 5 KB) and the regressor's rate in Hz
  (supp. Sec. 2: < 4 ms per forward pass on a GPU, "more than 250 Hz").
"""

from __future__ import annotations

import time

import torch

from facelab import cameras
from facelab._checks import check_int
from facelab.face_params import FaceParams
from facelab.formation import default_camera, form, render
from facelab.losses import photometric_loss
from facelab.methods.mofa.decoder import visible_vertices
from facelab.metrics import aligned_vertex_error

__all__ = ["LUMA", "PAPER", "evaluate", "oracle_errors", "reconstruction_size", "reflectance_image",
           "regressor_rate", "shading_leak"]

PAPER = {
    "reflectance_error_40_modes": 0.072,  # supp. Sec. 4, Fig. 8, 1k synthetic test images
    "reconstruction_kb": 5.0,  # "less than 5KB" (supp. Sec. 0)
    "reflectance_kb": 2.3, "geometry_kb": 2.6,
    "forward_ms": 4.0, "rate_hz": 250.0,  # GTX TITAN Xp (supp. Sec. 2)
    "train_hours": 16.0,
}
"""The supplement's numbers."""

LUMA = (0.299, 0.587, 0.114)


def reflectance_image(model, albedo, albedo_offsets=None, size: int = 64) -> tuple:
    """The reflectance rendered on the mean face geometry in a canonical (frontal) pose.

    albedo: (B, K) reflectance coefficients; albedo_offsets: optional (B, N, 3) correctives.
    Returns ``(images (B, size, size, 3), mask (B, size, size) bool)`` (supp. Sec. 4, Fig. 8).
    """
    size = check_int(size, name="size", minimum=8)
    b = albedo.shape[0]
    camera, translation = default_camera(b, size, size, dtype=albedo.dtype)
    params = FaceParams(albedo=albedo, translation=translation, albedo_offsets=albedo_offsets)
    f = form(model, params, camera)
    return render(f, size, size, colors=f.albedo)


def _reflectance_error(pred_img, true_img, mask) -> torch.Tensor:
    """(B,) mean per-pixel RGB distance after removing the mean RGB difference (global shift)."""
    m = mask[..., None].to(pred_img)  # (B, H, W, 1)
    n = m.sum((1, 2)).clamp(min=1)  # (B, 1)
    diff = (pred_img - true_img) * m
    shift = diff.sum((1, 2)) / n  # (B, 3)
    dist = ((diff - shift[:, None, None] * m) ** 2).sum(-1).sqrt()  # (B, H, W)
    return (dist * mask).sum((1, 2)) / n[:, 0]


def shading_leak(albedo, true_albedo, irradiance, weights) -> torch.Tensor:
    """(B,) correlation, over the weighted vertices, between the reflectance error and the true
    shading (luminances): ``corr(L(albedo - true_albedo), L(irradiance))``.

    albedo, true_albedo, irradiance: (B, N, 3). weights: (B, N) (e.g. visible vertices).
    Shading baked into the reflectance makes it positive (the estimate is too bright where the
    face is lit); 0 when the error has nothing to do with the shading.
    """
    luma = torch.tensor(LUMA, dtype=albedo.dtype, device=albedo.device)
    err = (albedo - true_albedo) @ luma  # (B, N)
    shade = irradiance.to(albedo) @ luma  # (B, N)
    return _corr(err, shade, weights.to(err))


def _corr(x, y, w) -> torch.Tensor:
    """Weighted Pearson correlation per row: x, y, w (B, N) -> (B,)."""
    n = w.sum(-1).clamp(min=1)
    mx, my = (x * w).sum(-1) / n, (y * w).sum(-1) / n
    dx, dy = (x - mx[:, None]) * w, (y - my[:, None]) * w
    return (dx * dy).sum(-1) / ((dx * dx).sum(-1).sqrt() * (dy * dy).sum(-1).sqrt()).clamp(
        min=1e-12)


def evaluate(net, model, batch: dict, base_model=None) -> dict[str, torch.Tensor]:
    """Per-image errors of a :class:`.network.MultilevelNet` on a :class:`.corpus.DetailFaces`
    batch (B,): "photo_base", "photo_final", "geometry_base_mm", "geometry_final_mm",
    "reflectance_base", "reflectance_final", "scale_ratio_base", "scale_ratio_final" (projected
    face size / true size), "shading_leak", "corrective_mm" (mean |offset|, face mask).

    model: the corpus' MorphableModel (ground-truth reflectance images);
    base_model: the network's (fewer reflectance modes in the Fig. 8 study; default model).
    """
    bm = model if base_model is None else base_model
    image = batch["image"]
    size = image.shape[1]
    with torch.no_grad():
        code = net(image)
        base_p, final_p = net.face_params(code)
        camera = cameras.Pinhole(batch["focal"], batch["principal"])
        gt = batch["verts"] @ batch["rotation"].transpose(-1, -2)  # posed, model space
        mask = bm.face_mask
        out = {}
        for level, p in (("base", base_p), ("final", final_p)):
            f = form(bm, p, camera)
            vis = visible_vertices(f, bm, size, size)
            out[f"photo_{level}"] = photometric_loss(image, f.screen_verts[..., :2], f.colors,
                                                     vis, reduction="none")
            pred = f.verts @ p.rotation.transpose(-1, -2)
            out[f"geometry_{level}_mm"] = aligned_vertex_error(pred[:, mask], gt[:, mask])
            # face size in the image relative to the truth (a collapse shrinks it)
            spread = f.screen_verts[:, mask, :2].std(1).norm(dim=-1)
            true_spread = batch["screen_verts"][:, mask, :2].std(1).norm(dim=-1)
            out[f"scale_ratio_{level}"] = spread / true_spread
            img, msk = reflectance_image(bm, p.albedo, p.albedo_offsets, size)
            true_img, _ = reflectance_image(model, batch["albedo"], batch["albedo_offsets"], size)
            out[f"reflectance_{level}"] = _reflectance_error(img, true_img, msk)
            if level == "final":
                out["shading_leak"] = shading_leak(f.albedo, batch["reflectance"],
                                                   batch["irradiance"], vis & batch["visible"])
                out["corrective_mm"] = p.vertex_offsets[:, mask].norm(dim=-1).mean(-1)
    return out


def oracle_errors(model, batch: dict) -> dict[str, torch.Tensor]:
    """Photometric error (B,) of the *true* parameters, without and with the true detail.

    "photo_true_3dmm": the best any base level can do (its 3DMM part exactly right);
    "photo_true_detail": the full truth (what remains is rasterisation and the background at
    the silhouette). Their gap is the most the correctives can gain on this corpus.
    """
    params = FaceParams(id=batch["id"], exp=batch["exp"], albedo=batch["albedo"],
                        rotation=batch["rotation"], translation=batch["translation"],
                        gamma=batch["gamma"])
    camera = cameras.Pinhole(batch["focal"], batch["principal"])
    size = batch["image"].shape[1]
    out = {}
    with torch.no_grad():
        for name, p in (("photo_true_3dmm", params),
                        ("photo_true_detail", params.replace(
                            vertex_offsets=batch["vertex_offsets"],
                            albedo_offsets=batch["albedo_offsets"]))):
            f = form(model, p, camera)
            vis = visible_vertices(f, model, size, size)
            out[name] = photometric_loss(batch["image"], f.screen_verts[..., :2], f.colors, vis,
                                         reduction="none")
    return out


def reconstruction_size(net) -> dict[str, int]:
    """Bytes of one reconstruction at one float32 per coefficient (supp. Sec. 0).

    "reflectance": C + K_alb; "geometry": C + K_id + K_exp (the supplement's count, < 5 KB);
    "pose_light": rotation, translation and the two levels' SH (the supplement leaves them out);
    "total": all of it.
    """
    lay, c = net.layout, net.correctives
    refl = 4 * (c + lay.albedo)
    geo = 4 * (c + lay.id + lay.exp)
    extra = 4 * (lay.rotation + lay.translation + 2 * lay.sh)
    return {"reflectance": refl, "geometry": geo, "paper_count": refl + geo,
            "pose_light": extra, "total": refl + geo + extra}


def regressor_rate(net, threads: int, repeats: int = 30, correctives: bool = True) -> dict:
    """Forward passes per second of the regressor (batch 1) with ``threads`` torch threads.

    correctives: also evaluate F_geo, F_ref (the per-vertex correctives), as the paper's
    network does. Returns {"ms" (median), "hz" (1000 / median), "ms_best" (fastest pass: the
    uncontended figure on a shared machine), "hz_best", "threads"}; the thread count is
    restored.
    """
    threads = check_int(threads, name="threads", minimum=1)
    repeats = check_int(repeats, name="repeats", minimum=1)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        image = torch.rand(1, net.base.image_size, net.base.image_size, 3,
                           generator=torch.Generator().manual_seed(0))
        times = []
        with torch.no_grad():
            for _ in range(repeats + 3):
                t = time.perf_counter()
                code = net(image)
                if correctives:
                    net.geo_space(code.delta_geo)
                    net.ref_space(code.delta_ref)
                times.append(time.perf_counter() - t)
        ordered = sorted(times[3:])
        ms, best = 1000.0 * ordered[len(ordered) // 2], 1000.0 * ordered[0]
    finally:
        torch.set_num_threads(old)
    return {"ms": ms, "hz": 1000.0 / ms, "ms_best": best, "hz_best": 1000.0 / best,
            "threads": threads}
