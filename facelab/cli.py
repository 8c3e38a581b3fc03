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
    """Random identities, poses and lights for the demo (fixed seed), each face wearing one
    named expression at coefficient 1 (no random expression on top, so it looks like its
    name), the names taken in turn from a random starting point."""
    import torch

    from facelab.face_params import FaceParams
    from facelab.figures import framing_translation
    from facelab.formation import default_camera
    from facelab.lighting import random_sh
    from facelab.rotations import head_rotation

    g = torch.Generator().manual_seed(seed)
    id_coeffs = 0.8 * torch.randn(count, model.n_id, generator=g)
    albedo_coeffs = 0.8 * torch.randn(count, model.n_albedo, generator=g)
    exp_coeffs = torch.zeros(count, model.n_exp)
    names = model.expression_names
    start = int(torch.randint(max(1, len(names)), (1,), generator=g))
    chosen = []
    for i in range(count):
        name = names[(start + i) % len(names)] if names else "neutral"
        if names:
            exp_coeffs[i] = model.expression(name, 1.0)
        chosen.append(name)
    angles = (torch.rand(count, 3, generator=g) * 2 - 1) * torch.tensor([0.2, 0.5, 0.12])
    gamma = random_sh(count, generator=g, front=(0.0, 0.0, -1.0))
    camera, _ = default_camera(count, size, size)
    translation = framing_translation(model, batch=count)  # the whole model in the picture
    params = FaceParams(id=id_coeffs, exp=exp_coeffs, albedo=albedo_coeffs,
                        rotation=head_rotation(angles), translation=translation, gamma=gamma)
    return dict(params=params, camera=camera, angles=angles, expressions=chosen)


def _expression_faces(model, size: int):
    """The mean face, neutral and with each named expression at coefficient 1, frontal,
    under a key light from the upper left: (FaceParams, camera, names)."""
    import torch

    from facelab.face_params import FaceParams
    from facelab.figures import framing_translation
    from facelab.formation import default_camera
    from facelab.lighting import sh_from_direction

    names = ["neutral", *model.expression_names]
    exp = torch.zeros(len(names), model.n_exp)
    for i, name in enumerate(names[1:], start=1):
        exp[i] = model.expression(name, 1.0)
    camera, _ = default_camera(len(names), size, size)
    translation = framing_translation(model, batch=len(names))
    light = sh_from_direction(torch.tensor([-0.3, -0.4, -1.0]), intensity=0.55, ambient=0.6)
    params = FaceParams(exp=exp, rotation=torch.eye(3).expand(len(names), 3, 3),
                        translation=translation, gamma=light.expand(len(names), 9, 3))
    return params, camera, names


def _label(name: str) -> str:
    return name.replace("_", " ")


MAX_DEMO_COUNT = 64  # faces per demo run
MIN_DEMO_SIZE = 224  # every picture the demo writes is at least this large (figures.py)
MAX_DEMO_SIZE = 2048  # image side (pixels) of the demo renders
_MOFA_PANELS = ("input", "overlay", "geometry", "reflectance", "illumination", "error", "strip")
_BACKGROUND = (0.18, 0.2, 0.24)


def demo_outputs(out: Path, count: int) -> list[Path]:
    """Every file ``facelab demo`` writes into ``out`` for ``count`` faces."""
    names = [f"face_{i:02d}.png" for i in range(count)]
    names += ["contact_sheet.png", "expressions.png", "face_00.obj", "face_00_landmarks.txt"]
    return [out / n for n in names] + [out / "mofa" / f"mofa_{n}.png" for n in _MOFA_PANELS]


def _save_png(path: Path, image, force: bool) -> Path:
    from PIL import Image

    from facelab.image_io import to_uint8

    with atomic_path(path, overwrite=force) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp)
    return path


def _render_batch(model, params, camera, size: int):
    """(B, size, size, 3) anti-aliased renders and the formation."""
    import torch

    from facelab.formation import PICTURE_ANTIALIAS, form, render

    with torch.no_grad():
        formed = form(model, params, camera)
        image, _ = render(formed, size, size, background=torch.tensor(_BACKGROUND),
                          antialias=PICTURE_ANTIALIAS)
    return image.clamp(0, 1), formed


