"""One safetensors file per model: named tensors plus string metadata, whose ``"format"`` entry names
the model class that wrote it. Every representation saves and loads through these two functions."""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from motion4d.atomic import atomic_path


def save_tensors(path: str | os.PathLike, tensors: dict[str, Tensor], format: str, *, sh_degree: int, **metadata: str) -> Path:
    """Write ``tensors`` (detached, on the CPU) with metadata ``format``, ``sh_degree`` and ``metadata``, atomically."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": format, "sh_degree": json.dumps(int(sh_degree)), **metadata})
    return path


def load_tensors(path: str | os.PathLike, format: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``(tensors on the CPU, metadata)`` of a file :func:`save_tensors` wrote with ``format``.

    Raises FileNotFoundError for a missing file and ValueError naming the file for another format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
    if metadata.get("format") != format:
        raise ValueError(f"{path}: not a {format} file (format {metadata.get('format')!r})")
    return load_file(str(path), device="cpu"), metadata
