"""Static (non-interactive) pictures of meshes: the fallback of every widget outside a notebook.

:func:`mesh_image` renders one mesh with facelab's own rasterizer (no browser, no OpenGL):
a front view under an orthographic camera with a head light, Lambertian shading
``c = albedo * (ambient + (1 - ambient) * max(0, n . l))``. :func:`mesh_figure` puts such
images into a matplotlib figure; :func:`png_bytes` encodes an image for ``ipywidgets.Image``.

Framing: model space (mm, y up, face toward +z) maps to the screen (x right, y down, pixels)
by ``x_s = W/2 + s (x - c_x)``, ``y_s = H/2 - s (y - c_y)`` (the y flip), depth ``-z`` (the
viewer sits at +z, so depth grows away from it); ``s`` fits the bounding box with a margin.
"""

from __future__ import annotations

import base64
import io
from typing import NamedTuple

import numpy as np
import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_indices,
    check_int,
    check_shape,
)

__all__ = [
    "Framing", "as_colors", "as_mesh", "display_bundle", "draw_points", "figure_png",
    "frame_mesh", "jpeg_bytes", "mesh_figure", "mesh_image", "png_bytes", "save_figure",
    "screen_vertices",
]

BACKGROUND = (0.13, 0.13, 0.15)
FIGURE_DPI = 110  # legible on a laptop screen and in HTML exports
DEFAULT_GREY = 0.75


class Framing(NamedTuple):
    """Orthographic front-view framing: centre (3,) mm, scale px/mm, image size."""

    center: np.ndarray
    scale: float
    height: int
    width: int


def as_mesh(verts, faces, *, name: str = "verts") -> tuple[torch.Tensor, torch.Tensor]:
    """Validate one mesh: verts (V, 3) or (1, V, 3) float, faces (F, 3) int -> CPU tensors.

    Returns ``(verts (V, 3) float32 detached, faces (F, 3) int64)``.
    """
    v, _ = as_tensor(verts, name=name)
    check_floating(v, name=name)
    if v.ndim == 3:
        check_shape(v, "1 V 3", name=name)
        v = v[0]
    check_shape(v, "V 3", name=name)
    check_finite(v, name=name)
    f, _ = as_tensor(faces, name="faces")
    check_shape(f, "F 3", name="faces")
    check_indices(f, v.shape[0], name="faces")
    return v.detach().cpu().float(), f.cpu().long()


def as_colors(colors, num_vertices: int, *, name: str = "colors") -> torch.Tensor | None:
    """Validate per-vertex colours (V, 3) or (1, V, 3) in [0, 1]; returns (V, 3) float32 or None."""
    if colors is None:
        return None
    c, _ = as_tensor(colors, name=name)
    check_floating(c, name=name)
    if c.ndim == 3:
        check_shape(c, "1 V 3", name=name, dims={"V": num_vertices})
        c = c[0]
    check_shape(c, "V 3", name=name, dims={"V": num_vertices})
    check_finite(c, name=name)
    return c.detach().cpu().float().clamp(0.0, 1.0)


def frame_mesh(verts, height: int = 256, width: int = 256, margin: float = 0.08) -> Framing:
    """Framing that fits ``verts`` (V, 3) (model space) into an H x W image with a margin."""
    v = torch.as_tensor(verts).detach().cpu().double().reshape(-1, 3)  # (V, 3)
    lo, hi = v.amin(0).numpy(), v.amax(0).numpy()
    center = (lo + hi) / 2.0
    extent = max(float(hi[0] - lo[0]) / width, float(hi[1] - lo[1]) / height, 1e-9)
    return Framing(center, (1.0 - 2.0 * margin) / extent, int(height), int(width))


def screen_vertices(verts: torch.Tensor, framing: Framing) -> torch.Tensor:
    """(V, 3) model-space vertices -> (1, V, 3) screen vertices (x, y down, depth = -z)."""
    c = torch.as_tensor(framing.center, dtype=verts.dtype)
    d = verts - c  # (V, 3)
    x = framing.width / 2.0 + framing.scale * d[:, 0]
    y = framing.height / 2.0 - framing.scale * d[:, 1]  # model y up -> screen y down
    return torch.stack([x, y, -d[:, 2]], dim=-1)[None]  # (1, V, 3)


