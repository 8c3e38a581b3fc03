"""``facelab train mofa``: train MoFA's encoder on the synthetic corpus and save small weights.

    facelab train mofa --recipe paper     # -> facelab-train/mofa_photo.pt (Eq. 8 + 10 only)
    facelab train mofa --recipe full      # -> facelab-train/mofa_surrogate.pt (+ silhouette,
                                          #    pose prior, balanced landmark surrogate)

Weights go to a folder of the user's (``--out``, default ``facelab-train/`` in the current
folder; the path is printed before training starts), never into the installed package: the
shipped ``facelab/weights/mofa_*.pt`` that ``facelab demo`` and the notebooks load are not
touched. An existing file is refused before training unless ``--force``; checkpoints are
written atomically. Use trained weights with ``load_encoder(path)`` or
``facelab demo --mofa-weights PATH``. The committed weights were made by exactly these two
commands (defaults = :class:`TrainConfig`, version 2 of the built-in model, one thread) and
copied into ``facelab/weights/``; each file's ``metadata`` holds the command, its settings, the
model record (name, version, digest), training time, loss history and its errors on 16
held-out images (re-checked by ``tests/test_mofa_weights.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from facelab.atomic_io import atomic_path, refuse_existing, refuse_package_path
from facelab.command_errors import CommandParser, check_count, check_rate
from facelab.methods.mofa.training import TrainConfig, save_encoder, train

#: Where ``facelab train mofa`` writes by default (relative to the current folder).
DEFAULT_OUT_DIR = Path("facelab-train")
#: Held-out images (seed 1) whose errors each weights file stores (tests re-check them).
HELD_OUT_COUNT = 16

__all__ = ["evaluate_main", "reconstruct_demo", "train_main"]


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = CommandParser(prog="facelab train mofa", description=(
        "Train MoFA's encoder (Tewari et al. 2017) unsupervised through the model-based "
        "decoder on rendered synthetic faces; optionally with the landmark surrogate."))
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--corpus-size", type=int, default=d.corpus_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--recipe", choices=("paper", "full"), default="paper",
                   help="paper: MoFA's unsupervised loss, Eq. 8 + 10 with the paper's weights "
                        "(collapses on this corpus); full: + silhouette term, pose prior and the "
                        "balanced landmark surrogate (see facelab.methods.mofa.loss)")
    p.add_argument("--surrogate", action="store_true",
                   help="add the landmark surrogate loss (MoFA Eq. 9) with the paper's w_land = 1 "
                        "(recipe paper only)")
    p.add_argument("--version", type=int, choices=(1, 2), default=2,
                   help="built-in model version (default 2, the full head)")
    p.add_argument("--z-scale", type=float, default=d.z_scale,
                   help="mm of z translation per encoder output unit (MoFA's small z rate)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", default=None,
                   help="weights file (default facelab-train/mofa_photo.pt or "
                        "facelab-train/mofa_surrogate.pt); never inside the installed package")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing --out file (default: refuse before training)")
    return p


def _validate(args) -> Path:
    """Check option values before any work; return the weights path."""
    for option, value, minimum in (("--steps", args.steps, 1), ("--batch-size", args.batch_size, 1),
                                   ("--image-size", args.image_size, 16),
                                   ("--corpus-size", args.corpus_size, 1),
                                   ("--threads", args.threads, 1)):
        check_count(value, option, minimum=minimum)
    check_rate(args.lr, "--lr", maximum=10.0)
    check_rate(args.z_scale, "--z-scale", maximum=1e6)
    if args.surrogate and args.recipe == "full":
        raise ValueError("--surrogate: the full recipe already has the (balanced) landmark "
                         "term; use it with --recipe paper")
    named = "surrogate" if args.surrogate or args.recipe == "full" else "photo"
    out = Path(args.out) if args.out else DEFAULT_OUT_DIR / f"mofa_{named}.pt"
    refuse_package_path(out, name="--out")
    if out.suffix != ".pt":
        raise ValueError(f"--out: expected a file name ending in .pt, got {str(out)!r}")
    if not args.force:
        refuse_existing([out])
    return out


def train_main(argv=None) -> int:
    """Entry point of ``facelab train mofa [options]``; returns the exit status."""
    args = _parser().parse_args(argv)
    out = _validate(args)
    torch.set_num_threads(args.threads)
    from facelab.methods.mofa.evaluation import mean_errors, reconstruction_errors, test_batch
    from facelab.methods.mofa.loss import recipe_loss
    from facelab.methods.mofa.training import load_encoder
    from facelab.model.provenance import model_record
    from facelab.model.registry import load_model

    full = args.recipe == "full"
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         image_size=args.image_size, corpus_size=args.corpus_size,
                         seed=args.seed, surrogate=args.surrogate, z_scale=args.z_scale,
                         loss=recipe_loss(sil=full, pose=full, land=full))
    command = "facelab train mofa " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"facelab train mofa: writing weights to {out.resolve()}", flush=True)
    model = load_model("synthetic", "teaching", version=args.version)
    start = time.perf_counter()

    def checkpoint(encoder, step):  # keep the latest weights on disk during a long run
        save_encoder(encoder, out, partial_step=step,
                     train_seconds=round(time.perf_counter() - start, 1))
        encoder.train()

    encoder, history = train(model, config, checkpoint=checkpoint)
    seconds = time.perf_counter() - start
    last = {k: v[-1] for k, v in history.losses.items()}
    loss = config.loss_config
    meta = {"config": {k: getattr(config, k) for k in ("steps", "batch_size", "lr", "image_size",
                                                        "corpus_size", "seed", "surrogate",
                                                        "z_scale")},
            "recipe": args.recipe, "loss": {k: getattr(loss, k) for k in
                                            ("photo", "reg", "land", "sil", "pose")},
            "command": command, "model": model_record(model), "version": args.version,
            "threads": args.threads, "train_seconds": round(seconds, 1), "final_losses": last,
            "history": {"steps": history.steps,
                        **{k: [round(x, 6) for x in v] for k, v in history.losses.items()}}}
    path = save_encoder(encoder, out, half=True, **meta)
    # held-out errors of the weights as saved (float16), stored for the staleness test
    held = test_batch(model, count=HELD_OUT_COUNT, size=config.image_size)
    with torch.no_grad():
        saved = load_encoder(path, model)
        errors = mean_errors(reconstruction_errors(saved(held["image"]), held, model))
    meta["held_out"] = {"count": HELD_OUT_COUNT, "seed": 1,
                        "errors": {k: round(v, 5) for k, v in errors.items()}}
    path = save_encoder(encoder, out, half=True, **meta)
    print(json.dumps({"weights": str(path), "train_seconds": round(seconds, 1),
                      "final_losses": last, "held_out": meta["held_out"]}, indent=1))
    return 0


def evaluate_main(argv=None) -> int:
    """``python -c "from facelab.methods.mofa.cli import evaluate_main; evaluate_main()"``:
    MoFA Sec. 7 with the committed weights, printed beside the paper's numbers."""
    p = argparse.ArgumentParser(prog="facelab eval mofa", description=evaluate_main.__doc__)
    p.add_argument("--count", type=int, default=64, help="held-out images (default 64)")
    p.add_argument("--fit-count", type=int, default=8, help="images for the baseline")
    p.add_argument("--fit-steps", type=int, default=100, help="Adam steps of the baseline")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from facelab.methods.mofa.evaluation import format_table, run_evaluation
    from facelab.methods.mofa.training import load_encoder, weights_model

    model = weights_model(load_encoder("photo"))
    encoders = {"MoFA photometric only (paper loss)": load_encoder("photo", model),
                "MoFA full recipe": load_encoder("surrogate", model)}
    rows = run_evaluation(model, encoders, count=args.count, fit_count=args.fit_count,
                          fit_steps=args.fit_steps)
    print(format_table(rows))
    return 0


