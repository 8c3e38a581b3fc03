"""Textured rendering: the bilinear texture lookup, per-vertex vs per-pixel shading, and the
cost of a textured render — interleaved rounds (protocol: README.md).

1. ``lookup``: :func:`facelab.sample_texture` on a (B, 224, 224) field of texture coordinates
   (a smooth, coherent warp over 80 % of the texture, like a rendered face's UVs; an
   elliptical face mask, ~60 % of the pixels) into a 256² and a 512² RGB texture, float32,
   forward alone and forward + backward (gradients to texture and uv). Per round, each runs
   once: ``facelab`` (Numba), ``grid_sample`` (the peer: ``torch.nn.functional.grid_sample``,
   bilinear, padding "border", ``align_corners=False``, grid (2u − 1, 1 − 2v) — the same
   convention — times the mask, torch autograd) and ``numpy`` (the reference, every 4th
   round). Check beside the timing: the largest |difference| from the NumPy reference of the
   output (and of both gradients), relative to the reference's largest |value|.
2. ``shading`` (``--shading``): the built-in v1 teaching model at 256², random light: the
   irradiance H(n) gamma per vertex interpolated over each triangle (what ``render`` does)
   against per-pixel shading (interpolated normals, renormalised, H(n) gamma per pixel) —
   the difference in irradiance (albedo <= 1, so it bounds the image difference) and the
   time of each.
3. ``render``: ``fl.render`` of the v1 teaching model at 224² with a 256² texture over a
   planar UV layout against the per-vertex render (``texture=False``), forward + backward to
   the texture / colours and the lighting.

Usage: python benchmarks/bench_texture.py [--threads 1] [--rounds 25] [--json rows.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numba
import numpy as np
import torch
from timing import interleaved, load_average, paired_ratio, quantiles

import facelab as fl
from facelab.texture import reference

SIZE = 224


def lookup_inputs(batch: int, t_size: int, size: int = SIZE, seed: int = 0):
    """Texture (B, t, t, 3), coherent uv (B, S, S, 2), an elliptical mask (B, S, S)."""
    g = torch.Generator().manual_seed(seed)
    texture = torch.rand(batch, t_size, t_size, 3, generator=g)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    u = 0.1 + 0.8 * x + 0.03 * torch.sin(6.0 * y)
    v = 0.9 - 0.8 * y + 0.03 * torch.sin(5.0 * x)
    uv = torch.stack([u, v], -1)[None].repeat(batch, 1, 1, 1).contiguous()
    mask = (((x - 0.5) / 0.42) ** 2 + ((y - 0.5) / 0.5) ** 2 < 1)[None].repeat(batch, 1, 1)
    grad = torch.randn(batch, size, size, 3, generator=g)
    return texture, uv, mask, grad


def grid_sample_lookup(texture, uv, mask):
    """The peer: grid_sample with facelab's convention, masked."""
    grid = torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], -1)  # v up -> y down
    out = torch.nn.functional.grid_sample(texture.permute(0, 3, 1, 2), grid, mode="bilinear",
                                          padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1) * mask[..., None]


def _leaf(*ts):
    return [t.detach().requires_grad_() for t in ts]


def run_lookup(threads: int, batch: int, t_size: int, rounds: int) -> list[dict]:
    texture, uv, mask, grad = lookup_inputs(batch, t_size)
    tn, un, mn, gn = (t.numpy() for t in (texture, uv, mask, grad))
    rows = []
    for stage in ("forward", "forward+backward"):
        if stage == "forward":
            def ours():
                with torch.no_grad():
                    return fl.sample_texture(texture, uv, mask)

            def peer():
                with torch.no_grad():
                    return grid_sample_lookup(texture, uv, mask)

            def numpy():
                return reference.sample_texture_forward(tn, un, mn)
        else:
            def ours():
                t, u = _leaf(texture, uv)
                (fl.sample_texture(t, u, mask) * grad).sum().backward()
                return t.grad, u.grad

            def peer():
                t, u = _leaf(texture, uv)
                (grid_sample_lookup(t, u, mask) * grad).sum().backward()
                return t.grad, u.grad

            def numpy():
                reference.sample_texture_forward(tn, un, mn)
                return reference.sample_texture_backward(tn, un, mn, gn)
        times = interleaved({"facelab": ours, "grid_sample": peer, "numpy": numpy},
                            rounds=rounds, warmup=2, every={"numpy": 4})
        ref, got, other = numpy(), ours(), peer()
        if stage == "forward":
            ref, got, other = [ref], [got], [other]
        # largest |difference| relative to the largest |reference value|, over the outputs
        check = [max(float(np.abs(g.detach().numpy() - r).max() / max(np.abs(r).max(), 1e-30))
                     for g, r in zip(x, ref, strict=True)) for x in (got, other)]
        load = load_average()
        for name in ("facelab", "grid_sample", "numpy"):
            med, p10, p90 = quantiles(1e3 * times[name] / batch)
            rows.append(dict(benchmark="texture_lookup", stage=stage,
                             workload=f"{t_size}² texture → {SIZE}², B={batch}",
                             threads=threads, impl=name, median_ms=med, p10_ms=p10, p90_ms=p90,
                             ratio=paired_ratio(times[name], times["facelab"],
                                                4 if name == "numpy" else 1),
                             check=("reference" if name == "numpy" else "max rel. abs Δ vs "
                                    f"reference {check[name == 'grid_sample']:.1e}"),
                             load=load))
    return rows


