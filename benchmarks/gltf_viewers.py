"""Do viewers play our glTF files as we do? The Khronos glTF validator and three.js, beside motion4d's evaluator.

For each GLB (files, or animate run folders whose ``animation.glb`` is taken) it runs

- the Khronos glTF validator (``gltf-validator`` from npm): errors and warnings against the specification;
- three.js (``GLTFLoader`` + ``AnimationMixer`` in Node, playing together the animations motion4d plays by
  default — all of them unless some drive what an earlier one drives): every vertex as three.js renders it
  (morph targets, then skinning) at ``--times`` times spread over the animation;
- with ``--blender-python PY`` (a Python that has ``pip install bpy``), Blender: its glTF importer, the
  scene played at its frame rate, every visible mesh's evaluated vertices (``viewers/blender_play.py``);
- motion4d's own evaluator (:func:`motion4d.data.gltf.load_gltf` ``.vertices_at``) at the same times,

and prints the largest and mean distance between three.js's (and Blender's) vertices and ours (each three.js vertex matched
to the one of ours whose whole trajectory is nearest, since vertices can coincide at some times and part
later, and three.js repeats shared vertices once per primitive), in % of the animation's bounding-box
diagonal. Node.js and npm must be on the PATH; the first run installs the pinned
packages of ``benchmarks/viewers/package.json`` into ``benchmarks/viewers/node_modules``.

    python benchmarks/gltf_viewers.py FILE.glb|RUN ... [--times 9] [--blender-python PY] [--json benchmarks/results/gltf_viewers.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from _runner import write_json

VIEWERS = Path(__file__).resolve().parent / "viewers"


def ensure_packages() -> None:
    """Install the pinned npm packages once."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("error: node and npm must be on the PATH")
    if not (VIEWERS / "node_modules" / "three").is_dir() or not (VIEWERS / "node_modules" / "gltf-validator").is_dir():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund"], cwd=VIEWERS, check=True)


def node_json(script: str, *args: str) -> dict:
    p = subprocess.run(["node", str(VIEWERS / script), *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{script} {args[0]}: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(p.stdout)


def blender_vertices(python: str, path: Path, times: np.ndarray) -> np.ndarray:
    """[T,V,3] Blender's vertices of ``path`` at ``times`` (via ``viewers/blender_play.py`` under ``python``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "blender.npz"
        p = subprocess.run([python, str(VIEWERS / "blender_play.py"), str(path), str(out), *[f"{t:.9g}" for t in times]], capture_output=True, text=True)
        if p.returncode != 0 or not out.is_file():
            raise RuntimeError(f"blender {path}: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
        return np.load(out)["vertices"].astype(np.float64)


def check(path: Path, n_times: int, blender_python: str | None = None) -> dict:
    from motion4d.data.gltf import load_gltf
    from motion4d.metrics.geometry import trajectory_deviation

    report = node_json("validate.mjs", str(path))
    ours_asset = load_gltf(path)
    duration = float(ours_asset.duration)
    times = np.linspace(0.0, duration, n_times) if duration > 0 else np.zeros(1)
    playing = ",".join(str(a) for a in ours_asset.default_animations)
    three = node_json("play.mjs", str(path), playing, *[f"{t:.9g}" for t in times])
    tv = np.asarray(three["vertices"], dtype=np.float64)  # [T,V',3]
    ours = ours_asset.vertices_at(times).astype(np.float64)  # [T,V,3]
    all_pts = ours.reshape(-1, 3)
    diag = float(np.linalg.norm(all_pts.max(0) - all_pts.min(0))) or 1.0
    dev = trajectory_deviation(tv, ours)
    blender = {}
    if blender_python:
        bdev = trajectory_deviation(blender_vertices(blender_python, path, times), ours)
        blender = {"blender_max_dev_pct": 100 * float(bdev.max()) / diag, "blender_mean_dev_pct": 100 * float(bdev.mean()) / diag}
    return {**blender,
        "file": str(path), "validator_errors": report["errors"], "validator_warnings": report["warnings"],
        "validator_messages": report["messages"][:10], "animations": ours_asset.default_animations,
        "n_animations": ours_asset.num_animations, "three_duration_s": three["duration"], "duration_s": duration,
        "vertices_three": int(tv.shape[1]), "vertices_ours": int(ours.shape[1]),
        "max_dev_pct": 100 * float(dev.max()) / diag, "mean_dev_pct": 100 * float(dev.mean()) / diag,
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="GLB files or animate run folders (their animation.glb)")
    ap.add_argument("--times", type=int, default=9, help="times spread over each animation (default 9)")
    ap.add_argument("--blender-python", help="a Python with bpy installed: also play each file in Blender")
    ap.add_argument("--json", default="benchmarks/results/gltf_viewers.json", help="where to write the results")
    args = ap.parse_args()
    ensure_packages()
    header = f"{'file':<46} {'errors':>6} {'warn.':>5} {'duration s':>10} {'three.js s':>10} {'max dev %':>9} {'mean dev %':>10}"
    if args.blender_python:
        header += f" {'Blender max %':>13} {'mean %':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    for p in args.paths:
        path = Path(p) / "animation.glb" if Path(p).is_dir() else Path(p)
        name = f"{path.parent.name}/{path.name}"[-46:]
        try:
            r = check(path, args.times, args.blender_python)
        except (RuntimeError, OSError, ValueError) as e:
            print(f"{name:<46} error: {e}", flush=True)
            rows.append({"file": str(path), "error": str(e)})
            continue
        rows.append(r)
        line = (f"{name:<46} {r['validator_errors']:6d} {r['validator_warnings']:5d} {r['duration_s']:10.3f} {r['three_duration_s']:10.3f} "
                f"{r['max_dev_pct']:9.4f} {r['mean_dev_pct']:10.5f}")  # fmt: skip
        if "blender_max_dev_pct" in r:
            line += f" {r['blender_max_dev_pct']:13.4f} {r['blender_mean_dev_pct']:8.5f}"
        print(line, flush=True)
        for m in r["validator_messages"]:
            print(f"    {m}")
    write_json(args.json, {"times": args.times, "files": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
