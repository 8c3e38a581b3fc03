"""Measure why four of NeuFace's orderings do not reproduce on facelab's synthetic clips.

    python -m facelab.methods.neuface.diagnose --out DIR [--items l2d msi naive baseline]

Notebook 05 lists four orderings of the paper that the ablation (:mod:`.experiments`,
``results/ablation.json``) does not reproduce. Each item here runs the measurement that
tests a diagnosis, on the same clips (seeds, 40 frames x 3 views, 60 iterations, lr 3e-4),
and writes ``DIR/diagnosis_<item>.json`` (model record, command, settings, per-seed rows and
mean ± sd; the committed copies are in ``results/`` and re-checked by
``tests/test_neuface_diagnose.py``):

* ``l2d`` — Table 3: L_2D alone should make CVD *worse* than Φ (DECA). Splits each view's
  model-space error ``e_{f,v} = M_{f,v} − M*_f`` into the part shared by the views
  (``ē_f``, mean over views) and the view-specific rest (``e − ē``; CVD sees only this), for
  Φ and for L_2D; then starts L_2D from a *consistent-but-biased* prediction (Φ's pose and
  camera per view, Φ's β, ψ, θ averaged over the views of each frame: truth + Φ's shared
  error, CVD 0) — through a network distilled to output it (:func:`distill`) and by direct
  fitting (Eq. 6) — and measures whether L_2D breaks that consistency.
* ``msi`` — Table 3: the full loss should beat L_2D + L_temporal on MSI_3D. Paired per-seed
  differences with a 95 % t interval (more seeds), MSI of the rotation alone and of the
  shape alone (:func:`msi_parts`), and MSI of the E-step's multi-view target itself (does the
  confidence-weighted average jitter?).
* ``naive`` — Table S3: the EM losses should give lower CVD than the naive pairwise ones.
  Coefficient norms, the EM result shrunk to the naive result's norms (:func:`shrink`), CVD
  relative to the meshes' distance from the mean face (:func:`relative_cvd`), CVD on the
  vertices every view sees and on the rest (:func:`cvd_by_region`), the ratio of the two
  multi-view terms on the same meshes, and EM re-run with λ_view scaled by it.
* ``baseline`` — Table 2: direct fitting should have higher CVD than NeuFace. The same
  measurements, the baseline re-run without its β / ψ / θ priors, and NeuFace re-run with
  λ_view x3 (its CVD at a higher NME, nearer the baseline's).
"""

from __future__ import annotations

import copy
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from facelab import metrics
from facelab._checks import check_int, check_positive, check_shape
from facelab.data.talking import TalkingClip, TalkingHeadConfig, synthesize_clip
from facelab.formation import form
from facelab.methods.neuface.baseline import BaselineConfig, fit_baseline
from facelab.methods.neuface.evaluate import evaluate_clip, reconstruct
from facelab.methods.neuface.experiments import CONFIGS, solve_config, summarize
from facelab.methods.neuface.layout import NeuFaceLayout
from facelab.methods.neuface.net import NeuFaceNet
from facelab.methods.neuface.objective import LossWeights, clip_losses, multiview_targets
from facelab.methods.neuface.optimize import network_inputs, neuface_optimize
from facelab.model.morphable import MorphableModel
from facelab.model.provenance import model_record

__all__ = ["ITEMS", "PURE_L2D", "RESULTS_DIR", "coefficient_norms", "consistent_init",
           "cvd_by_region", "distill", "error_split", "msi_parts", "paired", "relative_cvd",
           "run_item", "seen_by_all", "shrink", "table"]

ITEMS = ("l2d", "msi", "naive", "baseline")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where the committed ``diagnosis_<item>.json`` files live."""
COMMAND = "python -m facelab.methods.neuface.diagnose --out DIR"
SETTINGS = {"seeds": [0, 1, 2], "msi_seeds": [0, 1, 2, 3, 4, 5], "frames": 40, "views": 3,
            "iterations": 60, "lr": 3e-4, "distill_steps": 200, "distill_lr": 1e-3}
"""The ablation's clips and NeuFace settings (``results/ablation.json``); the MSI item uses
three more seeds for its paired differences."""
SHAPE_BLOCKS = ("id", "exp", "jaw")
PURE_L2D = BaselineConfig(lambda_r=0.0, lambda_jaw=0.0, lambda_id=0.0, lambda_exp=0.0)
"""Direct fitting (Eq. 6) of L_2D alone: the baseline's coarse-to-fine schedule, no priors."""
VIEW_FACTORS = (3,)
"""λ_view multiples of the NeuFace rows that trace its CVD-NME trade-off (item baseline)."""


