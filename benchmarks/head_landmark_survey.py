"""Where MediaPipe puts the iBUG-68 points on the built-in head (synthetic version 2).

The survey behind ``facelab.model.head.rig.SURVEYED_UV`` and ``rig.LANDMARK_EMBEDDING``: the
detector's landmark convention (:func:`facelab.landmarks.detect`) expressed on the head, fitted
to its detections over many views.

Protocol: the mean head and ``--identities - 1`` random heads (identity ~ N(0, 1), expression
~ N(0, 0.3^2), albedo ~ N(0, 0.8^2) per mode, pitch in [-8, 8] degrees; the mean head at pitch
0), each at the yaws ``YAWS_DEG`` (0 to +-45 degrees), 320 px, anti-aliased, under a random key
light on a random grey background (the protocol of ``tests/test_head_realism.py``, with another
seed: ``SEED``). NME terms are over the detector's own inter-ocular distance ``iod`` (outer eye
corners), so the fit does not depend on the landmarks being surveyed.

(a) ``SURVEYED_UV``: for every iBUG point and its mirror partner, the skin vertex ``j`` (the
    upper or lower edge of the mouth slit for the inner lips 60-67; a midline vertex for
    midline points) minimising the mean over all renders of
    ``|proj(j) - det_i| / iod + |proj(mirror(j)) - det_mirror(i)| / iod``
    (:func:`best_vertices`); the model's ``landmarks`` (the anchors).
(b) ``LANDMARK_EMBEDDING``: the point as an affine combination of ``EMBED_K`` vertices, the
    anchor and ``EMBED_K - 1`` skin/lip vertices within ``EMBED_RADIUS`` mm, chosen greedily
    and weighted by ridge-regularised least squares on the detections of all renders (the
    partner by the mirror vertices, same weights; :func:`fit_embedding`). The weights make
    a point off the surface: MediaPipe's mesh places its face oval 8-26 mm behind the head's
    surface (its depth output on the frontal mean head, eyes aligned), its brows 6-10 mm and
    nose tip 8 mm in front, so no surface vertex follows it at every yaw (at yaw the 2-D
    offsets are those depths times sin(yaw)). Printed as the point on the mean head (design
    frame) and the ``(kind, u, v)`` of the other support vertices, from which
    ``rig.landmark_embedding`` rebuilds the weights at any resolution.

Hidden vertices are projected like visible ones: MediaPipe's mesh, like a morphable model's
landmarks, predicts every point. Floors measured on the realism test's 24 renders (mean NME by
|yaw| 0-15 / 15-30 / 30-45; see the test's docstring for the full table): (a) 4.4 / 5.4 /
7.0 %, (b) 3.8 / 4.6 / 5.1 %; silhouette-following contour points 7.3 / 10.5 / 18.5 %.

    PYTHONPATH=. python benchmarks/head_landmark_survey.py [--vertices 12000] [--identities 40]

(about 2 minutes of CPU for the 440 renders; deterministic: the same output with 1 or 2
Numba threads. It reprints ``rig.SURVEYED_UV`` exactly and ``rig.LANDMARK_EMBEDDING`` but for
the last printed digit of one coordinate, point 58's z (108.913 here, 108.912 committed: a
value at the rounding boundary of the third decimal). Changing the committed constant would
change the model's digest, so it stays.)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import facelab as fl
from facelab.landmarks import detect
from facelab.model.head import head_arrays
from facelab.model.head import mesh as M
from facelab.model.synthetic.ibug import MIRROR_68
from facelab.realism import random_light, render_picture
from facelab.rotations import head_rotation

YAWS_DEG = (0.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0, 38.0, -38.0, 45.0, -45.0)
SEED, SIZE = 12345, 320
YAW_BINS = ((0, 15), (15, 30), (30, 46))
EMBED_K, EMBED_RADIUS, EMBED_RIDGE = 4, 50.0, 1e-2
UPPER_SLIT, LOWER_SLIT = (60, 61, 62, 63, 64), (65, 66, 67)


def render_views(model, n_identities: int, seed: int = SEED):
    """Detector points and vertex projections: (det (N, 68, 2), screen (N, V, 2), truth (N, 68,
    2), yaw (N,) degrees) over the renders MediaPipe accepted."""
    rng = np.random.default_rng(seed)
    camera, t = fl.default_camera(1, SIZE, SIZE, fov_deg=16.0, distance=1000.0)
    dets, screens, truths, yaws = [], [], [], []
    f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    for k in range(n_identities):
        s = 0.0 if k == 0 else 1.0  # the mean head first
        ident = f32(rng.standard_normal((1, model.n_id)) * s)
        expr = f32(rng.standard_normal((1, model.n_exp)) * 0.3 * s)
        albedo = f32(rng.standard_normal((1, model.n_albedo)) * 0.8 * s)
        for yaw in YAWS_DEG:
            pitch = rng.uniform(-8.0, 8.0) * s
            light = random_light(rng)
            angles = f32([[np.deg2rad(pitch), np.deg2rad(yaw), 0.0]])
            params = fl.FaceParams(id=ident, exp=expr, albedo=albedo,
                                   rotation=head_rotation(angles), translation=t, gamma=light)
            picture, f = render_picture(model, params, camera, rng.uniform(0.2, 0.8, 3), SIZE)
            det = detect(picture)
            if det is None:
                print(f"  no face found: identity {k}, yaw {yaw}")
                continue
            dets.append(det.landmarks)
            screens.append(f.screen_verts[0, :, :2].numpy())
            truths.append(f.landmarks_2d[0].numpy())
            yaws.append(yaw)
    return np.stack(dets), np.stack(screens), np.stack(truths), np.array(yaws)


def _candidates(kind, mirror, i: int) -> np.ndarray:
    """Anchor candidates of iBUG point i: skin (mouth slit edges for inner lips), midline
    vertices for midline points."""
    want = (M.KIND_SLIT_UP if i in UPPER_SLIT else M.KIND_SLIT_LOW if i in LOWER_SLIT
            else M.KIND_SKIN)
    cand = np.nonzero(kind == want)[0]
    if int(MIRROR_68[i]) == i:
        cand = cand[mirror[cand] == cand]
    return cand


def best_vertices(det, screen, iod, kind, mirror) -> np.ndarray:
    """Floor (a): per iBUG point the vertex (and its mirror for the partner) minimising the
    mean NME term over all renders: (68,) int64."""
    out = np.zeros(68, dtype=np.int64)
    for i in range(68):
        m = int(MIRROR_68[i])
        if m < i:
            continue
        cand = _candidates(kind, mirror, i)
        cost = (np.linalg.norm(screen[:, cand] - det[:, i, None], axis=-1) / iod).mean(0)
        if m != i:
            cost = cost + (np.linalg.norm(screen[:, mirror[cand]] - det[:, m, None], axis=-1)
                           / iod).mean(0)
        j = int(cand[np.argmin(cost)])
        out[i], out[m] = j, mirror[j]
    return out


def fit_embedding(det, screen, iod, mean, kind, mirror, anchors, k: int = EMBED_K,
                  radius: float = EMBED_RADIUS, ridge: float = EMBED_RIDGE):
    """Floor (b): per iBUG point an affine combination of ``k`` vertices (the anchor, floor
    (a)'s vertex, and ``k - 1`` skin/slit vertices within ``radius`` mm of it on the mean head,
    chosen greedily) fitted by ridge-regularised least squares to the detections of all renders
    (the partner point by the mirror vertices with the same weights). Projection is treated as
    affine over the support (a few cm at 1 m: the error is second order). Deterministic.

    det: (N, 68, 2); screen: (N, V, 2); iod: (N, 1); mean: (V, 3) mean head; anchors: (68,).
    Returns ((68, k) int64 vertices, (68, k) float64 weights, rows summing to 1).
    """
    pool = np.nonzero(kind <= M.KIND_SLIT_LOW)[0]
    idx = np.zeros((68, k), dtype=np.int64)
    wts = np.zeros((68, k))
    for i in range(68):
        m = int(MIRROR_68[i])
        if m < i:
            continue
        a = int(anchors[i])
        cand = pool if m != i else pool[mirror[pool] == pool]
        near = np.linalg.norm(mean[cand] - mean[a], axis=1) < radius
        cand = cand[near & (cand != a)]
        # residual y and design columns x (rows: renders x (u, v), then the mirror partner)
        pairs = [(i, a, cand)] + ([(m, mirror[a], mirror[cand])] if m != i else [])
        y = np.concatenate([((det[:, p] - screen[:, q]) / iod).reshape(-1) for p, q, _ in pairs])
        x = np.concatenate([((screen[:, c] - screen[:, q, None]) / iod[..., None])
                            .transpose(0, 2, 1).reshape(-1, len(c)) for _, q, c in pairs])
        gram, rhs, chosen = x.T @ x, x.T @ y, []
        for _ in range(k - 1):
            best = None
            for c in range(len(cand)):
                if c in chosen:
                    continue
                sel = [*chosen, c]
                w = np.linalg.solve(gram[np.ix_(sel, sel)] + ridge * np.eye(len(sel)), rhs[sel])
                cost = float(w @ gram[np.ix_(sel, sel)] @ w - 2 * w @ rhs[sel] + ridge * w @ w)
                if best is None or cost < best[0] - 1e-15:
                    best = (cost, c, w)
            chosen.append(best[1])
            w = best[2]
        verts = np.array([a] + [int(cand[c]) for c in chosen])
        weights = np.concatenate([[1.0 - w.sum()], w])
        idx[i], wts[i] = verts, weights
        idx[m], wts[m] = mirror[verts], weights
    return idx, wts


def nme_table(det, screen, yaw, idx, weights) -> dict:
    """NME per render (% of the model's own outer-eye-corner distance, as the realism test) of
    the landmark points ``sum_k w_k screen[idx]`` (affine over the support), summarised."""
    pred = np.einsum("nlkc,lk->nlc", screen[:, idx], weights)
    iod = np.linalg.norm(pred[:, 36] - pred[:, 45], axis=1)
    nme = np.linalg.norm(pred - det, axis=-1).mean(1) / iod * 100
    out = {"mean": nme.mean(), "median": np.median(nme), "max": nme.max(), "nme": nme}
    for a, b in YAW_BINS:
        sel = (np.abs(yaw) >= a) & (np.abs(yaw) < b)
        out[(a, b)] = (nme[sel].mean(), nme[sel].max())
    return out


def format_row(name: str, t: dict) -> str:
    bins = " | ".join(f"{t[b][0]:4.1f} ({t[b][1]:4.1f})" for b in YAW_BINS)
    return (f"  {name:34s} {t['mean']:5.2f} {t['median']:5.2f} {t['max']:5.2f} | {bins}")


def survey(n_vertices: int = 12000, n_identities: int = 40, k: int = EMBED_K):
    """Fit floors (a) and (b) on the survey renders; print the floors table and the tables.

    Returns (SURVEYED_UV {iBUG: (u, v)}, LANDMARK_EMBEDDING {iBUG: ((x, y, z), support)}),
    subject's right side and midline, in the form ``facelab.model.head.rig`` holds them.
    """
    model = fl.load_model("synthetic", n_vertices, version=2)
    det, screen, _, yaw = render_views(model, n_identities)
    print(f"  {len(det)} renders")
    return fit_tables(det, screen, yaw, n_vertices, k)


def fit_tables(det, screen, yaw, n_vertices: int = 12000, k: int = EMBED_K):
    """:func:`survey`'s fit on given renders: det (N, 68, 2), screen (N, V, 2), yaw (N,)."""
    arrays = head_arrays(n_vertices)
    shell = M.build_shell(n_vertices)
    kind, mirror = arrays["kind"], arrays["mirror"]
    iod = np.linalg.norm(det[:, 36] - det[:, 45], axis=1)[:, None]  # (N, 1), the detector's
    anchors = best_vertices(det, screen, iod, kind, mirror)
    idx, wts = fit_embedding(det, screen, iod, shell.verts, kind, mirror, anchors, k)
    print("  floors on these renders: NME % mean, median, max | by |yaw| 0-15 / 15-30 / 30-45: "
          "mean (max)")
    print(format_row("(a) best vertex", nme_table(det, screen, yaw, anchors[:, None],
                                                   np.ones((68, 1)))))
    print(format_row(f"(b) embedding, {k} vertices", nme_table(det, screen, yaw, idx, wts)))
    uv, embed = {}, {}
    for i in range(68):
        m = int(MIRROR_68[i])
        if m < i:
            continue
        j, verts = i, idx[i]
        if shell.u[verts[0]] > 0:  # report the subject's right side (u < 0)
            j, verts = m, mirror[verts]
        uv[j] = (float(shell.u[verts[0]]), float(shell.v[verts[0]]))
        point = wts[i] @ shell.verts[verts]
        embed[j] = (tuple(float(c) for c in point),
                    tuple((int(kind[q]), float(shell.u[q]), float(shell.v[q])) for q in verts[1:]))
    return dict(sorted(uv.items())), dict(sorted(embed.items()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=12000)
    parser.add_argument("--identities", type=int, default=40)
    parser.add_argument("--k", type=int, default=EMBED_K, help="vertices per landmark")
    args = parser.parse_args(argv)
    uv, embed = survey(args.vertices, args.identities, args.k)
    print(format_tables(uv, embed))


def format_tables(uv: dict, embed: dict) -> str:
    """The tables as ``facelab/model/head/rig.py`` holds them (Python source)."""
    lines = ["SURVEYED_UV = {  # iBUG index -> (u, v), subject's right and midline; "
             "head_landmark_survey.py"]
    items = [f"{i}: ({u:.2f}, {v:.2f})" for i, (u, v) in uv.items()]
    for j in range(0, len(items), 4):
        lines.append("    " + ", ".join(items[j:j + 4]) + ",")
    lines += ["}", "LANDMARK_EMBEDDING = {  # iBUG -> ((x, y, z) mm design frame, ((kind, u, v), "
              "...))"]
    for i, (p, sup) in embed.items():
        sup_s = ", ".join(f"({kd}, {u:.2f}, {v:.2f})" for kd, u, v in sup)
        lines.append(f"    {i}: (({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}),")
        lines.append(f"        ({sup_s})),")
    lines.append("}")
    return "\n".join(lines)

if __name__ == "__main__":
    main()
