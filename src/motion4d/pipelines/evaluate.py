"""Evaluate a fitted run on a dataset split: render every view, compare with the images."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from motion4d.data.errors import DataError
from motion4d.data.transforms import available_splits, load_transforms
from motion4d.gaussians import Gaussians3D
from motion4d.optim.evaluation import evaluate_views
from motion4d.pipelines.fit3d import GAUSSIANS_FILE, load_run_config

log = logging.getLogger(__name__)


def evaluate(run: str | Path, data: str | Path | None = None, split: str = "test", *, device: str = "cpu") -> dict:
    """Metrics of the run's final Gaussians on ``split`` of ``data`` (default: the run's dataset).

    The images are read with the run's background, downscale and time. Returns
    ``{"psnr", "ssim", "n_images", "seconds_per_frame_render", "split"}`` (means over the views).
    """
    run = Path(run)
    config, opts = load_run_config(run)
    data = Path(data) if data is not None else Path(opts.root)
    if split not in available_splits(data):
        raise DataError(f"{data}: no split {split!r} (splits here: {', '.join(available_splits(data)) or 'none'})")
    path = run / GAUSSIANS_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such file (has the fit finished?)")
    model = Gaussians3D.load(path, device=device)
    views = load_transforms(data, split, background=config.background, downscale=opts.downscale, time=opts.time)
    bg = torch.tensor(config.background, dtype=torch.float32, device=device)
    metrics = evaluate_views(model.at_time(), views.images.to(device), views.viewmats.to(device), views.Ks.to(device), background=bg, backend=config.backend)
    result = {
        "psnr": metrics.mean_psnr,
        "ssim": metrics.mean_ssim,
        "n_images": len(metrics.psnr),
        "seconds_per_frame_render": metrics.seconds_per_frame,
        "split": split,
    }
    log.info("evaluate %s on %s/%s: PSNR %.2f dB, SSIM %.4f", run, data, split, result["psnr"], result["ssim"])
    return result
