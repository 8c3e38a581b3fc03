"""Image formation: the one chain from :class:`FaceParams` and a camera to an image.

    shape  = mean + E_id alpha + E_exp delta (+ vertex offsets)       MoFA Eq. (2)
    skin   = neck / jaw / eye linear blend skinning (models with joints)  FLAME Eq. (2)
    X_cam  = F (R X) + t,  F = diag(1, -1, -1)                         model -> OpenCV camera
    u      = camera.project(X_cam)       Pinhole / ScaledOrthographic / WeakPerspective
    n      = vertex normals of X_cam (compiled)
    albedo = mean + E_alb beta (+ albedo offsets)                      MoFA Eq. (3)
    c      = albedo * (H(n) gamma)  (compiled SH shading)              MoFA Eq. (4)
    textured models (a UV layout): albedo maps T = mean + E_alb beta per texel (Eq. 3), the
    irradiance s = H(n) gamma per vertex (Eq. 4, unit albedo); a pixel p shows
    T(uv(p)) * s(p), uv and s interpolated over the triangle, T looked up bilinearly

:func:`form` is the only place in facelab that chains these steps (MoFA Sec. 5, "Parametric
model-based decoder"; Eq. 5 evaluates u_i and c_i per vertex); :func:`render` rasterizes a
:class:`Formation` into pixels. Every paper's method is an adapter that turns its own vector
into ``(FaceParams, camera)``.

Lighting ``gamma`` is in **camera space** (OpenCV axes), so a light at the camera has direction
(0, 0, -1) (``random_sh(..., front=(0, 0, -1))``).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np
import torch

from facelab import cameras
from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_indices,
    check_int,
    check_shape,
)
from facelab.cameras import _rigid
from facelab.face_params import JOINT_BLOCKS, FaceParams
from facelab.formation_cache import _cast, _subset_rows, _validated_subset
from facelab.model.morphable import MorphableModel
from facelab.model.skinning import blend_skinning
from facelab.normals.autograd import VertexNormals, vertex_face_table
from facelab.raster.compose import render_mesh
from facelab.rotations import head_rotation
from facelab.shading.autograd import ShShade
from facelab.texture.compose import render_textured_mesh

__all__ = ["DEFAULT_DISTANCE_MM", "DEFAULT_FOV_DEG", "MAX_ANTIALIAS", "PICTURE_ANTIALIAS",
           "AlbedoMaps", "Formation", "default_camera", "form", "render", "render_preview"]

DEFAULT_FOV_DEG = 16.0
DEFAULT_DISTANCE_MM = 800.0
PICTURE_ANTIALIAS = 3
"""Supersampling factor of facelab's pictures (previews, the demo, fit panels, MoFA's figures):
3 x 3 samples per pixel. Losses and the training corpora render with 1 (no anti-aliasing), as
the papers do."""
MAX_ANTIALIAS = 8


class AlbedoMaps:
    """A formation's reflectance as texture maps, MoFA Eq. (3) per texel, formed on first use.

    ``texture()`` returns (B, Ht, Wt, 3) = ``model.albedo_map(coeffs)``: mean map + basis maps
    @ beta. Forming it reads the whole (Ht, Wt, 3, K) basis (100 modes: 79 MB at 256², 315 MB
    at 512²; measured 40 and 120 ms per image on one thread of the shared teaching machine),
    so :func:`form` only records what it needs and :func:`render` forms it when it paints the
    texture: fitters and losses that never render pay nothing. The result
    is kept (per grad mode), so several renders of one formation form it once.

    offsets: (B, V, 3) per-vertex reflectance offsets of the parameters (or None), added to
    the looked-up texture by :func:`render`.
    """

    __slots__ = ("_cache", "_coeffs", "_model", "offsets")

    def __init__(self, model: MorphableModel, coeffs: torch.Tensor, offsets=None):
        self._model, self._coeffs, self.offsets = model, coeffs, offsets
        self._cache: dict = {}

    @property
    def shape(self) -> tuple:
        """(B, Ht, Wt, 3), without forming the maps."""
        return (self._coeffs.shape[0], *self._model.albedo_texture.shape)

    def texture(self) -> torch.Tensor:
        """(B, Ht, Wt, 3) linear-RGB reflectance maps, row 0 at the top (v = 1)."""
        key = torch.is_grad_enabled()
        if key not in self._cache:
            self._cache[key] = self._model.albedo_map(self._coeffs)
        return self._cache[key]

    def __repr__(self) -> str:
        return f"AlbedoMaps(shape={self.shape}, model={self._model.name!r})"


class Formation(NamedTuple):
    """What :func:`form` computes: every intermediate of the image formation, batch first.

    verts: (B, V, 3) model space (mm): blendshapes + offsets + joints, before the head pose
        (the mesh to compare with ground truth or to export).
    verts_cam: (B, V, 3) OpenCV camera space (mm): ``F (R verts) + t``.
    screen_verts: (B, V, 3) (u, v, depth): pixels (x right, y down) and a depth that grows
        away from the camera (the camera z for :class:`~facelab.cameras.Pinhole`).
    normals: (B, V, 3) unit camera-space vertex normals, or None with ``vertex_subset``.
    albedo: (B, V, 3) reflectance, MoFA Eq. (3), or None with ``vertex_subset``.
    colors: (B, V, 3) shaded colours, MoFA Eq. (4), or None with ``vertex_subset``.
    landmarks_2d: (B, L, 2) screen positions of the model's landmarks (L = 0 without any;
        the subset's own points with ``vertex_subset``).
    faces: (F, 3) int64 triangles (on the vertices' device); None with ``vertex_subset``.
    perspective_correct: whether the camera needs perspective-correct barycentrics.

    For models with a UV layout (``model.uv``; None otherwise and with ``vertex_subset``):
    uv: (Vt, 2) texture coordinates (OBJ: u right, v up); uv_faces: (F, 3) int64 indices
        into ``uv`` per triangle corner.
    irradiance: (B, V, 3) SH irradiance H(n) gamma, MoFA Eq. (4) with unit albedo (so
        ``colors == albedo * irradiance``); None with ``shade=False``.
    albedo_maps: an :class:`AlbedoMaps` (reflectance as texture maps, formed on first use)
        for models with ``albedo_texture``, else None; ``albedo_texture`` forms them.
    """

    verts: torch.Tensor
    verts_cam: torch.Tensor
    screen_verts: torch.Tensor
    normals: torch.Tensor | None
    albedo: torch.Tensor | None
    colors: torch.Tensor | None
    landmarks_2d: torch.Tensor
    faces: torch.Tensor | None
    perspective_correct: bool
    uv: torch.Tensor | None = None
    uv_faces: torch.Tensor | None = None
    irradiance: torch.Tensor | None = None
    albedo_maps: AlbedoMaps | None = None

    @property
    def albedo_texture(self) -> torch.Tensor | None:
        """(B, Ht, Wt, 3) reflectance maps (MoFA Eq. 3 per texel), or None without any."""
        return None if self.albedo_maps is None else self.albedo_maps.texture()


def _check_camera(camera, batch: int):
    if not isinstance(camera, cameras.CAMERA_TYPES):
        names = ", ".join(c.__name__ for c in cameras.CAMERA_TYPES)
        raise TypeError(f"camera: expected one of {names}, got {type(camera).__name__}")
    if camera.batch not in (1, batch):
        raise ValueError(f"camera: expected batch size 1 or B={batch}, got {camera.batch}")


def _check_params(model: MorphableModel, params: FaceParams) -> None:
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    if not isinstance(params, FaceParams):
        raise TypeError(f"params: expected a FaceParams, got {type(params).__name__}")
    for name, k_max in (("id", model.n_id), ("exp", model.n_exp), ("albedo", model.n_albedo)):
        k = getattr(params, name).shape[1]
        if k > k_max:
            raise ValueError(f"params.{name}: expected (B, K) with K <= {k_max} (model "
                             f"{model.name!r}), got {tuple(getattr(params, name).shape)}")
    V = model.num_vertices
    for name in ("vertex_offsets", "albedo_offsets"):
        t = getattr(params, name)
        if t is not None:
            check_shape(t, "B V 3", name=f"params.{name}", dims={"V": V})
    names = () if model.skeleton is None else model.skeleton.names
    for block, joints in JOINT_BLOCKS.items():
        if getattr(params, block) is not None and not set(joints) <= set(names):
            raise ValueError(f"params.{block}: model {model.name!r} has no joint "
                             f"{' / '.join(j for j in joints if j not in names)}")


def _blend(mean: torch.Tensor, basis: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """mean + basis[..., :k] @ coeffs for a batch: (V, 3), (V, 3, K), (B, k) -> (B, V, 3)."""
    k = coeffs.shape[1]
    return mean.unsqueeze(0) + torch.einsum("vdk,bk->bvd", basis[..., :k], coeffs)


def form(model: MorphableModel, params: FaceParams, camera, *, vertex_subset=None,
         geometry: Formation | None = None, shade: bool = True) -> Formation:
    """Form faces: geometry, pose, camera, normals, reflectance and SH shading (MoFA Eq. 5).

    model: a :class:`MorphableModel`; its bases are cast to the parameters' dtype/device.
    params: a :class:`FaceParams` of batch B.
    camera: :class:`~facelab.cameras.Pinhole`, :class:`~facelab.cameras.ScaledOrthographic`
        or :class:`~facelab.cameras.WeakPerspective`, batch 1 or B.
    vertex_subset: optional (S,) int64 vertex indices: only these vertices' positions are
        formed (O(S K) instead of O(V K)); normals, albedo, colours and faces are then None
        and ``landmarks_2d`` is the subset. ``"landmarks"``: the model's landmark points
        (:meth:`MorphableModel.landmark_points`: the vertices ``model.landmarks``, or with a
        landmark embedding the affine combinations of its support vertices, formed and
        skinned, then combined before the rigid pose) — what landmark fitting uses.
    geometry: optional earlier :class:`Formation` of the same model, camera and geometry
        blocks (id, exp, rotation, translation, joints, vertex offsets): its vertices, screen
        positions and normals are reused and only reflectance and shading are formed (MoFA
        Eqs. 3-4) — a fitter's colour stage, an albedo or light slider. The caller vouches
        that the geometry is unchanged; gradients then reach only albedo, offsets and gamma.
        With ``vertex_subset`` too, only those vertices are re-shaded (a photometric loss on
        the visible vertices); their normals and colours are then set, faces still None.
    shade: False leaves ``colors`` None (albedo and normals are formed): for a loss that
        shades inside its own fused op (:func:`facelab.losses.shaded_photometric_loss`).

    Returns a :class:`Formation`; differentiable in every float block of ``params`` and in the
    camera's tensors, through the compiled normals and SH ops.

    Validation happens once, here and in the constructors of ``params`` and ``camera``; the
    chain then runs on the ops' unvalidated entry points (the same arithmetic and kernels as
    :func:`facelab.cameras.model_to_camera`, :func:`facelab.vertex_normals` and
    :func:`facelab.sh_shade`), with one finite check on the camera-space vertices.
    """
    _check_params(model, params)
    B = params.batch_size
    _check_camera(camera, B)
    dt, dev = params.dtype, params.device
    m = _cast(model, dt, dev)
    camera = camera.to(dtype=dt, device=dev)
    rows = embed = None
    if isinstance(vertex_subset, str):
        if vertex_subset != "landmarks":
            raise ValueError(f"vertex_subset: expected (S,) vertex indices or 'landmarks', got "
                             f"{vertex_subset!r}")
        if m.landmarks is None:
            raise ValueError(f"vertex_subset: model {m.name!r} has no landmark annotation")
        if m.has_landmark_embedding:
            if geometry is not None:
                raise ValueError("vertex_subset: 'landmarks' of a model with a landmark "
                                 "embedding cannot be re-shaded (they are not vertices); form "
                                 "the whole mesh")
            embed = m.landmark_weights  # (L, K)
            vertex_subset = m.landmark_vertices.reshape(-1)  # (L K,) support
        else:
            vertex_subset = m.landmarks
    if vertex_subset is not None:
        rows, _ = as_tensor(vertex_subset, name="vertex_subset")
        check_shape(rows, "S", name="vertex_subset")
        if not _validated_subset(m, rows):  # a fitter passes the same subset every step
            check_indices(rows, m.num_vertices, name="vertex_subset")
        rows = rows.to(device=dev, dtype=torch.int64)
    if geometry is not None:
        return _reshade(m, params, geometry, rows, shade)
    arrays = {"mean": m.mean_shape, "id": m.id_basis, "exp": m.exp_basis,
              "skin": None if m.skeleton is None else m.skeleton.weights}
    if rows is not None:
        arrays = _subset_rows(m, rows)  # (S, ...) rows of each
    verts = _blend(arrays["mean"], arrays["id"], params.id)  # (B, V, 3), MoFA Eq. 2
    if params.exp.shape[1]:
        k = params.exp.shape[1]
        verts = verts + torch.einsum("vdk,bk->bvd", arrays["exp"][..., :k], params.exp)
    if params.vertex_offsets is not None:
        off = params.vertex_offsets
        verts = verts + (off if rows is None else off[:, rows])
    poses = params.joint_poses()
    if poses:
        verts = _skin(m, params, verts, poses, arrays["skin"], rows)
    if embed is not None:  # the landmark embedding: affine in the (skinned) vertices
        verts = torch.einsum("blkc,lk->blc", verts.unflatten(1, embed.shape), embed)
    verts_cam = _rigid(verts, params.rotation, params.translation)  # (B, V, 3), F (R X) + t
    check_finite(verts_cam, name="verts_cam (formed from params)")
    screen = camera._project(verts_cam)  # (B, V, 3) (u, v, depth)
    if rows is not None:
        return Formation(verts, verts_cam, screen, None, None, None, screen[..., :2], None,
                         camera.perspective_correct)
    faces = m.faces
    table = vertex_face_table(faces, m.num_vertices, dev)  # cached per faces tensor
    normals = VertexNormals.apply(verts_cam, table)  # (B, V, 3) camera space
    albedo = _reflectance(m, params)  # MoFA Eq. 3
    colors = ShShade.apply(albedo, normals, params.gamma) if shade else None  # MoFA Eq. 4
    lm = m.landmarks
    if lm is None:
        landmarks_2d = screen[:, :0, :2]
    elif m.has_landmark_embedding:  # points off the mesh: embed in 3-D, then project
        landmarks_2d = camera._project(m.landmark_points(verts_cam))[..., :2]
    else:
        landmarks_2d = screen[:, lm, :2]
    return Formation(verts, verts_cam, screen, normals, albedo, colors, landmarks_2d, faces,
                     camera.perspective_correct, *_texturing(m, params, normals, shade))


def _texturing(m: MorphableModel, params: FaceParams, normals: torch.Tensor, shade: bool):
    """(uv, uv_faces, irradiance, albedo_maps) of a formation; all None without a UV layout.

    The irradiance is H(n) gamma per vertex (MoFA Eq. 4 with unit albedo), interpolated over
    each triangle by :func:`render` — the shading the per-vertex colours already use, so a
    textured render differs from ``texture=False`` only in where the reflectance comes from.
    SH lighting of bands 0-2 is smooth: against per-pixel shading (interpolated normals,
    renormalised) the v1 teaching model at 256² differs by 1.4e-3 on average (a third of a
    grey level) and 0.03 at the 99th percentile; the 1.5 % of face pixels off by more than
    0.02 lie along the lips and the nose, where the normal turns within a triangle (at most
    0.13). Per-pixel shading costs ~20 times more (``benchmarks/bench_texture.py``).
    """
    if m.uv is None:
        return None, None, None, None
    irradiance = None
    if shade:
        irradiance = ShShade.apply(torch.ones_like(normals), normals, params.gamma)  # (B, V, 3)
    maps = AlbedoMaps(m, params.albedo, params.albedo_offsets) if m.has_texture else None
    return m.uv, m.uv_faces, irradiance, maps


def _reflectance(m: MorphableModel, params: FaceParams, rows=None) -> torch.Tensor:
    """Per-vertex albedo, MoFA Eq. (3), plus the free albedo offsets: (B, V or S, 3)."""
    if rows is None:
        albedo = _blend(m.mean_albedo, m.albedo_basis, params.albedo)
    else:
        sub = _subset_rows(m, rows)
        albedo = _blend(sub["albedo_mean"], sub["albedo"], params.albedo)
    off = params.albedo_offsets
    if off is None:
        return albedo
    return albedo + (off if rows is None else off[:, rows])


def _reshade(m: MorphableModel, params: FaceParams, geometry: Formation, rows,
             shade: bool) -> Formation:
    """:func:`form` with the geometry of an earlier formation: reflectance and shading only,
    on every vertex or on the subset ``rows`` (then the result is that subset's)."""
    if not isinstance(geometry, Formation) or geometry.normals is None:
        raise TypeError("geometry: expected a Formation of the whole mesh (not a vertex_subset)")
    check_shape(geometry.normals, "B V 3", name="geometry.normals",
                dims={"B": params.batch_size, "V": m.num_vertices})
    if geometry.normals.dtype != params.dtype:
        raise TypeError(f"geometry: expected dtype {params.dtype} (that of params), got "
                        f"{geometry.normals.dtype}")
    albedo = _reflectance(m, params, rows)
    normals = geometry.normals if rows is None else geometry.normals[:, rows]  # (B, V|S, 3)
    colors = ShShade.apply(albedo, normals, params.gamma) if shade else None  # MoFA Eq. 4
    if rows is None:
        _, _, irradiance, maps = _texturing(m, params, normals, shade)
        return geometry._replace(albedo=albedo, colors=colors, irradiance=irradiance,
                                 albedo_maps=maps)
    screen = geometry.screen_verts[:, rows]
    return Formation(geometry.verts[:, rows], geometry.verts_cam[:, rows], screen, normals,
                     albedo, colors, screen[..., :2], None, geometry.perspective_correct)


def _skin(m: MorphableModel, params: FaceParams, verts: torch.Tensor, poses: dict,
          weights: torch.Tensor, rows) -> torch.Tensor:
    """Linear blend skinning of the joint poses (FLAME Eq. 2) on all or a subset of rows."""
    from facelab.rotations import axis_angle_to_matrix

    sk = m.skeleton
    if sk.regressor is None or rows is None:
        joints = m.joint_positions(verts if rows is None else None)
        if joints.ndim == 2:
            joints = joints.expand(verts.shape[0], -1, -1)
    else:  # joints follow the whole shaped mesh, J = regressor @ V: linear in the blocks
        joints = _joint_positions(m, params)
    rotations = {name: axis_angle_to_matrix(p) for name, p in poses.items()}
    return blend_skinning(verts, sk, rotations, joints, weights)


def _joint_positions(m: MorphableModel, params: FaceParams) -> torch.Tensor:
    """regressor @ (mean + E_id a + E_exp d + offsets) without forming every vertex: (B, J, 3)."""
    reg = m.skeleton.regressor  # (J, V)
    bases = _JOINT_BASES.setdefault(m, {})
    if not bases:
        bases.update(mean=reg @ m.mean_shape, id=torch.einsum("jv,vdk->jdk", reg, m.id_basis),
                     exp=torch.einsum("jv,vdk->jdk", reg, m.exp_basis))
    joints = _blend(bases["mean"], bases["id"], params.id)
    if params.exp.shape[1]:
        joints = joints + torch.einsum("jdk,bk->bjd", bases["exp"][..., :params.exp.shape[1]],
                                       params.exp)
    if params.vertex_offsets is not None:
        joints = joints + torch.einsum("jv,bvd->bjd", reg, params.vertex_offsets)
    return joints


# model -> the skeleton regressor applied to the mean and bases (FLAME's J(beta) is linear).
_JOINT_BASES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def render(formation: Formation, height: int, width: int, *, background=None, colors=None,
           antialias: int = 1, cull_backfaces: bool = False, texture=None):
    """Rasterize a :class:`Formation`: ``(images (B, H, W, 3), mask (B, H, W) bool)``.

    height, width: image size in pixels.
    background: None (black), a (3,) colour or a (B, H, W, 3) image (e.g. the input photo).
    colors: optional (B, V, 3) per-vertex colours to paint instead of ``formation.colors``
        (albedo, a geometry shading, an error map); never textured.
    texture: what colours the surface —
        None (default): the formation's own reflectance maps when its model has them
        (``formation.albedo_texture``: pictures of a textured model), else per-vertex colours;
        False: per-vertex colours ``formation.colors`` (MoFA Eq. 4 per vertex: what the
        papers' losses and training corpora use);
        a (B, Ht, Wt, 3) or (1, Ht, Wt, 3) tensor: these maps over the model's UV layout
        (e.g. a texture extracted from a photo).
        Textured, a pixel p shows (T(uv(p)) + o(p)) * s(p): the UVs interpolated over
        ``uv_faces``, T looked up bilinearly (:func:`facelab.sample_texture`), the per-vertex
        albedo offsets o (own maps only) and the SH irradiance s (MoFA Eq. 4, unit albedo)
        interpolated like any attribute.
    antialias: supersampling factor s in [1, MAX_ANTIALIAS]: the face is rendered at
        (s H, s W) — the same camera with pixels s times smaller, so u and v scale by s and
        the depth is unchanged — and each s x s block is averaged (a box filter over the
        pixel's area), so silhouettes and colour edges get fractional coverage. 1 (default)
        is the plain rasterizer, as losses and training corpora use;
        :data:`PICTURE_ANTIALIAS` for figures. ``mask`` is then "any sample covered".
    Perspective-correct barycentrics (and UVs) when the camera is a pinhole. Differentiable in
    the colours, the texture, the lighting, the background and (interior pixels) the screen
    positions.
    """
    if not isinstance(formation, Formation):
        raise TypeError(f"formation: expected a Formation, got {type(formation).__name__}")
    if formation.faces is None:
        raise ValueError("formation: formed on a vertex_subset; form the whole mesh to render")
    s = check_int(antialias, name="antialias", minimum=1)
    if s > MAX_ANTIALIAS:
        raise ValueError(f"antialias: expected a factor in [1, {MAX_ANTIALIAS}], got {s}")
    maps, offsets = _surface_texture(formation, colors, texture)
    cols = formation.colors if colors is None else colors
    if maps is None and cols is None:
        raise ValueError("colors: the formation was formed with shade=False; pass colors=")

    def paint(screen, h, w, bg):
        if maps is None:
            return render_mesh(screen, formation.faces, cols, h, w, background=bg,
                               perspective_correct=formation.perspective_correct,
                               cull_backfaces=cull_backfaces)
        return render_textured_mesh(screen, formation.faces, formation.uv, formation.uv_faces,
                                    maps, formation.irradiance, h, w, albedo_offsets=offsets,
                                    background=bg,
                                    perspective_correct=formation.perspective_correct,
                                    cull_backfaces=cull_backfaces)

    if s == 1:
        return paint(formation.screen_verts, height, width, background)
    height = check_int(height, name="height", minimum=1)
    width = check_int(width, name="width", minimum=1)
    screen = formation.screen_verts
    scale = torch.tensor([s, s, 1], dtype=screen.dtype, device=screen.device)
    bg = background
    if bg is not None:
        bg, _ = as_tensor(bg, name="background")
        if bg.ndim == 4:  # each pixel's s x s samples see its own value: the mean returns it
            check_shape(bg, "B H W 3", name="background",
                        dims={"B": screen.shape[0], "H": height, "W": width})
            bg = bg.repeat_interleave(s, dim=1).repeat_interleave(s, dim=2)
    image, mask = paint(screen * scale, s * height, s * width, bg)
    B = image.shape[0]
    image = image.reshape(B, height, s, width, s, 3).mean(dim=(2, 4))  # (B, H, W, 3) box filter
    mask = mask.reshape(B, height, s, width, s).any(dim=4).any(dim=2)  # (B, H, W)
    return image, mask


def _surface_texture(formation: Formation, colors, texture):
    """(maps (B, Ht, Wt, 3) or None, albedo offsets or None) that :func:`render` paints.

    None maps: per-vertex colours. Validates an explicit ``texture`` and casts it to the
    formation's dtype and device.
    """
    if texture is False:
        return None, None
    if texture is None:
        if colors is not None or formation.albedo_maps is None:
            return None, None
        if formation.irradiance is None:
            raise ValueError("texture: the formation was formed with shade=False (no "
                             "irradiance); form it with shade=True or pass texture=False")
        maps = formation.albedo_maps
        return maps.texture(), maps.offsets
    if texture is True or not isinstance(texture, (torch.Tensor, np.ndarray)):
        raise TypeError(f"texture: expected None, False or a (B, Ht, Wt, 3) tensor, got "
                        f"{type(texture).__name__}")
    if colors is not None:
        raise ValueError("colors, texture: give per-vertex colours or a texture, not both")
    if formation.uv is None:
        raise ValueError("texture: the formation's model has no UV layout (uv, uv_faces); "
                         "render it with per-vertex colours")
    if formation.irradiance is None:
        raise ValueError("texture: the formation was formed with shade=False (no irradiance); "
                         "form it with shade=True")
    tex, _ = as_tensor(texture, name="texture")
    check_floating(tex, name="texture")
    B = formation.screen_verts.shape[0]
    check_shape(tex, "N Ht Wt 3", name="texture")
    if tex.shape[0] not in (1, B):
        raise ValueError(f"texture: expected (B, Ht, Wt, 3) with B=1 or {B}, got "
                         f"{tuple(tex.shape)}")
    screen = formation.screen_verts
    tex = tex.to(dtype=screen.dtype, device=screen.device)
    return tex.expand(B, -1, -1, -1), None


def default_camera(batch: int, height: int, width: int, *, fov_deg: float = DEFAULT_FOV_DEG,
                   distance: float = DEFAULT_DISTANCE_MM, dtype=torch.float32, device=None):
    """A pinhole camera that frames the built-in face, and the translation that places it.

    fov_deg: vertical field of view (degrees); distance: camera-to-model-origin distance (mm).
    Returns ``(camera, translation)``: a :class:`~facelab.cameras.Pinhole` of batch ``batch``
    and a (B, 3) camera-space translation (0, 0, distance) for :class:`FaceParams`.
    """
    batch = check_int(batch, name="batch", minimum=1)
    from facelab._checks import check_positive

    distance = check_positive(distance, name="distance")
    camera = cameras.Pinhole.from_fov(height, width, fov_deg=fov_deg, batch=batch, dtype=dtype,
                                      device=device)
    translation = torch.zeros(batch, 3, dtype=dtype, device=device)
    translation[:, 2] = distance
    return camera, translation


def render_preview(model: MorphableModel, id_coeffs=None, exp_coeffs=None, albedo_coeffs=None,
                   angles=(0.0, 0.0, 0.0), gamma=None, jaw: float | None = None,
                   size: int = 192, background=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """One quick look at the model: a single face, default camera, one call.

    id_coeffs: (k_id,) or None (mean identity); exp_coeffs: (k_exp,) or None (neutral);
    albedo_coeffs: (k_alb,) or None (mean reflectance) — coefficients ~N(0, 1).
    angles: (pitch, yaw, roll) in radians (:func:`facelab.rotations.head_rotation`).
    gamma: (1, 9, 3) or (9, 3) camera-space SH light, or None for a key light from the upper
        left of the camera plus ambient.
    jaw: jaw opening in radians (models with a jaw joint), or None.
    size: image height = width in pixels; background: (3,) colour.
    Rendered with :data:`PICTURE_ANTIALIAS` supersampling (anti-aliased edges).
    Returns the image, (size, size, 3) float32, without gradients (for teaching figures; use
    :func:`form` and :func:`render` for batches, gradients and every intermediate).
    """
    size = check_int(size, name="size", minimum=8)

    def coeffs(c, name):
        if c is None:
            return None
        t, _ = as_tensor(c, name=name, dtype=torch.float32)
        check_shape(t, "K", name=name)
        return t.reshape(1, -1)

    ang = torch.as_tensor(angles, dtype=torch.float32)
    check_shape(ang, "3", name="angles")
    check_finite(ang, name="angles")
    if gamma is None:
        from facelab.lighting import sh_from_direction

        gamma = sh_from_direction(torch.tensor([0.3, -0.3, -1.0]), 0.5, 0.6)
    g, _ = as_tensor(gamma, name="gamma", dtype=torch.float32)
    g = g.reshape(1, 9, 3) if g.shape == (9, 3) else g
    camera, t = default_camera(1, size, size)
    params = FaceParams(id=coeffs(id_coeffs, "id_coeffs"), exp=coeffs(exp_coeffs, "exp_coeffs"),
                        albedo=coeffs(albedo_coeffs, "albedo_coeffs"),
                        rotation=head_rotation(ang[None]), translation=t, gamma=g,
                        jaw=None if jaw is None else torch.tensor([[float(jaw), 0.0, 0.0]]),
                        dtype=torch.float32)
    with torch.no_grad():
        image, _ = render(form(model, params, camera), size, size,
                          background=torch.as_tensor(background, dtype=torch.float32),
                          antialias=PICTURE_ANTIALIAS)
    return image[0]