def _l1(x: torch.Tensor) -> float:
    """Mean over everything but the last axis of the ℓ1 norm over the last (CVD's norm)."""
    return float(x.abs().sum(-1).mean())


def error_split(model: MorphableModel, layout: NeuFaceLayout, vec: torch.Tensor,
                clip: TalkingClip) -> dict:
    """Shared and view-specific parts of a clip's model-space mesh error (mm, ℓ1 per vertex).

    With ``e_{f,v} = M_{f,v} − M*_f`` (T, N, V, 3), ``ē_f = mean_v e_{f,v}`` and
    ``d_{f,v} = e_{f,v} − ē_f``: returns {"error": |e|, "shared": |ē|, "view_specific": |d|,
    "cvd"}, each the mean over frames, views and vertices of the ℓ1 norm over x, y, z.
    CVD depends on d only: ``M_{f,i} − M_{f,j} = d_{f,i} − d_{f,j}``.
    """
    if clip.verts is None:
        raise ValueError("clip: expected a synthetic clip with ground-truth verts")
    verts = reconstruct(model, layout, vec, clip)["verts"]  # (T, N, V, 3)
    e = verts - clip.verts.to(verts)[:, None]  # (T, N, V, 3)
    shared = e.mean(1)  # (T, V, 3)
    return {"error": _l1(e), "shared": _l1(shared), "view_specific": _l1(e - shared[:, None]),
            "cvd": metrics.cvd(verts)}


def consistent_init(layout: NeuFaceLayout, vec: torch.Tensor, frames: int,
                    views: int) -> torch.Tensor:
    """``vec`` (T N, D) with β, ψ and θ replaced by their mean over the views of each frame.

    Pose and camera stay per view, so every view keeps its landmarks' place; the model-space
    meshes of one frame become identical (CVD 0). For Φ's prediction this is "truth + the
    error the views share": consistent but biased, what DECA's low CVD suggests.
    """
    frames = check_int(frames, name="frames", minimum=1)
    views = check_int(views, name="views", minimum=1)
    check_shape(vec, f"{frames * views} {layout.size}", name="vec")
    blocks = layout.split(vec)
    out = dict(blocks)
    for name in SHAPE_BLOCKS:
        b = blocks[name]
        if b.shape[1]:
            mean = b.reshape(frames, views, -1).mean(1, keepdim=True)  # (T, 1, n)
            out[name] = mean.expand(frames, views, -1).reshape(frames * views, -1)
    return layout.pack(out)


def distill(net: NeuFaceNet, clip: TalkingClip, target: torch.Tensor, *, steps: int = 200,
            lr: float = 1e-3) -> NeuFaceNet:
    """A copy of Φ trained to output ``target`` (T N, D) on the clip's own images.

    Full-batch Adam on the L1 distance in network units (Φ's pre-training loss,
    :mod:`.pretrain`), BatchNorm in eval mode. Gives NeuFace a starting network whose
    prediction is ``target`` up to the distillation residual (reported by the caller).
    """
    check_shape(target, f"{clip.frames * clip.views} {net.layout.size}", name="target")
    steps = check_int(steps, name="steps", minimum=0)
    phi = copy.deepcopy(net).eval()
    x = network_inputs(phi, clip)
    opt = torch.optim.Adam(phi.parameters(), lr=check_positive(lr, name="lr"))
    for _ in range(steps):
        loss = ((phi(x) - target).abs() / phi.unit).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return phi.eval()


def shrink(layout: NeuFaceLayout, vec: torch.Tensor, factors: dict) -> torch.Tensor:
    """``vec`` (T N, D) with blocks scaled toward zero (the mean face): {block: factor}."""
    blocks = dict(layout.split(vec))
    for name, factor in factors.items():
        if name not in blocks:
            raise ValueError(f"factors: expected blocks among {sorted(blocks)}, got {name!r}")
        blocks[name] = blocks[name] * float(factor)
    return layout.pack(blocks)


