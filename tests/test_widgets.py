"""facelab.widgets at the Python level: widget state, in-place updates, static fallbacks.

No browser here (see tests/browser/ for that): moving a slider is setting ``.value``; the
3D buffers are the pythreejs ``BufferAttribute.array`` traits the front end receives.
"""

import base64
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")
pytest.importorskip("pythreejs")

from fixtures_widgets import dome, live_widgets

from facelab.widgets import (
    ConvergencePlot,
    GradientView,
    ModelExplorer,
    MotionPlayer,
    gradient_magnitude,
    mesh_image,
    show_mesh,
    vertex_gradient,
)
from facelab.widgets.static import BACKGROUND, frame_mesh, screen_vertices


@pytest.fixture(scope="module")
def model():
    from facelab.model.registry import load_model

    return load_model("synthetic", resolution="teaching", version=1)


@pytest.fixture(scope="module")
def explorer(model):
    return ModelExplorer(model, n_id=4, n_exp=3, n_albedo=3, image_size=96, view_size=200)


# ---------------------------------------------------------------------- package
def test_import_is_lazy():
    code = ("import sys, facelab, facelab.widgets, facelab.progress; "
            "print(sorted(m for m in ('ipywidgets', 'pythreejs', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name():
    import facelab.widgets as fw

    with pytest.raises(AttributeError, match="no_such_widget"):
        fw.no_such_widget  # noqa: B018


# ------------------------------------------------------------------- show_mesh
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("as_numpy", [False, True])
def test_show_mesh_buffers(dtype, as_numpy):
    verts, faces = dome(dtype=dtype)
    colors = torch.rand(verts.shape[0], 3, dtype=dtype)
    args = (verts.numpy(), faces.numpy(), colors.numpy()) if as_numpy else (verts, faces, colors)
    view = show_mesh(*args, landmarks=torch.tensor([0, 5, 40]))
    attrs = view.geometry.attributes
    for key in ("position", "normal", "color"):
        assert attrs[key].array.shape == (72, 3) and attrs[key].array.dtype == np.float32
    np.testing.assert_allclose(attrs["position"].array, verts.float().numpy(), rtol=1e-6)
    np.testing.assert_allclose(attrs["color"].array, colors.float().numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(attrs["normal"].array, axis=1), 1.0, atol=1e-5)
    # Dome normals point toward the viewer (+z) at the apex.
    apex = int(verts[:, 2].argmax())
    assert attrs["normal"].array[apex, 2] > 0.99
    assert view.geometry.index.array.shape == (faces.numel(),)
    np.testing.assert_array_equal(view.geometry.index.array, faces.numpy().reshape(-1))
    np.testing.assert_allclose(view.landmark_geometry.attributes["position"].array,
                               verts[[0, 5, 40]].float().numpy(), rtol=1e-6)
    assert "facelab-mesh-view" in view.renderer._dom_classes


def test_show_mesh_update_in_place_no_new_widgets():
    verts, faces = dome()
    view = show_mesh(verts, faces, landmarks=torch.tensor([3, 7]))
    geometry, renderer = view.geometry, view.renderer
    pos, col = geometry.attributes["position"], geometry.attributes["color"]
    n_widgets = live_widgets()
    for k in range(20):
        new = verts * (1.0 + 0.01 * (k + 1))
        view.update(new, colors=torch.full_like(verts, k / 20))
        np.testing.assert_allclose(pos.array, new.numpy(), rtol=1e-6)
        np.testing.assert_allclose(col.array, k / 20, atol=1e-6)
        # Landmarks given as indices follow the vertices.
        np.testing.assert_allclose(view.landmark_geometry.attributes["position"].array,
                                   new[[3, 7]].numpy(), rtol=1e-6)
    assert live_widgets() == n_widgets
    assert view.geometry is geometry and view.renderer is renderer
    assert geometry.attributes["position"] is pos and geometry.attributes["color"] is col


def test_show_mesh_landmark_positions():
    verts, faces = dome()
    lm = torch.tensor([[0.0, 0.0, 50.0], [10.0, 0.0, 40.0]])
    view = show_mesh(verts, faces, landmarks=lm)
    view.update(landmarks=lm + 1)
    np.testing.assert_allclose(view.landmark_geometry.attributes["position"].array, lm + 1)


def test_show_mesh_bad_input():
    verts, faces = dome()
    with pytest.raises(ValueError, match=r"verts: expected \(V, 3\)"):
        show_mesh(verts[:, :2], faces)
    with pytest.raises(ValueError, match=r"verts: expected \(1, V, 3\)"):
        show_mesh(verts[None].repeat(2, 1, 1), faces)
    with pytest.raises(TypeError, match="verts: expected float32 or float64"):
        show_mesh(verts.long(), faces)
    bad = verts.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="verts: expected finite"):
        show_mesh(bad, faces)
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 72\)"):
        show_mesh(verts, faces + 1)
    with pytest.raises(ValueError, match="colors"):
        show_mesh(verts, faces, colors=torch.rand(71, 3))
    with pytest.raises(ValueError, match="landmarks"):
        show_mesh(verts, faces, landmarks=torch.tensor([0, 72]))
    with pytest.raises(TypeError, match="verts"):
        show_mesh([[0.0, 0.0, 0.0]], faces)
    view = show_mesh(verts, faces)
    with pytest.raises(ValueError, match=r"verts: expected \(V, 3\) with V=72"):
        view.update(verts[:-1])
    with pytest.raises(ValueError, match="built without landmarks"):
        view.update(landmarks=torch.zeros(2, 3))


