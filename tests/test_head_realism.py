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

The model's landmarks are MediaPipe's convention as a landmark embedding of the head
(``rig.LANDMARK_EMBEDDING``, each point an affine combination of 4 vertices, off the surface
where MediaPipe's template is: its face oval lies 8-26 mm behind the head's surface, its brows
and nose tip in front), fitted by ``benchmarks/head_landmark_survey.py`` on 440 other renders
(40 heads x 11 yaws, seed 12345). Floors of the landmark definition, NME on these 24 renders
(mean, median, max; by |yaw| 0-15 / 15-30 / 30-45 mean), from the survey's fits with the
projection treated as affine over each support: best fixed vertex per point 5.4 / 5.0 / 8.1 %
(4.4 / 5.4 / 7.0); the 4-vertex embedding 4.4 / 4.2 / 6.6 % (3.8 / 4.6 / 5.1); 8 vertices
within 80 mm 4.2 / 4.0 / 6.4 %; a separate embedding per |yaw| bin (DECA-style dynamic
landmarks) 4.2 / 4.1 / 6.3 % (3.4 / 4.5 / 5.0). The earlier frontal survey's vertices gave
4.6 / 7.2 / 11.0 % by bin, a silhouette-following contour 7.3 / 10.5 / 18.5 %.

Measured (seed 0; ``pytest -s`` prints it): every render is detected; NME over the 68 points
mean 4.4 %, median 4.2 %, max 6.5 %; over the 51 inner points mean 3.3 %, median 3.1 %,
max 4.8 % (every render under 5 %); the jaw contour's 17 points mean 7.8 %, max 16.6 %. By
|yaw| (9 / 9 / 6 renders; mean, min-median-max): 0-15 deg 3.8 % (2.8-3.5-6.5), 15-30 deg
4.5 % (3.5-4.2-6.1), 30-45 deg 5.1 % (4.2-5.2-5.5). So the issue's bar, 5 % on every render,
is met by 16 of the 24 renders and not by the other 8 (5.2-6.5 %): the largest, 6.5 %, is a
near-frontal head whose jaw contour MediaPipe draws ~10 mm inside the model's (an identity the
survey's heads do not cover: its contour points 0-4 are 20-30 % off, its inner points 3.2 %);
at 30-45 deg the renders lie at 4.2-5.5 % (median 5.2 %). No fixed definition of the points
measured above gets every render under 5 %; ``test_nme_bar_of_the_issue`` records that as a
strict expected failure, and the other tests guard the measured level.

Over seeds 0, 1, 2 (``benchmarks/head_realism_seeds.py``, the same protocol): NME mean 4.41 ±
0.10 %, max 7.42 ± 1.21 %, 18.3 ± 2.5 of 24 renders within 5 %. Two measurements say the
bar is not the landmark definition's to meet: (1) the *mean* head (identity scale 0, only
expression, albedo, pose and light random) still fails it, max 6.22 ± 0.35 % (at 35-45 deg
yaw), 20.7 ± 0.6 of 24 within 5 %; (2) the detector disagrees with itself: its points on a
render and on the mirrored render (mapped back) differ by 2.90 ± 0.48 % on average and by up
to 8.7 % (seed 1, the 8.8 % render at 42.6 deg yaw, where they differ by 7.3 %); for any
landmark definition one of the two images is then at least half that far from it. The
fixture prints this mirror inconsistency per render (:func:`facelab.realism.realism_study`).
A light kept above the head instead of from any direction moves the mean NME by -0.2 % and
leaves the worst renders as they are (seeds 0 and 1, measured once).
"""

from __future__ import annotations

import numpy as np
import pytest

import facelab as fl
from facelab.landmarks import mediapipe_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not mediapipe_available(), reason="needs mediapipe (facelab[landmarks])"),
]

N_RENDERS, SEED = 24, 0
YAW_BINS = ((0, 15), (15, 30), (30, 46))


@pytest.fixture(scope="module")
def results():
    from facelab.realism import realism_study

    model = fl.load_model("synthetic", "medium", version=2)
    out = realism_study(model, n=N_RENDERS, seed=SEED, mirror=True)
    yaw = out["yaw"]
    print("\nhead realism (NME, % of inter-ocular distance):")
    for key in ("nme", "contour", "inner", "mirror"):
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
    print(f"  renders with NME <= 5 %: {(out['nme'] <= 0.05).sum()} of {len(yaw)}; sorted NME "
          + " ".join(f"{v:.1f}" for v in np.sort(out["nme"] * 100)))
    print("  per render, NME / the detector's mirror inconsistency: " + " ".join(
        f"{a:.1f}/{b:.1f}" for a, b in zip(out["nme"] * 100, out["mirror"] * 100, strict=True)))
    return out


def test_every_render_is_a_face(results):
    assert results["found"].all(), f"no face found at yaws {results['yaw'][~results['found']]}"


def test_landmarks_agree_at_the_measured_level(results):
    """Regression guards at the measured level (see the module docstring), not the 5 % bar."""
    nme, inner = results["nme"], results["inner"]
    assert np.median(nme) < 0.047 and nme.max() < 0.072
    assert np.median(inner) < 0.035 and inner.max() < 0.05  # the inner points meet the bar
    assert (nme <= 0.05).sum() >= 15  # 16 of the 24 renders meet the bar


def test_error_by_yaw_bin(results):
    """Mean NME per |yaw| bin at the measured level: 3.8 / 4.5 / 5.1 % (fixed surface vertices
    gave 4.6 / 5.5 / 7.2 %, the earlier frontal survey 4.6 / 7.2 / 11.0 %)."""
    yaw, nme = np.abs(results["yaw"]), results["nme"]
    for (a, b), bound in zip(YAW_BINS, (0.042, 0.05, 0.056), strict=True):
        sel = (yaw >= a) & (yaw < b)
        assert sel.sum() >= 4, (a, b)
        assert nme[sel].mean() < bound, (a, b, nme[sel].mean())


@pytest.mark.xfail(strict=True, reason="the issue's bar (NME <= 5 % on every render at yaw up "
                   "to 45 deg) is met by 16 of 24 renders: up to 6.5 % near-frontal (one "
                   "identity's jaw contour) and 5.5 % at 30-45 deg (see the module docstring)")
def test_nme_bar_of_the_issue(results):
    assert results["nme"].max() <= 0.05
