"""The run folder every training pipeline writes: its config, checkpoints and report, and what resume reads.

``config.json`` is ``{"pipeline": NAME, "config": {...}, "inputs": {...}}``: the pipeline's name, its resolved
config dataclass and its inputs dataclass (data folder, downscale, model kind, ...). Run folders made before
this layout held ``{"fit": ..., "data": {...}}`` (fit3d), ``{"reconstruct": ..., "data": {"root", "downscale"},
"model": ...}`` or ``{"animate": ..., "asset": ..., "data": {"root", "downscale"}}``; they are read as the same
three parts, and fit3d / reconstruct / animate still write those keys beside the new ones, because readers of
run folders (scripts, tests) look them up. ``checkpoints/`` holds the trainer's checkpoints; ``report.json``
one report dataclass, written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from motion4d.atomic import atomic_write_text
from motion4d.config_dict import from_config_dict
from motion4d.data.transforms import available_splits
from motion4d.errors import DataError
from motion4d.optim.checkpoint import list_checkpoints

if TYPE_CHECKING:
    from motion4d.optim.trainer_base import TrainResult

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
REPORT_FILE = "report.json"
CHECKPOINT_FOLDER = "checkpoints"

C = TypeVar("C")
I = TypeVar("I")  # noqa: E741

_LEGACY: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "fit3d": ("fit", {"root": "data", "downscale": "downscale", "time": "time", "points": "points"}, {}),
    "reconstruct": ("reconstruct", {"root": "data", "downscale": "downscale"}, {"model": "model"}),
    "animate": ("animate", {"root": "driving", "downscale": "downscale"}, {"asset": "asset"}),
}
"""The layout before ``{"pipeline", "config", "inputs"}``: pipeline → (key of its config, keys of ``data``
→ input names, other top-level keys → input names)."""


@dataclass
class RunConfig:
    """What a run folder's ``config.json`` says, whichever layout it has."""

    pipeline: str
    """The pipeline that made the run ("fit3d", "reconstruct", "animate", ...)."""
    config: dict
    """Its config dataclass as a dict (``to_dict``)."""
    inputs: dict
    """Its inputs dataclass as a dict."""
    legacy: RunConfig | None = None
    """The same in the old keys, when the file has both (they are copies and must agree)."""

    @property
    def dataset(self) -> str | None:
        """The dataset folder the run was fitted to (input ``data``; animate: ``driving``)."""
        return self.inputs.get("data", self.inputs.get("driving"))


@dataclass
class RunReport:
    """What every pipeline's ``report.json`` holds."""

    n_gaussians: int
    """Gaussians in the final model."""
    seconds: float
    """Training wall time (over resumed runs too)."""
    iters: int
    """Completed optimisation steps."""
    stopped_by_budget: bool
    """Whether the time budget ended training early."""
    run: str
    """The run folder."""


@dataclass
class SplitReport(RunReport):
    """A report of a pipeline with an evaluation split (held-out posed images)."""

    psnr: float
    """Mean PSNR (dB) over the evaluation images (4D: each rendered at its own time)."""
    ssim: float
    """Mean SSIM over the evaluation images."""
    n_images: int
    """Number of evaluation images."""
    split: str
    """The split evaluated ("test", else "val", else "train")."""


def dataset_splits(root: str | Path) -> tuple[str, str]:
    """("train", the split to report on) of the posed dataset ``root``: "test", else "val", else "train".

    No training split is a :class:`DataError` naming the folder.
    """
    splits = available_splits(root)
    if "train" not in splits:
        raise DataError(f"{root}: no training split (expected transforms_train.json or a nerfstudio transforms.json)")
    return "train", next(s for s in ("test", "val", "train") if s in splits)


