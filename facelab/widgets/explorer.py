"""``ModelExplorer``: sliders over a morphable model driving a 3D view and a rendered image.

The image is MoFA's image formation (Sec. 5): geometry ``mean + E_id a + E_exp d`` (Eq. 2),
reflectance ``mean + E_alb b`` (Eq. 3), jaw skinning (FLAME Eq. 2), head rotation, the flip
diag(1, -1, -1) into OpenCV camera space (in :func:`facelab.cameras.model_to_camera`), a
pinhole camera, SH shading in camera space (Eq. 4) and rasterization. The 3D view shows the
same posed geometry in model space (rotated by the head pose) with the shaded colours.

An update is staged: moving a geometry slider (identity, expression, jaw, head pose) recomputes
vertices, normals and the rasterizer's fragments; moving an appearance slider (albedo, light)
reuses the cached fragments and only re-shades and re-interpolates. Widgets are built once
and updated in place.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from facelab.model.morphable import MorphableModel
from facelab.widgets import static
from facelab.widgets.viewer import MeshView

__all__ = ["ModelExplorer", "default_light"]

_CHANNELS = ("r", "g", "b")
_SH_NAMES = ("Y00", "Y1-1", "Y10", "Y11", "Y2-2", "Y2-1", "Y20", "Y21", "Y22")
_GROUPS = ("id", "exp", "expr", "jaw", "pose", "albedo", "sh")
_FLIP = torch.tensor([1.0, -1.0, -1.0])  # OpenCV camera -> model axes, diag(1, -1, -1)


def default_light() -> torch.Tensor:
    """(9, 3) camera-space SH light: ambient 0.55 plus a white key light from above the camera."""
    from facelab.lighting import sh_from_direction

    # Camera space is OpenCV (y down, z forward): toward the camera and up is (0, -0.5, -1).
    return sh_from_direction(torch.tensor([0.0, -0.5, -1.0]), intensity=0.6, ambient=0.55)[0]


class ModelExplorer:
    """Interactive sliders over a :class:`MorphableModel`: 3D view and rendered image side by side.

    model: a :class:`MorphableModel` (e.g. ``facelab.load_model("synthetic")``); used on the
        CPU in float32.
    n_id, n_exp, n_albedo: how many leading identity / expression / albedo modes get sliders
        (coefficients ~N(0, 1); sliders span [-3, 3]).
    image_size: rendered image height = width in pixels (256 keeps an update < 100 ms).
    view_size: 3D canvas size in pixels.

    State (for tests and scripts, no browser needed):
        sliders: dict key -> ipywidgets slider; keys ``id_0``..., ``exp_0``..., ``albedo_0``...,
            ``expr_<name>`` per named expression, ``jaw`` (rad), ``pitch``/``yaw``/``roll``
            (degrees) and ``sh_<k>_<c>`` (k = 0..8, c in r, g, b) for the 27 SH coefficients.
        view: the :class:`MeshView`; ``view.geometry.attributes["position"].array`` is the
            current (V, 3) mesh buffer, replaced in place on every update.
        image: (H, W, 3) float32 NumPy, the current render; image_widget: its ``ipywidgets.Image``.
        widget: the whole panel. update_ms: durations of the updates so far (ms).
    Setting a slider's ``.value`` updates everything synchronously.
    """

    def __init__(self, model: MorphableModel, *, n_id: int = 8, n_exp: int = 8,
                 n_albedo: int = 8, image_size: int = 256, view_size: int = 360):
        import ipywidgets as w

        from facelab._checks import check_int
        from facelab.formation import default_camera

        if not isinstance(model, MorphableModel):
            raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
        self.model = model.to(device="cpu", dtype=torch.float32)
        self.n_id = min(check_int(n_id, name="n_id", minimum=0), self.model.n_id)
        self.n_exp = min(check_int(n_exp, name="n_exp", minimum=0), self.model.n_exp)
        self.n_albedo = min(check_int(n_albedo, name="n_albedo", minimum=0), self.model.n_albedo)
        self.image_size = check_int(image_size, name="image_size", minimum=16)
        s = self.image_size
        self._camera, self._translation = default_camera(1, s, s)
        self._faces = self.model.faces
        self._light0 = default_light()
        self._cache: dict = {}
        self._suspended = False
        self.update_ms: list[float] = []

        self.sliders: dict = {}
        self._groups: dict[str, list[str]] = {g: [] for g in _GROUPS}
        style = {"description_width": "70px"}
        layout = w.Layout(width="300px")

        def slider(key, group, lo, hi, value, step, description):
            sl = w.FloatSlider(value=value, min=lo, max=hi, step=step, description=description,
                               style=style, layout=layout, continuous_update=True,
                               readout_format=".2f")
            sl.add_class(f"facelab-slider-{key}")
            sl.observe(self._on_change, names="value")
            sl._facelab_default = value
            self.sliders[key] = sl
            self._groups[group].append(key)
            return sl

        for i in range(self.n_id):
            slider(f"id_{i}", "id", -3.0, 3.0, 0.0, 0.05, f"id {i}")
        for i in range(self.n_exp):
            slider(f"exp_{i}", "exp", -3.0, 3.0, 0.0, 0.05, f"exp {i}")
        for name in self.model.expression_names:
            slider(f"expr_{name}", "expr", 0.0, 1.5, 0.0, 0.05, name)
        for i in range(self.n_albedo):
            slider(f"albedo_{i}", "albedo", -3.0, 3.0, 0.0, 0.05, f"albedo {i}")
        if self.model.jaw_joint is not None:
            slider("jaw", "jaw", 0.0, 0.6, 0.0, 0.01, "jaw (rad)")
        for key in ("pitch", "yaw", "roll"):
            slider(key, "pose", -60.0, 60.0, 0.0, 1.0, f"{key} (°)")
        for k in range(9):
            for c, ch in enumerate(_CHANNELS):
                value = round(float(self._light0[k, c]), 2)  # on the slider grid (step 0.01)
                lo, hi = (0.0, 2.0) if k == 0 else (-1.5, 1.5)
                slider(f"sh_{k}_{ch}", "sh", lo, hi, value, 0.01, f"{_SH_NAMES[k]} {ch}")

        # One full evaluation builds the state the widgets start from.
        self._evaluate(geometry=True)
        ev = self._cache
        self.view = MeshView(ev["verts_view"], self._faces, ev["colors"], width=view_size,
                             height=view_size, lit=False)
        self.image_widget = w.Image(value=static.jpeg_bytes(self.image), format="jpeg",
                                    width=view_size, height=view_size)
        self.image_widget.add_class("facelab-image")
        self.timing = w.HTML(value="")
        self.widget = self._layout(w)

    # ------------------------------------------------------------------ layout
    def _layout(self, w):
        def reset_button(keys, label):
            b = w.Button(description=label, layout=w.Layout(width="140px"))
            b.on_click(lambda _b: self.reset(keys))
            return b

        titles = {"id": "Identity", "exp": "Expression", "expr": "Named expressions",
                  "albedo": "Albedo", "pose": "Jaw & head pose", "sh": "Lighting (SH)"}
        pages, names = [], []
        for group, title in titles.items():
            keys = self._groups[group] + (self._groups["jaw"] if group == "pose" else [])
            if not keys:
                continue
            sls = [self.sliders[k] for k in keys]
            if group == "sh":  # 9 rows (SH functions) x 3 columns (r, g, b)
                body = w.GridBox(sls, layout=w.Layout(grid_template_columns="repeat(3, 310px)"))
            else:
                body = w.GridBox(sls, layout=w.Layout(grid_template_columns="repeat(2, 310px)"))
            pages.append(w.VBox([body, reset_button(keys, f"reset {title.lower()}")]))
            names.append(title)
        tabs = w.Tab(children=pages, titles=names)
        reset_all = w.Button(description="reset all")
        reset_all.on_click(lambda _b: self.reset())
        views = w.HBox([self.view.widget, self.image_widget])
        return w.VBox([views, w.HBox([reset_all, self.timing]), tabs])

    # ------------------------------------------------------------ coefficients
    def _value(self, key: str) -> float:
        return float(self.sliders[key].value)

    def coefficients(self) -> dict[str, torch.Tensor]:
        """Current parameters: id (1, n_id), exp (1, Kexp) (leading-mode sliders plus the
        named expressions), albedo (1, n_albedo), jaw_pose (1, 3) or None, angles (1, 3)
        radians (pitch, yaw, roll) and gamma (1, 9, 3)."""
        m = self.model
        id_c = torch.tensor([[self._value(f"id_{i}") for i in range(self.n_id)]])
        exp_c = torch.zeros(1, m.n_exp)
        exp_c[0, :self.n_exp] = torch.tensor([self._value(f"exp_{i}") for i in range(self.n_exp)])
        for name in m.expression_names:
            exp_c[0] += m.expression(name, self._value(f"expr_{name}"))
        alb_c = torch.tensor([[self._value(f"albedo_{i}") for i in range(self.n_albedo)]])
        jaw = None
        if m.jaw_joint is not None:
            jaw = torch.tensor([[self._value("jaw"), 0.0, 0.0]])
        angles = torch.tensor([[math.radians(self._value(k)) for k in ("pitch", "yaw", "roll")]])
        gamma = torch.tensor([[[self._value(f"sh_{k}_{ch}") for ch in _CHANNELS]
                               for k in range(9)]])
        return {"id": id_c.reshape(1, -1), "exp": exp_c, "albedo": alb_c.reshape(1, -1),
                "jaw_pose": jaw, "angles": angles, "gamma": gamma}

    def face_params(self):
        """The sliders as a :class:`facelab.FaceParams` (B = 1): what the panel renders."""
        from facelab.face_params import FaceParams
        from facelab.rotations import head_rotation

        c = self.coefficients()
        return FaceParams(id=c["id"], exp=c["exp"], albedo=c["albedo"], jaw=c["jaw_pose"],
                          rotation=head_rotation(c["angles"]), translation=self._translation,
                          gamma=c["gamma"])

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def _evaluate(self, geometry: bool) -> None:
        """Form and render the sliders' face (an adapter on :func:`facelab.form`).

        ``geometry`` False (albedo/light sliders): the previous formation's geometry is reused
        (``form(..., geometry=)``) and the 3D view's positions and normals stay.
        """
        from facelab.formation import form, render

        params = self.face_params()
        ev = self._cache
        # albedo and light sliders keep the geometry: re-form only reflectance and shading
        reuse = None if geometry else ev.get("formed")
        formed = form(self.model, params, self._camera, geometry=reuse)
        ev["formed"] = formed
        colors = formed.colors.clamp(0.0, 1.0)  # (1, V, 3), MoFA Eq. 4, displayable
        s = self.image_size
        image, _ = render(formed, s, s, colors=colors,
                          background=torch.tensor(static.BACKGROUND))
        self.image = image[0].numpy()  # (H, W, 3) float32
        if geometry or "verts_view" not in ev:
            ev["verts_view"] = (formed.verts @ params.rotation.transpose(1, 2))[0]  # (V, 3)
            ev["normals_view"] = formed.normals[0] * _FLIP  # back to model axes
        ev["colors"] = colors[0]

    def update(self, geometry: bool = True) -> float:
        """Recompute and push to the widgets; returns the update's duration in ms."""
        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # ~3k-vertex tensors: intra-op threads only add contention
        try:
            self._evaluate(geometry)
        finally:
            torch.set_num_threads(threads)
        ev = self._cache
        color = np.ascontiguousarray(ev["colors"].numpy(), dtype=np.float32)
        if geometry:
            self.view.verts = ev["verts_view"]
            self.view.colors = ev["colors"]
            self.view.update_arrays(
                np.ascontiguousarray(ev["verts_view"].numpy(), dtype=np.float32),
                np.ascontiguousarray(ev["normals_view"].numpy(), dtype=np.float32), color)
        else:
            self.view.colors = ev["colors"]
            self.view.update_arrays(color=color)
        self.image_widget.value = static.jpeg_bytes(self.image)
        ms = (time.perf_counter() - t0) * 1e3
        self.update_ms.append(ms)
        self.timing.value = f"<code>update {ms:.0f} ms</code>"
        return ms

    def _on_change(self, change) -> None:
        if self._suspended:
            return
        key = next(k for k, s in self.sliders.items() if s is change["owner"])
        self.update(geometry=not key.startswith(("albedo_", "sh_")))

    def reset(self, keys=None) -> None:
        """Return the given sliders (default: all) to their defaults, with one update."""
        keys = list(self.sliders) if keys is None else list(keys)
        self._suspended = True
        try:
            for k in keys:
                self.sliders[k].value = self.sliders[k]._facelab_default
        finally:
            self._suspended = False
        self.update(geometry=True)

    # ---------------------------------------------------------------- fallback
    def static(self):
        """A matplotlib figure: the shaded mesh (front view of the 3D panel) and the render."""
        ev = self._cache
        mesh = static.mesh_image(ev["verts_view"], self._faces, ev["colors"],
                                 height=self.image_size, width=self.image_size, shade=False)
        return static.mesh_figure([mesh, self.image], ["3D view (front)", "rendered image"])

    def save(self, path) -> str:
        """Write :meth:`static` to ``path`` (PNG by extension); returns the path."""
        return static.save_figure(self.static(), path)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
