"""Write meshes for MeshLab, Blender and trimesh: OBJ with vertex colours, binary PLY.

One mesh per file, batch-free: ``verts (V, 3)``, ``faces (F, 3)``; a (1, V, 3) batch is
squeezed, any other batch size is an error (save each mesh separately).

* OBJ: ``v x y z`` or, with colours, ``v x y z r g b`` (r, g, b floats in [0, 1]; the common
  vertex-colour extension read by MeshLab and trimesh); ``f i j k`` with 1-based indices.
  Coordinates are written with 9 significant digits, so float32 values round-trip exactly.
* Textured OBJ (:func:`save_textured_obj`): ``face.obj`` with ``v``, ``vt u v`` and
  ``f v/vt`` records, ``mtllib face.mtl`` and ``usemtl``; ``face.mtl`` with one material whose
  ``map_Kd`` is ``face_texture.png`` (row 0 = v 1, the OBJ convention). The three files are
  written atomically, the image first and the OBJ last, so a reader never sees an OBJ whose
  material or texture is missing; with ``overwrite=False`` all three are checked first.
* PLY: ``binary_little_endian 1.0``; vertex properties float x, y, z (+ uchar red, green, blue
  = round(255 * colour)); faces as ``list uchar int vertex_indices``.
* Landmarks (both formats): a sidecar text file ``<stem>_landmarks.txt`` next to the mesh
  (``face.obj`` -> ``face_landmarks.txt``), one landmark per line ``index x y z`` with the
  0-based vertex index and its model-space position, after one ``#`` header line; read it with
  ``numpy.loadtxt`` (column 0 is the index).

Parent folders are created. Paths are ``str`` or ``pathlib.Path``. Every file is written
atomically (:func:`facelab.atomic_io.atomic_path`: a temporary file renamed into place), so
an interrupt never leaves a truncated mesh; ``overwrite=False`` refuses an existing file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_indices,
    check_shape,
)
from facelab.atomic_io import atomic_path, refuse_existing

__all__ = ["load_obj", "save_obj", "save_ply", "save_textured_obj", "textured_obj_paths"]


# ------------------------------------------------------------------------------ validation
def _mesh_arrays(verts, faces, colors, landmarks):
    """Validate and convert to NumPy: (V,3) float64, (F,3) int64, (V,3) float64|None, (L,)|None."""
    v, _ = as_tensor(verts, name="verts")
    if v.ndim == 3 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 2:
        raise ValueError(f"verts: expected (V, 3) or (1, V, 3), got {tuple(v.shape)}")
    d = check_shape(v, "V 3", name="verts")
    check_floating(v, name="verts")
    check_finite(v, name="verts")
    f, _ = as_tensor(faces, name="faces")
    check_shape(f, "F 3", name="faces")
    check_indices(f, d["V"], name="faces")
    out_colors = None
    if colors is not None:
        c, _ = as_tensor(colors, name="colors")
        if c.ndim == 3 and c.shape[0] == 1:
            c = c[0]
        check_shape(c, "V 3", name="colors", dims=d)
        check_floating(c, name="colors")
        check_finite(c, name="colors")
        if c.numel() and (float(c.min()) < 0.0 or float(c.max()) > 1.0):
            raise ValueError(
                f"colors: expected values in [0, 1], got values in "
                f"[{float(c.min()):.4g}, {float(c.max()):.4g}] (clamp them first)"
            )
        out_colors = c.detach().cpu().double().numpy()
    out_landmarks = None
    if landmarks is not None:
        lm, _ = as_tensor(landmarks, name="landmarks")
        check_shape(lm, "L", name="landmarks")
        check_indices(lm, d["V"], name="landmarks")
        out_landmarks = lm.detach().cpu().long().numpy()
    return (
        v.detach().cpu().double().numpy(),
        f.detach().cpu().long().numpy(),
        out_colors,
        out_landmarks,
    )


def _prepare_path(path, suffix: str) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path: expected a str or pathlib.Path, got {type(path).__name__}")
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise ValueError(f"path: expected a file name ending in {suffix!r}, got {str(p)!r}")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _landmark_path(path: Path) -> Path:
    """The sidecar next to a mesh file: ``dir/face.obj`` -> ``dir/face_landmarks.txt``."""
    return path.with_name(f"{path.stem}_landmarks.txt")


def _save_landmarks(path: Path, verts: np.ndarray, landmarks: np.ndarray,
                    overwrite: bool) -> None:
    table = np.concatenate([landmarks[:, None].astype(np.float64), verts[landmarks]], axis=1)
    with atomic_path(_landmark_path(path), overwrite=overwrite) as tmp:
        np.savetxt(
            tmp, table, fmt=["%d", "%.9g", "%.9g", "%.9g"],
            header="index x y z  (0-based vertex index, model-space position)",
        )


def _refuse(p: Path, landmarks, overwrite: bool) -> None:
    """Before writing anything: the mesh and its sidecar must not exist unless overwriting."""
    if not overwrite:
        refuse_existing([p] + ([_landmark_path(p)] if landmarks is not None else []),
                        option="overwrite=True")


# ------------------------------------------------------------------------------------- OBJ
def save_obj(path, verts, faces, colors=None, landmarks=None, *, overwrite: bool = True) -> Path:
    """Write a Wavefront OBJ, optionally with per-vertex colours and a landmark sidecar.

    path: str or Path ending in ``.obj``; parent folders are created.
    verts: (V, 3) float (torch or NumPy; (1, V, 3) is squeezed), model space (mm).
    faces: (F, 3) integer vertex indices, 0-based (written 1-based).
    colors: optional (V, 3) float in [0, 1], linear RGB; written as ``v x y z r g b``.
    landmarks: optional (L,) integer vertex indices -> ``<stem>_landmarks.txt`` (module docs).
    overwrite: when False, an existing file (mesh or sidecar) raises ``FileExistsError``.
    Returns the Path written (atomically).
    """
    v, f, c, lm = _mesh_arrays(verts, faces, colors, landmarks)
    p = _prepare_path(path, ".obj")
    _refuse(p, lm, overwrite)
    with atomic_path(p, overwrite=overwrite) as tmp, open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"# facelab OBJ: {v.shape[0]} vertices, {f.shape[0]} faces\n")
        if c is None:
            np.savetxt(fh, v, fmt="v %.9g %.9g %.9g")
        else:
            np.savetxt(fh, np.concatenate([v, c], axis=1), fmt="v %.9g %.9g %.9g %.6g %.6g %.6g")
        np.savetxt(fh, f + 1, fmt="f %d %d %d")
    if lm is not None:
        _save_landmarks(p, v, lm, overwrite)
    return p


def _obj_lines(fh, path):
    """(line number, line) of the 'v', 'vt' and 'f' records, streamed (others are skipped)."""
    for lineno, line in enumerate(fh, 1):
        if line.lstrip()[:2] in ("v ", "f ", "v\t", "f\t") or line.lstrip()[:3] in ("vt ", "vt\t"):
            yield lineno, line


def _resolve(i: int, n: int) -> int:
    """A 1-based (or negative, relative) OBJ index -> 0-based, given n records so far."""
    return i - 1 if i > 0 else n + i


def load_obj(path, *, dtype: torch.dtype = torch.float32, uv: bool = False):
    """Read the vertices, triangles and vertex colours of an OBJ (minimal reader).

    path: str or Path.
    dtype: floating dtype of the returned vertices, colours and texture coordinates.
    uv: also return the texture coordinates (what :func:`save_textured_obj` writes).
    Returns ``(verts (V, 3), faces (F, 3) int64 0-based, colors (V, 3) or None)`` as torch
    tensors; with ``uv=True`` also ``uv (Vt, 2)`` and ``uv_faces (F, 3)`` int64 0-based (both
    None unless every face corner has a ``vt`` index). Understands ``v x y z [r g b]``,
    ``vt u v [w]``, ``f`` with ``i``, ``i/t``, ``i//n``, ``i/t/n`` and negative (relative)
    indices; polygons are fan-triangulated; every other line is ignored.
    ``colors`` is None unless every vertex line has r g b.
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path: expected a str or pathlib.Path, got {type(path).__name__}")
    verts, colors, faces, tex, tex_faces = [], [], [], [], []
    all_corners_textured = True
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"\0" in head or head.startswith((b"\x89PNG", b"\xff\xd8", b"GIF8", b"ply")):
        raise ValueError(f"path: {str(path)!r} is not a text OBJ file (binary content; is it "
                         "an image or a PLY mesh?)")
    with open(path, encoding="utf-8", errors="strict") as fh:
        try:
            lines = list(_obj_lines(fh, path))
        except UnicodeDecodeError as exc:
            raise ValueError(f"path: {str(path)!r} is not a text OBJ file (it is not "
                             "UTF-8 text)") from exc
    for lineno, line in lines:
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "v":
                values = [float(x) for x in parts[1:]]
                if len(values) < 3:
                    raise ValueError("'v' needs 3 coordinates")
                verts.append(values[:3])
                colors.append(values[3:6] if len(values) >= 6 else None)
            elif parts[0] == "vt":
                values = [float(x) for x in parts[1:]]
                if len(values) < 2:
                    raise ValueError("'vt' needs 2 coordinates")
                tex.append(values[:2])
            elif parts[0] == "f":
                idx, tidx = [], []
                for token in parts[1:]:
                    fields = token.split("/")
                    idx.append(_resolve(int(fields[0]), len(verts)))
                    if len(fields) > 1 and fields[1]:
                        tidx.append(_resolve(int(fields[1]), len(tex)))
                if len(idx) < 3:
                    raise ValueError("'f' needs 3 vertices")
                fan = [(0, k, k + 1) for k in range(1, len(idx) - 1)]
                faces.extend([idx[a], idx[b], idx[c]] for a, b, c in fan)
                if len(tidx) == len(idx):
                    tex_faces.extend([tidx[a], tidx[b], tidx[c]] for a, b, c in fan)
                else:
                    all_corners_textured = False
        except ValueError as exc:
            raise ValueError(f"path: line {lineno} of {path}: {exc}") from exc
    if not verts:
        raise ValueError(f"path: {str(path)!r} has no 'v x y z' lines; not an OBJ mesh")
    v = torch.tensor(verts, dtype=dtype).reshape(-1, 3)
    check_finite(v, name="vertices (in file)")
    f = torch.tensor(faces, dtype=torch.int64).reshape(-1, 3)
    check_indices(f, v.shape[0], name="faces (in file)")
    has_colors = bool(colors) and all(c is not None for c in colors)
    c = torch.tensor(colors, dtype=dtype).reshape(-1, 3) if has_colors else None
    if c is not None:
        check_finite(c, name="colors (in file)")
    if not uv:
        return v, f, c
    if not (tex and tex_faces and all_corners_textured):
        return v, f, c, None, None
    t = torch.tensor(tex, dtype=dtype).reshape(-1, 2)
    check_finite(t, name="texture coordinates (in file)")
    tf = torch.tensor(tex_faces, dtype=torch.int64).reshape(-1, 3)
    check_indices(tf, t.shape[0], name="face texture indices (in file)")
    return v, f, c, t, tf


