"""Adaptive density control of 3DGS (Kerbl et al. 2023), after gsplat's ``DefaultStrategy``.

Between ``refine_start`` and ``refine_stop`` the strategy accumulates, per Gaussian, the norm of the
screen-space gradient of its 2D mean (in normalised device units, as gsplat) and how often it was
visible. Every ``refine_every`` steps it

- clones small Gaussians (max scale ≤ ``grow_scale3d`` · scene scale) whose mean gradient is large,
- splits large ones with a large gradient into two children sampled from the parent, scales / 1.6,
- prunes those with opacity < ``prune_opacity`` (and, after the first opacity reset, the too large),

and every ``reset_every`` steps it clamps all opacities to ``2 · prune_opacity``. Adam's moments are
kept for surviving rows and zero for new ones. Works on any ``nn.ParameterDict`` whose entries all
have one row per Gaussian and include ``means``, ``quats``, ``log_scales`` and ``opacity_logits``
(extra per-Gaussian entries, e.g. a 4D model's velocities, are copied with their parent).

The trainer passes its model as ``model`` to :meth:`DensifyStrategy.refine`; when the model follows
:class:`~motion4d.optim.hooks.DensifyHooks` (Gaussians that are not plain 3D ones: a 4D rotor model's
``log_scales [N,4]`` and ``rotors``, say), the strategy asks it for ``max_scale3d() [N]``,
``clone_rows(mask)`` and ``split_rows(mask, n_children=2, factor=, generator=)`` (each returning the new
rows per parameter name) instead of applying the plain 3D rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from motion4d.gaussians.activations import opacity_activation, opacity_inverse, scale_activation, scale_inverse
from motion4d.gaussians.rotations import quat_to_rotmat
from motion4d.optim.config_checks import at_least, positive, within
from motion4d.optim.hooks import DensifyHooks

log = logging.getLogger(__name__)

REQUIRED = ("means", "quats", "log_scales", "opacity_logits")


@dataclass(frozen=True)
class DensifyConfig:
    """When and how Gaussians are cloned, split, pruned and their opacities reset."""

    enabled: bool = True
    """Turn density control off entirely (the Gaussian count then stays fixed)."""
    refine_start: int = 500
    """First step (exclusive) at which Gaussians are cloned, split or pruned."""
    refine_stop: int = 15_000
    """No refinement, accumulation or opacity reset from this step on."""
    refine_every: int = 100
    """Refine every this many steps."""
    reset_every: int = 3000
    """Clamp opacities to ``2 · prune_opacity`` every this many steps (0 = never)."""
    pause_after_reset: int = 0
    """Skip refinement for this many steps after an opacity reset."""
    grow_grad2d: float = 0.0002
    """Mean screen-space gradient norm (NDC units) above which a Gaussian is cloned or split."""
    grow_scale3d: float = 0.01
    """Largest scale, as a fraction of the scene scale, up to which a Gaussian is cloned, not split."""
    prune_opacity: float = 0.005
    """Gaussians less opaque than this are pruned."""
    prune_scale3d: float = 0.1
    """After the first reset, Gaussians whose largest scale exceeds this × scene scale are pruned."""
    split_factor: float = 1.6
    """Children of a split get the parent's scales divided by this."""
    max_gaussians: int = 1_000_000
    """Never grow beyond this many Gaussians (the highest-gradient candidates win)."""

    def __post_init__(self):
        at_least(self, 0, "refine_start", "refine_stop", "reset_every", "pause_after_reset", "grow_grad2d", "grow_scale3d")
        at_least(self, 1, "refine_every", "max_gaussians")
        within(self, "prune_opacity", 0.0, 1.0, open_high=True)
        positive(self, "prune_scale3d", "split_factor")


@dataclass
class RefineStats:
    """What one refinement did."""

    step: int
    n_cloned: int
    n_split: int
    n_pruned: int
    n_gaussians: int


def _optimizer_slot(optimizer: torch.optim.Optimizer, param: Tensor) -> tuple[dict, int]:
    for group in optimizer.param_groups:
        for i, p in enumerate(group["params"]):
            if p is param:
                return group, i
    raise ValueError("parameter is not in the optimizer")


