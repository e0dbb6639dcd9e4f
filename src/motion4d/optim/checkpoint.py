"""Training checkpoints as single safetensors files: parameters, Adam state, step, RNG states.

Layout of ``step_0001000.safetensors``: ``param.<name>`` (raw parameters), ``optim.<name>.<key>``
(Adam ``exp_avg``, ``exp_avg_sq``, ``step``), ``extra.<key>`` (caller's tensors: strategy statistics,
generator states); metadata ``step`` (completed steps), ``seconds`` (training time so far) and
``lrs`` (JSON, per parameter group). Files are written to a temporary name and renamed, so a kill
mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from motion4d.errors import DataError, first_line
from motion4d.gaussians.files import read_safetensors, write_safetensors

log = logging.getLogger(__name__)

_NAME = re.compile(r"^step_(\d+)\.safetensors$")


@dataclass
class Checkpoint:
    """The contents of one checkpoint file (tensors on CPU)."""

    step: int
    """Number of completed optimisation steps."""
    seconds: float
    """Training wall time spent up to ``step``."""
    params: dict[str, Tensor]
    """Raw parameters by name."""
    optim: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    """Per parameter name, the optimizer's state tensors."""
    lrs: dict[str, float] = field(default_factory=dict)
    """Per parameter name, the learning rate at ``step``."""
    extra: dict[str, Tensor] = field(default_factory=dict)
    """Other tensors the caller saved."""


def _group_names(optimizer: torch.optim.Optimizer) -> list[str]:
    names = [g.get("name") for g in optimizer.param_groups]
    if None in names or len(set(names)) != len(names) or any(len(g["params"]) != 1 for g in optimizer.param_groups):
        raise ValueError("the optimizer needs one parameter per group and a unique 'name' in each group")
    return names


def save_checkpoint(
    path: str | os.PathLike,
    params: nn.ParameterDict,
    optimizer: torch.optim.Optimizer,
    step: int,
    seconds: float,
    extra: dict[str, Tensor] | None = None,
) -> Path:
    """Write a checkpoint atomically and return its path."""
    tensors = {f"param.{k}": v for k, v in params.items()}
    lrs = {}
    for name, group in zip(_group_names(optimizer), optimizer.param_groups):
        lrs[name] = float(group["lr"])
        for key, v in optimizer.state.get(group["params"][0], {}).items():
            if isinstance(v, Tensor):
                tensors[f"optim.{name}.{key}"] = v
    for k, v in (extra or {}).items():
        tensors[f"extra.{k}"] = v
    return write_safetensors(path, tensors, {"step": str(int(step)), "seconds": repr(float(seconds)), "lrs": json.dumps(lrs)})


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a file written by :func:`save_checkpoint`.

    A missing file is a :class:`~motion4d.errors.MissingFileError`; a damaged one (empty, truncated, random
    bytes, NaN / infinite parameters or optimizer state, bad metadata) a :class:`DataError` naming it.
    """
    path = Path(path)
    tensors, meta = read_safetensors(path, "checkpoint", finite=("param.", "optim."))
    if "step" not in meta:
        raise DataError(f"{path}: not a motion4d checkpoint (no step metadata)")
    try:
        ckpt = Checkpoint(step=int(meta["step"]), seconds=float(meta.get("seconds", 0.0)), params={}, lrs=json.loads(meta.get("lrs", "{}")))
        if ckpt.step < 0 or not isinstance(ckpt.lrs, dict):
            raise ValueError(f"step {ckpt.step}, lrs {ckpt.lrs!r}")
        for key, v in tensors.items():
            kind, rest = key.split(".", 1)
            if kind == "param":
                ckpt.params[rest] = v
            elif kind == "optim":
                name, sub = rest.rsplit(".", 1)
                ckpt.optim.setdefault(name, {})[sub] = v
            else:
                ckpt.extra[rest] = v
    except ValueError as e:
        raise DataError(f"{path}: damaged checkpoint metadata or tensor names ({first_line(e)})") from None
    return ckpt


def load_latest_checkpoint(folder: str | os.PathLike) -> tuple[Path, Checkpoint] | None:
    """``(path, checkpoint)`` of the newest checkpoint in ``folder`` that loads; None when there is none.

    Damaged checkpoints newer than it (a truncated file, say) are renamed ``<name>.damaged`` so that later
    checkpoint rotation never keeps them in place of good ones, and one warning names each and why. When no
    checkpoint loads, a :class:`DataError` names the folder and each file's problem.
    """
    skipped: list[str] = []
    for path in reversed(list_checkpoints(folder)):
        try:
            ckpt = load_checkpoint(path)
        except DataError as e:
            skipped.append(str(e))
            try:
                path.rename(path.with_name(path.name + ".damaged"))
            except OSError:
                pass
            continue
        if skipped:
            log.warning("resuming from %s: skipped newer checkpoints that do not load (renamed *.damaged): %s", path, "; ".join(skipped))
        return path, ckpt
    if skipped:
        raise DataError(f"{folder}: no checkpoint loads ({'; '.join(skipped)})")
    return None


def restore_optimizer(optimizer: torch.optim.Optimizer, ckpt: Checkpoint, device: torch.device | str | None = None) -> None:
    """Load ``ckpt``'s optimizer state and learning rates into ``optimizer`` (whose groups name its params)."""
    for name, group in zip(_group_names(optimizer), optimizer.param_groups):
        p = group["params"][0]
        if name in ckpt.lrs:
            group["lr"] = ckpt.lrs[name]
        state = ckpt.optim.get(name)
        if not state:
            continue
        restored = {}
        for k, v in state.items():
            # Adam keeps "step" as a CPU float tensor unless capturable/fused.
            restored[k] = v if (k == "step" and v.dim() == 0) else v.to(device=p.device, dtype=p.dtype)
            if k != "step" and restored[k].shape != p.shape:
                raise ValueError(f"checkpoint state {name}.{k} has shape {list(v.shape)}, parameter has {list(p.shape)}")
        optimizer.state[p] = restored


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Checkpoint files in ``folder``, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_path(folder: str | os.PathLike, step: int) -> Path:
    """Where the checkpoint of ``step`` goes in ``folder``."""
    return Path(folder) / f"step_{step:07d}.safetensors"
