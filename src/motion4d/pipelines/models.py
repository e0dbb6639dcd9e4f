"""Loading a run's model whatever the run holds: an ``.m4d`` file, a reconstruct / animate run folder
(``model.m4d``) or a fit3d run folder (``gaussians.safetensors``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from motion4d.errors import DataError
from motion4d.export.m4d import ModelInfo, load_m4d
from motion4d.gaussians.registry import load_model

MODEL_FILE = "model.m4d"
"""The model file of a reconstruct or animate run folder."""


def _run_defaults(run: Path) -> dict:
    """``data_root``, ``downscale``, ``background`` from a run folder's ``config.json`` (empty if none)."""
    path = run / "config.json"
    if not path.is_file():
        return {}
    try:
        d = json.loads(path.read_text())
        config, data = d.get("reconstruct") or d.get("fit") or d.get("animate") or {}, d.get("data") or {}
        out = {"data_root": data.get("root"), "downscale": data.get("downscale"), "background": config.get("background")}
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a valid run config ({e})") from None
    return {k: v for k, v in out.items() if v is not None}


def load_run_model(path: str | Path, *, device: str | torch.device = "cpu"):
    """The model of an ``.m4d`` file, a reconstruct run folder or a fit3d run folder, and its :class:`ModelInfo`.

    A fit3d run's static Gaussians come back as kind "gaussians3d" with time range (0, 0). A missing or
    damaged file is a :class:`DataError` naming it.
    """
    path = Path(path)
    if path.is_dir():
        defaults = _run_defaults(path)
        if (path / MODEL_FILE).is_file():
            model, info = load_m4d(path / MODEL_FILE, device=device)
        elif (path / "gaussians.safetensors").is_file():
            model, info = load_model(path / "gaussians.safetensors", "gaussians3d", device=device), ModelInfo("gaussians3d", (0.0, 0.0))
        else:
            raise DataError(f"{path}: no {MODEL_FILE} or gaussians.safetensors (has the run finished?)")
        info.extra = {**defaults, **info.extra}
        return model, info
    if not path.is_file():
        raise DataError(f"{path}: no such file or run folder")
    return load_m4d(path, device=device)
