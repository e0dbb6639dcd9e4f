"""Seconds per AdamW training step of the prior's transformer, by size (the measurements behind its shape).

    python benchmarks/prior_step_time.py --configs 64:8:192:8 16:2:192:8:4 --batch 8 --out RESULTS

Each config is ``res:patch:width:depth[:channels]`` (square images of ``res`` pixels — or latent cells —
cut into ``patch``² patches). The median over ``--steps`` timed steps (after one warm-up) is reported, with the
parameter count and the tokens per sample; the machine may be shared, so take the median of several runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from motion4d.priors.conditioning import Conditioning
from motion4d.priors.mvvideo import MultiViewVideoTransformer


def random_conditioning(b: int, v: int, t: int, text_len: int = 12, text_dim: int = 384) -> Conditioning:
    return Conditioning(
        text_tokens=torch.randn(b, text_len, text_dim),
        text_mask=torch.ones(b, text_len, dtype=torch.bool),
        text_pooled=torch.randn(b, text_dim),
        azimuth_deg=torch.rand(b, v) * 360,
        elevation_deg=torch.rand(b, v) * 30,
        radius=torch.full((b, v), 4.0),
        times=torch.linspace(0, 1, t).expand(b, t),
        motion_scale=torch.ones(b),
    )


def step_time(res: int, patch: int, width: int, depth: int, channels: int, *, batch: int, views: int, frames: int, steps: int,
              bf16: bool = False) -> dict:
    model = MultiViewVideoTransformer(in_channels=channels, patch_size=patch, width=width, depth=depth, heads=max(width // 32, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, views, frames, channels, res, res)
    cond = random_conditioning(batch, views, frames)
    times, cpu = [], []
    for i in range(steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, torch.randint(0, 1000, (batch,)), cond)
        loss = (out.float() - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {
        "res": res, "patch": patch, "width": width, "depth": depth, "channels": channels,
        "params": sum(p.numel() for p in model.parameters()),
        "tokens_per_sample": views * frames * (res // patch) ** 2,
        "batch": batch, "bf16": bf16, "threads": torch.get_num_threads(),
        "s_per_step": statistics.median(times), "s_min": min(times), "cpu_s_per_step": statistics.median(cpu),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["32:4:128:4", "64:8:192:8", "16:2:192:8:4"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (AMX on recent Xeons)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for spec in args.configs:
        res, patch, width, depth, *rest = (int(s) for s in spec.split(":"))
        row = step_time(res, patch, width, depth, rest[0] if rest else 4, batch=args.batch, views=args.views, frames=args.frames, steps=args.steps,
                        bf16=args.bf16)
        rows.append(row)
        print(f"{spec:>16}  {row['params'] / 1e6:6.2f} M params  {row['tokens_per_sample']:5d} tokens  "
              f"{row['s_per_step']:6.2f} s/step (min {row['s_min']:.2f}, CPU {row['cpu_s_per_step']:.2f} s)", flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "prior_step_time.jsonl", "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
