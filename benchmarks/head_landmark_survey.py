"""Where MediaPipe puts the iBUG-68 points on the built-in head (synthetic version 2).

The survey behind ``facelab.model.head.rig.SURVEYED_UV``: the vertices whose projections agree
best with :func:`facelab.landmarks.detect` over many views, i.e. the detector's landmark
convention expressed as fixed vertices of the head.

Protocol: the mean head and ``--identities - 1`` random heads (identity ~ N(0, 1), expression
~ N(0, 0.3^2), albedo ~ N(0, 0.8^2) per mode, pitch in [-8, 8] degrees; the mean head at pitch
0), each at the yaws ``YAWS_DEG`` (0 to +-45 degrees), 320 px, anti-aliased, under a random key
light on a random grey background (the protocol of ``tests/test_head_realism.py``, with another
seed: ``SEED``). For every iBUG point and its mirror partner, the skin vertex ``j`` (the upper
or lower edge of the mouth slit for the inner lips 60-67; a midline vertex for midline points)
minimising the mean over all renders of

    |proj(j) - det_i| / iod + |proj(mirror(j)) - det_mirror(i)| / iod

(the NME terms of the pair, iod the image distance between the outer eye corners) is chosen;
its unwrapped design coordinates (u, v) are printed as the ``SURVEYED_UV`` table (subject's
right side and midline; the left side is the mirror image). Hidden vertices are projected like
visible ones: MediaPipe's mesh, like a morphable model's landmarks, predicts every point, so its
contour is a set of fixed points of its face template, not the silhouette.

Why not the silhouette or a frontal survey (measured on the realism test's 24 renders, mean NME
by |yaw| 0-15 / 15-30 / 30-45): fixed frontal-survey vertices 4.6 / 7.2 / 11.0 %;
silhouette-following contour points (per view, the outermost vertex of the same height)
7.3 / 10.5 / 18.5 %; this multi-view survey, see the test's docstring. MediaPipe's own 3-D mesh
places its face oval 8-26 mm behind the head's surface (its depth output on the frontal mean
head, eyes aligned), so no surface point follows it at every yaw; the survey picks the best
compromise.

    PYTHONPATH=. python benchmarks/head_landmark_survey.py [--vertices 12000] [--identities 8]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import facelab as fl
from facelab.formation import PICTURE_ANTIALIAS
from facelab.landmarks import detect
from facelab.lighting import sh_from_direction
from facelab.model.head import head_arrays
from facelab.model.head import mesh as M
from facelab.model.synthetic.ibug import MIRROR_68
from facelab.rotations import head_rotation

YAWS_DEG = (0.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0, 38.0, -38.0, 45.0, -45.0)
SEED, SIZE = 12345, 320
UPPER_SLIT, LOWER_SLIT = (60, 61, 62, 63, 64), (65, 66, 67)


def render_views(model, n_identities: int, seed: int = SEED):
    """Detector points and vertex projections: (det (N, 68, 2), screen (N, V, 2), truth (N, 68,
    2)) over the renders MediaPipe accepted."""
    rng = np.random.default_rng(seed)
    camera, t = fl.default_camera(1, SIZE, SIZE, fov_deg=16.0, distance=1000.0)
    dets, screens, truths = [], [], []
    f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    for k in range(n_identities):
        s = 0.0 if k == 0 else 1.0  # the mean head first
        ident = f32(rng.standard_normal((1, model.n_id)) * s)
        expr = f32(rng.standard_normal((1, model.n_exp)) * 0.3 * s)
        albedo = f32(rng.standard_normal((1, model.n_albedo)) * 0.8 * s)
        for yaw in YAWS_DEG:
            pitch = rng.uniform(-8.0, 8.0) * s
            d = rng.normal(size=3)
            d[2] = -abs(d[2]) - 0.5  # a key light from the camera's side
            light = sh_from_direction(f32(d / np.linalg.norm(d)), rng.uniform(0.35, 0.6),
                                      rng.uniform(0.5, 0.8))
            angles = f32([[np.deg2rad(pitch), np.deg2rad(yaw), 0.0]])
            params = fl.FaceParams(id=ident, exp=expr, albedo=albedo,
                                   rotation=head_rotation(angles), translation=t, gamma=light)
            with torch.no_grad():
                f = fl.form(model, params, camera)
                image, _ = fl.render(f, SIZE, SIZE, antialias=PICTURE_ANTIALIAS,
                                     background=f32(rng.uniform(0.2, 0.8, 3)))
            det = detect(image[0].clamp(0.0, 1.0).numpy() ** (1.0 / 2.2))
            if det is None:
                print(f"  no face found: identity {k}, yaw {yaw}")
                continue
            dets.append(det.landmarks)
            screens.append(f.screen_verts[0, :, :2].numpy())
            truths.append(f.landmarks_2d[0].numpy())
    return np.stack(dets), np.stack(screens), np.stack(truths)


def survey(n_vertices: int = 12000, n_identities: int = 8) -> dict[int, tuple[float, float]]:
    """{iBUG index: (u, v)} of the surveyed vertices, subject's right side and midline."""
    model = fl.load_model("synthetic", n_vertices, version=2)
    arrays = head_arrays(n_vertices)
    shell = M.build_shell(n_vertices)
    kind, mirror = arrays["kind"], arrays["mirror"]
    det, screen, truth = render_views(model, n_identities)
    print(f"  {len(det)} renders")
    iod = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=1)[:, None]  # (N, 1)
    out = {}
    for i in range(68):
        m = int(MIRROR_68[i])
        if m < i:
            continue
        want = (M.KIND_SLIT_UP if i in UPPER_SLIT else M.KIND_SLIT_LOW if i in LOWER_SLIT
                else M.KIND_SKIN)
        cand = np.nonzero(kind == want)[0]
        if m == i:  # a midline point stays on the midline
            cand = cand[mirror[cand] == cand]
        cost = (np.linalg.norm(screen[:, cand] - det[:, i, None], axis=-1) / iod).mean(0)
        if m != i:
            cost = cost + (np.linalg.norm(screen[:, mirror[cand]] - det[:, m, None], axis=-1)
                           / iod).mean(0)
        j = int(cand[np.argmin(cost)])
        if shell.u[j] > 0:  # report the subject's right side (u < 0)
            j, i = int(mirror[j]), m
        out[i] = (float(shell.u[j]), float(shell.v[j]))
    return dict(sorted(out.items()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=12000)
    parser.add_argument("--identities", type=int, default=8)
    args = parser.parse_args(argv)
    table = survey(args.vertices, args.identities)
    print("SURVEYED_UV = {")
    items = [f"{i}: ({u:.1f}, {v:.1f})" for i, (u, v) in table.items()]
    for k in range(0, len(items), 5):
        print("    " + ", ".join(items[k:k + 5]) + ",")
    print("}")


if __name__ == "__main__":
    main()
