"""Text → 4D, judged: does the generated asset show the prompt's shape, colour and motion? (issue 12)

    python benchmarks/generate.py DATA --out RESULTS [--prior shipped] [--limit N] [--paraphrases N]
        [--scale-prompts N] [--consistency N] [--reference N] [--sections truth,combos,...]
        [--split train --per-motion N] [--steps N] [--guidance G] [--guidance-motion G]

DATA is a ``motion4d dataset synth`` folder (its held-out samples: combinations and caption templates the
prior never saw). Every asset is made exactly as ``motion4d text-to-4d`` makes it (the "default" preset: the
sampled grid, then the 4D-Rotor fit) and judged by the oracle of :mod:`motion4d.metrics.oracle`, which uses no
learned model. Sections:

- **truth** — the oracle's own accuracy: the held-out samples' ground-truth renders at the generation views
  (the same 4 views × 8 frames a generated grid has), fitted and judged the same way (must be ≥ 95 %);
- **combos** — held-out shape × colour × motion combinations, prompted with their training-template caption
  (target ≥ 80 % per attribute);
- **paraphrase** — the same combinations prompted with a held-out caption template;
- **scale** — ``motion_amplitude`` of the fitted asset at ``--motion-scale`` 0.5 / 1 / 2 (should increase);
- **consistency** — PSNR of the fit on its own grid, and on views the prior did not generate (45°, 135°,
  225° azimuth) against a second sample there, conditioned on the first grid's front view;
- **reference** — the prior alone: given view 0 of every frame ("video") or every view of frame 0
  ("static") of held-out samples, PSNR of the generated cells against their ground-truth renders;
- **seconds** — per asset, sampling and fit apart (target ≤ 5 min on a 2-core CPU).

``--split train`` judges training-split samples instead (``--per-motion N`` of each motion): that is where
sampling settings (``--steps``, ``--guidance``, ``--guidance-motion``) are chosen, never on the held-out ones.
Assets are reused by sample id whatever the settings, so give each setting its own ``--out``.

Assets are kept under ``RESULTS/assets/<section>/<id>`` and reused when the benchmark is run again (it can be
stopped and restarted). Prints tables; writes ``RESULTS/generate.json``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch
from _runner import write_json
from _truth import judged, truth_asset
from prior_quality import held_out_batch, psnr

from motion4d.data.synth_packed import SynthShards
from motion4d.data.synth_vocab import COLOURS, MOTIONS, SHAPES
from motion4d.metrics.image import psnr as image_psnr
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.run import RunFolder
from motion4d.pipelines.text_to_4d import GRID_FOLDER, PRESETS, TextTo4DPipeline
from motion4d.priors.conditioning import reference_mask
from motion4d.priors.sampling import sample_grid
from motion4d.render.frame import render_frame

ATTRIBUTES = {"shape": SHAPES, "colour": COLOURS, "motion": MOTIONS}
SECTIONS = ("truth", "combos", "paraphrase", "scale", "consistency", "reference")
SCALES = (0.5, 1.0, 2.0)
NOVEL_AZIMUTHS = (45.0, 135.0, 225.0)


def generated(pipe: TextTo4DPipeline, prompt: str, run: Path, config, motion_scale: float = 1.0) -> dict:
    """Make (or reuse) one asset with text-to-4d and judge it."""
    if not (run / "report.json").is_file():
        pipe(prompt, out=run, config=config, motion_scale=motion_scale, resume=run.exists(), video_frames=0)
    report = RunFolder(run).read_report()
    return {"prompt": prompt, "judged": judged(run), "psnr": report["psnr"], "motion_amplitude": report["motion_amplitude"],
            "seconds": report["seconds_per_stage"]}  # fmt: skip


def accuracy_table(title: str, rows: list[dict]) -> dict:
    """Per-attribute accuracy of ``rows`` (``truth`` and ``judged``), printed; returned as a dict."""
    out = {}
    for attr in ATTRIBUTES:
        ok = sum(r["judged"][attr] == r["truth"][attr] for r in rows)
        out[attr] = {"correct": ok, "n": len(rows), "accuracy": ok / max(len(rows), 1)}
    all_ok = sum(all(r["judged"][a] == r["truth"][a] for a in ATTRIBUTES) for r in rows)
    out["all"] = {"correct": all_ok, "n": len(rows), "accuracy": all_ok / max(len(rows), 1)}
    print(f"{title:<12}" + "".join(f"{a}: {out[a]['correct']:>2}/{out[a]['n']:<2} {100 * out[a]['accuracy']:5.1f} %   " for a in (*ATTRIBUTES, "all")))
    return out


def class_table(title: str, rows: list[dict], attr: str) -> dict:
    """Accuracy of ``attr`` per true class of ``rows``, with what the wrong ones were judged; printed."""
    out = {}
    for name in ATTRIBUTES[attr]:
        mine = [r for r in rows if r["truth"][attr] == name]
        if mine:
            wrong = collections.Counter(r["judged"][attr] for r in mine if r["judged"][attr] != name)
            out[name] = {"correct": len(mine) - sum(wrong.values()), "n": len(mine), "judged_instead": dict(wrong.most_common())}
    cells = [f"{k} {v['correct']}/{v['n']}" + (f" ({', '.join(f'{w}×{c}' for w, c in v['judged_instead'].items())})" if v["judged_instead"] else "")
             for k, v in out.items()]  # fmt: skip
    print(f"{title + ' ' + attr:<20}" + "; ".join(cells))
    return out


def judged_section(title: str, rows: list[dict]) -> dict:
    """A judged section's results: accuracy per attribute, per true shape and per true motion (all printed), and its rows."""
    return {"accuracy": accuracy_table(title, rows), "rows": rows, **{f"by_{a}": class_table(title, rows, a) for a in ("shape", "motion")}}


