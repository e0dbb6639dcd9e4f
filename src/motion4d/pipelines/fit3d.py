"""Static reconstruction: posed images in, fitted 3D Gaussians and their report out.

A run folder RUN (:class:`~motion4d.pipelines.run.RunFolder`) holds ``config.json`` (the resolved config and
:class:`Fit3DInputs`), ``checkpoints/``,
``gaussians.safetensors`` (raw parameters), ``point_cloud.ply`` (standard 3DGS PLY), ``orbit.mp4``
and ``report.json`` (test-split metrics).

This pipeline imports ``export`` (PLY, video, atomic writes): writing its run folder is its job.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from motion4d.errors import DataError
from motion4d.data.points import load_points_ply
from motion4d.data.transforms import ImageSet, load_transforms, scene_bounds
from motion4d.export.ply import save_ply
from motion4d.export.video import write_video
from motion4d.gaussians import Gaussians3D
from motion4d.metrics.views import evaluate_views
from motion4d.optim.trainer3d import PRESETS, Fit3DConfig, Trainer3D
from motion4d.render.cameras import OrbitRig
from motion4d.render.frame import render_over_time
from motion4d.pipelines.run import RunFolder, SplitReport, dataset_splits

log = logging.getLogger(__name__)

GAUSSIANS_FILE = "gaussians.safetensors"
PLY_FILE = "point_cloud.ply"
VIDEO_FILE = "orbit.mp4"


@dataclass(frozen=True)
class Fit3DInputs:
    """What a fit3d run reads besides its config (saved in ``config.json`` as its ``inputs``)."""

    data: str
    """Dataset folder (Blender / D-NeRF ``transforms_<split>.json``, or a nerfstudio ``transforms.json``)."""
    downscale: int = 1
    """Integer image downscale factor."""
    time: float | None = None
    """Dynamic data: fit the frames at this time only."""
    points: str | None = None
    """PLY point cloud to start from (implies init "points"; default for init "points": the one the dataset's
    transforms name)."""
    orbit_frames: int = 48
    """Frames of the run's orbit video (0: none)."""

    def __post_init__(self):
        if self.downscale < 1:
            raise ValueError(f"downscale must be >= 1, got {self.downscale}")
        if self.orbit_frames < 0:
            raise ValueError(f"orbit_frames must be >= 0, got {self.orbit_frames}")


@dataclass
class Fit3DReport(SplitReport):
    """What ``report.json`` holds: the common fields of :class:`SplitReport`."""


def _init_model(config: Fit3DConfig, data: Fit3DInputs, train: ImageSet, center: torch.Tensor, radius: float) -> Gaussians3D:
    if config.init == "random":
        return Gaussians3D.random_in_sphere(
            config.n_init, center, radius * config.init_radius, sh_degree=config.sh_degree,
            init_opacity=config.init_opacity, seed=config.seed,
        )  # fmt: skip
    if config.init == "points":
        path = data.points or train.points_path
        if path is None:
            raise DataError(f"{data.data}: the dataset names no point cloud for init='points' (give one, or use init='random')")
        xyz, rgb = load_points_ply(path)
        return Gaussians3D.from_points(xyz, rgb, sh_degree=config.sh_degree, init_opacity=config.init_opacity)
    raise ValueError(f"init must be 'random' or 'points', got {config.init!r}")


def fit3d(
    data: str | Path,
    out: str | Path,
    config: Fit3DConfig | None = None,
    *,
    downscale: int = Fit3DInputs.downscale,
    time: float | None = Fit3DInputs.time,
    points: str | Path | None = Fit3DInputs.points,
    resume: bool = False,
    orbit_frames: int = Fit3DInputs.orbit_frames,
    fps: int = 24,
) -> Fit3DReport:
    """Fit static 3D Gaussians to the dataset at ``data`` and write the run folder ``out``.

    Args:
        data: dataset folder with ``transforms_train.json`` (and ideally ``transforms_test.json``).
        out: run folder (created).
        config: fit settings (default: the "default" preset).
        downscale, time, points, orbit_frames: see :class:`Fit3DInputs`.
        resume: continue from the newest checkpoint in ``out/checkpoints`` if there is one.
        fps: frame rate of ``orbit.mp4``.
    """
    config = config if config is not None else PRESETS["default"]
    if points is not None and config.init != "points":
        config = dataclasses.replace(config, init="points")
    run = RunFolder(out)
    inputs = Fit3DInputs(str(Path(data).resolve()), downscale, time, str(points) if points else None, orbit_frames)
    _, split = dataset_splits(data)
    run.write_config("fit3d", config, inputs)
    train = load_transforms(data, "train", background=config.background, downscale=downscale, time=time)
    test = load_transforms(data, split, background=config.background, downscale=downscale, time=time)
    center, radius = scene_bounds(train)
    center = torch.as_tensor(center, dtype=torch.float32)
    log.info("fit3d: %d training views %dx%d, evaluating on %s (%d views), scene radius %.3g",
             len(train.images), train.width, train.height, split, len(test.images), radius)  # fmt: skip

    model = _init_model(config, inputs, train, center, float(radius))
    trainer = Trainer3D(config, model, train, float(radius), ckpt_dir=run.checkpoints, eval_views=test)
    result = trainer.train(resume=resume)
    model = result.model.cpu()
    model.save(run.path / GAUSSIANS_FILE)
    f = model.at_time()
    save_ply(run.path / PLY_FILE, f.means.detach(), f.quats.detach(), f.scales.detach(), f.opacities.detach(), f.sh.detach())

    bg = torch.tensor(config.background, dtype=torch.float32)
    metrics = evaluate_views(f, test.images, test.viewmats, test.Ks, background=bg, backend=config.backend)
    if orbit_frames > 0:
        rig = OrbitRig.from_views(train.viewmats, train.Ks[0], train.width, train.height, center)
        frames = render_over_time(model, rig.viewmats(orbit_frames), rig.intrinsics(), rig.width, rig.height, torch.zeros(orbit_frames),
                                  background=config.background, backend=config.backend)  # fmt: skip
        write_video(run.path / VIDEO_FILE, frames, fps)
    report = Fit3DReport(**run.summary(result, metrics, split))
    run.write_report(report)
    log.info("fit3d: %s PSNR %.2f dB, SSIM %.4f, %d Gaussians, %d steps in %.0f s",
             split, report.psnr, report.ssim, report.n_gaussians, report.iters, report.seconds)  # fmt: skip
    return report
