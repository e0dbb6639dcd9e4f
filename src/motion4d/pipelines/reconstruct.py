"""4D reconstruction: multi-view video (posed images with a ``time`` each) in, animated Gaussians out.

A run folder RUN (:class:`~motion4d.pipelines.run.RunFolder`) holds ``config.json`` (the resolved config and
:class:`ReconstructInputs`),
``checkpoints/``, ``model.m4d`` (the model, reloadable by every command), ``video.mp4`` (an orbit
while time advances), ``report.json`` (test-split metrics, ``motion_amplitude``, Gaussians, seconds)
and, when asked, ``ply/`` (a 3DGS PLY per frame).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from motion4d.errors import DataError
from motion4d.data.transforms import ImageSet, load_transforms, scene_bounds
from motion4d.export.m4d import ModelInfo, save_m4d
from motion4d.export.video import write_video
from motion4d.gaussians.registry import init_model, lookup, reconstruct_kinds
from motion4d.metrics.motion import motion_amplitude
from motion4d.metrics.views import evaluate_model
from motion4d.optim.trainer4d import PRESETS, Reconstruct4DConfig, Trainer4D
from motion4d.pipelines.export_run import export_ply_sequence
from motion4d.pipelines.models import MODEL_FILE
from motion4d.pipelines.run import RunFolder, SplitReport, dataset_splits
from motion4d.render.cameras import OrbitRig
from motion4d.render.frame import render_over_time

log = logging.getLogger(__name__)

VIDEO_FILE = "video.mp4"
PLY_FOLDER = "ply"


@dataclass(frozen=True)
class ReconstructInputs:
    """What a reconstruct run reads, which model it fits and what it writes besides the model (saved in
    ``config.json`` as its ``inputs``)."""

    data: str
    """Dataset folder (D-NeRF / multi-view ``transforms_<split>.json`` with ``time`` per frame)."""
    model: str = "rotor4d"
    """Model kind (one :mod:`motion4d.gaussians.registry` builds from scratch: rotor4d or deform)."""
    downscale: int = 1
    """Integer image downscale factor."""
    video_frames: int = 48
    """Frames of the run's video (0: none)."""
    ply_frames: int = 0
    """Per-frame 3DGS PLYs written into RUN/ply (0: none)."""

    def __post_init__(self):
        if self.downscale < 1:
            raise ValueError(f"downscale must be >= 1, got {self.downscale}")
        for name in ("video_frames", "ply_frames"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class ReconstructReport(SplitReport):
    """What ``report.json`` holds: the fields of :class:`SplitReport` and these."""

    motion_amplitude: float
    """Scale-free motion of the model (see :mod:`motion4d.metrics.motion`)."""
    model: str
    """Model kind."""
    sampler: str
    """Sampler kind ("sliding" or "uniform")."""


def check_model_kind(kind: str) -> None:
    """A clear error, before any work, when ``kind`` is not a model ``reconstruct`` can fit from scratch."""
    entry = lookup(kind)
    if not entry.reconstruct:  # e.g. animate's models, built from an asset
        raise ValueError(f"model {kind!r} cannot be reconstructed from scratch; choose from {', '.join(reconstruct_kinds())}")
    entry.cls()  # its module is there


def _split_file(root: Path, split: str) -> Path:
    blender = root / f"transforms_{split}.json"
    return blender if blender.is_file() else root / "transforms.json"


def reconstruct(
    data: str | Path,
    out: str | Path,
    config: Reconstruct4DConfig | None = None,
    *,
    model: str = ReconstructInputs.model,
    downscale: int = ReconstructInputs.downscale,
    resume: bool = False,
    video_frames: int = ReconstructInputs.video_frames,
    ply_frames: int = ReconstructInputs.ply_frames,
    fps: int = 24,
) -> ReconstructReport:
    """Fit a 4D ``model`` to the dynamic dataset ``data`` and write the run folder ``out``.

    Args:
        data: dataset folder with ``transforms_train.json`` (frames with ``time``) and ideally a test split.
        out: run folder (created).
        config: fit settings (default: the "default" preset).
        model, downscale, video_frames, ply_frames: see :class:`ReconstructInputs`.
        resume: continue from the newest checkpoint in ``out/checkpoints`` if there is one.
        fps: frame rate of ``video.mp4``.
    """
    config = config if config is not None else PRESETS["default"]
    run, data = RunFolder(out), Path(data)
    inputs = ReconstructInputs(str(data.resolve()), model, downscale, video_frames, ply_frames)
    check_model_kind(model)
    _, split = dataset_splits(data)
    train = load_transforms(data, "train", background=config.background, downscale=downscale)
    if train.times is None:
        raise DataError(f"{_split_file(data, 'train')}: frames have no 'time' (reconstruct needs a dynamic dataset; use fit3d for a static one)")
    run.write_config("reconstruct", config, inputs)
    test = load_transforms(data, split, background=config.background, downscale=downscale)
    if test.times is None:
        raise DataError(f"{_split_file(data, split)}: frames have no 'time'")
    return fit_dynamic(run, train, test, split, config, model=model, extra={"data_root": inputs.data, "downscale": downscale},
                       resume=resume, video_frames=video_frames, ply_frames=ply_frames, fps=fps)  # fmt: skip


def fit_dynamic(
    run: RunFolder, train: ImageSet, test: ImageSet, split: str, config: Reconstruct4DConfig, *, model: str = ReconstructInputs.model,
    extra: dict | None = None, resume: bool = False, video_frames: int = ReconstructInputs.video_frames,
    ply_frames: int = ReconstructInputs.ply_frames, fps: int = 24, write_report: bool = True,
) -> ReconstructReport:  # fmt: skip
    """The reconstruct path after the inputs are read: fit a 4D ``model`` to the posed images ``train``, write
    ``model.m4d`` (``extra`` added to its metadata: ``data_root`` lets evaluate / render find the dataset),
    the video and PLYs, evaluate on ``test`` (the dataset's ``split``) and write ``report.json`` into ``run``.
    Every pipeline that ends in a 4D fit (reconstruct, text-to-4d) goes through it; the caller writes
    ``config.json`` (and ``report.json`` itself with ``write_report=False``)."""
    center, radius = scene_bounds(train)
    time_range = (float(train.times.min()), float(train.times.max()))
    log.info("reconstruct (%s): %d training images %dx%d over %d frames, t in [%.3g, %.3g]; evaluating on %s (%d images)",
             model, len(train.images), train.width, train.height, len(torch.unique(train.times)), *time_range, split, len(test.images))  # fmt: skip

    fitted = init_model(
        model, config.n_init, center.float(), float(radius) * config.init_radius, time_range=time_range,
        sh_degree=config.sh_degree, init_opacity=config.init_opacity, seed=config.seed,
    )  # fmt: skip
    trainer = Trainer4D(config, fitted, train, float(radius), ckpt_dir=run.checkpoints)
    result = trainer.train(resume=resume)
    fitted = result.model.cpu().eval()

    rig = OrbitRig.from_views(train.viewmats, train.Ks[0], train.width, train.height, center)
    extra = {"background": list(config.background), "orbit": asdict(rig), **(extra or {})}
    save_m4d(fitted, run.path / MODEL_FILE, ModelInfo(model, time_range, extra))
    bg = torch.tensor(config.background, dtype=torch.float32)
    metrics = evaluate_model(fitted, test, background=bg, backend=config.backend)
    if video_frames > 0:
        times = torch.linspace(time_range[0], time_range[1], video_frames)
        frames = render_over_time(fitted, rig.viewmats(video_frames), rig.intrinsics(), rig.width, rig.height, times, background=config.background, backend=config.backend)
        write_video(run.path / VIDEO_FILE, frames, fps)
    if ply_frames > 0:
        export_ply_sequence(fitted, run.path / PLY_FOLDER, torch.linspace(time_range[0], time_range[1], ply_frames).tolist())
    report = ReconstructReport(
        **run.summary(result, metrics, split), motion_amplitude=motion_amplitude(fitted, time_range), model=model, sampler=config.sampler.kind,
    )  # fmt: skip
    if write_report:
        run.write_report(report)
    log.info("reconstruct: %s PSNR %.2f dB, SSIM %.4f, motion %.3f, %d Gaussians, %d steps in %.0f s",
             split, report.psnr, report.ssim, report.motion_amplitude, report.n_gaussians, report.iters, report.seconds)  # fmt: skip
    return report
