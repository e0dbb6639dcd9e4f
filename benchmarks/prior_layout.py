"""Does the prior know where the object is in each frame before it sees any of it? Layout at high noise.

    python benchmarks/prior_layout.py DATA --prior RUN_OR_MODEL [--split train] [--per-motion 6] [--raw] [--json OUT]

For samples of the motions whose object moves across the image (sliding: along x; bouncing and jumping: along
y), the model's one-step clean-grid (x0) prediction from the noisy ground truth at timesteps 999 (pure noise:
the text, cameras and frame times alone), 950 and 900 is compared with the truth through the alpha-weighted
centroid of every cell: R² = 1 − Σ(pred − truth)² / Σ(truth − its mean over the frames)², per motion and over
all. Two modes: ``text`` (nothing given; view 0, the front camera, is scored) and ``video`` (view 0 of every
frame given; views 1–3 are scored, both image axes, since sliding moves along another one there). An R² near 0
at t = 999 means the sampler's first steps put the object nowhere in particular, and the frames then pick
their positions from the noise, independently: the flicker of an undertrained prior. ``--raw`` scores a run's
raw weights instead of its EMA ones (the EMA lags a recent change by about 1 / (1 − decay) steps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from _runner import load_prior, write_json
from diffusers import DDPMScheduler

from motion4d.data.synth_packed import SynthShards
from motion4d.priors.conditioning import Conditioning, reference_mask
from motion4d.priors.grid import rgba_to_grid
from motion4d.priors.text_encoder import TextEncoder
from motion4d.priors.training import frame_indices

AXIS = {"sliding": 0, "bouncing": 1, "jumping": 1}
"""The image axis (0: x, 1: y) along which each scored motion moves the object as seen from the front."""
TIMESTEPS = (999, 950, 900)


def centroids(grid: torch.Tensor) -> torch.Tensor:
    """Alpha-weighted centroids ``[..., 2]`` (x, y in pixels) of grid cells ``[..., 4, H, W]``."""
    a = ((grid[..., 3, :, :] + 1) / 2).clamp(0, 1)
    ys, xs = torch.meshgrid(torch.arange(a.shape[-2]).float(), torch.arange(a.shape[-1]).float(), indexing="ij")
    m = a.sum((-1, -2)).clamp_min(1e-3)
    return torch.stack([(a * xs).sum((-1, -2)) / m, (a * ys).sum((-1, -2)) / m], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a `motion4d dataset synth` folder")
    ap.add_argument("--prior", type=Path, required=True, help="a train-prior run folder (its checkpoint) or a model folder")
    ap.add_argument("--split", default="train", choices=["train", "held_out"])
    ap.add_argument("--per-motion", type=int, default=6, help="samples per scored motion")
    ap.add_argument("--raw", action="store_true", help="a run's raw weights, not its EMA ones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    model = load_prior(args.prior, raw=args.raw)
    data = SynthShards(args.data, split=args.split)
    text = TextEncoder.from_pretrained(model.config.text_encoder)
    sched = DDPMScheduler.from_config(model.scheduler_config)
    picks: dict[str, list[int]] = {m: [] for m in AXIS}
    for i in range(len(data)):
        m = data[i].record["motion"]
        if m in picks and len(picks[m]) < args.per_motion:
            picks[m].append(i)
    g = torch.Generator().manual_seed(args.seed)
    r = model.config.sample_size
    rows = []
    for mode in ("text", "video"):
        for t in TIMESTEPS:
            row = {"mode": mode, "t": t}
            total = [0.0, 0.0]
            for motion, ids in picks.items():
                err = spread = 0.0
                for i in ids:
                    s = data[i]
                    vi, ti = torch.arange(4), frame_indices(s.images.shape[1], 8)
                    x0 = rgba_to_grid(s.images[vi][:, ti])
                    if x0.shape[-1] != r:
                        x0 = F.interpolate(x0.flatten(0, 1), size=r, mode="area").unflatten(0, x0.shape[:2])
                    x0 = x0[None]
                    video = mode == "video"
                    cond = Conditioning.create(text.encode([s.record["caption"]]), s.azimuth_deg[vi], s.elevation_deg[vi],
                                               s.radius[vi], s.times[ti], reference=x0 if video else None,
                                               reference_mask=reference_mask("video", 4, 8) if video else None)  # fmt: skip
                    x_t = cond.apply_reference(sched.add_noise(x0, torch.randn(x0.shape, generator=g), torch.tensor([t])))
                    with torch.no_grad():
                        pred = model(x_t, torch.tensor([t]), cond)
                    for v in ([1, 2, 3] if video else [0]):
                        truth, got = centroids(x0[0, v]), centroids(pred[0, v])
                        if not video:
                            truth, got = truth[:, AXIS[motion]], got[:, AXIS[motion]]
                        err += float(((got - truth) ** 2).sum())
                        spread += float(((truth - truth.mean(0)) ** 2).sum())
                row[motion] = 1.0 - err / max(spread, 1e-9)
                total[0] += err
                total[1] += spread
            row["all"] = 1.0 - total[0] / max(total[1], 1e-9)
            rows.append(row)
    print(f"layout R² of {args.prior} ({'raw' if args.raw else 'EMA'} weights), {args.split} split, {args.per_motion} samples per motion")
    print(f"{'mode':6s} {'t':>4s} " + " ".join(f"{k:>9s}" for k in [*AXIS, "all"]))
    for row in rows:
        print(f"{row['mode']:6s} {row['t']:4d} " + " ".join(f"{row[k]:+9.3f}" for k in [*AXIS, "all"]))
    if args.json:
        write_json(args.json, {"prior": str(args.prior), "raw": args.raw, "split": args.split, "per_motion": args.per_motion, "rows": rows})


if __name__ == "__main__":
    main()
