"""4D reconstruction quality at equal time budget: both models × both samplers on each dataset.

For every dataset, model ("rotor4d", "deform") and sampler ("sliding", "uniform") it runs
``motion4d reconstruct DATA --out RUNS/<data>-<model>-<sampler> --time-budget 60·M`` in a subprocess
(same preset, seed and budget for all), then reads the run's ``report.json``. Prints a table and writes
JSON: test PSNR, SSIM, motion_amplitude, Gaussians, steps and seconds per run.

    python benchmarks/reconstruct.py /work/shared/data/multiview/riggedfigure [DATA...] [--minutes 2]
        [--models rotor4d,deform] [--samplers sliding,uniform] [--preset default] [--downscale N]
        [--runs /tmp/bench4d] [--json benchmarks/results/reconstruct.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _runner import run_motion4d, write_json


def run_one(data: str, out: Path, model: str, sampler: str, args) -> dict:
    cmd = [
        "reconstruct", data, "--out", str(out), "--model", model,
        "--sampler", sampler, "--preset", args.preset, "--iters", str(args.iters),
        "--time-budget", str(60.0 * args.minutes), "--seed", str(args.seed), "--no-progress", "--video-frames", "0",
    ]  # fmt: skip
    if args.downscale:
        cmd += ["--downscale", str(args.downscale)]
    return run_motion4d(cmd, out, ("psnr", "ssim", "motion_amplitude", "n_gaussians", "iters", "seconds"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", help="dynamic dataset folders")
    ap.add_argument("--minutes", type=float, default=2.0, help="training time budget per run (default 2)")
    ap.add_argument("--models", default="rotor4d,deform")
    ap.add_argument("--samplers", default="sliding,uniform")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--iters", type=int, default=100_000, help="step cap (the budget normally ends a run first)")
    ap.add_argument("--downscale", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="/tmp/motion4d-bench-reconstruct", help="folder for the run folders")
    ap.add_argument("--json", default="benchmarks/results/reconstruct.json", help="where to write the results")
    args = ap.parse_args()

    rows = []
    header = f"{'data':<22} {'model':<8} {'sampler':<8} {'PSNR':>6} {'SSIM':>6} {'motion':>7} {'N':>7} {'steps':>6} {'s':>6}"
    print(header)
    print("-" * len(header))
    for data in args.data:
        name = Path(data).name
        for model in args.models.split(","):
            for sampler in args.samplers.split(","):
                out = Path(args.runs) / f"{name}-{model}-{sampler}"
                r = {"data": data, "model": model, "sampler": sampler, **run_one(data, out, model, sampler, args)}
                rows.append(r)
                if "error" in r:
                    print(f"{name:<22} {model:<8} {sampler:<8} error: {r['error']}", flush=True)
                else:
                    print(f"{name:<22} {model:<8} {sampler:<8} {r['psnr']:6.2f} {r['ssim']:6.3f} {r['motion_amplitude']:7.3f} "
                          f"{r['n_gaussians']:7d} {r['iters']:6d} {r['seconds']:6.0f}", flush=True)  # fmt: skip
    write_json(args.json, {"minutes": args.minutes, "preset": args.preset, "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
