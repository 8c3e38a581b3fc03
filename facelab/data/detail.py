"""Faces with detail outside the morphable model's span (Fan et al., Sec. IV-A's role).

Fan et al. train and test on FRGC v2.0 range scans registered to a template: real faces whose
noses, chins, wrinkles and asymmetries no PCA model of a few hundred people spans. Here the
same situation is built on the built-in model: a ground-truth mesh is

    S_hat = mean + E_id alpha + E_exp delta + D                         (model space, mm)

where D (V, 3) is a *detail field* the linear model cannot express: forehead wrinkles (a
sinusoid along the normals under a smooth window), random Gaussian bumps, a nose variant
(protrusion and width), a chin variant (protrusion and length) and a one-sided asymmetry.
The mesh is posed and lit at random and rendered through the one image-formation chain,
:func:`facelab.form` / :func:`facelab.render` (``FaceParams.vertex_offsets`` carries D),
under a scaled-orthographic camera, the ``Proj`` of the paper's Eq. (4).

:func:`out_of_span_fraction` measures how much of D the model cannot represent (the energy left
after the least-squares projection onto the identity and expression bases).

Sample ``i`` of a corpus with seed ``s`` depends only on ``(s, i)``: the base face, pose and
light come from :class:`facelab.data.SyntheticFaces` with that seed, the detail field from its
own generator seeded by ``(s, i)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from facelab._checks import as_tensor, check_floating, check_int, check_shape
from facelab.data.faces import FaceSampling, SyntheticFaces, random_backgrounds
from facelab.face_params import FaceParams
from facelab.formation import form, render
from facelab.model.morphable import MorphableModel
from facelab.normals import vertex_normals
from facelab.raster import vertex_visibility

__all__ = ["DetailFaces", "DetailSampling", "detail_field", "out_of_span_fraction"]

# iBUG-68 indices used to place the detail regions on the mean face.
_NOSE_TIP, _NOSE_BRIDGE, _CHIN, _BROWS = 30, 28, 8, tuple(range(17, 27))
_MOUTH = tuple(range(48, 68))


@dataclass(frozen=True)
class DetailSampling:
    """Distributions of the detail fields (lengths in mm, uniform ranges (low, high)).

    wrinkle_amplitude: forehead wrinkle depth; wrinkle_period: their wavelength.
    bumps: the number of Gaussian bumps is uniform in {0, .., bumps}; bump_amplitude (signed,
        along the normal) and bump_sigma their height and width.
    nose_protrusion: nose tip displacement along +z (sigma 7 mm); nose_hump: a dorsal hump on
        the bridge (sigma 5 mm); nose_width: relative widening of the nose region (a fraction
        of the distance to the nose axis).
    chin_protrusion: chin displacement along +z (sigma 10 mm); chin_cleft: depth of a narrow
        vertical groove in the chin (3 mm wide).
    asymmetry: signed displacement along the normal of one half of the lower face, with a
        sharp (4 mm) transition at the midline (side drawn at random).
    landmark_noise_px: std of the Gaussian noise added to the 2D landmarks given to methods
        (annotation noise; the paper's landmarks are labelled by hand).
    """

    wrinkle_amplitude: tuple[float, float] = (0.5, 2.0)
    wrinkle_period: tuple[float, float] = (10.0, 16.0)
    bumps: int = 3
    bump_amplitude: tuple[float, float] = (-4.0, 4.0)
    bump_sigma: tuple[float, float] = (5.0, 9.0)
    nose_protrusion: tuple[float, float] = (-4.0, 5.0)
    nose_hump: tuple[float, float] = (-1.0, 3.5)
    nose_width: tuple[float, float] = (-0.3, 0.3)
    chin_protrusion: tuple[float, float] = (-4.0, 4.0)
    chin_cleft: tuple[float, float] = (0.0, 2.5)
    asymmetry: tuple[float, float] = (-3.0, 3.0)
    landmark_noise_px: float = 0.5

    def __post_init__(self):
        for name in ("wrinkle_amplitude", "wrinkle_period", "bump_amplitude", "bump_sigma",
                     "nose_protrusion", "nose_hump", "nose_width", "chin_protrusion",
                     "chin_cleft", "asymmetry"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ValueError(f"{name}: expected finite (low, high) with low <= high, "
                                 f"got {(lo, hi)}")
        if self.wrinkle_period[0] <= 0 or self.bump_sigma[0] <= 0:
            raise ValueError("wrinkle_period, bump_sigma: expected positive ranges, got "
                             f"{self.wrinkle_period}, {self.bump_sigma}")
        check_int(self.bumps, name="bumps", minimum=0)
        if not (math.isfinite(self.landmark_noise_px) and self.landmark_noise_px >= 0):
            raise ValueError(f"landmark_noise_px: expected a finite number >= 0, got "
                             f"{self.landmark_noise_px}")


# The base population: near-frontal like FRGC (yaw within +-30 degrees), no jaw rotation so
# every ground-truth mesh is mean + linear blendshapes + detail (Eq. 4 fits the linear part).
DEFAULT_FACES = FaceSampling(yaw_deg=(-30.0, 30.0), pitch_deg=(-15.0, 15.0),
                             roll_deg=(-10.0, 10.0), jaw_max=0.0)


def _uniform(g: torch.Generator, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return lo + (hi - lo) * float(torch.rand(1, generator=g))


class _Frame:
    """The mean face's normals and region centres, computed once per model."""

    def __init__(self, model: MorphableModel):
        mean = model.mean_shape.to(torch.float32)  # (V, 3)
        self.mean = mean
        self.normals = vertex_normals(mean[None], model.faces)[0]  # (V, 3) model space
        lm = model.landmark_rows(mean)  # (68, 3) landmark points
        self.nose = lm[_NOSE_TIP]
        self.bridge = lm[_NOSE_BRIDGE]
        self.chin = lm[_CHIN] + torch.tensor([0.0, 8.0, 0.0])  # the chin's front, above 8
        self.mouth_y = float(lm[list(_MOUTH)][:, 1].mean())
        brows = lm[list(_BROWS)]
        self.forehead = brows.mean(0) + torch.tensor([0.0, 25.0, 0.0])
        self.brow_y = float(brows[:, 1].mean())
        mask = model.face_mask
        self.region = (torch.arange(mean.shape[0]) if mask is None
                       else torch.nonzero(mask.reshape(-1)).reshape(-1))


def _gauss(points: torch.Tensor, centre: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-|p - c|^2 / (2 sigma^2)) in the x-y plane of the face: (V,)."""
    d2 = ((points[:, :2] - centre[:2]) ** 2).sum(-1)
    return torch.exp(-d2 / (2 * sigma * sigma))


def detail_field(model: MorphableModel, generator: torch.Generator,
                 sampling: DetailSampling | None = None, *, frame: _Frame | None = None):
    """One random detail field D (V, 3) float32, model space (mm), and its components.

    model: the :class:`MorphableModel` whose mean face places the regions.
    generator: a CPU ``torch.Generator`` (the field depends only on its state).
    sampling: a :class:`DetailSampling`.
    Returns ``(D, parts)``: parts maps "wrinkles", "bumps", "nose", "chin", "asymmetry" to
    their (V, 3) fields (D is their sum) and "amounts" to the drawn scalars.
    """
    s = DetailSampling() if sampling is None else sampling
    if not isinstance(s, DetailSampling):
        raise TypeError(f"sampling: expected a DetailSampling, got {type(s).__name__}")
    f = frame if frame is not None else _Frame(model)
    g = generator
    p, n = f.mean, f.normals  # (V, 3), (V, 3)
    amounts = {}
    # wrinkles: A sin(2 pi y / period + phase) along the normal, under a forehead window
    a = _uniform(g, s.wrinkle_amplitude)
    period = _uniform(g, s.wrinkle_period)
    phase = 2 * math.pi * float(torch.rand(1, generator=g))
    window = (torch.exp(-((p[:, 0] - f.forehead[0]) / 40.0) ** 2)
              * torch.exp(-((p[:, 1] - f.forehead[1]) / 18.0) ** 2)
              * torch.sigmoid((p[:, 1] - f.brow_y - 5.0) / 2.0))  # above the brows
    wrinkles = (a * torch.sin(2 * math.pi * p[:, 1] / period + phase) * window)[:, None] * n
    amounts.update(wrinkle_amplitude=a, wrinkle_period=period)
    # bumps: Gaussian blobs along the normal at random face-region vertices
    count = int(torch.randint(s.bumps + 1, (1,), generator=g))
    bumps = torch.zeros_like(p)
    for _ in range(count):
        centre = p[f.region[int(torch.randint(len(f.region), (1,), generator=g))]]
        h, sigma = _uniform(g, s.bump_amplitude), _uniform(g, s.bump_sigma)
        bumps = bumps + (h * _gauss(p, centre, sigma))[:, None] * n
    amounts["bumps"] = count
    # nose: tip protrusion along +z, a dorsal hump, widening about the nose axis
    w_nose = _gauss(p, f.nose, 7.0)
    prot, hump = _uniform(g, s.nose_protrusion), _uniform(g, s.nose_hump)
    width = _uniform(g, s.nose_width)
    nose = torch.zeros_like(p)
    nose[:, 2] = prot * w_nose + hump * _gauss(p, f.bridge, 5.0)
    nose[:, 0] = width * (p[:, 0] - f.nose[0]) * _gauss(p, f.nose, 10.0)
    amounts.update(nose_protrusion=prot, nose_hump=hump, nose_width=width)
    # chin: protrusion along +z and a cleft (a narrow vertical groove) along the normal
    cz, cleft = _uniform(g, s.chin_protrusion), _uniform(g, s.chin_cleft)
    groove = (torch.exp(-((p[:, 0] - f.chin[0]) / 3.0) ** 2)
              * torch.exp(-((p[:, 1] - f.chin[1]) / 9.0) ** 2))
    chin = -(cleft * groove)[:, None] * n
    chin[:, 2] += cz * _gauss(p, f.chin, 10.0)
    amounts.update(chin_protrusion=cz, chin_cleft=cleft)
    # asymmetry: one half of the lower face pushed along its normal, sharp at the midline
    side = 1.0 if float(torch.rand(1, generator=g)) < 0.5 else -1.0
    h = _uniform(g, s.asymmetry)
    half = (torch.sigmoid(side * (p[:, 0] - f.nose[0]) / 2.0)
            * torch.exp(-((p[:, 1] - f.mouth_y) / 30.0) ** 2))
    asym = (h * half)[:, None] * n
    amounts.update(asymmetry=h, asymmetry_side=side)
    parts = {"wrinkles": wrinkles, "bumps": bumps, "nose": nose, "chin": chin,
             "asymmetry": asym}
    total = wrinkles + bumps + nose + chin + asym
    return total, {**parts, "amounts": amounts}


def out_of_span_fraction(model: MorphableModel, offsets, *, mask=None) -> torch.Tensor:
    """Fraction of each offset field's energy the model's bases cannot represent.

    offsets: (B, V, 3) float displacement fields D (mm).
    mask: optional (V,) bool vertices to measure on (default: the model's face mask).
    Returns (B,): ``|D - P D|^2 / |D|^2`` with P the least-squares projection onto the span of
    the identity and expression bases (0: fully expressible, 1: orthogonal to the model).
    """
    d, _ = as_tensor(offsets, name="offsets")
    check_shape(d, "B V 3", name="offsets", dims={"V": model.num_vertices})
    check_floating(d, name="offsets")
    basis = torch.cat([model.id_basis, model.exp_basis], dim=2).to(torch.float64)  # (V, 3, K)
    if mask is None:
        mask = model.face_mask
    rows = (torch.arange(model.num_vertices) if mask is None
            else torch.nonzero(torch.as_tensor(mask).reshape(-1)).reshape(-1))
    A = basis[rows].reshape(-1, basis.shape[2])  # (3R, K)
    y = d.to(torch.float64)[:, rows].reshape(d.shape[0], -1).T  # (3R, B)
    coef = torch.linalg.lstsq(A, y).solution  # (K, B)
    resid = y - A @ coef
    return ((resid ** 2).sum(0) / (y ** 2).sum(0).clamp_min(1e-12)).to(d.dtype)


class DetailFaces:
    """A corpus of rendered faces whose ground truth carries detail outside the model.

    model: a :class:`MorphableModel` (pin ``load_model("synthetic", "teaching", version=1)``
        when results are recorded).
    size: image height = width (pixels). length: number of samples. seed: sample ``i``
        depends only on ``(seed, i)``.
    faces: the base population (:class:`facelab.data.FaceSampling`; default near-frontal,
        no jaw rotation). detail: a :class:`DetailSampling`.

    :meth:`batch` renders consecutive samples through :func:`facelab.form` /
    :func:`facelab.render` under the scaled-orthographic camera.
    """

    def __init__(self, model: MorphableModel, size: int = 64, length: int = 100, seed: int = 0,
                 faces: FaceSampling | None = None, detail: DetailSampling | None = None):
        if not isinstance(model, MorphableModel):
            raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
        self.detail = DetailSampling() if detail is None else detail
        if not isinstance(self.detail, DetailSampling):
            raise TypeError(f"detail: expected a DetailSampling, got "
                            f"{type(self.detail).__name__}")
        faces = DEFAULT_FACES if faces is None else faces
        self.base = SyntheticFaces(model, size=size, length=length, seed=seed, sampling=faces,
                                   camera="scaled_orthographic")
        self.model = self.base.model  # float32
        self.size, self.length, self.seed = self.base.size, self.base.length, self.base.seed
        self._frame = _Frame(self.model)

    def __len__(self) -> int:
        return self.length

    def _generator(self, index: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + index + 7_777_777)

    def batch(self, start: int = 0, count: int | None = None) -> dict:
        """Render samples ``start .. start + count - 1`` (default: to the end).

        Returns a dict of tensors, batch first:
        image (B, H, W, 3) float32 in [0, 1]; mask (B, H, W) bool;
        verts (B, V, 3) ground truth S_hat, model space (mm); base (B, V, 3) its in-model part
        mean + E_id alpha + E_exp delta; detail (B, V, 3) = verts - base;
        landmarks_2d (B, 68, 2) pixels (y down) of the ground truth with annotation noise;
        landmarks_true (B, 68, 2) the same without noise;
        id (B, Kid), exp (B, Kexp), rotation (B, 3, 3), scale (B,) pixels per mm,
        offset (B, 2) pixels (:class:`facelab.cameras.ScaledOrthographic`), angles (B, 3);
        screen_verts (B, V, 3); visible (B, V) bool.
        """
        start = check_int(start, name="start", minimum=0)
        count = self.length - start if count is None else check_int(count, name="count",
                                                                    minimum=1)
        params, camera, extras = self.base.sample(start, count)
        m, size = self.model, self.size
        fields, noise = [], []
        for k in range(count):
            g = self._generator(start + k)
            d, _ = detail_field(m, g, self.detail, frame=self._frame)
            fields.append(d)
            noise.append(torch.randn(len(m.landmarks), 2, generator=g))
        detail = torch.stack(fields)  # (B, V, 3)
        params = FaceParams(id=params.id, exp=params.exp, albedo=params.albedo,
                            rotation=params.rotation, translation=params.translation,
                            gamma=params.gamma, vertex_offsets=detail)
        with torch.no_grad():
            formed = form(m, params, camera)
            bg = torch.cat([random_backgrounds(1, size, torch.Generator().manual_seed(sd))
                            for sd in extras["background_seed"]])
            image, mask = render(formed, size, size, background=bg)
            visible = vertex_visibility(formed.screen_verts, m.faces, size, size)
        lm = formed.landmarks_2d
        out = dict(image=image.clamp(0, 1), mask=mask, verts=formed.verts,
                   base=formed.verts - detail, detail=detail,
                   landmarks_2d=lm + self.detail.landmark_noise_px * torch.stack(noise),
                   landmarks_true=lm, id=params.id, exp=params.exp, rotation=params.rotation,
                   scale=camera.scale.expand(count), offset=camera.offset.expand(count, 2),
                   angles=extras["angles"], screen_verts=formed.screen_verts, visible=visible)
        return {k: v.detach() for k, v in out.items()}
