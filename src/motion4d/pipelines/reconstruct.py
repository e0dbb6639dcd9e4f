"""4D reconstruction: multi-view video (posed images with a ``time`` each) in, animated Gaussians out.

A run folder RUN holds ``config.json`` (the resolved config, data options and model kind),
``checkpoints/``, ``model.m4d`` (the model, reloadable by every command), ``video.mp4`` (an orbit
while time advances), ``report.json`` (test-split metrics, ``motion_amplitude``, Gaussians, seconds)
and, when asked, ``ply/`` (a 3DGS PLY per frame).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from motion4d.atomic import atomic_write_text
from motion4d.errors import DataError
from motion4d.data.transforms import available_splits, load_transforms, scene_bounds
from motion4d.export.m4d import ModelInfo, save_m4d
from motion4d.export.video import write_video
from motion4d.gaussians.registry import init_model
from motion4d.metrics.motion import motion_amplitude
from motion4d.metrics.views import evaluate_model
from motion4d.optim.trainer4d import PRESETS, Reconstruct4DConfig, Trainer4D
from motion4d.pipelines.export_run import export_ply_sequence
from motion4d.pipelines.fit3d import eval_split
from motion4d.pipelines.models import MODEL_FILE
from motion4d.render.cameras import OrbitRig
from motion4d.render.frame import render_over_time

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
VIDEO_FILE = "video.mp4"
REPORT_FILE = "report.json"
PLY_FOLDER = "ply"


@dataclass(frozen=True)
class ReconstructOptions:
    """What a reconstruct run reads and which model it fits (saved in ``config.json``)."""

    root: str
    """Dataset folder (D-NeRF / multi-view ``transforms_<split>.json`` with ``time`` per frame)."""
    downscale: int = 1
    """Integer image downscale factor."""
    model: str = "rotor4d"
    """Model kind (a kind of :mod:`motion4d.gaussians.registry`)."""


@dataclass
class ReconstructReport:
    """What ``report.json`` holds."""

    psnr: float
    """Mean PSNR (dB) over the evaluation images, each rendered at its own time."""
    ssim: float
    """Mean SSIM over the evaluation images."""
    n_images: int
    """Number of evaluation images."""
    split: str
    """The split evaluated ("test", else "val", else "train")."""
    motion_amplitude: float
    """Scale-free motion of the model (see :mod:`motion4d.metrics.motion`)."""
    n_gaussians: int
    """Gaussians in the final model."""
    seconds: float
    """Training wall time (over resumed runs too)."""
    iters: int
    """Completed optimisation steps."""
    stopped_by_budget: bool
    """Whether the time budget ended training early."""
    model: str
    """Model kind."""
    sampler: str
    """Sampler kind ("sliding" or "uniform")."""
    run: str
    """The run folder."""


def save_run_config(out: Path, config: Reconstruct4DConfig, opts: ReconstructOptions) -> None:
    """Write ``config.json``: ``{"reconstruct": ..., "data": {"root", "downscale"}, "model": ...}``."""
    d = {"reconstruct": config.to_dict(), "data": {"root": opts.root, "downscale": opts.downscale}, "model": opts.model}
    atomic_write_text(out / CONFIG_FILE, json.dumps(d, indent=2) + "\n")


def load_run_config(run: str | Path) -> tuple[Reconstruct4DConfig, ReconstructOptions]:
    """Read a reconstruct run folder's ``config.json``."""
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such file (is {run} a motion4d run folder?)")
    try:
        d = json.loads(path.read_text())
        return Reconstruct4DConfig.from_dict(d["reconstruct"]), ReconstructOptions(model=d["model"], **d["data"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not a valid reconstruct run config ({e})") from None


def _split_file(root: Path, split: str) -> Path:
    blender = root / f"transforms_{split}.json"
    return blender if blender.is_file() else root / "transforms.json"


def reconstruct(
    data: str | Path,
    out: str | Path,
    config: Reconstruct4DConfig | None = None,
    *,
    model: str = "rotor4d",
    downscale: int = 1,
    resume: bool = False,
    video_frames: int = 48,
    ply_frames: int = 0,
    fps: int = 24,
) -> ReconstructReport:
    """Fit a 4D ``model`` to the dynamic dataset ``data`` and write the run folder ``out``.

    Args:
        data: dataset folder with ``transforms_train.json`` (frames with ``time``) and ideally a test split.
        out: run folder (created).
        config: fit settings (default: the "default" preset).
        model: "rotor4d" or "deform".
        downscale: integer image downscale factor.
        resume: continue from the newest checkpoint in ``out/checkpoints`` if there is one.
        video_frames, fps: length and rate of ``video.mp4`` (0 frames: no video).
        ply_frames: write this many per-frame PLYs into ``out/ply`` (0: none).
    """
    config = config if config is not None else PRESETS["default"]
    out = Path(out)
    data = Path(data)
    if "train" not in available_splits(data):
        raise DataError(f"{data}: no training split (expected transforms_train.json or a nerfstudio transforms.json)")
    opts = ReconstructOptions(str(data.resolve()), downscale, model)
    train = load_transforms(data, "train", background=config.background, downscale=downscale)
    if train.times is None:
        raise DataError(f"{_split_file(data, 'train')}: frames have no 'time' (reconstruct needs a dynamic dataset; use fit3d for a static one)")
    out.mkdir(parents=True, exist_ok=True)
    save_run_config(out, config, opts)
    split = eval_split(data)
    test = load_transforms(data, split, background=config.background, downscale=downscale)
    if test.times is None:
        raise DataError(f"{_split_file(data, split)}: frames have no 'time'")
    center, radius = scene_bounds(train)
    time_range = (float(train.times.min()), float(train.times.max()))
    log.info("reconstruct (%s): %d training images %dx%d over %d frames, t in [%.3g, %.3g]; evaluating on %s (%d images)",
             model, len(train.images), train.width, train.height, len(torch.unique(train.times)), *time_range, split, len(test.images))  # fmt: skip

    fitted = init_model(
        model, config.n_init, center.float(), float(radius) * config.init_radius, time_range=time_range,
        sh_degree=config.sh_degree, init_opacity=config.init_opacity, seed=config.seed,
    )  # fmt: skip
    trainer = Trainer4D(config, fitted, train, float(radius), ckpt_dir=out / "checkpoints")
    result = trainer.train(resume=resume)
    fitted = result.model.cpu().eval()

    rig = OrbitRig.from_views(train.viewmats, train.Ks[0], train.width, train.height, center)
    extra = {"background": list(config.background), "orbit": asdict(rig), "data_root": opts.root, "downscale": downscale}
    save_m4d(fitted, out / MODEL_FILE, ModelInfo(model, time_range, extra))
    bg = torch.tensor(config.background, dtype=torch.float32)
    metrics = evaluate_model(fitted, test, background=bg, backend=config.backend)
    if video_frames > 0:
        times = torch.linspace(time_range[0], time_range[1], video_frames)
        frames = render_over_time(fitted, rig.viewmats(video_frames), rig.intrinsics(), rig.width, rig.height, times, background=config.background, backend=config.backend)
        write_video(out / VIDEO_FILE, frames, fps)
    if ply_frames > 0:
        export_ply_sequence(fitted, out / PLY_FOLDER, torch.linspace(time_range[0], time_range[1], ply_frames).tolist())
    report = ReconstructReport(
        psnr=metrics.mean_psnr, ssim=metrics.mean_ssim, n_images=len(metrics.psnr), split=split,
        motion_amplitude=motion_amplitude(fitted, time_range), n_gaussians=len(fitted), seconds=result.seconds,
        iters=result.steps, stopped_by_budget=result.stopped_by_budget, model=model, sampler=config.sampler.kind, run=str(out),
    )  # fmt: skip
    atomic_write_text(out / REPORT_FILE, json.dumps(asdict(report), indent=2) + "\n")
    log.info("reconstruct: %s PSNR %.2f dB, SSIM %.4f, motion %.3f, %d Gaussians, %d steps in %.0f s",
             split, report.psnr, report.ssim, report.motion_amplitude, report.n_gaussians, report.iters, report.seconds)  # fmt: skip
    return report
