"""The evaluations of 3DDFA_V2 (Sec. 3) on held-out synthetic data, beside the paper's numbers.

* Table 1 — NME (%) of the 68 landmarks normalised by the ground-truth landmarks' bounding
  box sqrt(w h), per absolute-yaw bin [0, 30], [30, 60], [60, 90] and their mean
  (AFLW2000-3D protocol: the mean of the three bin means).
* Table 2 — dense NME (%): all vertices of V3d(p) (x, y and z in 3DDFA's image frame, z
  centred per face because orthographic depth has no origin), normalised by the bounding
  box of the ground-truth dense 2D points (PRNet's AFLW2000-3D dense protocol, adapted).
* Table 4 — NME / stability (%) on videos: stability is the NME between predicted and true
  landmark offsets of adjacent frames (Sec. 3.1, :func:`facelab.metrics.stability`).
* Table 3 / 4 ablations — :func:`run_ablation` trains each option over several seeds.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, replace

import torch

from facelab import metrics
from facelab._checks import as_tensor, check_shape
from facelab.methods.tddfa.corpus import as_float
from facelab.methods.tddfa.params import ParamStats, denormalize_params
from facelab.methods.tddfa.reconstruct import landmarks_screen, reconstruct_dense
from facelab.methods.tddfa.training import TrainConfig, train_tddfa
from facelab.model.morphable import MorphableModel

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "PAPER_TABLE3",
    "PAPER_TABLE4",
    "YAW_BINS",
    "dense_nme",
    "evaluate",
    "format_table",
    "nme_by_yaw",
    "predict_params",
    "run_ablation",
    "summarize",
]

YAW_BINS = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))

# 3DDFA_V2 Table 1, AFLW2000-3D (68 pts): [0, 30], [30, 60], [60, 90], mean.
PAPER_TABLE1 = {"MobileNet (M+R)": (2.75, 3.49, 4.53, 3.59),
                "MobileNet (M+R+S)": (2.63, 3.42, 4.48, 3.51),
                "PRNet": (2.75, 3.51, 4.61, 3.62), "3DDFA": (3.78, 4.54, 7.93, 5.42)}
# Table 2: AFLW2000-3D dense NME (%), Menpo-3D NME / stability (%).
PAPER_TABLE2 = {"MobileNet (M+R)": (4.20, 1.86, 0.52), "MobileNet (M+R+S)": (4.18, 1.71, 0.48),
                "PRNet": (4.41, 1.90, 0.54)}
# Table 3: mean NME (%) on AFLW2000-3D.
PAPER_TABLE3 = {"VDC": 5.23, "fWPDC": 4.04, "VDC from fWPDC": 3.88, "Vanilla-joint": 3.80,
                "Meta-joint": 3.73, "VDC w/ lrr": 3.92, "fWPDC w/ lrr": 3.89,
                "Meta-joint w/ lrr": 3.59}
# Table 4: Menpo-3D NME / stability (%).
PAPER_TABLE4 = {"fWPDC w/o svs": (1.96, 0.54), "fWPDC w/ svs": (1.84, 0.51),
                "Meta-joint+lrr w/o svs": (1.86, 0.52), "Meta-joint+lrr w/ svs": (1.71, 0.48)}


@torch.no_grad()
def predict_params(net, stats: ParamStats, images, batch: int = 128) -> torch.Tensor:
    """Raw parameters p (N, 62) for images (N, H, W, 3) uint8 or float in [0, 1]."""
    net.eval()
    out = []
    for s in range(0, images.shape[0], batch):
        x = images[s:s + batch]
        x = as_float(x) if x.dtype == torch.uint8 else x
        out.append(denormalize_params(net(x), stats))
    return torch.cat(out)


def nme_by_yaw(pred, gt, yaw) -> dict[str, float]:
    """Table 1's NME (%) per |yaw| bin and the mean of the bin means.

    pred, gt: (N, 68, 2) landmarks (pixels); yaw: (N,) radians. Empty bins give NaN.
    """
    p, _ = as_tensor(pred, name="pred")
    y, _ = as_tensor(yaw, name="yaw")
    check_shape(y, "N", name="yaw", dims={"N": p.shape[0]})
    err = metrics.nme(p, gt) * 100  # (N,)
    deg = torch.rad2deg(y.abs()).to(err)
    out = {}
    for lo, hi in YAW_BINS:
        sel = (deg >= lo) & ((deg < hi) if hi < 90 else (deg <= hi))
        out[f"[{lo:.0f}, {hi:.0f}]"] = float(err[sel].mean()) if bool(sel.any()) else math.nan
    out["mean"] = float(sum(out.values()) / len(YAW_BINS))
    return out


def dense_nme(model: MorphableModel, pred_params, gt_params) -> torch.Tensor:
    """Table 2's dense NME per face (N,), in %: mean vertex error / sqrt(w h) of the GT box."""
    pv = reconstruct_dense(model, pred_params)  # (N, V, 3) y-up image frame
    gv = reconstruct_dense(model, gt_params)
    pv = torch.cat([pv[..., :2], pv[..., 2:] - pv[..., 2:].mean(1, keepdim=True)], -1)
    gv = torch.cat([gv[..., :2], gv[..., 2:] - gv[..., 2:].mean(1, keepdim=True)], -1)
    size = gv[..., :2].amax(1) - gv[..., :2].amin(1)  # (N, 2)
    return (pv - gv).norm(dim=-1).mean(1) / torch.sqrt(size[:, 0] * size[:, 1]) * 100


