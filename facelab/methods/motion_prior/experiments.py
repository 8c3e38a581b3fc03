"""Reproduce NeuFace Table 4 (HuMoR-Face trained on diverse vs narrow motion: FD, APD).

    python -m facelab.methods.motion_prior.experiments --out DIR

1. Data (:mod:`.data`): synthesizes and NeuFace-annotates the diverse, held-out diverse and
   narrow clips into ``DIR/data`` (resumable).
2. For each training set ("diverse": the NeuFace-dataset role, "narrow": VOCASET's) and each
   seed: trains HuMoR-Face (:func:`.training.train_prior`, :data:`SETTINGS`), rounds its
   weights to float16 (what is committed; every number below uses the rounded weights), and
   evaluates long-term sampling (:func:`.sampling.sample_motion`, 300 frames = 10 s at 30 fps,
   with :class:`.sampling.FaceProjection`):
   * FD (:func:`facelab.metrics.motion_fd`): ``FD_SAMPLES`` samples from the first state of
     each held-out clip against the held-out clips' annotated motions (NeuFace App. A: the
     hold-out split is the real distribution);
   * APD (:func:`facelab.metrics.motion_apd`, cm): 50 samples from one start state, the
     model's mean face at rest, frontal, mouth closed (:func:`rest_state`: a state both
     training sets contain), and, reported beside it, from the first state of held-out
     clip 0 (a turned, expressive head: outside the narrow set, where its model leaves the
     face space: the paper's reason for giving no APD for VOCASET);
   * sampling speed (frames per second over the 50 samples).
3. Trivial rows, same protocol: ``static`` (the start state held for 10 s), ``random walk``
   (each landmark takes Gaussian steps with the diverse set's per-coordinate step std,
   projected the same way), and the data themselves (FD of the training motions against the
   held-out ones: how far each training set is from the real distribution).

Writes ``DIR/table4.json`` and ``DIR/humor_face.pt`` (the diverse and narrow seed-0 models,
float16, prior + decoder + normalisation: all that sampling needs); the committed copies in
``results/`` are re-checked by ``tests/test_motion_prior_results.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from facelab.methods.motion_prior.data import (
    ANNOTATION,
    FRAMES,
    SETS,
    clip_config,
    data_digest,
    load_set,
    make_set,
)
from facelab.methods.motion_prior.model import MotionPriorCVAE
from facelab.methods.motion_prior.sampling import FaceProjection, sample_motion
from facelab.methods.motion_prior.state import STATE
from facelab.methods.motion_prior.training import TrainSettings, train_prior
from facelab.model.provenance import check_model, model_record

__all__ = ["COMMAND", "PAPER", "RESULTS", "SETTINGS", "WEIGHTS", "check_sample",
           "evaluate_prior", "load_prior", "load_results", "rest_state", "run_experiments"]

RESULTS = Path(__file__).resolve().parent / "results" / "table4.json"
WEIGHTS = Path(__file__).resolve().parent / "results" / "humor_face.pt"
COMMAND = "python -m facelab.methods.motion_prior.experiments --out DIR"

SETTINGS = TrainSettings()
"""Training settings of every row (TrainSettings' defaults; recorded in the results)."""

STEPS, APD_SAMPLES, FD_SAMPLES = 300, 50, 4
"""Sampled transitions (10 s at 30 fps), samples for APD, samples per held-out start for FD."""

PAPER = {"VOCASET": {"scale": "small", "environment": "in-the-lab", "fd": 420.92, "apd_cm": None},
         "NeuFace_MEAD": {"scale": "large", "environment": "in-the-lab", "fd": 78.99,
                          "apd_cm": 3.56},
         "NeuFace_VoxCeleb2": {"scale": "large", "environment": "in-the-wild", "fd": 31.32,
                               "apd_cm": 52.69}}
"""NeuFace Table 4 (FD with learned features of Ng et al. 2022, not comparable in value to
facelab's hand-made features; APD in cm). The narrow set plays VOCASET, the diverse set
NeuFace_VoxCeleb2."""


def _landmarks(states: torch.Tensor) -> torch.Tensor:
    return STATE.landmarks_of(states)  # (..., 68, 3) cm


def rest_state(model) -> torch.Tensor:
    """(420,) the mean face, frontal (R = I), jaw closed, not moving: J = mean landmarks / 10
    (cm), velocities 0."""
    J = model.landmark_rows(model.mean_shape).float() / 10.0  # (68, 3) cm
    return STATE.pack({"phi": torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
                       "phi_dot": torch.zeros(3), "theta": torch.zeros(3),
                       "J": J.reshape(-1), "J_dot": torch.zeros(J.numel())})


def check_sample(net: MotionPriorCVAE, start: torch.Tensor, projection: FaceProjection, *,
                 samples: int = 8, steps: int = 60, seed: int = 0) -> dict:
    """A small re-evaluation the results test repeats: APD of ``samples`` samples of
    ``steps`` steps from ``start`` (generator seed ``seed``) and the mean |J| (cm)."""
    s = sample_motion(net, start, steps, samples=samples,
                      generator=torch.Generator().manual_seed(seed), projection=projection)
    from facelab import metrics

    J = _landmarks(s)
    return {"apd_cm": metrics.motion_apd(J), "mean_abs_J_cm": float(J.abs().mean()),
            "samples": samples, "steps": steps, "seed": seed}


def evaluate_prior(net: MotionPriorCVAE, test: list, projection: FaceProjection,
                   rest: torch.Tensor, *, seed: int, sampler=None) -> dict:
    """FD, APD and sampling speed of ``net`` (module docs, step 2). ``sampler``: optional
    callable(starts (S, 420), steps, generator) -> (S, steps + 1, 420) replacing the model
    (the trivial rows)."""
    from facelab import metrics

    def run(starts, gen):
        if sampler is not None:
            return sampler(starts, STEPS, gen)
        return sample_motion(net, starts, STEPS, generator=gen, projection=projection)

    real = torch.stack([_landmarks(q) for q in test])  # (N, T, 68, 3)
    starts = torch.stack([q[0] for q in test]).repeat_interleave(FD_SAMPLES, 0)
    gen = torch.Generator().manual_seed(seed)
    fd = metrics.motion_fd(_landmarks(run(starts, gen)), real)
    t0 = time.perf_counter()
    s = run(rest[None].expand(APD_SAMPLES, -1), torch.Generator().manual_seed(seed + 100))
    seconds = time.perf_counter() - t0
    J = _landmarks(s)
    s_test = run(test[0][:1].expand(APD_SAMPLES, -1), torch.Generator().manual_seed(seed + 200))
    J_test = _landmarks(s_test)
    return {"fd": fd, "apd_cm": metrics.motion_apd(J), "apd_test_start_cm":
            metrics.motion_apd(J_test), "fps": APD_SAMPLES * STEPS / seconds,
            "max_abs_J_cm": float(torch.maximum(J.abs().max(), J_test.abs().max()))}


def _static(starts, steps, gen):
    return starts[:, None].expand(-1, steps + 1, -1).clone()


def _random_walk(step_std: torch.Tensor, projection: FaceProjection):
    """Landmarks take N(0, step_std²) steps (per coordinate), projected onto the face."""
    def sampler(starts, steps, gen):
        x, out = starts.float(), [starts.float()]
        offset = projection.identity_offset(x)
        sl = STATE.slices["J"]
        for _ in range(steps):
            nxt = x.clone()
            nxt[:, sl] = x[:, sl] + step_std * torch.randn(x[:, sl].shape, generator=gen)
            x = projection.project(nxt, x, offset)
            out.append(x)
        return torch.stack(out, 1)
    return sampler


def _round_weights(net: MotionPriorCVAE) -> MotionPriorCVAE:
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.half().float())
    return net


