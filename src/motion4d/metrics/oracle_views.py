"""What the oracle looks at: a 4D model's visible Gaussians' centroid and its renders from a ring of the
oracle's own cameras around it, at a few times.

The ring is ``n_azimuths`` cameras evenly spaced in azimuth (0 = front, on −y; 90° on +x) at one elevation,
all aimed at the centroid of that time. Its elevation is the fixed evaluation views' (20°): a 4D fit is only
as good as the views it was fitted to, and a generated grid's views are those (a top view, which no
training camera sees, renders a fit's guesswork).

What counts is what the fit was fitted to: its Gaussians composited on its training ``background``. A
Gaussian (or a pixel) of the background's own colour is invisible there, so nothing constrained it — a fit
on white images freely grows faint white sheets and floaters that a plain alpha render shows as solid
shapes. So each Gaussian (for the centroid) and each pixel (for the silhouettes and colours) counts by its
*visible* opacity: its opacity (alpha) times ``clamp(d / min_contrast, 0, 1)``, ``d`` the largest
difference of its colour from the background over the three channels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from motion4d.gaussians.activations import sh0_to_rgb
from motion4d.render.cameras import intrinsics_from_fov, spherical_viewmats
from motion4d.render.frame import render_frame


@dataclass(frozen=True)
class ViewConfig:
    """The oracle's cameras and which Gaussians count as visible."""

    res: int = 64
    """Width and height of the renders."""
    n_azimuths: int = 36
    """Cameras in the ring (the first at azimuth 0, the front)."""
    elevation_deg: float = 20.0
    """Elevation of the ring."""
    distance: float = 4.0
    """Distance of the cameras from the object's centroid."""
    half_width: float = 0.8
    """Half the width (world units) the cameras see at the centroid."""
    min_opacity: float = 0.05
    """Gaussians below this opacity at a time are not visible then."""
    outlier_radii: float = 3.0
    """Gaussians farther than this many RMS radii from the centroid are floaters, left out of the centroid."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """The background the model was fitted on (sRGB; the reconstruct and text-to-4d default, white)."""
    min_contrast: float = 0.25
    """A colour at least this far (largest channel difference) from the background is fully visible on it,
    a nearer one in proportion (module docstring)."""
    backend: str = "auto"
    """Rasterizer backend."""

    @property
    def azimuths_deg(self) -> Tensor:
        """[A] the ring's azimuths."""
        return torch.arange(self.n_azimuths, dtype=torch.float32) * (360.0 / self.n_azimuths)


@dataclass
class OracleViews:
    """A model seen by the oracle at T times from A ring cameras."""

    times: Tensor
    """[T] the times."""
    centroids: Tensor
    """[T,3] the visible Gaussians' centroid at each time (world)."""
    rgb: Tensor
    """[T,A,R,R,3] straight colours of the ring's views (aimed at the centroid)."""
    alpha: Tensor
    """[T,A,R,R] their visible alpha (module docstring)."""


def visibility(colours: Tensor, config: ViewConfig = ViewConfig()) -> Tensor:
    """[...] how visible ``colours [...,3]`` (sRGB) are on the background, in [0,1] (module docstring)."""
    d = (colours - torch.tensor(config.background, dtype=colours.dtype, device=colours.device)).abs().amax(dim=-1)
    return (d / config.min_contrast).clamp(0.0, 1.0)


def visible_centroid(means: Tensor, opacities: Tensor, config: ViewConfig = ViewConfig(), colours: Tensor | None = None) -> Tensor:
    """[3] centroid of the visible Gaussians (``means [N,3]``, ``opacities [N]``, weighted by their opacity
    times the :func:`visibility` of their ``colours [N,3]`` when given), floaters beyond ``outlier_radii``
    RMS radii dropped."""
    if colours is not None:
        opacities = opacities * visibility(colours, config)
    w = opacities * (opacities >= config.min_opacity)
    if float(w.sum()) <= 0:
        raise ValueError("the model shows nothing at some time of its time range")
    for _ in range(2):  # drop floaters far from the bulk, then recompute
        c = (w[:, None] * means).sum(0) / w.sum()
        d2 = ((means - c) ** 2).sum(-1)
        r2 = (w * d2).sum() / w.sum()
        w = w * (d2 <= config.outlier_radii**2 * r2)
    return (w[:, None] * means).sum(0) / w.sum().clamp_min(1e-12)


def oracle_cameras(config: ViewConfig = ViewConfig(), azimuths_deg: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``viewmats [A,4,4]`` (aimed at the origin) and ``Ks [A,3,3]`` of the ring (or of ``azimuths_deg [A]``)."""
    az = config.azimuths_deg if azimuths_deg is None else torch.as_tensor(azimuths_deg, dtype=torch.float32)
    viewmats = spherical_viewmats(az, torch.full_like(az, config.elevation_deg), config.distance)
    fov = math.degrees(2 * math.atan(config.half_width / config.distance))
    return viewmats, intrinsics_from_fov(fov, config.res, config.res).expand(len(az), 3, 3).clone()


@torch.no_grad()
def render_oracle_views(model, times: Tensor, config: ViewConfig = ViewConfig()) -> OracleViews:
    """``model`` (anything with ``at_time(t)`` returning a GaussianFrame) at ``times [T]``, seen by the oracle."""
    viewmats, Ks = oracle_cameras(config)
    cents, rgbs, alphas = [], [], []
    for t in times.tolist():
        frame = model.at_time(float(t))
        means = frame.means.detach()
        colours = sh0_to_rgb(frame.sh[:, 0].detach().cpu().double()).clamp(0.0, 1.0)  # view-independent part
        c = visible_centroid(means.cpu().double(), frame.opacities.detach().cpu().double().reshape(-1), config, colours)
        frame = dataclasses.replace(frame, means=means - c.to(means))
        out = render_frame(frame, viewmats, Ks, config.res, config.res, background=torch.zeros(3), backend=config.backend)
        a = out.alpha[..., 0].detach().cpu().float()
        rgb = (out.rgb.detach().cpu().float() / a[..., None].clamp_min(1e-4)).clamp(0.0, 1.0)
        cents.append(c)
        rgbs.append(rgb)
        alphas.append(a * visibility(rgb, config))
    return OracleViews(times.double(), torch.stack(cents), torch.stack(rgbs), torch.stack(alphas))
