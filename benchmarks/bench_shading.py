"""Benchmark: compiled SH shading (MoFA Eq. 4) + dense photometric loss (MoFA Eq. 8).

Workload (DESIGN "Speed"): forward + backward of ``sh_shade`` followed by the per-vertex
photometric loss on the built-in model at "bfm" scale (38k vertices, 3DDFA_V2's BFM crop;
``--random`` for random vertices), a 224² image, batch 1 and 16. Gradients
flow to albedo, normals, lighting and screen positions (the image is data, no gradient; pass
``--image-grad`` to include it). Reported: median ms per image, and the ratio to

* ``numpy``: the NumPy reference (``facelab.shading.reference`` + ``facelab.vertex_losses.
  reference``) chained by hand, forward + backward;
* ``torch``: the peer — plain torch autograd (``facelab.shading.torch_ref.sh_shade_torch``
  + a bilinear gather written with torch ops).

``--profile-step`` additionally times each stage of a MoFA-like training step in isolation
(shape → vertex normals → shading → photometric loss, forward + backward) on the built-in
model at "bfm" scale, to decide whether vertex normals need a compiled kernel.

Run:  .venv/bin/python benchmarks/bench_shading.py [--threads 1] [--batch 1 16] [--profile-step]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
import torch

from facelab.shading import reference as shade_ref
from facelab.shading import sh_shade
from facelab.shading.torch_ref import sh_shade_torch as torch_sh_shade
from facelab.vertex_losses import photometric_per_image
from facelab.vertex_losses import reference as photo_ref

EPS = 1e-6


def make_inputs(batch: int, n_vert: int, size: int, seed: int = 0, model=None):
    """Shading and loss inputs for ``batch`` images.

    With ``model`` (a MorphableModel): its mean face, area-weighted normals, projected
    orthographically onto the central 80 % of the image (y flipped: model y up, screen y
    down), visibility = front-facing (n_z > 0) — a realistic, spatially coherent vertex order.
    Without: n_vert random vertices over the central image region, ~65 % visible.
    """
    g = torch.Generator().manual_seed(seed)
    if model is not None:
        from facelab.normals.torch_ref import vertex_normals_torch as vertex_normals

        verts = model.mean_shape[None].expand(batch, -1, -1).float()
        n_vert = verts.shape[1]
        normals = vertex_normals(verts, model.faces).contiguous()
        extent = float((verts[0, :, :2].amax(0) - verts[0, :, :2].amin(0)).max())
        scale = 0.8 * size / extent
        positions = torch.stack([size / 2 + scale * verts[..., 0],
                                 size / 2 - scale * verts[..., 1]], dim=-1).contiguous()
        visibility = normals[..., 2] > 0
        albedo = model.mean_albedo[None].expand(batch, -1, -1).float().contiguous()
    else:
        normals = torch.nn.functional.normalize(torch.randn(batch, n_vert, 3, generator=g), -1)
        normals[..., 2] = normals[..., 2].abs()
        positions = size * (0.2 + 0.6 * torch.rand(batch, n_vert, 2, generator=g))
        visibility = torch.rand(batch, n_vert, generator=g) < 0.65
        albedo = 0.3 + 0.5 * torch.rand(batch, n_vert, 3, generator=g)
    gamma = 0.1 * torch.randn(batch, 9, 3, generator=g)
    gamma[:, 0] += 0.8
    image = torch.rand(batch, size, size, 3, generator=g)
    return dict(albedo=albedo, normals=normals, gamma=gamma, positions=positions,
                visibility=visibility, image=image)


def _leaves(inp, image_grad):
    out = {k: v.clone() for k, v in inp.items()}
    for k in ("albedo", "normals", "gamma", "positions"):
        out[k].requires_grad_()
    if image_grad:
        out["image"].requires_grad_()
    return out


def step_compiled(inp):
    colors = sh_shade(inp["albedo"], inp["normals"], inp["gamma"])
    loss = photometric_per_image(inp["image"], inp["positions"], colors, inp["visibility"],
                                 eps=EPS)
    loss.sum().backward()


def _torch_bilinear(image, positions):
    """Peer: bilinear sample (facelab convention, border clamp) with torch ops: (B,V,3), inside."""
    n_img, height, width = image.shape[:3]
    x, y = positions[..., 0] - 0.5, positions[..., 1] - 0.5
    inside = ((positions[..., 0] >= 0) & (positions[..., 0] < width) & (positions[..., 1] >= 0)
              & (positions[..., 1] < height))
    x0f, y0f = torch.floor(x.detach()), torch.floor(y.detach())
    fx, fy = (x - x0f)[..., None], (y - y0f)[..., None]
    x0, x1 = x0f.clamp(0, width - 1).long(), (x0f + 1).clamp(0, width - 1).long()
    y0, y1 = y0f.clamp(0, height - 1).long(), (y0f + 1).clamp(0, height - 1).long()
    flat = image.reshape(n_img, height * width, 3)

    def gather(yy, xx):
        return torch.gather(flat, 1, (yy * width + xx)[..., None].expand(-1, -1, 3))

    top = (1 - fx) * gather(y0, x0) + fx * gather(y0, x1)
    bottom = (1 - fx) * gather(y1, x0) + fx * gather(y1, x1)
    return (1 - fy) * top + fy * bottom, inside


def step_torch(inp):
    colors = torch_sh_shade(inp["albedo"], inp["normals"], inp["gamma"])
    sample, inside = _torch_bilinear(inp["image"], inp["positions"])
    w = (inp["visibility"] & inside).to(colors.dtype)
    err = torch.sqrt(((sample - colors) ** 2).sum(-1) + EPS * EPS) - EPS
    count = w.sum(-1)
    loss = (w * err).sum(-1) / count.clamp_min(1)
    loss.sum().backward()


def step_numpy(inp, image_grad):
    a, n, g = (inp[k].detach().numpy() for k in ("albedo", "normals", "gamma"))
    img, pos = inp["image"].detach().numpy(), inp["positions"].detach().numpy()
    w = inp["visibility"].numpy().astype(a.dtype)
    colors = shade_ref.sh_shade_forward(a, n, g)
    _, count = photo_ref.photometric_forward(img, pos, colors, w, EPS)
    grad_loss = np.ones(a.shape[0], dtype=a.dtype)
    _, _, grad_colors = photo_ref.photometric_backward(img, pos, colors, w, EPS, count, grad_loss,
                                                       (image_grad, True, True))
    shade_ref.sh_shade_backward(a, n, g, grad_colors)


def median_ms(fn, inp, repeats, image_grad, best=False):
    """Median (or with ``best`` the minimum) wall time in ms of fn(fresh leaf copies of inp),
    over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        leaves = _leaves(inp, image_grad) if inp else None
        t0 = time.perf_counter()
        fn(leaves)
        times.append(time.perf_counter() - t0)
    return 1e3 * (min(times) if best else statistics.median(times))


