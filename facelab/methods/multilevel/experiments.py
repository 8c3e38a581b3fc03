"""The supplement's studies on synthetic ground truth, scaled to a CPU; writes the results JSON.

The committed ``results/experiments.json`` and ``results/modes.npz`` were made with (one process
per seed, in parallel; writing inside the installed package is refused, so to /tmp, then copied)::

    export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1
    python -m facelab.methods.multilevel.experiments --seeds 0 --out /tmp/mlexp/seed0.json \
        --modes /tmp/mlexp/modes.npz
    python -m facelab.methods.multilevel.experiments --seeds 1 --out /tmp/mlexp/seed1.json
    python -m facelab.methods.multilevel.experiments --seeds 2 --out /tmp/mlexp/seed2.json
    python -m facelab.methods.multilevel.experiments --seeds 0 --long --out /tmp/mlexp/long0.json
    (and --seeds 1 / 2 --long)
    python -m facelab.methods.multilevel.experiments --merge /tmp/mlexp/seed{0,1,2}.json \
        /tmp/mlexp/long{0,1,2}.json --out /tmp/mlexp/experiments.json
    cp /tmp/mlexp/experiments.json /tmp/mlexp/modes.npz facelab/methods/multilevel/results/

About 72 min of wall time per seed with six such processes on a shared 2-core machine under a
load average of ~12 (``train_seconds`` in the JSON).

Per seed (corpus and initialisation seed): one base pre-training, then fine-tuning runs from
it: C = 0, 100, 250, 500 (Fig. 4), the non-linear spaces (Figs. 2-3), without the shape
regularisers and without the reflectance sparsity priors (Figs. 5-7); a separate pre-training
with the base limited to 40 reflectance modes on 3DMM-only images (Fig. 8); a photometric-only
pre-training (no landmarks); the untrained network (mean face) as the trivial baseline. All
rows are evaluated on the same held-out images (corpus seed
:data:`TEST_SEED`, never trained on).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from facelab.atomic_io import atomic_path, write_json
from facelab.methods.multilevel.corpus import DetailConfig, DetailFaces
from facelab.methods.multilevel.evaluation import (
    evaluate,
    oracle_errors,
    reconstruction_size,
    regressor_rate,
)
from facelab.methods.multilevel.loss import MultilevelLossConfig
from facelab.methods.multilevel.network import MultilevelNet
from facelab.methods.multilevel.training import (
    MultilevelTrainConfig,
    base_model,
    finetune,
    pretrain,
)

__all__ = ["FACELAB_LOSS", "PAPER_CLAIMS", "RESULTS_DIR", "TEST_SEED", "VERSION", "fingerprint",
           "format_table", "load_model", "load_modes", "load_results", "mean_sd", "modes_model",
           "run_seed",
           "settings", "test_set"]

VERSION = 1
TEST_SEED = 1000
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PRETRAIN_STEPS, FINETUNE_STEPS, CORPUS, TEST_COUNT = 400, 120, 320, 32

FACELAB_LOSS = MultilevelLossConfig(ref=0.13, glo=0.8)
"""The fine-tuning weights of the experiments: the supplement's, with w_ref and w_glo / 100.
Measured at the start of fine-tuning on this corpus, w_glo E_glo = 80 x 0.003 = 0.24 is 4x the
data term w_photo E_photo = 0.2 x 0.28 = 0.056, and the final reflectance is flattened to one
skin colour within ~100 steps (E_glo -> 4e-5, the reflectance error rises); / 100 puts the
priors at ~5 % of the data term. (Our E_ref, E_glo are means; the paper's normalisation is
not stated.)"""


def load_model():
    """The pinned built-in model of every result: ``load_model("synthetic", "teaching",
    version=1)``."""
    from facelab.model import load_model as _load

    return _load("synthetic", "teaching", version=VERSION)


def settings(seed: int, **changes) -> MultilevelTrainConfig:
    """The training settings of the experiments for ``seed`` (plus ``changes``)."""
    base = MultilevelTrainConfig(pretrain_steps=PRETRAIN_STEPS, finetune_steps=FINETUNE_STEPS,
                                 corpus_size=CORPUS, seed=seed, loss=FACELAB_LOSS)
    return dataclasses.replace(base, **changes)


def test_set(model, detail: DetailConfig | None = None, count: int = TEST_COUNT) -> dict:
    """The held-out images (corpus seed :data:`TEST_SEED`)."""
    return DetailFaces(model, 64, count, seed=TEST_SEED, detail=detail).batch(0, count)


def _means(errors: dict) -> dict:
    return {k: float(v.mean()) for k, v in errors.items()}


def _with_correctives(pre: MultilevelNet, correctives: int, kind: str, seed: int):
    """A fresh network with C correctives of ``kind`` and the pretrained base's weights."""
    torch.manual_seed(seed + 17)
    net = MultilevelNet(pre.layout, pre.geo_space.num_vertices, correctives, kind,
                        image_size=pre.base.image_size, z_scale=pre.base.z_scale)
    net.base.load_state_dict(pre.base.state_dict())
    return net


