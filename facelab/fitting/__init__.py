"""Fit the morphable model to real photos and videos (optimisation, coarse to fine).

* :func:`fit_image` / :class:`FitResult` / :class:`FitSettings` — one photo;
* :func:`fit_video` — frame by frame, identity shared, warm starts;
* :mod:`~facelab.fitting.crop` — face box and the normalised crop;
* :mod:`~facelab.image_io` — photo validation, reading images and video frames;
* :mod:`~facelab.fitting.texture` — :func:`extract_texture`: the photo's colours baked into
  the model's UV layout (visibility-weighted, mirror fill for the hidden side);
* :mod:`~facelab.fitting.views` — overlays, the side-by-side panels, novel views.
"""

from facelab.fitting.crop import crop_image, face_box, from_crop, to_crop
from facelab.fitting.fit_image import FitResult, FitSettings, fit_image
from facelab.fitting.fit_video import TRACK_SETTINGS, fit_video
from facelab.fitting.pose_init import pose_from_landmarks
from facelab.fitting.texture import ExtractedTexture, cylindrical_uv, extract_texture
from facelab.image_io import as_rgb_image, read_image, read_video

__all__ = ["TRACK_SETTINGS", "ExtractedTexture", "FitResult", "FitSettings", "as_rgb_image",
           "crop_image", "cylindrical_uv", "extract_texture", "face_box", "fit_image", "fit_video",
           "from_crop", "pose_from_landmarks", "read_image", "read_video", "to_crop"]
