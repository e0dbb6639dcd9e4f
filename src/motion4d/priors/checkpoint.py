"""The prior trainer's one intermediate checkpoint: model, EMA and AdamW state in a single safetensors file.

Tensors ``model.<name>`` and ``ema.<name>`` (in ``dtype``, fp16 by default, to keep the file small) and
``optim.<i>.exp_avg`` / ``optim.<i>.exp_avg_sq`` (bf16: the second moments underflow in fp16); metadata
``format`` = "motion4d.prior-checkpoint", ``step``, ``optim`` (AdamW's per-parameter step counts and param
groups, JSON) and ``extra`` (JSON, e.g. the resolved training config). The file is written atomically and
overwritten at every save, so a run folder holds one checkpoint whatever its length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from motion4d.atomic import atomic_path
from motion4d.errors import DataError

FORMAT = "motion4d.prior-checkpoint"
"""The ``format`` metadata of a prior training checkpoint."""


@dataclass
class TrainingState:
    """What a resumed prior training run continues from."""

    step: int
    """Optimisation steps done."""
    model: dict[str, Tensor]
    """Model parameters by name (float32)."""
    ema: dict[str, Tensor]
    """EMA parameters by name (float32)."""
    optim: dict
    """A ``torch.optim.AdamW.state_dict()``."""
    extra: dict
    """What the trainer stored alongside (its config)."""


def save_training_state(path: str | Path, step: int, model: nn.Module, ema: dict[str, Tensor], optim: torch.optim.Optimizer,
                        extra: dict, *, dtype: torch.dtype = torch.float16) -> None:  # fmt: skip
    """Write (overwrite) the checkpoint at ``path``."""
    tensors = {f"model.{k}": p.detach().to("cpu", dtype) for k, p in model.named_parameters()}
    tensors.update({f"ema.{k}": v.detach().to("cpu", dtype) for k, v in ema.items()})
    state = optim.state_dict()
    counts = {}
    for i, s in state["state"].items():
        counts[str(i)] = float(s["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            tensors[f"optim.{i}.{key}"] = s[key].detach().to("cpu", torch.bfloat16)
    meta = {
        "format": FORMAT, "step": str(step), "extra": json.dumps(extra),
        "optim": json.dumps({"steps": counts, "param_groups": state["param_groups"]}),
    }  # fmt: skip
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)


def load_training_state(path: str | Path) -> TrainingState:
    """Read a checkpoint written by :func:`save_training_state`; :class:`DataError` naming it if damaged."""
    path = Path(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable checkpoint ({' '.join(str(exc).split())})") from None
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: not a prior training checkpoint (format {meta.get('format')!r})")
    try:
        step = int(meta["step"])
        extra = json.loads(meta["extra"])
        optim_meta = json.loads(meta["optim"])
        state = {
            int(i): {
                "step": torch.tensor(n),
                "exp_avg": tensors[f"optim.{i}.exp_avg"].float(),
                "exp_avg_sq": tensors[f"optim.{i}.exp_avg_sq"].float(),
            }
            for i, n in optim_meta["steps"].items()
        }
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: damaged checkpoint metadata ({type(exc).__name__}: {exc})") from None
    split = lambda prefix: {k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)}  # noqa: E731
    return TrainingState(step, split("model."), split("ema."), {"state": state, "param_groups": optim_meta["param_groups"]}, extra)