FINETUNES = {
    "C=0 (3DMM only)": dict(correctives=0),
    "C=100": dict(correctives=100),
    "C=250": dict(correctives=250),
    "C=500 linear": dict(correctives=500),
    "C=500 one non-linearity": dict(correctives=500, kind="one_nonlinearity"),
    "C=500 two non-linearities": dict(correctives=500, kind="two_nonlinearities"),
    "C=500 no shape regularisers": dict(correctives=500, loss=dataclasses.replace(
        FACELAB_LOSS, smo=0.0, sta=0.0)),
    "C=500 no reflectance sparsity": dict(correctives=500, loss=dataclasses.replace(
        FACELAB_LOSS, ref=0.0, glo=0.0)),
}


def run_seed(seed: int, *, log=print, keep: str | None = "C=500 linear"):
    """All rows for one seed: {row: mean errors}, {row: train seconds}, and the network named
    ``keep`` (for its corrective modes)."""
    torch.set_num_threads(1)
    model = load_model()
    test = test_set(model)
    rows, seconds, kept = {}, {}, None
    fresh = MultilevelNet(*_net_args(model), 0)
    rows["mean face (untrained)"] = _means(evaluate(fresh, model, test))
    t = time.perf_counter()
    pre, _ = pretrain(model, settings(seed, correctives=0), callback=[])
    seconds["pretrain"] = time.perf_counter() - t
    rows["base only (pre-trained, no fine-tuning)"] = _means(evaluate(pre, model, test))
    log(f"seed {seed} pretrain {seconds['pretrain']:.0f} s {rows[list(rows)[-1]]}")
    for name, change in FINETUNES.items():
        cfg = settings(seed, **change)
        net = _with_correctives(pre, cfg.correctives, cfg.kind, seed)
        t = time.perf_counter()
        try:
            finetune(model, net, cfg, callback=[])
            rows[name] = _means(evaluate(net, model, test))
        except FloatingPointError as exc:  # a failed training is a result, not a crash
            rows[name] = {"failed": str(exc)}
        seconds[name] = time.perf_counter() - t
        log(f"seed {seed} {name} {seconds[name]:.0f} s {rows[name]}")
        if name == keep:
            kept = net
    # Fig. 8: 3DMM-only corpus (80 reflectance modes), base limited to 40
    plain = DetailConfig(geometry_mm=0.0, reflectance=0.0)
    cfg40 = settings(seed, correctives=500, base_albedo=40, detail=plain)
    test40 = test_set(model, plain)
    t = time.perf_counter()
    net40, _ = pretrain(model, cfg40, callback=[])
    rows["40 modes: base only"] = _means(evaluate(net40, model, test40, base_model(model, cfg40)))
    finetune(model, net40, cfg40, callback=[])
    rows["40 modes: final (C=500)"] = _means(evaluate(net40, model, test40,
                                                      base_model(model, cfg40)))
    seconds["40 modes"] = time.perf_counter() - t
    log(f"seed {seed} 40 modes {rows['40 modes: final (C=500)']}")
    t = time.perf_counter()
    photo, _ = pretrain(model, settings(seed, correctives=0, pretrain_land=0.0), callback=[])
    rows["base, photometric only (no landmarks)"] = _means(evaluate(photo, model, test))
    seconds["photometric only"] = time.perf_counter() - t
    return rows, seconds, kept


