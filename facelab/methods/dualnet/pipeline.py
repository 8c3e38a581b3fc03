"""The dual networks end to end (Fan et al., Fig. 1): template, MRF prior, residual CNN.

    S_0  = Eq. (4) personalised template from the landmarks        (:func:`fit_template`)
    C    = its colour map, 0 where hidden                          (:func:`sample_vertex_colors`)
    S_P  = [T_P^1(F^1), ..., T_P^N(F^N)]  the MRF networks (Sec. III-B 4)   (:class:`VertexMLPs`)
    S_T  = S_bar + T_L(I; I)  with S_bar = S_P                     (:func:`dual_update`)

The last line is the update after Eq. (3): the residual network T_L regresses the difference
between the target and the regularisers' output S_bar, trained with the loss
``sum_m |T_L(I_m; I_m) - (S_hat_m - S_bar_m)|^2``; "we can regard S_P as S_hat" couples the two
networks. The ablations of Table III swap S_bar: the mean face (ResNet), S_0 (ResNetGC),
S_P without T_L (MRFGC).
"""

from __future__ import annotations

from facelab._checks import as_tensor, check_finite, check_shape
from facelab.methods.dualnet.template import (
    fit_template,
    project_template,
    sample_vertex_colors,
)
from facelab.model.morphable import MorphableModel

__all__ = ["dual_update", "prepare_inputs"]


def prepare_inputs(model: MorphableModel, data: dict, *, lam: float = 0.5,
                   sigma_l: float = 1.0, iterations: int = 10, polish: int = 10) -> dict:
    """Everything the networks consume that needs no learning, for a batch of faces.

    data: a dict with ``image`` (B, H, W, 3) and ``landmarks_2d`` (B, 68, 2), e.g. from
    :meth:`facelab.data.detail.DetailFaces.batch`. lam, sigma_l, iterations, polish: as for
    :func:`fit_template`.
    Returns {"template": S_0 (B, V, 3), "colors": C (B, V, 3), "visible": (B, V) bool,
    "fit": the :class:`TemplateFit`}.
    """
    if not isinstance(data, dict) or "image" not in data or "landmarks_2d" not in data:
        raise ValueError("data: expected a dict with 'image' and 'landmarks_2d'")
    fit = fit_template(model, data["landmarks_2d"], lam=lam, sigma_l=sigma_l,
                       iterations=iterations, polish=polish)
    screen = project_template(model, fit)
    colors, visible = sample_vertex_colors(data["image"], screen, model.faces)
    return {"template": fit.verts, "colors": colors, "visible": visible, "fit": fit}


def dual_update(s_bar, residual):
    """S_T = S_bar + T_L(I; I) (Sec. III-A, after Eq. 3): the regulariser's output + residual.

    s_bar: (B, V, 3) the regularisers' reconstruction (S_P for the dual networks, S_0 for
        ResNetGC, the mean face for ResNet), model space (mm).
    residual: (B, V, 3) the residual network's per-vertex offsets (mm).
    Returns (B, V, 3).
    """
    s, _ = as_tensor(s_bar, name="s_bar")
    dims = check_shape(s, "B V 3", name="s_bar")
    r, _ = as_tensor(residual, name="residual")
    check_shape(r, "B V 3", name="residual", dims=dims)
    check_finite(r, name="residual")
    return s + r.to(s.dtype)
