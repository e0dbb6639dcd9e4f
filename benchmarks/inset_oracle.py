"""How well can our surface Gaussians draw the true shape's outline? An oracle of the renderer at each inset.

For a dataset rendered from an animated glTF (``gt_vertices.npz`` beside it) it builds the surface
Gaussians ``motion4d animate`` would build on the asset (the animate defaults, with ``--surface-inset``
each of ``--insets``), runs the same coverage fit at the rest pose, poses them on the asset's *true*
animation at each of ``--frames`` and compares their alpha with that frame's training images:

- ``sil.err``: Σ|alpha − mask| / Σ mask (the report's per-keyframe silhouette error; what a perfect fit
  would score),
- ``α/mask``: total alpha over the images' (1: neither fat nor thin),
- ``α/cov``: total alpha over the posed mesh's own antialiased coverage,
- ``mesh.err``: the same silhouette error for that coverage (what the mesh itself scores: the floor),
- ``best off``: the offset of the true surface along its (welded) vertex normals (% of its diagonal; of those in
  ``--offsets``, refined by a parabola) at which ``sil.err`` is least. A fit's mask term pulls the shape
  toward it: negative is a fit that comes out thin, 0 an unbiased renderer.

Colours do not enter. Prints a table and writes JSON.

    python benchmarks/inset_oracle.py GLTF DRIVING [--insets 0.5,1,1.5,2,2.5] [--frames 0,8,15] [--offsets -0.6,-0.4,-0.2,0.2,0.4]
        [--views 20] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _runner import write_json

from animate import true_animation
from motion4d.data.gltf import load_gltf
from motion4d.data.transforms import load_transforms, read_asset_to_world
from motion4d.gaussians.vertex_offsets import weld_vertices
from motion4d.metrics.geometry import bbox_diagonal
from motion4d.optim.coverage import fit_coverage, mesh_coverages
from motion4d.optim.trainer_animate import PRESETS
from motion4d.pipelines.animate import build_model
from motion4d.render.frame import render_frame


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("asset", type=Path, help="the animated glTF/GLB the dataset was rendered from")
    ap.add_argument("driving", type=Path, help="its multi-view dataset (with gt_vertices.npz)")
    ap.add_argument("--insets", default="0.5,1,1.5,2,2.5")
    ap.add_argument("--frames", default="0,8,15")
    ap.add_argument("--views", type=int, default=20, help="training images per frame scored (default all 20)")
    ap.add_argument("--offsets", default="-0.6,-0.4,-0.2,0.2,0.4", help="normal offsets of the true shape tried, in %% of its diagonal")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not (args.driving / "gt_vertices.npz").is_file():
        print(f"{args.driving}: no gt_vertices.npz", file=sys.stderr)
        return 2

    torch.manual_seed(0)
    src = load_gltf(args.asset)
    a2w = read_asset_to_world(args.driving)
    a2w = np.eye(4) if a2w is None else a2w
    truth = true_animation(src, a2w, np.load(args.driving / "gt_vertices.npz"))
    truth = torch.from_numpy(truth @ a2w[:3, :3].T + a2w[:3, 3]).float()
    train = load_transforms(args.driving, "train", background=(0.0, 0.0, 0.0))
    if train.alphas is None:
        print(f"{args.driving}: its images have no alpha", file=sys.stderr)
        return 2
    frame_times = torch.unique(train.times.double()).float()
    frame_of = (train.times.double()[:, None] - frame_times.double()[None]).abs().argmin(dim=1)
    viewmats, Ks = train.viewmats.float(), train.Ks.float()
    W, H = train.width, train.height
    frames = [int(x) for x in args.frames.split(",")]
    weld = weld_vertices(torch.from_numpy(src.mesh.vertices))[0]  # split copies of a vertex (UV seams, flat shading) move together
    bg = torch.zeros(3)
    rows_out = []
    offsets = sorted({0.0, *(float(x) for x in args.offsets.split(","))})
    diagonal = bbox_diagonal(truth.numpy())
    print(f"{'inset':>5} {'frame':>5} {'sil.err':>8} {'α/mask':>8} {'α/cov':>8} {'mesh.err':>8} {'best off':>8}   (coverage fit: α/cov before → after)")
    for inset in [float(x) for x in args.insets.split(",")]:
        config = dataclasses.replace(PRESETS["default"], surface_inset=inset)
        start = time.perf_counter()
        model = build_model(src.mesh.transformed(a2w), frame_times, config)
        cov = fit_coverage(model, viewmats, Ks, W, H, steps=config.coverage_steps, lr=config.lr_coverage, batch_views=config.batch_views, seed=config.seed)
        for f in frames:
            rows = torch.where(frame_of == f)[0][: args.views]
            mask = train.alphas[rows].float()
            msum = float(mask.sum())
            normals = _welded_normals(truth[f], src.mesh.faces, weld)
            errs = []
            for off in offsets:
                verts = truth[f] + off / 100 * diagonal * normals
                model.vertices_at = lambda t, v=verts: v  # noqa: E731 — pose the Gaussians on the (offset) true shape
                with torch.no_grad():
                    posed = model.at_time(float(frame_times[f]))
                    alpha = torch.cat([render_frame(posed, viewmats[r], Ks[r], W, H, background=bg).alpha for r in rows.split(4)])
                errs.append(float((alpha - mask).abs().sum()) / msum)
                if off == 0.0:
                    coverage = mesh_coverages(model, viewmats[rows], Ks[rows], W, H, vertices=verts)
                    row = {"inset": inset, "frame": f, "silhouette_error": errs[-1], "alpha_over_mask": float(alpha.sum()) / msum,
                           "alpha_over_coverage": float(alpha.sum() / coverage.sum()), "mesh_silhouette_error": float((coverage - mask).abs().sum()) / msum,
                           "coverage_ratio": [cov.ratio_before, cov.ratio_after]}  # fmt: skip
            row["offsets_pct"], row["offset_errors"] = offsets, errs
            row["best_offset_pct"] = _argmin_parabola(offsets, errs)
            rows_out.append(row)
            print(f"{inset:>5.2f} {f:>5} {row['silhouette_error']:>8.4f} {row['alpha_over_mask']:>8.4f} {row['alpha_over_coverage']:>8.4f} "
                  f"{row['mesh_silhouette_error']:>8.4f} {row['best_offset_pct']:>+8.3f}   ({cov.ratio_before:.3f} → {cov.ratio_after:.3f}, "
                  f"{time.perf_counter() - start:.0f} s)")  # fmt: skip
    if args.json is not None:
        write_json(args.json, {"asset": str(args.asset), "driving": str(args.driving), "rows": rows_out})
    return 0


def _welded_normals(vertices: torch.Tensor, faces: np.ndarray, weld: torch.Tensor) -> torch.Tensor:
    """[V,3] area-weighted unit normals of ``vertices`` with the copies of each welded vertex summed, so that
    an offset along them moves a vertex's copies together (no cracks at seams)."""
    f = torch.from_numpy(np.asarray(faces, dtype=np.int64))
    p = vertices.double()
    fn = torch.linalg.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])
    n = torch.zeros(int(weld.max()) + 1, 3, dtype=p.dtype).index_add_(0, weld[f].reshape(-1), fn.repeat_interleave(3, dim=0))
    return torch.nn.functional.normalize(n, dim=-1)[weld].to(vertices.dtype)


def _argmin_parabola(xs: list[float], ys: list[float]) -> float:
    """The x of the least y: the vertex of the parabola through the best sample and its neighbours."""
    i = int(np.argmin(ys))
    if i == 0 or i == len(xs) - 1:
        return float(xs[i])
    a, b, c = np.polyfit(xs[i - 1 : i + 2], ys[i - 1 : i + 2], 2)
    return float(-b / (2 * a)) if a > 0 else float(xs[i])


if __name__ == "__main__":
    raise SystemExit(main())
