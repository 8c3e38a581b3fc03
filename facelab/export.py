"""Write meshes for MeshLab, Blender and trimesh: OBJ with vertex colours, binary PLY.

One mesh per file, batch-free: ``verts (V, 3)``, ``faces (F, 3)``; a (1, V, 3) batch is
squeezed, any other batch size is an error (save each mesh separately).

* OBJ: ``v x y z`` or, with colours, ``v x y z r g b`` (r, g, b floats in [0, 1]; the common
  vertex-colour extension read by MeshLab and trimesh); ``f i j k`` with 1-based indices.
  Coordinates are written with 9 significant digits, so float32 values round-trip exactly.
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

__all__ = ["load_obj", "save_obj", "save_ply"]


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
    """(line number, line) of the 'v' and 'f' records, streamed (other lines are skipped)."""
    for lineno, line in enumerate(fh, 1):
        if line.lstrip()[:2] in ("v ", "f ", "v\t", "f\t"):
            yield lineno, line


def load_obj(path, *, dtype: torch.dtype = torch.float32):
    """Read the vertices, triangles and vertex colours of an OBJ (minimal reader).

    path: str or Path.
    dtype: floating dtype of the returned vertices and colours.
    Returns ``(verts (V, 3), faces (F, 3) int64 0-based, colors (V, 3) or None)`` as torch
    tensors. Understands ``v x y z [r g b]``, ``f`` with ``i``, ``i/t``, ``i//n``, ``i/t/n``
    and negative (relative) indices; polygons are fan-triangulated; every other line is ignored.
    ``colors`` is None unless every vertex line has r g b.
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path: expected a str or pathlib.Path, got {type(path).__name__}")
    verts, colors, faces = [], [], []
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
            elif parts[0] == "f":
                idx = []
                for token in parts[1:]:
                    i = int(token.split("/")[0])
                    idx.append(i - 1 if i > 0 else len(verts) + i)
                if len(idx) < 3:
                    raise ValueError("'f' needs 3 vertices")
                faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
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
    return v, f, c


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