def coefficient_norms(layout: NeuFaceLayout, vec: torch.Tensor) -> dict:
    """{"id": ‖β̄‖₂ (mean over images first: the filtering rule), "exp": mean ‖ψ‖₂,
    "jaw": mean ‖θ‖₂ (rad)}."""
    b = layout.split(vec)
    out = {"id": float(b["id"].mean(0).norm()), "exp": float(b["exp"].norm(dim=1).mean())}
    out["jaw"] = float(b["jaw"].norm(dim=1).mean()) if layout.jaw else 0.0
    return out


def relative_cvd(model: MorphableModel, layout: NeuFaceLayout, vec: torch.Tensor,
                 clip: TalkingClip) -> dict:
    """{"cvd", "deviation", "relative_cvd"}: CVD (mm), the meshes' mean ℓ1 distance from the
    model's mean face (mm, per vertex), and their ratio — unchanged when β and ψ are scaled
    together toward the mean (both are linear in them), so a shrunk result scores no better."""
    verts = reconstruct(model, layout, vec, clip)["verts"]  # (T, N, V, 3)
    dev = _l1(verts - model.mean_shape.to(verts))
    c = metrics.cvd(verts)
    return {"cvd": c, "deviation": dev, "relative_cvd": c / dev}


def seen_by_all(model: MorphableModel, layout: NeuFaceLayout, vec: torch.Tensor,
                clip: TalkingClip, weights: LossWeights | None = None) -> torch.Tensor:
    """(T, V) bool: vertices every view is confident about (E-step confidence > 0 in all N
    views, :func:`.objective.multiview_targets`) for the prediction ``vec`` (T N, D)."""
    weights = LossWeights() if weights is None else weights
    H, W = clip.image_size
    with torch.no_grad():
        params, camera = layout.to_face(vec, H, W)
        f = form(model, params, camera, shade=False)
        _, conf = multiview_targets(f, camera, clip.frames, clip.views, weights)
    return (conf > 0).all(1)


def cvd_by_region(model: MorphableModel, layout: NeuFaceLayout, vec: torch.Tensor,
                  clip: TalkingClip, mask: torch.Tensor) -> dict:
    """CVD (mm) split by a (T, V) vertex mask: {"cvd_in", "cvd_out", "share_in"} — the mean
    over view pairs of ℓ1 distances, averaged over the (frame, vertex) entries in / out of it."""
    verts = reconstruct(model, layout, vec, clip)["verts"]  # (T, N, V, 3)
    N = verts.shape[1]
    i, j = torch.triu_indices(N, N, offset=1)
    dist = (verts[:, i] - verts[:, j]).abs().sum(-1).mean(1)  # (T, V)
    mask = mask.to(torch.bool)
    return {"cvd_in": float(dist[mask].mean()), "cvd_out": float(dist[~mask].mean()),
            "share_in": float(mask.float().mean())}


def msi_parts(model: MorphableModel, layout: NeuFaceLayout, vec: torch.Tensor,
              clip: TalkingClip, weights: LossWeights | None = None) -> dict:
    """Where a result's temporal jitter sits (MSI_3D^V, :func:`facelab.metrics.msi3d`, mm):

    * "posed": R_t X_t per view (the table's MSI^V);
    * "rotation": R_t X̄ — the view's time-mean mesh under each frame's head rotation;
    * "shape": X_t, the model-space meshes without rotation;
    * "target_shape", "target_posed": the E-step's multi-view target M̂_t built from this
      result (:func:`.objective.multiview_targets`), alone and under each view's R_t;
    * "visibility_flips": the share of (vertex, view) confidences that switch between zero
      and non-zero from one frame to the next;
    * "l_temporal": L_temporal (Eq. 3, mean target) at this result.

    Each MSI is averaged over views (N >= 2 clips; the target has one per frame).
    """
    weights = LossWeights() if weights is None else weights
    T, N = clip.frames, clip.views
    H, W = clip.image_size
    with torch.no_grad():
        params, camera = layout.to_face(vec, H, W)
        f = form(model, params, camera, shade=False)
        target, conf = multiview_targets(f, camera, T, N, weights)  # (T, V, 3), (T, N, V)
        terms = clip_losses(model, layout, vec, clip, replace(weights, lambda_view=0.0))
    V = f.verts.shape[1]
    X = f.verts.reshape(T, N, V, 3).transpose(0, 1)  # (N, T, V, 3) model space
    Rt = params.rotation.reshape(T, N, 3, 3).transpose(0, 1).transpose(-1, -2)  # (N, T, 3, 3)
    mean_x = X.mean(1, keepdim=True).expand(N, T, V, 3)
    visible = conf > 0  # (T, N, V)
    return {
        "posed": float(metrics.msi3d(X @ Rt).mean()),
        "rotation": float(metrics.msi3d(mean_x @ Rt).mean()),
        "shape": float(metrics.msi3d(X).mean()),
        "target_shape": metrics.msi3d(target),
        "target_posed": float(metrics.msi3d(target[None].expand(N, T, V, 3) @ Rt).mean()),
        "visibility_flips": float((visible[1:] != visible[:-1]).float().mean()),
        "l_temporal": float(terms["temporal"]),
    }


