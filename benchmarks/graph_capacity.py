"""How well the animate deformation graph can reproduce an asset's true motion, images aside.

An oracle for ``benchmarks/animate.py``: it fits the keyframe transforms of the graph that ``motion4d
animate`` builds (same nodes, skin and edges) directly to the asset's true vertex positions (exact
correspondence), under the same ARAP term, and measures the result as animate.py does (per-vertex error and
symmetric surface chamfer, % of the gt bounding-box diagonal). What it scores bounds what an image fit with
that graph and ARAP weight can reach, so it tells whether an asset's error comes from the graph (nodes,
rigidity) or from the images.

    python benchmarks/graph_capacity.py /work/shared/data [--asset animatedmorphsphere] [--nodes 96,192]
        [--lambda-arap 1,0.1,0.03] [--steps 1500] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path

import numpy as np
import torch
from _runner import write_json

from animate import GLTF_NAMES, _nearest_first, true_animation


def fit_graph(root: Path, name: str, n_nodes: int, lambda_arap: float, steps: int) -> dict:
    """Fit the animate graph of ``name`` with ``n_nodes`` nodes to the true vertices; its errors."""
    from motion4d.data.gltf import load_gltf
    from motion4d.data.transforms import read_asset_to_world
    from motion4d.gaussians.rotations import quat_to_rotmat
    from motion4d.metrics.geometry import bbox_diagonal, surface_chamfer
    from motion4d.optim.trainer_animate import PRESETS
    from motion4d.pipelines.animate import build_model

    driving = root / "multiview" / name
    src = load_gltf(root / "gltf" / f"{GLTF_NAMES.get(name, name)}.glb")
    a2w = read_asset_to_world(driving)
    a2w = np.eye(4) if a2w is None else a2w
    gt = np.load(driving / "gt_vertices.npz")
    times = gt["times"].astype(np.float64)
    truth = true_animation(src, a2w, gt)  # as Blender rendered it (its frame times, its animation subset)
    diag = bbox_diagonal(gt["vertices"].astype(np.float64))
    mesh_w = src.mesh.transformed(a2w)
    model = build_model(mesh_w, torch.tensor(times, dtype=torch.float32), dataclasses.replace(PRESETS["default"], n_nodes=n_nodes, n_init=2000))
    graph, rest = model.graph, model.rest_vertices.double()
    match = torch.from_numpy(_nearest_first(mesh_w.vertices, rest.numpy()))
    target = torch.from_numpy(truth @ a2w[:3, :3].T + a2w[:3, 3])[:, match]  # [T,V,3] world
    idx, w, nodes, nb = model.skin_indices, model.skin_weights.double(), graph.nodes.double(), graph.neighbors
    edges = nb != torch.arange(graph.num_nodes)[:, None]
    s = (nodes[nb] - nodes[:, None]).norm(dim=-1)[edges].mean()
    q = torch.zeros(graph.num_frames, graph.num_nodes, 4, dtype=torch.float64)
    q[..., 0] = 1
    q.requires_grad_()
    d = torch.zeros(graph.num_frames, graph.num_nodes, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([q, d], lr=1e-2)

    def deform():
        R = quat_to_rotmat(torch.nn.functional.normalize(q, dim=-1))
        g = nodes[idx]
        moved = torch.einsum("fpkab,pkb->fpka", R[:, idx], rest[:, None] - g) + g + d[:, idx]
        return (w[None, ..., None] * moved).sum(2), R

    for it in range(steps):
        opt.zero_grad()
        v, R = deform()
        rel = nodes[nb] - nodes[:, None]
        pred = torch.einsum("fjab,jkb->fjka", R, rel) + nodes[None, :, None] + d[:, :, None]
        arap = (pred - (nodes[nb][None] + d[:, nb])).square().sum(-1)[:, edges].mean()
        loss = ((v - target).square().sum(-1).mean() + lambda_arap * arap) / s**2  # the trainer's scale-free ARAP
        loss.backward()
        opt.step()
        for group in opt.param_groups:
            group["lr"] = 1e-2 * 0.05 ** (it / steps)
    with torch.no_grad():
        v, _ = deform()
    inv = np.linalg.inv(a2w)
    moved = v.numpy() @ inv[:3, :3].T + inv[:3, 3]  # asset coordinates, as the truth
    scale = abs(np.linalg.det(a2w[:3, :3])) ** (1 / 3)
    faces = model.faces.numpy()
    chamfers = np.array([surface_chamfer(moved[f], faces, truth[f], src.mesh.faces, seed=f) for f in range(len(times))]) * scale
    pct = lambda x: float(100 * x / diag)  # noqa: E731
    return {"asset": name, "nodes": graph.num_nodes, "lambda_arap": lambda_arap, "per_vertex_pct": pct((v - target).norm(dim=-1).mean().item()),
            "chamfer_pct": pct(chamfers.mean()), "chamfer_worst_pct": pct(chamfers.max())}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="data root holding gltf/ and multiview/ (e.g. /work/shared/data)")
    ap.add_argument("--asset", default="animatedmorphsphere")
    ap.add_argument("--nodes", default="96,192", help="comma-separated node counts")
    ap.add_argument("--lambda-arap", default="1,0.1,0.03", help="comma-separated ARAP weights")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    root = Path(args.root)
    if not (root / "multiview" / args.asset / "gt_vertices.npz").is_file():
        ap.error(f"{root / 'multiview' / args.asset}: no gt_vertices.npz")
    rows = [fit_graph(root, args.asset, int(n), float(lam), args.steps)
            for n, lam in itertools.product(args.nodes.split(","), args.lambda_arap.split(","))]  # fmt: skip
    print(f"{'asset':22s} {'nodes':>5s} {'λ_arap':>7s} {'vert.err %':>10s} {'chamf. %':>9s} {'worst %':>8s}")
    for r in rows:
        print(f"{r['asset']:22s} {r['nodes']:5d} {r['lambda_arap']:7.3g} {r['per_vertex_pct']:10.2f} {r['chamfer_pct']:9.2f} {r['chamfer_worst_pct']:8.2f}")
    if args.json:
        write_json(args.json, {"steps": args.steps, "runs": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