def print_row(r: dict) -> dict:
    """Print one judged asset (truth, then the oracle's verdict, ✗ where wrong); returns it."""
    mark = lambda a: r["judged"][a] + ("" if r["judged"][a] == r["truth"][a] else "✗")
    truth = " ".join(r["truth"][a] for a in ATTRIBUTES)
    print(f"  {r['id']:<7} {truth:<28} {' '.join(mark(a) for a in ATTRIBUTES):<32} {r['psnr']:5.1f} dB  {r.get('prompt', '')}", flush=True)
    return r


def consistency(pipe: TextTo4DPipeline, run: Path, config, seed: int) -> dict:
    """PSNR of the fit of ``run`` at views the prior did not generate, against a second sample there that is
    given the first grid's front view (all frames)."""
    from motion4d.data.transforms import load_transforms

    grid_set = load_transforms(run / GRID_FOLDER, "train")
    report = RunFolder(run).read_report()
    first = json.loads((run / GRID_FOLDER / "transforms_train.json").read_text())
    frames = sorted(first["frames"], key=lambda f: (f["view"], f["time"]))
    import imageio.v3 as iio

    rgba = torch.stack([torch.from_numpy(iio.imread(run / GRID_FOLDER / f"{f['file_path']}.png")) for f in frames]).float() / 255.0
    rgba = rgba.reshape(config.views, config.frames, *rgba.shape[1:])
    az = torch.tensor((0.0, *NOVEL_AZIMUTHS))
    reference = torch.zeros(len(az), *rgba.shape[1:])
    reference[0] = rgba[0]
    mask = reference_mask("video", len(az), config.frames)
    second = pipe.sample(report["prompt"], config, seed=seed + 1, azimuth_deg=az, reference=reference, reference_mask=mask)[0]
    model, _ = load_run_model(run)
    values = []
    with torch.no_grad():
        for v in range(1, len(az)):
            for f, t in enumerate(second.times.tolist()):
                out = render_frame(model.at_time(t), second.viewmats[v : v + 1], second.K[None], grid_set.width, grid_set.height,
                                   background=torch.ones(3))  # fmt: skip
                want = second.rgba[v, f, ..., :3] * second.rgba[v, f, ..., 3:] + (1 - second.rgba[v, f, ..., 3:])
                values.append(float(image_psnr(out.rgb[0], want)))
    return {"grid_psnr": report["psnr"], "novel_view_psnr": statistics.mean(values)}