def paired(a, b) -> dict:
    """Paired differences a − b over seeds: mean, sd, a 95 % Student-t interval, n, and how
    many seeds have a > b."""
    from scipy import stats

    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean, sd = statistics.fmean(d), statistics.stdev(d) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": mean, "sd": sd, "ci95": [mean - half, mean + half], "n": n,
            "a_greater": sum(x > 0 for x in d)}


class _Runs:
    """Clips and solved vectors shared between items of one invocation (cached by seed)."""

    def __init__(self, model, net, settings, log):
        self.model, self.net, self.s, self.log = model, net, settings, log
        self.clips, self.vecs, self.masks = {}, {}, {}

    def clip(self, seed: int) -> TalkingClip:
        if seed not in self.clips:
            cfg = TalkingHeadConfig(frames=self.s["frames"], views=self.s["views"])
            self.clips[seed] = synthesize_clip(self.model, cfg, seed=seed)
        return self.clips[seed]

    def vec(self, seed: int, name: str) -> torch.Tensor:
        """A row of the ablation (:data:`.experiments.CONFIGS`), seeded as the ablation is."""
        if (seed, name) not in self.vecs:
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            self.vecs[seed, name] = solve_config(name, self.model, self.net, self.clip(seed),
                                                 iterations=self.s["iterations"],
                                                 lr=self.s["lr"])
            self.log(f"seed {seed} {name}: {time.perf_counter() - t0:.1f} s")
        return self.vecs[seed, name]

    def metrics(self, seed: int, vec: torch.Tensor) -> dict:
        model, lay, clip = self.model, self.net.layout, self.clip(seed)
        out = evaluate_clip(model, lay, vec, clip)
        out.update({f"norm_{k}": v for k, v in coefficient_norms(lay, vec).items()})
        out.update(relative_cvd(model, lay, vec, clip))
        if seed not in self.masks:  # regions fixed per clip: what the true meshes show
            self.masks[seed] = seen_by_all(model, lay, self.vec(seed, "truth"), clip)
        out.update(cvd_by_region(model, lay, vec, clip, self.masks[seed]))
        return out


def _item_l2d(runs: _Runs, seed: int) -> dict:
    model, net, clip, s = runs.model, runs.net, runs.clip(seed), runs.s
    lay, T, N = net.layout, clip.frames, clip.views
    rows = {}
    phi, l2d = runs.vec(seed, "phi"), runs.vec(seed, "l2d")
    init = consistent_init(lay, phi, T, N)
    torch.manual_seed(seed)
    phi_c = distill(net, clip, init, steps=s["distill_steps"], lr=s["distill_lr"])
    with torch.no_grad():
        init_net = phi_c(network_inputs(phi_c, clip))
    torch.manual_seed(seed)
    nf_c = neuface_optimize(model, phi_c, clip, weights=CONFIGS["l2d"],
                            iterations=s["iterations"], lr=s["lr"]).vec
    direct = {}
    for name, start in (("phi", phi), ("consistent", init)):
        torch.manual_seed(seed)
        direct[name] = fit_baseline(model, lay, start, clip, weights=CONFIGS["l2d"],
                                    config=PURE_L2D)[0]
    vecs = {"phi": phi, "neuface_l2d_from_phi": l2d, "direct_l2d_from_phi": direct["phi"],
            "consistent_init": init, "distilled_init": init_net,
            "neuface_l2d_from_consistent": nf_c,
            "direct_l2d_from_consistent": direct["consistent"]}
    for name, vec in vecs.items():
        row = evaluate_clip(model, lay, vec, clip)
        row.update({f"err_{k}": v for k, v in error_split(model, lay, vec, clip).items()})
        rows[name] = row
    return rows


