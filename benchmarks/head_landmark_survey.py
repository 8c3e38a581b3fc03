"""Where MediaPipe puts the iBUG-68 points on the built-in head (synthetic version 2).

Renders the mean head at yaws 0, +-15, +-30 and +-40 degrees (512 px, anti-aliased, a key
light), runs :func:`facelab.landmarks.detect`, and for every detected point finds the visible
skin vertex whose projection is nearest (the nearest in depth among those within 2 px of the
closest). With several yaws a view counts for a point when that vertex faces the camera
(cosine > 0.35), so a contour point is read where it lies on the cheek, not where it slides
along the silhouette; with one yaw every point counts.
The unwrapped design coordinates (u, v) in millimetres, averaged over the counted views and
made mirror-symmetric, are printed as the table ``facelab.model.head.rig.SURVEYED_UV`` holds
for the brows and nose (27-33); the jaw contour (0-8) is the frontal survey (``--yaws 0``),
which agreed best over yaws 0-45 (reading the contour on the turned cheek made the far side's
error, and the mean, larger). Run it after changing the head's geometry:

    PYTHONPATH=. python benchmarks/head_landmark_survey.py [--vertices 12000] [--yaws 0]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import facelab as fl
from facelab.formation import PICTURE_ANTIALIAS
from facelab.landmarks import detect
from facelab.lighting import sh_from_direction
from facelab.model.head import mesh as M
from facelab.model.head import rig
from facelab.rotations import head_rotation

YAWS_DEG = (0.0, 15.0, -15.0, 30.0, -30.0, 40.0, -40.0)


def survey(n_vertices: int = 12000, size: int = 512, yaws=YAWS_DEG) -> np.ndarray:
    """(68, 2) mirror-symmetric (u, v) of MediaPipe's points on the mean head."""
    model = fl.load_model("synthetic", n_vertices, version=2)
    shell = M.build_shell(n_vertices)
    camera, t = fl.default_camera(1, size, size, fov_deg=16.0, distance=1000.0)
    total, count = np.zeros((68, 2)), np.zeros(68)
    min_facing = 0.35 if len(yaws) > 1 else 0.0  # one view: every point counts
    for yaw in yaws:
        angles = torch.tensor([[0.0, np.deg2rad(yaw), 0.0]], dtype=torch.float32)
        params = fl.FaceParams(id=torch.zeros(1, model.n_id), rotation=head_rotation(angles),
                               translation=t, gamma=sh_from_direction(
                                   torch.tensor([0.3, -0.3, -1.0]), 0.5, 0.6))
        with torch.no_grad():
            f = fl.form(model, params, camera)
            image, _ = fl.render(f, size, size, antialias=PICTURE_ANTIALIAS,
                                 background=torch.tensor([0.5, 0.5, 0.5]))
        det = detect(image[0].clamp(0, 1).numpy() ** (1 / 2.2))
        if det is None:
            raise SystemExit(f"MediaPipe found no face on the mean head at yaw {yaw}")
        screen, normals, cam = (x[0].numpy() for x in (f.screen_verts, f.normals, f.verts_cam))
        facing = -np.einsum("vi,vi->v", normals, cam) / np.linalg.norm(cam, axis=1)
        visible = (facing > 0) & (shell.kind <= M.KIND_SLIT_LOW)
        for i, q in enumerate(det.landmarks):
            d = np.hypot(screen[:, 0] - q[0], screen[:, 1] - q[1])
            d[~visible] = np.inf
            cand = np.argsort(d)[:30]
            cand = cand[d[cand] < d[cand[0]] + 2.0]
            j = cand[np.argmin(screen[cand, 2])]
            if facing[j] > min_facing:
                total[i] += (shell.u[j], shell.v[j])
                count[i] += 1
    uv = total / np.maximum(count, 1)[:, None]
    mirror = rig.MIRROR_68
    both = count + count[mirror]
    return (uv * count[:, None] + np.stack([-uv[mirror, 0], uv[mirror, 1]], -1)
            * count[mirror][:, None]) / np.maximum(both, 1)[:, None]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=12000)
    parser.add_argument("--yaws", type=float, nargs="+", default=list(YAWS_DEG),
                        help="yaws in degrees (rig.SURVEYED_UV: the contour 0-8 from --yaws 0, "
                        "brows and nose from the default)")
    args = parser.parse_args(argv)
    uv = survey(args.vertices, yaws=args.yaws)
    for i in list(range(9)) + list(range(17, 22)) + list(range(27, 34)):
        print(f"    {i}: ({uv[i, 0]:.1f}, {uv[i, 1]:.1f}),")


if __name__ == "__main__":
    main()
