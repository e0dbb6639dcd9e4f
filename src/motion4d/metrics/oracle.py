"""The generation oracle: which shape, colour and motion of the synthetic vocabulary a 4D asset shows,
decided without any learned model.

``judge(model, time_range)`` works on anything with ``at_time(t)`` returning a
:class:`~motion4d.gaussians.GaussianFrame` (4D-Rotor Gaussians, deformation fields, a generated asset):

At ``motion.n_times`` times the model is seen by the oracle (:mod:`motion4d.metrics.oracle_views`): its
visible Gaussians' centroid, and renders from a ring of the oracle's own cameras at 20° elevation (the
first one in front, on −y), aimed at that centroid — "visible" as the fit was fitted: on its background
(white by default), where a Gaussian of the background's colour shows nothing and counts for nothing.
From these:

* **motion** from the trajectories: the centroid path and what the views do about it
  (:mod:`motion4d.metrics.oracle_motion`);
* **shape** from the silhouettes of four of the views (front, right, back, left: the generation views),
  matched against the six shapes' templates seen by the same cameras, the best few times deciding
  (:mod:`motion4d.metrics.oracle_shape`);
* **colour** from hue statistics of the renders' foreground pixels (:mod:`motion4d.metrics.oracle_colour`).

``judge_views(rgb, alpha, viewmats, Ks)`` decides shape and colour from images alone (ground-truth renders,
a sampled multi-view grid), with the templates rendered by the images' own cameras.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from motion4d.metrics.oracle_colour import UNKNOWN, classify_colour
from motion4d.metrics.oracle_motion import STATIC, MotionConfig, decide_motion, motion_scores, motion_signals
from motion4d.metrics.oracle_shape import ShapeTemplates, SilhouetteConfig, classify_shape, render_templates
from motion4d.metrics.oracle_views import ViewConfig, oracle_cameras, render_oracle_views

__all__ = ["OracleConfig", "OracleResult", "STATIC", "UNKNOWN", "judge", "judge_views"]


@dataclass(frozen=True)
class OracleConfig:
    """Everything the oracle's decisions depend on."""

    views: ViewConfig = field(default_factory=ViewConfig)
    """The oracle's cameras."""
    motion: MotionConfig = field(default_factory=MotionConfig)
    """How motion is sampled (``n_times``: also the times of the silhouettes and colours) and scored."""
    silhouette: SilhouetteConfig = field(default_factory=SilhouetteConfig)
    """How silhouettes are normalised and matched against the shape templates."""
    min_alpha: float = 0.5
    """Pixels below this alpha are background for the colour vote."""
    min_chroma: float = 0.08
    """Pixels less coloured than this (max − min of sRGB) do not vote for a colour."""
    shape_azimuths_deg: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    """The ring views whose silhouettes are matched against the shape templates."""

    def shape_views(self) -> list[int]:
        """Indices of :attr:`shape_azimuths_deg` in the ring."""
        ring = self.views.azimuths_deg.tolist()
        out = [min(range(len(ring)), key=lambda i: abs(math.remainder(ring[i] - a, 360.0))) for a in self.shape_azimuths_deg]
        if any(abs(math.remainder(ring[i] - a, 360.0)) > 1e-3 for i, a in zip(out, self.shape_azimuths_deg)):
            raise ValueError(f"shape azimuths {self.shape_azimuths_deg} must be views of the ring ({ring})")
        return out


@dataclass
class OracleResult:
    """What the oracle sees in one asset."""

    shape: str
    """One of the vocabulary's shapes (the best silhouette match)."""
    colour: str
    """One of the vocabulary's colours, or :data:`UNKNOWN` when nothing coloured is visible."""
    motion: str | None
    """One of the vocabulary's motions, :data:`STATIC` when none is there, None when not judged (images)."""
    scores: dict[str, dict[str, float]]
    """``{"shape": {name: best soft IoU}, "colour": {name: vote share}, "motion": {name: score}}``."""

    def correct(self, shape: str, colour: str, motion: str | None = None) -> dict[str, bool]:
        """Which attributes agree with the prompt's ``shape``, ``colour`` (and ``motion`` when judged)."""
        out = {"shape": self.shape == shape, "colour": self.colour == colour}
        if motion is not None and self.motion is not None:
            out["motion"] = self.motion == motion
        return out

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=4)
def _oracle_templates(config: OracleConfig) -> ShapeTemplates:
    viewmats, Ks = oracle_cameras(config.views, torch.tensor(config.shape_azimuths_deg))
    return render_templates(viewmats, Ks, config.views.res, config.views.res, config.silhouette)


def judge(model, time_range: tuple[float, float] = (0.0, 1.0), config: OracleConfig = OracleConfig()) -> OracleResult:
    """Shape, colour and motion of ``model`` (anything with ``at_time(t)``) over ``time_range`` (module docstring)."""
    t0, t1 = float(time_range[0]), float(time_range[1])
    if not t1 > t0:
        raise ValueError(f"time_range must be increasing, got {time_range}")
    seen = render_oracle_views(model, torch.linspace(t0, t1, config.motion.n_times), config.views)
    motion = motion_scores(motion_signals(seen, config.motion), config.motion)
    viewmats, Ks = oracle_cameras(config.views, torch.tensor(config.shape_azimuths_deg))
    shape, shape_scores = classify_shape(seen.alpha[:, config.shape_views()], viewmats, Ks, templates=_oracle_templates(config),
                                         config=config.silhouette)  # fmt: skip
    colour, colour_scores = classify_colour(seen.rgb, seen.alpha, min_alpha=config.min_alpha, min_chroma=config.min_chroma)
    return OracleResult(shape, colour, decide_motion(motion, config.motion), {"shape": shape_scores, "colour": colour_scores, "motion": motion})


def judge_views(rgb: Tensor, alpha: Tensor, viewmats: Tensor, Ks: Tensor, config: OracleConfig = OracleConfig(), *,
                templates: ShapeTemplates | None = None) -> OracleResult:  # fmt: skip
    """Shape and colour of the object in images: ``rgb [T,V,H,W,3]`` (straight sRGB) and ``alpha [T,V,H,W]``
    at T times from the same V cameras ``viewmats [V,4,4]``, ``Ks [V,3,3]`` (motion is not judged).

    ``templates`` (:func:`~motion4d.metrics.oracle_shape.render_templates` for these cameras) saves
    rendering them for every call."""
    if rgb.dim() != 5 or alpha.shape != rgb.shape[:-1] or viewmats.shape != (rgb.shape[1], 4, 4):
        raise ValueError(f"rgb [T,V,H,W,3], alpha [T,V,H,W] and viewmats [V,4,4] expected, got "
                         f"{list(rgb.shape)}, {list(alpha.shape)}, {list(viewmats.shape)}")  # fmt: skip
    shape, shape_scores = classify_shape(alpha, viewmats, Ks, templates=templates, config=config.silhouette)
    colour, colour_scores = classify_colour(rgb, alpha, min_alpha=config.min_alpha, min_chroma=config.min_chroma)
    return OracleResult(shape, colour, None, {"shape": shape_scores, "colour": colour_scores, "motion": {}})