@torch.no_grad()
def edit_rows(
    params: nn.ParameterDict,
    optimizer: torch.optim.Optimizer | None,
    keep: Tensor,
    new_rows: dict[str, Tensor] | None = None,
) -> None:
    """Replace every entry ``p`` of ``params`` by ``cat([p[keep], new_rows[name]])``, in place.

    ``keep`` is a [M] index (or [N] bool mask) of rows to keep; ``new_rows`` holds, per name, the
    [A,...] rows to append (all names, or none). The optimizer's per-row state (Adam ``exp_avg``,
    ``exp_avg_sq``) follows: kept rows keep theirs, appended rows start at zero.
    """
    if keep.dtype == torch.bool:
        keep = torch.where(keep)[0]
    for name in list(params.keys()):
        old = params[name]
        added = None if new_rows is None else new_rows[name].to(old.dtype)
        data = old.data[keep] if added is None else torch.cat([old.data[keep], added])
        new = nn.Parameter(data, requires_grad=old.requires_grad)
        params[name] = new
        if optimizer is None:
            continue
        group, i = _optimizer_slot(optimizer, old)
        group["params"][i] = new
        state = optimizer.state.pop(old, None)
        if state is None:
            continue
        for key, v in state.items():
            if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == old.shape[0] and key != "step":
                kept = v[keep]
                if added is not None:
                    kept = torch.cat([kept, torch.zeros((added.shape[0], *v.shape[1:]), dtype=v.dtype, device=v.device)])
                state[key] = kept
        optimizer.state[new] = state


