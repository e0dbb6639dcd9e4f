"""Fitting static 3D Gaussians to posed images: the 3DGS training loop.

Loss ``(1 - λ)·L1 + λ·(1 - SSIM)`` with ``λ = lambda_dssim``; Adam with one parameter group per raw
parameter (3DGS learning rates, means' rate scaled by the scene radius and decayed exponentially);
SH bands switched on progressively; density control by :class:`DensifyStrategy`; checkpoints every
``ckpt_every`` steps and at the end, from which ``resume=True`` continues after a kill.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from motion4d.gaussians import Gaussians3D
from motion4d.metrics.views import evaluate_views
from motion4d.render.frame import render_frame
from motion4d.optim.strategy import DensifyConfig
from motion4d.optim.trainer_base import (
    GaussianTrainer,
    TrainConfig,
    TrainResult,
    replace_preset,
)

if TYPE_CHECKING:
    from motion4d.data.transforms import ImageSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fit3DConfig(TrainConfig):
    """Everything that decides a static 3D fit (saved as the run's ``config.json``)."""

    batch_size: int = 1
    """Cameras rendered per step (the loss is their mean)."""
    init: Literal["random", "points"] = "random"
    """Initial Gaussians: uniform in the scene's bounding sphere, or a point cloud's points."""
    lr_quats: float = 1e-3
    """Learning rate of the raw rotations."""
    random_background: bool = False
    """Composite each step's targets and renders on a random colour (needs alpha in the data)."""
    eval_every: int = 0
    """Log PSNR on the evaluation views every this many steps (0 = never)."""


_DEFAULT = Fit3DConfig()
PRESETS: dict[str, Fit3DConfig] = {
    # ~30k steps of the paper are far too many for a CPU; this schedule converges on 128² scenes.
    "default": dataclasses.replace(
        _DEFAULT,
        iters=2000,
        densify=DensifyConfig(refine_start=300, refine_stop=1500, refine_every=100, reset_every=900, max_gaussians=60_000),
    ),
    "fast": dataclasses.replace(
        _DEFAULT,
        iters=1000,
        n_init=10_000,
        sh_degree=1,
        sh_degree_interval=300,
        densify=DensifyConfig(refine_start=150, refine_stop=800, refine_every=100, reset_every=0, max_gaussians=30_000),
    ),
    "demo": dataclasses.replace(
        _DEFAULT,
        iters=1000,
        n_init=8000,
        sh_degree=1,
        sh_degree_interval=300,
        densify=DensifyConfig(refine_start=150, refine_stop=800, refine_every=100, reset_every=600, max_gaussians=20_000),
    ),
    "paper": dataclasses.replace(
        _DEFAULT,
        iters=30_000,
        n_init=100_000,
        sh_degree_interval=1000,
        densify=DensifyConfig(),
    ),
    "tiny": dataclasses.replace(
        _DEFAULT,
        iters=30,
        n_init=300,
        sh_degree=1,
        sh_degree_interval=10,
        lr_means=1e-3,
        ckpt_every=10,
        progress=False,
        densify=DensifyConfig(refine_start=5, refine_stop=25, refine_every=10, reset_every=0, grow_grad2d=1e-4, max_gaussians=2000),
    ),
}
"""Named configurations: "default" (a few minutes at 128² on a laptop CPU), "fast", "demo" (the
built-in demo scene in about a minute), "paper" (3DGS's 30k-step schedule, for a GPU), "tiny" (tests)."""


def preset(name: str, **overrides) -> Fit3DConfig:
    """The named preset with some fields replaced."""
    return replace_preset(PRESETS, name, **overrides)


Fit3DResult = TrainResult
"""What a fit produced (``model`` is the fitted :class:`Gaussians3D`)."""


class Trainer3D(GaussianTrainer):
    """Fits ``model`` to the training views of ``views`` (an ImageSet).

    Args:
        config: the fit's settings.
        model: Gaussians to optimise (moved to ``config.device``).
        views: training images ``images [M,H,W,3]`` (on ``config.background``), ``alphas [M,H,W,1]``
            or None, ``viewmats [M,4,4]``, ``Ks [M,3,3]``, ``width``, ``height``.
        scene_scale: scene radius; scales learning rates of the means and density thresholds.
        ckpt_dir: folder for checkpoints (None: none written, no resume).
        eval_views: optional views whose PSNR is logged every ``config.eval_every`` steps.
    """

    desc = "fit3d"

    def __init__(
        self,
        config: Fit3DConfig,
        model: Gaussians3D,
        views: "ImageSet",
        scene_scale: float,
        *,
        ckpt_dir: str | Path | None = None,
        eval_views: "ImageSet | None" = None,
    ):
        if config.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
        if config.random_background and views.alphas is None:
            raise ValueError("random_background needs images with an alpha channel")
        super().__init__(config, model, views, scene_scale, ckpt_dir=ckpt_dir)
        self.eval_views = eval_views
        self.alphas = views.alphas.to(self.device, torch.float32) if views.alphas is not None else None

    def param_lrs(self) -> dict[str, float]:
        return {**super().param_lrs(), "quats": self.config.lr_quats}

    def _targets(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        gt = self.images[idx]
        if not self.config.random_background:
            return gt, self.background[None].expand(len(idx), 3)
        bg = torch.rand(len(idx), 3, generator=self.generator).to(self.device)
        gt = gt + (bg[:, None, None, :] - self.background) * (1.0 - self.alphas[idx])
        return gt, bg

    def train_step(self) -> float:
        """One optimisation step (render, loss, backward, Adam, density control); returns the loss."""
        cfg, step = self.config, self.step
        idx = torch.randperm(len(self.images), generator=self.generator)[: cfg.batch_size].to(self.device)
        gt, bg = self._targets(idx)
        self.update_lrs(self.progress())
        out = render_frame(
            self.model.at_time(), self.viewmats[idx], self.Ks[idx], self.views.width, self.views.height,
            background=bg, sh_degree=self.sh_degree_at(step), backend=cfg.backend,
        )  # fmt: skip
        loss = self.photometric_loss(out.rgb, gt)
        loss.backward()
        self.strategy.update(self.model.params, step, out.meta)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.strategy.refine(self.model.params, self.optimizer, step)
        self.step += 1
        return float(loss.detach())

    def after_step(self) -> None:
        if self.config.eval_every > 0 and self.eval_views is not None and self.step % self.config.eval_every == 0:
            v = self.eval_views
            m = evaluate_views(self.model.at_time(), v.images, v.viewmats, v.Ks, background=self.background, backend=self.config.backend)
            log.info("step %d: eval PSNR %.2f dB, SSIM %.4f, %d Gaussians", self.step, m.mean_psnr, m.mean_ssim, len(self.model))
