"""Render a run's model over time into a video: from one fixed dataset view, or an orbiting camera."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import torch

from motion4d.errors import DataError
from motion4d.data.transforms import available_splits, load_transforms, scene_bounds
from motion4d.export.m4d import ModelInfo
from motion4d.export.video import write_video
from motion4d.pipelines.models import load_run_model
from motion4d.render.cameras import OrbitRig
from motion4d.render.frame import render_over_time

log = logging.getLogger(__name__)


def _rig_of(info: ModelInfo, data: str | None, downscale: int, source: str | Path) -> OrbitRig:
    if "orbit" in info.extra:
        try:
            return OrbitRig(**info.extra["orbit"])
        except (TypeError, ValueError) as exc:  # a hand-edited or foreign .m4d
            raise DataError(f"{source}: its 'orbit' metadata is not an orbit camera ({exc})") from None
    if data is None:
        raise DataError("the model records no orbit camera and no dataset; give --data")
    views = load_transforms(data, "train", downscale=downscale)
    return OrbitRig.from_views(views.viewmats, views.Ks[0], views.width, views.height, scene_bounds(views).center)


class DatasetCameras(NamedTuple):
    """The distinct cameras of one dataset split."""

    viewmats: torch.Tensor
    """[V,4,4] world→camera (OpenCV axes)."""
    Ks: torch.Tensor
    """[V,3,3] intrinsics."""
    width: int
    """Image width."""
    height: int
    """Image height."""
    times: torch.Tensor
    """[T] the distinct frame times of the split, ascending (empty when it has none)."""


def dataset_cameras(root: str | Path, split: str = "test", *, downscale: int = 1) -> DatasetCameras:
    """The cameras ``render --view I`` uses: camera I is the I-th distinct view of ``split`` (else "train")
    of the dataset at ``root``, at its first image."""
    s = split if split in available_splits(root) else "train"
    views = load_transforms(root, s, downscale=downscale)
    times = torch.unique(views.times) if views.times is not None else torch.zeros(0)
    rows = [int(torch.where(views.views == v)[0][0]) for v in torch.unique(views.views)] if views.views is not None else list(range(len(views)))
    return DatasetCameras(views.viewmats[rows], views.Ks[rows], views.width, views.height, times)


def render_video(
    run: str | Path, out: str | Path, *, orbit: bool = False, view: int = 0, frames: int = 48, fps: float = 24,
    data: str | Path | None = None, split: str = "test", device: str = "cpu", progress: bool = True,
) -> Path:
    """Write ``out`` (.mp4 or .gif): the run's model over its time range in ``frames`` frames.

    ``orbit``: the camera circles the scene once while time advances; otherwise it stays at view
    ``view`` of ``split`` (else "train") of the run's dataset (or ``data``).
    """
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    if Path(out).suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"{out}: the video must end in .mp4 or .gif")
    model, info = load_run_model(run, device=device)
    root = data or info.extra.get("data_root")
    downscale = int(info.extra.get("downscale") or 1)
    background = tuple(info.extra.get("background") or (1.0, 1.0, 1.0))
    t0, t1 = info.time_range
    times = torch.linspace(t0, t1, frames)
    if orbit:
        rig = _rig_of(info, root, downscale, run)
        viewmats, K, W, H = rig.viewmats(frames), rig.intrinsics(), rig.width, rig.height
    else:
        if root is None:
            raise DataError(f"{run}: no dataset recorded; give --data (or use --orbit)")
        cams, Ks, W, H, _ = dataset_cameras(root, split, downscale=downscale)
        if not 0 <= view < len(cams):
            raise ValueError(f"--view {view} out of range: {root} has {len(cams)} {split} views (0..{len(cams) - 1})")
        viewmats, K = cams[view : view + 1].expand(frames, 4, 4), Ks[view]
    video = render_over_time(model, viewmats, K, W, H, times, background=background, progress=progress)
    write_video(out, video, fps)
    log.info("wrote %s: %d frames, t in [%.3g, %.3g]", out, frames, t0, t1)
    return Path(out)
