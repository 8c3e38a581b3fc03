"""``MotionPlayer``: play, pause and scrub mesh sequences (e.g. samples from a motion prior).

Sequences are (T, V, 3) vertex tracks in model space (mm). Several sequences play side by
side in lock step, one 3D view each; a shorter sequence holds its last frame. Positions and
normals of every frame are prepared once as float32 arrays, so a frame change only assigns
arrays to the views' existing ``BufferAttribute`` objects. ``ipywidgets.Play`` drives the frame
slider in the browser (linked on the front end, so playback does not depend on the kernel's
timing); a frame-rate slider sets the Play interval. Playback loops by default, and the
views' cameras are linked on the front end (position, orientation and orbit target), so
orbiting one view turns them all and the sequences stay comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_int, check_shape
from facelab.widgets import static
from facelab.widgets.viewer import MeshView

__all__ = ["MotionPlayer"]


def _as_sequences(sequences, faces) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Validate one (T, V, 3) sequence or a list of them (same V) -> list of CPU float32."""
    items = list(sequences) if isinstance(sequences, (list, tuple)) else [sequences]
    if not items:
        raise ValueError("sequences: expected a (T, V, 3) array or a non-empty list of them")
    out = []
    V = None
    for i, seq in enumerate(items):
        name = "sequences" if len(items) == 1 else f"sequences[{i}]"
        s, _ = as_tensor(seq, name=name)
        check_floating(s, name=name)
        V = check_shape(s, "T V 3", name=name, dims={} if V is None else {"V": V})["V"]
        if s.shape[0] < 1:
            raise ValueError(f"{name}: expected at least one frame, got {tuple(s.shape)}")
        check_finite(s, name=name)
        out.append(s.detach().cpu().float())
    _, f = static.as_mesh(out[0][0], faces)
    return out, f


