"""Fan et al.'s Table III, Fig. 3, Fig. 6 and Figs. 4-5 at CPU scale, over seeds.

    python -m facelab.methods.dualnet.experiments --out dualnet-results
    python -m facelab.methods.dualnet.experiments --out dualnet-results --only fig3

writes ``table3.json`` (mean error per method and seed, per-face errors for the CED curves,
Eq. (7) heat maps of two views, timings, a small re-check configuration), ``fig3.json``
(the K and hidden-unit sweeps) and ``scaling.json`` (ResNetGC's train / test error against the
number of training faces) and ``crossfit.json`` (the dual networks with out-of-fold MRF outputs):
the measurements behind the notebook's diagnosis. The committed
copies live in ``facelab/methods/dualnet/results``
(the command never writes inside the package; copy them there by hand) and
:func:`load_results` refuses a file made from another model (``model.digest()``).

Data (:class:`facelab.data.detail.DetailFaces`): 400 training faces (seed 0) and 100 test
faces (seed 1), 64 x 64, the built-in model pinned at version 1 -- the paper's 2,800 / 500
FRGC split scaled to two CPU cores. Seeds vary the networks' initialisation and batch order;
the data and the closed-form rows (mean face, template, Lm2Vertex) do not depend on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from facelab.atomic_io import refuse_existing, refuse_package_path, write_json
from facelab.command_errors import CommandParser, check_count, check_seeds, run_reporting
from facelab.data.detail import DetailFaces, DetailSampling, out_of_span_fraction
from facelab.methods.dualnet.baselines import Lm2Vertex
from facelab.methods.dualnet.evaluation import (
    PAPER_FIG3,
    PAPER_TABLE3,
    heat_map,
    mean_errors,
    summarize,
    vertex_errors,
)
from facelab.methods.dualnet.mrf import MRFConfig, mrf_features, mrf_neighbors, train_mrf
from facelab.methods.dualnet.pipeline import dual_update, prepare_inputs
from facelab.methods.dualnet.resnet import ResNetConfig, train_residual
from facelab.model.morphable import MorphableModel
from facelab.model.provenance import load_result_file

__all__ = ["FORMAT_VERSION", "METHODS", "RESULTS_DIR", "build_data", "check_run",
           "experiments_main", "load_results", "main", "pinned_model", "run_crossfit", "run_fig3",
           "run_scaling", "run_table3"]

FORMAT_VERSION = 1
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODEL = {"name": "synthetic", "resolution": "teaching", "version": 1}
METHODS = ("Mean face", "Template (GC)", "Lm2Vertex", "ResNet", "MRFGC", "ResNetGC", "Dual")
HEAT_METHODS = ("Template (GC)", "Lm2Vertex", "ResNet", "MRFGC", "ResNetGC", "Dual")
DATA = {"train_count": 400, "test_count": 100, "size": 64, "train_seed": 0, "test_seed": 1}
TEMPLATE = {"lam": 0.5, "sigma_l": 1.0, "iterations": 10, "polish": 10}
MRF = MRFConfig(k=10, hidden=50, color_scale=50.0, epochs=15, batch_size=32, lr=3e-3)
RESNET = ResNetConfig(width=16, epochs=12, batch_size=32, lr=2e-3)
FIG3 = {"train_count": 160, "epochs": 8, "k": (3, 5, 10, 20, 30), "hidden": (10, 25, 50, 100)}
# (H = 50 is measured once, on the K axis at K = 10; the hidden axis reuses it)
SCALING = {"train_counts": (100, 200, 400)}
CHECK = {"train_count": 60, "mrf_epochs": 2, "resnet_epochs": 1, "seed": 0}


def pinned_model() -> MorphableModel:
    """The built-in model every recorded result uses: synthetic, teaching, version 1."""
    from facelab.model import load_model

    return load_model(MODEL["name"], MODEL["resolution"], version=MODEL["version"])


def _model_record(model: MorphableModel) -> dict:
    return {**MODEL, "digest": model.digest()}


def _region(model: MorphableModel) -> torch.Tensor:
    mask = model.face_mask
    return (torch.arange(model.num_vertices) if mask is None
            else torch.nonzero(mask.reshape(-1)).reshape(-1))


def build_data(model: MorphableModel, *, train_count: int = DATA["train_count"],
               test_count: int = DATA["test_count"], size: int = DATA["size"]) -> dict:
    """Render both splits and everything no network learns (templates, colours, Lm2Vertex).

    Returns {"train": batch, "test": batch, "prep_train": ..., "prep_test": ...} with the
    batches of :meth:`DetailFaces.batch` and :func:`prepare_inputs`' outputs.
    """
    detail = DetailSampling()
    train = DetailFaces(model, size=size, length=train_count, seed=DATA["train_seed"],
                        detail=detail).batch()
    test = DetailFaces(model, size=size, length=test_count, seed=DATA["test_seed"],
                       detail=detail).batch()
    return {"train": train, "test": test, "prep_train": prepare_inputs(model, train, **TEMPLATE),
            "prep_test": prepare_inputs(model, test, **TEMPLATE)}


def _features(prep: dict, cfg: MRFConfig) -> torch.Tensor:
    idx = mrf_neighbors(prep["template"], prep["colors"], cfg.k, color_scale=cfg.color_scale)
    return mrf_features(prep["template"], prep["colors"], idx)


def _mrf(data: dict, cfg: MRFConfig, region, count: int | None = None):
    """Train the MRF networks on the first ``count`` training faces; S_P of train and test."""
    ptr, pte = data["prep_train"], data["prep_test"]
    n = count or ptr["template"].shape[0]
    ftr = _features({k: v[:n] for k, v in ptr.items() if k != "fit"}, cfg)
    net = train_mrf(ftr, ptr["template"][:n], data["train"]["verts"][:n], cfg, vertices=region)
    with torch.no_grad():
        return net(ftr, ptr["template"][:n]), net(_features(pte, cfg), pte["template"])


def _resnet(data: dict, s_bar_train, s_bar_test, cfg: ResNetConfig, region, count=None):
    """Train T_L on S_hat - S_bar (Eq. 3's loss); S_T = S_bar + T_L(I) on the test faces."""
    n = count or s_bar_train.shape[0]
    tr = data["train"]
    net = train_residual(tr["image"][:n], tr["verts"][:n] - s_bar_train[:n], cfg,
                         vertices=region)
    with torch.no_grad():
        return dual_update(s_bar_test, net(data["test"]["image"]))


def _closed_form(model: MorphableModel, data: dict, region) -> dict:
    """The rows that learn nothing stochastic: test reconstructions (B, V, 3) by name."""
    te, tr = data["test"], data["train"]
    lm2v = Lm2Vertex.fit(model, tr["landmarks_2d"], tr["verts"], vertices=region)
    n = te["verts"].shape[0]
    return {"Mean face": model.mean_shape.expand(n, -1, -1),
            "Template (GC)": data["prep_test"]["template"],
            "Lm2Vertex": lm2v.predict(model, te["landmarks_2d"])}


def run_table3(model: MorphableModel, data: dict, seeds=(0, 1, 2), *, mrf: MRFConfig = MRF,
               resnet: ResNetConfig = RESNET, log=print) -> dict:
    """Table III over seeds, the per-face errors (Fig. 6) and Eq. (7) heat maps (Figs. 4-5)."""
    region = _region(model)
    gt = data["test"]["verts"]
    mean_shape = model.mean_shape
    fixed = _closed_form(model, data, region)
    per_face = {m: [] for m in METHODS}
    seconds = {m: [] for m in METHODS}
    heat_recon = {}
    for seed in seeds:
        recon = dict(fixed)
        t0 = time.perf_counter()
        sp_tr, sp_te = _mrf(data, replace(mrf, seed=seed), region)
        seconds["MRFGC"].append(time.perf_counter() - t0)
        recon["MRFGC"] = sp_te
        ntr, nte = data["train"]["verts"].shape[0], gt.shape[0]
        bars = {"ResNet": (mean_shape.expand(ntr, -1, -1), mean_shape.expand(nte, -1, -1)),
                "ResNetGC": (data["prep_train"]["template"], data["prep_test"]["template"]),
                "Dual": (sp_tr, sp_te)}
        for name, (btr, bte) in bars.items():
            t0 = time.perf_counter()
            recon[name] = _resnet(data, btr, bte, replace(resnet, seed=seed), region)
            seconds[name].append(time.perf_counter() - t0 + (seconds["MRFGC"][-1]
                                                              if name == "Dual" else 0.0))
        for m in METHODS:
            per_face[m].append(mean_errors(recon[m], gt, vertices=region).tolist())
            if m in ("Mean face", "Template (GC)", "Lm2Vertex"):
                seconds[m].append(0.0)
        if log is not None:
            log(f"seed {seed}: " + ", ".join(f"{m} {sum(per_face[m][-1]) / nte:.3f}"
                                             for m in METHODS))
        if seed == seeds[0]:
            heat_recon = {m: recon[m] for m in HEAT_METHODS}
    rows = {m: {**summarize([sum(f) / len(f) for f in per_face[m]]),
                "per_seed": [sum(f) / len(f) for f in per_face[m]],
                "seconds": seconds[m], "paper": PAPER_TABLE3.get(m)} for m in METHODS}
    errs = torch.stack([vertex_errors(heat_recon[m], gt, vertices=region)
                        for m in HEAT_METHODS])  # (M, N, R)
    dual = torch.tensor(per_face["Dual"][0])
    typical = int(dual.argsort()[len(dual) // 2])
    heat = {"methods": list(HEAT_METHODS), "seed": seeds[0], "face": typical,
            "face_map": _rounded(heat_map(errs[:, typical])),
            "mean_map": _rounded(heat_map(errs.mean(1)))}
    out_of_span = out_of_span_fraction(model, data["test"]["detail"])
    return {"rows": rows, "per_face": {m: [[round(x, 4) for x in f] for f in per_face[m]]
                                        for m in METHODS},
            "heat": heat, "detail_out_of_span": summarize(out_of_span.tolist()),
            "detail_mean_mm": float(data["test"]["detail"].norm(dim=-1)[:, region].mean())}


def _rounded(t: torch.Tensor) -> list:
    return [[round(float(x), 2) for x in row] for row in t]


def run_fig3(model: MorphableModel, data: dict, seeds=(0, 1, 2), *, log=print) -> dict:
    """Fig. 3: the MRFGC mean error over K (H = 50) and over H (K = 10), on a training subset."""
    region = _region(model)
    gt = data["test"]["verts"]
    n, base = FIG3["train_count"], replace(MRF, epochs=FIG3["epochs"])
    out = {"k": {}, "hidden": {}}
    for axis, values in (("k", FIG3["k"]), ("hidden", FIG3["hidden"])):
        for value in values:
            if axis == "hidden" and value == base.hidden and str(base.k) in out["k"]:
                out[axis][str(value)] = out["k"][str(base.k)]  # the same configuration
                continue
            errs, secs = [], []
            for seed in seeds:
                cfg = replace(base, seed=seed, **{axis: value})
                t0 = time.perf_counter()
                _, sp = _mrf(data, cfg, region, count=n)
                secs.append(time.perf_counter() - t0)
                errs.append(float(mean_errors(sp, gt, vertices=region).mean()))
            out[axis][str(value)] = {**summarize(errs), "per_seed": errs, "seconds": secs}
            if log is not None:
                log(f"fig3 {axis}={value}: {out[axis][str(value)]['mean']:.3f} "
                    f"+- {out[axis][str(value)]['sd']:.3f}")
    out["template"] = float(mean_errors(data["prep_test"]["template"], gt,
                                        vertices=region).mean())
    return out


def run_scaling(model: MorphableModel, data: dict, seeds=(0, 1, 2), *, log=print) -> dict:
    """ResNetGC's test and training error against the number of training faces.

    The measurement behind the notebook's diagnosis of the residual CNN: a network that is
    short of data fits its training faces far better than the test faces, and its test error
    keeps falling as faces are added. Same settings as Table III (:data:`RESNET`).
    """
    region = _region(model)
    tr, te = data["train"], data["test"]
    s0_tr, s0_te = data["prep_train"]["template"], data["prep_test"]["template"]
    out = {}
    for n in SCALING["train_counts"]:
        test_err, train_err, secs = [], [], []
        for seed in seeds:
            t0 = time.perf_counter()
            net = train_residual(tr["image"][:n], tr["verts"][:n] - s0_tr[:n],
                                 replace(RESNET, seed=seed), vertices=region)
            secs.append(time.perf_counter() - t0)
            with torch.no_grad():
                test_err.append(float(mean_errors(s0_te + net(te["image"]), te["verts"],
                                                  vertices=region).mean()))
                train_err.append(float(mean_errors(s0_tr[:n] + net(tr["image"][:n]),
                                                   tr["verts"][:n], vertices=region).mean()))
        out[str(n)] = {"test": summarize(test_err), "train": summarize(train_err),
                       "test_per_seed": test_err, "train_per_seed": train_err, "seconds": secs}
        if log is not None:
            log(f"scaling n={n}: test {out[str(n)]['test']['mean']:.3f}, train "
                f"{out[str(n)]['train']['mean']:.3f}")
    out["template_test"] = float(mean_errors(s0_te, te["verts"], vertices=region).mean())
    out["template_train"] = float(mean_errors(s0_tr, tr["verts"], vertices=region).mean())
    return out


def run_crossfit(model: MorphableModel, data: dict, seeds=(0, 1, 2), *, log=print) -> dict:
    """Dual with the residual CNN trained on out-of-fold MRF outputs (2-fold cross-fitting).

    In Table III the CNN of the dual networks learns S_hat - S_P on the training faces, with S_P
    from MRF networks trained on those same faces (in-sample, so smaller residuals than at
    test time). Here each half of the training faces gets S_P from MRF networks trained on the
    other half; the test faces use the MRF trained on all of them (Table III's, seed 0; its
    seed-to-seed sd is 0.001 mm). If the in-sample residuals were what spoils the dual
    networks, this variant would beat MRFGC.
    """
    region = _region(model)
    tr = data["train"]
    n = tr["verts"].shape[0]
    half = n // 2
    mrf0 = replace(MRF, seed=0)
    sp_tr_in, sp_te = _mrf(data, mrf0, region)
    ptr = data["prep_train"]
    oof = torch.empty_like(sp_tr_in)
    for fit_rows, pred_rows in ((slice(0, half), slice(half, n)), (slice(half, n), slice(0, half))):
        sub = {k: v[fit_rows] for k, v in ptr.items() if k != "fit"}
        f_fit, f_pred = _features(sub, mrf0), _features(
            {k: v[pred_rows] for k, v in ptr.items() if k != "fit"}, mrf0)
        net = train_mrf(f_fit, sub["template"], tr["verts"][fit_rows], mrf0, vertices=region)
        with torch.no_grad():
            oof[pred_rows] = net(f_pred, ptr["template"][pred_rows])
    gt = data["test"]["verts"]
    err = {"MRFGC": float(mean_errors(sp_te, gt, vertices=region).mean())}
    per_seed = []
    for seed in seeds:
        rec = _resnet(data, oof, sp_te, replace(RESNET, seed=seed), region)
        per_seed.append(float(mean_errors(rec, gt, vertices=region).mean()))
        if log is not None:
            log(f"crossfit seed {seed}: Dual (out-of-fold S_P) {per_seed[-1]:.3f}")
    train_err = {"in_sample": float(mean_errors(sp_tr_in, tr["verts"], vertices=region).mean()),
                 "out_of_fold": float(mean_errors(oof, tr["verts"], vertices=region).mean())}
    return {"dual_out_of_fold": {**summarize(per_seed), "per_seed": per_seed},
            "mrf_test": err["MRFGC"], "mrf_train_error": train_err}


def check_run(model: MorphableModel, data: dict) -> dict:
    """A configuration small enough for a test to re-run: the closed-form rows on the full
    data, one MRF (2 epochs) and one ResNetGC (1 epoch) on 60 training faces, seed 0."""
    region = _region(model)
    gt = data["test"]["verts"]
    fixed = _closed_form(model, data, region)
    out = {m: float(mean_errors(r, gt, vertices=region).mean()) for m, r in fixed.items()}
    n, seed = CHECK["train_count"], CHECK["seed"]
    _, sp = _mrf(data, replace(MRF, epochs=CHECK["mrf_epochs"], seed=seed), region, count=n)
    out["MRFGC"] = float(mean_errors(sp, gt, vertices=region).mean())
    rec = _resnet(data, data["prep_train"]["template"], data["prep_test"]["template"],
                  replace(RESNET, epochs=CHECK["resnet_epochs"], seed=seed), region, count=n)
    out["ResNetGC"] = float(mean_errors(rec, gt, vertices=region).mean())
    return out


def _header(model: MorphableModel, argv, seeds) -> dict:
    return {"format_version": FORMAT_VERSION, "model": _model_record(model),
            "command": "python -m facelab.methods.dualnet.experiments " + " ".join(argv),
            "seeds": list(seeds), "data": {**DATA, "detail": asdict(DetailSampling())},
            "template": TEMPLATE, "mrf": asdict(MRF), "resnet": asdict(RESNET),
            "torch": str(torch.__version__), "threads": torch.get_num_threads()}


def load_results(name: str, folder=None, *, model: MorphableModel | None = None) -> dict:
    """A committed results file (``"table3"``, ``"fig3"`` or ``"scaling"``), refusing a stale one.

    folder: where to read (default: the package's ``results`` folder). model: the model the
    results must come from (default :func:`pinned_model`); a digest or format mismatch raises
    ValueError naming both.
    """
    if name not in ("table3", "fig3", "scaling", "crossfit"):
        raise ValueError(f"name: expected 'table3', 'fig3', 'scaling' or 'crossfit', got "
                         f"{name!r}")
    path = Path(folder or RESULTS_DIR) / f"{name}.json"
    return load_result_file(path, format_version=FORMAT_VERSION, model=model or pinned_model())


def _parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="python -m facelab.methods.dualnet.experiments",
                      description="Fan et al.'s Table III / Fig. 3 on faces with detail.")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for table3.json, fig3.json, scaling.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", choices=("table3", "fig3", "scaling", "crossfit"), default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    return p


def experiments_main(argv=None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    check_seeds(args.seeds)
    check_count(args.threads, "--threads")
    out = refuse_package_path(args.out, name="--out")
    names = [args.only] if args.only else ["table3", "fig3", "scaling", "crossfit"]
    targets = [out / f"{n}.json" for n in names]
    if not args.force:
        refuse_existing(targets)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, args.threads))
    model = pinned_model()
    t0 = time.perf_counter()
    data = build_data(model)
    print(f"data and templates: {time.perf_counter() - t0:.0f} s", flush=True)
    for name, target in zip(names, targets, strict=True):
        t0 = time.perf_counter()
        header = _header(model, argv, args.seeds)
        if name == "table3":
            body = run_table3(model, data, tuple(args.seeds),
                              log=lambda s: print(s, flush=True))
            body["check"] = {"config": CHECK, "result": check_run(model, data)}
        elif name == "crossfit":
            body = {**run_crossfit(model, data, tuple(args.seeds),
                                   log=lambda s: print(s, flush=True)),
                    "config": {"folds": 2, "mrf_seed": 0}}
        elif name == "scaling":
            body = {**run_scaling(model, data, tuple(args.seeds),
                                  log=lambda s: print(s, flush=True)), "config": SCALING}
        else:
            body = {**run_fig3(model, data, tuple(args.seeds),
                               log=lambda s: print(s, flush=True)),
                    "config": {**FIG3, "paper": PAPER_FIG3}}
        body["seconds_total"] = time.perf_counter() - t0
        write_json(target, {**header, **body}, overwrite=args.force)
        print(f"wrote {target} ({body['seconds_total']:.0f} s)", flush=True)
    return 0


def main(argv=None) -> int:
    """``python -m facelab.methods.dualnet.experiments``: errors as one line, no traceback."""
    return run_reporting("python -m facelab.methods.dualnet.experiments",
                         lambda: experiments_main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
