"""What the benchmark scripts share: run one ``motion4d`` command in a subprocess and read its run's
``report.json``; load a prior to measure; write the results JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from motion4d.atomic import atomic_write_text


def run_motion4d(argv: list[str], out: Path, keys: tuple[str, ...]) -> dict:
    """Run ``python -m motion4d -q ARGV`` and return ``keys`` of ``out/report.json`` plus ``wall_s``, or
    ``{"error": last stderr line, "wall_s"}`` when the command fails."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "motion4d", "-q", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1], "wall_s": wall}
    report = json.loads((Path(out) / "report.json").read_text())
    return {**{k: report[k] for k in keys}, "wall_s": wall}


def write_json(path: str | Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON (creating the folder) and say so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


def load_prior(path: Path, *, raw: bool = False):
    """The prior at ``path`` in eval mode: a train-prior run folder's current checkpoint (its EMA weights, or
    with ``raw`` the weights being optimised), else a model folder (``load_denoiser``)."""
    from motion4d.pipelines.train_prior import CHECKPOINT_FILE, checkpoint_model
    from motion4d.priors.checkpoint import load_training_state
    from motion4d.priors.mvvideo import load_denoiser

    path = Path(path)
    if (path / CHECKPOINT_FILE).is_file():
        model = checkpoint_model(path)
        if raw:
            model.load_state_dict(load_training_state(path / CHECKPOINT_FILE).model)
        return model
    if raw:
        raise SystemExit(f"error: {path}: raw weights need a train-prior run folder (it has no {CHECKPOINT_FILE})")
    return load_denoiser(path).eval()
