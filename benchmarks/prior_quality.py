"""Quality of a trained prior on a dataset's held-out samples, measured on the model directly.

    python benchmarks/prior_quality.py --model RUN/model --data DATA --out RESULTS [--n 8] [--steps 20]
    python benchmarks/prior_quality.py --model RUN --data DATA --out RESULTS   # a run's checkpoint, while it trains

- ``denoise_psnr``: PSNR (RGB over white) of the model's one-step clean-grid estimate at timesteps 250 / 500 /
  750, from the text and cameras alone (no reference cell): how well it denoises text → 4D grids;
- ``reference_psnr``: PSNR of the cells the model generates against their ground-truth renders, given view 0
  of every frame ("video") or every view of frame 0 ("static"), sampled with DPM-Solver++ (``--steps``);
- a contact sheet per kind (truth rows, then samples), and ``prior_quality.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import torch
from _runner import load_prior

from motion4d.data.synth_packed import SynthShards
from motion4d.priors.conditioning import Conditioning, reference_mask
from motion4d.priors.grid import contact_sheet, grid_to_rgba, rgba_to_grid
from motion4d.priors.sampling import GuidanceScales, sample_grid
from motion4d.priors.text_encoder import TextEncoder
from motion4d.priors.training import frame_indices


def over_white(grid: torch.Tensor) -> torch.Tensor:
    rgba = grid_to_rgba(grid)
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((over_white(a) - over_white(b)) ** 2).mean().clamp_min(1e-10)))


def clean_estimate(model, x_t: torch.Tensor, t: int, pred: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    a, s = abar[t].sqrt(), (1 - abar[t]).sqrt()
    kind = model.prediction_type
    if kind == "sample":
        return pred
    if kind == "epsilon":
        return (x_t - s * pred) / a
    return a * x_t - s * pred


def held_out_batch(data: Path, n: int, views: int, frames: int, text: TextEncoder) -> tuple[torch.Tensor, Conditioning]:
    ds = SynthShards(data, split="held_out")
    picks = [ds[i] for i in range(min(n, len(ds)))]
    ti = frame_indices(picks[0].images.shape[1], frames)
    x0 = torch.stack([rgba_to_grid(s.images[:views][:, ti]) for s in picks])
    emb = text.encode([s.record["caption"] for s in picks])
    cam = lambda key: torch.stack([getattr(s, key)[:views] for s in picks])  # noqa: E731
    cond = Conditioning.create(emb, cam("azimuth_deg"), cam("elevation_deg"), cam("radius"), picks[0].times[ti],
                               reference=x0, reference_mask=reference_mask("none", views, frames))  # fmt: skip
    return x0, cond


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_prior(args.model)
    text = TextEncoder.from_pretrained(model.config.text_encoder)
    x0, cond = held_out_batch(args.data, args.n, args.views, args.frames, text)
    from diffusers import DDPMScheduler

    abar = DDPMScheduler.from_config(model.scheduler_config).alphas_cumprod
    result: dict = {"model": str(args.model), "samples": x0.shape[0], "denoise_psnr": {}, "reference_psnr": {}, "seconds": {}}
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for t in (250, 500, 750):
            noise = torch.randn(x0.shape, generator=g)
            x_t = abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * noise
            pred = model(x_t, torch.full((x0.shape[0],), t), cond)
            result["denoise_psnr"][str(t)] = psnr(clean_estimate(model, x_t, t, pred, abar), x0)
    for kind in ("none", "video", "static"):
        mask = reference_mask(kind, args.views, args.frames).expand(x0.shape[0], -1, -1)
        c = replace(cond, reference_mask=mask.clone())
        t0 = time.perf_counter()
        out = sample_grid(model, c, tuple(x0.shape[1:]), steps=args.steps, guidance=GuidanceScales(), seed=args.seed, progress=False)
        result["seconds"][kind] = time.perf_counter() - t0
        free = ~mask
        if kind != "none":
            result["reference_psnr"][kind] = psnr(out[free], x0[free])
        sheet = contact_sheet(grid_to_rgba(torch.stack([x0, out], 1).flatten(0, 1)))
        iio.imwrite(args.out / f"sheet_{kind}.png", sheet.numpy())
    (args.out / "prior_quality.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
