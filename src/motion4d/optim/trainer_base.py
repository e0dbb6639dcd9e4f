"""What every Gaussian fitting loop shares: the base config, Adam groups, checkpoints, the loop.

:class:`GaussianTrainer` runs its loss providers (:mod:`motion4d.optim.providers`) until
``config.iters`` steps or the time budget, with a progress bar, checkpoints every ``ckpt_every`` steps
(resumable after a kill: parameters, Adam state, density-control state and the sampling RNG are saved)
and learning-rate decay that follows :meth:`GaussianTrainer.progress`. Each step minimises
``Σ lambda_<name> · loss_<name>`` over the providers' terms and the model's regularisers, with the
weights of the config: a term without a ``lambda_<name>`` field is an error.

The model follows :class:`~motion4d.optim.hooks.GaussianModel` and optionally the other protocols of
:mod:`motion4d.optim.hooks` (field parameters, trained at ``lr_field`` and checkpointed by name;
regularisers; density-control hooks).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from motion4d.progress import bar_disabled
from motion4d.config_dict import from_config_dict
from motion4d.optim.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    restore_optimizer,
    save_checkpoint,
)
from motion4d.errors import DataError
from motion4d.optim.observers import notify
from motion4d.optim.config_checks import at_least, field_names, positive, within
from motion4d.optim.hooks import HasRegularizers, field_parameters
from motion4d.optim.providers import LossProvider, StepContext, as_loss_output
from motion4d.optim.strategy import DensifyConfig, DensifyStrategy

log = logging.getLogger(__name__)

C = TypeVar("C", bound="TrainConfig")


@dataclass(frozen=True)
class TrainConfig:
    """Settings every Gaussian fit has (subclasses add theirs and change defaults)."""

    iters: int = 2000
    """Optimisation steps."""
    sh_degree: int = 3
    """Largest SH degree of the colours."""
    sh_degree_interval: int = 500
    """One more SH band is switched on every this many steps (3DGS: 1000)."""
    n_init: int = 20_000
    """Number of random initial Gaussians."""
    init_radius: float = 0.5
    """Random initialisation radius as a fraction of the scene radius (the cameras' distance)."""
    init_opacity: float = 0.1
    """Initial opacity."""
    lr_means: float = 1.6e-4
    """Initial learning rate of the means, times the scene radius."""
    lr_means_final: float = 1.6e-6
    """Final learning rate of the means (exponential decay over training), times the scene radius."""
    lr_scales: float = 5e-3
    """Learning rate of the log-scales."""
    lr_opacities: float = 5e-2
    """Learning rate of the opacity logits."""
    lr_sh0: float = 2.5e-3
    """Learning rate of the DC colour coefficients."""
    lr_shN: float = 2.5e-3 / 20
    """Learning rate of the higher SH bands."""
    lr_field: float = 1.6e-4
    """Learning rate of the model's field parameters (those that are not per-Gaussian, e.g. deformation MLPs),
    decayed like the means' (4DGaussians' deformation_lr). (1.6e-3 let the deformation carry every Gaussian
    out of view on riggedfigure: 16.8 dB, the empty background's PSNR.)"""
    lr_field_final: float = 1.6e-5
    """Final learning rate of those field parameters."""
    lambda_photometric: float = 1.0
    """Weight of the photometric term (``loss_photometric``) against the training images."""
    lambda_dssim: float = 0.2
    """Share λ of D-SSIM inside the photometric term: (1-λ)·L1 + λ·(1-SSIM)."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour (RGB in [0,1]) the images are composited on and renders use."""
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    """Adaptive density control."""
    ckpt_every: int = 1000
    """Write a checkpoint every this many steps (and always at the end); 0 = only at the end."""
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep."""
    time_budget_s: float | None = None
    """Stop after this many seconds of training in this call, keeping the result."""
    seed: int = 0
    """Seed of initialisation and sampling."""
    device: str = "cpu"
    """Torch device ("cpu", "cuda", "cuda:1", ...)."""
    backend: str = "auto"
    """Rasterizer backend (see :func:`motion4d.render.rasterization`)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self):
        at_least(self, 0, "iters", "sh_degree_interval", "ckpt_every", "keep_checkpoints", *field_names(self, "lr_"), *field_names(self, "lambda_"))
        at_least(self, 1, "n_init")
        within(self, "sh_degree", 0, 3)
        within(self, "lambda_dssim", 0.0, 1.0)
        within(self, "init_opacity", 0.0, 1.0, open_low=True, open_high=True)
        positive(self, "init_radius")
        if self.time_budget_s is not None and not self.time_budget_s >= 0:
            raise ValueError(f"time_budget_s must be >= 0 or None, got {self.time_budget_s!r}")
        if len(self.background) != 3 or not all(0.0 <= c <= 1.0 for c in self.background):
            raise ValueError(f"background must be 3 values in [0, 1], got {self.background!r}")

    def to_dict(self) -> dict:
        """JSON-ready dict (nested configs as dicts)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], d: dict) -> C:
        """Inverse of :meth:`to_dict`; unknown keys (at any depth) and mistyped values are a ValueError naming the key."""
        return from_config_dict(cls, d)


def replace_preset(presets: dict[str, C], name: str, **overrides) -> C:
    """``presets[name]`` with some fields replaced; an unknown name is a ValueError listing the choices."""
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(presets)}")
    return dataclasses.replace(presets[name], **overrides)


@dataclass
class TrainResult:
    """What a fit produced."""

    model: nn.Module
    """The fitted model."""
    steps: int
    """Completed optimisation steps (including those of earlier, resumed runs)."""
    seconds: float
    """Training wall time over all runs of this fit."""
    losses: list[float]
    """Training loss (the weighted sum) of each step of this call."""
    n_gaussians: int
    """Final number of Gaussians."""
    stopped_by_budget: bool
    """True when ``time_budget_s`` ended this call before ``iters``."""
    checkpoint: Path | None
    """The last checkpoint written (None without a checkpoint folder)."""
    terms: dict[str, list[float]] = field(default_factory=dict)
    """Each term's unweighted value per step of this call, aligned with ``losses`` (NaN on steps without
    it), by ``loss_<name>``."""
    report: dict[str, Any] = field(default_factory=dict)
    """What the trainer reports beyond these (JSON-ready; see :meth:`GaussianTrainer.report`)."""


def rebuilt_optimizer(old: torch.optim.Adam, new: torch.optim.Adam) -> torch.optim.Adam:
    """``new`` (the same named groups as ``old``, some parameters replaced by grown ones) with ``old``'s Adam
    state carried over: a kept parameter keeps its state; one that grew along a dimension keeps the old
    entries' moments, its new entries start with no momentum and the old entries' mean second moment
    (so their first steps are not the large ones a zero second moment would give)."""
    olds = {g["name"]: g["params"][0] for g in old.param_groups}
    for group in new.param_groups:
        p, q = group["params"][0], olds.get(group["name"])
        state = old.state.get(q) if q is not None else None
        if not state:
            continue
        if p.shape == q.shape:
            new.state[p] = state
            continue
        grown = [d for d in range(p.dim()) if p.shape[d] != q.shape[d]] if p.dim() == q.dim() else []
        if len(grown) != 1 or p.shape[grown[0]] < q.shape[grown[0]]:
            continue  # not a growth: start afresh
        d, n = grown[0], q.shape[grown[0]]
        carried = {"step": state["step"]}
        for key in ("exp_avg", "exp_avg_sq"):
            fill = torch.zeros_like(p) if key == "exp_avg" else state[key].mean(dim=d, keepdim=True).expand_as(p).clone()
            fill.narrow(d, 0, n).copy_(state[key])
            carried[key] = fill
        new.state[p] = carried
    return new


def decayed(lr0: float, lr1: float, progress: float) -> float:
    """Exponential interpolation from ``lr0`` (progress 0) to ``lr1`` (progress 1); linear when either is 0
    (a rate of 0 freezes the parameters)."""
    t = min(max(progress, 0.0), 1.0)
    if lr0 <= 0.0 or lr1 <= 0.0:
        return lr0 * (1.0 - t) + lr1 * t
    return math.exp(math.log(lr0) * (1.0 - t) + math.log(lr1) * t)


class GaussianTrainer:
    """The shared loop over loss providers. Subclasses set ``desc`` and add their providers and learning rates.

    Args:
        config: the fit's settings (a :class:`TrainConfig`).
        model: model to optimise (moved to ``config.device``), a :class:`~motion4d.optim.hooks.GaussianModel`.
        scene_scale: scene radius; scales the means' learning rate and density thresholds.
        losses: the loss providers (:mod:`motion4d.optim.providers`), called in order each step; more may be
            appended to :attr:`losses` before training.
        ckpt_dir: folder for checkpoints (None: none written, no resume).
    """

    desc = "fit"
    """Progress-bar label."""
    densifies = True
    """Whether density control (``config.densify``) runs on the model's Gaussians."""

    def __init__(self, config: TrainConfig, model: nn.Module, scene_scale: float = 1.0, *, losses: Sequence[LossProvider] = (),
                 ckpt_dir: str | Path | None = None):  # fmt: skip
        self.config = config
        self.device = torch.device(config.device)
        self.model = model.to(self.device)
        self.scene_scale = float(scene_scale)
        self.ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
        self.losses: list[LossProvider] = list(losses)
        """The loss providers, called in this order each step."""
        self.background = torch.tensor(config.background, dtype=torch.float32, device=self.device)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.strategy = DensifyStrategy(config.densify, self.scene_scale, torch.Generator().manual_seed(config.seed + 1))
        self.optimizer = self.make_optimizer()
        self.step = 0
        self.seconds = 0.0
        self.last_terms: dict[str, float] = {}
        """The unweighted terms of the latest step."""
        self._lambda_fields = set(field_names(config, "lambda_"))
        self._call_start: float | None = None

    # ---- optimiser ------------------------------------------------------------------------
    def param_lrs(self) -> dict[str, float]:
        """Learning rate of each per-Gaussian parameter name (names not listed: :meth:`other_lr`)."""
        cfg = self.config
        return {
            "means": cfg.lr_means * self.scene_scale,
            "log_scales": cfg.lr_scales,
            "opacity_logits": cfg.lr_opacities,
            "sh0": cfg.lr_sh0,
            "shN": cfg.lr_shN,
        }

    def other_lr(self) -> float | None:
        """Learning rate of per-Gaussian parameters :meth:`param_lrs` does not name (None: they are an error)."""
        return None

    def make_optimizer(self) -> torch.optim.Adam:
        """Adam with one named group per per-Gaussian parameter and one per field parameter."""
        lrs = self.param_lrs()
        other = self.other_lr()
        groups = []
        for k, p in self.model.params.items():
            if k not in lrs and other is None:
                raise ValueError(f"no learning rate for parameter {k!r}")
            groups.append({"params": [p], "name": k, "lr": lrs.get(k, other)})
        groups += [{"params": [p], "name": k, "lr": self.field_lr(k, 0.0)} for k, p in field_parameters(self.model)]
        return torch.optim.Adam(groups, eps=1e-15)

    def field_lr(self, name: str, progress: float) -> float:
        """Learning rate of field parameter ``name`` ("field.<model's name>") at ``progress``:
        ``lr_field`` decayed to ``lr_field_final``."""
        return decayed(self.config.lr_field, self.config.lr_field_final, progress)

    def update_lrs(self, progress: float) -> None:
        """Decay the means' (and field parameters') learning rates to ``progress`` in [0,1]."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            if group["name"] == "means":
                group["lr"] = decayed(cfg.lr_means * self.scene_scale, cfg.lr_means_final * self.scene_scale, progress)
            elif group["name"].startswith("field."):
                group["lr"] = self.field_lr(group["name"], progress)

    def progress(self) -> float:
        """Training progress in [0,1]: the larger of the step fraction and the time-budget fraction of this call.

        Learning-rate decay follows it, so a run stopped by its budget still anneals."""
        p = self.step / max(self.config.iters, 1)
        if self.config.time_budget_s and self._call_start is not None:
            p = max(p, (time.perf_counter() - self._call_start) / self.config.time_budget_s)
        return min(p, 1.0)

    def sh_degree_at(self, step: int) -> int:
        """SH degree in use at ``step`` (one more band every ``sh_degree_interval`` steps)."""
        return min(step // max(self.config.sh_degree_interval, 1), self.config.sh_degree)

    # ---- checkpoints ----------------------------------------------------------------------
    def extra_state(self) -> dict[str, Tensor]:
        """Subclass state to checkpoint besides parameters, Adam, density control and the RNG."""
        return {}

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def before_restore(self, state: dict[str, Tensor]) -> None:
        """Hook run with a checkpoint's :meth:`extra_state` before its parameters load (e.g. to resize the model)."""

    def save(self) -> Path | None:
        """Write a checkpoint of the current state (and drop old ones)."""
        if self.ckpt_dir is None:
            return None
        extra = {f"strategy.{k}": v for k, v in self.strategy.state_dict().items()}
        extra["rng.trainer"] = self.generator.get_state()
        extra.update({name: p.detach() for name, p in field_parameters(self.model)})
        extra.update({f"trainer.{k}": v for k, v in self.extra_state().items()})
        path = save_checkpoint(checkpoint_path(self.ckpt_dir, self.step), self.model.params, self.optimizer, self.step, self.seconds, extra)
        for old in list_checkpoints(self.ckpt_dir)[: -max(self.config.keep_checkpoints, 1)]:
            old.unlink(missing_ok=True)
        return path

    def restore(self, path: str | Path | None = None) -> bool:
        """Load the newest checkpoint in ``ckpt_dir`` that loads (or ``path``); False when there is none."""
        if path is None:
            found = load_latest_checkpoint(self.ckpt_dir) if self.ckpt_dir is not None else None
            if found is None:
                return False
            path, ckpt = found
        else:
            ckpt = load_checkpoint(path)
        trainer_state = {k.split(".", 1)[1]: v for k, v in ckpt.extra.items() if k.startswith("trainer.")}
        self.before_restore(trainer_state)
        missing = set(self.model.params) ^ set(ckpt.params)
        if missing:
            raise ValueError(f"{path}: parameters do not match the model ({', '.join(sorted(missing))})")
        with torch.no_grad():
            for k, v in ckpt.params.items():
                self.model.params[k] = nn.Parameter(v.to(self.device, self.model.params[k].dtype))
            for name, p in field_parameters(self.model):
                if name not in ckpt.extra or ckpt.extra[name].shape != p.shape:
                    raise ValueError(f"{path}: field parameter {name} missing or of another shape")
                p.copy_(ckpt.extra[name].to(p))
        self.optimizer = self.make_optimizer()
        try:
            restore_optimizer(self.optimizer, ckpt, self.device)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from None
        self.strategy.load_state_dict({k.split(".", 1)[1]: v for k, v in ckpt.extra.items() if k.startswith("strategy.")}, self.device)
        if "rng.trainer" in ckpt.extra:
            self.generator.set_state(ckpt.extra["rng.trainer"])
        self.load_extra_state(trainer_state)
        self.step, self.seconds = ckpt.step, ckpt.seconds
        log.info("resumed from %s at step %d (%d Gaussians)", path, self.step, len(self.model))
        return True

    # ---- the loss ----------------------------------------------------------------------
    def weight(self, name: str) -> float:
        """The config's ``lambda_<name>`` for the term ``loss_<name>``; a ValueError when it has none."""
        key = "lambda_" + name.removeprefix("loss_")
        if key not in self._lambda_fields:
            raise ValueError(f"loss term {name!r} has no weight: {type(self.config).__name__} has no field {key}")
        return getattr(self.config, key)

    def model_terms(self, t: float | None) -> dict[str, Tensor]:
        """The model's regularisers at ``t`` (:class:`~motion4d.optim.hooks.HasRegularizers`) as ``loss_<name>``
        terms; none for a model without."""
        if not isinstance(self.model, HasRegularizers):
            return {}
        return {f"loss_{k}": v for k, v in self.model.regularizers(t).items()}

    def step_terms(self, ctx: StepContext) -> tuple[dict[str, Tensor], list[dict]]:
        """Every provider's terms, then the model's regularisers (at the first time a provider rendered),
        and the metas of the step's renders."""
        terms: dict[str, Tensor] = {}
        metas: list[dict] = []
        t = None
        for provider in self.losses:
            out = as_loss_output(provider(ctx))
            metas += out.metas
            t = out.time if t is None else t
            self._add_terms(terms, out.losses)
        self._add_terms(terms, self.model_terms(t))
        return terms, metas

    @staticmethod
    def _add_terms(terms: dict[str, Tensor], new: dict[str, Tensor]) -> None:
        twice = terms.keys() & new.keys()
        if twice:
            raise ValueError(f"loss terms computed twice in one step: {', '.join(sorted(twice))}")
        terms.update(new)

    def total_loss(self, terms: dict[str, Tensor]) -> Tensor:
        """``Σ lambda_<name> · loss_<name>`` over ``terms`` (terms of weight 0 are left out)."""
        total = torch.zeros((), device=self.device)
        for name, value in terms.items():
            w = self.weight(name)
            if w:
                total = total + w * value
        if not total.requires_grad:
            raise ValueError(f"no loss term with a weight > 0 depends on the parameters (terms: {', '.join(terms) or 'none'})")
        return total

    # ---- the loop -------------------------------------------------------------------------
    def before_step(self, progress: float) -> None:
        """Hook run at the start of each step, before the learning rates are set for ``progress``."""

    def before_refine(self) -> None:
        """Hook run after the optimizer step, before density control refines."""

    def train_step(self) -> float:
        """One optimisation step (loss providers, weighted loss, backward, Adam, density control); returns the loss."""
        step = self.step
        progress = self.progress()
        self.before_step(progress)
        self.update_lrs(progress)
        terms, metas = self.step_terms(StepContext(step, progress, self.sh_degree_at(step), self.generator))
        loss = self.total_loss(terms)
        loss.backward()
        if not self._finite(loss):  # skip the update, as a loss scaler skips an overflowed step
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped_steps += 1
            if self.skipped_steps in (1, 10, 100):
                log.warning("step %d: non-finite loss or gradient, update skipped (%d so far)", step, self.skipped_steps)
            self.step += 1
            self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
            return float(loss.detach())
        if self.densifies:
            for meta in metas:
                if meta["means2d"].grad is not None:  # None: the render fed only terms of weight 0
                    self.strategy.update(self.model.params, step, meta)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.densifies:
            self.before_refine()
            self.strategy.refine(self.model.params, self.optimizer, step, model=self.model)
        self.step += 1
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        return float(loss.detach())

    skipped_steps: int = 0
    """Steps whose update was skipped because the loss or a gradient was not finite."""

    def _finite(self, loss: Tensor) -> bool:
        """Whether ``loss`` and every parameter's gradient are finite."""
        grads = [p.grad for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        return bool(torch.isfinite(loss)) and all(bool(torch.isfinite(g).all()) for g in grads)

    def postfix(self, loss: float) -> dict[str, object]:
        """Fields shown on the progress bar every 10 steps: the loss, the count, each weighted term's value."""
        terms = {k.removeprefix("loss_"): f"{v:.3g}" for k, v in self.last_terms.items() if self.weight(k)}
        return {"loss": f"{loss:.4f}", "n": len(self.model), **terms}

    def after_step(self) -> None:
        """Hook run after each step's bookkeeping (e.g. periodic evaluation)."""

    def report(self) -> dict[str, Any]:
        """What this trainer tells its caller beyond the loss and count (JSON-ready; :attr:`TrainResult.report`)."""
        return {}

    def train(self, *, resume: bool = False, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
        """Run until ``config.iters`` steps (or the time budget); ``resume`` first loads the newest checkpoint.

        ``on_step(step, loss)`` is called after each step (raising stops training without a final
        checkpoint, as a kill would), then the registered observers (:mod:`motion4d.optim.observers`).
        Ctrl-C (KeyboardInterrupt) writes a checkpoint of the steps done, then propagates.
        """
        cfg = self.config
        if not self.losses:
            raise ValueError(f"{type(self).__name__} has no loss providers")
        if resume and not self.restore():
            log.info("no checkpoint to resume from; starting at step 0")
        losses: list[float] = []
        terms: dict[str, list[float]] = {}
        stopped, last_ckpt = False, None
        start = self._call_start = time.perf_counter()
        base_seconds = self.seconds
        bar = tqdm(total=cfg.iters, initial=self.step, desc=self.desc, disable=bar_disabled(cfg.progress), dynamic_ncols=True)
        try:
            while self.step < cfg.iters:
                loss = self.train_step()
                losses.append(loss)
                for name in [*terms, *(k for k in self.last_terms if k not in terms)]:
                    terms.setdefault(name, [math.nan] * (len(losses) - 1)).append(self.last_terms.get(name, math.nan))
                self.seconds = base_seconds + time.perf_counter() - start
                bar.update(1)
                if self.step % 10 == 0:
                    bar.set_postfix(**self.postfix(loss))
                if on_step is not None:
                    on_step(self.step, loss)
                notify(self, self.step, loss)
                self.after_step()
                if cfg.ckpt_every > 0 and self.step % cfg.ckpt_every == 0 and self.step < cfg.iters:
                    last_ckpt = self.save()
                if cfg.time_budget_s is not None and time.perf_counter() - start >= cfg.time_budget_s:
                    stopped = self.step < cfg.iters
                    if stopped:
                        log.info("time budget of %.0f s reached at step %d of %d", cfg.time_budget_s, self.step, cfg.iters)
                    break
        except KeyboardInterrupt:  # Ctrl-C: keep what was done, then stop as asked
            if self.step > 0 and self.ckpt_dir is not None:
                log.info("interrupted at step %d; checkpoint %s written", self.step, self.save())
            raise
        finally:
            bar.close()
        last_ckpt = self.save() or last_ckpt
        return TrainResult(self.model, self.step, self.seconds, losses, len(self.model), stopped, last_ckpt, terms, self.report())
