"""The generation oracle's own accuracy on ground truth (issue 12: it must be ≥ 95 % per attribute).

Packed samples of a ``motion4d dataset synth`` folder, in exactly the setting of a generated asset: the
sample's first 4 packed views (the fixed evaluation views, the generation views) × 8 frames in place of the
sampled grid, fitted with the text-to-4d "default" preset (``fit_grid``, as ``benchmarks/generate.py``'s truth
section: :mod:`_truth`), then ``judge(model, time_range)`` — shape, colour and motion. Also, as a reference,
``judge_views`` on the ground-truth images themselves (shape and colour).

Splits: ``--split train`` takes a stratified tuning set (``--per-pair`` samples of every shape × motion pair,
in dataset order, plus the first sample of any colour still missing); tune the oracle on it only.
``--split held_out`` (the default) takes every held-out sample: the test set, run once at the end.
``--ids`` keeps only the listed samples.

Controls (``--variant``, :func:`_truth.variant`): ``still`` holds frame 0 for every frame, so the right
motion is "static" (does the oracle invent motion?); ``blurred`` blurs the views first (a generated grid is
blurrier than a render: does it hold up?).

Prints a row per sample, the per-attribute accuracy, the confusion matrices and the seconds per judge;
writes ``RESULTS/oracle.json`` (``oracle_<variant>.json`` for a control). Fits are kept under
``RESULTS/fits/<id>`` (``fits_<variant>/<id>``) and reused (so re-judging after a
change to the oracle takes seconds a sample; the first run fits, ~1 min a sample on a 2-core CPU).

    python benchmarks/oracle.py DATA --out RESULTS [--split held_out|train] [--per-pair 2] [--limit N]
        [--ids ID,...] [--variant truth|still|blurred] [--no-images] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path

import torch
from _runner import write_json
from _truth import VARIANTS, fit_truth, judge_run, variant

from motion4d.data.synth_packed import SynthShards
from motion4d.data.synth_vocab import COLOURS, MOTIONS, SHAPES
from motion4d.metrics.oracle import STATIC, UNKNOWN, OracleConfig, judge_views
from motion4d.metrics.oracle_shape import render_templates
from motion4d.pipelines.text_to_4d import PRESETS, GeneratedGrid

ATTRIBUTES = {"shape": SHAPES, "colour": COLOURS, "motion": MOTIONS}


def tuning_indices(records: list[dict], per_pair: int) -> list[int]:
    """Indices into ``records`` of a stratified set: the first ``per_pair`` of every shape × motion pair,
    then the first record of each colour not yet in it; ordered round by round (every pair's first, then
    every pair's second, …) so that any prefix is balanced too."""
    by_pair = defaultdict(list)
    for i, r in enumerate(records):
        if len(by_pair[r["shape"], r["motion"]]) < per_pair:
            by_pair[r["shape"], r["motion"]].append(i)
    out = [idx[k] for k in range(per_pair) for pair, idx in sorted(by_pair.items()) if k < len(idx)]
    for colour in COLOURS:
        if not any(records[i]["colour"] == colour for i in out):
            out += [next(i for i, r in enumerate(records) if r["colour"] == colour)]
    return out


class ImageOracle:
    """``judge_views`` on a sample's ground-truth images at its first ``views`` views, all frames (the
    templates rendered once: these views are the same in every sample)."""

    def __init__(self, config: OracleConfig, views: int, fov_deg: float):
        self.config, self.views, self.fov_deg, self.templates = config, views, fov_deg, None

    def __call__(self, sample) -> dict:
        v = self.views
        grid = GeneratedGrid(sample.images[:v].float() / 255.0, sample.azimuth_deg[:v], sample.elevation_deg[:v], float(sample.radius[0]),
                             self.fov_deg, sample.times)  # fmt: skip
        rgba, Ks = grid.rgba.transpose(0, 1), grid.K.expand(v, 3, 3).clone()  # [T,V,H,W,4]
        if self.templates is None:
            self.templates = render_templates(grid.viewmats, Ks, rgba.shape[-2], rgba.shape[-3], self.config.silhouette)
        r = judge_views(rgba[..., :3], rgba[..., 3], grid.viewmats, Ks, self.config, templates=self.templates)
        return {"shape": r.shape, "colour": r.colour}


def _marked(verdict: dict, truth: dict, attrs) -> str:
    """The verdict on ``attrs``, ✗ after each wrong one."""
    return " ".join(f"{verdict[a]}{'' if verdict[a] == truth[a] else '✗'}" for a in attrs)


def accuracy(rows: list[dict], way: str, attr: str) -> tuple[int, int]:
    got = [r[way][attr] == r["truth"][attr] for r in rows if way in r and attr in r[way]]
    return sum(got), len(got)


def confusion(rows: list[dict], way: str, attr: str) -> dict[str, dict[str, int]]:
    """truth → predicted → count."""
    names = list(ATTRIBUTES[attr]) + ([UNKNOWN] if attr == "colour" else [STATIC] if attr == "motion" else [])
    m = {t: dict.fromkeys(names, 0) for t in names if t in ATTRIBUTES[attr] or any(r["truth"][attr] == t for r in rows)}
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
    ap.add_argument("--per-pair", type=int, default=2, help="train: samples of every shape × motion pair in the tuning set")
    ap.add_argument("--limit", type=int, default=0, help="only the first N samples (0: all)")
    ap.add_argument("--ids", default="", help="only these sample ids (comma-separated)")
    ap.add_argument("--variant", default="truth", choices=VARIANTS, help="the ground truth itself, or a control (module docstring)")
    ap.add_argument("--no-images", action="store_true", help="skip the oracle on the ground-truth images")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    ds = SynthShards(args.data, split=args.split)
    todo = tuning_indices(ds.records, args.per_pair) if args.split == "train" else list(range(len(ds)))
    if args.ids:
        keep = set(args.ids.split(","))
        todo = [i for i in todo if ds.records[i]["id"] in keep]
    todo = todo[: args.limit or None]
    if not todo:
        print(f"error: {args.data}: no samples of split {args.split!r}", file=sys.stderr)
        return 2
    fit_config, oracle = PRESETS["default"], OracleConfig()
    fov = float(ds.meta["fov_deg"])
    images = ImageOracle(oracle, fit_config.views, fov)
    rows = []
    fits = args.out / ("fits" if args.variant == "truth" else f"fits_{args.variant}")
    print(f"{len(todo)} {args.split} samples of {args.data}" + ("" if args.variant == "truth" else f", {args.variant}"))
    print(f"{'id':<7} {'truth':<28} {'fitted: oracle':<32} {'psnr':>5} {'fit s':>6} {'judge s':>7}  {'images':<18}")
    for i in todo:
        sample = variant(ds[i], args.variant, fit_config.views)
        sid = sample.record["id"]
        truth = {a: sample.record[a] for a in ATTRIBUTES} | ({"motion": STATIC} if args.variant == "still" else {})
        row = {"id": sid, "truth": truth, "caption": sample.record["caption"]}
        if not args.no_images:
            row["images"] = images(sample)
        report = fit_truth(sample, fits / sid, fit_config, fov)
        r, seconds = judge_run(fits / sid, oracle)
        row["fitted"] = {"shape": r.shape, "colour": r.colour, "motion": r.motion, "seconds": seconds, "scores": r.scores,
                         "fit": {"psnr": report["psnr"], "seconds": report["fit_seconds"], "n_gaussians": report["n_gaussians"]}}  # fmt: skip
        rows.append(row)
        t = " ".join(truth.values())
        a = _marked(row["fitted"], truth, ATTRIBUTES)
        b = _marked(row["images"], truth, ("shape", "colour")) if "images" in row else "-"
        print(f"{sid:<7} {t:<28} {a:<32} {report['psnr']:5.1f} {report['fit_seconds']:6.0f} {seconds:7.1f}  {b:<18}", flush=True)

    summary = {}
    ways = (("fitted", tuple(ATTRIBUTES)), ("images", ("shape", "colour")))
    print()
    for way, attrs in ways:
        for attr in attrs:
            ok, n = accuracy(rows, way, attr)
            if n:
                summary[f"{way}_{attr}"] = {"correct": ok, "n": n, "accuracy": ok / n}
                print(f"{way:<7} {attr:<7} {ok:>3}/{n:<3} {100 * ok / n:6.1f} %")
    for way, attrs in ways:
        for attr in attrs:
            if accuracy(rows, way, attr)[1]:
                print_confusion(f"{way} {attr}", confusion(rows, way, attr))
    secs = [r["fitted"]["seconds"] for r in rows]
    print(f"\njudge: {sum(secs) / len(secs):.1f} s per sample")
    write_json(args.out / ("oracle.json" if args.variant == "truth" else f"oracle_{args.variant}.json"), {
        "data": str(args.data), "split": args.split, "per_pair": args.per_pair if args.split == "train" else None,
        "variant": args.variant,
        "fit_config": fit_config.to_dict(), "oracle_config": json.loads(json.dumps(dataclasses.asdict(oracle), default=str)), "summary": summary,
        "judge_seconds": sum(secs) / len(secs),
        "confusion": {f"{w}_{a}": confusion(rows, w, a) for w, attrs in ways for a in attrs if accuracy(rows, w, a)[1]},
        "samples": rows,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