class DensifyStrategy:
    """Runs :class:`DensifyConfig`'s schedule on a parameter dict and its optimizer.

    Per training step call :meth:`update` after ``backward()`` (it reads ``meta["means2d"].grad``),
    then after ``optimizer.step()`` call :meth:`refine`.

    Args:
        config: the schedule and thresholds.
        scene_scale: the scene's radius; 3D scale thresholds are relative to it.
        generator: CPU generator for the split samples (for reproducible runs).
    """

    def __init__(self, config: DensifyConfig, scene_scale: float = 1.0, generator: torch.Generator | None = None):
        if not scene_scale > 0:
            raise ValueError(f"scene_scale must be > 0, got {scene_scale!r}")
        self.config = config
        self.scene_scale = float(scene_scale)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.grad2d: Tensor | None = None
        """[N] accumulated screen-space gradient norms since the last refinement."""
        self.count: Tensor | None = None
        """[N] number of (camera, step) pairs in which each Gaussian was visible."""
        self._hooks: DensifyHooks | None = None
        """The model's density-control hooks during :meth:`refine` (None: plain 3D Gaussians)."""

    def _active(self, step: int) -> bool:
        return self.config.enabled and step < self.config.refine_stop

    @torch.no_grad()
    def update(self, params: nn.ParameterDict, step: int, meta: dict) -> None:
        """Accumulate gradient norms and visibility from one render's ``meta`` (after backward)."""
        if not self._active(step):
            return
        means2d = meta["means2d"]
        if means2d.grad is None:
            raise ValueError("meta['means2d'].grad is None: call update() after loss.backward()")
        n = params["means"].shape[0]
        grads = means2d.grad.detach().clone()  # [C,N,2]
        if grads.dim() != 3 or grads.shape[1] != n:
            raise ValueError(f"meta['means2d'].grad must have shape [C,{n},2], got {list(grads.shape)}")
        grads[..., 0] *= meta["width"] / 2.0 * meta["n_cameras"]
        grads[..., 1] *= meta["height"] / 2.0 * meta["n_cameras"]
        if self.grad2d is None or self.grad2d.shape[0] != n:
            self.grad2d = torch.zeros(n, device=grads.device)
            self.count = torch.zeros(n, device=grads.device)
        visible = (meta["radii"] > 0).all(dim=-1)  # [C,N]
        ids = torch.where(visible)[1]
        self.grad2d.index_add_(0, ids, grads[visible].norm(dim=-1).float())
        self.count.index_add_(0, ids, torch.ones_like(ids, dtype=torch.float32))

    @torch.no_grad()
    def refine(
        self, params: nn.ParameterDict, optimizer: torch.optim.Optimizer | None, step: int, model: object | None = None
    ) -> RefineStats | None:
        """Clone / split / prune and reset opacities when ``step`` calls for it; returns what it did.

        ``model`` (optional, owning ``params``) supplies ``max_scale3d``/``clone_rows``/``split_rows``
        when it follows :class:`~motion4d.optim.hooks.DensifyHooks` (see the module docstring).
        """
        self._hooks = model if isinstance(model, DensifyHooks) else None
        if not self._active(step):
            return None
        cfg = self.config
        stats = None
        if step > cfg.refine_start and step % cfg.refine_every == 0 and (
            cfg.reset_every <= 0 or step % cfg.reset_every >= cfg.pause_after_reset
        ):
            n_clone, n_split = self._grow(params, optimizer)
            n_prune = self._prune(params, optimizer, step)
            n = params["means"].shape[0]
            stats = RefineStats(step, n_clone, n_split, n_prune, n)
            log.debug("step %d: cloned %d, split %d, pruned %d → %d Gaussians", step, n_clone, n_split, n_prune, n)
            self.grad2d = torch.zeros(n, device=params["means"].device)
            self.count = torch.zeros(n, device=params["means"].device)
        if cfg.reset_every > 0 and step > 0 and step % cfg.reset_every == 0:
            self.reset_opacities(params, optimizer, 2.0 * cfg.prune_opacity)
        return stats

    def _max_scale(self, params: nn.ParameterDict) -> Tensor:
        if self._hooks is not None:
            return self._hooks.max_scale3d().detach()
        return scale_activation(params["log_scales"].data).max(dim=-1).values

    def _grow(self, params: nn.ParameterDict, optimizer) -> tuple[int, int]:
        cfg = self.config
        n = params["means"].shape[0]
        if self.grad2d is None or self.grad2d.shape[0] != n:
            return 0, 0
        grads = self.grad2d / self.count.clamp_min(1)
        high = grads > cfg.grow_grad2d
        small = self._max_scale(params) <= cfg.grow_scale3d * self.scene_scale
        clone, split = high & small, high & ~small
        # Respect the cap: a clone adds one Gaussian, a split adds one net; keep the largest gradients.
        room = max(cfg.max_gaussians - n, 0)
        n_grow = int(clone.sum() + split.sum())
        if n_grow > room:
            cand = torch.where(clone | split)[0]
            top = cand[grads[cand].argsort(descending=True)[:room]]
            chosen = torch.zeros_like(clone)
            chosen[top] = True
            clone, split = clone & chosen, split & chosen
        n_clone, n_split = int(clone.sum()), int(split.sum())
        if n_clone:
            sel = torch.where(clone)[0]
            if self._hooks is not None:
                new_rows = {k: v.detach() for k, v in self._hooks.clone_rows(clone).items()}
            else:
                new_rows = {k: p.data[sel] for k, p in params.items()}
            edit_rows(params, optimizer, torch.arange(n, device=sel.device), new_rows)
            split = torch.cat([split, torch.zeros(n_clone, dtype=torch.bool, device=split.device)])
        if n_split:
            self._split(params, optimizer, split)
        return n_clone, n_split

    def _split(self, params: nn.ParameterDict, optimizer, mask: Tensor) -> None:
        rest = torch.where(~mask)[0]
        if self._hooks is not None:
            rows = self._hooks.split_rows(mask, n_children=2, factor=self.config.split_factor, generator=self.generator)
            edit_rows(params, optimizer, rest, {k: v.detach() for k, v in rows.items()})
            return
        sel = torch.where(mask)[0]
        scales = scale_activation(params["log_scales"].data[sel])  # [S,3]
        rot = quat_to_rotmat(params["quats"].data[sel])  # [S,3,3]
        noise = torch.randn(2, sel.shape[0], 3, generator=self.generator).to(scales)
        offsets = torch.einsum("sij,sj,bsj->bsi", rot, scales, noise)  # [2,S,3]
        new_rows = {}
        for name, p in params.items():
            if name == "means":
                new_rows[name] = (p.data[sel][None] + offsets).reshape(-1, 3)
            elif name == "log_scales":
                new_rows[name] = scale_inverse(scales / self.config.split_factor).repeat(2, 1)
            else:
                new_rows[name] = p.data[sel].repeat(2, *([1] * (p.dim() - 1)))
        edit_rows(params, optimizer, rest, new_rows)

    def _prune(self, params: nn.ParameterDict, optimizer, step: int) -> int:
        cfg = self.config
        prune = opacity_activation(params["opacity_logits"].data) < cfg.prune_opacity
        if cfg.reset_every > 0 and step > cfg.reset_every:
            prune |= self._max_scale(params) > cfg.prune_scale3d * self.scene_scale
        n_prune = int(prune.sum())
        if n_prune == prune.shape[0]:  # never prune everything: keep the most opaque one
            prune[params["opacity_logits"].data.argmax()] = False
            n_prune -= 1
        if n_prune:
            edit_rows(params, optimizer, ~prune)
        return n_prune

    @torch.no_grad()
    def reset_opacities(self, params: nn.ParameterDict, optimizer, value: float) -> None:
        """Clamp opacities to at most ``value`` and zero their optimizer moments."""
        logits = params["opacity_logits"]
        cap = opacity_inverse(torch.tensor(value, dtype=logits.dtype)).item()
        logits.data.clamp_(max=cap)
        if optimizer is not None:
            for key, v in optimizer.state.get(logits, {}).items():
                if key != "step" and isinstance(v, Tensor):
                    v.zero_()

    def state_dict(self) -> dict[str, Tensor]:
        """The running statistics as tensors (for checkpoints)."""
        state = {"generator": self.generator.get_state()}
        if self.grad2d is not None:
            state.update(grad2d=self.grad2d.detach().cpu(), count=self.count.detach().cpu())
        return state

    def load_state_dict(self, state: dict[str, Tensor], device: torch.device | str | None = None) -> None:
        """Restore :meth:`state_dict`'s output."""
        if "grad2d" in state:
            self.grad2d = state["grad2d"].to(device)
            self.count = state["count"].to(device)
        if "generator" in state:
            self.generator.set_state(state["generator"])
