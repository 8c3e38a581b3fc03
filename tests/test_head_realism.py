"""Realism of the built-in head (synthetic version 2): does a detector trained on real photos
accept it as a face, and agree with its landmarks?

24 random heads (identity ~ N(0, 1), expression ~ N(0, 0.3^2), albedo ~ N(0, 0.8^2) per
mode) at a random yaw in [-45, 45] degrees and pitch in [-8, 8], under a random light (an SH
key light from the camera's side plus ambient) on a random grey background, are rendered at
320 px with per-vertex albedo at the "medium" resolution (~12k vertices) and anti-aliasing
(``PICTURE_ANTIALIAS``), then run through :func:`facelab.landmarks.detect` (MediaPipe Face
Mesh, the 468 -> iBUG-68 mapping of :mod:`facelab.landmarks`). NME is the mean point
distance to the model's projected landmarks over the image inter-ocular distance (outer eye
corners 36-45, as 300-W).

The model's landmarks are MediaPipe's convention as fixed vertices of the head
(``rig.SURVEYED_UV``, measured by ``benchmarks/head_landmark_survey.py`` on 88 other renders:
for each point the vertex whose projection agrees best with the detector over yaws 0 to +-45
degrees). MediaPipe's face oval is a set of fixed points of its face template, 8-26 mm behind
the head's surface in its own depth output, not a silhouette-following contour: reading the
contour off the silhouette made the error larger (mean 7.3 / 10.5 / 18.5 % by yaw bin instead
of 4.6 / 7.2 / 11.0 % with the earlier frontal survey).

Measured (seed 0; ``pytest -s`` prints it): every render is detected; NME over the 68 points
mean 5.6 %, median 5.3 %, max 8.3 %; over the 51 inner points mean 4.5 %, median 4.0 %,
max 7.3 %; the jaw contour's 17 points mean 9.0 %. By |yaw| (9 / 9 / 6 renders; mean,
min-median-max): 0-15 deg 4.6 % (3.4-4.3-7.6), 15-30 deg 5.5 % (4.1-5.4-7.8), 30-45 deg 7.2 %
(5.9-7.1-8.3). Before the multi-view survey: 4.6 / 7.2 / 11.0 %, max 13.7 %. So the issue's
bar, 5 % on every render, is still not met: a near-frontal render reaches 7.6 % (an identity
whose oval MediaPipe reads a few pixels sideways) and turned ones 7.8-8.3 %; ``test_nme_bar_of_the_issue`` records that as a strict
expected failure, and the other tests guard the measured level.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import facelab as fl
from facelab.formation import PICTURE_ANTIALIAS
from facelab.landmarks import mediapipe_available
from facelab.lighting import sh_from_direction
from facelab.rotations import head_rotation

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not mediapipe_available(), reason="needs mediapipe (facelab[landmarks])"),
]

N_RENDERS, SIZE, SEED = 24, 320, 0
YAW_BINS = ((0, 15), (15, 30), (30, 46))


@pytest.fixture(scope="module")
def results():
    from facelab.landmarks import detect

    model = fl.load_model("synthetic", "medium", version=2)
    rng = np.random.default_rng(SEED)
    camera, t = fl.default_camera(1, SIZE, SIZE, fov_deg=16.0, distance=1000.0)
    rows = []
    for _ in range(N_RENDERS):
        yaw = rng.uniform(0.0, 45.0) * rng.choice([-1.0, 1.0])
        pitch = rng.uniform(-8.0, 8.0)
        f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        ident = f32(rng.standard_normal((1, model.n_id)))
        expr = f32(rng.standard_normal((1, model.n_exp)) * 0.3)
        albedo = f32(rng.standard_normal((1, model.n_albedo)) * 0.8)
        d = rng.normal(size=3)
        d[2] = -abs(d[2]) - 0.5  # a key light from the camera's side
        light = sh_from_direction(f32(d / np.linalg.norm(d)), rng.uniform(0.35, 0.6),
                                  rng.uniform(0.5, 0.8))
        angles = f32([[np.deg2rad(pitch), np.deg2rad(yaw), 0.0]])
        params = fl.FaceParams(id=ident, exp=expr, albedo=albedo,
                               rotation=head_rotation(angles), translation=t, gamma=light)
        with torch.no_grad():
            formation = fl.form(model, params, camera)
            image, _ = fl.render(formation, SIZE, SIZE, antialias=PICTURE_ANTIALIAS,
                                 background=f32(rng.uniform(0.2, 0.8, 3)))
        picture = image[0].clamp(0.0, 1.0).numpy() ** (1.0 / 2.2)  # display gamma
        truth = formation.landmarks_2d[0].numpy()
        iod = float(np.linalg.norm(truth[36] - truth[45]))
        det = detect(picture)
        err = (np.full(68, np.nan) if det is None
               else np.linalg.norm(det.landmarks - truth, axis=1) / iod)
        rows.append((yaw, det is not None, err))
    yaw = np.array([r[0] for r in rows])
    found = np.array([r[1] for r in rows])
    err = np.stack([r[2] for r in rows])  # (N, 68)
    out = {"yaw": yaw, "found": found, "nme": err.mean(1), "contour": err[:, :17].mean(1),
           "inner": err[:, 17:].mean(1)}
    print("\nhead realism (NME, % of inter-ocular distance):")
    for key in ("nme", "contour", "inner"):
        v = out[key] * 100
        print(f"  {key:8s} mean {np.nanmean(v):5.2f}  median {np.nanmedian(v):5.2f}  "
              f"max {np.nanmax(v):5.2f}")
    for a, b in YAW_BINS:
        sel = (np.abs(yaw) >= a) & (np.abs(yaw) < b)
        if sel.any():
            v = out["nme"][sel] * 100
            print(f"  |yaw| {a:2d}-{b:2d} deg: {sel.sum():2d} renders, NME mean {np.nanmean(v):5.2f}"
                  f"  min {np.nanmin(v):5.2f}  median {np.nanmedian(v):5.2f}  max {np.nanmax(v):5.2f}")
    near = out["nme"][np.abs(yaw) <= 12.0] * 100
    print(f"  |yaw| <= 12 deg: NME {near.min():.2f} - {near.max():.2f}")
    return out


def test_every_render_is_a_face(results):
    assert results["found"].all(), f"no face found at yaws {results['yaw'][~results['found']]}"


def test_landmarks_agree_at_the_measured_level(results):
    """Regression guards at the measured level (see the module docstring), not the 5 % bar."""
    nme, inner, yaw = results["nme"], results["inner"], results["yaw"]
    assert np.median(nme) < 0.06 and nme.max() < 0.095
    assert np.median(inner) < 0.045 and inner.max() < 0.085
    assert nme[np.abs(yaw) <= 12.0].max() < 0.085  # near-frontal heads


def test_error_by_yaw_bin(results):
    """Mean NME per |yaw| bin at the measured level: 4.6 / 5.5 / 7.2 % (the frontal survey's
    contour gave 4.6 / 7.2 / 11.0 %)."""
    yaw, nme = np.abs(results["yaw"]), results["nme"]
    for (a, b), bound in zip(YAW_BINS, (0.055, 0.065, 0.08), strict=True):
        sel = (yaw >= a) & (yaw < b)
        assert sel.sum() >= 4, (a, b)
        assert nme[sel].mean() < bound, (a, b, nme[sel].mean())


@pytest.mark.xfail(strict=True, reason="the issue's bar (NME <= 5 % on every render at yaw up "
                   "to 45 deg) is not met: up to 7.6 % near-frontal and 8.3 % at 30-45 deg "
                   "(see the module docstring)")
def test_nme_bar_of_the_issue(results):
    assert results["nme"].max() <= 0.05
