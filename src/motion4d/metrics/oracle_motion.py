"""Motion class from a 4D model's trajectories, seen at a few times.

The model is sampled at ``n_times`` times over its time range (default 8, the frames of a generated
multi-view grid: between its frames a fit only interpolates). At each time:

* the **centroid** ``c(τ)`` of the visible Gaussians (weighted by their opacity on the fit's background,
  floaters dropped; :func:`motion4d.metrics.oracle_views.visible_centroid`) gives the path;
* the oracle's **views** (a ring of cameras at 20° elevation, the first one in front;
  :mod:`motion4d.metrics.oracle_views`), aimed at that centroid, give what the Gaussians do about it.
  Per-Gaussian tracks are not used: a 4D-Rotor fit carries much of a motion by Gaussians fading in and out
  rather than moving (on a sliding sphere its Gaussians' mean velocity was a third of the object's), so the
  identities of Gaussians say little, while their renders are exactly what was fitted. Each time's views
  are recentred and zoomed to a common size (:func:`motion4d.metrics.oracle_shape.normalise_silhouettes`),
  keeping alpha and the shading pattern:

  - **turn**: the turn about z between consecutive times — the shift of the ring that best lines up its
    views, taken from whichever channel that shift explains best (the silhouettes, for a fit that blurred
    the pattern away; the standardised luminance pattern, for a round shape) — summed as ``Σ|Δθ|``;
  - **tilt**: the in-plane rotation of the front view (the one that sees +x to the right) from the first;
  - **scale**: the square root of the views' mean raw silhouette area, relative to its mean over time;
  - **residual**: what the front view's best in-plane rotation leaves, ``1 − soft IoU`` with the first —
    zero for any rigid turn in that plane, positive for a bend;
  - **flux**: how much the pattern changed since the previous time where the silhouette stayed
    (``1 −`` the normalised correlation of the shadings in the generation views, their median).

Each motion of :data:`motion4d.data.synth_vocab.MOTIONS` predicts one signal with a known time profile
(:mod:`motion4d.data.synth_motion`; ``τ`` the time normalised to [0, 1]):

=========  ===============================  =====================================================
bouncing   height ``c_z − c_z(0)``          ``0.45 |sin 3πτ|`` (three bounces)
jumping    height                           ``0.55 sin(π·clip((τ − 0.2)/0.6))`` (one hop)
sliding    ``c_x − c_x(0)``                 ``0.9 τ`` (left to right)
orbiting   ``(c_x, c_y)``                   a circle of radius 0.42 run once, anticlockwise
spinning   turn                             ``2π τ``: the same turn at every step
swaying    tilt, and ``c_x``                ``0.5 sin 2πτ`` (either way first), staying rigid; the
                                            centroid swings sideways with it (``∝ sin 2πτ``)
pulsing    scale − 1                        ``0.3 sin 4πτ``
bending    residual                         grows from zero and back, twice (``|sin 2πτ|``)
=========  ===============================  =====================================================

A motion's score is ``fit × strength``: ``fit`` the squared correlation of the observed signal with the
profile (signed: a profile run backwards does not fit, except the tilt's) and ``strength`` the fitted
amplitude over ``strength_fraction`` of the expected one, capped at 1 (spinning: the ``turning_quantile``
of the per-step turns over that fraction of a spin's step; bending: the residual's amplitude between the
two ``bend_residual`` levels; swaying: the tilt's times the swing's). Some are explained away: a tilt that
bends the object is not a sway (swaying × (1 − bending's strength)); a front view that changes because
the object turns is neither a bend nor a sway (both × (1 − spinning's strength)); a spin is in place, so a
turn seen while the body travels (bouncing, jumping, sliding, orbiting: its shading moves over it in the
fitted views) is the travel's (spinning's strength × (1 − the best travel score)).

A fit often cannot follow a spinning round shape's pattern (a cone, a cylinder, a sphere: the silhouette
never changes) and blurs it into a flickering average, in which no turn can be found. What is left of the
spin then is the flux: a surface that keeps changing on a body that does nothing else. It scores up to
``flux_weight`` (the flux's strength between the ``flux_range`` levels, times one minus the best other
score), so any motion that is seen outright wins over it; a still fit's flux is a few hundredths.

The highest score wins; below ``min_score`` the oracle says ``"static"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from motion4d.data.synth_vocab import MOTIONS
from motion4d.metrics.oracle_shape import SilhouetteConfig, normalise_silhouettes, soft_iou, solid_silhouettes
from motion4d.metrics.oracle_views import OracleViews, ViewConfig, render_oracle_views

STATIC = "static"
"""The answer when no motion of the vocabulary scores at least ``min_score``."""

_FRONT = 0


@dataclass(frozen=True)
class MotionConfig:
    """How a model's motion is sampled, measured and scored."""

    n_times: int = 8
    """Times sampled over the model's time range (the grid's frames)."""
    tilt_step_deg: float = 2.5
    """Resolution of the tilt search (over ± ``max_tilt_deg``)."""
    max_tilt_deg: float = 60.0
    """Largest tilt searched."""
    alpha_threshold: float = 0.5
    """Silhouettes are the largest region of pixels at least this opaque (:func:`solid_silhouettes`)."""
    shade_weight: float = 0.5
    """Weight of the luminance pattern against alpha in the rotation searches."""
    min_gain: float = 0.15
    """A rotation is only taken when it removes at least this share of the unrotated views' difference
    (else the views are taken as not turned: round, featureless shapes stay put)."""
    strength_fraction: float = 0.5
    """The fraction of each motion's expected amplitude that counts as fully present."""
    bend_residual: tuple[float, float] = (0.08, 0.16)
    """Peak front-view residual (1 − soft IoU) below which an object is not bent at all and above which it
    is fully (rigid sways leave up to 0.09, bends 0.25–0.4 with exact trajectories)."""
    turning_quantile: float = 0.5
    """Spinning's strength is this quantile of the per-step turns over ``strength_fraction`` of a spin's."""
    flux_range: tuple[float, float] = (0.03, 0.09)
    """Median pattern flux below which the surface is taken as unchanging and above which as fully
    changing (fits of still objects: ≤ 0.025; of spinning round ones, whose pattern a fit blurs: 0.1–0.75)."""
    flux_weight: float = 0.5
    """The most a spin seen only in the pattern's flux (no turn found) scores."""
    flux_azimuths_deg: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    """Azimuths of the ring views the flux is measured in (the generation views': a fit is only constrained
    there; the ring is evenly spaced from 0)."""
    sway_swing: float = 0.07
    """Sideways swing (world units) of the centroid of a body swaying by the dataset's 0.5 rad about a base
    0.15 below it (a low estimate: the shapes' centroids are 0.15–0.4 above their bases)."""
    min_score: float = 0.05
    """Below this best score the model is ``"static"``."""
    canvas: SilhouetteConfig = field(default_factory=lambda: SilhouetteConfig(canvas=48, area_fraction=0.15))
    """How each time's views are recentred and zoomed before they are compared."""