LONG_STEPS = 400


def run_long(seed: int, *, log=print):
    """The longer fine-tuning check for ``seed``: the same pre-trained base, fine-tuned
    :data:`LONG_STEPS` steps with C = 0 and C = 500 (does the correctives' gain grow with
    training?). Returns ({row: mean errors}, {row: seconds})."""
    torch.set_num_threads(1)
    model = load_model()
    test = test_set(model)
    rows, seconds = {}, {}
    t = time.perf_counter()
    pre, _ = pretrain(model, settings(seed, correctives=0), callback=[])
    seconds["long: pretrain"] = time.perf_counter() - t
    for c in (0, 500):
        name = f"{LONG_STEPS} fine-tuning steps: C={c}"
        cfg = settings(seed, correctives=c, finetune_steps=LONG_STEPS)
        net = _with_correctives(pre, c, "linear", seed)
        t = time.perf_counter()
        finetune(model, net, cfg, callback=[])
        rows[name] = _means(evaluate(net, model, test))
        seconds[name] = time.perf_counter() - t
        log(f"seed {seed} {name} {seconds[name]:.0f} s {rows[name]}")
    return rows, seconds


def _net_args(model):
    from facelab.methods.mofa.layout import CodeLayout

    return CodeLayout.for_model(model), model.num_vertices


def fingerprint() -> dict:
    """A tiny deterministic run of the whole pipeline (corpus, pre-training, fine-tuning,
    evaluation) whose numbers are stored with the results; a test recomputes it (stale code
    or data -> mismatch)."""
    torch.set_num_threads(1)
    model = load_model()
    cfg = MultilevelTrainConfig(pretrain_steps=2, finetune_steps=2, batch_size=2, corpus_size=2,
                                correctives=4, seed=0, loss=FACELAB_LOSS)
    net, h1 = pretrain(model, cfg, callback=[])
    net, h2 = finetune(model, net, cfg, callback=[])
    errors = _means(evaluate(net, model, test_set(model, count=2)))
    return {"pretrain_total": h1.losses["total"][-1], "finetune_total": h2.losses["total"][-1],
            **{k: errors[k] for k in ("photo_base", "photo_final", "reflectance_final")}}


def mean_sd(values) -> list[float]:
    """[mean, sample sd] of a list of numbers (sd 0 for one value)."""
    v = np.asarray(values, dtype=float)
    return [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0]


def _modes(net: MultilevelNet, count: int = 6) -> dict[str, np.ndarray]:
    """The leading principal directions of the learned linear spaces (U_k s_k, (N, 3) each)."""
    out = {}
    for name, space in (("geometry", net.geo_space), ("reflectance", net.ref_space)):
        M = space.basis.detach().reshape(-1, space.size)  # (3N, C)
        U, S, _ = torch.linalg.svd(M, full_matrices=False)
        out[f"{name}_modes"] = (U[:, :count] * S[:count]).T.reshape(
            count, -1, 3).numpy().astype(np.float16)  # (count, N, 3)
        out[f"{name}_singular"] = S.numpy().astype(np.float32)
    return out


def _check_provenance(meta: dict, what: str) -> None:
    model = load_model()
    if int(meta.get("version", -1)) != VERSION or str(meta.get("digest")) != model.digest():
        raise ValueError(f"{what}: made from model version {meta.get('version')} digest "
                         f"{str(meta.get('digest'))[:12]}..., expected version {VERSION} digest "
                         f"{model.digest()[:12]}... (rerun the experiments script)")


def load_results(path=None) -> dict:
    """The committed results (``results/experiments.json`` by default); refuses results made
    from another model (version or ``digest()`` mismatch)."""
    path = RESULTS_DIR / "experiments.json" if path is None else Path(path)
    result = json.loads(Path(path).read_text())
    _check_provenance(result, f"path {str(path)!r}")
    return result


