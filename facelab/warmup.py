"""Compile the Numba kernels ahead of use: ``python -m facelab.warmup [--float64]``.

Every compiled op caches its machine code on disk (``njit(cache=True)``), but only once a
kernel has run for a given signature. Without this step the user's first call pays the
compilation: a cold first ``rasterize`` took 7.5 s and the first fit 10.9 s (issue 15). The
Makefile runs this module during setup (``make demo`` / ``make test``), so the first call
finds the cache.

It drives the public image-formation path on the built-in teaching model — ``form`` (vertex
normals, SH shading), ``render`` (rasterize, interpolate), ``vertex_visibility``, the
photometric losses (separate and fused) and the texture lookup of textured rendering
(``sample_texture``) with their backward passes — at batch 1 and 2 and on
1 and all threads, plus the rasterizer's launch plans that only larger calls reach (row
bands, a batch over the threads, the parallel vertex pass of a large batch), so both the
serial and the parallel variants of every kernel get compiled with exactly the signatures
the library calls them with.
"""

from __future__ import annotations

import argparse
import math
import time

import numba
import torch

from facelab.face_params import FaceParams
from facelab.formation import default_camera, form, render
from facelab.lighting import random_sh
from facelab.losses import photometric_loss, shaded_photometric_loss
from facelab.model.registry import load_model
from facelab.raster import rasterize, vertex_visibility
from facelab.rotations import head_rotation
from facelab.texture import sample_texture

__all__ = ["warm_up"]


def _one_pass(model, batch: int, dtype: torch.dtype, size: int = 64) -> None:
    """Form, render and differentiate the losses once (all kernels, both directions)."""
    g = torch.Generator().manual_seed(0)
    camera, translation = default_camera(batch, size, size, dtype=dtype)
    params = FaceParams(
        id=0.5 * torch.randn(batch, model.n_id, generator=g, dtype=dtype),
        exp=0.3 * torch.randn(batch, model.n_exp, generator=g, dtype=dtype),
        albedo=0.5 * torch.randn(batch, model.n_albedo, generator=g, dtype=dtype),
        rotation=head_rotation(0.2 * torch.randn(batch, 3, generator=g, dtype=dtype)),
        translation=translation, gamma=random_sh(batch, generator=g, dtype=dtype),
        jaw=torch.zeros(batch, 3, dtype=dtype) if model.jaw_joint is not None else None)
    params = params.replace(id=params.id.requires_grad_(), gamma=params.gamma.requires_grad_())
    formed = form(model, params, camera)
    image, _ = render(formed, size, size)
    target = image.detach().flip(-1)
    positions = formed.screen_verts[..., :2]
    visible = vertex_visibility(formed.screen_verts.detach(), model.faces, size, size)
    loss = (photometric_loss(target, positions, formed.colors, visible)
            + shaded_photometric_loss(target, positions, formed.albedo, formed.normals,
                                      params.gamma, visible) + image.mean())
    loss.backward()
    with torch.no_grad():  # the fused op's forward-only kernel (evaluation, inference)
        shaded_photometric_loss(target, positions, formed.albedo, formed.normals, params.gamma,
                                visible)
    rasterize(formed.screen_verts.detach(), model.faces, size, size, perspective_correct=True)
    # textured rendering's lookup, on 128² pixels per image: enough for the parallel variants
    texture = torch.rand(batch, 16, 16, 3, generator=g, dtype=dtype).requires_grad_()
    uv = torch.rand(batch, 128, 128, 2, generator=g, dtype=dtype).requires_grad_()
    sample_texture(texture, uv, uv[..., 0].detach() > 0.2).sum().backward()


def _raster_launch_plans(model, dtype: torch.dtype) -> None:
    """The rasterizer's launch plans (:func:`facelab.raster.cpu._launch_plan`) that
    :func:`_one_pass`'s small images do not reach: one large image split by faces between
    the caller and a helper thread (the merge), a batch split over the threads, and the
    parallel vertex pass of a batch of many vertices."""
    from facelab.raster.cpu import PARALLEL_MIN_PIXELS, PARALLEL_MIN_VERTICES
    from facelab.raster.helpers import compile_hand_over

    compile_hand_over(torch.empty(0, dtype=dtype).numpy().dtype.type)

    side = math.isqrt(PARALLEL_MIN_PIXELS) + 1  # a parallel launch from one image on
    camera, translation = default_camera(1, side, side, dtype=dtype)
    with torch.no_grad():
        screen = form(model, FaceParams(translation=translation), camera).screen_verts
    many = -(-PARALLEL_MIN_VERTICES // model.num_vertices)  # items for a parallel vertex pass
    for batch, size in ((1, side), (2, side), (many, 8)):
        for perspective in (False, True):
            rasterize(screen.expand(batch, -1, -1).contiguous(), model.faces, size, size,
                      perspective_correct=perspective)


def warm_up(dtypes=(torch.float32,), verbose: bool = False) -> float:
    """Run every Numba kernel once per dtype, batch size (1, 2) and thread count (1, all).

    dtypes: torch float dtypes to compile for (float32: the demo and the fitter; float64: the
    tests and gradchecks). Returns the seconds it took (compilation or cache loading).
    """
    t0 = time.perf_counter()
    model = load_model("synthetic", resolution="teaching")
    threads = numba.get_num_threads()
    try:
        for n_threads in sorted({1, threads}):
            numba.set_num_threads(n_threads)
            for dtype in dtypes:
                m = model.to(dtype=dtype)
                for batch in (1, 2):
                    _one_pass(m, batch, dtype)
                    if verbose:
                        print(f"  {dtype!s:>13} batch {batch} threads {n_threads}: "
                              f"{time.perf_counter() - t0:5.1f} s", flush=True)
                _raster_launch_plans(m, dtype)
    finally:
        numba.set_num_threads(threads)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m facelab.warmup",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--float64", action="store_true", help="also compile the float64 kernels")
    args = ap.parse_args(argv)
    dtypes = (torch.float32, torch.float64) if args.float64 else (torch.float32,)
    print("facelab: compiling the Numba kernels (cached for later runs) ...", flush=True)
    seconds = warm_up(dtypes, verbose=True)
    print(f"facelab: kernels ready in {seconds:.1f} s")


if __name__ == "__main__":
    main()
