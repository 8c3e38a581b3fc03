"""The experiments behind notebook 03's Tables 3 / 4 and Figs. 3 / 7, as one re-runnable script.

    python -m facelab.methods.tddfa.experiments --out DIR            # the committed run
    python -m facelab.methods.tddfa.experiments --out DIR --steps 40 --seeds 0 1 --options fWPDC

What is tested, and how fairly (3DDFA_V2 Sec. 2.2, Algorithm 1; Sec. 2.4, Table 4):

* **Meta-joint vs its parts.** Meta-joint (Algorithm 1 with per-branch Adam state, weights
  synchronised to the kept branch; k meta-train batches and a disjoint meta-test batch per
  block) spends two gradient steps per advanced step, so its baselines get the same number
  of gradient steps: ``fWPDC (2x steps)`` and ``VDC (2x steps)`` (and ``fWPDC`` at the same
  number of *advanced* steps). ``Meta-joint, random selector`` keeps a branch by a fair coin:
  it separates the value of the VDC selection (line 10) from the doubled compute.
* **Short-video synthesis vs stability** on talking-head clips with real head and
  expression motion (:func:`facelab.methods.tddfa.corpus.build_motion_videos`), with the
  ground truth and static predictors as reference rows.
* Every option is trained for every seed on the same corpus; differences are *paired* by
  seed (a seed fixes the initial weights, which all options of that seed share), summarised
  by the mean paired difference and its 95 % t confidence interval.
* Curves (Fig. 3): the mean VDC of the first 128 held-out faces against the gradient steps
  spent. Selection trace (Fig. 7): the kept branch per look-ahead block.

Scale: 48 x 48 crops, a quarter-width MobileNet, batch 18 (6 clips of 3 frames for svs),
k = 10, 1,200 training stills; the paper trains MobileNet v1 at 120 x 120 for ~40 k
iterations with k = 100. Runs are sequential on one thread; the committed run's wall time
is stored in the output.
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from facelab import metrics
from facelab.atomic_io import atomic_path, refuse_existing, refuse_package_path, write_json
from facelab.command_errors import CommandParser, check_count
from facelab.methods.tddfa import evaluation as ev
from facelab.methods.tddfa.corpus import TDDFA_MODEL_VERSION
from facelab.methods.tddfa.params import fit_param_stats
from facelab.methods.tddfa.reconstruct import landmarks_screen
from facelab.methods.tddfa.training import TrainConfig, train_tddfa
from facelab.model.provenance import model_record

__all__ = ["COMMAND", "Scale", "baseline_rows", "options", "paired_difference", "run",
           "summary_tables", "main"]

COMMAND = "python -m facelab.methods.tddfa.experiments --out DIR"
"""The command that regenerates the committed ``results/experiments.json``."""

RESULTS = Path(__file__).resolve().parent / "results" / "experiments.json"
"""The committed output of :data:`COMMAND` (read by notebook 03)."""


@dataclass(frozen=True)
class Scale:
    """Sizes of the experiment. steps: *advanced* steps of the short options (meta-joint's
    blocks advance one step per two gradient steps); the "2x" options get 2 * steps.
    optimizer: "adam" (per-branch state) or "sgd" (Algorithm 1 line 8's plain steps, for
    every option)."""

    steps: int = 300
    batch_size: int = 18
    width: float = 0.25
    look_ahead: int = 10
    lr: float = 2e-3
    eval_every: int = 60
    eval_faces: int = 128
    optimizer: str = "adam"


def options(scale: Scale) -> dict[str, TrainConfig]:
    """The rows of the fair meta-joint test and of the stability test (name -> config)."""
    base = TrainConfig(loss="fwpdc", lrr=False, video=False, steps=scale.steps,
                       batch_size=scale.batch_size, width=scale.width, lr=scale.lr,
                       look_ahead=scale.look_ahead, eval_every=scale.eval_every,
                       optimizer=scale.optimizer)
    two = 2 * scale.steps
    return {
        "fWPDC": base,
        "fWPDC (2x steps)": replace(base, steps=two),
        "VDC (2x steps)": replace(base, loss="vdc", steps=two),
        "Meta-joint": replace(base, loss="meta_joint"),
        "Meta-joint, random selector": replace(base, loss="meta_joint", selector="random"),
        "fWPDC w/ svs (2x steps)": replace(base, steps=two, video=True),
    }


def _run_one(model, train, test, videos, cfg: TrainConfig, eval_faces: int) -> dict:
    held = {k: v[:eval_faces] for k, v in test.items()}
    res = train_tddfa(model, train, cfg, callback=ev._Silent(), eval_data=held)
    numbers = ev.evaluate(res.net, res.stats, model, test, videos)
    return {"seconds": res.seconds, "grad_steps": res.grad_steps, "choices": res.choices,
            "curve_steps": res.history.get("eval_grad_steps", []),
            "curve_vdc": res.history.get("eval_vdc", []), **numbers}


def baseline_rows(model, train: dict, test: dict, videos: dict) -> dict[str, dict]:
    """Trivial predictors on the same held-out data (no training, no seed).

    "mean face": the training corpus's mean parameters for every image and frame (a static
    predictor); "static: truth of frame 0": each clip's first true frame held (a predictor
    that never moves but starts exact); "ground truth": the true parameters.
    Returns name -> {"table1", "dense", "video_nme", "stability"} like :func:`evaluate`.
    """
    size = test["image"].shape[1]
    mean_p = fit_param_stats(train["params"].double()).mean.float()  # (62,)
    out = {}
    n, t = videos["params"].shape[:2]
    gt_v = videos["landmarks"]  # (n, t, 68, 2)

    def video_numbers(lm):  # lm: (n, t, 68, 2)
        return {"video_nme": float(metrics.nme(lm.flatten(0, 1), gt_v.flatten(0, 1)).mean()
                                   * 100),
                "stability": statistics.mean(metrics.stability(lm[i], gt_v[i]) * 100
                                             for i in range(n))}

    p = mean_p.expand(test["params"].shape[0], -1)
    lm = landmarks_screen(model, p, size)
    mean_v = landmarks_screen(model, mean_p.expand(n * t, -1), size).reshape(n, t, -1, 2)
    out["mean face"] = {"table1": ev.nme_by_yaw(lm, test["landmarks"], test["angles"][:, 1]),
                        "dense": float(ev.dense_nme(model, p, test["params"]).mean()),
                        **video_numbers(mean_v)}
    out["static: truth of frame 0"] = video_numbers(gt_v[:, :1].expand_as(gt_v).clone())
    gt_lm = landmarks_screen(model, test["params"], size)
    out["ground truth"] = {"table1": ev.nme_by_yaw(gt_lm, test["landmarks"],
                                                   test["angles"][:, 1]),
                           "dense": 0.0, **video_numbers(gt_v)}
    return out


def paired_difference(rows: list[dict], a: str, b: str, key) -> dict:
    """Mean over seeds of key(a) - key(b) paired by seed, its sd and 95 % t interval.

    rows: :func:`run`'s rows (name, seed, ...). Returns {"mean", "sd", "ci": [lo, hi], "n",
    "wins"} where wins counts seeds with a < b (a better when lower is better).
    """
    from scipy.stats import t as student_t

    va = {r["seed"]: float(key(r)) for r in rows if r["name"] == a}
    vb = {r["seed"]: float(key(r)) for r in rows if r["name"] == b}
    seeds = sorted(set(va) & set(vb))
    if len(seeds) < 2:
        raise ValueError(f"rows: need >= 2 seeds with both {a!r} and {b!r}, got {seeds}")
    d = [va[s] - vb[s] for s in seeds]
    m, sd = statistics.mean(d), statistics.stdev(d)
    half = float(student_t.ppf(0.975, len(d) - 1)) * sd / math.sqrt(len(d))
    return {"mean": m, "sd": sd, "ci": [m - half, m + half], "n": len(d),
            "wins": sum(x < 0 for x in d)}


def _nme(r):
    return r["table1"]["mean"]


def _paper3(name: str) -> str:
    """The paper's Table 3 NME for our option name ("-" where it has none)."""
    key = {"fWPDC": "fWPDC", "fWPDC (2x steps)": "fWPDC", "VDC (2x steps)": "VDC",
           "Meta-joint": "Meta-joint"}.get(name)
    return f"{ev.PAPER_TABLE3[key]:.2f}" if key else "-"


