"""Animate3D's task on real assets: a static glTF in its rest pose + its multi-view video → animated glTF.

For each asset name it runs ``motion4d animate GLTF_ROOT/<Name>.glb --driving MULTIVIEW_ROOT/<name> --out
RUNS/<name> --time-budget 60·M`` in a subprocess, reads the run's ``report.json`` and measures the exported
``animation.glb`` against the truth, all in % of the ground truth's bounding-box diagonal, mean over vertices
and the 16 frames:

- ``vert.err``: per-vertex distance between the exported animation and the source asset's own animation as
  Blender rendered it (motion4d's glTF evaluator at Blender's frame times, frames / 24 s, with the animation
  subset that matches ``gt_vertices.npz``: Blender plays only CesiumMilkTruck's first animation; then the
  match is within 0.03 %, see ``benchmarks/gltf_check.py``). Vertices correspond exactly: the export keeps
  the asset's mesh, so each exported vertex is matched to the source vertex at the same rest position.
- ``rest``: the same for the un-animated rest pose (the error of not moving at all).
- ``shape``: the same for a shape-only oracle: each rest vertex moved to the nearest point of the true
  surface at each frame (200k area-uniform samples of it). This is what a fit scores that knows the true
  shape at every frame and picks the least motion consistent with it; motion along the surface (a wheel
  spinning, a smooth untextured surface sliding) is invisible to it, as it largely is to images.
- ``chamf.`` and ``c.rest``: the symmetric surface chamfer distance between the exported
  animation and the truth (100k area-uniform samples each; two samplings of the same surface score
  0.06–0.20 % on the three benchmark assets, see ``floor``). It measures the shape alone, so it is the fair measure where motion along the surface is
  invisible (``shape`` ≫ 0). ``floor``: what the true surface scores against itself (two samplings of it
  at each frame), the least any export can score; where ``c.rest`` is near it (an asset that barely
  changes shape), ``≤⅓`` asks for less than the measure can resolve.
- ``nn→gt``: the run's report — each exported vertex to the nearest ``gt_vertices.npz`` vertex; ``nn rest``
  the same for the rest pose. One-sided NN is the measure ``gt_vertices.npz``'s README suggests, but it is
  lenient: it cannot see a vertex sliding along the surface, nor gt geometry nothing was moved onto
  (AnimatedMorphSphere's rest pose scores 1.2 % on it while its per-vertex error is 4.3 %).

It also prints the Gaussians' PSNR on the held-out views, the worst keyframe's silhouette error of the
final fit (the report's ``keyframe_silhouette_errors``), the worst frame's chamfer and the minutes, and
checks issue 14's target per asset: ``≤1%`` (chamfer ≤ 1.0 % of the diagonal), ``≤⅓`` (chamfer ≤ a third
of not moving's) and ``≤10m`` (wall time). Prints a table and writes JSON (with each frame's chamfer,
``chamfer_frames_pct``).

``--characters DIR`` adds the held-out datasets of a folder written by ``motion4d dataset characters``
(its ``characters.json``; seeds ≥ 1000, never used to choose a default) to the assets of ROOT
(``--assets ''``: only those).

    python benchmarks/animate.py /work/shared/data [--assets riggedfigure,cesiummilktruck,animatedmorphsphere]
        [--characters /tmp/characters] [--minutes 10] [--preset default] [--graph-metric geodesic|euclidean]
        [--lambda-arap X] [--lambda-arap-l1 X] [--lambda-silhouette X] [--lambda-rest X] [--lr-offsets X] [--offsets-gate X]
        [--lambda-offset-laplacian X] [--nodes N] [--runs /tmp/bench-animate] [--json benchmarks/results/animate.json] [--resume]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _runner import run_motion4d, write_json

GLTF_NAMES = {"riggedfigure": "RiggedFigure", "cesiummilktruck": "CesiumMilkTruck", "animatedmorphsphere": "AnimatedMorphSphere"}


def true_animation(src, a2w: np.ndarray, gt) -> np.ndarray:
    """[T,V,3] the glTF asset ``src``'s own animation (asset coordinates) at the frames of ``gt`` (a loaded
    ``gt_vertices.npz``), as Blender rendered it: its frames at 24 fps, and possibly only some animations
    (its importer makes one the active action), so the subset whose vertices, mapped by ``a2w``, match
    ``gt``'s best."""
    from motion4d.metrics.geometry import nearest_vertex_error_pct

    times, gv = gt["times"].astype(np.float64), gt["vertices"].astype(np.float64)
    src_times = gt["frames"].astype(np.float64) / 24.0 if "frames" in gt else times * src.duration
    best = None
    for subset in [None] + [[i] for i in range(min(src.num_animations, 4))]:
        truth = src.vertices_at(src_times, animations=subset).astype(np.float64)
        err = nearest_vertex_error_pct(truth @ a2w[:3, :3].T + a2w[:3, 3], gv)
        if best is None or err < best[0] - 1e-9:
            best = (err, truth)
    return best[1]


