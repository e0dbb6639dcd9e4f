"""The generation oracle's own accuracy on ground truth (issue 12: it must be ≥ 95 % per attribute).

On the held-out samples of a ``motion4d dataset synth`` folder (their ``samples/<id>/`` folders), two ways:

(a) **fitted** — 4D-Rotor Gaussians fitted by ``reconstruct`` (the short preset below, ``--fit-seconds``
    per sample) to the sample's ground-truth multi-view video, then ``judge(model, time_range)``: shape,
    colour and motion, exactly the setting of a generated asset;
(b) **images** — ``judge_views`` on the ground-truth images themselves (the fixed evaluation views, all
    frames): shape and colour.

Prints a row per sample, the per-attribute accuracy of both and the confusion matrices; writes
``RESULTS/oracle.json`` (fits under ``RESULTS/fits/<id>``, reused when they exist). Tune on ``--split train``
samples (a dataset made with ``SynthConfig(folders=N)``), report on ``held_out``.

    python benchmarks/oracle.py DATA --out RESULTS [--split held_out] [--limit N] [--fit-seconds 60]
        [--fit-iters 400] [--no-fit] [--no-images]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

from _runner import write_json

from motion4d.data.synth_vocab import COLOURS, MOTIONS, SHAPES
from motion4d.data.transforms import load_transforms
from motion4d.metrics.oracle import STATIC, UNKNOWN, OracleConfig, judge, judge_views
from motion4d.metrics.oracle_shape import render_templates
from motion4d.optim.strategy import DensifyConfig
from motion4d.optim.trainer4d import preset
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.reconstruct import reconstruct

ATTRIBUTES = {"shape": SHAPES, "colour": COLOURS, "motion": MOTIONS}


def fit_config(iters: int, seconds: float):
    """The short rotor4d fit: few Gaussians seeded near the object, no D-SSIM (the step's cost on a CPU)."""
    return preset(
        "fast", iters=iters, n_init=1500, init_radius=0.35, lambda_dssim=0.0, sh_degree_interval=100, ckpt_every=0,
        time_budget_s=seconds or None, progress=False,
        densify=DensifyConfig(refine_start=50, refine_stop=int(0.8 * iters), refine_every=50, reset_every=0, max_gaussians=8000),
    )  # fmt: skip


def samples(data: Path, split: str) -> list[tuple[str, Path, dict]]:
    """(id, folder, record) of the dataset's sample folders of ``split``."""
    header = json.loads((data / "dataset.json").read_text())
    out = []
    for sid, rel in sorted(header.get("folders", {}).items()):
        meta = json.loads((data / rel / "transforms_train.json").read_text())
        if meta["split"] == split:
            out.append((sid, data / rel, {k: meta[k] for k in ("shape", "colour", "motion", "caption")}))
    return out


def grid(folder: Path, n_views: int):
    """The sample's training images as ``rgb [T,V,H,W,3]`` (straight), ``alpha [T,V,H,W]``, the first ``n_views``
    cameras ``viewmats [V,4,4]``, ``Ks [V,3,3]``."""
    s = load_transforms(folder, "train")
    T, V = len(torch.unique(s.times)), int(s.views.max()) + 1
    order = torch.argsort(s.times * (V + 1) + s.views)
    alpha = s.alphas[order, ..., 0].reshape(T, V, s.height, s.width)
    rgb = ((s.images[order] - (1 - s.alphas[order])) / s.alphas[order].clamp_min(1e-3)).reshape(T, V, s.height, s.width, 3)
    vm, K = s.viewmats[order].reshape(T, V, 4, 4)[0], s.Ks[order].reshape(T, V, 3, 3)[0]
    return rgb[:, :n_views], alpha[:, :n_views], vm[:n_views], K[:n_views]


def accuracy(rows: list[dict], way: str, attr: str) -> tuple[int, int]:
    got = [r[way][attr] == r["truth"][attr] for r in rows if way in r and attr in r[way]]
    return sum(got), len(got)


def confusion(rows: list[dict], way: str, attr: str) -> dict[str, dict[str, int]]:
    """truth → predicted → count."""
    names = list(ATTRIBUTES[attr]) + [UNKNOWN if attr == "colour" else STATIC if attr == "motion" else "?"]
    m = {t: dict.fromkeys(names, 0) for t in ATTRIBUTES[attr]}
    for r in rows:
        if way in r and attr in r[way]:
            m[r["truth"][attr]][r[way][attr]] = m[r["truth"][attr]].get(r[way][attr], 0) + 1
    return m


def print_confusion(title: str, m: dict[str, dict[str, int]]) -> None:
    cols = [c for c in next(iter(m.values())) if any(row[c] for row in m.values()) or c in m]
    print(f"\n{title} (rows: truth, columns: oracle)")
    print(" " * 10 + "".join(f"{c[:6]:>7}" for c in cols))
    for t, row in m.items():
        print(f"{t:<10}" + "".join(f"{row[c]:>7}" if row[c] else f"{'.':>7}" for c in cols))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a `motion4d dataset synth` folder")
    ap.add_argument("--out", type=Path, required=True, help="results folder (oracle.json, fits/)")
    ap.add_argument("--split", default="held_out", choices=["held_out", "train"])
    ap.add_argument("--limit", type=int, default=0, help="only the first N samples (0: all)")
    ap.add_argument("--fit-seconds", type=float, default=60.0, help="time budget of each fit (0: none, --fit-iters decides)")
    ap.add_argument("--fit-iters", type=int, default=400, help="step cap of each fit")
    ap.add_argument("--eval-views", type=int, default=4, help="the first N views of each sample (the fixed evaluation views) for (b)")
    ap.add_argument("--no-fit", action="store_true", help="skip (a)")
    ap.add_argument("--no-images", action="store_true", help="skip (b)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    todo = samples(args.data, args.split)[: args.limit or None]
    if not todo:
        print(f"error: {args.data}: no sample folders of split {args.split!r}", file=sys.stderr)
        return 2
    config = OracleConfig()
    templates = None
    rows = []
    print(f"{len(todo)} {args.split} samples of {args.data}")
    print(f"{'id':<7} {'truth':<28} {'(a) fitted: oracle':<30} {'psnr':>5} {'fit s':>6} {'judge s':>7}  {'(b) images':<18}")
    for sid, folder, truth in todo:
        row = {"id": sid, "truth": truth}
        if not args.no_images:
            rgb, alpha, vm, K = grid(folder, args.eval_views)
            if templates is None:  # the evaluation views are the same in every sample
                templates = render_templates(vm, K, alpha.shape[-1], alpha.shape[-2], config.silhouette)
            t0 = time.perf_counter()
            r = judge_views(rgb, alpha, vm, K, config, templates=templates)
            row["images"] = {"shape": r.shape, "colour": r.colour, "seconds": time.perf_counter() - t0, "scores": r.scores}
        if not args.no_fit:
            run = args.out / "fits" / sid
            if not (run / "model.m4d").is_file():
                rep = reconstruct(folder, run, fit_config(args.fit_iters, args.fit_seconds), video_frames=0)
                fit = {"psnr": rep.psnr, "iters": rep.iters, "seconds": rep.seconds, "n_gaussians": rep.n_gaussians}
            else:
                rep = json.loads((run / "report.json").read_text())
                fit = {k: rep[k] for k in ("psnr", "iters", "seconds", "n_gaussians")}
            model, info = load_run_model(run)
            t0 = time.perf_counter()
            r = judge(model, info.time_range, config)
            row["fitted"] = {"shape": r.shape, "colour": r.colour, "motion": r.motion, "seconds": time.perf_counter() - t0,
                             "fit": fit, "scores": r.scores}  # fmt: skip
        rows.append(row)
        mark = lambda way, a: "" if row[way][a] == truth[a] else "✗"  # noqa: E731
        t = f"{truth['shape']} {truth['colour']} {truth['motion']}"
        a = " ".join(f"{row['fitted'][k]}{mark('fitted', k)}" for k in ATTRIBUTES) if "fitted" in row else "-"
        b = " ".join(f"{row['images'][k]}{mark('images', k)}" for k in ("shape", "colour")) if "images" in row else "-"
        fit = row.get("fitted", {}).get("fit", {})
        print(f"{sid:<7} {t:<28} {a:<30} {fit.get('psnr', float('nan')):5.1f} {fit.get('seconds', float('nan')):6.0f} "
              f"{row.get('fitted', {}).get('seconds', float('nan')):7.1f}  {b:<18}", flush=True)  # fmt: skip

    summary = {}
    print()
    for way, attrs in (("fitted", ATTRIBUTES), ("images", ("shape", "colour"))):
        for attr in attrs:
            ok, n = accuracy(rows, way, attr)
            if n:
                summary[f"{way}_{attr}"] = {"correct": ok, "n": n, "accuracy": ok / n}
                print(f"({'a' if way == 'fitted' else 'b'}) {way:<7} {attr:<7} {ok:>3}/{n:<3} {100 * ok / n:6.1f} %")
    for way, attrs in (("fitted", ATTRIBUTES), ("images", ("shape", "colour"))):
        for attr in attrs:
            if accuracy(rows, way, attr)[1]:
                print_confusion(f"{way} {attr}", confusion(rows, way, attr))
    secs = [r["fitted"]["seconds"] for r in rows if "fitted" in r]
    fit_secs = [r["fitted"]["fit"]["seconds"] for r in rows if "fitted" in r]
    if secs:
        print(f"\njudge: {sum(secs) / len(secs):.1f} s per fitted sample; fit: {sum(fit_secs) / len(fit_secs):.0f} s per sample")
    write_json(args.out / "oracle.json", {
        "data": str(args.data), "split": args.split, "fit_seconds": args.fit_seconds, "fit_iters": args.fit_iters,
        "eval_views": args.eval_views, "summary": summary,
        "confusion": {f"{w}_{a}": confusion(rows, w, a) for w, attrs in (("fitted", ATTRIBUTES), ("images", ("shape", "colour")))
                      for a in attrs if accuracy(rows, w, a)[1]},
        "samples": rows,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