def load_modes(path=None) -> dict[str, np.ndarray]:
    """The committed leading corrective modes of the C = 500 linear model (seed 0):
    "geometry_modes" (k, N, 3) mm and "reflectance_modes" (k, N, 3) per unit of the principal
    coefficient, and the singular values of each learned basis M. Refuses a model mismatch."""
    path = RESULTS_DIR / "modes.npz" if path is None else Path(path)
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    _check_provenance({"version": int(data["version"]), "digest": str(data["digest"])},
                      f"path {str(path)!r}")
    return data


def modes_model(model, modes: dict, geometry_scale: float = 10.0):
    """The learned corrective modes as a :class:`facelab.MorphableModel`, to browse with
    :class:`facelab.widgets.ModelExplorer`: its "identity" modes are the geometry correctives
    (x ``geometry_scale``, to make millimetres visible), its "albedo" modes the reflectance
    correctives, on ``model``'s mean face; no expression modes."""
    from facelab.model.morphable import MorphableModel

    geo = torch.from_numpy(np.asarray(modes["geometry_modes"], np.float32))  # (k, N, 3)
    ref = torch.from_numpy(np.asarray(modes["reflectance_modes"], np.float32))
    m = model.to(dtype=torch.float32)
    return MorphableModel(
        name="multilevel-correctives", mean_shape=m.mean_shape,
        id_basis=geometry_scale * geo.permute(1, 2, 0).contiguous(),  # (N, 3, k)
        exp_basis=torch.zeros(m.num_vertices, 3, 0), mean_albedo=m.mean_albedo,
        albedo_basis=ref.permute(1, 2, 0).contiguous(), faces=m.faces, landmarks=m.landmarks,
        face_mask=m.face_mask, landmark_vertices=m.landmark_vertices,
        landmark_weights=m.landmark_weights, source="learned correctives (results/modes.npz)")


PAPER_CLAIMS = {
    "mean face (untrained)": "",
    "base only (pre-trained, no fine-tuning)": "",
    "C=0 (3DMM only)": "baseline of Fig. 4 (highest error)",
    "C=100": "lower than C=0 (Fig. 4)",
    "C=250": "lower than C=100 (Fig. 4)",
    "C=500 linear": "lowest (Figs. 3, 4)",
    "C=500 one non-linearity": "higher than linear (Fig. 3)",
    "C=500 two non-linearities": "higher than linear (Fig. 3)",
    "C=500 no shape regularisers": "'complete failure during training' (Sec. 4)",
    "C=500 no reflectance sparsity": "shading baked into reflectance (Fig. 5)",
    "40 modes: base only": "",
    "40 modes: final (C=500)": "reflectance error 0.072 (Fig. 8)",
    "base, photometric only (no landmarks)": "",
    "400 fine-tuning steps: C=0": "(the paper: 190k steps)",
    "400 fine-tuning steps: C=500": "lower than C=0 (Fig. 4)",
}
"""What the supplement says about each row."""

TABLE_COLUMNS = (("photo_base", "photo base"), ("photo_final", "photo final"),
                 ("photo_gain", "gain"),
                 ("geometry_final_mm", "geom mm"), ("reflectance_final", "refl err"),
                 ("shading_leak", "shading leak"), ("corrective_mm", "|D| mm"),
                 ("scale_ratio_final", "size ratio"))


def format_table(result: dict, rows=None) -> str:
    """A plain-text table of mean +- sd over seeds for ``rows`` (default all), with the
    supplement's claim for each row underneath it."""
    summary = result["summary"]
    rows = list(summary) if rows is None else list(rows)
    head = f"{'row':34s}" + "".join(f"{t:>15s}" for _, t in TABLE_COLUMNS)
    lines = [head, "-" * len(head)]
    for row in rows:
        s = summary[row]
        cells = "".join(f"{f'{s[k][0]:.4f}±{s[k][1]:.4f}':>15s}" if k in s else f"{'-':>15s}"
                        for k, _ in TABLE_COLUMNS)
        lines.append(f"{row[:34]:34s}{cells}")
        fail = f"{s['failed_seeds']} seed(s) failed; " if s.get("failed_seeds") else ""
        claim = PAPER_CLAIMS.get(row, "")
        if claim or fail:
            lines.append(f"{'':4s}paper: {claim}" if not fail else f"{'':4s}{fail}{claim}")
    return "\n".join(lines)


