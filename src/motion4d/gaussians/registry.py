"""The model registry: every Gaussian model class, keyed on the ``FORMAT`` string it writes in its files.

Each entry also has a short *kind* name, the one ``.m4d`` files store as ``motion4d.kind`` and
``reconstruct --model`` takes ("rotor4d", "deform", "gaussians3d", "mesh_gaussians",
"skinned_gaussians"), and says whether ``reconstruct`` can build the model from scratch. Lookups take
either name. Classes are imported on first use (``"module:Class"``), so a registry lookup costs nothing
until a model is built, and a test can register a stand-in model of its own.

Every class answers ``at_time(t)`` and has ``save(path)`` / ``load(path)`` (through
:mod:`motion4d.gaussians.files`); :func:`load_model` reads any model file by its format.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from motion4d.errors import DataError
from motion4d.gaussians.files import read_metadata


@dataclass(frozen=True)
class ModelEntry:
    """One model class of the registry."""

    kind: str
    """Short name: ``.m4d``'s ``motion4d.kind`` and ``reconstruct --model``."""
    format: str | None
    """The ``"format"`` metadata the class writes in its model files (None: a class that writes none)."""
    target: str
    """Where the class is, ``"module:Class"``."""
    reconstruct: bool = False
    """Whether ``reconstruct`` builds this model from scratch (``cls.random``)."""

    def cls(self) -> type:
        """The class (imported now); a ValueError when its module is not there."""
        module, name = self.target.split(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"model {self.kind!r} is not available in this installation ({e})") from None


MODELS: dict[str, ModelEntry] = {
    e.format: e
    for e in (
        ModelEntry("rotor4d", "motion4d.Gaussians4DRotor", "motion4d.gaussians.rotor4d:Gaussians4DRotor", reconstruct=True),
        ModelEntry("deform", "motion4d.DeformGaussians", "motion4d.gaussians.deform:DeformGaussians", reconstruct=True),
        ModelEntry("gaussians3d", "motion4d.Gaussians3D", "motion4d.gaussians.gaussians3d:Gaussians3D"),
        ModelEntry("mesh_gaussians", "motion4d.MeshGaussians", "motion4d.gaussians.animated_mesh:MeshGaussians"),
        ModelEntry("skinned_gaussians", "motion4d.SkinnedGaussians", "motion4d.gaussians.skinned:SkinnedGaussians"),
    )
}
"""Format → entry. Insertion order is the order choices are listed in errors."""


def kinds() -> tuple[str, ...]:
    """Every registered kind name."""
    return tuple(e.kind for e in MODELS.values())


def reconstruct_kinds() -> tuple[str, ...]:
    """The kinds ``reconstruct`` builds from scratch."""
    return tuple(e.kind for e in MODELS.values() if e.reconstruct)


def lookup(name: str) -> ModelEntry:
    """The entry whose kind or format is ``name``; a ValueError naming the choices otherwise."""
    if name in MODELS:
        return MODELS[name]
    for e in MODELS.values():
        if e.kind == name:
            return e
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(kinds())}")


def model_class(name: str) -> type:
    """The class of the model whose kind or format is ``name`` (see :func:`lookup`)."""
    return lookup(name).cls()


def init_model(kind: str, n: int, center: torch.Tensor, radius: float, *, time_range: tuple[float, float], sh_degree: int, init_opacity: float, seed: int):
    """``n`` random Gaussians of model ``kind`` in the sphere (``center [3]``, ``radius``) over ``time_range``.

    "gaussians3d" is built by ``Gaussians3D.random_in_sphere``, "deform" (canonical, time-free Gaussians) by
    ``cls.random(n, center, radius, sh_degree=, seed=, init_opacity=)`` and every other kind by
    ``cls.random(n, center, radius, time_range, sh_degree=, seed=, init_opacity=)``.
    """
    entry = lookup(kind)
    cls = entry.cls()
    if entry.kind == "gaussians3d":
        return cls.random_in_sphere(n, center, radius, sh_degree=sh_degree, init_opacity=init_opacity, seed=seed)
    if not hasattr(cls, "random"):
        raise ValueError(f"model {kind!r} cannot be built from scratch; choose from {', '.join(reconstruct_kinds())}")
    if entry.kind == "deform":
        return cls.random(n, center, radius, sh_degree=sh_degree, seed=seed, init_opacity=init_opacity)
    t0, t1 = time_range
    if not t1 > t0:
        raise DataError(f"the sequence spans a single time ({t0}); a 4D model needs frames at several times")
    return cls.random(n, center, radius, (t0, t1), sh_degree=sh_degree, seed=seed, init_opacity=init_opacity)


def load_model(path: str | os.PathLike, name: str | None = None, *, device: torch.device | str | None = None):
    """The model in file ``path``, of the class its ``format`` metadata names (or kind / format ``name``).

    A file whose format names another model than ``name``, or no registered model, is a :class:`DataError`
    naming the file.
    """
    path = Path(path)
    written = read_metadata(path, "model").get("format")
    if name is None:
        if written is None:
            raise DataError(f"{path}: not a motion4d model file (no format metadata)")
        if written not in MODELS:
            raise DataError(f"{path}: unknown model format {written!r}; known: {', '.join(MODELS)}")
    entry = lookup(name if name is not None else written)
    if written is not None and entry.format is not None and written != entry.format:
        raise DataError(f"{path}: a {written} file, not {entry.kind} ({entry.format})")
    model = entry.cls().load(path)
    return model.to(device) if device is not None else model
