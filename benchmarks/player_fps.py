"""The web player's frame rate while it plays: N random 4D-Rotor Gaussians, exported as ``--format html``,
opened from disk in headless Chromium, playing for a few seconds (issue 13: interactive rates for ~100k
Gaussians, the depth sort not blocking the frame).

    python benchmarks/player_fps.py [--gaussians 100000 20000] [--size 800x600] [--seconds 5] [--gpu]
        [--chromium /usr/bin/chromium] [--json RESULTS/player_fps.json]

For each N it prints the median and 90th-percentile interval between drawn frames (requestAnimationFrame,
each frame drawn because time moves), the frames per second, where the sort ran (a worker, or the main
thread where workers cannot start) and the median time of one sort. When the sort runs in a worker and takes
longer than a frame, frames still come at the frame interval, each with the latest order the worker has
finished: that is what "not blocking" means here.

Without ``--gpu`` Chromium draws with SwiftShader, WebGL on the CPU (``--use-angle=swiftshader``): that is
what this project's 2-core machine has, and it is far slower than any laptop GPU, so its numbers are a floor,
not the laptop figure. ``--gpu`` leaves Chromium's own GPU choice (run it where there is a display GPU).
Needs ``chromium`` and the web player's npm packages (``cd src/motion4d/export/web && npm ci``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from _runner import write_json

from motion4d.export.m4d import ModelInfo, save_m4d
from motion4d.gaussians.rotor4d import Gaussians4DRotor
from motion4d.render.cameras import orbit_viewmats, viewmat_to_opengl_c2w

WEB = Path(__file__).resolve().parents[1] / "src" / "motion4d" / "export" / "web"

PAGE_SCRIPT = r"""
import { createRequire } from "module";
const require = createRequire(process.argv[2] + "/package.json");
const { chromium } = require("playwright-core");
const [, , , exe, file, query, seconds, gpu] = process.argv;
const args = gpu === "1" ? ["--no-sandbox", "--enable-gpu"] : ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"];
const browser = await chromium.launch({ executablePath: exe, args });
const page = await browser.newPage();
const errors = [];
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("pageerror", (e) => errors.push(String(e)));
await page.goto("file://" + file + "?" + query);
await page.waitForFunction(() => window.motion4dReady === true, null, { timeout: 300000 });
const out = await page.evaluate((ms) => new Promise((resolve) => {
  const stamps = [], sorts = [];
  const start = performance.now();
  function tick(now) {
    stamps.push(now);
    const s = window.motion4d.stats();
    sorts.push(s.sortMs);
    if (now - start < ms) requestAnimationFrame(tick);
    else resolve({ stamps, sorts, stats: s, t: window.motion4d.state.t });
  }
  requestAnimationFrame(tick);
}), Number(seconds) * 1000);
out.errors = errors;
console.log(JSON.stringify(out));
await browser.close();
"""


def make_page(folder: Path, n: int, width: int, height: int) -> Path:
    """An exported player page of ``n`` random moving 4D-Rotor Gaussians, with one test camera."""
    data = folder / "data"
    (data / "test").mkdir(parents=True, exist_ok=True)
    iio.imwrite(data / "test" / "v0.png", np.full((height, width, 3), 255, np.uint8))
    c2w = viewmat_to_opengl_c2w(orbit_viewmats(1, 2.6, elevation_deg=20.0)[0].double())
    frame = {"file_path": "./test/v0", "time": 0.0, "view": 0, "transform_matrix": c2w.tolist()}
    (data / "transforms_test.json").write_text(json.dumps({"camera_angle_x": math.radians(45.0), "frames": [frame]}))
    model = Gaussians4DRotor.random(n, radius=0.6, t_range=(0.0, 1.0), sh_degree=0, seed=0, init_opacity=0.6)
    with torch.no_grad():
        model.params["log_scales"][:, :3] = math.log(0.6 / n ** (1 / 3))  # about touching, as a fit's are
        model.params["log_scales"][:, 3] = math.log(0.5)
        model.params["rotors"].add_(0.3 * torch.randn(model.params["rotors"].shape, generator=torch.Generator().manual_seed(1)))
    m4d = save_m4d(model, folder / f"random_{n}.m4d", ModelInfo("rotor4d", (0.0, 1.0), {"data_root": str(data), "background": [1.0, 1.0, 1.0]}))
    html = folder / f"random_{n}.html"
    p = subprocess.run([sys.executable, "-m", "motion4d", "-q", "export", str(m4d), "--format", "html", "--out", str(html)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"export failed: {p.stderr.strip().splitlines()[-1:]}")
    return html


def measure(html: Path, script: Path, args, width: int, height: int) -> dict:
    query = f"play=1&view=0&w={width}&h={height}"
    p = subprocess.run(["node", str(script), str(WEB), args.chromium, str(html), query, str(args.seconds), "1" if args.gpu else "0"],
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    if p.returncode != 0:
        lines = [line for line in p.stderr.strip().splitlines() if line.strip() and not line.startswith("Node.js")]
        raise RuntimeError(f"chromium: {' / '.join(lines[-3:]) or '?'}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    gaps = np.diff(np.array(r["stamps"]))
    sorts = [s for s in r["sorts"] if s is not None]
    return {"frames": len(gaps), "frame_ms_median": float(np.median(gaps)), "frame_ms_p90": float(np.percentile(gaps, 90)),
            "fps": 1000.0 / float(np.median(gaps)), "sorter": r["stats"].get("sorter"), "sort_ms_median": statistics.median(sorts) if sorts else None,
            "drawn": r["stats"].get("drawn"), "console_errors": r["errors"]}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaussians", type=int, nargs="+", default=[100_000, 20_000])
    ap.add_argument("--size", default="800x600", help="canvas W x H in pixels")
    ap.add_argument("--seconds", type=float, default=5.0, help="how long each page plays while measured")
    ap.add_argument("--gpu", action="store_true", help="let Chromium use the GPU (default: SwiftShader, WebGL on the CPU)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--json", default=None, help="where to write the results")
    args = ap.parse_args()
    width, height = (int(x) for x in args.size.lower().split("x"))
    if not Path(args.chromium).is_file() or not (WEB / "node_modules" / "playwright-core").is_dir():
        print(f"error: needs {args.chromium} and {WEB}/node_modules (npm ci there)", file=sys.stderr)
        return 2
    rows = []
    print(f"{'gaussians':>10} {'frame ms':>9} {'p90 ms':>7} {'fps':>6} {'sorter':>12} {'sort ms':>8} {'drawn':>8}  ({args.size}, {'GPU' if args.gpu else 'SwiftShader'})")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "measure.mjs"
        script.write_text(PAGE_SCRIPT)
        for n in args.gaussians:
            r = {"gaussians": n, **measure(make_page(Path(tmp), n, width, height), script, args, width, height)}
            rows.append(r)
            sort = "n/a" if r["sort_ms_median"] is None else f"{r['sort_ms_median']:.0f}"
            print(f"{n:>10} {r['frame_ms_median']:9.1f} {r['frame_ms_p90']:7.1f} {r['fps']:6.1f} {r['sorter']:>12} {sort:>8} {r['drawn']:>8}"
                  + (f"  console errors: {len(r['console_errors'])}" if r["console_errors"] else ""), flush=True)  # fmt: skip
    if args.json:
        write_json(args.json, {"size": args.size, "gpu": args.gpu, "seconds": args.seconds, "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
