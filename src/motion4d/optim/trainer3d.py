"""Fitting static 3D Gaussians to posed images: the 3DGS training loop.

Loss ``(1 - λ)·L1 + λ·(1 - SSIM)`` with ``λ = lambda_dssim``; Adam with one parameter group per raw
parameter (3DGS learning rates, means' rate scaled by the scene radius and decayed exponentially);
SH bands switched on progressively; density control by :class:`DensifyStrategy`; checkpoints every
``ckpt_every`` steps and at the end, from which ``resume=True`` continues after a kill.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from motion4d.gaussians import Gaussians3D
from motion4d.optim.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    restore_optimizer,
    save_checkpoint,
)
from motion4d.optim.evaluation import evaluate_views, render_frame
from motion4d.optim.losses import l1_loss, ssim
from motion4d.optim.strategy import DensifyConfig, DensifyStrategy

if TYPE_CHECKING:
    from motion4d.data.transforms import ImageSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fit3DConfig:
    """Everything that decides a static 3D fit (saved as the run's ``config.json``)."""

    iters: int = 2000
    """Optimisation steps."""
    batch_size: int = 1
    """Cameras rendered per step (the loss is their mean)."""
    sh_degree: int = 3
    """Largest SH degree of the colours."""
    sh_degree_interval: int = 500
    """One more SH band is switched on every this many steps (3DGS: 1000)."""
    init: Literal["random", "points"] = "random"
    """Initial Gaussians: uniform in the scene's bounding sphere, or a point cloud's points."""
    n_init: int = 20_000
    """Number of random initial Gaussians."""
    init_radius: float = 0.5
    """Random initialisation radius as a fraction of the scene radius (the cameras' distance)."""
    init_opacity: float = 0.1
    """Initial opacity."""
    lr_means: float = 1.6e-4
    """Initial learning rate of the means, times the scene radius."""
    lr_means_final: float = 1.6e-6
    """Final learning rate of the means (exponential decay over ``iters``), times the scene radius."""
    lr_quats: float = 1e-3
    """Learning rate of the raw rotations."""
    lr_scales: float = 5e-3
    """Learning rate of the log-scales."""
    lr_opacities: float = 5e-2
    """Learning rate of the opacity logits."""
    lr_sh0: float = 2.5e-3
    """Learning rate of the DC colour coefficients."""
    lr_shN: float = 2.5e-3 / 20
    """Learning rate of the higher SH bands."""
    lambda_dssim: float = 0.2
    """Weight λ of the D-SSIM term: loss = (1-λ)·L1 + λ·(1-SSIM)."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour (RGB in [0,1]) the images are composited on and renders use."""
    random_background: bool = False
    """Composite each step's targets and renders on a random colour (needs alpha in the data)."""
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    """Adaptive density control."""
    ckpt_every: int = 1000
    """Write a checkpoint every this many steps (and always at the end); 0 = only at the end."""
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep."""
    eval_every: int = 0
    """Log PSNR on the evaluation views every this many steps (0 = never)."""
    time_budget_s: float | None = None
    """Stop after this many seconds of training in this call, keeping the result."""
    seed: int = 0
    """Seed of initialisation, camera sampling, backgrounds and splits."""
    device: str = "cpu"
    """Torch device the fit runs on ("cpu", "cuda", "cuda:1", ...)."""
    backend: str = "auto"
    """Rasterizer backend (see :func:`motion4d.render.rasterization`)."""
    progress: bool = True
    """Show a progress bar."""

    def to_dict(self) -> dict:
        """JSON-ready dict (nested ``densify``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Fit3DConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown Fit3DConfig fields: {', '.join(sorted(unknown))}")
        if isinstance(d.get("densify"), dict):
            d["densify"] = DensifyConfig(**d["densify"])
        if "background" in d:
            d["background"] = tuple(float(x) for x in d["background"])
        return cls(**d)


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
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


@dataclass
class Fit3DResult:
    """What a fit produced."""

    model: Gaussians3D
    """The fitted Gaussians."""
    steps: int
    """Completed optimisation steps (including those of earlier, resumed runs)."""
    seconds: float
    """Training wall time over all runs of this fit."""
    losses: list[float]
    """Training loss of each step of this call."""
    n_gaussians: int
    """Final number of Gaussians."""
    stopped_by_budget: bool
    """True when ``time_budget_s`` ended this call before ``iters``."""
    checkpoint: Path | None
    """The last checkpoint written (None without a checkpoint folder)."""


def _means_lr(cfg: Fit3DConfig, scene_scale: float, step: int) -> float:
    t = min(max(step / max(cfg.iters, 1), 0.0), 1.0)
    a, b = math.log(cfg.lr_means * scene_scale), math.log(cfg.lr_means_final * scene_scale)
    return math.exp(a * (1.0 - t) + b * t)


def make_optimizer(params: nn.ParameterDict, cfg: Fit3DConfig, scene_scale: float) -> torch.optim.Adam:
    """Adam with one named group per raw parameter and 3DGS learning rates."""
    lrs = {
        "means": cfg.lr_means * scene_scale,
        "quats": cfg.lr_quats,
        "log_scales": cfg.lr_scales,
        "opacity_logits": cfg.lr_opacities,
        "sh0": cfg.lr_sh0,
        "shN": cfg.lr_shN,
    }
    groups = [{"params": [p], "name": k, "lr": lrs[k]} for k, p in params.items()]
    return torch.optim.Adam(groups, eps=1e-15)


class Trainer3D:
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
        if config.iters < 0 or config.batch_size < 1:
            raise ValueError(f"iters must be >= 0 and batch_size >= 1, got {config.iters}, {config.batch_size}")
        if config.random_background and views.alphas is None:
            raise ValueError("random_background needs images with an alpha channel")
        self.config = config
        self.device = torch.device(config.device)
        self.model = model.to(self.device)
        self.views = views
        self.eval_views = eval_views
        self.scene_scale = float(scene_scale)
        self.ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
        self.images = views.images.to(self.device, torch.float32)
        self.alphas = views.alphas.to(self.device, torch.float32) if views.alphas is not None else None
        self.viewmats = views.viewmats.to(self.device, torch.float32)
        self.Ks = views.Ks.to(self.device, torch.float32)
        self.background = torch.tensor(config.background, dtype=torch.float32, device=self.device)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.strategy = DensifyStrategy(config.densify, self.scene_scale, torch.Generator().manual_seed(config.seed + 1))
        self.optimizer = make_optimizer(self.model.params, config, self.scene_scale)
        self.step = 0
        self.seconds = 0.0

    # ---- checkpoints ----------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write a checkpoint of the current state (and drop old ones)."""
        if self.ckpt_dir is None:
            return None
        extra = {f"strategy.{k}": v for k, v in self.strategy.state_dict().items()}
        extra["rng.trainer"] = self.generator.get_state()
        path = save_checkpoint(checkpoint_path(self.ckpt_dir, self.step), self.model.params, self.optimizer, self.step, self.seconds, extra)
        for old in list_checkpoints(self.ckpt_dir)[: -max(self.config.keep_checkpoints, 1)]:
            old.unlink(missing_ok=True)
        return path

    def restore(self, path: str | Path | None = None) -> bool:
        """Load the newest checkpoint in ``ckpt_dir`` (or ``path``); False when there is none."""
        if path is None:
            found = list_checkpoints(self.ckpt_dir) if self.ckpt_dir is not None else []
            if not found:
                return False
            path = found[-1]
        ckpt = load_checkpoint(path)
        missing = set(self.model.params) ^ set(ckpt.params)
        if missing:
            raise ValueError(f"{path}: parameters do not match the model ({', '.join(sorted(missing))})")
        for k, v in ckpt.params.items():
            self.model.params[k] = nn.Parameter(v.to(self.device, self.model.params[k].dtype))
        self.optimizer = make_optimizer(self.model.params, self.config, self.scene_scale)
        restore_optimizer(self.optimizer, ckpt, self.device)
        self.strategy.load_state_dict({k.split(".", 1)[1]: v for k, v in ckpt.extra.items() if k.startswith("strategy.")}, self.device)
        if "rng.trainer" in ckpt.extra:
            self.generator.set_state(ckpt.extra["rng.trainer"])
        self.step, self.seconds = ckpt.step, ckpt.seconds
        log.info("resumed from %s at step %d (%d Gaussians)", path, self.step, len(self.model))
        return True

    # ---- one step -------------------------------------------------------------------------
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
        for group in self.optimizer.param_groups:
            if group["name"] == "means":
                group["lr"] = _means_lr(cfg, self.scene_scale, step)
        out = render_frame(
            self.model.at_time(), self.viewmats[idx], self.Ks[idx], self.views.width, self.views.height,
            background=bg, sh_degree=min(step // max(cfg.sh_degree_interval, 1), cfg.sh_degree), backend=cfg.backend,
        )  # fmt: skip
        loss = (1.0 - cfg.lambda_dssim) * l1_loss(out.rgb, gt)
        if cfg.lambda_dssim > 0:
            loss = loss + cfg.lambda_dssim * (1.0 - ssim(out.rgb, gt))
        loss.backward()
        self.strategy.update(self.model.params, step, out.meta)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.strategy.refine(self.model.params, self.optimizer, step)
        self.step += 1
        return float(loss.detach())

    # ---- the loop -------------------------------------------------------------------------
    def train(self, *, resume: bool = False, on_step: Callable[[int, float], None] | None = None) -> Fit3DResult:
        """Run until ``config.iters`` steps (or the time budget); ``resume`` first loads the newest checkpoint.

        ``on_step(step, loss)`` is called after each step (e.g. for logging; raising stops training
        without a final checkpoint, as a kill would).
        """
        cfg = self.config
        if resume and not self.restore():
            log.info("no checkpoint to resume from; starting at step 0")
        losses: list[float] = []
        stopped, last_ckpt = False, None
        start = time.perf_counter()
        base_seconds = self.seconds
        bar = tqdm(total=cfg.iters, initial=self.step, desc="fit3d", disable=None if cfg.progress else True, dynamic_ncols=True)
        try:
            while self.step < cfg.iters:
                loss = self.train_step()
                losses.append(loss)
                self.seconds = base_seconds + time.perf_counter() - start
                bar.update(1)
                if self.step % 10 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}", n=len(self.model))
                if on_step is not None:
                    on_step(self.step, loss)
                if cfg.eval_every > 0 and self.eval_views is not None and self.step % cfg.eval_every == 0:
                    self._log_eval()
                if cfg.ckpt_every > 0 and self.step % cfg.ckpt_every == 0 and self.step < cfg.iters:
                    last_ckpt = self.save()
                if cfg.time_budget_s is not None and time.perf_counter() - start >= cfg.time_budget_s:
                    stopped = self.step < cfg.iters
                    if stopped:
                        log.info("time budget of %.0f s reached at step %d of %d", cfg.time_budget_s, self.step, cfg.iters)
                    break
        finally:
            bar.close()
        last_ckpt = self.save() or last_ckpt
        return Fit3DResult(self.model, self.step, self.seconds, losses, len(self.model), stopped, last_ckpt)

    def _log_eval(self) -> None:
        v = self.eval_views
        m = evaluate_views(self.model.at_time(), v.images, v.viewmats, v.Ks, background=self.background, backend=self.config.backend)
        log.info("step %d: eval PSNR %.2f dB, SSIM %.4f, %d Gaussians", self.step, m.mean_psnr, m.mean_ssim, len(self.model))
