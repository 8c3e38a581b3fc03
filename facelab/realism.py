"""Does a detector trained on real photos accept the built-in head, and agree with its landmarks?

The protocol of ``tests/test_head_realism.py`` as functions, so the test, the landmark survey
(``benchmarks/head_landmark_survey.py``) and the seed study (``benchmarks/head_realism_seeds.py``)
render the same way: random heads of a morphable model (identity ~ N(0, s^2), expression ~
N(0, 0.3^2), albedo ~ N(0, 0.8^2) per mode) at a random yaw in [-45, 45] degrees and pitch in
[-8, 8], under a random light (an SH key light from the camera's side plus ambient) on a random
grey background, rendered anti-aliased with per-vertex albedo and shown with display gamma
2.2, then run through :func:`facelab.landmarks.detect` (MediaPipe Face Mesh, iBUG-68).

NME is the mean point distance over the inter-ocular distance (outer eye corners 36-45, as
300-W) of the model's projected landmarks. **Mirror consistency** measures the detector
rather than the head: the render is also detected mirrored (``image[:, ::-1]``), the points
mapped back (x -> W - x, iBUG's left/right swapped by ``MIRROR_68``) and compared with the
direct detection. A perfect detector gives 0; for any ground truth T, NME(d, T) +
NME(d_mirror, T) >= NME(d, d_mirror), so at least one of a render and its mirror image is at
least half the mirror inconsistency away from every possible landmark definition.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from facelab._checks import check_int, check_shape
from facelab.face_params import FaceParams
from facelab.formation import PICTURE_ANTIALIAS, default_camera, form, render
from facelab.lighting import sh_from_direction
from facelab.model.synthetic.ibug import MIRROR_68
from facelab.rotations import head_rotation

__all__ = ["SIZE", "mirror_consistency", "random_light", "realism_study", "render_picture"]

SIZE = 320  # pixels, the renders' width and height


def _f32(a) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32)


def random_light(rng: np.random.Generator) -> torch.Tensor:
    """A random SH light (1, 9, 3): a white key light from the camera's side (direction
    ~ N(0, I) with its z made <= -0.5, OpenCV camera space), intensity U(0.35, 0.6), ambient
    U(0.5, 0.8). Draws 5 numbers from ``rng`` in this order."""
    d = rng.normal(size=3)
    d[2] = -abs(d[2]) - 0.5  # a key light from the camera's side
    return sh_from_direction(_f32(d / np.linalg.norm(d)), rng.uniform(0.35, 0.6),
                             rng.uniform(0.5, 0.8))


def render_picture(model, params: FaceParams, camera, background, size: int = SIZE):
    """Render ``params`` as a picture (anti-aliased, display gamma 2.2).

    params: batch-1 :class:`FaceParams`; camera: batch-1 intrinsics (see ``default_camera``);
    background: (3,) float RGB in [0, 1].
    Returns (picture (size, size, 3) float32 NumPy in [0, 1], the batch-1 formation).
    """
    with torch.no_grad():
        formation = form(model, params, camera)
        image, _ = render(formation, size, size, antialias=PICTURE_ANTIALIAS,
                          background=_f32(background))
    return image[0].clamp(0.0, 1.0).numpy() ** (1.0 / 2.2), formation


def mirror_consistency(detect, picture: np.ndarray, landmarks: np.ndarray, iod: float):
    """NME (68,) between ``landmarks`` (68, 2), the detection of ``picture``, and the detection
    of the mirrored picture mapped back; None when the mirrored picture has no face."""
    check_shape(picture, "H W 3", name="picture")
    check_shape(landmarks, "68 2", name="landmarks")
    mirrored = detect(np.ascontiguousarray(picture[:, ::-1]))
    if mirrored is None:
        return None
    back = mirrored.landmarks[MIRROR_68].astype(np.float64)
    back[:, 0] = picture.shape[1] - back[:, 0]
    return np.linalg.norm(back - landmarks, axis=1) / iod


def realism_study(model, n: int = 24, seed: int = 0, id_scale: float = 1.0,
                  mirror: bool = True, size: int = SIZE) -> dict:
    """Render ``n`` random heads of ``model`` and compare MediaPipe's landmarks with the model's.

    n: renders (>= 1); seed: the generator's seed (>= 0); size: the renders' width and height
        in pixels (>= 64).
    id_scale: identity coefficients ~ N(0, id_scale^2) (1: the model's population, 0: the
        mean head). mirror: also measure the detector's mirror consistency (twice the
        detections).
    Returns {"yaw" (n,) degrees, "found" (n,) bool, "err" (n, 68) per-point NME (NaN where
    no face), "nme" / "contour" / "inner" (n,) mean over the 68 / the 17 jaw / the 51 inner
    points, "mirror" (n,) mirror-consistency NME (NaN when not measured)}. Needs the
    ``facelab[landmarks]`` extra (MediaPipe).
    """
    n = check_int(n, name="n", minimum=1)
    seed = check_int(seed, name="seed", minimum=0)
    size = check_int(size, name="size", minimum=64)
    if isinstance(id_scale, bool) or not isinstance(id_scale, (int, float)):
        raise TypeError(f"id_scale: expected a number, got {type(id_scale).__name__}")
    if not math.isfinite(id_scale) or id_scale < 0:
        raise ValueError(f"id_scale: expected a finite number >= 0, got {id_scale}")
    from facelab.landmarks import detect

    rng = np.random.default_rng(seed)
    camera, t = default_camera(1, size, size, fov_deg=16.0, distance=1000.0)
    yaws, found, errs, mirrors = [], [], [], []
    for _ in range(n):
        yaw = rng.uniform(0.0, 45.0) * rng.choice([-1.0, 1.0])
        pitch = rng.uniform(-8.0, 8.0)
        ident = _f32(rng.standard_normal((1, model.n_id)) * id_scale)
        expr = _f32(rng.standard_normal((1, model.n_exp)) * 0.3)
        albedo = _f32(rng.standard_normal((1, model.n_albedo)) * 0.8)
        light = random_light(rng)
        angles = _f32([[np.deg2rad(pitch), np.deg2rad(yaw), 0.0]])
        params = FaceParams(id=ident, exp=expr, albedo=albedo, rotation=head_rotation(angles),
                            translation=t, gamma=light)
        picture, formation = render_picture(model, params, camera, rng.uniform(0.2, 0.8, 3),
                                            size)
        truth = formation.landmarks_2d[0].numpy()
        iod = float(np.linalg.norm(truth[36] - truth[45]))
        det = detect(picture)
        err = np.full(68, np.nan) if det is None else np.linalg.norm(det.landmarks - truth,
                                                                      axis=1) / iod
        m = None
        if mirror and det is not None:
            m = mirror_consistency(detect, picture, det.landmarks, iod)
        yaws.append(yaw)
        found.append(det is not None)
        errs.append(err)
        mirrors.append(np.nan if m is None else float(m.mean()))
    err = np.stack(errs)
    return {"yaw": np.array(yaws), "found": np.array(found), "err": err,
            "nme": err.mean(1), "contour": err[:, :17].mean(1), "inner": err[:, 17:].mean(1),
            "mirror": np.array(mirrors)}
