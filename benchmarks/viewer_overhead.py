"""What ``--viewer`` costs a fit: seconds per step with and without the live viewer, in one run.

    python benchmarks/viewer_overhead.py --out RESULTS [--iters 300] [--repeats 3] [--rate 2]

Fits the built-in moving demo scene (reconstruct, "demo" preset cut to ``--iters`` steps, no video) with
and without a :class:`~motion4d.pipelines.live_viewer.LiveViewer` (updates at ``--rate`` Hz), alternating
the order over ``--repeats`` rounds; prints the median seconds per step of each and their ratio (target:
≤ 1.10) and the share of the fit's time spent inside the viewer's updates (the direct measure, which a busy
machine's noise does not blur), and writes ``RESULTS/viewer_overhead.json``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path

from _runner import write_json

from motion4d.data.synthetic import make_dynamic_demo_scene
from motion4d.optim.observers import observing
from motion4d.optim.trainer4d import preset
from motion4d.pipelines.live_viewer import LiveViewer
from motion4d.pipelines.reconstruct import reconstruct


def fit(data: Path, out: Path, iters: int, viewer: LiveViewer | None) -> float:
    config = preset("demo", iters=iters, time_budget_s=None, progress=False, ckpt_every=0)
    if viewer is None:
        report = reconstruct(data, out, config, video_frames=0)
    else:
        with observing(viewer):
            report = reconstruct(data, out, config, video_frames=0)
    return report.seconds / report.iters


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate", type=float, default=2.0, help="viewer updates per second at most")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dynamic_demo_scene(Path(tmp) / "data")
        rows = {"without": [], "with": []}
        updates, in_viewer = [], []
        for r in range(args.repeats):
            for kind in (("without", "with") if r % 2 == 0 else ("with", "without")):
                if kind == "with":
                    with LiveViewer(max_rate_hz=args.rate) as viewer:
                        rows[kind].append(fit(data, Path(tmp) / f"{kind}{r}", args.iters, viewer))
                    updates.append(viewer.updates)
                    in_viewer.append(viewer.seconds / (rows[kind][-1] * args.iters))
                else:
                    rows[kind].append(fit(data, Path(tmp) / f"{kind}{r}", args.iters, None))
                print(f"round {r} {kind:<8} {1e3 * rows[kind][-1]:7.1f} ms/step", flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    ratio = med["with"] / med["without"]
    print(f"\n{'':<10}{'ms/step (median)':>18}\nwithout   {1e3 * med['without']:18.1f}\nwith      {1e3 * med['with']:18.1f}\nratio     {ratio:18.3f}"
          f"   ({statistics.median(updates):.0f} viewer updates per fit of {args.iters} steps)\n"
          f"time inside the viewer's updates: {100 * statistics.median(in_viewer):.1f} % of the fit (median)")  # fmt: skip
    write_json(args.out / "viewer_overhead.json", {"iters": args.iters, "rate_hz": args.rate, "s_per_step": rows, "median": med, "ratio": ratio,
                                                   "updates": updates, "viewer_time_fraction": in_viewer})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