# ---------------------------------------------------------------------- static
def test_mesh_image_values():
    verts, faces = dome()
    img = mesh_image(verts, faces, torch.ones_like(verts), height=64, width=48)
    assert img.shape == (64, 48, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    np.testing.assert_allclose(img[0, 0], BACKGROUND, atol=1e-6)  # margin is background
    centre = img[32, 24]
    assert centre.min() > 0.9  # white albedo, apex faces the head light: fully lit
    assert img.std() > 0.1


def test_mesh_image_projection_golden():
    # One front-facing triangle; framing puts it where the y-flip says.
    verts = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]])
    faces = torch.tensor([[0, 1, 2]])
    framing = frame_mesh(verts, 20, 20, margin=0.0)
    screen = screen_vertices(verts, framing)[0]
    np.testing.assert_allclose(screen[:, :2].numpy(), [[0, 20], [20, 20], [0, 0]], atol=1e-5)
    img = mesh_image(verts, faces, torch.ones(3, 3), height=20, width=20, framing=framing,
                     shade=False, background=(0.0, 0.0, 0.0))
    covered = img[..., 0] > 0.5
    # Lower-left half (model y up -> screen y down): pixel (i, j) covered iff j + 0.5 < i + 0.5.
    i, j = np.mgrid[0:20, 0:20]
    np.testing.assert_array_equal(covered[i != j], (j < i)[i != j])


def test_show_mesh_static_and_save(tmp_path):
    verts, faces = dome()
    view = show_mesh(verts, faces)
    fig = view.static("dome")
    assert fig.axes and fig.axes[0].get_title() == "dome"
    path = view.save(tmp_path / "mesh.png")
    from PIL import Image

    assert Image.open(path).size[0] > 100


# ---------------------------------------------------------------- ModelExplorer
def test_explorer_sliders(explorer, model):
    s = explorer.sliders
    assert {f"id_{i}" for i in range(4)} <= set(s) and {f"albedo_{i}" for i in range(3)} <= set(s)
    assert sum(k.startswith("sh_") for k in s) == 27
    assert {f"expr_{n}" for n in model.expression_names} <= set(s)
    assert {"jaw", "pitch", "yaw", "roll"} <= set(s)
    assert explorer.image.shape == (96, 96, 3) and explorer.image.dtype == np.float32


