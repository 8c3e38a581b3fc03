"""The NoW benchmark's scan-to-mesh error (Sanyal et al., CVPR 2019, Sec. 5).

Re-exported by :mod:`facelab.metrics`; see :func:`scan_to_mesh_error`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facelab._checks import (
    as_tensor,
    check_indices,
    check_int,
    check_shape,
)
from facelab.mesh import closest_points
from facelab.metrics.core import _points, similarity_transform

__all__ = ["ScanError", "scan_to_mesh_error"]


@dataclass(frozen=True, eq=False)
class ScanError:
    """What :func:`scan_to_mesh_error` measured (NumPy float64, mm for facelab models).

    median, mean, std: statistics of ``distances`` (the NoW benchmark's three numbers).
    distances: (N,) each scan point's distance to the aligned predicted surface.
    closest: (N, 3) the closest surface points, in the scan's frame.
    aligned_verts: (V, 3) the predicted mesh after alignment, in the scan's frame.
    scale, rotation (3, 3), translation (3,): the similarity ``x -> scale R x + t`` that maps
        the predicted mesh into the scan's frame (landmarks, then ICP).
    landmark_rms: RMS landmark distance (mm) after the landmark alignment alone.
    iterations: ICP iterations run.
    """

    median: float
    mean: float
    std: float
    distances: np.ndarray
    closest: np.ndarray
    aligned_verts: np.ndarray
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    landmark_rms: float
    iterations: int

    def __repr__(self) -> str:
        return (f"ScanError(median={self.median:.3f}, mean={self.mean:.3f}, std={self.std:.3f}, "
                f"points={len(self.distances)}, icp_iterations={self.iterations})")


def _np_points(x, spec: str, name: str, dims: dict | None = None):
    t, _, dims = _points(x, spec, name, dims)
    return t.detach().cpu().double().numpy(), dims


def _apply(scale: float, rot: np.ndarray, shift: np.ndarray, x: np.ndarray) -> np.ndarray:
    return scale * x @ rot.T + shift  # (N, 3)


def _fit_similarity(source: np.ndarray, target: np.ndarray, with_scale: bool):
    """(scale, R (3, 3), t (3,)) mapping source (N, 3) onto target (N, 3), float64."""
    scale, rot, shift = similarity_transform(torch.from_numpy(source)[None],
                                             torch.from_numpy(target)[None], rotation=True)
    scale = float(scale[0]) if with_scale else 1.0
    rot = rot[0].numpy()
    if not with_scale:  # rigid: t = mean(target) - R mean(source)
        return 1.0, rot, target.mean(0) - rot @ source.mean(0)
    return scale, rot, shift[0].numpy()


def scan_to_mesh_error(scan, scan_landmarks, verts, faces, mesh_landmarks, *,
                       icp_iterations: int = 50, scale: bool = True, tol: float = 1e-4):
    """Scan-to-mesh distance of a predicted face, the NoW benchmark's protocol.

    Sanyal et al., "Learning to regress 3D face shape and expression from an image without 3D
    supervision" (CVPR 2019), Sec. 5 (the NoW evaluation, used by NeuFace Sec. 5.2, Table 5):

    1. the predicted mesh is mapped into the scan's frame by the least-squares similarity
       (rotation, translation, isotropic scale) between its landmarks and the scan's
       (:func:`similarity_transform`, Umeyama 1991);
    2. ICP refines it: each scan point's closest point on the predicted surface
       (:func:`facelab.mesh.closest_points`), then the similarity (or rigid transform) that
       maps those surface points onto the scan points, repeated until the mean distance
       falls by less than ``tol`` (relative, or ``tol`` x 1e-3 of the scan's extent absolute),
       rises, or ``icp_iterations`` are done;
    3. the error of every scan point is its distance to the closest point on the aligned
       surface (triangle interiors and edges, not only vertices).

    scan: (N, 3) float points of the ground truth's face region (mm).
    scan_landmarks: (L, 3) float landmarks on the scan, L >= 3 and not collinear (NoW: 7 —
        eye corners, nose tip, mouth corners).
    verts: (V, 3) float predicted mesh, any frame. faces: (F, 3) int64 its triangles (a
        subset is allowed, e.g. the face region).
    mesh_landmarks: (L, 3) float the same landmarks on the prediction (e.g.
        ``model.landmark_points(verts[None])[0, idx]``).
    icp_iterations: int >= 0 (0: landmark alignment only). scale: let ICP change the scale
        (False: rigid ICP after the landmark similarity).
    tol: relative decrease of the mean distance that stops ICP.

    Returns a :class:`ScanError` (median, mean, std in the scan's units, and the per-point
    distances). Inputs may be torch or NumPy; everything returned is NumPy float64.
    """
    sc, _ = _np_points(scan, "N 3", "scan")
    lm_s, dims = _np_points(scan_landmarks, "L 3", "scan_landmarks")
    v, _ = _np_points(verts, "V 3", "verts")
    lm_m, _ = _np_points(mesh_landmarks, "L 3", "mesh_landmarks", dims={"L": dims["L"]})
    f, _ = as_tensor(faces, name="faces")
    check_shape(f, "F 3", name="faces")
    check_indices(f, v.shape[0], name="faces")
    icp_iterations = check_int(icp_iterations, name="icp_iterations", minimum=0)
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")
    if sc.shape[0] < 1 or f.shape[0] < 1:
        raise ValueError(f"scan, faces: expected at least one point and one face, got "
                         f"{sc.shape} and {tuple(f.shape)}")
    for name, lm in (("scan_landmarks", lm_s), ("mesh_landmarks", lm_m)):
        sv = np.linalg.svd(lm - lm.mean(0), compute_uv=False)  # (3,) spread along 3 axes
        if lm.shape[0] < 3 or sv[1] <= 1e-9 * max(sv[0], 1e-300):
            raise ValueError(f"{name}: expected >= 3 non-collinear points, got "
                             f"{lm.shape[0]} points spanning rank {int((sv > 1e-9 * sv[0]).sum())}")
    fn = f.detach().cpu().numpy().astype(np.int64)
    # 1. landmark similarity
    s_tot, r_tot, t_tot = _fit_similarity(lm_m, lm_s, with_scale=True)
    landmark_rms = float(np.sqrt(((_apply(s_tot, r_tot, t_tot, lm_m) - lm_s) ** 2)
                                 .sum(1).mean()))
    # 2. ICP on the surface
    aligned = _apply(s_tot, r_tot, t_tot, v)
    closest, dist, _ = closest_points(sc, aligned, fn)
    iterations = 0
    floor = tol * 1e-3 * float(np.linalg.norm(sc.max(0) - sc.min(0)))  # absolute, scan units
    for _ in range(icp_iterations):
        ds, dr, dt = _fit_similarity(closest, sc, with_scale=scale)
        moved = _apply(ds, dr, dt, aligned)
        c_new, d_new, _ = closest_points(sc, moved, fn)
        if d_new.mean() > dist.mean():  # a step that does not help ends ICP
            break
        iterations += 1
        s_tot, r_tot, t_tot = ds * s_tot, dr @ r_tot, ds * dr @ t_tot + dt
        drop = dist.mean() - d_new.mean()
        aligned, closest, dist = moved, c_new, d_new
        if drop < tol * (dist.mean() + drop) or drop < floor:
            break
    return ScanError(median=float(np.median(dist)), mean=float(dist.mean()),
                     std=float(dist.std()), distances=dist, closest=closest,
                     aligned_verts=aligned, scale=float(s_tot), rotation=r_tot,
                     translation=t_tot, landmark_rms=landmark_rms, iterations=iterations)