def reference_section(pipe: TextTo4DPipeline, data: Path, n: int, config) -> dict:
    """The prior alone, given view 0 of every frame / every view of frame 0 of ``n`` held-out samples."""
    x0, cond = held_out_batch(data, n, config.views, config.frames, pipe.text_encoder)
    out = {}
    for kind in ("video", "static"):
        mask = reference_mask(kind, config.views, config.frames).expand(x0.shape[0], -1, -1).clone()
        c = dataclasses.replace(cond, reference_mask=mask)
        t0 = time.perf_counter()
        grid = sample_grid(pipe.denoiser, c, tuple(x0.shape[1:]), steps=config.steps, guidance=config.guidance_scales, seed=config.seed, progress=False)
        out[kind] = {"psnr": psnr(grid[~mask], x0[~mask]), "samples": int(x0.shape[0]), "seconds": time.perf_counter() - t0}
        print(f"reference {kind:<7} PSNR of the generated cells vs ground truth: {out[kind]['psnr']:.2f} dB ({x0.shape[0]} samples)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a `motion4d dataset synth` folder")
    ap.add_argument("--out", type=Path, required=True, help="results folder (generate.json, assets/)")
    ap.add_argument("--prior", default="shipped", help="prior: shipped, a folder or a train-prior run folder")
    ap.add_argument("--limit", type=int, default=0, help="held-out combinations judged in truth / combos (0: all)")
    ap.add_argument("--paraphrases", type=int, default=16, help="combinations also prompted with a held-out template")
    ap.add_argument("--scale-prompts", type=int, default=6, help="prompts generated at every motion scale")
    ap.add_argument("--consistency", type=int, default=6, help="assets checked at novel views")
    ap.add_argument("--reference", type=int, default=8, help="held-out samples for the reference-conditioning check")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    ap.add_argument("--preset", default="default", choices=list(PRESETS), help="text-to-4d preset (tiny: a smoke run)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--split", default="held_out", choices=("held_out", "train"),
                    help="whose samples: held_out (the measurement) or train (for choosing settings: tune there, never on held_out)")
    ap.add_argument("--per-motion", type=int, default=0, help="keep the first N samples of each motion (0: all; with --split train)")
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the preset's)")
    ap.add_argument("--guidance", type=float, default=None, help="text guidance (default: the preset's)")
    ap.add_argument("--guidance-motion", type=float, default=None, help="motion guidance (default: the preset's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"error: --sections: unknown {', '.join(unknown)} (choose from {', '.join(SECTIONS)})", file=sys.stderr)
        return 2
    shards = SynthShards(args.data, split=args.split)
    samples = [shards[i] for i in range(len(shards))]
    if args.per_motion:
        of_motion = {m: [s for s in samples if s.record["motion"] == m][: args.per_motion] for m in MOTIONS}
        samples = [s for m in MOTIONS for s in of_motion[m]]
    samples = samples[: args.limit or None]
    if not samples:
        print(f"error: {args.data}: no {args.split} samples", file=sys.stderr)
        return 2
    overrides = {k: getattr(args, k) for k in ("steps", "guidance", "guidance_motion") if getattr(args, k) is not None}
    config = dataclasses.replace(PRESETS[args.preset], **overrides)
    pipe = TextTo4DPipeline.from_pretrained(args.prior)
    assets = args.out / "assets"
    truth_of = lambda s: {a: s.record[a] for a in ATTRIBUTES}
    result: dict = {"data": str(args.data), "prior": args.prior, "config": config.to_dict(), "sections": {}}
    print(f"prior {args.prior}; {len(samples)} {args.split} samples of {args.data}" + (f"; {overrides}" if overrides else ""))

    if "truth" in sections:
        rows = [print_row({"id": s.record["id"], "truth": truth_of(s), **truth_asset(s, assets / "truth" / s.record["id"], config, shards.meta["fov_deg"])}) for s in samples]
        result["sections"]["truth"] = judged_section("truth", rows)
    combos = []
    if {"combos", "scale", "consistency"} & set(sections):
        for s in samples:
            row = generated(pipe, s.record["caption"], assets / "combos" / s.record["id"], config)
            combos.append(print_row({"id": s.record["id"], "truth": truth_of(s), **row}))
        result["sections"]["combos"] = judged_section("combos", combos)
    if "paraphrase" in sections:
        rows = [print_row({"id": s.record["id"], "truth": truth_of(s), **generated(pipe, s.record["paraphrase"], assets / "paraphrase" / s.record["id"], config)})
                for s in samples[: args.paraphrases]]  # fmt: skip
        result["sections"]["paraphrase"] = judged_section("paraphrase", rows)
    if "scale" in sections:
        rows = []
        for s, base in zip(samples[: args.scale_prompts], combos):
            amps = {}
            for scale in SCALES:
                run = assets / "combos" / s.record["id"] if scale == 1.0 else assets / f"scale_{scale:g}" / s.record["id"]
                amps[f"{scale:g}"] = generated(pipe, s.record["caption"], run, config, motion_scale=scale)["motion_amplitude"]
            rows.append({"id": s.record["id"], "prompt": s.record["caption"], "motion_amplitude": amps,
                         "increasing": amps["0.5"] < amps["1"] < amps["2"]})  # fmt: skip
        med = {k: statistics.median(r["motion_amplitude"][k] for r in rows) for k in rows[0]["motion_amplitude"]}
        inc = sum(r["increasing"] for r in rows)
        print("motion scale   " + "   ".join(f"{k}: {v:.3f}" for k, v in med.items()) + f"   (median motion_amplitude; increasing in {inc}/{len(rows)} prompts)")
        result["sections"]["scale"] = {"median_motion_amplitude": med, "increasing": inc, "n": len(rows), "rows": rows}
    if "consistency" in sections:
        rows = [{"id": r["id"], **consistency(pipe, assets / "combos" / r["id"], config, config.seed)} for r in combos[: args.consistency]]
        grid_psnr = statistics.median(r["grid_psnr"] for r in rows)
        novel = statistics.median(r["novel_view_psnr"] for r in rows)
        print(f"consistency    fit on its own grid {grid_psnr:.2f} dB; at novel views vs a second sample {novel:.2f} dB (medians, {len(rows)} assets)")
        result["sections"]["consistency"] = {"median_grid_psnr": grid_psnr, "median_novel_view_psnr": novel, "rows": rows}
    if "reference" in sections:
        result["sections"]["reference"] = reference_section(pipe, args.data, args.reference, config)
    if combos:
        stages = {k: statistics.median(r["seconds"][k] for r in combos) for k in ("sample", "fit", "total")}
        print(f"seconds        sample {stages['sample']:.0f} s, fit {stages['fit']:.0f} s, total {stages['total']:.0f} s per asset (medians)")
        result["sections"]["seconds"] = stages
    write_json(args.out / "generate.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