def evaluate(net, stats: ParamStats, model: MorphableModel, test: dict,
             videos: dict | None = None) -> dict:
    """All accuracy / stability numbers of one network on the held-out data.

    test: a corpus dict (image, params, landmarks, angles); videos: from
    :func:`facelab.methods.tddfa.corpus.build_videos` or None.
    Returns {"table1": {bin: NME %}, "dense": %, "video_nme": %, "stability": %}.
    """
    size = test["image"].shape[1]
    p = predict_params(net, stats, test["image"])
    lm = landmarks_screen(model, p, size)
    out = {"table1": nme_by_yaw(lm, test["landmarks"], test["angles"][:, 1]),
           "dense": float(dense_nme(model, p, test["params"]).mean())}
    if videos is not None:
        n, t = videos["image"].shape[:2]
        pv = predict_params(net, stats, videos["image"].flatten(0, 1))
        lmv = landmarks_screen(model, pv, size).reshape(n, t, -1, 2)
        gt = videos["landmarks"]
        out["video_nme"] = float(metrics.nme(lmv.flatten(0, 1), gt.flatten(0, 1)).mean() * 100)
        out["stability"] = statistics.mean(metrics.stability(lmv[i], gt[i]) * 100
                                           for i in range(n))
    return out


def run_ablation(model: MorphableModel, train: dict, test: dict, videos: dict | None,
                 options: dict[str, TrainConfig], seeds=(0, 1), log=print) -> list[dict]:
    """Train every option for every seed and evaluate it (Tables 3 and 4 at CPU scale).

    options: name -> TrainConfig (its seed is replaced by each of ``seeds``).
    Returns one row per (option, seed): name, seed, config, seconds and :func:`evaluate`'s
    numbers (plus the meta-joint choices).
    """
    rows = []
    for name, cfg in options.items():
        for seed in seeds:
            c = replace(cfg, seed=seed)
            t0 = time.perf_counter()
            res = train_tddfa(model, train, c, callback=_Silent())
            ev = evaluate(res.net, res.stats, model, test, videos)
            row = {"name": name, "seed": seed, "config": asdict(c),
                   "seconds": time.perf_counter() - t0, "choices": res.choices, **ev}
            rows.append(row)
            if log is not None:
                log(f"{name:28s} seed {seed}: NME {ev['table1']['mean']:.2f}%  "
                    f"dense {ev['dense']:.2f}%  stability {ev.get('stability', math.nan):.2f}%  "
                    f"({row['seconds']:.0f} s)")
    return rows


class _Silent:
    def on_step(self, step, losses, state=None):
        pass

    def on_end(self):
        pass


def summarize(rows: list[dict], key) -> dict[str, tuple[float, float, int]]:
    """name -> (mean, std over seeds, seeds) of ``key(row)``."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["name"], []).append(float(key(r)))
    return {k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
            for k, v in groups.items()}


def format_table(title: str, header: list[str], rows: list[list]) -> str:
    """Plain-text table: numbers with 2 decimals, strings as given."""
    def cell(x):
        return f"{x:.2f}" if isinstance(x, float) else str(x)

    body = [[cell(x) for x in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [title, line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(out)