def _merge(paths, out: Path, command: str) -> dict:
    model = load_model()
    parts = [json.loads(Path(p).read_text()) for p in paths]
    runs: dict = {}
    for part in parts:
        for row, metrics in part["rows"].items():
            if "photo_base" in metrics:  # the final level's gain over its own base, paired
                metrics = dict(metrics, photo_gain=metrics["photo_base"] - metrics["photo_final"])
            runs.setdefault(row, {})[str(part["seed"])] = metrics
    seconds: dict = {}
    for part in parts:
        seconds.setdefault(str(part["seed"]), {}).update(part["seconds"])
    summary = {}
    for row, by_seed in runs.items():
        ok = [m for m in by_seed.values() if "failed" not in m]
        summary[row] = {k: mean_sd([m[k] for m in ok]) for k in (ok[0] if ok else {})}
        summary[row]["failed_seeds"] = len(by_seed) - len(ok)
    seed_net = MultilevelNet(*_net_args(model), 500)
    rates = {f"{t} thread{'s' if t > 1 else ''}": regressor_rate(seed_net, t, repeats=100)
             for t in (1, 2)}
    result = {
        "model": "synthetic/teaching", "version": VERSION, "digest": model.digest(),
        "command": command, "seeds": sorted({p["seed"] for p in parts}),
        "seed_commands": [p["command"] for p in parts],
        "threads": "NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1, torch.set_num_threads(1)",
        "settings": {"pretrain_steps": PRETRAIN_STEPS, "finetune_steps": FINETUNE_STEPS,
                     "corpus_size": CORPUS, "test_images": TEST_COUNT, "test_seed": TEST_SEED,
                     "batch_size": 8, "image_size": 64, "threads": 1,
                     "loss": dataclasses.asdict(FACELAB_LOSS),
                     "detail": dataclasses.asdict(DetailConfig())},
        "train_seconds": seconds,
        "runs": runs, "summary": summary,
        "size_bytes": reconstruction_size(seed_net), "rate": rates,
        "oracle": _means(oracle_errors(model, test_set(model))),
        "fingerprint": fingerprint(),
    }
    write_json(out, result, sort_keys=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facelab.methods.multilevel.experiments",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[])
    parser.add_argument("--merge", nargs="*", default=[], help="per-seed JSON files to merge")
    parser.add_argument("--out", required=True, help="output JSON (refuses to overwrite "
                        "unless --force)")
    parser.add_argument("--modes", default=None, help="with --seeds: save the C=500 linear "
                        "model's leading corrective modes (.npz) of the first seed")
    parser.add_argument("--long", action="store_true", help="with --seeds: only the longer "
                        "fine-tuning check (C = 0 and 500, LONG_STEPS steps)")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"error: --out {out} exists; pass --force to replace it", file=sys.stderr)
        return 2
    command = "python -m facelab.methods.multilevel.experiments " + " ".join(
        sys.argv[1:] if argv is None else argv)
    if args.merge:
        result = _merge(args.merge, out, command)
        for row, s in result["summary"].items():
            print(f"{row:42s} " + " ".join(f"{k}={v[0]:.4f}+-{v[1]:.4f}" for k, v in s.items()
                                           if isinstance(v, list) and k.startswith(
                                               ("photo", "refl", "geometry_final", "shading"))))
        return 0
    if len(args.seeds) != 1:
        print("error: --seeds: expected exactly one seed per process (merge them after)",
              file=sys.stderr)
        return 2
    seed = args.seeds[0]
    t = time.perf_counter()
    if args.long:
        rows, seconds = run_long(seed)
        kept = None
    else:
        rows, seconds, kept = run_seed(seed)
    part = {"seed": seed, "rows": rows, "seconds": seconds, "command": command,
            "total_seconds": time.perf_counter() - t}
    write_json(out, part, sort_keys=True)
    if args.modes and kept is not None:
        model = load_model()
        with atomic_path(args.modes) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, digest=np.array(model.digest()), version=VERSION,
                                    seed=seed, command=np.array(command), **_modes(kept))
    return 0 if all(math.isfinite(v) for r in rows.values() for v in r.values()
                    if isinstance(v, float)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
