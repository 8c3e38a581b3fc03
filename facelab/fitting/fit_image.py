"""Fit the morphable model to one photo by optimisation (analysis by synthesis, coarse to fine).

The energy is MoFA's (Sec. 6, Eq. 7) minimised per image by Adam instead of learned by an
encoder:

    E = w_land E_land (Eq. 9) + w_photo E_photo (Eq. 8) + w_reg E_reg (Eq. 10).

Three stages, each a few dozen Adam steps on a (crop_size)² crop around the face:

1. **pose** — closed-form rotation/translation from the landmarks
   (:func:`facelab.fitting.pose_init.pose_from_landmarks`), refined on E_land alone;
2. **shape** — pose + identity + expression on E_land + E_reg (identity/expression priors);
3. **colour** — reflectance + SH illumination on E_photo over the visible face vertices
   (:func:`facelab.raster.vertex_visibility` ∧ the model's face mask) + the reflectance prior,
   geometry fixed;
4. **refine** — everything at once on the full energy E (photometric geometry refinement,
   :class:`facelab.fitting.refine.RefineStage`): the pixels now move the shape and pose too.

Camera: a pinhole with vertical field of view ``fov_deg`` (default 16°, as
:func:`facelab.default_camera`) on the crop, principal point at the crop
centre; mapped back to the photo it has focal ``f · side / crop_size`` and principal point
``box corner + (crop centre) · side / crop_size`` (:class:`FitResult` stores both frames).
The model → camera map includes the flip diag(1, −1, −1) (:func:`facelab.cameras.model_to_camera`).

Landmark units: E_land is the confidence-weighted *mean* of squared errors in crop pixels
(MoFA's Eq. 9 sums; the mean keeps the weights independent of the number of points), so
w_land = 1 makes a 2 px error cost 4. The other weights are facelab's, tuned on the synthetic
model (MoFA's absolute values depend on its own image and landmark scaling).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from facelab import cameras
from facelab._checks import as_tensor, check_finite, check_floating, check_shape
from facelab.face_params import FaceParams
from facelab.fitting.crop import DEFAULT_CROP_SIZE, crop_image, face_box, to_crop
from facelab.fitting.energies import ColourEnergy, FlatAdam, LandmarkEnergy
from facelab.fitting.pose_init import pose_from_landmarks
from facelab.fitting.pose_step import pose_from_unknowns
from facelab.fitting.refine import RefineSettings, RefineStage
from facelab.formation import Formation, _cast, form
from facelab.image_io import as_rgb_image
from facelab.lighting import ambient_sh
from facelab.losses import PriorWeights, photometric_loss
from facelab.metrics import nme
from facelab.model.morphable import MorphableModel
from facelab.progress import track
from facelab.raster import vertex_visibility
from facelab.rotations import matrix_to_euler

__all__ = ["FitResult", "FitSettings", "fit_image"]


@dataclass(frozen=True)
class FitSettings:
    """Settings of :func:`fit_image` (explicit and typed; pass by keyword).

    crop_size: side of the normalised crop (pixels; MoFA's 224).
    fov_deg: vertical field of view of the pinhole camera on the crop (degrees).
    box_scale: crop side / landmark box size (see :func:`facelab.fitting.crop.face_box`).
    n_id, n_exp, n_albedo: leading modes fitted (fewer is faster and better conditioned but
        less accurate in 3D; the default 100 / 50 are all of the version 2 head's, see
        :mod:`facelab.fitting.evaluate3d` for the measured difference).
    steps_pose, steps_shape, steps_color: Adam steps of the three stages.
    lr_pose, lr_shape, lr_color: Adam step sizes (pose is parametrised in radians and
        relative depth; coefficients are ~N(0, 1)).
    w_land, w_photo: weights of E_land (mean squared crop pixels) and E_photo (MoFA Eq. 8,
        colour units in [0, 1]).
    w_reg: weight of E_reg; ``prior`` splits it per term (MoFA's relative weights by default).
    refine: the fourth stage's :class:`~facelab.fitting.refine.RefineSettings`
        (``RefineSettings(steps=0)`` or None: three stages only).
    """

    crop_size: int = DEFAULT_CROP_SIZE
    fov_deg: float = 16.0
    box_scale: float = 1.6
    n_id: int = 100
    n_exp: int = 50
    n_albedo: int = 40
    steps_pose: int = 20
    steps_shape: int = 100
    steps_color: int = 60
    lr_pose: float = 0.003
    lr_shape: float = 0.05
    lr_color: float = 0.1
    w_land: float = 1.0
    w_photo: float = 50.0
    w_reg: float = 0.05
    prior: PriorWeights = field(default_factory=lambda: PriorWeights(id=1.0, exp=0.8, albedo=0.2))
    refine: RefineSettings | None = field(default_factory=RefineSettings)


@dataclass(eq=False)
class FitResult:
    """What :func:`fit_image` found: the fitted :class:`FaceParams`, the camera in the photo's
    pixels and the :class:`Formation` they give (all batch 1), plus the fit's diagnostics.

    ``params`` has the model's full coefficient lengths (zeros past the fitted modes) and a
    camera-space SH light; ``camera`` is the :class:`~facelab.cameras.Pinhole` of the photo
    (the crop's camera mapped back: focal ``f · side / crop_size``, principal point ``box
    corner + crop centre · side / crop_size``); ``formation`` is ``form(model, params, camera)``.
    ``box (4,)`` is the crop box (x0, y0, x1, y1), ``crop_size`` its side in the fit.
    Unbatched views, for convenience: ``id_coeffs (Kid,)``, ``exp_coeffs (Kexp,)``,
    ``albedo_coeffs (Kalb,)``, ``gamma (9, 3)``, ``rotation (3, 3)``, ``angles (3,)``
    (pitch, yaw, roll, radians, "xyz"), ``translation (3,)`` mm, ``focal (2,)``,
    ``principal (2,)``; ``verts (V, 3)`` model space (unposed), ``verts_cam (V, 3)``,
    ``screen_verts (V, 3)`` (u, v, depth) photo pixels, ``albedo (V, 3)``, ``colors (V, 3)``
    (MoFA Eq. 4), ``landmarks (68, 2)`` photo pixels. Also ``visible (V,)``,
    ``target_landmarks (68, 2)``, ``confidence (68,)``, ``nme_init`` / ``nme_final``
    (bbox-normalised NME after the closed-form pose and at the end), ``losses`` (final value
    of each term), ``history`` (term -> per-step list) and ``seconds`` (wall time).
    Tensors are float32 on the CPU.
    """

    model: MorphableModel
    params: FaceParams
    camera: cameras.Pinhole
    formation: Formation
    box: torch.Tensor
    crop_size: int
    image_size: tuple[int, int]
    visible: torch.Tensor
    target_landmarks: torch.Tensor
    confidence: torch.Tensor
    nme_init: float
    nme_final: float
    losses: dict
    history: dict
    seconds: float

    id_coeffs = property(lambda self: self.params.id[0])
    exp_coeffs = property(lambda self: self.params.exp[0])
    albedo_coeffs = property(lambda self: self.params.albedo[0])
    gamma = property(lambda self: self.params.gamma[0])
    rotation = property(lambda self: self.params.rotation[0])
    translation = property(lambda self: self.params.translation[0])
    angles = property(lambda self: matrix_to_euler(self.params.rotation, convention="xyz")[0])
    focal = property(lambda self: self.camera.focal[0])
    principal = property(lambda self: self.camera.principal[0])
    verts = property(lambda self: self.formation.verts[0])
    verts_cam = property(lambda self: self.formation.verts_cam[0])
    screen_verts = property(lambda self: self.formation.screen_verts[0])
    albedo = property(lambda self: self.formation.albedo[0])
    colors = property(lambda self: self.formation.colors[0])
    landmarks = property(lambda self: self.formation.landmarks_2d[0])

    def __repr__(self) -> str:
        yaw, pitch = (float(a) * 57.29578 for a in (self.angles[1], self.angles[0]))
        return (f"FitResult(model={self.model.name!r}, image={self.image_size}, "
                f"yaw={yaw:+.1f} deg, pitch={pitch:+.1f} deg, "
                f"nme {100 * self.nme_init:.2f}% -> {100 * self.nme_final:.2f}%, "
                f"{self.seconds:.2f} s)")

    def parameters(self) -> dict:
        """The fitted parameters as NumPy arrays (what ``facelab fit`` saves to ``.npz``)."""
        names = ("id_coeffs", "exp_coeffs", "albedo_coeffs", "gamma", "rotation", "angles",
                 "translation", "focal", "principal", "box", "landmarks", "target_landmarks")
        out = {n: getattr(self, n).detach().cpu().numpy() for n in names}
        out["image_size"] = torch.tensor(self.image_size).numpy()
        return out


def _check_landmarks(landmarks, confidence):
    lm, _ = as_tensor(landmarks, name="landmarks")
    if lm.ndim == 3 and lm.shape[0] == 1:
        lm = lm[0]
    check_shape(lm, "68 2", name="landmarks")
    check_floating(lm, name="landmarks")
    check_finite(lm, name="landmarks")
    if confidence is None:
        from facelab.landmarks import landmark_confidence

        conf = landmark_confidence(torch.float64)
    else:
        conf, _ = as_tensor(confidence, name="confidence")
        check_shape(conf, "68", name="confidence")
        check_floating(conf, name="confidence")
        check_finite(conf, name="confidence")
        if bool((conf < 0).any()) or float(conf.sum()) <= 0:
            raise ValueError("confidence: expected values >= 0 with a positive sum")
    return lm.to(torch.float64), conf.to(torch.float64)


def _detect(image):
    from facelab.landmarks import detect

    det = detect(image)
    if det is None:
        raise ValueError("image: no face found by MediaPipe; pass landmarks=(68, 2) iBUG "
                         "points yourself, or try a larger, more frontal, better lit photo")
    return torch.from_numpy(det.landmarks)


def fit_image(image, model: MorphableModel | None = None, landmarks=None, *, confidence=None,
              settings: FitSettings | None = None, init: FitResult | None = None,
              fit_identity: bool = True, callback=None) -> FitResult:
    """Fit ``model`` to a photo: pose, identity, expression, reflectance and SH light.

    image: (H, W, 3) RGB, uint8 or float in [0, 1], NumPy or torch (see
        :func:`facelab.image_io.as_rgb_image` for what is refused and why).
    model: a :class:`MorphableModel` with iBUG-68 landmarks; default
        ``load_model("synthetic", resolution="teaching")``.
    landmarks: (68, 2) iBUG points in photo pixels (x right, y down), or None to detect them
        with MediaPipe (:func:`facelab.landmarks.detect`, the ``facelab[landmarks]`` extra).
    confidence: (68,) weights c_j of MoFA Eq. (9); default
        :data:`facelab.landmarks.LANDMARK_CONFIDENCE` (jaw contour 0.3, the rest 1).
    settings: :class:`FitSettings`.
    init: a previous :class:`FitResult` to warm-start from (video): its coefficients are the
        starting point, and its shape (not the mean face) feeds the closed-form pose.
    fit_identity: False keeps identity and reflectance at ``init``'s values (video frames
        after the identity is known); requires ``init``.
    callback: None (tqdm bar) or a :mod:`facelab.progress` callback, e.g.
        ``facelab.widgets.ConvergencePlot()``; receives the terms "land", "reg", "photo".

    Runs on the CPU in float32 (a CUDA or float64 photo is converted). Every step evaluates
    the stage's energy and its gradient in closed form (:mod:`facelab.fitting.energies`; no
    autograd graph, one Adam update of a flat vector; the refinement on the photometric region
    of :func:`facelab.fitting.refine.photometric_region`), with the iterates of the autograd
    formulation (the same fit to ~1e-7 in NME). Astronaut photo, teaching model, one thread,
    kernels loaded, on the shared 2-core machine (``benchmarks/bench_fit.py``, load 3.5):
    0.25 s wall / 0.18 s CPU per fit (median), 0.07 s CPU for the three stages alone, against
    0.90 s / 0.62 s for the autograd formulation in the same run. Returns a :class:`FitResult`.
    Raises ``ValueError`` when no face is found, or when a stage diverges (non-finite
    parameters; checked once per stage).

    The fit runs torch on one thread (restored afterwards): its tensors are tiny, so a
    parallel region costs more than it saves, and torch's OpenMP workers spin between the
    steps — the warm astronaut fit at torch's 2 threads took 4.6 s wall (2.0 s CPU) against
    0.31 s (0.15 s CPU) with 1 (load 5-6). Numba's kernels keep their threads.
    """
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    try:
        return _fit_image(image, model, landmarks, confidence=confidence, settings=settings,
                          init=init, fit_identity=fit_identity, callback=callback)
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


def _fit_image(image, model, landmarks, *, confidence, settings, init, fit_identity,
               callback) -> FitResult:
    """:func:`fit_image`'s body (torch already on one thread)."""
    settings = FitSettings() if settings is None else settings
    if not isinstance(settings, FitSettings):
        raise TypeError(f"settings: expected FitSettings, got {type(settings).__name__}")
    if settings.refine is not None and not isinstance(settings.refine, RefineSettings):
        raise TypeError(f"settings.refine: expected RefineSettings or None, got "
                        f"{type(settings.refine).__name__}")
    if not fit_identity and init is None:
        raise ValueError("fit_identity: False needs init=FitResult with the identity to keep")
    t_start = time.perf_counter()
    img = as_rgb_image(image).cpu()  # (H, W, 3) float32; fitting runs on the CPU
    if model is None:
        from facelab.model.registry import load_model

        model = load_model("synthetic", resolution="teaching")
    if model.landmarks is None:
        raise ValueError(f"model: {model.name!r} has no landmark annotation to fit")
    targets_img, conf = _check_landmarks(_detect(img) if landmarks is None else landmarks,
                                         confidence)
    S = settings.crop_size
    box = face_box(targets_img, scale=settings.box_scale)  # (4,) float64
    crop = crop_image(img, box.to(torch.float32), S)  # (S, S, 3)
    targets = to_crop(targets_img, box, S)  # (68, 2) crop pixels
    dt = torch.float32
    m = _cast(model, dt, torch.device("cpu"))  # the model itself when float32 (cached copy else)
    focal, principal = cameras.intrinsics_from_fov(settings.fov_deg, S, S, dtype=dt)  # (1, 2)
    k_id, k_exp, k_alb = (min(settings.n_id, m.n_id), min(settings.n_exp, m.n_exp),
                          min(settings.n_albedo, m.n_albedo))

    if init is not None:
        id0 = init.id_coeffs[:k_id].to(dt)
        exp0 = init.exp_coeffs[:k_exp].to(dt)
        alb0 = init.albedo_coeffs[:k_alb].to(dt)
        gamma0 = init.gamma.to(dt)
        # the pose is re-initialised in closed form from this frame's landmarks, with the
        # warm-start shape (identity + expression) instead of the mean face
        X0 = (m.landmark_rows(m.mean_shape) + m.landmark_rows(m.id_basis[:, :, :k_id]) @ id0
              + m.landmark_rows(m.exp_basis[:, :, :k_exp]) @ exp0)  # (68, 3)
        R0, t0 = pose_from_landmarks(X0.to(torch.float64), targets, focal[0], principal[0],
                                     conf)
        R0, t0 = R0.to(dt), t0.to(dt)
    else:
        id0 = torch.zeros(k_id, dtype=dt)
        exp0 = torch.zeros(k_exp, dtype=dt)
        alb0 = torch.zeros(k_alb, dtype=dt)
        gamma0 = ambient_sh(0.8, dtype=dt)
        X0 = m.landmark_rows(m.mean_shape)  # (68, 3)
        R0, t0 = pose_from_landmarks(X0.to(torch.float64), targets, focal[0], principal[0],
                                     conf)
        R0, t0 = R0.to(dt), t0.to(dt)

    targets_f, conf_f = targets.to(dt), conf.to(dt)
    camera = cameras.Pinhole(focal, principal)  # the crop's camera
    # the unknowns as two flat vectors, stepped by closed-form gradients (energies.py):
    # x = (pose residual δR (3), relative shift s (3), identity (k_id), expression (k_exp)),
    # y = (SH light γ (27), reflectance (k_alb))
    x = torch.cat([torch.zeros(6, dtype=dt), id0, exp0])
    y = torch.cat([gamma0.reshape(-1), alb0])
    landmarks = LandmarkEnergy(m, k_id, k_exp, focal[0], principal[0], targets_f, conf_f, R0,
                               t0, prior=settings.prior, w_land=settings.w_land,
                               w_reg=settings.w_reg, fit_identity=fit_identity)

    def face_params() -> FaceParams:
        """The current unknowns as FaceParams (B = 1, no gradient; a copy, not views)."""
        with torch.no_grad():
            R, t = pose_from_unknowns(x[:3], x[3:6], R0, t0)
        xc, yc = x.clone(), y.clone()
        return FaceParams(id=xc[None, 6:6 + k_id], exp=xc[None, 6 + k_id:], rotation=R[None],
                          translation=t[None], albedo=yc[None, 27:],
                          gamma=yc[:27].view(1, 9, 3))

    def check_stage(name: str) -> None:
        # one check per stage instead of one per step: a diverged stage leaves NaN/Inf here
        if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())):
            raise ValueError(f"fit_image: the {name} stage diverged (non-finite parameters); "
                             f"try smaller learning rates in settings")

    nme_init = float(nme(landmarks.points(x)[None], targets_f[None])[0])

    schedule = (["pose"] * settings.steps_pose + ["shape"] * settings.steps_shape
                + ["color"] * settings.steps_color
                + ["refine"] * (settings.refine.steps if settings.refine is not None else 0))
    history: dict[str, list[float]] = {"land": [], "reg": [], "photo": []}
    optimizer, stage, colour, refiner = None, None, None, None
    pose_slice, id_slice, exp_slice = slice(0, 6), slice(6, 6 + k_id), slice(6 + k_id, None)
    progress = track(schedule, callback=callback, desc="fit_image")
    for name in progress:
        if name != stage:
            if stage is not None:
                check_stage(stage)
            stage = name
            if stage == "pose":
                optimizer = FlatAdam(x, [(pose_slice, settings.lr_pose)])
            elif stage == "shape":
                optimizer = FlatAdam(x, [(pose_slice, settings.lr_pose),
                                         (exp_slice, settings.lr_shape)]
                                     + ([(id_slice, settings.lr_shape)] if fit_identity else []))
            elif stage == "color":
                # geometry is fixed from here: formed once (with its visible face vertices),
                # then every step re-forms only reflectance and shading on it
                with torch.no_grad():
                    geo = form(m, face_params(), camera)
                    vis = vertex_visibility(geo.screen_verts, m.faces, S, S)[0] & m.face_mask
                    sel = vis.nonzero()[:, 0]  # (Vv,) the visible face vertices
                colour = ColourEnergy(m, sel, k_alb, crop, geo.screen_verts[:, sel, :2],
                                      geo.normals[:, sel], prior=settings.prior,
                                      w_photo=settings.w_photo, w_reg=settings.w_reg)
                optimizer = FlatAdam(y, [(slice(0, 27), settings.lr_color)]
                                     + ([(slice(27, None), settings.lr_color)]
                                        if fit_identity else []))
            else:  # stage 4: its own parameters and optimiser (refine.py)
                refiner = RefineStage(m, crop, camera, face_params(), targets_f, conf_f,
                                      settings.refine, fit_identity=fit_identity)
        if stage == "refine":
            losses = refiner.step()
        elif stage == "color":  # MoFA Eqs. 3, 4, 8 (one fused op) + the reflectance prior
            e_photo, e_reg, _, grad = colour(y)
            optimizer.step(y, grad)
            losses = {"photo": e_photo, "reg": e_reg}
        else:  # Eq. 9 on the 68 landmarks (+ the identity / expression prior, Eq. 10)
            e_land, e_reg, _, grad = landmarks(x, with_prior=stage == "shape")
            optimizer.step(x, grad)
            losses = {"land": e_land, "reg": e_reg} if stage == "shape" else {"land": e_land}
        for k, v in losses.items():
            history[k].append(float(v))
        progress.log(losses)
    if stage is not None and stage != "refine":
        check_stage(stage)

    def landmark_term(points):
        r2 = ((points[0] - targets_f) ** 2).sum(-1)  # (68,)
        return (conf_f * r2).sum() / conf_f.sum()

    def full(c, k_total):
        out = torch.zeros(1, k_total, dtype=dt)
        out[0, : c.shape[0]] = c.detach()
        return out

    with torch.no_grad():
        fitted = face_params() if refiner is None else refiner.params().detach()
        crop_formed = form(m, fitted, camera)
        vis = vertex_visibility(crop_formed.screen_verts, m.faces, S, S)[0] & m.face_mask
        e_land = float(landmark_term(crop_formed.landmarks_2d))
        e_photo = float(photometric_loss(crop[None], crop_formed.screen_verts[..., :2],
                                         crop_formed.colors, vis[None].to(dt)))
        nme_final = float(nme(crop_formed.landmarks_2d, targets_f[None])[0])
        # the same camera in photo pixels: the crop is a scaled, shifted window of the photo
        scale = float(box[2] - box[0]) / S  # photo pixels per crop pixel
        photo_camera = cameras.Pinhole(focal * scale, box[None, :2].to(dt) + principal * scale)
        result_params = fitted.replace(id=full(fitted.id[0], m.n_id),
                                       exp=full(fitted.exp[0], m.n_exp),
                                       albedo=full(fitted.albedo[0], m.n_albedo))
        formation = form(m, result_params, photo_camera)

    return FitResult(
        model=model, params=result_params, camera=photo_camera, formation=formation,
        box=box.to(dt), crop_size=S, image_size=(int(img.shape[0]), int(img.shape[1])),
        visible=vis, target_landmarks=targets_img.to(dt), confidence=conf.to(dt),
        nme_init=nme_init, nme_final=nme_final,
        losses={"land": e_land, "photo": e_photo,
                "reg": history["reg"][-1] if history["reg"] else 0.0},
        history=history, seconds=time.perf_counter() - t_start)
