"""What the silhouettes alone can tell: the visual hull's surface chamfer to the truth, frame by frame.

``benchmarks/animate.py`` scores an export by its symmetric surface chamfer to the asset's true animation.
Part of a true shape can be invisible to every silhouette: a concavity (a dimple, the pocket between two
arms) lies inside the visual hull, the largest shape whose outline matches every training mask. This
oracle carves that hull from the dataset's own training masks (alpha > 0.5, the masks the animate fit's
silhouette term uses) at each keyframe and scores it against the truth with the same chamfer. A fit that
matched every mask exactly and filled what no mask shows scores about this; doing better needs the
shading (for untextured surfaces, the only cue inside the outline).

Carving is coarse-to-fine in a narrow band: a grid of ``--grid`` cells over the frame's bounding box
(padded), then each cell on the hull's boundary split 2×2×2, ``--levels`` times, so the hull's surface is
found to within one finest cell (reported as ``cell_pct``; the boundary points are the centres of the
finest inside cells with an outside neighbour, so the hull reads up to a cell small). A convex shape's hull
is the shape itself up to the views' polygonal outline, so ``hull`` at a convex rest pose is what the
carving's resolution and the 20 views cost.

    python benchmarks/hull_oracle.py /work/shared/data [--assets animatedmorphsphere] [--characters DIR]
        [--frames 0,9] [--grid 128] [--levels 2] [--json benchmarks/results/hull_oracle.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _runner import write_json
from animate import GLTF_NAMES, split_characters, true_animation

_NEIGHBOURS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)


class Masks:
    """The training masks of one keyframe and a test whether world points project inside all of them."""

    def __init__(self, viewmats: np.ndarray, Ks: np.ndarray, masks: np.ndarray):
        self.viewmats, self.Ks, self.masks = viewmats, Ks, masks

    def inside(self, points: np.ndarray, chunk: int = 1_000_000) -> np.ndarray:
        """[N] bool: the points that project into every mask's foreground (outside an image counts as outside)."""
        result = np.ones(len(points), dtype=bool)
        for s in range(0, len(points), chunk):
            p = points[s : s + chunk]
            keep = np.ones(len(p), dtype=bool)
            for vm, K, m in zip(self.viewmats, self.Ks, self.masks):
                idx = np.nonzero(keep)[0]
                if idx.size == 0:
                    break
                cam = p[idx] @ vm[:3, :3].T + vm[:3, 3]
                z = cam[:, 2]
                uv = (cam @ K.T)[:, :2] / np.where(z > 0, z, 1.0)[:, None]
                i, j = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
                ok = (z > 0) & (i >= 0) & (i < m.shape[1]) & (j >= 0) & (j < m.shape[0])
                hit = np.zeros(len(idx), dtype=bool)
                hit[ok] = m[j[ok], i[ok]]
                keep[idx[~hit]] = False
            result[s : s + chunk] = keep
        return result


