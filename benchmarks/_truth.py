"""What generate.py and oracle.py share: a packed synthetic sample's ground-truth 4D asset, made exactly as
``motion4d text-to-4d`` makes a generated one (its first ``config.views`` packed views — the fixed evaluation
views, the generation views — × all frames in place of the sampled grid, then ``fit_grid`` with ``config``),
and the oracle's verdict on a run folder.

:func:`variant` makes the two controls of the oracle's own benchmark from a sample: ``still`` (frame 0 held
for every frame: nothing moves, so the oracle must say "static") and ``blurred`` (the views blurred by a
Gaussian of ``BLUR_PX`` pixels, premultiplied: a stand-in for a generated grid, which is blurrier than a
render).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from motion4d.metrics.oracle import OracleConfig, OracleResult, judge
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.run import RunFolder
from motion4d.pipelines.text_to_4d import GRID_FOLDER, GeneratedGrid, fit_grid


VARIANTS = ("truth", "still", "blurred")
"""What :func:`variant` makes of a sample (module docstring)."""
BLUR_PX = 1.0
"""Standard deviation (pixels) of the ``blurred`` variant's Gaussian."""


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images [V,T,H,W,4]`` uint8 straight RGBA blurred (premultiplied, separable Gaussian, edges replicated)."""
    x = images.float() / 255.0
    V, T, H, W, _ = x.shape
    pm = torch.cat([x[..., :3] * x[..., 3:], x[..., 3:]], -1).reshape(V * T, H, W, 4).permute(0, 3, 1, 2)
    r = round(3 * sigma)
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1).float() / sigma) ** 2)
    g = g / g.sum()
    pm = F.pad(pm, (r, r, r, r), mode="replicate")
    pm = F.conv2d(pm.reshape(-1, 1, *pm.shape[-2:]), g[None, None, None, :]).reshape(V * T, 4, H + 2 * r, W)
    pm = F.conv2d(pm.reshape(-1, 1, *pm.shape[-2:]), g[None, None, :, None]).reshape(V * T, 4, H, W)
    pm = pm.permute(0, 2, 3, 1).reshape(V, T, H, W, 4)
    a = pm[..., 3:]
    return (torch.cat([(pm[..., :3] / a.clamp_min(1e-4)).clamp(0, 1), a], -1) * 255).round().to(torch.uint8)


def variant(sample, kind: str, views: int = 4):
    """``sample`` (a :class:`~motion4d.data.synth_packed.SynthSample`) as ``kind`` of :data:`VARIANTS`
    (module docstring; only its first ``views`` views change)."""
    if kind not in VARIANTS:
        raise ValueError(f"unknown variant {kind!r} (one of {', '.join(VARIANTS)})")
    images = sample.images.clone()
    if kind == "still":
        images[:views] = images[:views, :1].expand_as(images[:views])
    elif kind == "blurred":
        images[:views] = _blur(images[:views], BLUR_PX)
    return dataclasses.replace(sample, images=images)


def fit_truth(sample, run: Path, config, fov_deg: float) -> dict:
    """Fit (or reuse) the ground-truth grid of ``sample`` (a :class:`~motion4d.data.synth_packed.SynthSample`;
    its first ``config.views`` views, the dataset's fixed evaluation views, horizontal field of view
    ``fov_deg``) in the run folder ``run`` with the text-to-4d config ``config``; its ``report.json`` plus
    ``fit_seconds``."""
    if not (run / "report.json").is_file():
        v = config.views
        grid = GeneratedGrid(sample.images[:v].float() / 255.0, sample.azimuth_deg[:v], sample.elevation_deg[:v], float(sample.radius[0]),
                             fov_deg, sample.times)  # fmt: skip
        grid.write(run / GRID_FOLDER, {"caption": sample.record["caption"]})
        t0 = time.perf_counter()
        report = fit_grid(RunFolder(run), run / GRID_FOLDER, config, video_frames=0)
        RunFolder(run).write_report(report)
        (run / "seconds.json").write_text(json.dumps({"fit": time.perf_counter() - t0}))
    seconds = run / "seconds.json"
    fit_s = json.loads(seconds.read_text())["fit"] if seconds.is_file() else float("nan")
    return {**RunFolder(run).read_report(), "fit_seconds": fit_s}


def judge_run(run: Path, config: OracleConfig | None = None) -> tuple[OracleResult, float]:
    """The oracle's verdict (with ``config``, default the oracle's) on a run folder's model over its time
    range, and the seconds it took."""
    model, info = load_run_model(run)
    t0 = time.perf_counter()
    result = judge(model, info.time_range, config or OracleConfig())
    return result, time.perf_counter() - t0


def judged(run: Path) -> dict:
    """The oracle's shape / colour / motion of a run folder's model."""
    r, _ = judge_run(run)
    return {"shape": r.shape, "colour": r.colour, "motion": r.motion}


def truth_asset(sample, run: Path, config, fov_deg: float) -> dict:
    """Fit (or reuse) the ground-truth grid of a sample at the generation views (horizontal field of view
    ``fov_deg``) and judge it."""
    report = fit_truth(sample, run, config, fov_deg)
    return {"judged": judged(run), "psnr": report["psnr"], "motion_amplitude": report["motion_amplitude"]}
