"""The ``.m4d`` file: one 4D (or 3D) model and what a viewer needs to play it.

An ``.m4d`` file is the model's own safetensors file (its raw tensors and ``format`` metadata, as
``Class.save`` writes them) with two more metadata entries: ``motion4d.kind`` (the model's kind in
:mod:`motion4d.gaussians.registry`) and ``motion4d.meta`` (JSON: ``time_range``, ``sh_degree``,
``n_gaussians``, and whatever the writer adds: ``background``, the ``orbit`` camera used for videos,
``data_root``, ...). Files written before the registry (kind only, the same short names) still load.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from motion4d.atomic import atomic_path
from motion4d.errors import DataError
from motion4d.gaussians.files import read_metadata, read_safetensors, write_safetensors
from motion4d.gaussians.registry import load_model, lookup


@dataclass
class ModelInfo:
    """What an ``.m4d`` file says about its model besides the tensors."""

    kind: str
    """The model's kind (a name :func:`motion4d.gaussians.registry.lookup` knows)."""
    time_range: tuple[float, float] = (0.0, 1.0)
    """First and last time of the sequence the model was fitted to."""
    extra: dict = field(default_factory=dict)
    """Other metadata (``sh_degree``, ``n_gaussians``, ``background``, ``orbit``: {center, distance,
    elevation, K, width, height}, ...)."""


def save_m4d(model, path: str | Path, info: ModelInfo) -> Path:
    """Write ``model`` and ``info`` as one ``.m4d`` file (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        inner = Path(str(tmp) + ".model")
        try:
            model.save(inner)
            tensors, meta = read_safetensors(inner, "model")
        finally:
            inner.unlink(missing_ok=True)
        meta["motion4d.kind"] = info.kind
        meta["motion4d.meta"] = json.dumps({"time_range": list(info.time_range), "sh_degree": int(model.sh_degree), "n_gaussians": len(model), **info.extra})
        write_safetensors(tmp, tensors, meta)
    return path


def read_model_info(path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` of an ``.m4d`` file (its header only).

    A missing file, a damaged one and one without valid ``.m4d`` metadata are a :class:`DataError` naming it.
    """
    path = Path(path)
    meta = read_metadata(path, ".m4d")
    if "motion4d.kind" not in meta:
        what = f"a {meta['format']} model file" if "format" in meta else "no motion4d.kind metadata"
        raise DataError(f"{path}: not a motion4d .m4d file ({what})")
    try:
        d = json.loads(meta.get("motion4d.meta", "{}"))
        time_range = tuple(float(x) for x in d.pop("time_range", (0.0, 1.0)))
        if len(time_range) != 2 or not all(math.isfinite(t) for t in time_range):
            raise ValueError(f"time_range {time_range} is not two finite numbers")
    except (ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: damaged .m4d metadata motion4d.meta ({e})") from None
    return ModelInfo(meta["motion4d.kind"], time_range, d)


def load_m4d(path: str | Path, *, device: torch.device | str = "cpu"):
    """``(model on device, ModelInfo)`` of an ``.m4d`` file; every kind of damage is a :class:`DataError` naming it."""
    info = read_model_info(path)
    try:
        lookup(info.kind)
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
    return load_model(path, info.kind, device=device), info
