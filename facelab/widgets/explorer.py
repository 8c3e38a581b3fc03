"""``ModelExplorer``: sliders over a morphable model driving a 3D view and a rendered image.

The image is MoFA's image formation (Sec. 5): geometry ``mean + E_id a + E_exp d`` (Eq. 2),
reflectance ``mean + E_alb b`` (Eq. 3), jaw skinning (FLAME Eq. 2), head rotation, the flip
diag(1, -1, -1) into OpenCV camera space (in :func:`facelab.cameras.model_to_camera`), a
pinhole camera, SH shading in camera space (Eq. 4) and rasterization. The 3D view shows the
same posed geometry in model space (rotated by the head pose) with the shaded colours.

An update is staged: moving a geometry slider (identity, expression, jaw, head pose) recomputes
vertices, normals and the rasterizer's fragments; moving an appearance slider (albedo, light)
reuses the posed geometry and only re-shades and re-renders. Widgets are built once and
updated in place.

A model with texture-space albedo (``model.has_texture``, the built-in head) is rendered
textured, as :func:`facelab.render` paints pictures: per pixel, the reflectance map looked up
at the interpolated UV times the interpolated SH irradiance, so pupils, lids and lips are as
sharp as the 256^2 maps whatever the mesh resolution. The reflectance map ``mean + E_alb b``
(MoFA Eq. 3 per texel) is formed from the slider modes only (the others are 0) and only when
an albedo slider moves. The 3D view shows per-vertex colours (the maps sampled at the
vertices, shaded).

Light is set as a teacher thinks of it — a direction (azimuth, elevation), an intensity, an
ambient level and a colour — and turned into the 9 x 3 SH coefficients by
:func:`facelab.lighting.sh_from_direction`; the raw coefficients stay editable in an
"advanced" section.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from facelab.model.morphable import MorphableModel
from facelab.widgets import static
from facelab.widgets.viewer import MeshView

__all__ = ["ModelExplorer", "default_light", "light_direction", "light_sh"]

_CHANNELS = ("r", "g", "b")
_SH_NAMES = ("Y00", "Y1-1", "Y10", "Y11", "Y2-2", "Y2-1", "Y20", "Y21", "Y22")
_GROUPS = ("id", "exp", "expr", "jaw", "pose", "albedo", "sh")
_FLIP = torch.tensor([1.0, -1.0, -1.0])  # OpenCV camera -> model axes, diag(1, -1, -1)


# The default light: a white key light from above the camera plus ambient light.
DEFAULT_LIGHT = {"azimuth": 0.0, "elevation": round(math.degrees(math.atan2(0.5, 1.0)), 1),
                 "intensity": 0.6, "ambient": 0.55, "color": "#ffffff"}


def light_direction(azimuth: float, elevation: float) -> torch.Tensor:
    """(3,) unit direction toward the light in OpenCV camera space, from angles in degrees.

    azimuth: 0 is at the camera, positive toward the image's right (+x); elevation: positive
    above the image (camera y points down, so up is -y). (0, 0) is (0, 0, -1), a light at
    the camera.
    """
    a, e = math.radians(float(azimuth)), math.radians(float(elevation))
    return torch.tensor([math.sin(a) * math.cos(e), -math.sin(e), -math.cos(a) * math.cos(e)])


def light_sh(azimuth: float, elevation: float, intensity: float, ambient: float,
             color=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """(9, 3) camera-space SH coefficients of a coloured directional light plus ambient light.

    The white light of :func:`facelab.lighting.sh_from_direction` (``gamma_k = intensity *
    Y_k(d)`` plus the ambient term), scaled per channel by ``color`` ((3,) in [0, 1]).
    """
    from facelab.lighting import sh_from_direction

    white = sh_from_direction(light_direction(azimuth, elevation), intensity=float(intensity),
                              ambient=float(ambient))[0]  # (9, 3), equal channels
    return white * torch.as_tensor(color, dtype=white.dtype)[None, :]


def default_light() -> torch.Tensor:
    """(9, 3) camera-space SH light: ambient 0.55 plus a white key light from above the camera."""
    d = DEFAULT_LIGHT
    return light_sh(d["azimuth"], d["elevation"], d["intensity"], d["ambient"])


def _hex_rgb(color: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return tuple(float(c) for c in to_rgb(color))


class ModelExplorer:
    """Interactive sliders over a :class:`MorphableModel`: 3D view and rendered image side by side.

    model: a :class:`MorphableModel` (e.g. ``facelab.load_model("synthetic")``); used on the
        CPU in float32.
    n_id, n_exp, n_albedo: how many leading identity / expression / albedo modes get sliders
        (coefficients ~N(0, 1); sliders span [-3, 3]).
    image_size: rendered image height = width in pixels (256 keeps an update < 100 ms).
    view_size: 3D canvas size in pixels. seed: seed of the "randomise" button's generator.

    State (for tests and scripts, no browser needed):
        sliders: dict key -> ipywidgets slider; keys ``id_0``..., ``exp_0``..., ``albedo_0``...,
            ``expr_<name>`` per named expression, ``jaw`` (rad), ``pitch``/``yaw``/``roll``
            (degrees) and ``sh_<k>_<c>`` (k = 0..8, c in r, g, b) for the 27 SH coefficients
            (the "advanced" light controls).
        light: dict of the light controls: ``azimuth``, ``elevation`` (degrees),
            ``intensity``, ``ambient`` sliders and ``color`` (a ColorPicker); moving one
            rewrites the SH sliders (:func:`light_sh`).
        buttons: dict name -> ``ipywidgets.Button``: ``reset``, ``reset_view``, ``randomise``,
            ``save_png``, ``save_obj``; toggles: ``landmarks``, ``wireframe`` checkboxes;
            view_preset: the preset-view dropdown; path: the file-name text box.
        view: the :class:`MeshView`; ``view.geometry.attributes["position"].array`` is the
            current (V, 3) mesh buffer, replaced in place on every update.
        image: (H, W, 3) float32 NumPy, the current render; image_widget: its ``ipywidgets.Image``.
        textured: True when the image paints the model's albedo texture maps (see the module
            docstring), False for per-vertex colours (models without maps).
        widget: the whole panel. update_ms: durations of the updates so far (ms).
    Setting a slider's ``.value`` updates everything synchronously.
    """

    def __init__(self, model: MorphableModel, *, n_id: int = 8, n_exp: int = 8,
                 n_albedo: int = 8, image_size: int = 256, view_size: int = 360, seed: int = 0):
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
        self._rng = torch.Generator().manual_seed(check_int(seed, name="seed", minimum=0))
        self.update_ms: list[float] = []
        self.textured = self.model.has_texture
        if self.textured:  # the slider modes' maps, contiguous: (Ht, Wt, 3), (Ht, Wt, 3, n)
            self._tex_mean = self.model.albedo_texture
            self._tex_modes = self.model.albedo_texture_basis[..., :self.n_albedo].contiguous()

        self.sliders: dict = {}
        self._groups: dict[str, list[str]] = {g: [] for g in _GROUPS}
        # Wide enough for the longest label ("mouth stretch", "jaw (rad)") without cutting it.
        style = {"description_width": "110px"}
        layout = w.Layout(width="340px")

        def slider(key, group, lo, hi, value, step, description):
            sl = w.FloatSlider(value=value, min=lo, max=hi, step=step, description=description,
                               description_allow_html=False, style=style, layout=layout,
                               continuous_update=True, readout_format=".2f")
            sl.tooltip = description
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
            slider(f"expr_{name}", "expr", 0.0, 1.5, 0.0, 0.05, name.replace("_", " "))
        for i in range(self.n_albedo):
            slider(f"albedo_{i}", "albedo", -3.0, 3.0, 0.0, 0.05, f"albedo {i}")
        if self.model.jaw_joint is not None:
            slider("jaw", "jaw", 0.0, 0.6, 0.0, 0.01, "jaw (rad)")
        for key in ("pitch", "yaw", "roll"):
            slider(key, "pose", -60.0, 60.0, 0.0, 1.0, f"head {key} (°)")
        for k in range(9):
            for c, ch in enumerate(_CHANNELS):
                value = round(float(self._light0[k, c]), 2)  # on the slider grid (step 0.01)
                lo, hi = (0.0, 2.0) if k == 0 else (-1.5, 1.5)
                slider(f"sh_{k}_{ch}", "sh", lo, hi, value, 0.01, f"{_SH_NAMES[k]} {ch}")

        # Light as a teacher thinks of it; each change rewrites the SH sliders above.
        d = DEFAULT_LIGHT

        def light_slider(key, lo, hi, step, description):
            sl = w.FloatSlider(value=d[key], min=lo, max=hi, step=step, description=description,
                               style=style, layout=layout, readout_format=".2f")
            sl.add_class(f"facelab-light-{key}")
            sl._facelab_default = d[key]
            sl.observe(self._on_light, names="value")
            return sl

        self.light = {
            "azimuth": light_slider("azimuth", -90.0, 90.0, 1.0, "direction ← → (°)"),
            "elevation": light_slider("elevation", -90.0, 90.0, 1.0, "direction ↓ ↑ (°)"),
            "intensity": light_slider("intensity", 0.0, 1.5, 0.01, "intensity"),
            "ambient": light_slider("ambient", 0.0, 1.5, 0.01, "ambient"),
            "color": w.ColorPicker(value=d["color"], description="light colour", style=style,
                                   layout=layout, concise=False),
        }
        self.light["color"]._facelab_default = d["color"]
        self.light["color"].add_class("facelab-light-color")
        self.light["color"].observe(self._on_light, names="value")

        # One full evaluation builds the state the widgets start from.
        self._evaluate(geometry=True)
        ev = self._cache
        self.view = MeshView(ev["verts_view"], self._faces, ev["colors"],
                             landmarks=self.model.landmarks, width=view_size,
                             height=view_size, lit=False)
        self.view.show_landmarks(False)
        self.image_widget = w.Image(value=static.jpeg_bytes(self.image), format="jpeg",
                                    width=view_size, height=view_size)
        self.image_widget.add_class("facelab-image")
        self.timing = w.HTML(value="")
        self.message = w.HTML(value="")
        self.widget = self._layout(w)
        self.widget.add_class("facelab-explorer")

    # ------------------------------------------------------------------ layout
    def _layout(self, w):
        from facelab.widgets.viewer import VIEWS

        def button(name, label, on_click, tooltip, width="120px"):
            b = w.Button(description=label, tooltip=tooltip, layout=w.Layout(width=width))
            b.add_class(f"facelab-button-{name}")
            b.on_click(lambda _b: on_click())
            self.buttons[name] = b
            return b

        def reset_button(keys, label):
            b = w.Button(description=label, layout=w.Layout(width="200px"))
            b.on_click(lambda _b: self.reset(keys))
            return b

        self.buttons: dict = {}
        titles = {"id": "Identity", "exp": "Expression", "expr": "Named expressions",
                  "albedo": "Albedo", "pose": "Jaw & head pose"}
        pages, names = [], []
        grid = w.Layout(grid_template_columns="repeat(2, 350px)")
        for group, title in titles.items():
            keys = self._groups[group] + (self._groups["jaw"] if group == "pose" else [])
            if not keys:
                continue
            body = w.GridBox([self.sliders[k] for k in keys], layout=grid)
            pages.append(w.VBox([body, reset_button(keys, f"reset {title.lower()}")]))
            names.append(title)
        # Light: direction / intensity / ambient / colour; raw SH in an "advanced" section.
        sh = w.GridBox([self.sliders[k] for k in self._groups["sh"]],
                       layout=w.Layout(grid_template_columns="repeat(3, 350px)"))
        advanced = w.Accordion(children=[sh], titles=("advanced: the 27 raw SH coefficients "
                                                      "(rows Y_lm, columns r g b)",))
        advanced.selected_index = None
        light_reset = w.Button(description="reset light", layout=w.Layout(width="200px"))
        light_reset.on_click(lambda _b: self.reset_light())
        pages.append(w.VBox([w.GridBox(list(self.light.values()), layout=grid), light_reset,
                             advanced]))
        names.append("Light")
        tabs = w.Tab(children=pages, titles=names)

        self.toggles = {
            "landmarks": w.Checkbox(value=False, description="landmarks", indent=False,
                                    layout=w.Layout(width="110px")),
            "wireframe": w.Checkbox(value=False, description="wireframe", indent=False,
                                    layout=w.Layout(width="110px")),
        }
        for key, t in self.toggles.items():
            t.add_class(f"facelab-toggle-{key}")
        self.toggles["landmarks"].observe(lambda c: self._on_landmarks(c["new"]), names="value")
        self.toggles["wireframe"].observe(
            lambda c: self.view.show_wireframe(c["new"]), names="value")
        self.view_preset = w.Dropdown(options=list(VIEWS), value="front", description="view",
                                      layout=w.Layout(width="200px"),
                                      style={"description_width": "40px"})
        self.view_preset.add_class("facelab-view-preset")
        self.view_preset.observe(lambda c: self.view.set_view(*VIEWS[c["new"]]), names="value")
        self.path = w.Text(value="face", description="file name",
                           layout=w.Layout(width="260px"), style={"description_width": "70px"})
        controls = w.HBox([
            button("reset", "reset all", self.reset, "every slider, the light and the view"),
            button("reset_view", "reset view", self.reset_view, "back to the front view"),
            self.view_preset, self.toggles["landmarks"], self.toggles["wireframe"],
            button("randomise", "randomise", self.randomise,
                   "random identity, expression and albedo (N(0, 1) coefficients)"),
        ], layout=w.Layout(flex_flow="row wrap", align_items="center"))
        saving = w.HBox([self.path,
                         button("save_png", "save PNG", lambda: self._save("png"),
                                "both panels as a PNG figure"),
                         button("save_obj", "save OBJ", lambda: self._save("obj"),
                                "the mesh with its shaded vertex colours"),
                         self.message, self.timing], layout=w.Layout(align_items="center"))

        def titled(title, child):
            return w.VBox([w.HTML(f"<b>{title}</b>"), child])

        views = w.HBox([titled("3D — drag to rotate, scroll to zoom", self.view.widget),
                        titled("rendered image (MoFA image formation)", self.image_widget)])
        return w.VBox([views, controls, saving, tabs])

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
        """Form and render the sliders' face (an adapter on :func:`facelab.form` and
        :func:`facelab.render`).

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
        background = torch.tensor(static.BACKGROUND)
        if self.textured:
            image, _ = render(formed, s, s, texture=self.albedo_texture(params.albedo),
                              background=background)
            image = image.clamp(0.0, 1.0)
        else:
            image, _ = render(formed, s, s, colors=colors, background=background)
        self.image = image[0].numpy()  # (H, W, 3) float32
        ev["landmarks_2d"] = formed.landmarks_2d[0].numpy()  # (68, 2) pixels
        if geometry or "verts_view" not in ev:
            ev["verts_view"] = (formed.verts @ params.rotation.transpose(1, 2))[0]  # (V, 3)
            ev["normals_view"] = formed.normals[0] * _FLIP  # back to model axes
        ev["colors"] = colors[0]

    def albedo_texture(self, albedo: torch.Tensor) -> torch.Tensor:
        """(1, Ht, Wt, 3) reflectance maps of the slider coefficients ``albedo`` (1, n_albedo):
        ``mean + E_alb[:, :n_albedo] b`` (MoFA Eq. 3 per texel), kept until the coefficients
        change (geometry and light moves reuse it). Textured models only."""
        key = tuple(albedo.reshape(-1)[: self.n_albedo].tolist())
        ev = self._cache
        if ev.get("albedo_key") != key:
            b = albedo.reshape(-1)[: self.n_albedo].to(self._tex_modes.dtype)  # (n,)
            ev["albedo_texture"] = (self._tex_mean + self._tex_modes @ b)[None]
            ev["albedo_key"] = key
        return ev["albedo_texture"]

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
        self.image_widget.value = static.jpeg_bytes(self.shown_image())
        ms = (time.perf_counter() - t0) * 1e3
        self.update_ms.append(ms)
        self.timing.value = f"<code>update {ms:.0f} ms</code>"
        return ms

    def shown_image(self) -> np.ndarray:
        """The rendered image as shown: with landmark markers when that toggle is on."""
        if getattr(self, "toggles", None) and self.toggles["landmarks"].value:
            from facelab.widgets.viewer import LANDMARK_COLOR

            return static.draw_points(self.image, self._cache["landmarks_2d"], LANDMARK_COLOR)
        return self.image

    def _on_change(self, change) -> None:
        if self._suspended:
            return
        key = next(k for k, s in self.sliders.items() if s is change["owner"])
        self.update(geometry=not key.startswith(("albedo_", "sh_")))

    def _on_landmarks(self, visible: bool) -> None:
        self.view.show_landmarks(visible)
        self.image_widget.value = static.jpeg_bytes(self.shown_image())

    def _light_gamma(self) -> torch.Tensor:
        c = {k: v.value for k, v in self.light.items()}
        return light_sh(c["azimuth"], c["elevation"], c["intensity"], c["ambient"],
                        _hex_rgb(c["color"]))

    def _set(self, values: dict) -> None:
        """Set several sliders (key -> value) without an update per slider."""
        self._suspended = True
        try:
            for k, v in values.items():
                self.sliders[k].value = v
        finally:
            self._suspended = False

    def _on_light(self, change) -> None:
        if self._suspended:
            return
        gamma = self._light_gamma()  # (9, 3)
        self._set({f"sh_{k}_{ch}": round(float(gamma[k, c]), 2)  # on the slider grid
                   for k in range(9) for c, ch in enumerate(_CHANNELS)})
        self.update(geometry=False)

    def reset(self, keys=None) -> None:
        """Return the given sliders (default: all, plus the light controls, the view and the
        toggles) to their defaults, with one update."""
        everything = keys is None
        keys = list(self.sliders) if keys is None else list(keys)
        self._set({k: self.sliders[k]._facelab_default for k in keys})
        if everything:
            self._suspended = True
            try:
                for control in self.light.values():
                    control.value = control._facelab_default
            finally:
                self._suspended = False
            for t in self.toggles.values():
                t.value = False
            self.reset_view()
        self.update(geometry=True)

    def reset_light(self) -> None:
        """The default light (controls and SH coefficients), with one update."""
        self._suspended = True
        try:
            for control in self.light.values():
                control.value = control._facelab_default
        finally:
            self._suspended = False
        self.reset(self._groups["sh"])

    def reset_view(self) -> None:
        """The 3D view back to the front (undoes orbiting with the mouse and the presets)."""
        self._suspended = True
        try:
            self.view_preset.value = "front"
        finally:
            self._suspended = False
        self.view.reset_view()

    def randomise(self, scale: float = 1.0) -> None:
        """Draw identity, expression and albedo coefficients ~ N(0, scale²) (clipped to the
        sliders' range) from the explorer's seeded generator, with one update."""
        keys = self._groups["id"] + self._groups["exp"] + self._groups["albedo"]
        draws = torch.randn(len(keys), generator=self._rng) * float(scale)
        self._set({k: round(float(v.clamp(-3.0, 3.0)), 2)
                   for k, v in zip(keys, draws, strict=True)})
        self.update(geometry=True)

    def save_obj(self, path) -> str:
        """Write the current mesh (posed as in the 3D panel, shaded vertex colours) as an OBJ,
        with the landmarks' sidecar (:func:`facelab.save_obj`); returns the path."""
        from facelab.export import save_obj

        ev = self._cache
        return str(save_obj(path, ev["verts_view"], self._faces, colors=ev["colors"],
                            landmarks=self.model.landmarks))

    def _save(self, kind: str) -> None:
        from pathlib import Path

        stem = (self.path.value or "face").strip()
        path = Path(stem).with_suffix(f".{kind}")
        try:
            written = self.save(path) if kind == "png" else self.save_obj(path)
        except (OSError, ValueError) as err:
            self.message.value = f"<span style='color: #b00'>could not save: {err}</span>"
            return
        self.message.value = f"<code>saved {written}</code>"

    # ---------------------------------------------------------------- fallback
    def static(self):
        """A matplotlib figure: the shaded mesh (front view of the 3D panel) and the render."""
        ev = self._cache
        mesh = static.mesh_image(ev["verts_view"], self._faces, ev["colors"],
                                 height=self.image_size, width=self.image_size, shade=False)
        return static.mesh_figure([mesh, self.shown_image()],
                                  ["3D view (front)", "rendered image"])

    def save(self, path) -> str:
        """Write :meth:`static` to ``path`` (PNG by extension); returns the path."""
        return static.save_figure(self.static(), path)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        return static.display_bundle(self.widget, self.static(), "ModelExplorer (3D view and "
                                     "rendered image with sliders)", include, exclude)
