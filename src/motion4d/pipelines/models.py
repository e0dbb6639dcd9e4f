"""The 4D model kinds a run can hold, the ``.m4d`` file, and loading a run's model whatever it holds.

An ``.m4d`` file is the model's own safetensors file (its raw tensors, as ``Class.save`` writes them) with
more metadata: ``motion4d.kind`` (a key of :data:`MODEL_KINDS`, or "gaussians3d"), ``motion4d.meta``
(JSON: ``time_range``, ``sh_degree``, ``n_gaussians``, ``background`` and the orbit camera used for
videos). :func:`load_run_model` reads one, a reconstruct run folder or a fit3d run folder.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from motion4d.atomic import atomic_path
from motion4d.errors import DataError
from motion4d.gaussians import Gaussians3D
from motion4d.pipelines.run import RunFolder

log = logging.getLogger(__name__)

MODEL_KINDS: dict[str, str] = {
    "rotor4d": "motion4d.gaussians.rotor4d:Gaussians4DRotor",
    "deform": "motion4d.gaussians.deform:DeformGaussians",
    "gaussians3d": "motion4d.gaussians.gaussians3d:Gaussians3D",
    "mesh_gaussians": "motion4d.gaussians.animated_mesh:MeshGaussians",
    "skinned_gaussians": "motion4d.gaussians.skinned:SkinnedGaussians",
}
"""Model kind → "module:Class". Each class answers ``at_time`` and has ``save`` / ``load``."""

RECONSTRUCT_KINDS = ("rotor4d", "deform")
"""The kinds ``reconstruct`` fits from scratch (``mesh_gaussians`` comes from ``animate``)."""

MODEL_FILE = "model.m4d"
"""The model file of a reconstruct run folder."""


@dataclass
class ModelInfo:
    """What a run's model file says about the model besides its tensors."""

    kind: str
    """Key of :data:`MODEL_KINDS`."""
    time_range: tuple[float, float] = (0.0, 1.0)
    """First and last time of the sequence the model was fitted to."""
    extra: dict = field(default_factory=dict)
    """Other metadata (``background``, ``orbit``: {center, distance, elevation, K, width, height}, ...)."""


def model_class(kind: str) -> type:
    """The class of model ``kind``; a clear error when its module is not there."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model {kind!r}; choose from {', '.join(RECONSTRUCT_KINDS)}")
    module, name = MODEL_KINDS[kind].split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"model {kind!r} is not available in this installation ({e})") from None


def init_model(kind: str, n: int, center: torch.Tensor, radius: float, *, time_range: tuple[float, float], sh_degree: int, init_opacity: float, seed: int):
    """``n`` random Gaussians of model ``kind`` in the sphere (``center [3]``, ``radius``) over ``time_range``.

    Every kind but "gaussians3d" and "deform" (whose Gaussians are canonical, time-free) is built by
    ``cls.random(n, center, radius, time_range, sh_degree=, seed=, init_opacity=)``.
    """
    cls = model_class(kind)
    if cls is Gaussians3D:
        return Gaussians3D.random_in_sphere(n, center, radius, sh_degree=sh_degree, init_opacity=init_opacity, seed=seed)
    if kind == "deform":
        return cls.random(n, center, radius, sh_degree=sh_degree, seed=seed, init_opacity=init_opacity)
    t0, t1 = time_range
    if not t1 > t0:
        raise DataError(f"the sequence spans a single time ({t0}); a 4D model needs frames at several times")
    return cls.random(n, center, radius, (t0, t1), sh_degree=sh_degree, seed=seed, init_opacity=init_opacity)


def save_m4d(model, path: str | Path, info: ModelInfo) -> Path:
    """Write ``model`` and ``info`` as one ``.m4d`` file (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        inner = Path(str(tmp) + ".model")
        model.save(inner)
        try:
            with safe_open(str(inner), framework="pt") as f:
                meta = dict(f.metadata() or {})
            tensors = load_file(str(inner))
        finally:
            inner.unlink(missing_ok=True)
        meta["motion4d.kind"] = info.kind
        meta["motion4d.meta"] = json.dumps({"time_range": list(info.time_range), "sh_degree": int(model.sh_degree), "n_gaussians": len(model), **info.extra})
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_model_info(path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` of an ``.m4d`` file."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "motion4d.kind" not in meta:
        raise DataError(f"{path}: not a motion4d .m4d file (no motion4d.kind metadata)")
    d = json.loads(meta.get("motion4d.meta", "{}"))
    time_range = tuple(float(x) for x in d.pop("time_range", (0.0, 1.0)))
    return ModelInfo(meta["motion4d.kind"], time_range, d)


def _run_defaults(run: Path) -> dict:
    """``data_root``, ``downscale``, ``background`` from a run folder's ``config.json`` (empty if none)."""
    folder = RunFolder(run)
    if not folder.has_config():
        return {}
    saved = folder.read_config()
    out = {"data_root": saved.dataset, "downscale": saved.inputs.get("downscale"), "background": saved.config.get("background")}
    return {k: v for k, v in out.items() if v is not None}


def load_run_model(path: str | Path, *, device: str | torch.device = "cpu"):
    """The model of an ``.m4d`` file, a reconstruct run folder or a fit3d run folder, and its :class:`ModelInfo`.

    A fit3d run's static Gaussians come back as kind "gaussians3d" with time range (0, 0).
    """
    path = Path(path)
    if path.is_dir():
        defaults = _run_defaults(path)
        if (path / MODEL_FILE).is_file():
            model, info = load_run_model(path / MODEL_FILE, device=device)
        elif (path / "gaussians.safetensors").is_file():
            model, info = Gaussians3D.load(path / "gaussians.safetensors", device=device), ModelInfo("gaussians3d", (0.0, 0.0))
        else:
            raise DataError(f"{path}: no {MODEL_FILE} or gaussians.safetensors (has the run finished?)")
        info.extra = {**defaults, **info.extra}
        return model, info
    if not path.is_file():
        raise DataError(f"{path}: no such file or run folder")
    try:
        info = read_model_info(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a motion4d model file ({e})") from None
    model = model_class(info.kind).load(path)
    return model.to(device), info
