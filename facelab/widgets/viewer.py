"""A pythreejs 3D mesh view that updates in place: :class:`MeshView` and :func:`show_mesh`.

The view owns ONE renderer, scene, camera, orbit control and ``BufferGeometry``; new vertices
or colours are written into the geometry's existing ``BufferAttribute`` objects (their
``array`` trait is replaced, which pythreejs forwards to three.js as ``setArray`` +
``needsUpdate``), so animating a mesh never creates widgets. The 3D scene uses model space
directly (mm, y up, face toward +z, three.js's own convention), so no axis flip is needed;
the camera starts on the +z axis looking at the mesh centre.
"""

from __future__ import annotations

import numpy as np
import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_indices, check_shape
from facelab.widgets import static

__all__ = ["MeshView", "show_mesh"]

LANDMARK_COLOR = "#ff3030"
LANDMARK_PIXELS = 7.0  # marker size on screen, independent of zoom
WIREFRAME_COLOR = "#101010"
# Preset views: (azimuth, elevation) in degrees; azimuth turns about the model's y (up) axis,
# positive toward the face's left (+x), elevation lifts the camera toward +y.
VIEWS = {"front": (0.0, 0.0), "left ¾": (45.0, 0.0), "right ¾": (-45.0, 0.0),
         "left profile": (90.0, 0.0), "right profile": (-90.0, 0.0), "from above": (0.0, 35.0)}


def _f32(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)