# Captions of the reconstruction's panels; the shading layers are normalised for display.
_PANEL_CAPTIONS = {"input": "input (64 px synthetic)", "overlay": "reconstruction over input",
                   "geometry": "geometry (contrast stretched)",
                   "reflectance": "reflectance (unlit, true colours)",
                   "illumination": "illumination (brightest = white)",
                   "error": "|error| (white = {:.2f})"}


def _display(image, name: str, side: int):
    """A panel as shown: (H, W, 3) NumPy and its caption.

    The shading layers are normalised over the face (the rendered pixels, less the
    anti-aliased rim): geometry stretched between its 1st and 99th luminance percentiles;
    illumination and error scaled so the 99th percentile is white (0 stays black: irradiance
    and error are magnitudes). Reflectance keeps its true colours. Then every panel is
    upsampled smoothly (Lanczos) to ``side`` pixels.
    """
    import torch.nn.functional as F

    from facelab.figures import normalize_display, upsample

    img = image.detach().clamp(0, 1).cpu()
    text = _PANEL_CAPTIONS[name]
    if name in ("geometry", "illumination", "error"):
        covered = (img.sum(-1) > 1e-4).float()[None, None]  # (1, 1, H, W), black background
        mask = (-F.max_pool2d(-covered, 3, stride=1, padding=1))[0, 0] > 0  # eroded 1 px
        zero = name in ("illumination", "error")
        if name == "error":
            lum = img[mask].mean(-1) if bool(mask.any()) else img.new_zeros(1)
            text = text.format(float(lum.quantile(0.99)) if lum.numel() else 0.0)
        img = normalize_display(img, mask, low=None if zero else 1.0, high=99.0)
    return upsample(img, side), text


