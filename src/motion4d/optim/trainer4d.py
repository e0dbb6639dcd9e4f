"""Fitting a 4D Gaussian model to multi-view video (images with a ``time`` each): the 4D training loop.

Works with any model following the 4D protocol: ``params`` (an ``nn.ParameterDict`` of per-Gaussian raw
tensors), ``at_time(t) -> GaussianFrame``, and optionally ``regularizers(t) -> {name: scalar}`` (weighted
by this config's ``lambda_<name>``), ``field_parameters()`` (non-per-Gaussian parameters, e.g. a
HexPlane and MLPs, trained at ``lr_field``) and the density-control hooks of :mod:`motion4d.optim.strategy`.

Each step a :class:`~motion4d.optim.samplers.FrameSampler` picks ``batch_views`` images (multi-scale
sliding temporal windows, or uniform); each image is rendered at its own time. The loss is

    (1 − λ_dssim)·L1 + λ_dssim·(1 − SSIM)  +  Σ_name λ_name · regularizer_name(t)  +  λ_temporal · L_temporal

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

from motion4d.render.frame import render_frame
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
    lr_field: float = 1.6e-4
    """Learning rate of the model's field parameters other than grids (the deformation MLPs), decayed like
    the means' (4DGaussians' deformation_lr). (1.6e-3 let the deformation carry every Gaussian out of view
    on riggedfigure: 16.8 dB, the empty background's PSNR.)"""
    lr_field_final: float = 1.6e-5
    """Final learning rate of those field parameters."""
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
dynamic demo scene in a few minutes), "tiny" (tests)."""


def preset(name: str, **overrides) -> Reconstruct4DConfig:
    """The named preset with some fields replaced."""
    return replace_preset(PRESETS, name, **overrides)


Reconstruct4DResult = TrainResult
"""What a 4D fit produced."""


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
        if config.batch_views < 1:
            raise ValueError(f"batch_views must be >= 1, got {config.batch_views}")
        if views.times is None:
            raise ValueError("4D training needs images with a 'time' per frame")
        super().__init__(config, model, views, scene_scale, ckpt_dir=ckpt_dir)
        self.times = views.times.float()
        self.sampler = FrameSampler(config.sampler, self.times, config.batch_views)
        self._unweighted: set[str] = set()

    def param_lrs(self) -> dict[str, float]:
        return {**super().param_lrs(), "quats": self.config.lr_rotation, "rotors": self.config.lr_rotation}

    def field_lr(self, name: str, progress: float) -> float:
        if name.startswith("field.grid."):
            return decayed(self.config.lr_grid, self.config.lr_grid_final, progress)
        return super().field_lr(name, progress)

    # ---- one step -------------------------------------------------------------------------
    def _regularizers(self, t: float) -> Tensor:
        total = torch.zeros((), device=self.device)
        if not hasattr(self.model, "regularizers"):
            return total
        for name, value in self.model.regularizers(t).items():
            weight = getattr(self.config, f"lambda_{name}", None)
            if weight is None:
                if name not in self._unweighted:
                    log.warning("regularizer %r has no lambda_%s in the config; ignored", name, name)
                    self._unweighted.add(name)
                continue
            if weight:
                total = total + weight * value
        return total

    def temporal_loss(self, times: Tensor) -> Tensor:
        """Temporal-consistency term for three consecutive ``times [3]`` (see the module docstring)."""
        frames = [self.model.at_time(float(t)) for t in times]
        accel = (frames[0].means - 2.0 * frames[1].means + frames[2].means).abs().sum(-1)  # [N]
        w = frames[1].opacities.detach()
        return (w * accel).sum() / w.sum().clamp_min(1e-12) / self.scene_scale

    def train_step(self) -> float:
        """One optimisation step (renders, loss, backward, Adam, density control); returns the loss."""
        cfg, step = self.config, self.step
        progress = self.progress()
        sample = self.sampler.sample(step, progress, self.generator)
        self.update_lrs(progress)
        rows = sample.rows
        row_times = self.times[rows]
        sh_degree = self.sh_degree_at(step)
        loss = torch.zeros((), device=self.device)
        metas = []
        for t in torch.unique(row_times).tolist():
            idx = rows[row_times == t].to(self.device)
            out = render_frame(
                self.model.at_time(t), self.viewmats[idx], self.Ks[idx], self.views.width, self.views.height,
                background=self.background, sh_degree=sh_degree, backend=cfg.backend,
            )  # fmt: skip
            loss = loss + self.photometric_loss(out.rgb, self.images[idx]) * (len(idx) / len(rows))
            metas.append(out.meta)
        loss = loss + self._regularizers(float(row_times[0]))
        every = max(cfg.temporal_every, 1)
        if cfg.lambda_temporal > 0 and sample.triple is not None and step % every == 0:
            loss = loss + cfg.lambda_temporal * every * self.temporal_loss(sample.triple)
        loss.backward()
        for meta in metas:
            self.strategy.update(self.model.params, step, meta)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if cfg.time_budget_s and self.strategy.config.reset_every and self.progress() > 0.5:
            # An opacity reset needs many steps to recover from; none in the second half of a budget.
            self.strategy.config = dataclasses.replace(self.strategy.config, reset_every=0)
            log.info("step %d: past half the time budget, no further opacity resets", step)
        self.strategy.refine(self.model.params, self.optimizer, step, model=self.model)
        self.step += 1
        return float(loss.detach())

    def postfix(self, loss: float) -> dict[str, object]:
        start_f, size = self.sampler.window(self.step, self.progress())
        return {**super().postfix(loss), "window": f"{start_f}+{size}"}
