"""ModelExplorer: the update one slider move triggers, without a browser, interleaved.

Workload: ``facelab.widgets.ModelExplorer`` on the built-in model (teaching resolution,
``--version`` of the generator, default 1) with a 256² image, on one thread (Numba and
torch), the goal being <= 50 ms per move. Each round moves every kind of control once, the
way a slider drag does (``slider.value = x``, alternating between two values so every move
changes something), which runs the widget's own observer: parameters from the sliders, ``form``,
``render``, the JPEG of the image and the 3D view's buffers.

* ``identity`` (``id_0``), ``expression`` (a named-expression slider), ``head yaw``: the
  geometry path (vertices, normals, rasterization);
* ``albedo`` (``albedo_0``), ``SH coefficient`` (``sh_1_r``): the appearance path (the
  geometry's fragments reused, re-shading only);
* ``light direction`` (azimuth): rewrites the 27 SH sliders, then the appearance path;
* ``form + render only``: the explorer's ``_evaluate(geometry=True)`` alone, the compute
  share of a geometry move (no widget traffic);
* ``form + per-vertex render`` (models with albedo texture maps, which the explorer paints
  per pixel): ``fl.render`` with the per-vertex colours instead, what the untextured image
  costs (for comparison).

Reported: median wall ms [p10, p90] per kind, whether the median and the p90 meet the 50 ms
budget, the median CPU time of the move's thread (``time.thread_time``: the move's cost
without the waits a loaded machine adds; on an idle core wall and CPU time agree), and the
load average. Correctness beside the timing: after the last move the image
shown equals an independent ``fl.render(fl.form(model, explorer.face_params(), camera))``
(textured for a model with maps, clamped to [0, 1]).

Usage: python benchmarks/bench_explorer.py [--rounds 25] [--size 256] [--version 1]
       [--resolution teaching] [--threads 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import facelab as fl  # first: it picks Numba's threading layer before any kernel runs

BUDGET_MS = 50.0


def _moves(explorer) -> dict:
    """name -> a function that moves one control to its other value (one slider move)."""
    sliders, light = explorer.sliders, explorer.light
    expr = next((k for k in sliders if k.startswith("expr_")), None)

    def toggle(control, a, b):
        def move():
            control.value = b if control.value == a else a
        return move

    moves = {"identity": toggle(sliders["id_0"], -0.8, 0.8)}
    if expr is not None:
        moves["expression"] = toggle(sliders[expr], 0.2, 1.0)
    moves["head yaw"] = toggle(sliders["yaw"], -20.0, 20.0)
    if "albedo_0" in sliders:
        moves["albedo"] = toggle(sliders["albedo_0"], -0.8, 0.8)
    moves["SH coefficient"] = toggle(sliders["sh_1_r"], -0.2, 0.2)
    moves["light direction"] = toggle(light["azimuth"], -30.0, 30.0)
    moves["form + render only"] = lambda: explorer._evaluate(geometry=True)
    if getattr(explorer, "textured", False):  # the per-vertex (untextured) image instead
        import torch

        s = explorer.image_size
        camera, _ = fl.default_camera(1, s, s)

        def per_vertex():
            with torch.no_grad():
                formed = fl.form(explorer.model, explorer.face_params(), camera)
                fl.render(formed, s, s, colors=formed.colors.clamp(0, 1))
        moves["form + per-vertex render"] = per_vertex
    return moves


def _check(explorer) -> str:
    """The image shown equals an independent form + render of the sliders' parameters."""
    import torch

    from facelab.widgets import static

    params = explorer.face_params()
    s = explorer.image_size
    camera, _ = fl.default_camera(1, s, s)
    with torch.no_grad():
        formed = fl.form(explorer.model, params, camera)
        background = torch.tensor(static.BACKGROUND)
        if getattr(explorer, "textured", False):  # the model's own maps, per pixel
            image, _ = fl.render(formed, s, s, background=background)
            image = image.clamp(0, 1)
        else:
            image, _ = fl.render(formed, s, s, colors=formed.colors.clamp(0, 1),
                                 background=background)
    err = float((image[0] - torch.from_numpy(explorer.image)).abs().max())
    return f"max |diff| {err:.1e}" + (" ok" if err < 1e-5 else " MISMATCH")


def run(rounds: int, size: int, version: int, resolution: str, threads: int) -> list[dict]:
    import numba
    import torch
    from timing import interleaved, load_average, quantiles

    from facelab.widgets.explorer import ModelExplorer

    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
    model = fl.load_model("synthetic", resolution, version=version)
    explorer = ModelExplorer(model, image_size=size)
    cpu: dict = {}

    def cpu_timed(name, fn):  # the thread's CPU time too: what the move costs when not waiting
        def timed():
            t = time.thread_time()
            fn()
            cpu.setdefault(name, []).append(time.thread_time() - t)
        return timed

    warmup = 3
    times = interleaved({k: cpu_timed(k, f) for k, f in _moves(explorer).items()},
                        rounds=rounds, warmup=warmup)
    check = _check(explorer)
    load = load_average()
    rows = []
    for name, t in times.items():
        med, p10, p90 = (1e3 * q for q in quantiles(t))
        rows.append({"workload": f"{model.name} v{version} (V={model.num_vertices}), {size}²",
                     "move": name, "threads": threads, "median_ms": med, "p10_ms": p10,
                     "p90_ms": p90, "cpu_median_ms": 1e3 * float(np.median(cpu[name][warmup:])),
                     "within_budget": med <= BUDGET_MS, "p90_within_budget": p90 <= BUDGET_MS,
                     "check": check, "load": load})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--version", type=int, default=1, help="synthetic model generator version")
    ap.add_argument("--resolution", default="teaching")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    rows = run(args.rounds, args.size, args.version, args.resolution, args.threads)
    print(f"ModelExplorer update per slider move, {rows[0]['workload']}, {args.threads} "
          f"thread(s), {args.rounds} interleaved rounds, load {rows[0]['load']:.1f}; "
          f"budget {BUDGET_MS:.0f} ms")
    for r in rows:
        verdict = "ok" if r["within_budget"] else "OVER"
        print(f"  {r['move']:<25} {r['median_ms']:7.1f} ms [{r['p10_ms']:.1f}, "
              f"{r['p90_ms']:.1f}]  median {verdict}"
              f"{'' if r['p90_within_budget'] else ', p90 over'};  CPU {r['cpu_median_ms']:.1f} ms")
    print(f"  check: {rows[0]['check']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh)


if __name__ == "__main__":
    main()