def bench(batches, threads, n_vert, size, repeats, image_grad, model):
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    where = f"built-in model '{model.name}'" if model is not None else "random vertices"
    n_vert = model.num_vertices if model is not None else n_vert
    print(f"SH shading + photometric loss, fwd+bwd, V={n_vert} ({where}), {size}x{size}, "
          f"{threads} thread(s), image grad={image_grad}")
    print("ms per image, median over runs [best run in brackets]; ratios of medians [of bests]")
    print(f"{'batch':>5} {'compiled':>18} {'numpy reference':>18} {'torch autograd':>18} "
          f"{'x numpy':>14} {'x torch':>14}")
    for batch in batches:
        inp = make_inputs(batch, n_vert, size, model=model)
        step_compiled(_leaves(inp, image_grad))  # warm-up (Numba cache load)
        rows = []
        for fn, reps in ((step_compiled, repeats), (step_numpy_grad(image_grad), 5),
                         (step_torch, max(5, repeats // 3))):
            med = median_ms(fn, inp, reps, image_grad) / batch
            best = median_ms(fn, inp, reps, image_grad, best=True) / batch
            rows.append((med, best))
        (ours, ours_b), (ref, ref_b), (peer, peer_b) = rows
        print(f"{batch:>5} {ours:>9.2f} [{ours_b:>6.2f}] {ref:>9.2f} [{ref_b:>6.2f}] "
              f"{peer:>9.2f} [{peer_b:>6.2f}] {ref / ours:>6.1f} [{ref_b / ours_b:>5.1f}] "
              f"{peer / ours:>6.1f} [{peer_b / ours_b:>5.1f}]")


def step_numpy_grad(image_grad):
    return lambda inp: step_numpy(inp, image_grad)


def profile_step(batch, threads, repeats):
    """Each stage of a MoFA-like step in isolation, forward + backward, ms per image."""
    from facelab.model.registry import load_model
    from facelab.normals.torch_ref import vertex_normals_torch as vertex_normals

    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    model = load_model("synthetic", "bfm", version=1)
    g = torch.Generator().manual_seed(0)
    alpha = torch.randn(batch, model.n_id, generator=g)
    delta = torch.randn(batch, model.n_exp, generator=g)
    beta = torch.randn(batch, model.n_albedo, generator=g)
    verts = model.shape(alpha, delta).detach()
    normals = vertex_normals(verts, model.faces).detach()
    base = make_inputs(batch, model.num_vertices, 224, model=model)

    def t(fn):
        fn()  # warm-up
        return median_ms(lambda _: fn(), {}, repeats, False) / batch

    def shape_stage():
        a = alpha.clone().requires_grad_()
        d = delta.clone().requires_grad_()
        model.shape(a, d).backward(torch.ones_like(verts))

    def albedo_stage():
        b = beta.clone().requires_grad_()
        model.albedo(b).backward(torch.ones_like(verts))

    def normals_stage():
        v = verts.clone().requires_grad_()
        vertex_normals(v, model.faces).backward(torch.ones_like(verts))

    def shade_stage():
        n = normals.clone().requires_grad_()
        gm = base["gamma"].clone().requires_grad_()
        a = base["albedo"].clone().requires_grad_()
        sh_shade(a, n, gm).backward(torch.ones_like(verts))

    def photo_stage():
        p = base["positions"].clone().requires_grad_()
        c = base["albedo"].clone().requires_grad_()
        photometric_per_image(base["image"], p, c, base["visibility"]).sum().backward()

    def project_stage():
        v = verts.clone().requires_grad_()
        (v[..., :2] * 0.9 + 112.0).backward(torch.ones_like(verts[..., :2]))

    shade_stage()
    photo_stage()
    print(f"MoFA-like step at 'bfm' scale (V={model.num_vertices}, F={model.num_faces}), "
          f"batch {batch}, {threads} thread(s): fwd+bwd ms per image, each stage alone")
    for name, fn in (("shape (id+exp bases)", shape_stage), ("albedo basis", albedo_stage),
                     ("vertex normals (torch)", normals_stage),
                     ("projection (affine)", project_stage),
                     ("sh_shade (compiled)", shade_stage),
                     ("photometric (compiled)", photo_stage)):
        print(f"  {name:<24} {t(fn):8.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--vertices", type=int, default=38_000, help="with --random")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--image-grad", action="store_true")
    parser.add_argument("--random", action="store_true",
                        help="random vertices instead of the built-in 'bfm' model")
    parser.add_argument("--profile-step", action="store_true")
    args = parser.parse_args()
    # Set the thread pools before anything runs torch/Numba work: changing them after the
    # model is built leaves idle pool threads competing for the cores (3-10x slower here).
    torch.set_num_threads(args.threads[0])
    numba.set_num_threads(args.threads[0])
    model = None
    if not args.random:
        from facelab.model.registry import load_model

        model = load_model("synthetic", "bfm", version=1)
    for threads in args.threads:
        bench(args.batch, threads, args.vertices, args.size, args.repeats, args.image_grad,
              model)
        if args.profile_step:
            for batch in args.batch:
                profile_step(batch, threads, max(3, args.repeats // 3))


if __name__ == "__main__":
    main()
