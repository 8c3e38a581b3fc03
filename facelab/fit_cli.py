"""``facelab fit`` and ``facelab fit-video``: fit the morphable model to a photo or a clip.

    facelab fit PATH | --sample {astronaut,grace_hopper} [-o OUT] [--landmarks FILE] [--detect]
    facelab fit-video PATH [-o OUT] [--landmarks FILE] [--max-frames N] [--step K]

Wiring into the main ``facelab`` parser is two lines per command::

    add_fit_parser(subparsers)          # in build_parser()
    if args.command == "fit": return run_fit(args)

``fit_main(argv)`` / ``fit_video_main(argv)`` run a command on its own (tests, scripts).

``fit`` writes into OUT (default ``facelab-fit``), for a photo named STEM:
STEM_overlay.png (the fitted mesh as shaded grey geometry blended over the photo, detected
landmarks green, fitted red; photo-sized), STEM_panels.png (captioned: photo | overlay |
geometry | reflectance | lighting, cropped to the face), STEM_views.png (captioned: the
textured head at yaw -45, 0, +45 degrees and the extracted texture with its visibility
weights), STEM.obj + STEM.mtl + STEM_texture.png (the mesh in model space, mm, textured with
the photo's colours, :func:`facelab.fitting.texture.extract_texture`; + STEM_landmarks.txt),
STEM.ply (the mesh with per-vertex colours sampled from that texture), STEM_params.npz
(every fitted parameter, :meth:`facelab.fitting.FitResult.parameters`).
``fit-video`` writes frames/frame_NNNN_overlay.png (the grey-mesh overlay) and .obj per frame,
params.npz (arrays stacked over frames), overlay.gif, and overlay.mp4 when imageio-ffmpeg is
installed.

Option values, input files and optional extras are checked before any fitting starts.
Every file is written atomically (:mod:`facelab.atomic_io`), and a file that already exists
in OUT is refused before any work unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from facelab.atomic_io import atomic_path, refuse_existing, refuse_package_path
from facelab.command_errors import (
    INSTALL,
    CommandParser,
    check_count,
    check_input_file,
    check_rate,
    check_resolution,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                  ".pgm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v", ".mpg", ".mpeg")
MAX_FPS = 100.0  # GIF frame durations are whole centiseconds: 100 frames per second at most

__all__ = ["add_fit_parser", "add_fit_video_parser", "fit_main", "fit_video_main", "run_fit",
           "run_fit_video"]


def _load_landmarks(path: Path, shape_tail: tuple):
    """Read landmarks from .npy or a whitespace text file (68 rows of x y)."""
    import numpy as np

    if not path.is_file():
        raise FileNotFoundError(f"--landmarks: no such file: {path}")
    try:
        arr = (np.load(path, allow_pickle=False) if path.suffix == ".npy"
               else np.loadtxt(path, dtype=np.float64, ndmin=2))
        arr = np.asarray(arr, dtype=np.float32)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"--landmarks: cannot read {path} as numbers "
                         f"({' '.join(str(exc).split())[:200]})") from exc
    if arr.shape[-2:] != shape_tail[-2:] or arr.ndim != len(shape_tail):
        want = ", ".join(str(s) for s in shape_tail)
        raise ValueError(f"--landmarks: expected an array of shape ({want}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"--landmarks: expected finite pixel coordinates, {path} holds NaN/Inf")
    return arr


def _save_png(path: Path, image, force: bool = True) -> Path:
    from PIL import Image

    from facelab.image_io import to_uint8

    with atomic_path(path, overwrite=force) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp)
    return path


def _save_npz(path: Path, arrays: dict, force: bool) -> Path:
    import numpy as np

    with atomic_path(path, overwrite=force) as tmp:
        np.savez(tmp, **arrays)
    return path


def _save_mesh(out: Path, stem: str, result, force: bool = True) -> list[Path]:
    from facelab.export import save_obj, save_ply

    colors = result.albedo.clamp(0, 1)
    model = result.model
    written = [Path(save_obj(out / f"{stem}.obj", result.verts, model.faces, colors=colors,
                             landmarks=model.landmarks, overwrite=force)),
               Path(save_ply(out / f"{stem}.ply", result.verts, model.faces, colors=colors,
                             overwrite=force))]
    sidecar = out / f"{stem}_landmarks.txt"
    if sidecar.exists():
        written.append(sidecar)
    return written


# ---------------------------------------------------------------------------------- fit
def add_fit_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``fit`` command to an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "fit", help="fit the 3D face model to a photo (offline, CPU)",
        description="Fit the built-in morphable model to one photo: landmarks (MediaPipe, or "
                    "--landmarks), pose, identity, expression, reflectance and SH light. "
                    "Writes a grey-mesh overlay with landmarks, captioned panels, novel views "
                    "of the head textured with the photo, the textured mesh (OBJ + MTL + "
                    "PNG), a PLY and the parameters (.npz).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("path", nargs="?", type=Path, help="photo file (PNG, JPEG, ...)")
    src.add_argument("--sample", choices=("astronaut", "grace_hopper"),
                     help="use a sample photo that ships with scikit-image / matplotlib")
    p.add_argument("-o", "--out", type=Path, default=Path("facelab-fit"),
                   help="output folder (default: facelab-fit)")
    p.add_argument("--landmarks", type=Path, default=None,
                   help="68 iBUG landmarks (pixels) as .npy or text (68 rows 'x y'); "
                        "default: detect with MediaPipe (the landmarks extra); the samples "
                        "have stored landmarks")
    p.add_argument("--detect", action="store_true",
                   help="with --sample: detect landmarks with MediaPipe instead of the "
                        "stored ones")
    p.add_argument("--resolution", default="teaching",
                   help="built-in model resolution (default: teaching)")
    p.add_argument("--force", action="store_true",
                   help="overwrite files of the same names in OUT (default: refuse, before "
                        "any work)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def fit_outputs(out: Path, stem: str) -> list[Path]:
    """Every file ``facelab fit`` writes into ``out`` for a photo named ``stem``."""
    names = ("_overlay.png", "_panels.png", "_views.png", ".obj", ".mtl", "_texture.png",
             ".ply", "_landmarks.txt", "_params.npz")
    return [out / f"{stem}{n}" for n in names]


def _save_textured(out: Path, stem: str, result, texture, force: bool) -> list[Path]:
    """The textured OBJ (+ .mtl, texture PNG, landmarks) and a PLY with the texture's colours
    sampled at the vertices."""
    from facelab.export import save_ply, save_textured_obj, textured_obj_paths
    from facelab.fitting.texture import texture_vertex_colors

    model = result.model
    obj = save_textured_obj(out / f"{stem}.obj", result.verts, model.faces, texture.uv,
                            texture.uv_faces, texture.texture, landmarks=model.landmarks,
                            overwrite=force)
    colors = texture_vertex_colors(texture.texture, texture.uv, texture.uv_faces, model.faces,
                                   model.num_vertices)
    ply = save_ply(out / f"{stem}.ply", result.verts, model.faces, colors=colors,
                   overwrite=force)
    sidecar = out / f"{stem}_landmarks.txt"
    return [*textured_obj_paths(obj), *([sidecar] if sidecar.exists() else []), Path(ply)]


def fit_figures(result, image, texture) -> dict:
    """The pictures ``facelab fit`` writes: ``overlay`` (photo-sized), ``panels`` and
    ``views`` (captioned), as (H, W, 3) float32 NumPy arrays."""
    import numpy as np

    from facelab.figures import MIN_FIGURE_SIZE, captioned_grid, upsample
    from facelab.fitting.texture import SOURCE_MIRROR, SOURCE_MODEL, SOURCE_PHOTO
    from facelab.fitting.views import (
        NOVEL_YAWS,
        render_mesh_overlay,
        render_novel_views,
        render_panels,
    )

    overlay = render_mesh_overlay(result, image)
    panels = render_panels(result, image, crop=True, overlay=overlay)
    size = max(256, MIN_FIGURE_SIZE)
    captions = {"input": "photo", "overlay": "fit (landmarks: green detected, red fitted)",
                "geometry": "geometry", "reflectance": "reflectance (albedo)",
                "lighting": "lighting (fitted SH)"}
    panel_image = captioned_grid([upsample(panels[k], size) for k in captions],
                                 list(captions.values()), size=size)
    views = render_novel_views(result, texture, yaws=NOVEL_YAWS, size=384)
    weight = texture.weight.numpy()
    source = texture.source.numpy()
    # where each texel came from: photo (its weight, white), mirror (blue), model (orange)
    where = np.repeat(weight[..., None], 3, axis=-1)
    where[source == SOURCE_MIRROR] = (0.25, 0.45, 0.95)
    where[source == SOURCE_MODEL] = (0.95, 0.55, 0.15)
    where[source == SOURCE_PHOTO] = np.repeat(weight[source == SOURCE_PHOTO][:, None], 3, 1)
    images = [*views, texture.texture, where]
    names = [f"textured, yaw {y:+.0f} deg" for y in NOVEL_YAWS]
    names += ["texture (UV layout)", "photo weight / mirror / model"]
    views_image = captioned_grid(images, names, size=384)
    return {"overlay": overlay, "panels": panel_image, "views": views_image}


def _require_landmark_detector(option_hint: str) -> None:
    from facelab.landmarks import mediapipe_available

    if not mediapipe_available():
        raise ImportError(f"finding landmarks needs MediaPipe: run {INSTALL['landmarks']} in "
                          f"the facelab checkout, or pass {option_hint}")


def _check_out(out: Path) -> Path:
    out = refuse_package_path(out, name="--out")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: expected a folder, got the file {out}")
    return out


def validate_fit(args: argparse.Namespace) -> str:
    """Check ``facelab fit`` options before any work; returns the output stem."""
    args.resolution = check_resolution(args.resolution)
    if args.sample is None:
        check_input_file(args.path, "path", kind="image", suffixes=IMAGE_SUFFIXES)
        stem = Path(args.path).stem
    else:
        stem = args.sample
    if args.landmarks is not None:
        check_input_file(args.landmarks, "--landmarks", kind="landmark")
    elif args.sample is None or args.detect:
        _require_landmark_detector("--landmarks FILE with 68 'x y' rows")
    out = _check_out(Path(args.out))
    if not getattr(args, "force", False):
        refuse_existing(fit_outputs(out, stem))
    return stem


def run_fit(args: argparse.Namespace) -> int:
    """Run ``facelab fit`` for parsed arguments; returns the exit status (0 on success)."""
    import torch

    from facelab.data.photos import sample_landmarks, sample_photo
    from facelab.fitting import fit_image, read_image
    from facelab.fitting.texture import extract_texture
    from facelab.model.registry import load_model
    from facelab.progress import History

    validate_fit(args)
    force = getattr(args, "force", False)
    if args.sample is not None:
        image, stem = sample_photo(args.sample), args.sample
        landmarks = None if args.detect else sample_landmarks(args.sample)
    else:
        image, stem = read_image(args.path), Path(args.path).stem
        landmarks = None
    if args.landmarks is not None:
        landmarks = torch.from_numpy(_load_landmarks(args.landmarks, (68, 2)))
    model = load_model("synthetic", resolution=args.resolution)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = fit_image(image, model, landmarks, callback=History() if args.quiet else None)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    texture = extract_texture(image, result)
    t_texture = time.perf_counter() - t0
    t0 = time.perf_counter()
    figures = fit_figures(result, image, texture)
    t_figures = time.perf_counter() - t0
    written = [_save_png(out / f"{stem}_{name}.png", figures[name], force)
               for name in ("overlay", "panels", "views")]
    written += _save_textured(out, stem, result, texture, force)
    written.append(_save_npz(out / f"{stem}_params.npz", result.parameters(), force))
    seen = float((texture.source == 1).float().mean() / (texture.source > 0).float().mean())
    print(f"facelab fit: {stem} ({result.image_size[0]}x{result.image_size[1]}) with "
          f"{model.name}: fit {t_fit:.2f} s, texture {t_texture:.2f} s, figures "
          f"{t_figures:.2f} s")
    print(f"  texture: {texture.texture.shape[0]}x{texture.texture.shape[1]}, "
          f"{100 * seen:.0f} % of the layout seen in the photo, the rest filled "
          f"({'mirror, then ' if texture.symmetric else ''}fitted reflectance)")
    yaw, pitch, roll = (float(a) * 57.29578 for a in result.angles[[1, 0, 2]])
    print(f"  pose: yaw {yaw:+.1f} deg, pitch {pitch:+.1f} deg, roll {roll:+.1f} deg")
    print(f"  landmark NME (bbox, fit residual on its own targets): "
          f"{100 * result.nme_init:.2f} % after the closed-form pose -> "
          f"{100 * result.nme_final:.2f} % fitted; photometric {result.losses['photo']:.4f}")
    print("wrote:")
    for path in written:
        print(f"  {path}")
    return 0


def fit_main(argv: list[str] | None = None) -> int:
    """``facelab fit`` on its own: parse ``argv`` and run (errors are raised, not reported)."""
    parser = CommandParser(prog="facelab")
    sub = parser.add_subparsers(dest="command")
    add_fit_parser(sub)
    return run_fit(parser.parse_args(["fit", *(sys.argv[1:] if argv is None else argv)]))


# ---------------------------------------------------------------------------- fit-video
def add_fit_video_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``fit-video`` command to an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "fit-video", help="fit the 3D face model to every frame of a video",
        description="Fit a clip frame by frame with one shared identity and warm starts. "
                    "Writes per-frame overlays and meshes, the stacked parameters and an "
                    "overlay GIF (and MP4 with imageio-ffmpeg). Needs the video extra "
                    f"({INSTALL['video']}).")
    p.add_argument("path", type=Path, help="video file (MP4/AVI/MOV with imageio-ffmpeg, GIF)")
    p.add_argument("-o", "--out", type=Path, default=Path("facelab-fit-video"),
                   help="output folder (default: facelab-fit-video)")
    p.add_argument("--landmarks", type=Path, default=None,
                   help="(T, 68, 2) landmarks per frame as .npy; default: MediaPipe")
    p.add_argument("--max-frames", type=int, default=None, help="fit at most N frames")
    p.add_argument("--step", type=int, default=1, help="use every K-th frame (default 1)")
    p.add_argument("--fps", type=float, default=10.0,
                   help=f"frame rate of the outputs, > 0 and <= {MAX_FPS:g} (default 10)")
    p.add_argument("--force", action="store_true",
                   help="overwrite earlier results in OUT (default: refuse, before any work)")
    p.add_argument("--keyframes", type=int, default=3,
                   help="frames fitted fully to find the shared identity (default 3)")
    p.add_argument("--resolution", default="teaching",
                   help="built-in model resolution (default: teaching)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def validate_fit_video(args: argparse.Namespace) -> None:
    """Check ``facelab fit-video`` options before any work (reading or fitting)."""
    args.resolution = check_resolution(args.resolution)
    check_rate(args.fps, "--fps", maximum=MAX_FPS)
    check_count(args.step, "--step")
    check_count(args.max_frames, "--max-frames")
    check_count(args.keyframes, "--keyframes")
    check_input_file(args.path, "path", kind="video", suffixes=VIDEO_SUFFIXES)
    try:
        import imageio.v3  # noqa: F401
    except ImportError as err:
        raise ImportError(f"fit-video reads and writes video with imageio: run "
                          f"{INSTALL['video']} in the facelab checkout") from err
    if args.landmarks is not None:
        check_input_file(args.landmarks, "--landmarks", kind="landmark", suffixes=(".npy",))
    else:
        _require_landmark_detector("--landmarks FILE.npy with (T, 68, 2) points")
    out = _check_out(Path(args.out))
    frames = out / "frames"
    if not getattr(args, "force", False):
        refuse_existing([out / "params.npz", out / "overlay.gif", out / "overlay.mp4"])
        if frames.is_dir() and any(frames.iterdir()):
            raise FileExistsError(f"{frames} already holds frames of an earlier run; pass "
                                  "--force to overwrite, or choose another output folder")


def run_fit_video(args: argparse.Namespace) -> int:
    """Run ``facelab fit-video`` for parsed arguments; returns the exit status."""
    import numpy as np
    import torch

    from facelab.fitting import fit_video, read_video
    from facelab.fitting.views import render_mesh_overlay
    from facelab.image_io import to_uint8
    from facelab.model.registry import load_model
    from facelab.progress import History

    validate_fit_video(args)
    force = getattr(args, "force", False)
    frames = read_video(args.path, max_frames=args.max_frames, step=args.step)
    landmarks = None
    if args.landmarks is not None:
        arr = _load_landmarks(args.landmarks, (frames.shape[0], 68, 2))
        if arr.shape[0] != frames.shape[0]:
            raise ValueError(f"--landmarks: expected ({frames.shape[0]}, 68, 2) for the "
                             f"{frames.shape[0]} frames read, got {arr.shape}")
        landmarks = torch.from_numpy(arr)
    model = load_model("synthetic", resolution=args.resolution)
    out = Path(args.out)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = fit_video(frames, model, landmarks, keyframes=args.keyframes,
                        callback=History() if args.quiet else None)
    t_fit = time.perf_counter() - t0
    written, overlays = [], []
    for i, (frame, res) in enumerate(zip(frames, results, strict=True)):
        overlay = render_mesh_overlay(res, frame)
        overlays.append(to_uint8(overlay))
        written.append(_save_png(out / "frames" / f"frame_{i:04d}_overlay.png", overlay, force))
        written += _save_mesh(out / "frames", f"frame_{i:04d}", res, force)
    stacked = {k: np.stack([r.parameters()[k] for r in results]) for k in results[0].parameters()}
    written.append(_save_npz(out / "params.npz", stacked, force))
    import imageio.v3 as iio

    gif = out / "overlay.gif"
    with atomic_path(gif, overwrite=force) as tmp:
        iio.imwrite(tmp, np.stack(overlays), duration=1000.0 / args.fps, loop=0)
    written.append(gif)
    try:
        mp4 = out / "overlay.mp4"
        even = [o[: o.shape[0] // 2 * 2, : o.shape[1] // 2 * 2] for o in overlays]
        with atomic_path(mp4, overwrite=force) as tmp:
            iio.imwrite(tmp, np.stack(even), fps=args.fps)  # imageio-ffmpeg's writer (H.264)
        written.append(mp4)
    except Exception as err:  # ffmpeg missing or unusable: the GIF is enough
        first = " ".join(str(err).split())[:160]
        print(f"  (no MP4: {type(err).__name__}: {first}; run {INSTALL['video']})")
    nmes = [r.nme_final for r in results]
    print(f"facelab fit-video: {len(results)} frames with {model.name}: {t_fit:.2f} s "
          f"({t_fit / len(results):.2f} s per frame)")
    print(f"  landmark NME (bbox, fit residual): mean {100 * float(np.mean(nmes)):.2f} %, "
          f"max {100 * float(np.max(nmes)):.2f} %")
    print(f"wrote {len(written)} files into {out}, among them:")
    for path in written[-3:]:
        print(f"  {path}")
    return 0


def fit_video_main(argv: list[str] | None = None) -> int:
    """``facelab fit-video`` on its own: parse ``argv`` and run (errors are raised)."""
    parser = CommandParser(prog="facelab")
    sub = parser.add_subparsers(dest="command")
    add_fit_video_parser(sub)
    return run_fit_video(parser.parse_args(["fit-video",
                                            *(sys.argv[1:] if argv is None else argv)]))