def _save_png(image, path: Path, overwrite: bool = True) -> Path:
    from PIL import Image

    from facelab.image_io import to_uint8

    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp)
    return path


def reconstruct_demo(out_dir, *, weights: str = "surrogate", index: int = 0, scale: int = 4,
                     verbose: bool = True, overwrite: bool = True) -> dict:
    """Encode one held-out synthetic face with the committed MoFA encoder; save the figures.

    out_dir: folder to write into (created). weights: "surrogate" (the full recipe: the paper's
    loss + silhouette term + pose prior + balanced landmark surrogate; the default, the committed
    model that reconstructs) or "photo" (the paper's unsupervised loss alone; collapses to a
    small face on plain skin, see notebook 01), or a weights path. The model is the built-in
    one the weights record (:func:`.training.weights_model`).
    index: which held-out test image (seed 1).
    scale: upscaling of the 64 px images in the PNGs (smooth, Lanczos; at least to
        :data:`facelab.figures.MIN_FIGURE_SIZE` pixels). The shading layers (geometry,
        illumination, error) are contrast-normalised over the face for display
        (:func:`facelab.figures.normalize_display`; reflectance keeps its colours); every
        PNG has a caption band.
    overwrite: when False, an existing PNG raises FileExistsError (files are written
        atomically either way).

    Writes ``mofa_input.png``, ``mofa_overlay.png`` (reconstruction over the input),
    ``mofa_geometry.png``, ``mofa_reflectance.png``, ``mofa_illumination.png``,
    ``mofa_error.png`` (per-pixel RGB error on the face) and ``mofa_strip.png`` (all side by
    side, captioned). Returns {"paths": [...], "errors": {name: float},
    "ms_per_image": float (encoder, current threads)}; prints a summary when ``verbose``.
    """
    from facelab._checks import check_int
    from facelab.formation import render
    from facelab.methods.mofa.decoder import decode, render_layers
    from facelab.methods.mofa.evaluation import mean_errors, reconstruction_errors, test_batch
    from facelab.methods.mofa.training import load_encoder, weights_model

    index = check_int(index, name="index", minimum=0)
    scale = check_int(scale, name="scale", minimum=1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder(weights)
    model = weights_model(encoder)  # the built-in model the weights were trained on
    size = encoder.image_size
    batch = {k: v[index:index + 1] for k, v in test_batch(model, index + 1, size).items()}
    with torch.no_grad():
        start = time.perf_counter()
        code = encoder(batch["image"])
        ms = 1000.0 * (time.perf_counter() - start)
        decoded = decode(code, model, batch["focal"], batch["principal"])
        layers = render_layers(decoded, size, size, background=batch["image"])
        face = layers["image"]
        _, mask = render(decoded, size, size)
        error = ((face - batch["image"]).norm(dim=-1, keepdim=True) * mask[..., None])  # (1,H,W,1)
        error = error.clamp(0, 1).expand(-1, -1, -1, 3)
    errors = mean_errors(reconstruction_errors(code, batch, model))
    panels = {"input": batch["image"][0], "overlay": face[0], "geometry": layers["geometry"][0],
              "reflectance": layers["reflectance"][0],
              "illumination": layers["illumination"][0], "error": error[0]}
    from facelab.figures import MIN_FIGURE_SIZE, caption, captioned_grid

    side = max(MIN_FIGURE_SIZE, scale * size)
    shown = {name: _display(img, name, side) for name, img in panels.items()}
    paths = [_save_png(caption(img, text), out / f"mofa_{name}.png", overwrite)
             for name, (img, text) in shown.items()]
    strip = captioned_grid([img for img, _ in shown.values()],
                           [text for _, text in shown.values()], size=side,
                           title=f"MoFA ({weights} encoder) on a held-out face")
    paths.append(_save_png(strip, out / "mofa_strip.png", overwrite))
    if verbose:
        print(f"MoFA ({weights}) on held-out image {index}: geometry "
              f"{errors['geometry_mm']:.2f} mm, photometric {errors['photometric']:.3f}, "
              f"landmarks {errors['landmark_px']:.2f} px ({size} px image); encoder {ms:.1f} ms")
        print(f"wrote {len(paths)} images to {out}")
    return {"paths": paths, "errors": errors, "ms_per_image": ms}


if __name__ == "__main__":
    sys.exit(train_main())
