"""Evaluate a fitted run on a dataset split: render every view (at its own time), compare with the images.

Works for fit3d runs (static Gaussians; ``motion_amplitude`` 0.0), reconstruct runs and ``.m4d`` files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from motion4d.errors import DataError
from motion4d.data.transforms import available_splits, load_transforms
from motion4d.metrics.motion import motion_amplitude
from motion4d.metrics.views import evaluate_model
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.run import RunFolder, dataset_splits

log = logging.getLogger(__name__)


def _run_settings(run: Path) -> tuple[dict, dict]:
    """(config dict, inputs dict) of a run folder (either ``config.json`` layout); empty dicts without one."""
    folder = RunFolder(run)
    if not folder.has_config():
        return {}, {}
    saved = folder.read_config()
    return saved.config, {**saved.inputs, "data": saved.dataset}


def evaluate(run: str | Path, data: str | Path | None = None, split: str | None = None, *, device: str = "cpu") -> dict:
    """Metrics of the run's final model on ``split`` of ``data`` (default: the run's dataset; its "test"
    split, else "val", else "train" — a text-to-4d run's dataset is its sampled grid, a train split only).

    ``run`` is a fit3d or reconstruct run folder, or an ``.m4d`` file. The images are read with the
    run's background and downscale (and, for a fit3d run of one instant, its time). Returns
    ``{"psnr", "ssim", "n_images", "motion_amplitude", "seconds_per_frame_render", "split", "model"}``
    (means over the views; ``motion_amplitude`` as defined in :mod:`motion4d.metrics.motion`).
    """
    run = Path(run)
    model, info = load_run_model(run, device=device)
    config, opts = _run_settings(run) if run.is_dir() else ({}, {})
    if data is None:
        data = opts.get("data") or info.extra.get("data_root")
        if data is None:
            raise DataError(f"{run}: no dataset recorded; give --data")
    data = Path(data)
    if split is None:
        split = dataset_splits(data)[1]
    if split not in available_splits(data):
        raise DataError(f"{data}: no split {split!r} (splits here: {', '.join(available_splits(data)) or 'none'})")
    background = tuple(config.get("background") or info.extra.get("background") or (1.0, 1.0, 1.0))
    downscale = int(opts.get("downscale") or info.extra.get("downscale") or 1)
    views = load_transforms(data, split, background=background, downscale=downscale, time=opts.get("time"))
    if info.kind == "gaussians3d":
        views.times = None  # a static fit: every image against the one model
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    views.images, views.viewmats, views.Ks = views.images.to(device), views.viewmats.to(device), views.Ks.to(device)
    metrics = evaluate_model(model, views, background=bg, backend=config.get("backend", "auto"))
    amplitude = 0.0 if info.kind == "gaussians3d" else motion_amplitude(model, info.time_range)
    result = {
        "psnr": metrics.mean_psnr,
        "ssim": metrics.mean_ssim,
        "n_images": len(metrics.psnr),
        "motion_amplitude": amplitude,
        "seconds_per_frame_render": metrics.seconds_per_frame,
        "split": split,
        "model": info.kind,
    }
    log.info("evaluate %s on %s/%s: PSNR %.2f dB, SSIM %.4f, motion %.3f", run, data, split, result["psnr"], result["ssim"], amplitude)
    return result