@dataclass
class MotionSignals:
    """The signals the motions are scored on, [K] each (module docstring)."""

    tau: Tensor
    """Normalised time in [0, 1]."""
    height: Tensor
    """Centroid height above its start."""
    x: Tensor
    """Centroid x from its start."""
    y: Tensor
    """Centroid y from its start."""
    turn: Tensor
    """Accumulated turn about z, Σ|Δθ| (radians)."""
    tilt: Tensor
    """Tilt of the front view from the first (radians)."""
    scale: Tensor
    """Relative size minus 1."""
    residual: Tensor
    """Front-view residual after its best tilt."""
    flux: Tensor
    """How much the shading pattern changed since the previous time where the silhouette stayed (0 first)."""


def _rotate(images: Tensor, angles: Tensor) -> Tensor:
    """``images [C,c,c]`` turned in-plane by each of ``angles [A]`` (radians) about the centre: [A,C,c,c]."""
    cos, sin = torch.cos(angles).float(), torch.sin(angles).float()
    theta = torch.zeros(len(angles), 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    grid = F.affine_grid(theta, [len(angles), *images.shape], align_corners=False)
    return F.grid_sample(images[None].expand(len(angles), *images.shape), grid, align_corners=False)


def _best_rotation(src: Tensor, dst: Tensor, angles: Tensor, config: MotionConfig) -> tuple[Tensor, float]:
    """The angle of ``angles [A]`` (one of them 0) that best turns ``src [C,c,c]`` onto ``dst`` (0 unless it
    removes ``min_gain`` of the difference), and that turned ``src``."""
    turned = _rotate(src, angles)
    w = torch.tensor([1.0] + [config.shade_weight] * (src.shape[0] - 1))[None, :, None, None]
    err = (w * (turned - dst[None]) ** 2).sum(dim=(1, 2, 3))
    zero = int(angles.abs().argmin())
    best = int(err.argmin())
    if err[best] > (1.0 - config.min_gain) * err[zero]:
        best = zero
    return turned[best], float(angles[best])


def _features(views: OracleViews, config: MotionConfig) -> Tensor:
    """[T,3,2,c,c] recentred, zoomed alpha and standardised luminance × alpha of every view."""
    lum = views.rgb @ torch.tensor([0.2126, 0.7152, 0.0722])  # [T,V,R,R]
    a = solid_silhouettes(views.alpha, config.alpha_threshold)
    w = a.sum(dim=(-1, -2), keepdim=True).clamp_min(1e-6)
    mean = (a * lum).sum(dim=(-1, -2), keepdim=True) / w
    std = ((a * (lum - mean) ** 2).sum(dim=(-1, -2), keepdim=True) / w).sqrt().clamp_min(0.05)
    shade = (lum - mean) / std * a
    alpha_n, shade_n = normalise_silhouettes(a, config.canvas, channels=shade[:, :, None])
    return torch.cat([alpha_n[:, :, None], shade_n], dim=2)


def _ring_turn(prev: Tensor, cur: Tensor, config: MotionConfig) -> float:
    """The turn about z (radians, in (−π, π]) from the ring views ``prev [A,C,c,c]`` to ``cur``: a turn by ``θ``
    shows at azimuth ``a`` what azimuth ``a − θ`` showed before, so it is the ring shift that best lines them
    up. Each channel (alpha; the shading pattern) is its own witness: the shift is the one of the channel
    whose best shift removes the largest share of its unshifted difference — the silhouettes for a fit that
    blurred the pattern away, the pattern for a round shape — and 0 unless that share is ``min_gain``."""
    A = prev.shape[0]
    err = torch.stack([((cur - torch.roll(prev, s, dims=0)) ** 2).sum(dim=(0, 2, 3)) for s in range(A)])  # [A,C]
    gain = 1.0 - err.min(dim=0).values / err[0].clamp_min(1e-12)  # [C]
    c = int(gain.argmax())
    if float(gain[c]) < config.min_gain:
        return 0.0
    return math.remainder(int(err[:, c].argmin()) * 2 * math.pi / A, 2 * math.pi)


def _flux(prev: Tensor, cur: Tensor) -> float:
    """How much the shading pattern changed from ``prev [V,2,c,c]`` to ``cur`` (alpha, shade) where both
    silhouettes cover: 1 − the normalised correlation of the two shadings, the median over the views."""
    both = prev[:, 0] * cur[:, 0]
    x, y = prev[:, 1] * both, cur[:, 1] * both
    ncc = (x * y).sum(dim=(-1, -2)) / ((x * x).sum(dim=(-1, -2)) * (y * y).sum(dim=(-1, -2))).sqrt().clamp_min(1e-9)
    return float((1.0 - ncc).median())


def motion_signals(views: OracleViews, config: MotionConfig = MotionConfig()) -> MotionSignals:
    """The signals of a model seen at ``views.times`` (module docstring)."""
    t = views.times
    tau = (t - t[0]) / (t[-1] - t[0]).clamp_min(1e-12)
    d = views.centroids - views.centroids[0]
    feats = _features(views, config)  # [T,A,2,c,c]
    tilts = torch.deg2rad(torch.arange(-config.max_tilt_deg, config.max_tilt_deg + 1e-9, config.tilt_step_deg, dtype=torch.float64))
    ring = feats.shape[1]
    at = sorted({round(a / 360.0 * ring) % ring for a in config.flux_azimuths_deg})
    turn, tilt, residual, flux = [0.0], [0.0], [0.0], [0.0]
    for k in range(1, len(t)):
        turn.append(turn[-1] + abs(_ring_turn(feats[k - 1], feats[k], config)))
        # the first front view turned onto this one: the angle is this view's tilt from the first
        turned, angle = _best_rotation(feats[0, _FRONT], feats[k, _FRONT], tilts, config)
        tilt.append(angle)
        residual.append(1.0 - float(soft_iou(turned[0][None, None], feats[k, _FRONT, 0][None, None])))
        flux.append(_flux(feats[k - 1, at], feats[k, at]))
    area = solid_silhouettes(views.alpha, config.alpha_threshold).sum(dim=(-1, -2)).mean(dim=1).double()  # [T]
    size = area.clamp_min(1e-9).sqrt()
    as_t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return MotionSignals(tau, d[:, 2], d[:, 0], d[:, 1], as_t(turn), as_t(tilt), size / size.mean() - 1.0, as_t(residual), as_t(flux))


def _profiles(tau: Tensor) -> dict[str, Tensor]:
    hop = torch.sin(math.pi * ((tau - 0.2) / 0.6).clamp(0.0, 1.0))
    return {
        "bouncing": 0.45 * torch.sin(3 * math.pi * tau).abs(),
        "jumping": 0.55 * hop,
        "sliding": 0.9 * tau,
        "spinning": 2 * math.pi * tau,
        "swaying": 0.5 * torch.sin(2 * math.pi * tau),
        "pulsing": 0.3 * torch.sin(4 * math.pi * tau),
    }


def _fit(y: Tensor, g: Tensor, *, signed: bool = True) -> tuple[float, float]:
    """(squared correlation, least-squares gain) of ``y`` against the profile ``g`` (both [K], centred here);
    with ``signed`` a negative correlation counts as no fit."""
    yc, gc = y - y.mean(), g - g.mean()
    den = float((gc**2).sum().sqrt() * (yc**2).sum().sqrt())
    if den <= 1e-12:
        return 0.0, 0.0
    r = float((yc * gc).sum()) / den
    gain = float((yc * gc).sum() / (gc**2).sum())
    if not signed:
        r, gain = abs(r), abs(gain)
    return (r * r if r > 0 else 0.0), max(gain, 0.0)


def _orbit_fit(x: Tensor, y: Tensor, tau: Tensor) -> tuple[float, float]:
    """(share of the horizontal path's variance an anticlockwise circle run once explains, its radius)."""
    c, s = torch.cos(2 * math.pi * tau), torch.sin(2 * math.pi * tau)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    # x = a·c − b·s + x0, y = a·s + b·c + y0: radius |(a, b)|, start angle atan2(b, a)
    A = torch.cat([torch.stack([c, -s, one, zero], -1), torch.stack([s, c, zero, one], -1)])
    obs = torch.cat([x, y])
    coef = torch.linalg.lstsq(A, obs[:, None]).solution[:, 0]
    var = float(((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum())
    if var <= 1e-12:
        return 0.0, 0.0
    return max(0.0, 1.0 - float(((obs - A @ coef) ** 2).sum()) / var), float(coef[:2].norm())


def motion_scores(sig: MotionSignals, config: MotionConfig = MotionConfig()) -> dict[str, float]:
    """Each motion's score ``fit × strength`` on the signals ``sig`` (module docstring)."""
    prof, f = _profiles(sig.tau), config.strength_fraction
    strength = {}
    scores = {}
    for m, y in {"bouncing": sig.height, "jumping": sig.height, "sliding": sig.x, "pulsing": sig.scale}.items():
        r2, gain = _fit(y, prof[m])
        strength[m] = min(1.0, gain / f)
        scores[m] = r2 * strength[m]
    # spinning turns at every step: most steps must turn (a one-off flip of the views is no spin)
    steps = torch.diff(sig.turn).abs()
    expected = 2 * math.pi / max(len(steps), 1)
    strength["spinning"] = min(1.0, float(torch.quantile(steps, config.turning_quantile)) / (f * expected)) if len(steps) else 0.0
    r2, radius = _orbit_fit(sig.x, sig.y, sig.tau)
    scores["orbiting"] = r2 * min(1.0, radius / (f * 0.42))
    r2, gain = _fit(sig.residual, torch.sin(2 * math.pi * sig.tau).abs())
    lo, hi = config.bend_residual
    strength["bending"] = min(1.0, max(0.0, (gain - lo) / (hi - lo)))
    bending = r2 * strength["bending"]
    # a rigid tilt about the base swings the body sideways with it: the tilt is only taken with that swing
    r2, gain = _fit(sig.tilt, prof["swaying"], signed=False)
    r2_swing, swing = _fit(sig.x, torch.sin(2 * math.pi * sig.tau), signed=False)
    swaying = r2 * min(1.0, gain / f) * r2_swing * min(1.0, swing / (f * config.sway_swing)) * (1.0 - strength["bending"])
    # a round shape spinning keeps its silhouette and a fit blurs its pattern: then the pattern's flux,
    # on a shape that does nothing else, is what is left of the spin
    lo, hi = config.flux_range
    flux = min(1.0, max(0.0, (float(sig.flux[1:].median()) - lo) / (hi - lo))) if len(sig.flux) > 1 else 0.0
    still = 1.0 - max(scores["bouncing"], scores["jumping"], scores["sliding"], scores["pulsing"], scores["orbiting"], bending, swaying)
    # a spin is in place: a turn seen while the body travels is the travel's (its shading moves with it)
    travel = max(scores["bouncing"], scores["jumping"], scores["sliding"], scores["orbiting"])
    strength["spinning"] *= 1.0 - travel
    scores["spinning"] = max(strength["spinning"], config.flux_weight * flux * still)
    scores["bending"] = bending * (1.0 - strength["spinning"])
    scores["swaying"] = swaying * (1.0 - strength["spinning"])
    return {m: scores[m] for m in MOTIONS}


def decide_motion(scores: dict[str, float], config: MotionConfig = MotionConfig()) -> str:
    """The best-scoring motion, or :data:`STATIC` below ``min_score``."""
    best = max(scores, key=scores.get)
    return best if scores[best] >= config.min_score else STATIC


def classify_motion(model, time_range: tuple[float, float] = (0.0, 1.0), config: MotionConfig = MotionConfig(),
                    views: ViewConfig = ViewConfig()) -> tuple[str, dict[str, float]]:  # fmt: skip
    """The motion of :data:`MOTIONS` that ``model`` (anything with ``at_time(t)``) shows over ``time_range``
    and every motion's score (module docstring); :data:`STATIC` when none scores ``min_score``."""
    t0, t1 = float(time_range[0]), float(time_range[1])
    if not t1 > t0:
        raise ValueError(f"time_range must be increasing, got {time_range}")
    seen = render_oracle_views(model, torch.linspace(t0, t1, config.n_times), views)
    scores = motion_scores(motion_signals(seen, config), config)
    return decide_motion(scores, config), scores