def run_demo(out: Path, count: int, seed: int, resolution, size: int, *, force: bool = False,
             mofa_weights: str = "surrogate") -> list[Path]:
    """Render ``count`` random faces of the built-in model, and its named expressions.

    Writes one captioned PNG per face (random identity, reflectance, pose and light, one
    named expression at coefficient 1), a captioned contact sheet, ``expressions.png`` (the
    mean face with each named expression at coefficient 1), and the first face as an OBJ
    with per-vertex albedo colours and a landmark sidecar; then MoFA's reconstruction of a
    held-out face into ``mofa/``. Returns the paths written. Existing outputs raise
    FileExistsError before anything is rendered unless ``force``.
    mofa_weights: the MoFA encoder for the reconstruction: ``"surrogate"``, ``"photo"``
        (the shipped weights) or the path of weights from ``facelab train mofa``.
    """
    from facelab.export import save_obj
    from facelab.figures import caption, captioned_grid
    from facelab.model.registry import load_model

    refuse_package_path(out, name="--out")
    if not force:
        refuse_existing(demo_outputs(out, count))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = load_model("synthetic", resolution=resolution)
    t_model = time.perf_counter() - t0
    p = _sample_faces(model, count, seed, size)
    t0 = time.perf_counter()
    images, formed = _render_batch(model, p["params"], p["camera"], size)
    t_render = time.perf_counter() - t0
    captions = []
    for i in range(count):
        yaw = math.degrees(float(p["angles"][i, 1]))
        captions.append(f"face {i:02d}: {_label(p['expressions'][i])}, yaw {yaw:+.0f} deg")
    written = [_save_png(out / f"face_{i:02d}.png", caption(images[i], captions[i]), force)
               for i in range(count)]
    sheet = captioned_grid(list(images), captions, ncols=min(count, 4), size=size,
                           title=f"{model.name}: random identities, one named expression each")
    written.append(_save_png(out / "contact_sheet.png", sheet, force))
    t0 = time.perf_counter()
    e_params, e_camera, e_names = _expression_faces(model, size)
    e_images, _ = _render_batch(model, e_params, e_camera, size)
    t_expr = time.perf_counter() - t0
    grid = captioned_grid(list(e_images), [_label(n) for n in e_names],
                          ncols=min(len(e_names), 5), size=size,
                          title="named expressions at coefficient 1 on the mean face")
    written.append(_save_png(out / "expressions.png", grid, force))
    obj_path = save_obj(out / "face_00.obj", formed.verts[0], model.faces,
                        colors=formed.albedo[0].clamp(0, 1), landmarks=model.landmarks,
                        overwrite=force)
    written.append(Path(obj_path))
    landmarks_path = Path(obj_path).with_name(Path(obj_path).stem + "_landmarks.txt")
    if landmarks_path.exists():
        written.append(landmarks_path)
    print(f"facelab demo: {model!r}")
    print(f"  model ready in {t_model:.2f} s; rendered {count} faces at {size}x{size} "
          f"in {t_render:.2f} s and {len(e_names)} expressions in {t_expr:.2f} s")
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
        description="Render the built-in synthetic face under random identities, poses and "
                    "lights, each with one named expression; write one captioned PNG per face, "
                    "a contact sheet, the named expressions on the mean face "
                    "(expressions.png) and the first face as an OBJ with per-vertex colours "
                    "(+ landmarks sidecar) into --out; then reconstruct a held-out synthetic "
                    "face with the committed MoFA encoder (overlay, geometry, reflectance, "
                    "illumination, error; captioned) into --out/mofa.")
    demo.add_argument("--out", type=Path, default=Path("facelab-demo"),
                      help="output folder (default: facelab-demo)")
    demo.add_argument("--count", type=int, default=8,
                      help=f"number of faces, 1 to {MAX_DEMO_COUNT} (default: 8)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--resolution", type=_resolution, default="teaching",
                      help="model resolution: teaching, medium, bfm, high or a vertex count "
                           "(default: teaching)")
    demo.add_argument("--size", type=int, default=256,
                      help=f"image size in pixels, {MIN_DEMO_SIZE} to {MAX_DEMO_SIZE} "
                           "(default: 256)")
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
        check_count(args.size, "--size", minimum=MIN_DEMO_SIZE, maximum=MAX_DEMO_SIZE)
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