def mesh_image(verts, faces, colors=None, *, height: int = 256, width: int = 256,
               framing: Framing | None = None, ambient: float = 0.35,
               shade: bool = True, background=BACKGROUND) -> np.ndarray:
    """Render one mesh to an image with the NumPy/Numba rasterizer (front view).

    verts: (V, 3) or (1, V, 3) float, model space (mm); torch or NumPy.
    faces: (F, 3) int vertex indices.
    colors: (V, 3) float in [0, 1] per-vertex colours, or None (grey).
    height, width: image size in pixels. framing: fixed framing (e.g. for animations);
        None fits the mesh. ambient: share of unlit light. shade: False shows the colours
        unlit (colour maps). background: (3,) colour.
    Returns (H, W, 3) float32 NumPy image in [0, 1].
    """
    from facelab.normals import vertex_normals
    from facelab.raster.compose import render_mesh

    v, f = as_mesh(verts, faces)
    height = check_int(height, name="height", minimum=1)
    width = check_int(width, name="width", minimum=1)
    c = as_colors(colors, v.shape[0])
    if c is None:
        c = torch.full_like(v, DEFAULT_GREY)
    if framing is None:
        framing = frame_mesh(v, height, width)
    if shade:
        n = vertex_normals(v[None], f)[0]  # (V, 3) unit
        lambert = n[:, 2].clamp(min=0.0)  # head light along +z
        c = c * (ambient + (1.0 - ambient) * lambert)[:, None]
    bg = torch.as_tensor(background, dtype=torch.float32)
    image, _ = render_mesh(screen_vertices(v, framing), f, c[None], framing.height, framing.width,
                      background=bg)
    return image[0].clamp(0.0, 1.0).numpy()


def draw_points(image, xy, color="#ff3030", radius: int = 2) -> np.ndarray:
    """Mark points on a copy of an image: (H, W, 3) float in [0, 1], xy (L, 2) pixel (x, y).

    Each point becomes a filled (2 radius + 1)^2 square in ``color`` (hex string or (3,) float);
    points outside the image are skipped. Returns the new (H, W, 3) float32 image.
    """
    from matplotlib.colors import to_rgb

    out = np.array(image, dtype=np.float32, copy=True)
    H, W = out.shape[:2]
    rgb = np.asarray(to_rgb(color) if isinstance(color, str) else color, np.float32)
    for x, y in np.asarray(xy, dtype=np.float64).reshape(-1, 2):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        j, i = int(np.floor(x)), int(np.floor(y))  # pixel (i, j) covers [j, j+1) x [i, i+1)
        if 0 <= i < H and 0 <= j < W:
            out[max(0, i - radius):i + radius + 1, max(0, j - radius):j + radius + 1] = rgb
    return out


def png_bytes(image, compress_level: int = 1) -> bytes:
    """Encode an (H, W, 3) or (H, W) float image in [0, 1] (or uint8) as PNG bytes."""
    from PIL import Image

    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def jpeg_bytes(image, quality: int = 92) -> bytes:
    """Encode an (H, W, 3) float image in [0, 1] as JPEG bytes (fast; for live widgets)."""
    from PIL import Image

    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def mesh_figure(images, titles=None, *, ncols: int | None = None, panel_inches: float = 3.0):
    """A matplotlib figure showing images (a list of (H, W, 3)) in a grid, axes off."""
    from matplotlib.figure import Figure  # no pyplot: works headless, no global state

    images = list(images)
    n = len(images)
    ncols = n if ncols is None else max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig = Figure(figsize=(panel_inches * ncols, panel_inches * nrows), dpi=FIGURE_DPI)
    for i, img in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(np.asarray(img))
        ax.set_axis_off()
        if titles is not None and i < len(titles) and titles[i]:
            ax.set_title(str(titles[i]), fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> str:
    """Save a matplotlib figure to ``path`` (PNG etc.); returns the path as str."""
    path = str(path)
    fig.savefig(path, dpi=fig.dpi, facecolor="white")
    return path


def figure_png(fig) -> bytes:
    """A matplotlib figure encoded as PNG bytes (white background, the figure's dpi)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
    return buf.getvalue()


def display_bundle(widget, figure, text: str, include=None, exclude=None) -> dict:
    """What a facelab widget shows in Jupyter: the live view plus a static picture of it.

    widget: the ipywidget (its ``application/vnd.jupyter.widget-view+json`` entry is the live
        view). figure: a matplotlib figure of the current state, stored as ``image/png`` beside
        it, so HTML exports, GitHub and notebooks opened without the widget state show a
        picture (nbconvert and JupyterLab drop the widget entry when its state is missing).
    text: the ``text/plain`` entry (instead of ``VBox(children=...)``).
    Returns a (data, metadata) pair for ``_repr_mimebundle_``.
    """
    data, metadata = {}, {}
    if widget is not None:
        bundle = widget._repr_mimebundle_(include=include, exclude=exclude)
        if isinstance(bundle, tuple):
            data, metadata = dict(bundle[0]), dict(bundle[1] or {})
        else:
            data = dict(bundle or {})
    # base64 text, as Jupyter stores images in notebooks
    data["image/png"] = base64.b64encode(figure_png(figure)).decode("ascii")
    data["text/plain"] = text
    return data, metadata
