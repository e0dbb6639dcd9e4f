"""Export a run's model: a per-frame sequence of standard 3DGS PLYs, or one ``.m4d`` 4D file.

Models that give a time slice as covariances (the 4D rotor model) are converted to the PLY's rotation +
scales by eigendecomposition (:func:`motion4d.gaussians.rotations.covars_to_quats_scales`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import Tensor

from motion4d.atomic import atomic_write_text
from motion4d.export.m4d import save_m4d
from motion4d.export.ply import save_ply
from motion4d.gaussians import GaussianFrame
from motion4d.gaussians.rotations import covars_to_quats_scales
from motion4d.pipelines.models import load_run_model

log = logging.getLogger(__name__)

FORMATS = ("ply-sequence", "m4d")


def frame_ply_tensors(frame: GaussianFrame) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(means, quats, scales, opacities, sh) of ``frame``, detached on CPU, ready for :func:`save_ply`."""
    if frame.quats is not None and frame.scales is not None:
        quats, scales = frame.quats, frame.scales
    else:
        quats, scales = covars_to_quats_scales(frame.covars.detach())
    return tuple(x.detach().float().cpu() for x in (frame.means, quats, scales, frame.opacities, frame.sh))


@torch.no_grad()
def export_ply_sequence(model, folder: str | Path, times: list[float]) -> list[Path]:
    """Write ``folder/frame_XXXX.ply`` (standard 3DGS PLY) of ``model`` at each of ``times`` and ``times.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, t in enumerate(times):
        path = folder / f"frame_{i:04d}.ply"
        save_ply(path, *frame_ply_tensors(model.at_time(float(t))))
        paths.append(path)
    atomic_write_text(folder / "times.json", json.dumps({"times": [float(t) for t in times], "files": [p.name for p in paths]}, indent=2) + "\n")
    return paths


def export_run(run: str | Path, fmt: str, out: str | Path, *, frames: int = 24) -> Path:
    """Export the model of ``run`` (run folder or ``.m4d``) as ``fmt`` ("ply-sequence": ``frames``
    PLYs evenly spaced over the time range, into folder ``out``; "m4d": one file ``out``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    model, info = load_run_model(run)
    if fmt == "m4d":
        save_m4d(model, out, info)
        log.info("wrote %s (%s, %d Gaussians)", out, info.kind, len(model))
        return Path(out)
    t0, t1 = info.time_range
    times = torch.linspace(t0, t1, frames).tolist() if t1 > t0 else [t0]
    export_ply_sequence(model, out, times)
    log.info("wrote %d PLYs to %s", len(times), out)
    return Path(out)