def test_explorer_geometry_slider_updates_buffers_in_place(explorer, model):
    explorer.reset()
    attrs = explorer.view.geometry.attributes
    pos_attr, geometry, renderer = attrs["position"], explorer.view.geometry, explorer.view.renderer
    image_widget = explorer.image_widget
    before, image_before, png_before = pos_attr.array.copy(), explorer.image.copy(), \
        image_widget.value
    n_widgets = live_widgets()
    explorer.sliders["id_0"].value = 2.0
    after = pos_attr.array
    # Values: the mesh buffer equals the model's own evaluation (MoFA Eq. 2, no head pose).
    expected = model.shape(torch.tensor([[2.0, 0.0, 0.0, 0.0]]))
    expected = model.pose_jaw(expected, torch.zeros(1, 3))[0]
    np.testing.assert_allclose(after, expected.numpy(), atol=1e-3)
    assert np.abs(after - before).max() > 1.0
    assert np.abs(explorer.image - image_before).max() > 0.05
    assert image_widget.value != png_before
    for key, value in (("exp_1", 1.5), ("jaw", 0.4), ("yaw", 30.0),
                       (f"expr_{model.expression_names[0]}", 1.0)):
        prev = pos_attr.array.copy()
        explorer.sliders[key].value = value
        assert np.abs(pos_attr.array - prev).max() > 0.5, key
    assert explorer.view.geometry is geometry and explorer.view.renderer is renderer
    assert explorer.view.geometry.attributes["position"] is pos_attr
    assert explorer.image_widget is image_widget
    assert live_widgets() == n_widgets
    explorer.reset()
    np.testing.assert_allclose(pos_attr.array, before, atol=1e-4)


def test_explorer_appearance_slider_keeps_geometry(explorer):
    explorer.reset()
    attrs = explorer.view.geometry.attributes
    pos, col = attrs["position"].array.copy(), attrs["color"].array.copy()
    img = explorer.image.copy()
    explorer.sliders["sh_0_r"].value = explorer.sliders["sh_0_r"].value + 0.5
    np.testing.assert_array_equal(attrs["position"].array, pos)
    assert attrs["color"].array[:, 0].mean() > col[:, 0].mean() + 0.05  # redder
    np.testing.assert_allclose(attrs["color"].array[:, 1:], col[:, 1:], atol=1e-6)
    assert explorer.image[..., 0].mean() > img[..., 0].mean()
    explorer.sliders["albedo_0"].value = 2.5
    assert np.abs(attrs["color"].array - col).max() > 0.01
    explorer.reset(["sh_0_r", "albedo_0"])
    np.testing.assert_allclose(attrs["color"].array, col, atol=1e-6)


def test_explorer_image_matches_form_and_render(explorer, model):
    import facelab as fl
    from facelab.rotations import head_rotation

    explorer.reset()
    explorer.sliders["id_1"].value = 1.0
    explorer.sliders["pitch"].value = 10.0
    p = explorer.coefficients()
    camera, translation = fl.default_camera(1, 96, 96)
    params = fl.FaceParams(id=p["id"], exp=p["exp"], rotation=head_rotation(p["angles"]),
                           translation=translation, gamma=p["gamma"], jaw=p["jaw_pose"])
    ref, mask = fl.render(fl.form(model, params, camera), 96, 96)
    mask = mask[0].numpy()
    assert mask.mean() > 0.2
    ours = explorer.image[mask]
    theirs = ref[0].clamp(0, 1).numpy()[mask]
    # the explorer clamps vertex colours before interpolation; compare where unclipped.
    ok = (theirs < 0.999).all(axis=1)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(ours[ok], theirs[ok], atol=2e-3)
    explorer.reset()


