"""Tests for facelab.export: OBJ/PLY writers, OBJ reader, landmark sidecar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from facelab.export import load_obj, save_obj, save_ply


def sphere_mesh(dtype=torch.float32, seed=0):
    s = trimesh.creation.icosphere(subdivisions=2)  # every vertex is used by a face
    gen = torch.Generator().manual_seed(seed)
    verts = torch.as_tensor(s.vertices, dtype=dtype) * 75.0  # mm
    faces = torch.as_tensor(s.faces, dtype=torch.int64)
    colors = torch.rand(len(verts), 3, generator=gen, dtype=dtype)
    return verts, faces, colors


def trimesh_colors(mesh) -> np.ndarray:
    return np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0


# ----------------------------------------------------------------------------------- OBJ
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_obj_round_trip(tmp_path, dtype):
    verts, faces, colors = sphere_mesh(dtype)
    path = save_obj(tmp_path / "nested" / "dir" / "face.obj", verts, faces, colors)
    assert path == tmp_path / "nested" / "dir" / "face.obj" and path.is_file()
    v, f, c = load_obj(path, dtype=dtype)
    assert v.dtype == dtype and f.dtype == torch.int64 and c.dtype == dtype
    torch.testing.assert_close(v, verts, rtol=1e-8, atol=1e-6)
    assert torch.equal(f, faces)
    torch.testing.assert_close(c, colors, rtol=0, atol=1e-6)
    if dtype == torch.float32:  # 9 significant digits round-trip float32 exactly
        assert torch.equal(v, verts)


def test_obj_format_lines(tmp_path):
    verts = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [0.0, 2.0, -1.0]])
    path = save_obj(str(tmp_path / "tri.obj"), verts, np.array([[0, 1, 2]]),
                    colors=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]))
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert lines == ["v 0 0 0 1 0 0", "v 1.5 0 0 0 1 0", "v 0 2 -1 0 0 0.5", "f 1 2 3"]


def test_obj_trimesh_reads_vertices_faces_colours(tmp_path):
    verts, faces, colors = sphere_mesh()
    path = save_obj(tmp_path / "face.obj", verts, faces, colors)
    mesh = trimesh.load(path, process=False)
    np.testing.assert_allclose(mesh.vertices, verts.numpy(), rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(mesh.faces, faces.numpy())
    assert mesh.visual.kind == "vertex"
    np.testing.assert_allclose(trimesh_colors(mesh), colors.numpy(), atol=1 / 255 + 1e-9)


def test_obj_without_colours_and_batch_squeeze(tmp_path):
    verts, faces, _ = sphere_mesh()
    path = save_obj(tmp_path / "plain.obj", verts[None].numpy(), faces.numpy())
    first_v = next(ln for ln in path.read_text().splitlines() if ln.startswith("v "))
    assert len(first_v.split()) == 4
    v, f, c = load_obj(path)
    assert c is None and torch.equal(v, verts) and torch.equal(f, faces)


def test_load_obj_general_faces(tmp_path):
    text = "\n".join([
        "# comment", "o quad", "v 0 0 0", "v 1 0 0", "v 1 1 0", "v 0 1 0", "vt 0 0", "vn 0 0 1",
        "f 1/1/1 2/1/1 3/1/1 4/1/1",  # quad -> two triangles (fan)
        "f -4//1 -2//1 -1//1",  # negative (relative) indices
        "",
    ])
    path = tmp_path / "quad.obj"
    path.write_text(text)
    v, f, c = load_obj(path)
    assert v.shape == (4, 3) and c is None
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [0, 2, 3]]
    path.write_text("v 0 0 0\nv 1 0 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match=r"faces \(in file\): expected indices in \[0, 2\)"):
        load_obj(path)


# ----------------------------------------------------------------------------------- PLY
def test_ply_header_and_binary_layout(tmp_path):
    verts, faces, colors = sphere_mesh()
    path = save_ply(tmp_path / "face.ply", verts, faces, colors)
    data = path.read_bytes()
    header, body = data.split(b"end_header\n", 1)
    header_lines = header.decode("ascii").splitlines()
    assert header_lines[:2] == ["ply", "format binary_little_endian 1.0"]
    assert f"element vertex {len(verts)}" in header_lines
    assert "property uchar red" in header_lines
    assert "property list uchar int vertex_indices" in header_lines
    assert len(body) == len(verts) * (12 + 3) + len(faces) * (1 + 12)
    first = np.frombuffer(body[:12], dtype="<f4")
    np.testing.assert_array_equal(first, verts[0].numpy())
    rgb = np.frombuffer(body[12:15], dtype=np.uint8)
    np.testing.assert_array_equal(rgb, np.rint(colors[0].numpy() * 255).astype(np.uint8))


@pytest.mark.parametrize("with_colors", [True, False])
def test_ply_trimesh_reads_vertices_faces_colours(tmp_path, with_colors):
    verts, faces, colors = sphere_mesh(torch.float64)
    path = save_ply(tmp_path / "out" / "face.ply", verts, faces,
                    colors if with_colors else None)
    mesh = trimesh.load(path, process=False)
    np.testing.assert_allclose(mesh.vertices, verts.numpy(), rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(mesh.faces, faces.numpy())
    if with_colors:
        np.testing.assert_allclose(trimesh_colors(mesh), colors.numpy(), atol=1 / 255 + 1e-9)
    else:
        assert "red" not in path.read_bytes().split(b"end_header")[0].decode()


# ----------------------------------------------------------------------------- landmarks
@pytest.mark.parametrize("writer, suffix", [(save_obj, ".obj"), (save_ply, ".ply")])
def test_landmark_sidecar(tmp_path, writer, suffix):
    verts, faces, _ = sphere_mesh()
    lm = torch.tensor([5, 0, 17, 161])
    path = writer(tmp_path / f"head{suffix}", verts, faces, landmarks=lm)
    sidecar = tmp_path / "head_landmarks.txt"
    assert sidecar.is_file()
    assert sidecar.read_text().startswith("#")
    table = np.loadtxt(sidecar)
    assert table.shape == (4, 4)
    np.testing.assert_array_equal(table[:, 0].astype(int), lm.numpy())
    np.testing.assert_allclose(table[:, 1:], verts[lm].numpy(), rtol=1e-7)
    assert path.is_file()


def test_no_sidecar_without_landmarks(tmp_path):
    verts, faces, _ = sphere_mesh()
    save_obj(tmp_path / "a.obj", verts, faces)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.obj"]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("writer, suffix", [(save_obj, ".obj"), (save_ply, ".ply")])
def test_bad_input(tmp_path, writer, suffix):
    verts, faces, colors = sphere_mesh()
    p = tmp_path / "sub" / f"x{suffix}"
    with pytest.raises(ValueError, match=r"verts: expected \(V, 3\) or \(1, V, 3\), got \(2, 162"):
        writer(p, verts[None].repeat(2, 1, 1), faces)
    with pytest.raises(ValueError, match=r"verts: expected \(V, 3\), got \(162, 2\)"):
        writer(p, verts[:, :2], faces)
    with pytest.raises(TypeError, match="verts: expected float32 or float64"):
        writer(p, verts.long(), faces)
    with pytest.raises(ValueError, match="verts: expected finite"):
        writer(p, torch.full_like(verts, float("nan")), faces)
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 162\)"):
        writer(p, verts, faces + 1)
    with pytest.raises(TypeError, match="faces: expected an integer dtype"):
        writer(p, verts, faces.float())
    with pytest.raises(ValueError, match=r"colors: expected values in \[0, 1\]"):
        writer(p, verts, faces, colors * 2.0)
    with pytest.raises(ValueError, match=r"colors: expected \(V, 3\) with V=162"):
        writer(p, verts, faces, colors[:10])
    with pytest.raises(ValueError, match=r"landmarks: expected indices in \[0, 162\)"):
        writer(p, verts, faces, landmarks=torch.tensor([0, 162]))
    with pytest.raises(ValueError, match="path: expected a file name ending in"):
        writer(tmp_path / "x.stl", verts, faces)
    with pytest.raises(TypeError, match=r"path: expected a str or pathlib\.Path"):
        writer(3, verts, faces)
    assert not Path(p).parent.exists()  # nothing written (no folder) on bad input


# --------------------------------------------------------------------------- textured OBJ
def textured_sphere(seed=0):
    """A sphere with a UV layout that has a seam (Vt > V) and a random texture."""
    verts, faces, _ = sphere_mesh()
    x, y, z = verts.double().unbind(1)
    u = 0.5 + torch.atan2(x, z) / (2 * np.pi)
    v = 0.5 + torch.asin((y / verts.double().norm(dim=1)).clamp(-1, 1)) / np.pi
    uv = torch.stack([u, v], 1).float()  # (V, 2)
    uv_faces = faces.clone()
    wrap = (uv[faces][..., 0].amax(1) - uv[faces][..., 0].amin(1)) > 0.5  # across the seam
    fi, ki = torch.nonzero(wrap[:, None] & (uv[faces][..., 0] < 0.5), as_tuple=True)
    extra = uv[faces[fi, ki]] + torch.tensor([1.0, 0.0])
    uv_faces[fi, ki] = len(uv) + torch.arange(len(fi))
    uv = torch.cat([uv, extra.clamp(max=1.0)])
    gen = torch.Generator().manual_seed(seed)
    texture = torch.rand(32, 48, 3, generator=gen)
    return verts, faces, uv, uv_faces, texture


def test_textured_obj_round_trip_through_trimesh(tmp_path):
    from PIL import Image

    from facelab.export import save_textured_obj, textured_obj_paths

    verts, faces, uv, uv_faces, texture = textured_sphere()
    assert len(uv) > len(verts)  # a seam: corners of one vertex with different uv
    path = save_textured_obj(tmp_path / "head.obj", verts, faces, uv, uv_faces, texture)
    obj, mtl, png = textured_obj_paths(path)
    assert [p.name for p in (obj, mtl, png)] == ["head.obj", "head.mtl", "head_texture.png"]
    assert all(p.is_file() for p in (obj, mtl, png))
    assert "map_Kd head_texture.png" in mtl.read_text()
    # facelab's own reader
    v, f, c, t, tf = load_obj(path, uv=True)
    assert torch.equal(v, verts) and torch.equal(f, faces) and c is None
    torch.testing.assert_close(t, uv, rtol=0, atol=1e-7)
    assert torch.equal(tf, uv_faces)
    assert load_obj(path)[1].shape == faces.shape  # the plain reader ignores vt
    # trimesh (it may split vertices by texture coordinate: compare per corner)
    mesh = trimesh.load(path, process=False)
    corners = np.asarray(mesh.vertices)[np.asarray(mesh.faces)]  # (F, 3, 3)
    np.testing.assert_allclose(corners, verts.numpy()[faces.numpy()], atol=1e-5)
    uv_tm = np.asarray(mesh.visual.uv)[np.asarray(mesh.faces)]  # (F, 3, 2)
    np.testing.assert_allclose(uv_tm, uv.numpy()[uv_faces.numpy()], atol=1e-6)
    image = np.asarray(mesh.visual.material.image.convert("RGB"))
    expected = (texture.numpy() * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(image, expected)
    np.testing.assert_array_equal(np.asarray(Image.open(png)), expected)


def test_textured_obj_refuses_to_overwrite_and_bad_inputs(tmp_path):
    from facelab.export import save_textured_obj

    verts, faces, uv, uv_faces, texture = textured_sphere()
    (tmp_path / "head_texture.png").write_bytes(b"a user's picture")
    with pytest.raises(FileExistsError, match="head_texture.png"):
        save_textured_obj(tmp_path / "head.obj", verts, faces, uv, uv_faces, texture,
                          overwrite=False)
    assert not (tmp_path / "head.obj").exists() and not (tmp_path / "head.mtl").exists()
    assert (tmp_path / "head_texture.png").read_bytes() == b"a user's picture"
    save_textured_obj(tmp_path / "head.obj", verts, faces, uv, uv_faces, texture)  # overwrite
    with pytest.raises(ValueError, match="uv_faces"):
        save_textured_obj(tmp_path / "b.obj", verts, faces, uv, uv_faces[:-1], texture)
    with pytest.raises(ValueError, match="uv_faces"):
        save_textured_obj(tmp_path / "b.obj", verts, faces, uv, uv_faces + len(uv), texture)
    with pytest.raises(ValueError, match="texture"):
        save_textured_obj(tmp_path / "b.obj", verts, faces, uv, uv_faces, texture * 2)
    with pytest.raises(ValueError, match="texture"):
        save_textured_obj(tmp_path / "b.obj", verts, faces, uv, uv_faces, texture[..., :2])
    with pytest.raises(ValueError, match="uv"):
        save_textured_obj(tmp_path / "b.obj", verts, faces, uv[:, :1], uv_faces, texture)
    with pytest.raises(ValueError, match=r"\.obj"):
        save_textured_obj(tmp_path / "b.ply", verts, faces, uv, uv_faces, texture)
    with pytest.raises(ValueError, match="material"):
        save_textured_obj(tmp_path / "b.obj", verts, faces, uv, uv_faces, texture,
                          material="a b")
    assert not (tmp_path / "b.obj").exists()


def test_load_obj_uv_absent_or_partial(tmp_path):
    verts, faces, _ = sphere_mesh()
    path = save_obj(tmp_path / "plain.obj", verts, faces)
    _, f, _, t, tf = load_obj(path, uv=True)
    assert t is None and tf is None and f.shape == faces.shape
    mixed = tmp_path / "mixed.obj"
    mixed.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
                     "f 1/1 2/2 3/3\nf 2 4 3\n")
    assert load_obj(mixed, uv=True)[3:] == (None, None)  # not every corner textured
    quad = tmp_path / "quad.obj"
    quad.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
                    "f 1/1 2/2 3/3 4/4\n")
    _, f, _, t, tf = load_obj(quad, uv=True)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3]] and tf.tolist() == f.tolist()
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/5 3/1\n")
    with pytest.raises(ValueError, match="texture"):
        load_obj(bad, uv=True)
