"""``MotionLatentExplorer``: move one latent dimension of a motion prior and watch the motion.

HuMoR-Face (:mod:`facelab.methods.motion_prior`) samples z_t = μ_p(x_t) + σ_p(x_t) ⊙ u with
u ~ N(0, I). Here u is held fixed instead: zero except one dimension at a chosen value, for every
frame, and the motion from a start state is re-decoded whenever a slider moves. The figure shows
three frames as meshes (:func:`facelab.methods.motion_prior.meshes_from_states`), the head's
yaw and pitch (from the nose direction) and the inner-lip opening over time.
"""

from __future__ import annotations

import numpy as np
import torch

from facelab._checks import check_int
from facelab.widgets import static

__all__ = ["MotionLatentExplorer"]


class MotionLatentExplorer:
    """Sliders over one latent dimension of a trained HuMoR-Face model.

    net: a trained :class:`facelab.methods.motion_prior.MotionPriorCVAE`. model: the
        morphable model its states were made with (version 1). start: (420,) start state.
    projection: a :class:`facelab.methods.motion_prior.sampling.FaceProjection` or None.
    frames: transitions decoded per redraw (default 90 = 3 s at 30 fps).

    State: ``dim`` (IntSlider), ``value`` (FloatSlider, in units of the prior's std),
    ``states`` ((frames + 1, 420) of the current setting), ``redraws``, ``widget``.
    """

    def __init__(self, net, model, start, projection=None, *, frames: int = 90):
        import ipywidgets as w

        from facelab.methods.motion_prior import MotionPriorCVAE

        if not isinstance(net, MotionPriorCVAE):
            raise TypeError(f"net: expected a MotionPriorCVAE, got {type(net).__name__}")
        self.net, self.model, self.projection = net, model, projection
        self.start = torch.as_tensor(start, dtype=torch.float32)
        self.frames = check_int(frames, name="frames", minimum=2)
        self.dim = w.IntSlider(value=0, min=0, max=net.latent - 1, description="latent dim")
        self.value = w.FloatSlider(value=2.0, min=-3.0, max=3.0, step=0.5,
                                   description="offset (σ)")
        self.output = w.Output()
        self.redraws = 0
        self.states = self.decode()
        self.widget = w.VBox([w.HBox([self.dim, self.value]), self.output],
                             layout=w.Layout(width="100%"))
        self.widget.add_class("facelab-latent-explorer")
        self.dim.observe(self._on_change, "value")
        self.value.observe(self._on_change, "value")
        self._show()

    def decode(self) -> torch.Tensor:
        """(frames + 1, 420) states for the sliders' setting (no randomness)."""
        from facelab.methods.motion_prior import sample_motion

        u = torch.zeros(1, self.frames, self.net.latent)
        u[..., int(self.dim.value)] = float(self.value.value)
        return sample_motion(self.net, self.start, self.frames, z=u,
                             projection=self.projection)[0]

    def static(self):
        """A matplotlib figure of the current setting (three meshes, head angles, mouth)."""
        import matplotlib.pyplot as plt

        from facelab.methods.motion_prior import STATE, meshes_from_states

        s = self.states
        J = STATE.landmarks_of(s)  # (T, 68, 3) cm
        nx, ny, nz = (J[:, 30] - J.mean(1)).numpy().T  # nose tip about the centroid
        picks = [0, self.frames // 2, self.frames]
        verts = meshes_from_states(self.model, s[picks])
        fig, ax = plt.subplots(1, 5, figsize=(13, 2.6),
                               gridspec_kw={"width_ratios": [1, 1, 1, 1.6, 1.6]})
        for k, (v, f) in enumerate(zip(verts, picks, strict=True)):
            ax[k].imshow(static.mesh_image(v, self.model.faces, self.model.mean_albedo,
                                           height=200, width=200))
            ax[k].set_axis_off()
            ax[k].set_title(f"frame {f}", fontsize=9)
        t = np.arange(len(s)) / 30.0
        ax[3].plot(t, np.degrees(np.arctan2(nx, nz)), label="yaw")
        ax[3].plot(t, np.degrees(np.arctan2(-ny, nz)), label="pitch")
        ax[3].set(title="head (deg)", xlabel="s")
        ax[3].legend(fontsize=7)
        ax[4].plot(t, (J[:, 62] - J[:, 66]).norm(dim=-1).numpy())
        ax[4].set(title="inner-lip opening (cm)", xlabel="s")
        fig.suptitle(f"latent dimension {int(self.dim.value)} at {float(self.value.value):+.1f} σ",
                     fontsize=10)
        fig.tight_layout()
        return fig

    def _show(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig = self.static()
        with self.output:
            self.output.clear_output(wait=True)
            display(fig)
        plt.close(fig)
        self.redraws += 1

    def _on_change(self, change) -> None:
        self.states = self.decode()
        self._show()

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        import matplotlib.pyplot as plt

        fig = self.static()
        try:
            return static.display_bundle(
                self.widget, fig, f"MotionLatentExplorer(dim {int(self.dim.value)}, "
                f"{float(self.value.value):+.1f} σ)", include, exclude)
        finally:
            plt.close(fig)
