"""Check the glTF animation evaluator against Blender: evaluate each animated asset at the dataset's frame
times, map it with ``asset_to_world`` and compare with the dataset's ``gt_vertices.npz``.

Distances are in % of the ground truth's bounding-box diagonal:

- ``nn mean / nn max``: symmetric nearest-neighbour distance (every evaluated vertex to the closest Blender
  vertex and every Blender vertex to the closest evaluated one; Blender may split, merge or add vertices);
- ``vertex max``: per-vertex distance where Blender's first V vertices are ours in the same order (checked at
  frame 0), else blank;
- ``stray``: Blender vertices more than 1 % of the diagonal from every evaluated vertex in every frame
  (another object in Blender's scene), left out of the nearest-neighbour numbers;
- ``rest nn``: the un-animated rest pose against every frame (the error of doing nothing).

Each asset is evaluated three ways: all animations together at ``t × duration`` seconds (the natural reading
of ``time`` in [0,1]); all animations at Blender's frame times (``frames / 24`` from the npz: Blender's
timeline ends at the whole frame ``floor(24 · duration)``); only the file's first animation at Blender's frame
times (Blender's importer makes only one glTF animation the active action).

    python benchmarks/gltf_check.py /work/shared/data [--json benchmarks/results/gltf_check.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from motion4d.atomic import atomic_path
from motion4d.data.gltf import load_gltf
from motion4d.data.transforms import read_asset_to_world
from motion4d.metrics.geometry import bbox_diagonal, nearest_distances

log = logging.getLogger("gltf_check")

ASSETS = {"riggedfigure": "RiggedFigure", "cesiummilktruck": "CesiumMilkTruck", "animatedmorphsphere": "AnimatedMorphSphere"}
BLENDER_FPS = 24.0
STRAY = 0.01
"""Blender vertices farther than this fraction of the diagonal from every evaluated vertex in every frame are
counted as ``stray`` (not part of the asset) and left out of the nearest-neighbour statistics."""


def to_world(points: np.ndarray, asset_to_world: np.ndarray) -> np.ndarray:
    """``points [...,3]`` mapped by the 4×4 ``asset_to_world`` (float64)."""
    return points.astype(np.float64) @ asset_to_world[:3, :3].T + asset_to_world[:3, 3]


def compare(ours: np.ndarray, gt: np.ndarray, rest: np.ndarray, diag: float) -> dict:
    """Distances (% of ``diag``) between ``ours [T,V,3]`` and ``gt [T,V',3]``; ``rest [V,3]`` as a baseline."""
    fwd, bwd, rest_nn = [], [], []
    for o, g in zip(ours, gt):
        fwd.append(nearest_distances(o, g))
        bwd.append(nearest_distances(g, o))
        rest_nn.append(np.concatenate([nearest_distances(rest, g), nearest_distances(g, rest)]).mean())
    fwd, bwd = np.stack(fwd), np.stack(bwd)
    stray = (bwd > STRAY * diag).all(0)  # Blender vertices far from the asset in every frame: another object
    sym = np.concatenate([fwd, bwd[:, ~stray]], axis=1)
    v = ours.shape[1]
    same_order = gt.shape[1] >= v and np.abs(gt[0, :v] - ours[0]).max() < 1e-4 * diag
    row = {"stray_gt_vertices": int(stray.sum()), "nn_mean_pct": 100 * float(sym.mean()) / diag, "nn_max_pct": 100 * float(sym.max()) / diag,
           "rest_nn_mean_pct": 100 * float(np.mean(rest_nn)) / diag}  # fmt: skip
    if same_order:
        err = np.linalg.norm(ours - gt[:, :v], axis=-1)
        row.update(vertex_mean_pct=100 * float(err.mean()) / diag, vertex_max_pct=100 * float(err.max()) / diag)
    return row


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="data root holding gltf/ and multiview/ (e.g. /work/shared/data)")
    ap.add_argument("--json", default="benchmarks/results/gltf_check.json")
    args = ap.parse_args()
    root = Path(args.root)
    head = f"{'asset':<20} {'variant':<26} {'V':>5} {'V gt':>5} {'dur s':>6} {'nn mean %':>10} {'nn max %':>9} {'vertex max %':>12} {'stray':>5} {'rest nn %':>9}"
    log.info(head)
    rows = []
    for name, stem in ASSETS.items():
        asset = load_gltf(root / "gltf" / f"{stem}.glb")
        a2w = read_asset_to_world(root / "multiview" / name)
        npz = np.load(root / "multiview" / name / "gt_vertices.npz")
        gt, t01 = npz["vertices"].astype(np.float64), npz["times"].astype(np.float64)
        frames_s = npz["frames"] / BLENDER_FPS if "frames" in npz else t01 * asset.duration
        diag = bbox_diagonal(gt)
        rest = to_world(asset.mesh.vertices, a2w)
        variants = {"all anims, t x duration": (t01 * asset.duration, None), "all anims, Blender frames": (frames_s, None),
                    "first anim, Blender frames": (frames_s, [0])}  # fmt: skip
        for variant, (seconds, animations) in variants.items():
            ours = to_world(asset.vertices_at(seconds, animations=animations), a2w)
            row = {"asset": name, "variant": variant, "vertices": asset.mesh.num_vertices, "gt_vertices": gt.shape[1],
                   "duration_s": asset.duration, "num_animations": asset.num_animations,
                   "seconds_last_frame": float(seconds[-1]), **compare(ours, gt, rest, diag)}  # fmt: skip
            rows.append(row)
            vertex = f"{row['vertex_max_pct']:12.5f}" if "vertex_max_pct" in row else f"{'-':>12}"
            log.info(f"{name:<20} {variant:<26} {row['vertices']:5d} {row['gt_vertices']:5d} {asset.duration:6.3f} "
                     f"{row['nn_mean_pct']:10.5f} {row['nn_max_pct']:9.4f} {vertex} {row['stray_gt_vertices']:5d} {row['rest_nn_mean_pct']:9.3f}")  # fmt: skip
    with atomic_path(args.json) as tmp:
        Path(tmp).write_text(json.dumps({"fps": BLENDER_FPS, "runs": rows}, indent=2) + "\n")
    log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