#: (a, b, what it tests) pairs reported by :func:`summary_tables`.
COMPARISONS = (
    ("Meta-joint", "fWPDC (2x steps)", "meta-joint vs fWPDC, same gradient steps"),
    ("Meta-joint", "VDC (2x steps)", "meta-joint vs VDC, same gradient steps"),
    ("Meta-joint", "fWPDC", "meta-joint vs fWPDC, same advanced steps"),
    ("Meta-joint", "Meta-joint, random selector", "VDC selector vs coin flip"),
    ("fWPDC (2x steps)", "VDC (2x steps)", "fWPDC vs VDC from scratch"),
)


def summary_tables(result: dict) -> str:
    """Plain-text tables (mean ± sd over seeds, paired differences with 95 % CIs)."""
    rows, base = result["rows"], result["baselines"]
    names = list(dict.fromkeys(r["name"] for r in rows))

    def ms(name, key):
        v = [float(key(r)) for r in rows if r["name"] == name]
        return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}"

    t3 = [[n, _paper3(n), str(sum(r["name"] == n for r in rows)),
           str(next(r["grad_steps"] for r in rows if r["name"] == n)),
           ms(n, _nme), ms(n, lambda r: r["dense"])] for n in names if "svs" not in n]
    t3 += [[n, "-", "-", "0", f"{_nme(b):.2f}", f"{b['dense']:.2f}"] for n, b in base.items()
           if "table1" in b]
    out = [ev.format_table("Table 3 (fair): mean NME / dense NME (%), mean ± sd over seeds",
                           ["option", "paper", "seeds", "grad steps", "NME", "dense"], t3), ""]
    diffs = []
    for a, b, what in COMPARISONS:
        if any(r["name"] == a for r in rows) and any(r["name"] == b for r in rows):
            d = paired_difference(rows, a, b, _nme)
            diffs.append([what, f"{d['mean']:+.2f} ± {d['sd']:.2f}",
                          f"[{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]", f"{d['wins']}/{d['n']}"])
    out += [ev.format_table("Paired NME differences (a - b, %; negative = a better)",
                            ["comparison", "mean ± sd", "95% CI", "a wins"], diffs), ""]
    paper4 = {"fWPDC (2x steps)": "{:.2f} / {:.2f}".format(*ev.PAPER_TABLE4["fWPDC w/o svs"]),
              "fWPDC w/ svs (2x steps)": "{:.2f} / {:.2f}".format(
                  *ev.PAPER_TABLE4["fWPDC w/ svs"])}
    t4 = [[n, paper4.get(n, "-"), ms(n, lambda r: r["video_nme"]),
           ms(n, lambda r: r["stability"])]
          for n in names if n in ("fWPDC (2x steps)", "fWPDC w/ svs (2x steps)", "Meta-joint")]
    t4 += [[n, "-", f"{b['video_nme']:.2f}", f"{b['stability']:.2f}"] for n, b in base.items()]
    out += [ev.format_table("Table 4 on talking-head clips: video NME / stability (%)",
                            ["option", "paper", "video NME", "stability"], t4)]
    if any(r["name"] == "fWPDC w/ svs (2x steps)" for r in rows):
        ds = paired_difference(rows, "fWPDC w/ svs (2x steps)", "fWPDC (2x steps)",
                               lambda r: r["stability"])
        dn = paired_difference(rows, "fWPDC w/ svs (2x steps)", "fWPDC (2x steps)",
                               lambda r: r["video_nme"])
        out += ["", f"svs - no svs, paired: stability {ds['mean']:+.2f} "
                f"[{ds['ci'][0]:+.2f}, {ds['ci'][1]:+.2f}] ({ds['wins']}/{ds['n']} seeds "
                f"better), video NME {dn['mean']:+.2f} [{dn['ci'][0]:+.2f}, "
                f"{dn['ci'][1]:+.2f}]"]
    return "\n".join(out)