# -------------------------------------------------------------------------- textured OBJ
def textured_obj_paths(path) -> list[Path]:
    """The files :func:`save_textured_obj` writes for ``path``: [.obj, .mtl, _texture.png]."""
    p = _as_obj_path(path)
    return [p, p.with_suffix(".mtl"), p.with_name(f"{p.stem}_texture.png")]


def _as_obj_path(path) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path: expected a str or pathlib.Path, got {type(path).__name__}")
    p = Path(path)
    if p.suffix.lower() != ".obj":
        raise ValueError(f"path: expected a file name ending in '.obj', got {str(p)!r}")
    return p


def _texture_uint8(texture) -> np.ndarray:
    t, _ = as_tensor(texture, name="texture")
    check_shape(t, "Ht Wt 3", name="texture")
    if t.dtype == torch.uint8:
        return t.detach().cpu().numpy()
    check_floating(t, name="texture")
    check_finite(t, name="texture")
    if t.numel() and (float(t.min()) < 0.0 or float(t.max()) > 1.0):
        raise ValueError(f"texture: expected values in [0, 1], got values in "
                         f"[{float(t.min()):.4g}, {float(t.max()):.4g}] (clamp them first)")
    return (t.detach().cpu().double().numpy() * 255.0 + 0.5).astype(np.uint8)