def hull_surface(masks: Masks, lo: np.ndarray, hi: np.ndarray, grid: int, levels: int) -> tuple[np.ndarray, float]:
    """Points on the visual hull's surface (``[P,3]``, the centres of the finest inside cells with an outside
    neighbour) and the finest cell's size, carving the box ``lo``–``hi`` coarse to fine (see the module)."""
    h = float((hi - lo).max()) / grid
    axes = [np.arange(lo[k] + h / 2, hi[k], h) for k in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    occ = masks.inside(centres.reshape(-1, 3)).reshape(centres.shape[:3])
    pad = np.pad(occ, 1, constant_values=False)
    differs = np.zeros_like(occ)
    for d in _NEIGHBOURS.astype(int):
        shifted = pad[1 + d[0] : 1 + d[0] + occ.shape[0], 1 + d[1] : 1 + d[1] + occ.shape[1], 1 + d[2] : 1 + d[2] + occ.shape[2]]
        differs |= shifted != occ
    band = centres[differs]  # cells the surface passes through or next to
    children = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], dtype=np.float64)

    def classify(cells: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
        """Whether each cell centre is inside, and whether each of its 6 neighbours ``size`` away is."""
        return masks.inside(cells), masks.inside((cells[:, None, :] + _NEIGHBOURS[None] * size).reshape(-1, 3)).reshape(-1, 6)

    if levels == 0:
        inside, neighbour_in = classify(band, h)
    for _ in range(levels):
        h /= 2
        band = (band[:, None, :] + children[None] * (h / 2)).reshape(-1, 3)
        inside, neighbour_in = classify(band, h)
        keep = (inside[:, None] != neighbour_in).any(axis=1)
        band, inside, neighbour_in = band[keep], inside[keep], neighbour_in[keep]
    return band[inside & ~neighbour_in.all(axis=1)], h


def frame_masks(train, rows: np.ndarray) -> Masks:
    return Masks(train.viewmats[rows].double().numpy(), train.Ks[rows].double().numpy(), train.alphas[rows, ..., 0].numpy() > 0.5)


def measure(asset: Path, driving: Path, frames: list[int] | None, grid: int, levels: int) -> dict:
    """The hull's chamfer to the truth per keyframe, and not moving's, in % of the gt diagonal."""
    import trimesh
    from scipy.spatial import cKDTree

    from motion4d.data.gltf import load_gltf
    from motion4d.data.transforms import load_transforms, read_asset_to_world
    from motion4d.metrics.geometry import bbox_diagonal, surface_chamfer

    src = load_gltf(asset)
    a2w = read_asset_to_world(driving)
    a2w = np.eye(4) if a2w is None else a2w
    gt = np.load(driving / "gt_vertices.npz")
    times, gv = gt["times"].astype(np.float64), gt["vertices"].astype(np.float64)
    diag = bbox_diagonal(gv)
    truth = true_animation(src, a2w, gt) @ a2w[:3, :3].T + a2w[:3, 3]  # world, as the masks
    train = load_transforms(driving, "train")
    row_times = train.times.double().numpy()
    frames = list(range(len(times))) if frames is None else frames
    rest_pose = src.mesh.vertices.astype(np.float64) @ a2w[:3, :3].T + a2w[:3, 3]
    hull, rest, cell = [], [], []
    for f in frames:
        rows = np.nonzero(np.abs(row_times - times[f]) < 1e-6)[0]
        if rows.size == 0:
            raise SystemExit(f"{driving}: no training image at the time of keyframe {f}")
        pad = 0.05 * diag
        points, h = hull_surface(frame_masks(train, rows), truth[f].min(0) - pad, truth[f].max(0) + pad, grid, levels)
        samples, _ = trimesh.sample.sample_surface(trimesh.Trimesh(truth[f], src.mesh.faces, process=False), 100_000, seed=f)
        to_hull = cKDTree(points).query(samples)[0].mean()
        to_truth = cKDTree(samples).query(points)[0].mean()
        hull.append(100 * 0.5 * (to_hull + to_truth) / diag)
        rest.append(100 * surface_chamfer(rest_pose, src.mesh.faces, truth[f], src.mesh.faces, seed=f) / diag)
        cell.append(100 * h / diag)
    return {"frames": frames, "hull_frames_pct": [round(x, 4) for x in hull], "hull_pct": float(np.mean(hull)), "hull_worst_pct": float(np.max(hull)),
            "rest_frames_pct": [round(x, 4) for x in rest], "chamfer_rest_pct": float(np.mean(rest)), "cell_pct": float(np.mean(cell))}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="data root holding gltf/ and multiview/ (e.g. /work/shared/data)")
    ap.add_argument("--assets", default="riggedfigure,cesiummilktruck,animatedmorphsphere")
    ap.add_argument("--characters", default=None, help="a 'motion4d dataset characters' folder: add its held-out datasets")
    ap.add_argument("--character-split", default="held_out", choices=("held_out", "tuning"))
    ap.add_argument("--frames", default=None, help="comma-separated keyframes (default: all)")
    ap.add_argument("--grid", type=int, default=128, help="coarse grid cells along the longest side (default 128)")
    ap.add_argument("--levels", type=int, default=2, help="times the boundary cells are split 2×2×2 (default 2)")
    ap.add_argument("--json", default="benchmarks/results/hull_oracle.json")
    args = ap.parse_args()
    if args.grid < 8 or args.levels < 0:
        print("--grid must be at least 8 and --levels at least 0", file=sys.stderr)
        return 2
    root = Path(args.root)
    jobs = [(root / "gltf" / f"{GLTF_NAMES.get(n, n)}.glb", root / "multiview" / n, n) for n in args.assets.split(",") if n]
    if args.characters:
        c = Path(args.characters)
        jobs += [(c / "gltf" / f"{n}.glb", c / "multiview" / n, n) for n in split_characters(c, args.character_split)]
    frames = None if args.frames is None else [int(x) for x in args.frames.split(",")]
    for asset, driving, name in jobs:
        for p in (asset, driving / "gt_vertices.npz", driving / "transforms_train.json"):
            if not p.exists():
                print(f"{p}: no such file", file=sys.stderr)
                return 2
    header = f"{'asset':<22} {'hull %':>7} {'worst':>6} {'rest %':>7} {'⅓ rest':>7} {'hull/rest':>9} {'cell %':>6} {'s':>5}"
    print(header)
    print("-" * len(header))
    rows = []
    for asset, driving, name in jobs:
        start = time.perf_counter()
        r = {"asset": name, **measure(asset, driving, frames, args.grid, args.levels), "seconds": 0.0}
        r["seconds"] = time.perf_counter() - start
        rows.append(r)
        write_json(args.json, {"grid": args.grid, "levels": args.levels, "runs": rows})
        ratio = r["hull_pct"] / r["chamfer_rest_pct"] if r["chamfer_rest_pct"] > 0 else float("nan")
        print(f"{name:<22} {r['hull_pct']:7.3f} {r['hull_worst_pct']:6.2f} {r['chamfer_rest_pct']:7.3f} {r['chamfer_rest_pct'] / 3:7.3f} {ratio:9.2f} "
              f"{r['cell_pct']:6.3f} {r['seconds']:5.0f}", flush=True)  # fmt: skip
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
