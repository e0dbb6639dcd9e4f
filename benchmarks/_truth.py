"""What generate.py and oracle.py share: a packed synthetic sample's ground-truth 4D asset, made exactly as
``motion4d text-to-4d`` makes a generated one (its first ``config.views`` packed views — the fixed evaluation
views, the generation views — × all frames in place of the sampled grid, then ``fit_grid`` with ``config``),
and the oracle's verdict on a run folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

from motion4d.metrics.oracle import OracleConfig, OracleResult, judge
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.run import RunFolder
from motion4d.pipelines.text_to_4d import GRID_FOLDER, GeneratedGrid, fit_grid


def fit_truth(sample, run: Path, config, fov_deg: float = 40.0) -> dict:
    """Fit (or reuse) the ground-truth grid of ``sample`` (a :class:`~motion4d.data.synth_packed.SynthSample`)
    in the run folder ``run`` with the text-to-4d config ``config``; its ``report.json`` plus ``fit_seconds``."""
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


def truth_asset(sample, run: Path, config) -> dict:
    """Fit (or reuse) the ground-truth grid of a sample at the generation views and judge it."""
    report = fit_truth(sample, run, config)
    return {"judged": judged(run), "psnr": report["psnr"], "motion_amplitude": report["motion_amplitude"]}
