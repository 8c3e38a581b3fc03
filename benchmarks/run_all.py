"""Run every benchmark, each in a fresh process, and write one markdown table (RESULTS.md).

The protocol (README.md): a fresh process per tool and thread count (1 and 2), warm-ups,
implementations interleaved round by round (>= 20 timed rounds), medians with p10/p90, ratios
to a named peer paired per round in the same run, a correctness check beside each timing,
and the load average at the time. The interleaved benchmarks write JSON rows that become the
tables; the older benchmarks (sequential timing) are run too and their output is appended
verbatim.

Usage: python benchmarks/run_all.py [--quick] [--out benchmarks/RESULTS.md] [--skip-legacy]
       [--sim3dr DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

INTERLEAVED_TEXT = {"bench_fwpdc.py"}  # interleaved rounds, but reported verbatim as text
LEGACY = [  # (script, arguments): sequential timing (unless above), reported verbatim
    ("bench_fwpdc.py", ["--threads", "1"]),
    ("bench_normals.py", ["--threads", "1", "2"]),
    ("bench_tddfa_inference.py", ["--threads", "1"]),
    ("bench_mofa_inference.py", ["--threads", "1"]),
]


def _run(script: str, args: list[str], timeout: int = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    return subprocess.run([sys.executable, str(HERE / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _json_rows(script: str, args: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        proc = _run(script, [*args, "--json", str(out)])
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{script} failed")
        print(proc.stdout, flush=True)
        return json.loads(out.read_text())


def _r(r) -> str:
    m, lo, hi = r
    return f"{m:.2f} [{lo:.2f}, {hi:.2f}]"


def _ms(row) -> str:
    return f"{row['median_ms']:.2f} [{row['p10_ms']:.2f}, {row['p90_ms']:.2f}]"


def raster_table(rows: list[dict]) -> list[str]:
    lines = ["| workload | threads | facelab kernel ms | facelab API ms | Sim3DR ms | bbox-c ms "
             "| Open3D ms | Sim3DR ÷ kernel | Sim3DR ÷ API | bbox-c ÷ kernel | bbox-c ÷ API "
             "| Open3D ÷ API | check | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["workload"], r["threads"]), {})[r["impl"]] = r
    for (workload, threads), g in groups.items():
        k, a = g["kernel"], g["api"]
        c, o, s = g.get("bbox-c"), g.get("open3d"), g.get("sim3dr")
        lines.append(
            f"| {workload} | {threads} | {_ms(k)} | {_ms(a)} | {_ms(s) if s else '—'} | "
            f"{_ms(c) if c else '—'} | {_ms(o) if o else '—'} | "
            f"{_r(s['ratio']) if s else '—'} | {_r(s['ratio_api']) if s else '—'} | "
            f"{_r(c['ratio']) if c else '—'} | {_r(c['ratio_api']) if c else '—'} | "
            f"{_r(o['ratio_api']) if o else '—'} | {k['check']} | {k['load']:.1f} |")
    return lines


def raster_threads_table(rows: list[dict]) -> list[str]:
    """One image on 2 threads against 1, the same process, paired per round."""
    lines = ["| workload | busy processes | kernel 1 thread ms | kernel 2 threads ms "
             "| 1 thread ÷ 2 threads (kernel) | API 1 thread ÷ 2 threads | check | load |",
             "|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        if r["batch"] == 1 and r["impl"] in ("kernel", "api"):
            groups.setdefault((r["workload"], r["busy"]), {})[(r["impl"], r["threads"])] = r
    for (workload, busy), g in groups.items():
        k1, k2, a2 = g[("kernel", 1)], g[("kernel", 2)], g[("api", 2)]
        lines.append(f"| {workload} | {busy} | {_ms(k1)} | {_ms(k2)} | "
                     f"{_r(k2['speedup_vs_1_thread'])} | {_r(a2['speedup_vs_1_thread'])} | "
                     f"{k2['check']} | {k2['load']:.1f} |")
    return lines


def shaded_table(rows: list[dict]) -> list[str]:
    lines = ["| workload | threads | fused ms/image | NumPy ÷ fused | two ops ÷ fused "
             "| plain torch ÷ fused | check | load |", "|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["workload"], r["threads"]), {})[r["impl"]] = r
    for (workload, threads), g in groups.items():
        f = g["fused"]
        lines.append(f"| {workload} | {threads} | {_ms(f)} | {_r(g['numpy']['ratio'])} | "
                     f"{_r(g['chain']['ratio'])} | {_r(g['torch']['ratio'])} | {f['check']} | "
                     f"{f['load']:.1f} |")
    return lines


def texture_tables(rows: list[dict]) -> list[str]:
    lines = ["| workload | stage | threads | facelab ms/image | grid_sample ÷ facelab "
             "| NumPy ÷ facelab | check (facelab; grid_sample) | load |",
             "|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        if r["benchmark"] == "texture_lookup":
            groups.setdefault((r["workload"], r["stage"], r["threads"]), {})[r["impl"]] = r
    for (workload, stage, threads), g in groups.items():
        f = g["facelab"]
        lines.append(f"| {workload} | {stage} | {threads} | {_ms(f)} | "
                     f"{_r(g['grid_sample']['ratio'])} | {_r(g['numpy']['ratio'])} | "
                     f"{f['check']}; {g['grid_sample']['check']} | {f['load']:.1f} |")
    lines += ["", "| workload | threads | implementation | ms | ÷ first row | check | load |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["benchmark"] in ("texture_shading", "texture_render"):
            lines.append(f"| {r['workload']} | {r['threads']} | {r['impl']} | {_ms(r)} | "
                         f"{_r(r['ratio'])} | {r['check']} | {r['load']:.1f} |")
    return lines


def threads_table(rows: list[dict]) -> list[str]:
    import numpy as np

    def q(x):
        return f"{np.median(x):.2f} [{np.percentile(x, 10):.2f}, {np.percentile(x, 90):.2f}]"

    lines = ["| Numba layer | torch / Numba threads | inference before ms | after ms "
             "| after ÷ before | alternating with rasterize ÷ before | same output | load |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['threads']} / {r['numba_threads']} | "
                     f"{q(r['before_ms'])} | {q(r['after_ms'])} | {r['ratio']:.2f} | "
                     f"{r['ratio_alternating']:.2f} | {r['same_output']} | {r['load']:.1f} |")
    return lines


def explorer_table(rows: list[dict]) -> list[str]:
    lines = ["| workload | slider move | threads | ms per move | <= 50 ms (median / p90) "
             "| check | load |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = f"{'yes' if r['within_budget'] else 'no'} / "
        ok += "yes" if r["p90_within_budget"] else "no"
        lines.append(f"| {r['workload']} | {r['move']} | {r['threads']} | {_ms(r)} | {ok} | "
                     f"{r['check']} | {r['load']:.1f} |")
    return lines


def fit_table(rows: list[dict]) -> list[str]:
    lines = ["| workload | implementation | wall ms | CPU ms | ÷ autograd reference | check "
             "| load |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["ratio"] is None else _r(r["ratio"])
        lines.append(f"| {r['workload']} | {r['impl']} | {_ms(r)} | {r['cpu_ms']:.1f} | "
                     f"{ratio} | {r['check']} | {r['load']:.1f} |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 rounds instead of 25")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--skip-legacy", action="store_true", help="only the interleaved ones")
    ap.add_argument("--sim3dr", metavar="DIR",
                    help="also time Sim3DR's kernel, compiled from this checkout of 3DDFA_V2's "
                         "Sim3DR folder (see bench_raster_peers.py); never inside the repository")
    args = ap.parse_args(argv)
    sim3dr = ["--sim3dr", args.sim3dr] if args.sim3dr else []
    rounds = ["--rounds", "20" if args.quick else "25"]
    start = os.getloadavg()[0]
    raster, shaded, texture = [], [], []
    for threads in ("1", "2"):  # a fresh process per tool and thread count
        raster += _json_rows("bench_raster_peers.py",
                             ["--threads", threads, *rounds, "--shuffle", *sim3dr])
        shaded += _json_rows("bench_shaded_loss.py", ["--threads", threads, *rounds])
        texture += _json_rows("bench_texture.py", ["--threads", threads, *rounds])
    split = []  # one image on 2 threads vs 1 in the same process, idle and beside 1 busy one
    for busy in ("0", "1"):
        split += _json_rows("bench_raster_peers.py", ["--threads", "1", "2", *rounds,
                                                      "--shuffle", "--no-open3d", "--busy", busy])
    threads_rows = _json_rows("bench_threads.py", ["--calls", "20" if args.quick else "25"])
    explorer = _json_rows("bench_explorer.py", ["--threads", "1", *rounds])
    fit = _json_rows("bench_fit.py", [*rounds, "--first", rounds[1]])
    legacy = []
    if not args.skip_legacy:
        for script, extra in LEGACY:
            proc = _run(script, extra)
            legacy.append((script, extra, proc.stdout + (proc.stderr[-2000:] if proc.returncode
                                                          else "")))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results", "",
        f"Written by `benchmarks/run_all.py` at {now}, commit `{commit}`, {os.cpu_count()} "
        f"CPUs, load average {start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end. "
        "Median [p10, p90] over interleaved rounds; ratios paired per round (> 1: facelab "
        "faster). Protocol: `benchmarks/README.md`. Timings are comparable only within one "
        "run: on a shared machine the load inflates everything.", "",
        "## Rasterize (1 item, float32; Sim3DR = 3DDFA_V2's kernel built from its source when "
        "`--sim3dr` is given; bbox-c = serial bounding-box C rasterizer, the Sim3DR-class "
        "baseline)", "", *raster_table(raster), "",
        "## Rasterize one image on 2 threads vs 1 (the face split between the caller and a "
        "helper thread, kept only while it pays; same process, paired per round; busy "
        "processes: spinning Python loops run meanwhile, one of the 2 cores taken)", "",
        *raster_threads_table(split), "",
        "## SH shading + photometric loss, forward + backward (fused op vs the NumPy "
        "reference, the two separate compiled ops and plain torch)", "",
        *shaded_table(shaded), "",
        "## Textured rendering: bilinear texture lookup (vs grid_sample, same convention, and "
        "the NumPy reference), per-vertex vs per-pixel shading, textured vs per-vertex render",
        "", *texture_tables(texture), "",
        "## Thread coexistence: torch inference (3DDFA_V2 MobileNet, batch 1) before and after "
        "a Numba kernel", "", *threads_table(threads_rows), "",
        "## ModelExplorer: one slider move, no browser (goal <= 50 ms on one thread at 256²)",
        "", *explorer_table(explorer), "",
        "## A warm photo fit (goal <= 250 ms) and the first rasterize in a fresh process "
        "(goal <= 300 ms)", "", *fit_table(fit), "",
    ]
    for script, extra, text in legacy:
        how = "interleaved rounds" if script in INTERLEAVED_TEXT else "sequential timing"
        lines += [f"## {script} {' '.join(extra)} ({how})", "", "```",
                  text.rstrip(), "```", ""]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