def save_textured_obj(path, verts, faces, uv, uv_faces, texture, landmarks=None, *,
                      overwrite: bool = True, material: str = "face") -> Path:
    """Write a textured Wavefront OBJ: ``.obj`` + ``.mtl`` + ``_texture.png`` (module docs).

    path: str or Path ending in ``.obj``; the material goes to the same stem with ``.mtl``
        and the image to ``<stem>_texture.png`` beside it (:func:`textured_obj_paths`).
    verts: (V, 3) float ((1, V, 3) squeezed), model space (mm). faces: (F, 3) int, 0-based.
    uv: (Vt, 2) float texture coordinates, OBJ convention (u right, v up, [0, 1]).
    uv_faces: (F, 3) int indices into ``uv``, one per corner of ``faces``.
    texture: (Ht, Wt, 3) uint8, or float in [0, 1]; row 0 is the top (v = 1).
    landmarks: optional (L,) vertex indices -> ``<stem>_landmarks.txt`` (as :func:`save_obj`).
    overwrite: when False, any of the files existing raises ``FileExistsError`` before
        anything is written. material: the material's name (letters, digits, ``_-.``).
    Returns the OBJ's Path. Read back with ``load_obj(path, uv=True)`` or
    ``trimesh.load(path, process=False)``.
    """
    from PIL import Image

    v, f, _, lm = _mesh_arrays(verts, faces, None, landmarks)
    uvt, _ = as_tensor(uv, name="uv")
    check_shape(uvt, "Vt 2", name="uv")
    check_floating(uvt, name="uv")
    check_finite(uvt, name="uv")
    uvf, _ = as_tensor(uv_faces, name="uv_faces")
    check_shape(uvf, "F 3", name="uv_faces", dims={"F": f.shape[0]})
    check_indices(uvf, uvt.shape[0], name="uv_faces")
    image = _texture_uint8(texture)
    if not isinstance(material, str) or not material or not all(
            ch.isalnum() or ch in "_-." for ch in material):
        raise ValueError(f"material: expected a name of letters, digits, '_', '-', '.', "
                         f"got {material!r}")
    obj_path, mtl_path, png_path = textured_obj_paths(path)
    _prepare_path(obj_path, ".obj")
    if not overwrite:
        refuse_existing([obj_path, mtl_path, png_path]
                        + ([_landmark_path(obj_path)] if lm is not None else []),
                        option="overwrite=True")
    with atomic_path(png_path, overwrite=overwrite) as tmp:
        Image.fromarray(image).save(tmp)
    with atomic_path(mtl_path, overwrite=overwrite) as tmp, \
            open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"# facelab material\nnewmtl {material}\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\n"
                 f"d 1\nillum 1\nmap_Kd {png_path.name}\n")
    uv_np = uvt.detach().cpu().double().numpy()
    corners = np.stack([f + 1, uvf.detach().cpu().long().numpy() + 1], axis=2)  # (F, 3, 2)
    with atomic_path(obj_path, overwrite=overwrite) as tmp, \
            open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"# facelab textured OBJ: {v.shape[0]} vertices, {uv_np.shape[0]} texture "
                 f"coordinates, {f.shape[0]} faces\nmtllib {mtl_path.name}\n")
        np.savetxt(fh, v, fmt="v %.9g %.9g %.9g")
        np.savetxt(fh, uv_np, fmt="vt %.9g %.9g")
        fh.write(f"usemtl {material}\n")
        np.savetxt(fh, corners.reshape(-1, 6), fmt="f %d/%d %d/%d %d/%d")
    if lm is not None:
        _save_landmarks(obj_path, v, lm, overwrite)
    return obj_path


