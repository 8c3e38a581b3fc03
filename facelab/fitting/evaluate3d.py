"""Photo fitting measured in 3D: :func:`facelab.fitting.fit_image` against scans it never saw.

The photos are rendered heads whose ground truth the model cannot represent exactly,

    S_hat = mean + E_id alpha + E_exp delta + D            (model space, mm; version 2 head)

with D a detail field of :func:`facelab.data.detail.detail_field` (wrinkles, bumps, nose and
chin variants, asymmetry: the role of real scans' out-of-span shape in Fan et al. Sec. IV-A),
rendered *textured* (the model's albedo maps, random reflectance, random SH light, random
background) through the one chain :func:`facelab.form` / :func:`facelab.render` by a pinhole
camera, at a fixed yaw (0° and 30° by default), no pitch or roll, no jaw. The fitter gets the
image and the 68 projected landmarks of S_hat with Gaussian annotation noise; it never sees
S_hat, D or the coefficients.

The error is NoW's (:func:`facelab.metrics.scan_to_mesh_error`): the "scan" is a dense set of
points sampled uniformly on S_hat's face region (the model's face mask, cropped to a
``scan_radius`` ball around the nose tip as NoW crops its scans), aligned to the prediction
through 7 landmarks (eye corners, nose tip, mouth corners), then rigid + scale ICP, then
point-to-surface distances. The baseline is the **mean face** (mean shape, neutral) under the
same protocol: a fit must beat it to have learnt anything about the face from the photo.

Every case depends only on ``(seed, yaw)``, the identity, reflectance, light and detail only on
``seed`` (the same person at every yaw).

``python -m facelab.fitting.evaluate3d --out DIR`` writes ``DIR/evaluate3d.json`` (per-case
errors, mean ± sd over seeds per method and yaw, the model record, the command); the committed
copy is ``facelab/fitting/results/evaluate3d.json`` (:func:`load_results` refuses a digest
mismatch).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from facelab.atomic_io import refuse_existing, refuse_package_path, write_json
from facelab.command_errors import CommandParser, check_count, check_seeds, run_reporting
from facelab.data.detail import DetailSampling, detail_field
from facelab.data.faces import FaceSampling, SyntheticFaces, random_backgrounds
from facelab.fitting.fit_image import FitSettings, fit_image
from facelab.formation import form, render
from facelab.metrics import ScanError, scan_to_mesh_error
from facelab.model.morphable import MorphableModel
from facelab.model.provenance import load_result_file, model_record
from facelab.progress import History

__all__ = ["CASES", "DEFAULT_METHOD", "FORMAT_VERSION", "METHODS", "RESULTS_DIR", "CaseSpec",
           "evaluate_case", "evaluate_mesh", "fit_variants", "format_table", "load_results",
           "make_case", "pinned_model", "run", "scan_points"]

FORMAT_VERSION = 1
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# NoW's seven alignment landmarks in iBUG-68 numbering: outer/inner eye corners, nose tip,
# mouth corners.
NOW_LANDMARKS = (36, 39, 42, 45, 30, 48, 54)


@dataclass(frozen=True)
class CaseSpec:
    """How the test photos and scans are made (lengths in mm, angles in degrees).

    size: image side (pixels). distance: camera distance (mm), fov_deg: vertical field of view.
    exp_scale: std of the expression coefficients (mild expressions; no named ones, no jaw).
    landmark_noise_px: std of the Gaussian noise on the 68 landmarks given to the fitter.
    scan_points: points sampled on the ground truth's face region; scan_radius: the crop
        around the nose tip (NoW crops its scans to the face this way).
    """

    size: int = 256
    distance: float = 950.0
    fov_deg: float = 16.0
    exp_scale: float = 0.3
    landmark_noise_px: float = 0.5
    scan_points: int = 3000
    scan_radius: float = 95.0


CASES = CaseSpec()


def fit_variants() -> dict:
    """The fitter configurations compared (name -> :class:`FitSettings`): the ablation of
    the two changes that made ``fit_image`` beat the mean face in 3D."""
    return {"landmarks + colour, 40/32 modes": FitSettings(n_id=40, n_exp=32, refine=None),
            "landmarks + colour, all modes": FitSettings(refine=None),
            "fit_image (default: + photometric refinement)": FitSettings()}


METHODS = ("mean face", *fit_variants())
DEFAULT_METHOD = METHODS[-1]


def pinned_model() -> MorphableModel:
    """The model the committed results were made from: built-in version 2, teaching."""
    from facelab.model.registry import load_model

    return load_model("synthetic", resolution="teaching", version=2)


def make_case(model: MorphableModel, seed: int, yaw_deg: float, spec: CaseSpec = CASES) -> dict:
    """One test photo with its ground truth.

    Returns a dict: ``image`` (H, W, 3) float32 in [0, 1] (textured render), ``landmarks``
    (68, 2) noisy pixels given to the fitter, ``landmarks_true`` (68, 2), ``verts`` (V, 3) the
    ground truth S_hat in model space (mm), ``detail`` (V, 3) D, ``seed``, ``yaw``.
    """
    sampling = FaceSampling(exp_scale=spec.exp_scale, named_expression_prob=0.0, jaw_max=0.0,
                            yaw_deg=(yaw_deg, yaw_deg), pitch_deg=(0.0, 0.0),
                            roll_deg=(0.0, 0.0), distance_mm=(spec.distance, spec.distance),
                            shift=0.0)
    faces = SyntheticFaces(model, size=spec.size, length=seed + 1, seed=0, sampling=sampling)
    params, camera, extras = faces.sample(seed, 1)
    m = faces.model
    g = torch.Generator().manual_seed(1_000_003 * seed + 424_242)
    detail, _ = detail_field(m, g, DetailSampling())
    noise = torch.randn(len(m.landmarks), 2, generator=g) * spec.landmark_noise_px
    params = params.replace(vertex_offsets=detail[None])
    with torch.no_grad():
        formed = form(m, params, camera)
        bg = random_backgrounds(1, spec.size, torch.Generator().manual_seed(
            extras["background_seed"][0]))
        image, _ = render(formed, spec.size, spec.size, background=bg)
    lm = formed.landmarks_2d[0]
    return dict(image=image[0].clamp(0, 1), landmarks=lm + noise, landmarks_true=lm,
                verts=formed.verts[0], detail=detail, seed=seed, yaw=yaw_deg)


def scan_points(model: MorphableModel, verts, seed: int, spec: CaseSpec = CASES):
    """A NoW-like scan of a ground-truth mesh: ``(points (N, 3), landmarks (7, 3))`` float64.

    Points are drawn uniformly by area on the triangles of the model's face region (all three
    vertices in ``face_mask``) and kept within ``scan_radius`` of the nose tip; the landmarks
    are the mesh's :data:`NOW_LANDMARKS` vertices.
    """
    v = torch.as_tensor(verts).to(torch.float64)
    faces = model.faces
    if model.face_mask is not None:
        faces = faces[model.face_mask[faces].all(1)]
    tri = v[faces]  # (F, 3, 3)
    area = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).norm(dim=1) / 2
    g = torch.Generator().manual_seed(7_919 * seed + 17)
    pick = torch.multinomial(area, 4 * spec.scan_points, replacement=True, generator=g)
    r = torch.rand(len(pick), 2, generator=g, dtype=torch.float64)
    flip = r.sum(1) > 1  # fold the unit square onto the triangle
    r[flip] = 1 - r[flip]
    t = tri[pick]
    pts = t[:, 0] + r[:, :1] * (t[:, 1] - t[:, 0]) + r[:, 1:] * (t[:, 2] - t[:, 0])  # (4N, 3)
    points = model.landmark_points(v[None])[0]  # (68, 3)
    nose = points[30]
    pts = pts[(pts - nose).norm(dim=1) <= spec.scan_radius][: spec.scan_points]
    return pts.numpy(), points[list(NOW_LANDMARKS)].numpy()


def evaluate_mesh(model: MorphableModel, verts, scan, scan_landmarks) -> ScanError:
    """NoW error of a predicted mesh ``verts (V, 3)`` of ``model`` (all its faces) against a
    scan from :func:`scan_points`."""
    v = torch.as_tensor(verts).detach().to(torch.float64)
    return scan_to_mesh_error(scan, scan_landmarks, v, model.faces,
                              model.landmark_points(v[None])[0, list(NOW_LANDMARKS)])


def _stats(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "n": len(a)}


def evaluate_case(model: MorphableModel, seed: int, yaw: float, variants: dict,
                  spec: CaseSpec = CASES) -> dict:
    """One (seed, yaw): the mean face and every fitter variant (name -> FitSettings).

    Returns ``{"seed", "yaw", method: {"median", "mean", "std", ["seconds", "nme"]}}``.
    """
    m = model.to(dtype=torch.float32)
    case = make_case(m, seed, yaw, spec)
    scan, scan_lm = scan_points(m, case["verts"], seed, spec)
    err = evaluate_mesh(m, m.mean_shape, scan, scan_lm)
    row = {"seed": seed, "yaw": yaw,
           "mean face": {"median": err.median, "mean": err.mean, "std": err.std}}
    for name, settings in variants.items():
        t0 = time.perf_counter()
        fit = fit_image(case["image"], m, case["landmarks"], settings=settings,
                        callback=History())
        seconds = time.perf_counter() - t0
        err = evaluate_mesh(m, fit.verts, scan, scan_lm)
        row[name] = {"median": err.median, "mean": err.mean, "std": err.std,
                     "seconds": seconds, "nme": fit.nme_final}
    return row


def run(model: MorphableModel, seeds, yaws, spec: CaseSpec = CASES, log=print) -> dict:
    """Every method of :data:`METHODS` on every (seed, yaw); per-case NoW numbers and a
    mean ± sd (over seeds) table.

    Returns ``{"cases": [...], "table": {method: {yaw: {"median": stats, "mean": stats,
    "std": stats}}}, "reduction": {method: {yaw: 1 - its mean median / the mean face's}}}``
    (stats = ``{"mean", "sd", "n"}``; yaws as strings).
    """
    variants = fit_variants()
    cases = []
    for yaw in yaws:
        for seed in seeds:
            row = evaluate_case(model, seed, yaw, variants, spec)
            cases.append(row)
            log(f"yaw {yaw:+.0f} seed {seed}: " + ", ".join(
                f"{name.split(' (')[0]} {row[name]['median']:.3f}" for name in METHODS)
                + " mm (median)")
    table = {meth: {str(y): {k: _stats([c[meth][k] for c in cases if c["yaw"] == y])
                             for k in ("median", "mean", "std")} for y in yaws}
             for meth in METHODS}
    reduction = {meth: {str(y): 1 - table[meth][str(y)]["median"]["mean"]
                        / table["mean face"][str(y)]["median"]["mean"] for y in yaws}
                 for meth in METHODS[1:]}
    return {"cases": cases, "table": table, "reduction": reduction}


def format_table(data: dict) -> str:
    """The results' table as text: median / mean / std (mm), mean ± sd over the seeds, and
    the median's reduction against the mean face, per yaw."""
    lines = [f"{'method':<48} {'yaw':>4}  {'median (mm)':>13}  {'mean (mm)':>13}  "
             f"{'std (mm)':>13}  {'vs mean face':>12}"]
    for y in data["yaws"]:
        for meth in METHODS:
            row = data["table"][meth][str(y)]
            red = ("" if meth == "mean face"
                   else f"{-100 * data['reduction'][meth][str(y)]:+.0f} %")
            cells = "  ".join(f"{row[k]['mean']:6.3f} ± {row[k]['sd']:.3f}"
                              for k in ("median", "mean", "std"))
            lines.append(f"{meth:<48} {y:>4.0f}  {cells}  {red:>12}")
    n = data["table"]["mean face"][str(data["yaws"][0])]["median"]["n"]
    words = data["command"].split()
    keep = [w for i, w in enumerate(words)
            if w != "--force" and w != "--out" and (i == 0 or words[i - 1] != "--out")]
    lines.append(f"(mean ± sd over {n} identities; made by: {' '.join(keep)} --out DIR)")
    return "\n".join(lines)


def load_results(path=None, *, model: MorphableModel | None = None) -> dict:
    """The committed (or a given) results file, refusing another model or format."""
    p = Path(path) if path is not None else RESULTS_DIR / "evaluate3d.json"
    return load_result_file(p, format_version=FORMAT_VERSION, model=model or pinned_model())


def _parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="python -m facelab.fitting.evaluate3d",
                      description="fit_image's NoW-style 3D error on rendered heads with detail "
                                  "outside the model, against the mean face.")
    p.add_argument("--out", type=Path, required=True, help="folder for evaluate3d.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--yaws", type=float, nargs="+", default=[0.0, 30.0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    return p


def evaluate_main(argv=None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    check_seeds(args.seeds)
    check_count(args.threads, "--threads")
    if not all(math.isfinite(y) and abs(y) <= 60 for y in args.yaws):
        raise ValueError(f"--yaws: expected angles within [-60, 60] degrees, got {args.yaws}")
    out = refuse_package_path(args.out, name="--out")
    target = out / "evaluate3d.json"
    if not args.force:
        refuse_existing([target])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    model = pinned_model()
    t0 = time.perf_counter()
    body = run(model, args.seeds, args.yaws, log=lambda s: print(s, flush=True))
    record = {**model_record(model), "version": 2, "resolution": "teaching"}
    data = {"format_version": FORMAT_VERSION, "model": record,
            "command": "python -m facelab.fitting.evaluate3d " + " ".join(argv),
            "seeds": args.seeds, "yaws": args.yaws, "cases_spec": asdict(CASES),
            "detail": asdict(DetailSampling()),
            "fit_settings": {name: asdict(st) for name, st in fit_variants().items()},
            "torch": str(torch.__version__), "threads": args.threads, **body,
            "seconds_total": time.perf_counter() - t0}
    write_json(target, data, overwrite=args.force)
    print(format_table(data))
    print(f"wrote {target} ({data['seconds_total']:.0f} s)")
    return 0


def main(argv=None) -> int:
    """``python -m facelab.fitting.evaluate3d``: errors as one line, no traceback."""
    return run_reporting("python -m facelab.fitting.evaluate3d", lambda: evaluate_main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
