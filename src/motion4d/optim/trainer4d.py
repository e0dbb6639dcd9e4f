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
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from motion4d.optim.checkpoint import checkpoint_path, list_checkpoints, load_checkpoint, restore_optimizer, save_checkpoint
from motion4d.optim.evaluation import render_frame
from motion4d.optim.losses import l1_loss, ssim
from motion4d.optim.samplers import FrameSampler, SamplerConfig
from motion4d.optim.strategy import DensifyConfig, DensifyStrategy

if TYPE_CHECKING:
    from motion4d.data.transforms import ImageSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconstruct4DConfig:
    """Everything that decides a 4D reconstruction (saved in the run's ``config.json``)."""

    iters: int = 3000
    """Optimisation steps."""
    batch_views: int = 4
    """Images rendered per step (each at its own time; the loss is their mean); see ``sampler.frames_per_step``."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """Which images each step uses (sliding windows or uniform)."""
    n_init: int = 10_000
    """Number of random initial Gaussians."""
    init_radius: float = 0.5
    """Random initialisation radius as a fraction of the scene radius (the cameras' distance)."""
    init_opacity: float = 0.1
    """Initial opacity."""
    sh_degree: int = 1
    """Largest SH degree of the colours."""
    sh_degree_interval: int = 500
    """One more SH band is switched on every this many steps."""
    lr_means: float = 1.6e-4
    """Initial learning rate of the means, times the scene radius."""
    lr_means_final: float = 1.6e-6
    """Final learning rate of the means (exponential decay over ``iters``), times the scene radius."""
    lr_rotation: float = 1e-3
    """Learning rate of the raw rotations (``quats``, or the rotor model's ``rotors``)."""
    lr_scales: float = 5e-3
    """Learning rate of the log-scales."""
    lr_opacities: float = 5e-2
    """Learning rate of the opacity logits."""
    lr_sh0: float = 2.5e-3
    """Learning rate of the DC colour coefficients."""
    lr_shN: float = 2.5e-3 / 20
    """Learning rate of the higher SH bands."""
    lr_other: float = 1e-3
    """Learning rate of any other per-Gaussian parameter a model has (e.g. velocities)."""
    lr_field: float = 1.6e-4
    """Learning rate of the model's field parameters (deformation HexPlane + MLPs), decayed like the means'.
    (1.6e-3 let the deformation carry every Gaussian out of view on riggedfigure: 16.8 dB, the empty
    background's PSNR, vs 25.5 dB at 1.6e-4 after 100 s at 64².)"""
    lr_field_final: float = 1.6e-5
    """Final learning rate of the field parameters."""
    lambda_dssim: float = 0.2
    """Weight λ of the D-SSIM term: photometric loss = (1-λ)·L1 + λ·(1-SSIM)."""
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
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    """Adaptive density control."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour (RGB in [0,1]) the images are composited on and renders use."""
    ckpt_every: int = 500
    """Write a checkpoint every this many steps (and always at the end); 0 = only at the end."""
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep."""
    time_budget_s: float | None = None
    """Stop after this many seconds of training in this call, keeping the result."""
    seed: int = 0
    """Seed of initialisation and image sampling."""
    device: str = "cpu"
    """Torch device ("cpu", "cuda", "cuda:1", ...)."""
    backend: str = "auto"
    """Rasterizer backend (see :func:`motion4d.render.rasterization`)."""
    progress: bool = True
    """Show a progress bar."""

    def to_dict(self) -> dict:
        """JSON-ready dict (nested ``sampler`` and ``densify``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Reconstruct4DConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown Reconstruct4DConfig fields: {', '.join(sorted(unknown))}")
        if isinstance(d.get("densify"), dict):
            d["densify"] = DensifyConfig(**d["densify"])
        if isinstance(d.get("sampler"), dict):
            s = dict(d["sampler"])
            s["window_fractions"] = tuple(float(x) for x in s.get("window_fractions", SamplerConfig.window_fractions))
            d["sampler"] = SamplerConfig(**s)
        if "background" in d:
            d["background"] = tuple(float(x) for x in d["background"])
        return cls(**d)


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
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


@dataclass
class Reconstruct4DResult:
    """What a 4D fit produced."""

    model: nn.Module
    """The fitted model."""
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


def _decayed(lr0: float, lr1: float, progress: float) -> float:
    t = min(max(progress, 0.0), 1.0)
    return math.exp(math.log(lr0) * (1.0 - t) + math.log(lr1) * t)


def _field_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    if not hasattr(model, "field_parameters"):
        return []
    found = model.field_parameters()
    items = found.items() if isinstance(found, dict) else enumerate(found)
    return [(f"field.{k}", p) for k, p in items]


def make_optimizer(model: nn.Module, cfg: Reconstruct4DConfig, scene_scale: float) -> torch.optim.Adam:
    """Adam with one named group per per-Gaussian parameter and one per field parameter."""
    lrs = {
        "means": cfg.lr_means * scene_scale,
        "quats": cfg.lr_rotation,
        "rotors": cfg.lr_rotation,
        "log_scales": cfg.lr_scales,
        "opacity_logits": cfg.lr_opacities,
        "sh0": cfg.lr_sh0,
        "shN": cfg.lr_shN,
    }
    groups = [{"params": [p], "name": k, "lr": lrs.get(k, cfg.lr_other)} for k, p in model.params.items()]
    groups += [{"params": [p], "name": k, "lr": cfg.lr_field} for k, p in _field_parameters(model)]
    return torch.optim.Adam(groups, eps=1e-15)


class Trainer4D:
    """Fits a 4D ``model`` to the training images of ``views`` (an ImageSet with ``times``).

    Args:
        config: the fit's settings.
        model: 4D-protocol model to optimise (moved to ``config.device``).
        views: training images ``images [M,H,W,3]``, ``viewmats [M,4,4]``, ``Ks [M,3,3]``, ``times [M]``.
        scene_scale: scene radius; scales the means' learning rate, density thresholds and the temporal term.
        ckpt_dir: folder for checkpoints (None: none written, no resume).
    """

    def __init__(self, config: Reconstruct4DConfig, model: nn.Module, views: "ImageSet", scene_scale: float, *, ckpt_dir: str | Path | None = None):
        if config.iters < 0 or config.batch_views < 1:
            raise ValueError(f"iters must be >= 0 and batch_views >= 1, got {config.iters}, {config.batch_views}")
        if views.times is None:
            raise ValueError("4D training needs images with a 'time' per frame")
        self.config = config
        self.device = torch.device(config.device)
        self.model = model.to(self.device)
        self.views = views
        self.scene_scale = float(scene_scale)
        self.ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
        self.images = views.images.to(self.device, torch.float32)
        self.viewmats = views.viewmats.to(self.device, torch.float32)
        self.Ks = views.Ks.to(self.device, torch.float32)
        self.times = views.times.float()
        self.background = torch.tensor(config.background, dtype=torch.float32, device=self.device)
        self.sampler = FrameSampler(config.sampler, self.times, config.batch_views)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.strategy = DensifyStrategy(config.densify, self.scene_scale, torch.Generator().manual_seed(config.seed + 1))
        self.optimizer = make_optimizer(self.model, config, self.scene_scale)
        self.step = 0
        self.seconds = 0.0
        self._unweighted: set[str] = set()
        self._call_start: float | None = None

    # ---- checkpoints ----------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write a checkpoint of the current state (and drop old ones)."""
        if self.ckpt_dir is None:
            return None
        extra = {f"strategy.{k}": v for k, v in self.strategy.state_dict().items()}
        extra["rng.trainer"] = self.generator.get_state()
        extra.update({name: p.detach() for name, p in _field_parameters(self.model)})
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
        with torch.no_grad():
            for k, v in ckpt.params.items():
                self.model.params[k] = nn.Parameter(v.to(self.device, self.model.params[k].dtype))
            for name, p in _field_parameters(self.model):
                if name not in ckpt.extra or ckpt.extra[name].shape != p.shape:
                    raise ValueError(f"{path}: field parameter {name} missing or of another shape")
                p.copy_(ckpt.extra[name].to(p))
        self.optimizer = make_optimizer(self.model, self.config, self.scene_scale)
        restore_optimizer(self.optimizer, ckpt, self.device)
        self.strategy.load_state_dict({k.split(".", 1)[1]: v for k, v in ckpt.extra.items() if k.startswith("strategy.")}, self.device)
        if "rng.trainer" in ckpt.extra:
            self.generator.set_state(ckpt.extra["rng.trainer"])
        self.step, self.seconds = ckpt.step, ckpt.seconds
        log.info("resumed from %s at step %d (%d Gaussians)", path, self.step, len(self.model))
        return True

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

    def progress(self) -> float:
        """Training progress in [0,1]: the larger of the step fraction and the time-budget fraction of this call.

        Learning-rate decay and the sampler's window scales follow it, so a run stopped by its budget
        still anneals and goes through every window size."""
        p = self.step / max(self.config.iters, 1)
        if self.config.time_budget_s and self._call_start is not None:
            p = max(p, (time.perf_counter() - self._call_start) / self.config.time_budget_s)
        return min(p, 1.0)

    def train_step(self) -> float:
        """One optimisation step (renders, loss, backward, Adam, density control); returns the loss."""
        cfg, step = self.config, self.step
        progress = self.progress()
        sample = self.sampler.sample(step, progress, self.generator)
        for group in self.optimizer.param_groups:
            if group["name"] == "means":
                group["lr"] = _decayed(cfg.lr_means * self.scene_scale, cfg.lr_means_final * self.scene_scale, progress)
            elif group["name"].startswith("field."):
                group["lr"] = _decayed(cfg.lr_field, cfg.lr_field_final, progress)
        rows = sample.rows
        row_times = self.times[rows]
        sh_degree = min(step // max(cfg.sh_degree_interval, 1), cfg.sh_degree)
        loss = torch.zeros((), device=self.device)
        metas = []
        for t in torch.unique(row_times).tolist():
            idx = rows[row_times == t].to(self.device)
            out = render_frame(
                self.model.at_time(t), self.viewmats[idx], self.Ks[idx], self.views.width, self.views.height,
                background=self.background, sh_degree=sh_degree, backend=cfg.backend,
            )  # fmt: skip
            gt = self.images[idx]
            photo = (1.0 - cfg.lambda_dssim) * l1_loss(out.rgb, gt)
            if cfg.lambda_dssim > 0:
                photo = photo + cfg.lambda_dssim * (1.0 - ssim(out.rgb, gt))
            loss = loss + photo * (len(idx) / len(rows))
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

    # ---- the loop -------------------------------------------------------------------------
    def train(self, *, resume: bool = False, on_step: Callable[[int, float], None] | None = None) -> Reconstruct4DResult:
        """Run until ``config.iters`` steps (or the time budget); ``resume`` first loads the newest checkpoint.

        ``on_step(step, loss)`` is called after each step (raising stops training without a final
        checkpoint, as a kill would).
        """
        cfg = self.config
        if resume and not self.restore():
            log.info("no checkpoint to resume from; starting at step 0")
        losses: list[float] = []
        stopped, last_ckpt = False, None
        start = self._call_start = time.perf_counter()
        base_seconds = self.seconds
        bar = tqdm(total=cfg.iters, initial=self.step, desc="reconstruct", disable=None if cfg.progress else True, dynamic_ncols=True)
        try:
            while self.step < cfg.iters:
                loss = self.train_step()
                losses.append(loss)
                self.seconds = base_seconds + time.perf_counter() - start
                bar.update(1)
                if self.step % 10 == 0:
                    start_f, size = self.sampler.window(self.step, self.progress())
                    bar.set_postfix(loss=f"{loss:.4f}", n=len(self.model), window=f"{start_f}+{size}")
                if on_step is not None:
                    on_step(self.step, loss)
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
        return Reconstruct4DResult(self.model, self.step, self.seconds, losses, len(self.model), stopped, last_ckpt)