# ------------------------------------------------------------------------------------- PLY
def save_ply(path, verts, faces, colors=None, landmarks=None, *, overwrite: bool = True) -> Path:
    """Write a binary little-endian PLY, optionally with uchar RGB vertex colours.

    path: str or Path ending in ``.ply``; parent folders are created.
    verts: (V, 3) float (torch or NumPy; (1, V, 3) is squeezed), written as float32.
    faces: (F, 3) integer vertex indices, 0-based, written as int32 lists.
    colors: optional (V, 3) float in [0, 1]; stored as uchar ``round(255 * c)``.
    landmarks: optional (L,) integer vertex indices -> ``<stem>_landmarks.txt`` (module docs).
    overwrite: when False, an existing file (mesh or sidecar) raises ``FileExistsError``.
    Returns the Path written (atomically).
    """
    v, f, c, lm = _mesh_arrays(verts, faces, colors, landmarks)
    p = _prepare_path(path, ".ply")
    _refuse(p, lm, overwrite)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if c is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertex = np.empty(v.shape[0], dtype=fields)
    for k, name in enumerate("xyz"):
        vertex[name] = v[:, k]
    if c is not None:
        rgb = np.clip(np.rint(c * 255.0), 0, 255).astype(np.uint8)  # (V, 3)
        for k, name in enumerate(("red", "green", "blue")):
            vertex[name] = rgb[:, k]
    face = np.empty(f.shape[0], dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face["n"] = 3
    face["idx"] = f
    header = ["ply", "format binary_little_endian 1.0", "comment written by facelab",
              f"element vertex {v.shape[0]}", "property float x", "property float y",
              "property float z"]
    if c is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header += [f"element face {f.shape[0]}", "property list uchar int vertex_indices",
               "end_header"]
    with atomic_path(p, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(vertex.tobytes())
        fh.write(face.tobytes())
    if lm is not None:
        _save_landmarks(p, v, lm, overwrite)
    return p
