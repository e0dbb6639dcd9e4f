"""Evaluate a fitted run on a dataset split: render every view (at its own time), compare with the images.

Works for fit3d runs (static Gaussians; ``motion_amplitude`` 0.0), reconstruct runs and ``.m4d`` files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from motion4d.errors import DataError
from motion4d.data.transforms import ImageSet, available_splits, load_transforms
from motion4d.optim.evaluation import ViewMetrics, evaluate_views
from motion4d.optim.motion import motion_amplitude
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.run import RunFolder

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_model(model, views: ImageSet, *, background: torch.Tensor, backend: str = "auto") -> ViewMetrics:
    """Metrics of ``model`` on ``views``: each image rendered at its ``time`` (all at t=0 when it has none)."""
    if views.times is None:
        return evaluate_views(model.at_time(0.0), views.images, views.viewmats, views.Ks, background=background, backend=backend)
    psnr, ssim, seconds = [], [], 0.0
    order = []
    for t in torch.unique(views.times).tolist():
        idx = torch.where(views.times == t)[0]
        m = evaluate_views(model.at_time(t), views.images[idx], views.viewmats[idx], views.Ks[idx], background=background, backend=backend)
        psnr += m.psnr
        ssim += m.ssim
        seconds += m.seconds_per_frame * len(idx)
        order += idx.tolist()
    back = sorted(range(len(order)), key=order.__getitem__)  # per-view lists in the dataset's order
    return ViewMetrics([psnr[i] for i in back], [ssim[i] for i in back], seconds / max(len(order), 1))


def _run_settings(run: Path) -> tuple[dict, dict]:
    """(config dict, inputs dict) of a run folder (either ``config.json`` layout); empty dicts without one."""
    folder = RunFolder(run)
    if not folder.has_config():
        return {}, {}
    saved = folder.read_config()
    return saved.config, {**saved.inputs, "data": saved.dataset}


def evaluate(run: str | Path, data: str | Path | None = None, split: str = "test", *, device: str = "cpu") -> dict:
    """Metrics of the run's final model on ``split`` of ``data`` (default: the run's dataset).

    ``run`` is a fit3d or reconstruct run folder, or an ``.m4d`` file. The images are read with the
    run's background and downscale (and, for a fit3d run of one instant, its time). Returns
    ``{"psnr", "ssim", "n_images", "motion_amplitude", "seconds_per_frame_render", "split", "model"}``
    (means over the views; ``motion_amplitude`` as defined in :mod:`motion4d.optim.motion`).
    """
    run = Path(run)
    model, info = load_run_model(run, device=device)
    config, opts = _run_settings(run) if run.is_dir() else ({}, {})
    if data is None:
        data = opts.get("data") or info.extra.get("data_root")
        if data is None:
            raise DataError(f"{run}: no dataset recorded; give --data")
    data = Path(data)
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