def _nearest_first(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """[Q] index of the point of ``points [V,3]`` nearest each query, the lowest index among copies at the
    same position (seam copies: as a brute-force argmin picks)."""
    from scipy.spatial import cKDTree

    unique, first = np.unique(np.asarray(points, dtype=np.float64), axis=0, return_index=True)
    return first[cKDTree(unique).query(np.asarray(queries, dtype=np.float64))[1]]


def vertex_errors(asset: Path, run: Path, driving: Path) -> dict[str, float]:
    """Per-vertex error vs the asset's own animation of the exported animation and of the rest pose, and
    the rest pose's one-sided NN error to ``gt_vertices.npz`` (what not moving scores on the report's
    ``vertex_error_pct``), all in % of the gt diagonal."""
    from motion4d.data.gltf import load_gltf
    from motion4d.data.transforms import read_asset_to_world
    from motion4d.metrics.geometry import bbox_diagonal, nearest_vertex_error_pct, per_vertex_error, shape_oracle_error, surface_chamfer

    src, out = load_gltf(asset), load_gltf(run / "animation.glb")
    a2w = read_asset_to_world(driving)
    a2w = np.eye(4) if a2w is None else a2w
    gt = np.load(driving / "gt_vertices.npz")
    times, gv = gt["times"].astype(np.float64), gt["vertices"].astype(np.float64)
    diag = bbox_diagonal(gv)
    scale = abs(np.linalg.det(a2w[:3, :3])) ** (1 / 3)  # asset → world length factor
    truth = true_animation(src, a2w, gt)
    match = _nearest_first(src.mesh.vertices, out.mesh.vertices)
    if np.abs(src.mesh.vertices[match] - out.mesh.vertices).max() > 1e-4 * diag:
        raise RuntimeError(f"{run}: exported rest pose does not match {asset}")
    moved = out.vertices_at(times * out.duration)
    err = per_vertex_error(moved, truth[:, match]) * scale
    rest = per_vertex_error(out.mesh.vertices, truth[:, match]) * scale
    rest_world = out.mesh.vertices @ a2w[:3, :3].T + a2w[:3, 3]
    nn_rest_pct = nearest_vertex_error_pct(np.broadcast_to(rest_world, gv.shape[:1] + rest_world.shape), gv)
    shape = shape_oracle_error(src.mesh.vertices[match].astype(np.float64), src.mesh.faces, truth, match) * scale
    chamfers = np.array([surface_chamfer(m, out.mesh.faces, tr, src.mesh.faces, seed=t) for t, (m, tr) in enumerate(zip(moved, truth))]) * scale
    chamfer = chamfers.mean()
    chamfer_rest = np.mean([surface_chamfer(out.mesh.vertices, out.mesh.faces, tr, src.mesh.faces, seed=t) for t, tr in enumerate(truth)]) * scale
    floor = np.mean([surface_chamfer(tr, src.mesh.faces, tr, src.mesh.faces, seed=t) for t, tr in enumerate(truth)]) * scale
    pct = lambda x: float(100 * x / diag)  # noqa: E731
    return {"per_vertex_error_pct": pct(err), "rest_error_pct": pct(rest), "shape_oracle_pct": pct(shape), "nn_rest_pct": nn_rest_pct,
            "chamfer_pct": pct(chamfer), "chamfer_worst_pct": pct(chamfers.max()), "chamfer_rest_pct": pct(chamfer_rest), "chamfer_floor_pct": pct(floor),
            "chamfer_frames_pct": [round(pct(c), 4) for c in chamfers]}  # fmt: skip


def run_one(root: Path, name: str, out: Path, args) -> dict:
    """Animate ``root/gltf/<Name>.glb`` with ``root/multiview/<name>`` into ``out`` and measure it."""
    asset = root / "gltf" / f"{GLTF_NAMES.get(name, name)}.glb"
    driving = root / "multiview" / name
    cmd = [
        "animate", str(asset), "--driving", str(driving), "--out", str(out),
        "--preset", args.preset, "--time-budget", str(60.0 * args.minutes), "--no-progress", "--video-frames", "0",
    ]  # fmt: skip
    for flag in ("lambda_arap", "lambda_arap_nonrigid", "lambda_arap_l1", "lambda_silhouette", "lambda_rest", "lr_offsets", "offsets_gate",
                 "lambda_offset_laplacian", "lambda_offset_magnitude", "refine_nodes", "nodes", "graph_metric"):  # fmt: skip
        if getattr(args, flag) is not None:
            cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    if args.iters is not None:
        cmd += ["--iters", str(args.iters)]
    for item in args.set:
        key, _, value = item.partition("=")
        cmd += ["--" + key.replace("_", "-"), value]
    keys = ("vertex_error_pct", "psnr", "ssim", "motion_amplitude", "n_gaussians", "n_nodes", "iters", "seconds", "duration_s", "vertex_offsets",
            "silhouette_errors", "keyframe_silhouette_errors")
    r = run_motion4d(cmd, out, keys)
    if "error" in r:
        return r
    r = {**r, **vertex_errors(asset, out, driving)}
    r["target"] = {"chamfer_le_1pct": r["chamfer_pct"] <= 1.0, "chamfer_le_third_of_rest": r["chamfer_pct"] <= r["chamfer_rest_pct"] / 3,
                   "within_10_min": r["wall_s"] <= 600}  # fmt: skip
    return r


def split_characters(folder: Path, split: str = "held_out") -> list[str]:
    """The rendered datasets of ``split`` ("held_out" or "tuning") of a ``motion4d dataset characters`` folder."""
    manifest = json.loads((folder / "characters.json").read_text())
    return [e["name"] for e in manifest["datasets"] if e["split"] == split and (folder / "multiview" / e["name"]).is_dir()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="data root holding gltf/ and multiview/ (e.g. /work/shared/data)")
    ap.add_argument("--assets", default="riggedfigure,cesiummilktruck,animatedmorphsphere")
    ap.add_argument("--minutes", type=float, default=10.0, help="training time budget per asset (default 10)")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--iters", type=int, default=None, help="step count (default: the preset's)")
    ap.add_argument("--lambda-arap", type=float, default=None)
    ap.add_argument("--lambda-arap-nonrigid", type=float, default=None)
    ap.add_argument("--lambda-offset-magnitude", type=float, default=None)
    ap.add_argument("--refine-nodes", type=int, default=None)
    ap.add_argument("--lambda-arap-l1", type=float, default=None)
    ap.add_argument("--lambda-silhouette", type=float, default=None)
    ap.add_argument("--lambda-rest", type=float, default=None)
    ap.add_argument("--lr-offsets", type=float, default=None)
    ap.add_argument("--offsets-gate", type=float, default=None)
    ap.add_argument("--lambda-offset-laplacian", type=float, default=None)
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--graph-metric", choices=("geodesic", "euclidean"), default=None)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="any other animate setting (repeatable), e.g. lambda_mask=0.2")
    ap.add_argument("--characters", default=None, help="a 'motion4d dataset characters' folder: add its held-out datasets")
    ap.add_argument("--character-split", default="held_out", choices=("held_out", "tuning"), help="which of its datasets (tuning: for choosing defaults)")
    ap.add_argument("--only", default=None, help="comma-separated character datasets to keep (default: all of the split)")
    ap.add_argument("--runs", default="/tmp/motion4d-bench-animate", help="folder for the run folders")
    ap.add_argument("--json", default="benchmarks/results/animate.json", help="where to write the results (after every asset)")
    ap.add_argument("--resume", action="store_true", help="keep the rows of --json measured with the same settings (a stopped run goes on)")
    args = ap.parse_args()
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "resume", "assets", "characters", "only", "runs")}
    kept = {}
    if args.resume and Path(args.json).is_file():
        old = json.loads(Path(args.json).read_text())
        if old.get("settings") == settings:
            kept = {(r["root"], r["asset"]): r for r in old["runs"] if "error" not in r}

    jobs = [(Path(args.root), name) for name in args.assets.split(",") if name]
    if args.characters:
        names = split_characters(Path(args.characters), args.character_split)
        jobs += [(Path(args.characters), name) for name in names if args.only is None or name in args.only.split(",")]
    header = (f"{'asset':<22} {'vert.err %':>10} {'rest %':>7} {'shape %':>7} {'chamf.':>6} {'worst':>6} {'c.rest':>6} {'floor':>6} {'≤1%':>4} {'≤⅓':>4} {'nn→gt %':>8} {'nn rest':>7} "
              f"{'PSNR':>6} {'SSIM':>6} {'motion':>7} {'sil.max':>7} {'N':>7} {'nodes':>5} {'offs.':>5} {'steps':>6} {'min':>5}")  # fmt: skip
    print(header)
    print("-" * len(header))
    rows = []
    yes = lambda ok: "yes" if ok else "NO"  # noqa: E731
    for root, name in jobs:
        r = kept.get((str(root), name)) or {"asset": name, "root": str(root), **run_one(root, name, Path(args.runs) / name, args)}
        rows.append(r)
        write_json(args.json, {"minutes": args.minutes, "preset": args.preset, "graph_metric": args.graph_metric or "default", "settings": settings,
                               "partial": True, "runs": rows})  # fmt: skip
        if "error" in r:
            print(f"{name:<22} error: {r['error']}", flush=True)
            continue
        nn = "n/a" if r["vertex_error_pct"] is None else f"{r['vertex_error_pct']:.2f}"
        sil = max(r["keyframe_silhouette_errors"] or [float("nan")])
        tg = r["target"]
        print(f"{name:<22} {r['per_vertex_error_pct']:10.2f} {r['rest_error_pct']:7.2f} {r['shape_oracle_pct']:7.2f} {r['chamfer_pct']:6.2f} {r['chamfer_worst_pct']:6.2f} "
              f"{r['chamfer_rest_pct']:6.2f} {r.get('chamfer_floor_pct', float('nan')):6.2f} {yes(tg['chamfer_le_1pct']):>4} {yes(tg['chamfer_le_third_of_rest']):>4} {nn:>8} {r['nn_rest_pct']:7.2f} {r['psnr']:6.2f} {r['ssim']:6.3f} "
              f"{r['motion_amplitude']:7.3f} {sil:7.3f} {r['n_gaussians']:7d} {r['n_nodes']:5d} {'on' if r['vertex_offsets'] else 'off':>5} {r['iters']:6d} "
              f"{r['wall_s'] / 60:5.1f}", flush=True)  # fmt: skip
    done = [r for r in rows if "error" not in r]
    summary = {"assets": len(rows), "failed_to_run": len(rows) - len(done), "meet_target": sum(all(r["target"].values()) for r in done)}
    print(f"target (chamfer ≤ 1 % and ≤ ⅓ of not moving, ≤ 10 min): {summary['meet_target']} of {len(rows)}")
    write_json(args.json, {"minutes": args.minutes, "preset": args.preset, "graph_metric": args.graph_metric or "default", "settings": settings,
                           "summary": summary, "runs": rows})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