def test_explorer_paints_the_texture_maps_of_a_textured_model():
    """The built-in head (texture-space albedo): the explorer's image is ``fl.render``'s
    textured picture of the sliders' parameters (clamped), the reflectance maps are formed
    from the slider modes and reused until an albedo slider moves."""
    import facelab as fl
    from facelab.widgets import static

    head = fl.load_model("synthetic", "teaching", version=2)
    ex = ModelExplorer(head, n_id=2, n_exp=2, n_albedo=3, image_size=96, view_size=120)
    assert ex.textured
    ex.sliders["id_0"].value = 1.0
    ex.sliders["albedo_1"].value = -1.5
    ex.sliders["yaw"].value = 20.0
    camera, _ = fl.default_camera(1, 96, 96)
    with torch.no_grad():
        formed = fl.form(head, ex.face_params(), camera)
        ref, mask = fl.render(formed, 96, 96, background=torch.tensor(static.BACKGROUND))
        flat, _ = fl.render(formed, 96, 96, texture=False,
                            background=torch.tensor(static.BACKGROUND))
    np.testing.assert_allclose(ex.image, ref[0].clamp(0, 1).numpy(), atol=1e-5)
    assert np.abs(ex.image - flat[0].clamp(0, 1).numpy())[mask[0].numpy()].max() > 0.05
    maps = ex._cache["albedo_texture"]
    ex.sliders["pitch"].value = 5.0  # geometry: the maps are reused
    assert ex._cache["albedo_texture"] is maps
    ex.sliders["albedo_0"].value = 1.0  # albedo: formed again
    assert ex._cache["albedo_texture"] is not maps
    np.testing.assert_allclose(ex._cache["albedo_texture"][0].numpy(),
                               head.albedo_map(ex.face_params().albedo)[0].numpy(), atol=1e-5)


def test_explorer_update_time_recorded(explorer):
    n = len(explorer.update_ms)
    explorer.sliders["roll"].value = 5.0
    assert len(explorer.update_ms) == n + 1 and explorer.update_ms[-1] > 0
    assert "ms" in explorer.timing.value
    explorer.reset()


