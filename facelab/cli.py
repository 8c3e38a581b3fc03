"""The ``facelab`` command.

    facelab demo [--out DIR] [--count N] [--seed S] [--resolution R] [--size PX] [--force]
    facelab info [--resolution R]
    facelab fit PATH | --sample astronaut [-o OUT] [--force]      (facelab.fit_cli)
    facelab fit-video PATH [-o OUT] [--force]
    facelab train {mofa,tddfa} [trainer options]                   (writes to facelab-train/)

``facelab --help`` and ``facelab <command> --help`` document every option.

Every user error (missing or unreadable file, no face found, bad option value, missing
optional extra, an output that already exists) prints one line,
``facelab <command>: error: <message>``, and exits with a non-zero status
(:mod:`facelab.command_errors`); ``--debug`` (anywhere on the line) adds the traceback.
Option values are checked before any work starts. Outputs are written atomically and an
existing file is never overwritten unless ``--force`` is given; nothing inside the
installed package is ever written.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from pathlib import Path

from facelab.annotate_cli import (
    add_annotate_parser,
    add_synth_clips_parser,
    run_annotate,
    run_synth_clips,
)
from facelab.atomic_io import atomic_path, refuse_existing, refuse_package_path
from facelab.command_errors import (
    CommandParser,
    check_count,
    check_resolution,
    run_reporting,
)
from facelab.fit_cli import add_fit_parser, add_fit_video_parser, run_fit, run_fit_video

__all__ = ["main"]

# `facelab train METHOD ...` -> the module whose train_main(argv) runs it.
TRAINERS = {"mofa": "facelab.methods.mofa.cli", "tddfa": "facelab.methods.tddfa.cli"}


def _sample_faces(model, count: int, seed: int, size: int):
    """Random identities, expressions, poses and lights for the demo (fixed seed)."""
    import torch

    from facelab.face_params import FaceParams
    from facelab.formation import default_camera
    from facelab.lighting import random_sh
    from facelab.rotations import head_rotation

    g = torch.Generator().manual_seed(seed)
    id_coeffs = 0.8 * torch.randn(count, model.n_id, generator=g)
    albedo_coeffs = 0.8 * torch.randn(count, model.n_albedo, generator=g)
    exp_coeffs = 0.3 * torch.randn(count, model.n_exp, generator=g)
    names = model.expression_names
    chosen = []
    for i in range(count):
        name = names[int(torch.randint(len(names), (1,), generator=g))] if names else None
        if name is not None:
            exp_coeffs[i] += model.expression(name, 0.6 + 0.4 * float(torch.rand(1, generator=g)))
        chosen.append(name or "neutral")
    angles = (torch.rand(count, 3, generator=g) * 2 - 1) * torch.tensor([0.25, 0.6, 0.15])
    jaw = torch.zeros(count, 3)
    if model.jaw_joint is not None:
        jaw[:, 0] = 0.15 * torch.rand(count, generator=g)
    gamma = random_sh(count, generator=g, front=(0.0, 0.0, -1.0))
    camera, translation = default_camera(count, size, size)
    params = FaceParams(id=id_coeffs, exp=exp_coeffs, albedo=albedo_coeffs,
                        rotation=head_rotation(angles), translation=translation, gamma=gamma,
                        jaw=jaw if model.jaw_joint is not None else None)
    return dict(params=params, camera=camera, angles=angles, expressions=chosen)


def _to_uint8(image):
    import numpy as np

    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


MAX_DEMO_COUNT = 64  # faces per demo run
MAX_DEMO_SIZE = 2048  # image side (pixels) of the demo renders
_MOFA_PANELS = ("input", "overlay", "geometry", "reflectance", "illumination", "error", "strip")


def demo_outputs(out: Path, count: int) -> list[Path]:
    """Every file ``facelab demo`` writes into ``out`` for ``count`` faces."""
    names = [f"face_{i:02d}.png" for i in range(count)]
    names += ["contact_sheet.png", "face_00.obj", "face_00_landmarks.txt"]
    return [out / n for n in names] + [out / "mofa" / f"mofa_{n}.png" for n in _MOFA_PANELS]


def _save_png(path: Path, array, force: bool) -> Path:
    from PIL import Image

    with atomic_path(path, overwrite=force) as tmp:
        Image.fromarray(array).save(tmp)
    return path


def run_demo(out: Path, count: int, seed: int, resolution, size: int, *, force: bool = False,
             mofa_weights: str = "surrogate") -> list[Path]:
    """Render ``count`` random faces of the built-in model.

    Writes one PNG per face, a contact sheet, and the first face as an OBJ with per-vertex
    albedo colours and a landmark sidecar; returns the paths written. Existing outputs
    raise FileExistsError before anything is rendered unless ``force``.
    mofa_weights: the MoFA encoder for the reconstruction: ``"surrogate"``, ``"photo"``
        (the shipped weights) or the path of weights from ``facelab train mofa``.
    """
    import numpy as np
    import torch

    from facelab.export import save_obj
    from facelab.formation import PICTURE_ANTIALIAS, form, render
    from facelab.model.registry import load_model

    refuse_package_path(out, name="--out")
    if not force:
        refuse_existing(demo_outputs(out, count))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = load_model("synthetic", resolution=resolution)
    t_model = time.perf_counter() - t0
    p = _sample_faces(model, count, seed, size)
    background = torch.tensor([0.18, 0.2, 0.24])
    t0 = time.perf_counter()
    with torch.no_grad():
        formed = form(model, p["params"], p["camera"])
        image, _ = render(formed, size, size, background=background,
                          antialias=PICTURE_ANTIALIAS)
    t_render = time.perf_counter() - t0
    images = image.numpy()
    written = []
    for i in range(count):
        written.append(_save_png(out / f"face_{i:02d}.png", _to_uint8(images[i]), force))
    cols = min(count, 4)
    rows = math.ceil(count / cols)
    sheet = np.zeros((rows * size, cols * size, 3), dtype=np.float32)
    sheet[:] = background.numpy()
    for i in range(count):
        rr, cc = divmod(i, cols)
        sheet[rr * size:(rr + 1) * size, cc * size:(cc + 1) * size] = images[i]
    written.append(_save_png(out / "contact_sheet.png", _to_uint8(sheet), force))
    obj_path = save_obj(out / "face_00.obj", formed.verts[0], model.faces,
                        colors=formed.albedo[0].clamp(0, 1), landmarks=model.landmarks,
                        overwrite=force)
    written.append(Path(obj_path))
    landmarks_path = Path(obj_path).with_name(Path(obj_path).stem + "_landmarks.txt")
    if landmarks_path.exists():
        written.append(landmarks_path)
    print(f"facelab demo: {model!r}")
    print(f"  model ready in {t_model:.2f} s; rendered {count} faces at {size}x{size} "
          f"in {t_render:.2f} s")
    for i in range(count):
        pitch, yaw, roll = (math.degrees(float(a)) for a in p["angles"][i])
        print(f"  face_{i:02d}: expression={p['expressions'][i]:<16} yaw={yaw:+6.1f} deg "
              f"pitch={pitch:+6.1f} deg roll={roll:+6.1f} deg")
    print("wrote:")
    for path in written:
        print(f"  {path}")
    # MoFA (notebook 01): encode a held-out synthetic face with the committed encoder.
    from facelab.methods.mofa.cli import reconstruct_demo

    print(f"MoFA reconstruction of a held-out synthetic face (encoder: {mofa_weights}):")
    mofa_paths = [Path(p) for p in reconstruct_demo(out / "mofa", weights=mofa_weights,
                                                     overwrite=force)["paths"]]
    for path in mofa_paths:
        print(f"  {path}")
    return written + mofa_paths


def run_info(resolution) -> None:
    from facelab.model.registry import load_model

    t0 = time.perf_counter()
    model = load_model("synthetic", resolution=resolution)
    print(f"{model!r}  (loaded in {time.perf_counter() - t0:.2f} s)")
    print(f"  expressions: {', '.join(model.expression_names)}")
    if model.id_std is not None:
        print(f"  identity std (mm), first 5 modes: "
              f"{', '.join(f'{s:.2f}' for s in model.id_std[:5].tolist())}")


def _resolution(text: str):
    return int(text) if text.isdigit() else text


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="facelab",
        description="facelab: monocular 3D face reconstruction for teaching (CPU first). "
                    "Errors print one line; add --debug anywhere for the traceback.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the Python traceback (may go anywhere)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="render the built-in face under random identities, expressions, poses, lights",
        description="Render the built-in synthetic face under random identities, expressions, "
                    "poses and lights; write one PNG per face, a contact sheet and the first face "
                    "as an OBJ with per-vertex colours (+ landmarks sidecar) into --out; then "
                    "reconstruct a held-out synthetic face with the committed MoFA encoder "
                    "(overlay, geometry, reflectance, illumination, error) into --out/mofa.")
    demo.add_argument("--out", type=Path, default=Path("facelab-demo"),
                      help="output folder (default: facelab-demo)")
    demo.add_argument("--count", type=int, default=8,
                      help=f"number of faces, 1 to {MAX_DEMO_COUNT} (default: 8)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--resolution", type=_resolution, default="teaching",
                      help="model resolution: teaching, medium, bfm, high or a vertex count "
                           "(default: teaching)")
    demo.add_argument("--size", type=int, default=256,
                      help=f"image size in pixels, 16 to {MAX_DEMO_SIZE} (default: 256)")
    demo.add_argument("--force", action="store_true",
                      help="overwrite files of the same names in --out (default: refuse)")
    demo.add_argument("--mofa-weights", default="surrogate", metavar="WEIGHTS",
                      help="MoFA encoder for the reconstruction: surrogate, photo (shipped) or "
                           "a .pt path written by `facelab train mofa` (default: surrogate)")
    info = sub.add_parser("info", help="describe the built-in morphable model",
                          description="Print the built-in model's sizes, expressions and mode "
                                      "standard deviations.")
    info.add_argument("--resolution", type=_resolution, default="teaching",
                      help="model resolution (default: teaching)")
    add_fit_parser(sub)
    add_fit_video_parser(sub)
    add_annotate_parser(sub)
    add_synth_clips_parser(sub)
    train = sub.add_parser(
        "train", help="train a paper's network on the synthetic corpus (mofa, tddfa)",
        description="Train a paper's network; options after METHOD go to that trainer "
                    "(e.g. `facelab train tddfa --help`).")
    train.add_argument("method", choices=sorted(TRAINERS), metavar="METHOD",
                       help="one of: " + ", ".join(sorted(TRAINERS)))
    train.add_argument("options", nargs=argparse.REMAINDER, help="options for the trainer")
    return parser


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Option values checked before any work starts (ValueError / FileNotFoundError)."""
    if args.command == "demo":
        check_count(args.count, "--count", maximum=MAX_DEMO_COUNT)
        check_count(args.size, "--size", minimum=16, maximum=MAX_DEMO_SIZE)
        from facelab.raster import MAX_RASTER_PIXELS

        if args.count * args.size * args.size > MAX_RASTER_PIXELS:
            raise ValueError(f"--count, --size: {args.count} faces of {args.size}x{args.size} "
                             f"pixels exceed facelab.raster.MAX_RASTER_PIXELS = "
                             f"{MAX_RASTER_PIXELS:,} per render; use fewer or smaller faces")
        args.resolution = check_resolution(args.resolution)
        if args.mofa_weights not in ("surrogate", "photo"):
            if not Path(args.mofa_weights).is_file():
                raise FileNotFoundError(f"--mofa-weights: expected surrogate, photo or an "
                                        f"existing .pt file, got {args.mofa_weights!r}")
            from facelab.methods.mofa.training import load_encoder

            load_encoder(args.mofa_weights)  # a bad file fails here, before any rendering
            # (its model is checked where the demo decodes with it)
    elif args.command == "info":
        args.resolution = check_resolution(args.resolution)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    _validate(parser, args)
    if args.command == "demo":
        run_demo(args.out, args.count, args.seed, args.resolution, args.size, force=args.force,
                 mofa_weights=args.mofa_weights)
    elif args.command == "info":
        run_info(args.resolution)
    elif args.command == "fit":
        return run_fit(args)
    elif args.command == "fit-video":
        return run_fit_video(args)
    elif args.command == "annotate":
        return run_annotate(args)
    elif args.command == "synth-clips":
        return run_synth_clips(args)
    elif args.command == "train":
        trainer = importlib.import_module(TRAINERS[args.method])
        return trainer.train_main(args.options)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``facelab`` command line; returns the exit status (module docs for errors)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    prog = f"facelab {args.command}" + (f" {args.method}" if args.command == "train" else "")
    return run_reporting(prog, lambda: _dispatch(parser, args), debug=debug)


if __name__ == "__main__":
    sys.exit(main())
