"""Curves tabulated on rows of constant v, read between rows (versions 1 and 2).

Both built-in surfaces tabulate, for rows v_0 < v_1 < ..., the arc length s_r(θ) of the base
curve of row r against its angle θ (version 1: :mod:`facelab.model.synthetic.surface`;
version 2: :mod:`facelab.model.head.shape`). A point between rows j and j + 1 at fraction a
reads both rows and blends them linearly:

    f(x) = (1 - a) interp(x; xp_j, fp_j) + a interp(x; xp_{j+1}, fp_{j+1})

(θ of u: xp the row's arc lengths, fp the shared angles; u of θ: the other way round).
"""

from __future__ import annotations

import numpy as np


def _row(table: np.ndarray, r) -> np.ndarray:
    return table[r] if table.ndim == 2 else table


def interp_rows(x: np.ndarray, j: np.ndarray, a: np.ndarray, xp: np.ndarray,
                fp: np.ndarray) -> np.ndarray:
    """The row-blended interpolation of the module docstring, float64 of ``x``'s shape.

    x: (...) query values (>= 0: the callers pass |u| or |θ|); j: (...) int64 lower row,
    a: (...) fraction towards row j + 1, both of x's shape; xp, fp: (R, T) tables (row r:
    ``table[r]``, increasing along T for xp) or (T,) shared by every row.
    """
    xp, fp = np.asarray(xp), np.asarray(fp)
    out = np.empty(np.shape(x))
    for row in np.unique(j):
        sel = j == row
        t0 = np.interp(x[sel], _row(xp, row), _row(fp, row))
        t1 = np.interp(x[sel], _row(xp, row + 1), _row(fp, row + 1))
        out[sel] = (1.0 - a[sel]) * t0 + a[sel] * t1
    return out