def _item_msi(runs: _Runs, seed: int) -> dict:
    lay, clip = runs.net.layout, runs.clip(seed)
    rows = {}
    for name in ("l2d+temp", "full"):
        vec = runs.vec(seed, name)
        row = evaluate_clip(runs.model, lay, vec, clip)
        row.update({f"msi_{k}" if not k.startswith(("visib", "l_")) else k: v
                    for k, v in msi_parts(runs.model, lay, vec, clip).items()})
        rows[name] = row
    return rows


def _shrunk_to(runs: _Runs, vec: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``vec`` with β, ψ and θ scaled to ``ref``'s norms (:func:`coefficient_norms`)."""
    lay = runs.net.layout
    a, b = coefficient_norms(lay, vec), coefficient_norms(lay, ref)
    blocks = [k for k in SHAPE_BLOCKS if a[k] > 0]
    return shrink(lay, vec, {k: b[k] / a[k] for k in blocks})


def _item_naive(runs: _Runs, seed: int) -> dict:
    model, lay, clip, s = runs.model, runs.net.layout, runs.clip(seed), runs.s
    em, naive, phi = runs.vec(seed, "full"), runs.vec(seed, "full-naive"), runs.vec(seed, "phi")
    # the two multi-view terms on the same meshes: Φ's prediction and the EM result
    ratios = {}
    for where, vec in (("phi", phi), ("full", em)):
        with torch.no_grad():
            t_em = clip_losses(model, lay, vec, clip, CONFIGS["full"])["multiview"]
            t_nv = clip_losses(model, lay, vec, clip, CONFIGS["full-naive"])["multiview"]
        ratios[where] = float(t_nv / t_em)
    scaled = LossWeights(lambda_view=CONFIGS["full"].lambda_view * ratios["phi"])
    torch.manual_seed(seed)
    em_scaled = neuface_optimize(model, runs.net, clip, weights=scaled,
                                 iterations=s["iterations"], lr=s["lr"]).vec
    rows = {"full": runs.metrics(seed, em), "full-naive": runs.metrics(seed, naive),
            "full-shrunk-to-naive": runs.metrics(seed, _shrunk_to(runs, em, naive)),
            "full-view-x-ratio": runs.metrics(seed, em_scaled)}
    rows["full-view-x-ratio"]["lambda_view"] = scaled.lambda_view
    rows["ratio"] = {"naive_over_em_at_phi": ratios["phi"],
                     "naive_over_em_at_full": ratios["full"]}
    return rows


def _item_baseline(runs: _Runs, seed: int) -> dict:
    model, lay, clip = runs.model, runs.net.layout, runs.clip(seed)
    em, base, phi = runs.vec(seed, "full"), runs.vec(seed, "baseline"), runs.vec(seed, "phi")
    torch.manual_seed(seed)
    no_prior = fit_baseline(model, lay, phi, clip, weights=CONFIGS["baseline"],
                            config=BaselineConfig(lambda_jaw=0.0, lambda_id=0.0,
                                                  lambda_exp=0.0))[0]
    truth = runs.vec(seed, "truth")
    rows = {"full": runs.metrics(seed, em), "baseline": runs.metrics(seed, base),
            "full-shrunk-to-baseline": runs.metrics(seed, _shrunk_to(runs, em, base)),
            "baseline-no-priors": runs.metrics(seed, no_prior)}
    for factor in VIEW_FACTORS:  # NeuFace's CVD-NME trade-off: a stronger multi-view term
        w = LossWeights(lambda_view=CONFIGS["full"].lambda_view * factor)
        torch.manual_seed(seed)
        vec = neuface_optimize(model, runs.net, clip, weights=w, iterations=runs.s["iterations"],
                               lr=runs.s["lr"]).vec
        rows[f"full-view-x{factor:g}"] = runs.metrics(seed, vec)
    return {**rows,
            "truth": {k: v for k, v in runs.metrics(seed, truth).items()
                      if k.startswith("norm_") or k == "deviation"}}


def table(result: dict, rows, columns, *, width: int = 14) -> str:
    """A text table of a diagnosis result's summary: one line per row, "mean±sd" over seeds
    per column (columns absent from a row are left blank)."""
    summary = result["summary"]
    widths = [max(width, len(c) + 2) for c in columns]
    lines = [f"{'':28s}" + "".join(f"{c:>{w}s}" for c, w in zip(columns, widths, strict=True))]
    for row in rows:
        vals = summary[row]
        cells = [f"{vals[c]['mean']:.3f}±{vals[c]['sd']:.3f}" if c in vals else "" for c in columns]
        lines.append(f"{row:28s}" + "".join(f"{c:>{w}s}" for c, w in zip(cells, widths,
                                                                          strict=True)))
    return "\n".join(lines)


_ITEM_FUNCS = {"l2d": _item_l2d, "msi": _item_msi, "naive": _item_naive,
               "baseline": _item_baseline}


def run_item(item: str, runs: _Runs) -> dict:
    """One item (module docs) over its seeds: {"per_seed": {row: [dict per seed]},
    "summary": {row: {metric: {"mean", "sd"}}}, plus "paired" for "msi"}."""
    if item not in _ITEM_FUNCS:
        raise ValueError(f"item: expected one of {ITEMS}, got {item!r}")
    seeds = runs.s["msi_seeds"] if item == "msi" else runs.s["seeds"]
    per_seed: dict = {}
    for seed in seeds:
        for row, vals in _ITEM_FUNCS[item](runs, seed).items():
            per_seed.setdefault(row, []).append(vals)
    out = {"seeds": list(seeds), "per_seed": per_seed, "summary": summarize(per_seed)}
    if item == "msi":
        full, temp = per_seed["full"], per_seed["l2d+temp"]
        out["paired"] = {m: paired([r[m] for r in full], [r[m] for r in temp])
                         for m in ("msi_l", "msi_v", "msi_rotation", "msi_shape", "nme",
                                   "l_temporal")}
    return out


def diagnose_main(argv=None) -> int:
    """Entry point (module docs); returns the exit status."""
    from facelab.atomic_io import refuse_existing, refuse_package_path, write_json
    from facelab.command_errors import CommandParser
    from facelab.methods.neuface.pretrain import load_phi
    from facelab.model.registry import load_model

    ap = CommandParser(prog="python -m facelab.methods.neuface.diagnose",
                       description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True,
                    help="folder for diagnosis_<item>.json")
    ap.add_argument("--items", nargs="+", choices=ITEMS, default=list(ITEMS))
    ap.add_argument("--force", action="store_true", help="overwrite existing files")
    args = ap.parse_args(argv)
    out = refuse_package_path(args.out, name="--out")
    targets = {item: out / f"diagnosis_{item}.json" for item in args.items}
    if not args.force:
        refuse_existing(targets.values())
    torch.set_num_threads(1)
    model = load_model("synthetic", "teaching", version=1)
    runs = _Runs(model, load_phi(model), dict(SETTINGS), lambda m: print(m, flush=True))
    for item, target in targets.items():
        t0 = time.perf_counter()
        body = run_item(item, runs)
        result = {"model": model_record(model), "command": COMMAND, "item": item,
                  "settings": SETTINGS, "seconds": time.perf_counter() - t0, **body}
        write_json(target, result, overwrite=args.force)
        print(f"wrote {target} ({result['seconds']:.0f} s)", flush=True)
    return 0


def main(argv=None) -> int:
    """``python -m facelab.methods.neuface.diagnose``: errors as one line, no traceback."""
    from facelab.command_errors import run_reporting

    return run_reporting("python -m facelab.methods.neuface.diagnose",
                         lambda: diagnose_main(argv))


if __name__ == "__main__":
    sys.exit(main())
