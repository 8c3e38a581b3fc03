"""Fan et al.'s measures (Sec. IV-C): mean error, Eq. (7)'s normalised heat maps, CED curves.

* :func:`vertex_errors` -- per-vertex Euclidean distance to the ground truth in model space (mm),
  on the face region; :func:`mean_errors` its mean per face ("Mean Error (mm)", Table III).
  Every reconstruction here shares the template's topology (the paper's footnote 4), so no
  registration or alignment is involved.
* :func:`normalized_errors` -- Eq. (7): ``e_ij = e^_ij / max(e^_i1, ..., e^_iM) * 10``, each test
  image's errors divided by the worst of the M compared methods on that image.
* :func:`heat_map` -- the same normalisation per vertex: the vertex errors of M methods on one
  image divided by the largest of them, times 10 (Figs. 4-5, colour scale 0-10).
* :func:`ced_curve` -- the cumulative error distribution of Fig. 6: the number (or fraction)
  of test faces whose mean error is below each threshold.
"""

from __future__ import annotations

import statistics

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape

__all__ = ["PAPER_FIG3", "PAPER_TABLE3", "ced_curve", "heat_map", "mean_errors",
           "normalized_errors", "summarize", "vertex_errors"]

PAPER_TABLE3 = {"ResNet": 5.9661, "ResNetGC": 4.1363, "MRFGC": 4.2680, "Dual": 4.0121}
"""Table III, FRGC v2.0, mean error (mm). Lm2Vertex has no number in the table (the text says
ResNet's error is "a bit lower than Lm2Vertex")."""

PAPER_FIG3 = {"k": (3, 5, 9, 15, 20, 25, 30), "k_gap": 0.01, "hidden_plateau": 50}
"""Fig. 3: over K = 3..30 (H = 50) the mean errors differ by less than 0.01 mm, slightly larger
for larger K; over the hidden units the error falls and is stable beyond 50."""


def vertex_errors(pred, gt, *, vertices=None) -> torch.Tensor:
    """|pred_v - gt_v| per vertex, model space (mm): (B, V) or (B, R) with ``vertices``.

    pred, gt: (B, V, 3) float meshes with the same topology. vertices: optional (R,) indices
    (e.g. the face region).
    """
    p, _ = as_tensor(pred, name="pred")
    dims = check_shape(p, "B V 3", name="pred")
    g, _ = as_tensor(gt, name="gt")
    check_shape(g, "B V 3", name="gt", dims=dims)
    for t, name in ((p, "pred"), (g, "gt")):
        check_floating(t, name=name)
        check_finite(t, name=name)
    d = (p - g.to(p.dtype)).norm(dim=-1)
    return d if vertices is None else d[:, torch.as_tensor(vertices).long()]


def mean_errors(pred, gt, *, vertices=None) -> torch.Tensor:
    """Mean vertex error per face (B,) in mm (Table III's "Mean Error")."""
    return vertex_errors(pred, gt, vertices=vertices).mean(-1)


def normalized_errors(errors) -> torch.Tensor:
    """Eq. (7): e_ij = e^_ij / max_j' e^_ij' * 10 for N test images and M methods.

    errors: (N, M) positive mean errors e^_ij. Returns (N, M) in (0, 10]; the worst method on
    each image scores 10. A row of all zeros raises (nothing to normalise by).
    """
    e, _ = as_tensor(errors, name="errors")
    check_shape(e, "N M", name="errors")
    check_floating(e, name="errors")
    check_finite(e, name="errors")
    if bool((e < 0).any()):
        raise ValueError("errors: expected non-negative errors, got a negative value")
    top = e.amax(dim=1, keepdim=True)
    if bool((top == 0).any()):
        raise ValueError("errors: expected every row to have a positive error, got a row of "
                         "zeros")
    return e / top * 10


def heat_map(vertex_errors_by_method) -> torch.Tensor:
    """Eq. (7) applied per vertex for one image: (M, V) errors -> (M, V) in [0, 10].

    vertex_errors_by_method: (M, V) per-vertex errors of M methods on the same face. Divided by
    the largest error over all methods and vertices, times 10, so the methods share one colour
    scale and the worst vertex of the worst method is 10.
    """
    e, _ = as_tensor(vertex_errors_by_method, name="vertex_errors_by_method")
    check_shape(e, "M V", name="vertex_errors_by_method")
    check_floating(e, name="vertex_errors_by_method")
    check_finite(e, name="vertex_errors_by_method")
    if bool((e < 0).any()):
        raise ValueError("vertex_errors_by_method: expected non-negative errors")
    top = e.amax()
    if float(top) == 0:
        raise ValueError("vertex_errors_by_method: expected a positive error somewhere, got "
                         "all zeros")
    return e / top * 10


def ced_curve(errors, thresholds, *, fraction: bool = False) -> torch.Tensor:
    """Fig. 6: how many faces have a mean error below each threshold.

    errors: (N,) mean errors (mm); thresholds: (T,) increasing (mm).
    Returns (T,) counts (float), or fractions of N with ``fraction=True``.
    """
    e, _ = as_tensor(errors, name="errors")
    check_shape(e, "N", name="errors")
    t, _ = as_tensor(thresholds, name="thresholds")
    check_shape(t, "T", name="thresholds")
    check_finite(e, name="errors")
    check_finite(t, name="thresholds")
    if t.numel() > 1 and bool((t[1:] < t[:-1]).any()):
        raise ValueError("thresholds: expected increasing values")
    counts = (e[None, :].to(t.dtype) <= t[:, None]).sum(1).to(t.dtype)
    return counts / max(e.numel(), 1) if fraction else counts


def summarize(values) -> dict:
    """{"mean", "sd", "n"} of a list of per-seed numbers (sd = sample std, 0 for one seed)."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("values: expected at least one number")
    return {"mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
            "n": len(v)}