class RunFolder:
    """A run folder: ``config.json``, ``checkpoints/``, ``report.json`` and the pipeline's own outputs."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        """``RUN/config.json``."""
        return self.path / CONFIG_FILE

    @property
    def report_file(self) -> Path:
        """``RUN/report.json``."""
        return self.path / REPORT_FILE

    @property
    def checkpoints(self) -> Path:
        """``RUN/checkpoints``: the folder a trainer writes its checkpoints to and resumes from."""
        return self.path / CHECKPOINT_FOLDER

    def create(self) -> RunFolder:
        """Make the folder (and its parents) if it is not there."""
        if self.path.exists() and not self.path.is_dir():
            raise DataError(f"{self.path}: exists and is not a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def has_config(self) -> bool:
        """Whether ``config.json`` is there (a run that can be resumed or evaluated)."""
        return self.config_file.is_file()

    def checkpoint_files(self) -> list[Path]:
        """The checkpoints of the run, oldest step first."""
        return list_checkpoints(self.checkpoints)

    # ---- config.json ----------------------------------------------------------------------
    def write_config(self, pipeline: str, config: Any, inputs: Any) -> Path:
        """Write ``config.json`` (atomically): ``config`` has ``to_dict()``; ``inputs`` is a dataclass."""
        d = {"pipeline": pipeline, "config": config.to_dict(), "inputs": asdict(inputs)}
        if pipeline in _LEGACY:
            key, data_keys, top_keys = _LEGACY[pipeline]
            d[key] = d["config"]
            d["data"] = {old: d["inputs"][new] for old, new in data_keys.items()}
            d.update({old: d["inputs"][new] for old, new in top_keys.items()})
        self.create()
        atomic_write_text(self.config_file, json.dumps(d, indent=2) + "\n")
        return self.config_file

    def read_config(self) -> RunConfig:
        """The run's :class:`RunConfig` (either layout); a missing or damaged file is a :class:`DataError`."""
        path = self.config_file
        if not path.is_file():
            raise DataError(f"{path}: no such file (is {self.path} a motion4d run folder?)")
        try:
            return _parse_config(json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise DataError(f"{path}: not a valid run config ({e})") from None

    def load_config(self, config_cls: type[C], inputs_cls: type[I], *, pipeline: str | None = None) -> tuple[C, I]:
        """The run's config and inputs as ``config_cls.from_dict(...)`` and the inputs dataclass.

        ``pipeline``: the pipeline that must have made the run (another one is a :class:`DataError`).
        Unknown keys, mistyped values, values the dataclasses reject, and old-key copies that differ from
        the new keys are a :class:`DataError` naming the file.
        """
        saved = self.read_config()
        if pipeline is not None and saved.pipeline != pipeline:
            raise DataError(f"{self.config_file}: a {saved.pipeline} run, not a {pipeline} run")
        try:
            if saved.legacy is not None:  # checked first: it is the copy older tools and people edit
                old = config_cls.from_dict(saved.legacy.config), from_config_dict(inputs_cls, {**saved.inputs, **saved.legacy.inputs})
            loaded = config_cls.from_dict(saved.config), from_config_dict(inputs_cls, saved.inputs)
            if saved.legacy is not None and old != loaded:
                key = _LEGACY[saved.pipeline][0]
                raise ValueError(f"its {key!r} / 'data' keys differ from 'config' / 'inputs' (copies of one another: edit both, or delete the old ones)")
        except (TypeError, ValueError) as e:
            raise DataError(f"{self.config_file}: not a valid {saved.pipeline} run config ({e})") from None
        return loaded

    # ---- report.json ----------------------------------------------------------------------
    def summary(self, result: TrainResult, metrics: Any = None, split: str | None = None) -> dict:
        """The fields of :class:`RunReport` a fit's ``result`` gives (and of :class:`SplitReport`, given the
        ``metrics`` (per-view ``psnr`` / ``ssim`` lists and their means) on ``split``)."""
        out = {"n_gaussians": result.n_gaussians, "seconds": result.seconds, "iters": result.steps,
               "stopped_by_budget": result.stopped_by_budget, "run": str(self.path)}  # fmt: skip
        if metrics is not None:
            out.update(psnr=metrics.mean_psnr, ssim=metrics.mean_ssim, n_images=len(metrics.psnr), split=split)
        return out

    def write_report(self, report: RunReport) -> Path:
        """Write ``report`` (a dataclass) as ``report.json``, atomically."""
        if not dataclasses.is_dataclass(report):
            raise TypeError(f"a report is a dataclass, got {type(report).__name__}")
        self.create()
        atomic_write_text(self.report_file, json.dumps(asdict(report), indent=2) + "\n")
        return self.report_file

    def read_report(self) -> dict:
        """``report.json`` as a dict; a missing or damaged file is a :class:`DataError`."""
        path = self.report_file
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(f"{path}: no such file (has the run finished?)") from None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise DataError(f"{path}: not a valid report ({e})") from None
        if not isinstance(d, dict):
            raise DataError(f"{path}: not a valid report (not a JSON object)")
        return d


def _parse_config(d: Any) -> RunConfig:
    """``config.json``'s contents as a :class:`RunConfig`; a ValueError when they are neither layout."""
    if not isinstance(d, dict):
        raise ValueError(f"expected a JSON object, got {type(d).__name__}")
    legacy = _parse_legacy(d)
    if "pipeline" not in d:
        if legacy is None:
            raise ValueError("expected keys pipeline, config, inputs")
        return legacy
    if not (isinstance(d["pipeline"], str) and isinstance(d.get("config"), dict) and isinstance(d.get("inputs"), dict)):
        raise ValueError("pipeline must be a name, config and inputs objects")
    return RunConfig(d["pipeline"], d["config"], d["inputs"], legacy if legacy is not None and legacy.pipeline == d["pipeline"] else None)


def _parse_legacy(d: dict) -> RunConfig | None:
    """The old-layout part of ``d`` (None when there is none); a ValueError for unknown ``data`` keys."""
    for pipeline, (key, data_keys, top_keys) in _LEGACY.items():
        if key in d:
            data = d.get("data", {})
            if not isinstance(d[key], dict) or not isinstance(data, dict):
                raise ValueError(f"{key} and data must be objects")
            unknown = sorted(set(data) - set(data_keys))
            if unknown:
                raise ValueError(f"unknown data keys: {', '.join(unknown)}")
            inputs = {data_keys[k]: v for k, v in data.items()}
            inputs.update({new: d[old] for old, new in top_keys.items() if old in d})
            return RunConfig(pipeline, d[key], inputs)
    return None