def run(scale: Scale, seeds, names=None, log=print, data=None) -> dict:
    """Train every option (or ``names``) for every seed, evaluate, and return the result.

    data: (model, train, test, videos) (default: :func:`facelab.methods.tddfa.cli.load_data`
    at 64 px, 2,400 stills with 3-frame clips, 500 test faces, 8 talking-head clips).
    """
    if data is None:
        from facelab.methods.tddfa.cli import load_data

        data = load_data(progress=False)
    model, train, test, videos = data
    opts = options(scale)
    if names is not None:
        unknown = sorted(set(names) - set(opts))
        if unknown:
            raise ValueError(f"names: unknown options {unknown}; known {list(opts)}")
        opts = {k: v for k, v in opts.items() if k in names}
    rows = []
    t0 = time.perf_counter()
    for seed in seeds:  # seed-major: an interrupted run still has complete seeds
        for name, cfg in opts.items():
            c = replace(cfg, seed=seed)
            row = {"name": name, "seed": seed, "config": asdict(c),
                   **_run_one(model, train, test, videos, c, scale.eval_faces)}
            rows.append(row)
            if log is not None:
                log(f"{name:30s} seed {seed}: NME {_nme(row):.2f}%  dense {row['dense']:.2f}%  "
                    f"stability {row['stability']:.2f}%  ({row['seconds']:.0f} s)")
    return {"rows": rows, "baselines": baseline_rows(model, train, test, videos),
            "scale": asdict(scale), "seeds": list(seeds), "model": model_record(model),
            "image_size": int(train["image"].shape[1]), "train_count": int(train["image"].shape[0]),
            "test_count": int(test["image"].shape[0]),
            "model_version": TDDFA_MODEL_VERSION, "wall_seconds": time.perf_counter() - t0,
            "command": COMMAND, "torch": str(torch.__version__), "machine": platform.machine()}