def test_explorer_light_controls_write_the_sh(explorer):
    from facelab.lighting import sh_from_direction
    from facelab.widgets.explorer import light_direction, light_sh

    explorer.reset()
    np.testing.assert_allclose(light_direction(0, 0).numpy(), [0, 0, -1], atol=1e-7)
    np.testing.assert_allclose(light_direction(90, 0).numpy(), [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(light_direction(0, 90).numpy(), [0, -1, 0], atol=1e-7)  # up = -y
    col = explorer.view.geometry.attributes["color"].array.copy()
    pos = explorer.view.geometry.attributes["position"].array.copy()
    light = explorer.light
    light["azimuth"].value = 60.0
    gamma = explorer.coefficients()["gamma"][0]
    expected = sh_from_direction(light_direction(60.0, light["elevation"].value),
                                 intensity=light["intensity"].value,
                                 ambient=light["ambient"].value)[0]
    np.testing.assert_allclose(gamma.numpy(), expected.numpy(), atol=0.006)  # 0.01 grid
    np.testing.assert_array_equal(explorer.view.geometry.attributes["position"].array, pos)
    assert np.abs(explorer.view.geometry.attributes["color"].array - col).max() > 0.05
    light["color"].value = "#ff0000"  # a red light: green and blue coefficients vanish
    gamma = explorer.coefficients()["gamma"][0]
    assert gamma[:, 1:].abs().max() == 0 and gamma[:, 0].abs().max() > 0.1
    np.testing.assert_allclose(light_sh(10, 20, 0.5, 0.3, (1, 0.5, 0))[:, 1].numpy(),
                               0.5 * light_sh(10, 20, 0.5, 0.3)[:, 1].numpy(), atol=1e-7)
    explorer.reset()
    np.testing.assert_allclose(explorer.view.geometry.attributes["color"].array, col, atol=1e-6)
    assert light["azimuth"].value == 0.0 and light["color"].value == "#ffffff"


def test_explorer_labels_toggles_views_and_buttons(explorer, model, tmp_path):
    from facelab.widgets.viewer import VIEWS

    explorer.reset()
    # Readable labels: no identifiers with underscores, wide enough label column.
    labels = [s.description for s in explorer.sliders.values()]
    assert not any("_" in d for d in labels)
    assert "jaw open" in labels
    width = int(explorer.sliders["jaw"].style.description_width.rstrip("px"))
    assert width >= 7 * max(len(d) for d in labels if not d.startswith("Y"))
    # Toggles: landmarks as markers in 3D and in the image; wireframe over the mesh.
    view = explorer.view
    assert view.landmark_points is not None and not view.landmark_points.visible
    assert view.landmark_points.material.size >= 5 and not view.landmark_points.material \
        .sizeAttenuation
    plain = explorer.image_widget.value
    explorer.toggles["landmarks"].value = True
    assert view.landmark_points.visible and explorer.image_widget.value != plain
    marked = explorer.shown_image()
    assert (np.abs(marked - explorer.image).max(axis=-1) > 0.2).sum() >= 68
    explorer.toggles["wireframe"].value = True
    assert view.wireframe.visible and view.wireframe.geometry is view.geometry
    # Preset views and reset: the camera moves, reset puts it back in front.
    front = list(view.camera.position)
    explorer.view_preset.value = "left profile"
    assert abs(view.camera.position[0] - front[2] + view.controls.target[2]) < 1e-3
    explorer.buttons["reset_view"].click()
    np.testing.assert_allclose(view.camera.position, front, atol=1e-6)
    assert explorer.view_preset.value == "front" and set(VIEWS) >= {"front", "left ¾"}
    # Randomise: seeded, one update, values on the sliders; reset all undoes everything.
    n = len(explorer.update_ms)
    explorer.buttons["randomise"].click()
    assert len(explorer.update_ms) == n + 1
    assert any(explorer.sliders[f"id_{i}"].value != 0 for i in range(4))
    explorer.view_preset.value = "from above"
    explorer.buttons["reset"].click()
    assert all(explorer.sliders[f"id_{i}"].value == 0 for i in range(4))
    assert not explorer.toggles["landmarks"].value and not view.wireframe.visible
    np.testing.assert_allclose(view.camera.position, front, atol=1e-6)
    # Save PNG / OBJ from the buttons.
    explorer.path.value = str(tmp_path / "sub" / "me")
    (tmp_path / "sub").mkdir()
    explorer.buttons["save_png"].click()
    explorer.buttons["save_obj"].click()
    assert (tmp_path / "sub" / "me.png").read_bytes()[:4] == b"\x89PNG"
    obj = (tmp_path / "sub" / "me.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in obj) == model.num_vertices
    assert "saved" in explorer.message.value


def test_widgets_display_a_static_png_beside_the_live_view(explorer, model):
    verts, faces = dome()
    plot = ConvergencePlot(interactive=True)
    for step in range(5):
        plot.on_step(step, {"a": 1.0 / (step + 1)})
    plot.on_end()
    widgets = [explorer, show_mesh(verts, faces, landmarks=torch.arange(5)),
               GradientView(verts, faces, torch.ones(72), image_size=32), plot,
               MotionPlayer(torch.stack([verts, verts * 1.1]), faces)]
    for widget in widgets:
        data, _ = widget._repr_mimebundle_()
        name = type(widget).__name__
        assert base64.b64decode(data["image/png"])[:4] == b"\x89PNG", name
        assert "model_id" in data["application/vnd.jupyter.widget-view+json"], name
        assert "children=" not in data["text/plain"], name


def test_explorer_static_and_bad_input(explorer, tmp_path):
    fig = explorer.static()
    assert len(fig.axes) == 2
    assert explorer.save(tmp_path / "explorer.png").endswith(".png")
    with pytest.raises(TypeError, match="model: expected a MorphableModel"):
        ModelExplorer("synthetic")


# ---------------------------------------------------------------- GradientView
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vertex_gradient_analytic(dtype):
    verts, _ = dome(dtype=dtype)
    w = torch.rand(verts.shape[0], 1, dtype=dtype)
    grad = vertex_gradient(lambda v: (w * v**2).sum(), verts)
    assert grad.dtype == dtype and grad.shape == verts.shape
    torch.testing.assert_close(grad, 2 * w * verts)
    assert not verts.requires_grad
    mag = gradient_magnitude(grad)
    torch.testing.assert_close(mag, (2 * w * verts).norm(dim=1))
    torch.testing.assert_close(gradient_magnitude(-grad[:, 0]), grad[:, 0].abs())
    torch.testing.assert_close(gradient_magnitude(grad[None]), mag)
    np_grad = vertex_gradient(lambda v: (v**3).sum(), verts.numpy())
    torch.testing.assert_close(np_grad, 3 * verts**2)


def test_vertex_gradient_matches_finite_differences():
    verts, _ = dome(dtype=torch.float64)

    def loss(v):
        return (v[:, 2].sin() * v[:, 0]).sum() + v.norm(dim=1).pow(3).mean()

    grad = vertex_gradient(loss, verts)
    eps = 1e-6
    for idx in [(0, 0), (10, 2), (40, 1)]:
        vp, vm = verts.clone(), verts.clone()
        vp[idx] += eps
        vm[idx] -= eps
        fd = (loss(vp) - loss(vm)) / (2 * eps)
        assert abs(float(fd) - float(grad[idx])) < 1e-5 * max(1.0, abs(float(fd)))


def test_gradient_view_colour_map_and_heat_map():
    verts, faces = dome(dtype=torch.float64)
    apex = int(verts[:, 2].argmax())
    # Only the apex vertex gets gradient: the colour map and the heat map peak there.
    only_apex = torch.zeros(verts.shape[0], 3)
    only_apex[apex] = torch.tensor([3.0, 4.0, 0.0])
    spread = torch.ones(verts.shape[0])
    view = GradientView(verts, faces, [only_apex, spread], ["direct", "neural"], image_size=64)
    np.testing.assert_allclose(view.magnitudes[0][apex], 5.0)
    assert view.magnitudes[0].sum() == pytest.approx(5.0)
    colors = view.views[0].geometry.attributes["color"].array
    assert np.argmax(colors.sum(1)) == apex
    heat = view.heatmaps[0].sum(-1)
    i, j = np.unravel_index(np.argmax(heat), heat.shape)
    screen = screen_vertices(view.verts, view.framing)[0, apex]
    assert abs(j + 0.5 - float(screen[0])) <= 2 and abs(i + 0.5 - float(screen[1])) <= 2
    # Shared scale: 'neural' (magnitude 1 everywhere) sits below the shared top of the scale.
    shared = view.views[1].geometry.attributes["color"].array.copy()
    view.shared_toggle.value = False
    separate = view.views[1].geometry.attributes["color"].array
    assert separate.sum() > shared.sum()  # now normalised to its own max (1.0)
    assert view.image_widgets[0].value[:4] == b"\x89PNG"


def test_gradient_view_callable_log_scale_and_update():
    verts, faces = dome()
    view = GradientView(verts, faces, lambda v: (v[:, 2] ** 2).sum(), image_size=32)
    np.testing.assert_allclose(view.magnitudes[0], 2 * verts[:, 2].abs().numpy(), rtol=1e-5)
    geometry, attr = view.views[0].geometry, view.views[0].geometry.attributes["color"]
    lin = attr.array.copy()
    view.log_toggle.value = True
    assert not np.allclose(attr.array, lin)
    n_widgets = live_widgets()
    view.update(torch.rand(verts.shape[0]))
    view.update([torch.rand(verts.shape[0], 3)])
    assert live_widgets() == n_widgets
    assert view.views[0].geometry is geometry and geometry.attributes["color"] is attr
    fig = view.static()
    assert len(fig.axes) == 3  # 3D front view, image space, colour bar
    assert "loss / mm" in fig.axes[2].get_xlabel()


def test_robust_range_percentile_and_sparse():
    from facelab.widgets.gradients import robust_range

    values = np.concatenate([np.linspace(1.0, 100.0, 1000), [1e6]])  # one outlier
    lo, hi = robust_range([values])
    assert lo == 0.0 and 95.0 < hi < 101.0  # the outlier saturates instead of setting the top
    sparse = np.zeros(5000)
    sparse[:20] = np.linspace(1.0, 2.0, 20)  # 0.4 % non-zero: the 99th percentile of all is 0
    lo, hi = robust_range([sparse])
    assert hi == pytest.approx(np.percentile(sparse[:20], 99.0))
    lo, hi = robust_range([sparse], log_decades=3.0)
    assert lo == pytest.approx(hi / 1e3)


def test_gradient_view_unlit_colours_match_the_bar_and_own_shapes():
    import matplotlib
    import pythreejs as three

    verts, faces = dome()
    moved = verts.clone()
    moved[:, 2] += 10.0 * torch.linspace(0, 1, verts.shape[0])
    loss = lambda v: (v[:, 2] ** 2).sum()  # noqa: E731
    view = GradientView([verts, moved], faces, [loss, loss], ["start", "moved"],
                        shared_scale=False, image_size=48, units="px² / mm")
    # Gradients are taken on each panel's own shape and the views show that shape.
    np.testing.assert_allclose(view.magnitudes[1], 2 * moved[:, 2].abs().numpy(), rtol=1e-5)
    np.testing.assert_allclose(view.views[1].geometry.attributes["position"].array,
                               moved.numpy())
    for v in view.views:
        assert isinstance(v.mesh.material, three.MeshBasicMaterial)  # unlit
    # The vertex colours are exactly the colour map at the normalised magnitude.
    lo, hi = view.ranges[1]
    assert lo == 0.0  # linear scale
    expected = matplotlib.colormaps["inferno"](np.clip(view.magnitudes[1] / hi, 0, 1))[:, :3]
    np.testing.assert_allclose(view.views[1].geometry.attributes["color"].array, expected,
                               atol=1e-6)
    assert all(b.value[:4] == b"\x89PNG" for b in view.colorbar_widgets)
    fig = view.static()
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert labels == ["|∂L/∂v|  (px² / mm)"] * 2
    with pytest.raises(ValueError, match="one mesh or 2 meshes"):
        GradientView([verts, verts, verts], faces, [loss, loss])


def test_gradient_view_bad_input():
    verts, faces = dome()
    with pytest.raises(ValueError, match="loss_fn: expected a scalar"):
        vertex_gradient(lambda v: v.sum(dim=1), verts)
    with pytest.raises(TypeError, match="loss_fn"):
        vertex_gradient(3.0, verts)
    with pytest.raises(ValueError, match=r"grad: expected \(V, C\) with V=72"):
        GradientView(verts, faces, torch.ones(71, 3))
    with pytest.raises(ValueError, match=r"grad: expected \(V,\) with V=72"):
        GradientView(verts, faces, torch.ones(70))
    bad = torch.ones(72)
    bad[0] = float("inf")
    with pytest.raises(ValueError, match="grad: expected finite"):
        GradientView(verts, faces, bad)
    with pytest.raises(TypeError, match=r"gradients\[0\]: expected float32 or float64"):
        GradientView(verts, faces, torch.ones(72, dtype=torch.int64))
    with pytest.raises(ValueError, match="titles"):
        GradientView(verts, faces, [torch.ones(72)], ["a", "b"])
    with pytest.raises(ValueError, match="at least one panel"):
        GradientView(verts, faces, [])
    view = GradientView(verts, faces, torch.ones(72))
    with pytest.raises(ValueError, match="expected 1 panels"):
        view.update([torch.ones(72), torch.ones(72)])
