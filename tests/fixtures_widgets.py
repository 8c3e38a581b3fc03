"""Shared helpers of the widget tests (tests/test_widgets.py, tests/test_widgets_live.py)."""

from __future__ import annotations

import ipywidgets.widgets.widget as ipw_widget
import torch


def dome(nx=9, ny=8, scale=75.0, dtype=torch.float32):
    """A face-like dome (V=72, F=112), y up, bulging toward +z; faces CCW seen from +z."""
    xs, ys = torch.linspace(-1, 1, nx, dtype=torch.float64), torch.linspace(-1.2, 1.2, ny,
                                                                             dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    gz = 0.6 * torch.exp(-(gx**2 + 0.5 * gy**2))
    verts = (torch.stack([gx, gy, gz], -1).reshape(-1, 3) * scale).to(dtype)
    faces = []
    for i in range(ny - 1):
        for j in range(nx - 1):
            a, b, c, d = i * nx + j, i * nx + j + 1, (i + 1) * nx + j, (i + 1) * nx + j + 1
            faces += [(a, b, d), (a, d, c)]
    return verts, torch.tensor(faces, dtype=torch.int64)


def live_widgets() -> int:
    return len(ipw_widget._instances)