class MeshView:
    """An orbitable, lit 3D view of one triangle mesh with per-vertex colours.

    Attributes (state, inspectable without a browser):
        renderer: the ``pythreejs.Renderer`` (also ``widget``, what a notebook displays).
        geometry: the ``pythreejs.BufferGeometry``; ``geometry.attributes`` holds the
            ``position``, ``normal`` and ``color`` ``BufferAttribute`` objects, each (V, 3)
            float32, replaced in place by :meth:`update`.
        landmark_geometry: the landmarks' ``BufferGeometry`` (position (L, 3)) or None.
        verts, colors: (V, 3) float32 CPU tensors currently shown.
        faces: (F, 3) int64.
    Build it with :func:`show_mesh`.
    """

    def __init__(self, verts, faces, colors=None, landmarks=None, *, width: int = 360,
                 height: int = 360, lit: bool = True, background: str = "#202124",
                 wireframe: bool = False):
        import pythreejs as three

        v, f = static.as_mesh(verts, faces)
        self.faces = f
        self.verts = v
        self.colors = self._colors(colors)
        self._landmark_index = None
        lm_pos = None
        if landmarks is not None:
            lm_pos = self._landmarks(landmarks)
        self.framing = static.frame_mesh(v)
        center = [float(c) for c in self.framing.center]
        radius = float((v - torch.as_tensor(self.framing.center, dtype=v.dtype)).norm(dim=1).max())
        radius = max(radius, 1e-6)

        normals = self._normals(v)
        self.geometry = three.BufferGeometry(
            index=three.BufferAttribute(
                np.ascontiguousarray(f.numpy().reshape(-1), dtype=np.uint32), normalized=False),
            attributes={
                "position": three.BufferAttribute(_f32(v), normalized=False),
                "normal": three.BufferAttribute(normals, normalized=False),
                "color": three.BufferAttribute(_f32(self.colors), normalized=False),
            },
        )
        if lit:
            material = three.MeshStandardMaterial(vertexColors="VertexColors", roughness=0.85,
                                                  metalness=0.0, side="DoubleSide")
        else:
            material = three.MeshBasicMaterial(vertexColors="VertexColors", side="DoubleSide")
        self.mesh = three.Mesh(geometry=self.geometry, material=material)
        # The wireframe shares the geometry (so it follows every update); hidden by default.
        self.wireframe = three.Mesh(geometry=self.geometry, visible=bool(wireframe),
                                    material=three.MeshBasicMaterial(
                                        color=WIREFRAME_COLOR, wireframe=True, transparent=True,
                                        opacity=0.35))
        children = [self.mesh, self.wireframe]
        self.landmark_geometry = None
        self.landmark_points = None
        if lm_pos is not None:
            self.landmark_geometry = three.BufferGeometry(attributes={
                "position": three.BufferAttribute(_f32(lm_pos), normalized=False)})
            # Fixed on-screen size (no attenuation) and no depth test, so markers stay visible.
            self.landmark_points = three.Points(
                geometry=self.landmark_geometry, material=three.PointsMaterial(
                    color=LANDMARK_COLOR, size=LANDMARK_PIXELS, sizeAttenuation=False,
                    depthTest=False))
            children.append(self.landmark_points)
        self._center = center
        self._distance = 3.2 * radius
        # Head light: a directional light attached to the camera, plus ambient light.
        self.camera = three.PerspectiveCamera(
            position=self._view_position(0.0, 0.0), fov=40.0,
            aspect=width / height, near=radius * 0.05, far=radius * 20.0,
            children=[three.DirectionalLight(
                color="white", intensity=0.6, position=[0.0, 0.0, 1.0],
                # An explicit shadow model: with the default (unset) one, pythreejs 2.4 raises
                # "Error setting state: t.on is not a function" in the browser for every view.
                shadow=three.DirectionalLightShadow(
                    camera=three.OrthographicCamera(-1.0, 1.0, 1.0, -1.0)))])
        self.scene = three.Scene(children=[*children, self.camera,
                                           three.AmbientLight(color="white", intensity=0.55)],
                                 background=background)
        self.controls = three.OrbitControls(controlling=self.camera, target=center)
        self.renderer = three.Renderer(scene=self.scene, camera=self.camera,
                                       controls=[self.controls], width=width, height=height,
                                       antialias=True)
        self.renderer.add_class("facelab-mesh-view")
        self.widget = self.renderer
        # The start view is made exactly as "reset view" makes it (position, up, orbit target,
        # lookAt), so the two agree: left to three.js's defaults the full head's first frame
        # sat 13 % of its pixels away from the view reset_view returns to (browser test).
        self.set_view(0.0, 0.0)

    # ------------------------------------------------------------------ camera
    def _view_position(self, azimuth: float, elevation: float) -> list[float]:
        a, e = np.radians(azimuth), np.radians(elevation)
        d = self._distance
        offset = (d * np.cos(e) * np.sin(a), d * np.sin(e), d * np.cos(e) * np.cos(a))
        return [float(c + o) for c, o in zip(self._center, offset, strict=True)]

    def set_view(self, azimuth: float = 0.0, elevation: float = 0.0) -> None:
        """Put the camera at ``azimuth`` / ``elevation`` degrees around the mesh centre.

        azimuth turns about the model's up (y) axis, positive toward +x; elevation raises the
        camera toward +y. (0, 0) is the front view the view starts with. Named presets:
        :data:`VIEWS`, e.g. ``view.set_view(*VIEWS["left ¾"])``.
        """
        self.camera.position = self._view_position(float(azimuth), float(elevation))
        self.camera.up = [0.0, 1.0, 0.0]
        self.controls.target = list(self._center)
        # Orbiting in the browser moves the front-end camera without telling the kernel, so the
        # kernel's values may equal the new ones and traitlets would send nothing: send them.
        self.camera.send_state(["position", "up"])
        self.controls.send_state(["target"])
        self.camera.lookAt(list(self._center))

    def reset_view(self) -> None:
        """Back to the starting front view (undoes any orbiting, panning and zooming: the
        camera's position, up vector and the orbit target are all set from the kernel).

        Not three.js ``OrbitControls.reset()``: it restores the state the front end saved when
        the controls were made, which raced with the kernel's own camera messages and left the
        full head's view shifted by 13 % of its pixels (measured in the browser test)."""
        self.set_view(0.0, 0.0)

    def show_landmarks(self, visible: bool) -> None:
        """Show or hide the landmark markers (no-op without landmarks)."""
        if self.landmark_points is not None:
            self.landmark_points.visible = bool(visible)

    def show_wireframe(self, visible: bool) -> None:
        """Show or hide the triangle edges over the surface."""
        self.wireframe.visible = bool(visible)

    # -------------------------------------------------------------- validation
    def _colors(self, colors) -> torch.Tensor:
        c = static.as_colors(colors, self.verts.shape[0])
        return torch.full_like(self.verts, static.DEFAULT_GREY) if c is None else c

    def _landmarks(self, landmarks) -> torch.Tensor:
        lm, _ = as_tensor(landmarks, name="landmarks")
        if lm.is_floating_point():
            if lm.ndim == 3:
                check_shape(lm, "1 L 3", name="landmarks")
                lm = lm[0]
            check_shape(lm, "L 3", name="landmarks")
            check_finite(lm, name="landmarks")
            return lm.detach().cpu().float()
        check_shape(lm, "L", name="landmarks")
        check_indices(lm, self.verts.shape[0], name="landmarks")
        self._landmark_index = lm.cpu().long()
        return self.verts[self._landmark_index]

    def _normals(self, v: torch.Tensor) -> np.ndarray:
        from facelab.normals import vertex_normals

        return _f32(vertex_normals(v[None], self.faces)[0])  # (V, 3)

    # ------------------------------------------------------------------ update
    def update(self, verts=None, colors=None, landmarks=None) -> None:
        """Show new vertices and/or colours in place (no new widget is created).

        verts: (V, 3) or (1, V, 3) float, model space (mm), same V as at construction.
        colors: (V, 3) float in [0, 1], or None to keep the current colours.
        landmarks: (L, 3) positions when the view was built with positions; landmarks given
            as vertex indices follow ``verts`` automatically.
        """
        attrs = self.geometry.attributes
        if verts is not None:
            v, _ = as_tensor(verts, name="verts")
            check_floating(v, name="verts")
            if v.ndim == 3:
                check_shape(v, "1 V 3", name="verts", dims={"V": self.verts.shape[0]})
                v = v[0]
            check_shape(v, "V 3", name="verts", dims={"V": self.verts.shape[0]})
            check_finite(v, name="verts")
            self.verts = v.detach().cpu().float()
            attrs["position"].array = _f32(self.verts)
            attrs["normal"].array = self._normals(self.verts)
            if self.landmark_geometry is not None and self._landmark_index is not None:
                self.landmark_geometry.attributes["position"].array = _f32(
                    self.verts[self._landmark_index])
        if colors is not None:
            self.colors = self._colors(colors)
            attrs["color"].array = _f32(self.colors)
        if landmarks is not None:
            if self.landmark_geometry is None:
                raise ValueError("landmarks: this view was built without landmarks")
            lm, _ = as_tensor(landmarks, name="landmarks")
            check_floating(lm, name="landmarks")
            n = self.landmark_geometry.attributes["position"].array.shape[0]
            check_shape(lm, "L 3", name="landmarks", dims={"L": n})
            check_finite(lm, name="landmarks")
            self.landmark_geometry.attributes["position"].array = _f32(lm)

    def update_arrays(self, position: np.ndarray | None = None, normal: np.ndarray | None = None,
                      color: np.ndarray | None = None) -> None:
        """Fast path for animations: assign prepared (V, 3) float32 C-contiguous arrays.

        No validation and no normal computation; ``verts``/``colors`` attributes are not
        touched (the caller keeps them in sync if it needs :meth:`static`).
        """
        attrs = self.geometry.attributes
        if position is not None:
            attrs["position"].array = position
        if normal is not None:
            attrs["normal"].array = normal
        if color is not None:
            attrs["color"].array = color

    # ---------------------------------------------------------------- fallback
    def image(self, height: int = 256, width: int = 256) -> np.ndarray:
        """The current mesh rendered statically (front view): (H, W, 3) float32 in [0, 1].

        Landmark markers are drawn when the view has them and they are visible.
        """
        framing = static.frame_mesh(self.verts, height, width)
        img = static.mesh_image(self.verts, self.faces, self.colors, framing=framing)
        if self.landmark_geometry is not None and self.landmark_points.visible:
            lm = torch.from_numpy(np.asarray(self.landmark_geometry.attributes["position"].array))
            xy = static.screen_vertices(lm, framing)[0, :, :2].numpy()  # (L, 2) pixels
            img = static.draw_points(img, xy, LANDMARK_COLOR)
        return img

    def static(self, title: str | None = None):
        """A matplotlib figure of the current mesh (front view), for scripts and CI."""
        return static.mesh_figure([self.image()], [title] if title else None)

    def save(self, path) -> str:
        """Write :meth:`static` as an image file (PNG by extension); returns the path."""
        return static.save_figure(self.static(), path)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        return static.display_bundle(self.widget, self.static(), "MeshView (3D, drag to rotate)",
                                     include, exclude)


def show_mesh(verts, faces, colors=None, landmarks=None, *, width: int = 360, height: int = 360,
              lit: bool = True) -> MeshView:
    """Show a triangle mesh in an orbitable pythreejs view (lights, per-vertex colours).

    verts: (V, 3) or (1, V, 3) float32/float64, model space (mm); torch or NumPy.
    faces: (F, 3) int vertex indices (counter-clockwise seen from the front).
    colors: (V, 3) float in [0, 1] per-vertex colours (e.g. ``model.albedo(...)``), or None.
    landmarks: (L,) int vertex indices (e.g. ``model.landmarks``; they follow the mesh) or
        (L, 3) float positions, drawn as red markers; None for none.
    width, height: canvas size in pixels. lit: False shows colours unlit (colour maps).
    Returns a :class:`MeshView`; display it (last expression of a cell or
    ``IPython.display.display``) and call ``view.update(new_verts)`` to animate it in place.
    ``view.static()`` / ``view.save(path)`` give a matplotlib figure / PNG outside Jupyter.
    """
    return MeshView(verts, faces, colors, landmarks, width=width, height=height, lit=lit)
