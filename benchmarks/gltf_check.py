"""Check the glTF animation evaluator against Blender: evaluate each animated asset at the dataset's frame
times (t × duration), map it with ``asset_to_world`` and compare with the dataset's ``gt_vertices.npz``.

Distances are nearest-neighbour (Blender may split/merge vertices and add geometry), in % of the ground
truth's bounding-box diagonal: ``ours→gt`` (every evaluated vertex to the closest Blender vertex) and
``gt→ours``. ``rest→gt`` is the same for the un-animated rest pose: the error of doing nothing.

    python benchmarks/gltf_check.py /work/shared/data [--json benchmarks/results/gltf_check.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from motion4d.data.gltf import load_gltf
from motion4d.data.transforms import read_asset_to_world

ASSETS = {"riggedfigure": "RiggedFigure", "cesiummilktruck": "CesiumMilkTruck", "animatedmorphsphere": "AnimatedMorphSphere"}


def nn_pct(a: np.ndarray, b: np.ndarray, diag: float) -> tuple[float, float]:
    """Mean nearest-neighbour distance a→b and b→a, in % of ``diag``."""
    d = torch.cdist(torch.from_numpy(a).double(), torch.from_numpy(b).double())
    return 100 * float(d.min(1).values.mean()) / diag, 100 * float(d.min(0).values.mean()) / diag


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="data root holding gltf/ and multiview/")
    ap.add_argument("--json", default="benchmarks/results/gltf_check.json")
    args = ap.parse_args()
    root = Path(args.root)
    print(f"{'asset':<22} {'V ours':>7} {'V gt':>6} {'ours→gt %':>10} {'max %':>7} {'gt→ours %':>10} {'rest→gt %':>10} {'s':>5}")
    rows = []
    for name, stem in ASSETS.items():
        t0 = time.perf_counter()
        asset = load_gltf(root / "gltf" / f"{stem}.glb")
        a2w = read_asset_to_world(root / "multiview" / name)
        gt = np.load(root / "multiview" / name / "gt_vertices.npz")
        gv, times = gt["vertices"].astype(np.float64), gt["times"].astype(np.float64)
        diag = float(np.linalg.norm(gv.reshape(-1, 3).max(0) - gv.reshape(-1, 3).min(0)))
        ours = asset.vertices_at(times * asset.duration).astype(np.float64) @ a2w[:3, :3].T + a2w[:3, 3]
        rest = asset.mesh.vertices.astype(np.float64) @ a2w[:3, :3].T + a2w[:3, 3]
        fwd, bwd, still = zip(*[(*nn_pct(o, g, diag), nn_pct(rest, g, diag)[0]) for o, g in zip(ours, gv)])
        row = {"asset": name, "vertices": asset.mesh.num_vertices, "gt_vertices": gv.shape[1], "ours_to_gt_pct": float(np.mean(fwd)),
               "ours_to_gt_max_pct": float(np.max(fwd)), "gt_to_ours_pct": float(np.mean(bwd)), "rest_to_gt_pct": float(np.mean(still)),
               "duration_s": asset.duration, "seconds": time.perf_counter() - t0}  # fmt: skip
        rows.append(row)
        print(f"{name:<22} {row['vertices']:7d} {row['gt_vertices']:6d} {row['ours_to_gt_pct']:10.4f} {row['ours_to_gt_max_pct']:7.4f} "
              f"{row['gt_to_ours_pct']:10.3f} {row['rest_to_gt_pct']:10.3f} {row['seconds']:5.1f}")  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