def main(argv=None) -> int:
    """Entry point: writes DIR/experiments.json and DIR/tables.txt."""
    p = CommandParser(prog="python -m facelab.methods.tddfa.experiments",
                      description="3DDFA_V2's fair meta-joint and stability experiments.")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=Scale.steps)
    p.add_argument("--options", nargs="+", default=None, help="subset of the option names")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=Scale.lr)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    args = p.parse_args(argv)
    try:  # every check before the corpus is built (minutes); errors in one line
        check_count(args.steps, "--steps", minimum=1)
        check_count(args.threads, "--threads", minimum=1)
        if len(set(args.seeds)) < 2:
            raise ValueError(f"--seeds: expected >= 2 distinct seeds, got {args.seeds}")
        known = options(Scale(steps=args.steps))
        if args.options is not None and set(args.options) - set(known):
            raise ValueError(f"--options: unknown {sorted(set(args.options) - set(known))}; "
                             f"known {list(known)}")
        refuse_package_path(args.out, name="--out")
        files = [args.out / "experiments.json", args.out / "tables.txt"]
        if not args.force:
            refuse_existing(files)
    except (ValueError, FileExistsError) as exc:
        p.error(str(exc))
    torch.set_num_threads(args.threads)
    result = run(Scale(steps=args.steps, optimizer=args.optimizer, lr=args.lr), args.seeds,
                 args.options)
    given = list(argv if argv is not None else sys.argv[1:])
    for i, a in enumerate(given[:-1]):  # the output folder is not part of what was run
        if a == "--out":
            given[i + 1] = "DIR"
    result["command"] = " ".join(["python -m facelab.methods.tddfa.experiments", *given])
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(files[0], result)
    tables = summary_tables(result)
    with atomic_path(files[1], overwrite=True) as tmp:
        tmp.write_text(tables + "\n")
    print(tables)
    print(f"wrote {files[0]} and {files[1]} ({result['wall_seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