def _summary(rows: list) -> dict:
    out = {}
    for key in rows[0]:
        vals = [r[key] for r in rows]
        if isinstance(vals[0], (int, float)):
            out[key] = {"mean": statistics.fmean(vals),
                        "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0}
    return out


def _save_weights(path: Path, nets: dict, record: dict, digest: str) -> None:
    from facelab.atomic_io import atomic_path

    blob = {"model": record, "data_digest": digest, "command": COMMAND,
            "config": next(iter(nets.values())).config(), "nets": {}}
    for name, net in nets.items():
        sd = {k: (v.half() if k.startswith(("prior_net", "decoder_net")) else v)
              for k, v in net.state_dict().items() if not k.startswith("encoder_net")}
        blob["nets"][name] = sd
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_prior(model, name: str = "diverse", path=None) -> MotionPriorCVAE:
    """A committed HuMoR-Face model ("diverse" or "narrow", seed 0) for ``model`` (version 1;
    refuses another model). Its encoder is not stored (sampling needs only the prior and the
    decoder) and stays at its initialisation; the model is in eval mode."""
    p = WEIGHTS if path is None else Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: no such HuMoR-Face weights file: {p}")
    blob = torch.load(p, map_location="cpu", weights_only=True)
    check_model(blob.get("model"), model, what=f"HuMoR-Face weights {p.name}", retrain=COMMAND)
    if name not in blob["nets"]:
        raise ValueError(f"name: expected one of {sorted(blob['nets'])}, got {name!r}")
    torch.manual_seed(0)
    net = MotionPriorCVAE(**blob["config"])
    state = {k: v.float() for k, v in blob["nets"][name].items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("encoder_net") for k in missing):
        raise ValueError(f"{p.name}: unexpected weights {unexpected} / missing {missing}")
    return net.eval()


def load_results(model, path=None) -> dict:
    """The committed Table 4 results, checked against ``model`` (refuses another model)."""
    p = RESULTS if path is None else Path(path)
    res = json.loads(Path(p).read_text())
    check_model(res.get("model"), model, what=f"HuMoR-Face results {Path(p).name}",
                retrain=COMMAND)
    return res


def run_experiments(out: Path, seeds=(0, 1, 2), log=print) -> dict:
    """Steps 1-3 of the module docs; writes DIR/table4.json and DIR/humor_face.pt."""
    from facelab import metrics
    from facelab.model.registry import load_model

    torch.set_num_threads(1)
    out = Path(out)
    model = load_model("synthetic", "teaching", version=1)
    t0 = time.perf_counter()
    for kind in ("diverse", "diverse-test", "narrow"):
        make_set(out / "data", kind, model, log=log)
    data_seconds = time.perf_counter() - t0
    sets = {kind: load_set(out / "data", kind) for kind in SETS}
    truth = {kind: load_set(out / "data", kind, truth=True)[0] for kind in SETS}
    states = {kind: seqs for kind, (seqs, _) in sets.items()}
    annotation = {}
    for kind, (seqs, metas) in sets.items():
        err = [float((_landmarks(a) - _landmarks(b)).norm(dim=-1).mean())
               for a, b in zip(seqs, truth[kind], strict=True)]
        annotation[kind] = {
            "clips": len(seqs), "frames_per_clip": FRAMES,
            "neuface_seconds_per_clip": statistics.fmean(m["seconds"] for m in metas),
            "nme_percent": statistics.fmean(m["nme"] for m in metas),
            "mpve_mm": statistics.fmean(m["mpve"] for m in metas),
            "landmark_error_cm": statistics.fmean(err),
            "example_config": repr(clip_config(kind, SETS[kind][0]))}
    test = states["diverse-test"]
    real = torch.stack([_landmarks(q) for q in test])
    projection = FaceProjection(model, fps=SETTINGS.fps)
    rest = rest_state(model)
    rows, nets = {"diverse": [], "narrow": []}, {}
    for kind in ("diverse", "narrow"):
        for seed in seeds:
            settings = TrainSettings(**{**SETTINGS.__dict__, "seed": seed})
            res = train_prior(states[kind], settings)
            net = _round_weights(res.net)
            row = evaluate_prior(net, test, projection, rest, seed=seed)
            row.update(train_seconds=res.seconds, final_loss=res.history[-1]["total"])
            rows[kind].append(row)
            log(f"{kind} seed {seed}: " + " ".join(f"{k}={v:.4g}" for k, v in row.items()))
            if seed == seeds[0]:
                nets[kind] = net
    step_std = torch.cat([q[1:, STATE.slices["J"]] - q[:-1, STATE.slices["J"]]
                          for q in states["diverse"]]).std(0)
    trivial = {"static": [], "random walk": []}
    for seed in seeds:
        trivial["static"].append(evaluate_prior(None, test, projection, rest, seed=seed,
                                                sampler=_static))
        trivial["random walk"].append(evaluate_prior(
            None, test, projection, rest, seed=seed,
            sampler=_random_walk(step_std, projection)))
    data_fd = {kind: metrics.motion_fd(torch.stack([_landmarks(q) for q in states[kind]]), real)
               for kind in ("diverse", "narrow")}
    check = {kind: check_sample(nets[kind], rest, projection) for kind in nets}
    digest = data_digest(states)
    result = {
        "model": model_record(model), "model_version": 1, "data_digest": digest,
        "command": COMMAND, "threads": torch.get_num_threads(),
        "settings": SETTINGS.record(), "protocol": {
            "steps": STEPS, "apd_samples": APD_SAMPLES, "fd_samples_per_start": FD_SAMPLES,
            "fd_starts": len(test), "fps": SETTINGS.fps, "projection": "FaceProjection",
            "annotation": ANNOTATION},
        "annotation": annotation, "data_seconds": data_seconds,
        "per_seed": {**rows, **trivial}, "summary": {k: _summary(v) for k, v in
                                                     {**rows, **trivial}.items()},
        "data_fd": data_fd, "check": check,
        "paper": PAPER}
    from facelab.atomic_io import write_json

    out.mkdir(parents=True, exist_ok=True)
    _save_weights(out / "humor_face.pt", nets, result["model"], digest)
    write_json(out / "table4.json", result)
    return result


def main(argv=None) -> int:
    """The command (module docs); errors are reported in one line (exit status 1)."""
    from facelab.atomic_io import refuse_package_path
    from facelab.command_errors import run_reporting

    prog = "python -m facelab.methods.motion_prior.experiments"
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True,
                    help="folder for the data, table4.json and humor_face.pt")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)

    def command() -> int:
        if any(s < 0 for s in args.seeds) or len(set(args.seeds)) != len(args.seeds):
            raise ValueError(f"--seeds: expected distinct ints >= 0, got {args.seeds}")
        out = refuse_package_path(args.out, name="--out")
        t0 = time.perf_counter()
        run_experiments(out, tuple(args.seeds))
        print(f"wrote {out / 'table4.json'} and {out / 'humor_face.pt'} in "
              f"{time.perf_counter() - t0:.0f} s")
        return 0

    return run_reporting(prog, command)


if __name__ == "__main__":
    raise SystemExit(main())