class MotionPlayer:
    """Play / pause / scrub one or several mesh sequences side by side.

    sequences: (T, V, 3) float (torch or NumPy), or a list of such arrays with the same V
        (lengths may differ), model space (mm).
    faces: (F, 3) int.
    fps: initial frame rate (1 to 60). titles: one label per sequence.
    colors: (V, 3) per-vertex colours in [0, 1] shared by all views, or None (grey).
    view_size: 3D canvas size in pixels. loop: play in a loop (default) or stop at the end.
    link_views: orbiting one view moves every view's camera the same way.

    State: ``frame`` (current index), ``slider`` (IntSlider), ``play`` (ipywidgets.Play),
    ``fps_slider``, ``views`` (one :class:`MeshView` per sequence), ``widget``. Setting
    ``slider.value`` (or :meth:`show_frame`) updates the views' buffers in place.
    """

    def __init__(self, sequences, faces, *, fps: int = 25, titles: Sequence[str] | None = None,
                 colors=None, view_size: int = 280, loop: bool = True,
                 link_views: bool = True):
        import ipywidgets as w

        from facelab.normals import vertex_normals

        self.sequences, self.faces = _as_sequences(sequences, faces)
        fps = check_int(fps, name="fps", minimum=1)
        if fps > 60:
            raise ValueError(f"fps: expected an int in [1, 60], got {fps}")
        n = len(self.sequences)
        if titles is not None and len(titles) != n:
            raise ValueError(f"titles: expected {n} titles, got {len(titles)}")
        self.titles = list(titles) if titles is not None else [f"sequence {i}" for i in range(n)]
        self.num_frames = max(s.shape[0] for s in self.sequences)
        self.colors = static.as_colors(colors, self.sequences[0].shape[1])
        self._positions = [np.ascontiguousarray(s.numpy()) for s in self.sequences]  # (T, V, 3)
        self._normals = [np.ascontiguousarray(vertex_normals(s, self.faces).numpy())
                         for s in self.sequences]  # (T, V, 3)
        self.views = [MeshView(s[0], self.faces, self.colors, width=view_size, height=view_size)
                      for s in self.sequences]
        self.frame = 0
        last = self.num_frames - 1
        self.play = w.Play(value=0, min=0, max=last, step=1, interval=round(1000 / fps),
                           description="play", repeat=bool(loop), show_repeat=True)
        self.play.add_class("facelab-play")
        self.links = []
        if link_views:  # front-end links: no kernel round trip while dragging
            first = self.views[0]
            for view in self.views[1:]:
                for attr in ("position", "quaternion", "up", "zoom"):
                    self.links.append(w.jslink((first.camera, attr), (view.camera, attr)))
                self.links.append(w.jslink((first.controls, "target"), (view.controls, "target")))
        self.slider = w.IntSlider(value=0, min=0, max=last, description="frame",
                                  continuous_update=True)
        self.slider.add_class("facelab-slider-frame")
        self.fps_slider = w.IntSlider(value=fps, min=1, max=60, description="fps")
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda c: self.show_frame(c["new"]), names="value")
        self.fps_slider.observe(self._on_fps, names="value")
        columns = [w.VBox([w.HTML(f"<b>{t}</b>"), v.widget])
                   for t, v in zip(self.titles, self.views, strict=True)]
        self.widget = w.VBox([w.HBox([self.play, self.slider, self.fps_slider]),
                              w.HBox(columns, layout=w.Layout(flex_flow="row wrap"))])
        self.widget.add_class("facelab-motion")

    @property
    def fps(self) -> int:
        """The current frame rate (frames per second)."""
        return int(self.fps_slider.value)

    def _on_fps(self, change) -> None:
        self.play.interval = round(1000 / max(1, int(change["new"])))

    def show_frame(self, index: int) -> None:
        """Show frame ``index`` (0 <= index < T) in every view (shorter sequences hold)."""
        index = check_int(index, name="index", minimum=0)
        if index >= self.num_frames:
            raise ValueError(f"index: expected a frame in [0, {self.num_frames}), got {index}")
        self.frame = index
        for view, pos, nrm in zip(self.views, self._positions, self._normals, strict=True):
            t = min(index, pos.shape[0] - 1)
            view.verts = torch.from_numpy(pos[t])
            view.update_arrays(pos[t], nrm[t])
        if self.slider.value != index:
            self.slider.value = index

    # ---------------------------------------------------------------- fallback
    def frame_images(self, frames: Sequence[int] | None = None, size: int = 192) -> list:
        """Static renders: for each sequence, for each frame index, an (H, W, 3) image."""
        if frames is None:
            frames = np.linspace(0, self.num_frames - 1, min(6, self.num_frames)).round()
        frames = [int(t) for t in frames]
        # One framing for every frame of every sequence, so the pictures do not jump.
        framing = static.frame_mesh(torch.cat([s.reshape(-1, 3) for s in self.sequences]),
                                    size, size)
        return [[static.mesh_image(s[min(t, s.shape[0] - 1)], self.faces, self.colors,
                                   framing=framing) for t in frames] for s in self.sequences]

    def static(self, frames: Sequence[int] | None = None):
        """A matplotlib figure: one row per sequence, one column per frame (default 6 frames)."""
        if frames is None:
            frames = np.linspace(0, self.num_frames - 1, min(6, self.num_frames)).round()
        frames = [int(t) for t in frames]
        rows = self.frame_images(frames)
        titles = [f"{title} t={t}" for title in self.titles for t in frames]
        return static.mesh_figure([img for row in rows for img in row], titles,
                                  ncols=len(frames), panel_inches=2.0)

    def save(self, path, frames: Sequence[int] | None = None) -> str:
        """Write a PNG strip (``.png``) or an animated GIF (``.gif``, every frame at ``fps``)."""
        path = str(path)
        if not path.lower().endswith(".gif"):
            return static.save_figure(self.static(frames), path)
        from PIL import Image

        every = list(range(self.num_frames)) if frames is None else [int(t) for t in frames]
        rows = self.frame_images(every)
        pics = []
        for k in range(len(every)):
            strip = np.concatenate([row[k] for row in rows], axis=1)  # (H, n*W, 3)
            pics.append(Image.fromarray((np.clip(strip, 0, 1) * 255 + 0.5).astype(np.uint8)))
        pics[0].save(path, save_all=True, append_images=pics[1:],
                     duration=round(1000 / self.fps), loop=0)
        return path

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        return static.display_bundle(self.widget, self.static(),
                                     f"MotionPlayer({', '.join(self.titles)}, "
                                     f"{self.num_frames} frames)", include, exclude)
