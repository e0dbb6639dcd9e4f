"""Fitting a 4D Gaussian model to multi-view video (images with a ``time`` each): the 4D training loop.

Works with any model following :class:`~motion4d.optim.hooks.GaussianModel` and optionally the other
protocols of :mod:`motion4d.optim.hooks`: ``regularizers(t) -> {name: scalar}`` (weighted by this config's
``lambda_<name>``), ``field_parameters()`` (non-per-Gaussian parameters, e.g. a HexPlane and MLPs, trained
at ``lr_field``, or ``lr_grid`` for those named ``grid.*``) and the density-control hooks.

Each step the :class:`VideoLoss` provider has a :class:`~motion4d.optim.samplers.FrameSampler` pick
``batch_views`` images (multi-scale sliding temporal windows, or uniform); each image is rendered at its
own time. The loss is

    λ_photometric · ((1 − λ_dssim)·L1 + λ_dssim·(1 − SSIM))  +  Σ_name λ_name · regularizer_name(t)  +  λ_temporal · L_temporal

with ``L_temporal`` the temporal-consistency term: for three consecutive frames ``t_a < t_b < t_c``
inside the step's window, the opacity-weighted mean L1 norm of the Gaussians' second difference
``μ(t_a) − 2μ(t_b) + μ(t_c)`` divided by the scene scale. It penalises jerky, flickering motion while
leaving smooth motion (constant velocity) free. Density control, checkpoints (resumable after a kill),
the time budget and the progress bar work as in :mod:`motion4d.optim.trainer3d`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from motion4d.optim.config_checks import at_least
from motion4d.optim.hooks import GaussianModel
from motion4d.optim.providers import LossOutput, StepContext, TrainViews, photometric_loss, render_by_time
from motion4d.optim.samplers import FrameSampler, SamplerConfig
from motion4d.optim.strategy import DensifyConfig
from motion4d.optim.trainer_base import GaussianTrainer, TrainConfig, TrainResult, decayed, replace_preset

if TYPE_CHECKING:
    from motion4d.data.transforms import ImageSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconstruct4DConfig(TrainConfig):
    """Everything that decides a 4D reconstruction (saved in the run's ``config.json``)."""

    iters: int = 3000
    """Optimisation steps."""
    sh_degree: int = 1
    """Largest SH degree of the colours."""
    n_init: int = 10_000
    """Number of random initial Gaussians."""
    ckpt_every: int = 500
    """Write a checkpoint every this many steps (and always at the end); 0 = only at the end."""
    batch_views: int = 4
    """Images rendered per step (each at its own time; the loss is their mean); see ``sampler.frames_per_step``."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """Which images each step uses (sliding windows or uniform)."""
    lr_rotation: float = 1e-3
    """Learning rate of the raw rotations (``quats``, or the rotor model's ``rotors``)."""
    lr_other: float = 1e-3
    """Learning rate of any other per-Gaussian parameter a model has (e.g. velocities)."""
    lr_grid: float = 1.6e-3
    """Learning rate of feature grids (field parameters named ``grid.*``: the HexPlane planes), 4DGaussians'
    grid_lr. At the MLPs' rate the time planes, which start constant, hardly change and the model learns no
    motion (riggedfigure: motion_amplitude 0.000, 21.3 dB)."""
    lr_grid_final: float = 1.6e-4
    """Final learning rate of the grids."""
    lambda_entropy: float = 1e-3
    """Weight of the rotor model's opacity entropy regulariser."""
    lambda_consistency4d: float = 1e-2
    """Weight of the rotor model's 4D neighbour-consistency regulariser."""
    lambda_plane_tv: float = 1e-4
    """Weight of the deformation model's HexPlane total variation."""
    lambda_time_smoothness: float = 1e-3
    """Weight of the deformation model's smoothness of the planes along time."""
    lambda_temporal: float = 0.01
    """Weight of the temporal-consistency term (second difference of the means inside the window)."""
    temporal_every: int = 4
    """Apply the temporal term every this many steps (weighted by this number, so the mean weight is
    ``lambda_temporal``): it costs three extra evaluations of the model."""

    def __post_init__(self):
        super().__post_init__()
        at_least(self, 1, "batch_views")
        at_least(self, 0, "temporal_every")


_DEFAULT = Reconstruct4DConfig()
PRESETS: dict[str, Reconstruct4DConfig] = {
    "default": dataclasses.replace(
        _DEFAULT,
        densify=DensifyConfig(refine_start=300, refine_stop=2200, refine_every=100, reset_every=1200, max_gaussians=60_000),
    ),
    "fast": dataclasses.replace(
        _DEFAULT,
        iters=1500,
        n_init=8000,
        sh_degree_interval=300,
        densify=DensifyConfig(refine_start=200, refine_stop=1100, refine_every=100, reset_every=0, max_gaussians=30_000),
    ),
    "demo": dataclasses.replace(
        _DEFAULT,
        iters=1500,
        n_init=3000,
        time_budget_s=200.0,
        sh_degree_interval=300,
        densify=DensifyConfig(refine_start=200, refine_stop=1100, refine_every=100, reset_every=0, max_gaussians=20_000),
    ),
    "generated": dataclasses.replace(
        _DEFAULT,
        iters=1000,
        n_init=2000,
        init_radius=0.35,
        lambda_dssim=0.0,
        sh_degree_interval=200,
        ckpt_every=250,
        densify=DensifyConfig(refine_start=100, refine_stop=800, refine_every=100, reset_every=0, max_gaussians=8000),
    ),
    "tiny": dataclasses.replace(
        _DEFAULT,
        iters=30,
        n_init=300,
        sh_degree_interval=10,
        lr_means=1e-3,
        ckpt_every=10,
        progress=False,
        densify=DensifyConfig(refine_start=5, refine_stop=25, refine_every=10, reset_every=0, grow_grad2d=1e-4, max_gaussians=2000),
    ),
}
"""Named configurations: "default" (a few minutes at 128² on a CPU), "fast", "demo" (the built-in
dynamic demo scene in a few minutes), "generated" (a small object centred at the origin, 64², as
text-to-4d samples it: under a minute on 2 cores; few Gaussians seeded near the centre, no D-SSIM), "tiny" (tests)."""


def preset(name: str, **overrides) -> Reconstruct4DConfig:
    """The named preset with some fields replaced."""
    return replace_preset(PRESETS, name, **overrides)


Reconstruct4DResult = TrainResult
"""What a 4D fit produced."""


def temporal_loss(model: GaussianModel, times: Tensor, scene_scale: float) -> Tensor:
    """Temporal-consistency term for three consecutive ``times [3]`` (see the module docstring)."""
    frames = [model.at_time(float(t)) for t in times]
    accel = (frames[0].means - 2.0 * frames[1].means + frames[2].means).abs().sum(-1)  # [N]
    w = frames[1].opacities.detach()
    return (w * accel).sum() / w.sum().clamp_min(1e-12) / scene_scale


class VideoLoss:
    """``loss_photometric`` of a 4D model over the images a sampler picks (each rendered at its own time),
    and ``loss_temporal`` over the sample's three consecutive frames.

    Args:
        model: the 4D model.
        views: the training views; times: [M] their times (CPU).
        sampler: which images each step uses.
        lambda_dssim: the D-SSIM share of the photometric term.
        background: [3] background colour.
        scene_scale: the temporal term is divided by it.
        temporal_every: the temporal term on every this many steps, times this number (so its mean over
            steps is the term); 0: never.
        backend: rasterizer backend.
    """

    def __init__(self, model: GaussianModel, views: TrainViews, times: Tensor, sampler: FrameSampler, *, lambda_dssim: float, background: Tensor,
                 scene_scale: float, temporal_every: int, backend: str = "auto"):  # fmt: skip
        self.model, self.views, self.times, self.sampler = model, views, times, sampler
        self.lambda_dssim, self.background, self.scene_scale = lambda_dssim, background, scene_scale
        self.temporal_every, self.backend = temporal_every, backend

    def __call__(self, ctx: StepContext) -> LossOutput:
        sample = self.sampler.sample(ctx.step, ctx.progress, ctx.generator)
        rows = sample.rows
        row_times = self.times[rows]
        loss = torch.zeros((), device=self.views.images.device)
        metas = []
        for idx, _, out in render_by_time(self.model, self.views, rows, row_times, background=self.background, sh_degree=ctx.sh_degree, backend=self.backend):
            loss = loss + photometric_loss(out.rgb, self.views.images[idx], self.lambda_dssim) * (len(idx) / len(rows))
            metas.append(out.meta)
        terms = {"loss_photometric": loss}
        every = self.temporal_every
        if every > 0 and sample.triple is not None and ctx.step % every == 0:
            terms["loss_temporal"] = every * temporal_loss(self.model, sample.triple, self.scene_scale)
        return LossOutput(terms, metas, time=float(row_times[0]))


class Trainer4D(GaussianTrainer):
    """Fits a 4D ``model`` to the training images of ``views`` (an ImageSet with ``times``).

    Args:
        config: the fit's settings.
        model: 4D-protocol model to optimise (moved to ``config.device``).
        views: training images ``images [M,H,W,3]``, ``viewmats [M,4,4]``, ``Ks [M,3,3]``, ``times [M]``.
        scene_scale: scene radius; scales the means' learning rate, density thresholds and the temporal term.
        ckpt_dir: folder for checkpoints (None: none written, no resume).
    """

    desc = "reconstruct"

    def __init__(self, config: Reconstruct4DConfig, model: nn.Module, views: "ImageSet", scene_scale: float, *, ckpt_dir: str | Path | None = None):
        if views.times is None:
            raise ValueError("4D training needs images with a 'time' per frame")
        super().__init__(config, model, scene_scale, ckpt_dir=ckpt_dir)
        times = views.times.float()
        self.sampler = FrameSampler(config.sampler, times, config.batch_views)
        every = max(config.temporal_every, 1) if config.lambda_temporal > 0 else 0
        self.losses.append(VideoLoss(self.model, TrainViews.of(views, self.device), times, self.sampler, lambda_dssim=config.lambda_dssim,
                                     background=self.background, scene_scale=self.scene_scale, temporal_every=every, backend=config.backend))  # fmt: skip

    def param_lrs(self) -> dict[str, float]:
        return {**super().param_lrs(), "quats": self.config.lr_rotation, "rotors": self.config.lr_rotation}

    def other_lr(self) -> float:
        return self.config.lr_other

    def field_lr(self, name: str, progress: float) -> float:
        if name.startswith("field.grid."):
            return decayed(self.config.lr_grid, self.config.lr_grid_final, progress)
        return super().field_lr(name, progress)

    def before_refine(self) -> None:
        cfg = self.config
        if cfg.time_budget_s and self.strategy.config.reset_every and self.progress() > 0.5:
            # An opacity reset needs many steps to recover from; none in the second half of a budget.
            self.strategy.config = dataclasses.replace(self.strategy.config, reset_every=0)
            log.info("step %d: past half the time budget, no further opacity resets", self.step)

    def postfix(self, loss: float) -> dict[str, object]:
        start_f, size = self.sampler.window(self.step, self.progress())
        return {**super().postfix(loss), "window": f"{start_f}+{size}"}
