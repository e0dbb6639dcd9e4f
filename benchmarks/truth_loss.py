"""Does the animate loss prefer the true shape? An oracle of the renderer, not of the fit.

For a finished ``motion4d animate`` run on a dataset rendered from an animated glTF (``gt_vertices.npz``
beside it), it puts the run's surface Gaussians (their fitted colours and sizes) on three meshes per
keyframe — the fit, the asset's true animation at that frame, and halfway between — and evaluates the fit's
own image terms on that frame's training images (the same terms and weights the run trained with), at the
run's surface inset and at other insets. If the truth scores worse than the fit, the renderer biases the
fit away from the truth (the run's colours were fitted with its shape, so ``--refit-colours`` first fits
them to each shape); if both score better than the halfway shape, the fit sits in a basin of its own.

    python benchmarks/truth_loss.py RUN GLTF DRIVING [--frames 0,4,8,10,12] [--insets 0,0.5,1] [--refit-colours N] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from animate import true_animation
from motion4d.data.gltf import load_gltf
from motion4d.data.transforms import load_transforms, read_asset_to_world
from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.optim.driving import DrivingVideoLoss
from motion4d.optim.providers import TrainViews
from motion4d.pipelines.models import load_run_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("asset", type=Path)
    ap.add_argument("driving", type=Path)
    ap.add_argument("--frames", default="0,4,8,10,12")
    ap.add_argument("--insets", default=None, help="comma-separated insets (default: the run's, and 0 and 1)")
    ap.add_argument("--refit-colours", type=int, default=0, metavar="N",
                    help="before scoring a mesh, fit the Gaussians' colours to it for N steps on the frame's images (from the run's; the "
                         "run's colours were fitted with its own shape, which favours it)")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    model, _ = load_run_model(args.run)
    if not isinstance(model, MeshGaussians):
        print(f"{args.run}: not a mesh animate run", file=sys.stderr)
        return 2
    cfg = json.loads((args.run / "config.json").read_text())["config"]
    src = load_gltf(args.asset)
    a2w = read_asset_to_world(args.driving)
    a2w = np.eye(4) if a2w is None else a2w
    world = lambda v: v @ a2w[:3, :3].T + a2w[:3, 3]  # noqa: E731
    truth = torch.from_numpy(world(true_animation(src, a2w, np.load(args.driving / "gt_vertices.npz")))).to(model.rest_vertices.dtype)
    if np.abs(world(src.mesh.vertices) - model.rest_vertices.numpy()).max() > 1e-4:
        print(f"{args.run}: its mesh is not {args.asset}'s in vertex order", file=sys.stderr)
        return 2
    train = load_transforms(args.driving, "train", background=cfg["background"])
    bg = torch.tensor(cfg["background"], dtype=torch.float32)
    loss = DrivingVideoLoss(model, TrainViews.of(train, "cpu"), train.times, batch_views=4, lambda_dssim=cfg["lambda_dssim"], warmup_fraction=0.0,
                            masks=True, silhouettes=True, background=bg, error_share=0.0)  # fmt: skip
    weights = {"loss_photometric": 1.0, "loss_mask": cfg["lambda_mask"], "loss_silhouette": cfg["lambda_silhouette"]}
    run_inset = float(model.inset)
    insets = sorted({run_inset, 0.0, 1.0}) if args.insets is None else [float(x) for x in args.insets.split(",")]
    ft = model.graph.frame_times
    fitted = model.vertices_at
    sh0 = model.params["sh0"].detach().clone()
    rows_out = []
    print(f"{'frame':>5} {'inset':>5} {'mesh':>6} {'total':>8} {'photo':>8} {'mask':>8} {'silh.':>8} {'sil.err':>8} {'α/cov':>8} {'mesh.err':>8}")
    for f in [int(x) for x in args.frames.split(",")]:
        with torch.no_grad():
            fit_v = fitted(float(ft[f]))
        meshes = {"fit": fit_v, "truth": truth[f], "half": 0.5 * (fit_v + truth[f])}
        extent = lambda v: (v.max(0).values - v.min(0).values).numpy()  # noqa: E731
        print(f"frame {f}: fit's extent / truth's per axis {np.round(extent(fit_v) / extent(truth[f]), 3).tolist()}")
        rows = loss.frame_rows(f, 8)
        for inset in insets:
            model.inset.fill_(inset)
            for name, verts in meshes.items():
                model.vertices_at = lambda t, v=verts: v  # noqa: E731 — pose the Gaussians on this mesh
                if args.refit_colours > 0:
                    _refit_colours(model, loss, rows, sh0, args.refit_colours)
                with torch.no_grad():
                    terms = {k: float(v) for k, v in loss.terms(rows).losses.items()}
                    err, ratio, mesh_err = _silhouette_error(loss, model, f, rows, bg)
                total = sum(weights[k] * terms[k] for k in weights)
                rows_out.append({"frame": f, "inset": inset, "mesh": name, "total": total, **terms, "silhouette_error": err,
                                 "alpha_over_coverage": ratio, "mesh_silhouette_error": mesh_err})  # fmt: skip
                print(f"{f:>5} {inset:>5.2f} {name:>6} {total:>8.5f} {terms['loss_photometric']:>8.5f} {terms['loss_mask']:>8.5f} "
                      f"{terms['loss_silhouette']:>8.5f} {err:>8.4f} {ratio:>8.4f} {mesh_err:>8.4f}")  # fmt: skip
        model.vertices_at = fitted
    model.inset.fill_(run_inset)
    with torch.no_grad():
        model.params["sh0"].copy_(sh0)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"run": str(args.run), "rows": rows_out}, indent=1))
        print(f"wrote {args.json}")
    return 0


def _refit_colours(model: MeshGaussians, loss: DrivingVideoLoss, rows: torch.Tensor, sh0: torch.Tensor, steps: int) -> None:
    """Fit only the colours (``sh0``, from the run's) to the images ``rows`` with the model posed as it is."""
    p = model.params["sh0"]
    with torch.no_grad():
        p.copy_(sh0)
    opt = torch.optim.Adam([p], lr=2e-2)
    for _ in range(steps):
        out = loss.terms(rows)
        opt.zero_grad(set_to_none=True)
        out.losses["loss_photometric"].backward()
        opt.step()
    model.zero_grad(set_to_none=True)


def _silhouette_error(loss: DrivingVideoLoss, model: MeshGaussians, f: int, rows: torch.Tensor, bg: torch.Tensor) -> tuple[float, float, float]:
    """The relative silhouette error of the Gaussians posed at keyframe ``f`` on the images ``rows``, their
    total alpha over the posed mesh's own coverage, and that coverage's relative error against the images."""
    from motion4d.optim.coverage import mesh_coverages
    from motion4d.render.frame import render_frame

    v = loss.views
    t = float(model.graph.frame_times[f])
    out = render_frame(model.at_time(t), v.viewmats[rows], v.Ks[rows], v.width, v.height, background=bg)
    cov = mesh_coverages(model, v.viewmats[rows], v.Ks[rows], v.width, v.height, vertices=model.vertices_at(t))
    mask = v.alphas[rows]
    err = float((out.alpha - mask).abs().sum() / mask.sum().clamp_min(1e-6))
    return err, float(out.alpha.sum() / cov.sum().clamp_min(1e-6)), float((cov - mask).abs().sum() / mask.sum().clamp_min(1e-6))


if __name__ == "__main__":
    raise SystemExit(main())