def _teaching(version=1):
    return fl.load_model("synthetic", "teaching", version=version)


def _params(model, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    camera, t = fl.default_camera(batch, SIZE, SIZE)
    return fl.FaceParams(id=torch.randn(batch, model.n_id, generator=g),
                         albedo=torch.randn(batch, model.n_albedo, generator=g),
                         rotation=fl.rotations.head_rotation(0.3 * torch.randn(batch, 3,
                                                                               generator=g)),
                         translation=t, gamma=fl.random_sh(batch, generator=g,
                                                           front=(0, 0, -1))), camera


def run_shading(threads: int, rounds: int, size: int = 256) -> list[dict]:
    """Per-vertex irradiance interpolated vs per-pixel SH shading of interpolated normals."""
    model = _teaching()
    params, camera = _params(model, 1)
    camera, _ = fl.default_camera(1, size, size)
    f = fl.form(model, params, camera)
    frags = fl.rasterize(f.screen_verts, f.faces, size, size, perspective_correct=True)
    mask = torch.as_tensor(frags.face_index) >= 0
    irradiance = fl.sh_shade(torch.ones_like(f.normals), f.normals, params.gamma)

    def per_vertex():
        return fl.interpolate(irradiance, frags, f.faces)

    def per_pixel():
        n = torch.nn.functional.normalize(fl.interpolate(f.normals, frags, f.faces), dim=-1)
        return fl.sh_irradiance_basis(n) @ params.gamma[:, None]  # (1, H, W, 3)

    times = interleaved({"per-vertex": per_vertex, "per-pixel": per_pixel}, rounds=rounds,
                        warmup=2)
    diff = (per_vertex() - per_pixel()).abs().amax(-1)[mask]
    check = (f"abs Δ irradiance: mean {float(diff.mean()):.1e}, p99 "
             f"{float(diff.quantile(0.99)):.1e}, max {float(diff.max()):.1e} "
             f"({int(mask.sum())} px, irradiance up to "
             f"{float(per_pixel()[mask].max()):.2f})")
    load = load_average()
    rows = []
    for name in ("per-vertex", "per-pixel"):
        med, p10, p90 = quantiles(1e3 * times[name])
        rows.append(dict(benchmark="texture_shading", workload=f"v1 teaching, {size}²",
                         threads=threads, impl=name, median_ms=med, p10_ms=p10, p90_ms=p90,
                         ratio=paired_ratio(times[name], times["per-vertex"]), check=check,
                         load=load))
    return rows


def run_render(threads: int, rounds: int, t_size: int = 256) -> list[dict]:
    """fl.render textured (planar UVs, a t_size² texture) vs per-vertex, fwd + bwd."""
    base = _teaching()
    xy = base.mean_shape[:, :2]
    uv = (0.05 + 0.9 * (xy - xy.min(0).values) / (xy.max(0).values - xy.min(0).values))
    model = dataclasses.replace(base, uv=uv.contiguous(), uv_faces=base.faces.clone())
    params, camera = _params(model, 1)
    texture = torch.rand(1, t_size, t_size, 3, generator=torch.Generator().manual_seed(1))

    def textured():
        tex, gamma = _leaf(texture, params.gamma)
        image, _ = fl.render(fl.form(model, params.replace(gamma=gamma), camera), SIZE, SIZE,
                             texture=tex)
        image.sum().backward()
        return image

    def per_vertex():
        gamma, = _leaf(params.gamma)
        image, _ = fl.render(fl.form(model, params.replace(gamma=gamma), camera), SIZE, SIZE,
                             texture=False)
        image.sum().backward()
        return image

    times = interleaved({"textured": textured, "per-vertex": per_vertex}, rounds=rounds,
                        warmup=2)
    a, b = textured(), per_vertex()
    check = f"same silhouette: {bool(torch.equal(a.gt(0).any(-1), b.gt(0).any(-1)))}"
    load = load_average()
    rows = []
    for name in ("textured", "per-vertex"):
        med, p10, p90 = quantiles(1e3 * times[name])
        rows.append(dict(benchmark="texture_render",
                         workload=f"v1 teaching, {SIZE}², {t_size}² texture, fwd+bwd",
                         threads=threads, impl=name, median_ms=med, p10_ms=p10, p90_ms=p90,
                         ratio=paired_ratio(times[name], times["textured"]), check=check,
                         load=load))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--texture", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--json", help="write the rows here (for run_all.py)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads[0])
    numba.set_num_threads(args.threads[0])
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
        new = []
        for batch in args.batch:
            for t_size in args.texture:
                new += run_lookup(threads, batch, t_size, args.rounds)
        new += run_shading(threads, args.rounds) + run_render(threads, args.rounds)
        for r in new:
            m, lo, hi = r["ratio"]
            print(f"{r['benchmark']:>16} {r.get('stage', ''):>16} {r['workload']:>34} thr "
                  f"{threads} {r['impl']:>11}: {r['median_ms']:8.2f} ms [{r['p10_ms']:.2f}, "
                  f"{r['p90_ms']:.2f}], ÷ first {m:6.2f} [{lo:.2f}, {hi:.2f}]; {r['check']}; "
                  f"load {r['load']:.2f}", flush=True)
        rows += new
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh)
    return rows


if __name__ == "__main__":
    main()
