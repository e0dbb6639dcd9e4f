"""Static reconstruction: posed images in, fitted 3D Gaussians and their report out.

A run folder RUN holds ``config.json`` (the resolved config and data options), ``checkpoints/``,
``gaussians.safetensors`` (raw parameters), ``point_cloud.ply`` (standard 3DGS PLY), ``orbit.mp4``
and ``report.json`` (test-split metrics).

This pipeline imports ``export`` (PLY, video, atomic writes): writing its run folder is its job.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from motion4d.atomic import atomic_write_text
from motion4d.errors import DataError
from motion4d.data.points import load_points_ply
from motion4d.data.transforms import ImageSet, available_splits, load_transforms, scene_bounds
from motion4d.export.ply import save_ply
from motion4d.export.video import write_video
from motion4d.gaussians import Gaussians3D
from motion4d.metrics.views import evaluate_views
from motion4d.optim.trainer3d import PRESETS, Fit3DConfig, Trainer3D
from motion4d.render.cameras import OrbitRig
from motion4d.render.frame import render_over_time

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
GAUSSIANS_FILE = "gaussians.safetensors"
PLY_FILE = "point_cloud.ply"
VIDEO_FILE = "orbit.mp4"
REPORT_FILE = "report.json"


@dataclass(frozen=True)
class DataOptions:
    """How a run reads its dataset (saved in ``config.json`` next to the fit config)."""

    root: str
    """Dataset folder (Blender / D-NeRF ``transforms_<split>.json`` format)."""
    downscale: int = 1
    """Integer image downscale factor."""
    time: float | None = None
    """For dynamic datasets: fit the frames at this time only."""
    points: str | None = None
    """PLY point cloud for ``init="points"`` (default: the one the dataset's transforms name)."""


@dataclass
class Fit3DReport:
    """What ``report.json`` holds."""

    psnr: float
    """Mean PSNR (dB) over the evaluation views."""
    ssim: float
    """Mean SSIM over the evaluation views."""
    n_images: int
    """Number of evaluation views."""
    split: str
    """The split evaluated ("test", else "val", else "train")."""
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


def save_run_config(out: Path, config: Fit3DConfig, data: DataOptions) -> None:
    """Write ``config.json``: ``{"fit": ..., "data": ...}``."""
    text = json.dumps({"fit": config.to_dict(), "data": asdict(data)}, indent=2)
    atomic_write_text(out / CONFIG_FILE, text + "\n")


def load_run_config(run: str | Path) -> tuple[Fit3DConfig, DataOptions]:
    """Read a run folder's ``config.json``."""
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such file (is {run} a motion4d run folder?)")
    try:
        d = json.loads(path.read_text())
        return Fit3DConfig.from_dict(d["fit"]), DataOptions(**d["data"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not a valid run config ({e})") from None


def eval_split(root: str | Path) -> str:
    """The split to report on: "test", else "val", else "train"."""
    splits = available_splits(root)
    for s in ("test", "val", "train"):
        if s in splits:
            return s
    raise DataError(f"{root}: no transforms_<split>.json or transforms.json found")


def _init_model(config: Fit3DConfig, data: DataOptions, train: ImageSet, center: torch.Tensor, radius: float) -> Gaussians3D:
    if config.init == "random":
        return Gaussians3D.random_in_sphere(
            config.n_init, center, radius * config.init_radius, sh_degree=config.sh_degree,
            init_opacity=config.init_opacity, seed=config.seed,
        )  # fmt: skip
    if config.init == "points":
        path = data.points or train.points_path
        if path is None:
            raise DataError(f"{data.root}: the dataset names no point cloud for init='points' (give one, or use init='random')")
        xyz, rgb = load_points_ply(path)
        return Gaussians3D.from_points(xyz, rgb, sh_degree=config.sh_degree, init_opacity=config.init_opacity)
    raise ValueError(f"init must be 'random' or 'points', got {config.init!r}")


def fit3d(
    data: str | Path,
    out: str | Path,
    config: Fit3DConfig | None = None,
    *,
    downscale: int = 1,
    time: float | None = None,
    points: str | Path | None = None,
    resume: bool = False,
    orbit_frames: int = 48,
    fps: int = 24,
) -> Fit3DReport:
    """Fit static 3D Gaussians to the dataset at ``data`` and write the run folder ``out``.

    Args:
        data: dataset folder with ``transforms_train.json`` (and ideally ``transforms_test.json``).
        out: run folder (created).
        config: fit settings (default: the "default" preset).
        downscale, time, points: see :class:`DataOptions`.
        resume: continue from the newest checkpoint in ``out/checkpoints`` if there is one.
        orbit_frames, fps: length and rate of ``orbit.mp4``.
    """
    config = config if config is not None else PRESETS["default"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    opts = DataOptions(str(Path(data).resolve()), downscale, time, str(points) if points else None)
    if "train" not in available_splits(data):
        raise DataError(f"{data}: no training split (expected transforms_train.json or a nerfstudio transforms.json)")
    save_run_config(out, config, opts)
    train = load_transforms(data, "train", background=config.background, downscale=downscale, time=time)
    split = eval_split(data)
    test = load_transforms(data, split, background=config.background, downscale=downscale, time=time)
    center, radius = scene_bounds(train)
    center = torch.as_tensor(center, dtype=torch.float32)
    log.info("fit3d: %d training views %dx%d, evaluating on %s (%d views), scene radius %.3g",
             len(train.images), train.width, train.height, split, len(test.images), radius)  # fmt: skip

    model = _init_model(config, opts, train, center, float(radius))
    trainer = Trainer3D(config, model, train, float(radius), ckpt_dir=out / "checkpoints", eval_views=test)
    result = trainer.train(resume=resume)
    model = result.model.cpu()
    model.save(out / GAUSSIANS_FILE)
    f = model.at_time()
    save_ply(out / PLY_FILE, f.means.detach(), f.quats.detach(), f.scales.detach(), f.opacities.detach(), f.sh.detach())

    bg = torch.tensor(config.background, dtype=torch.float32)
    metrics = evaluate_views(f, test.images, test.viewmats, test.Ks, background=bg, backend=config.backend)
    if orbit_frames > 0:
        rig = OrbitRig.from_views(train.viewmats, train.Ks[0], train.width, train.height, center)
        frames = render_over_time(model, rig.viewmats(orbit_frames), rig.intrinsics(), rig.width, rig.height, torch.zeros(orbit_frames),
                                  background=config.background, backend=config.backend)  # fmt: skip
        write_video(out / VIDEO_FILE, frames, fps)
    report = Fit3DReport(
        psnr=metrics.mean_psnr, ssim=metrics.mean_ssim, n_images=len(metrics.psnr), split=split,
        n_gaussians=len(model), seconds=result.seconds, iters=result.steps,
        stopped_by_budget=result.stopped_by_budget, run=str(out),
    )  # fmt: skip
    atomic_write_text(out / REPORT_FILE, json.dumps(asdict(report), indent=2) + "\n")
    log.info("fit3d: %s PSNR %.2f dB, SSIM %.4f, %d Gaussians, %d steps in %.0f s",
             split, report.psnr, report.ssim, report.n_gaussians, report.iters, report.seconds)  # fmt: skip
    return report
