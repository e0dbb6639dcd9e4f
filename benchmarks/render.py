"""Rasterizer speed and memory on the standard scene; prints a table and writes JSON.

Standard scene: means uniform in [-1,1]³, one camera 4 units away looking at the origin, 40° field
of view, scales log-uniform in [0.005, 0.03], random quaternions, opacities uniform in [0.1, 0.9],
random RGB, black background.

Each (N, resolution) runs in a fresh subprocess so its peak resident memory is its own. Beside each
time is a floor: the larger of (bytes that must move / measured memory bandwidth) and (arithmetic /
measured float32 matmul rate), counting only the Gaussian–pixel pairs inside the opacity-aware boxes.

    python benchmarks/render.py [--sizes 128,256,512] [--counts 1000,10000,100000] [--backend numba]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Arithmetic per Gaussian–pixel pair: σ (8), α with exp (≈20), compositing (4 + 2 per channel);
# the backward recomputes all of it and adds ≈ 25 + 4 per channel.
FLOPS_PER_PAIR_FWD = 32 + 2 * 3
FLOPS_PER_PAIR_BWD = FLOPS_PER_PAIR_FWD + 25 + 4 * 3


def standard_scene(n: int, size: int, seed: int = 0):
    import torch

    from motion4d.render.cameras import intrinsics_from_fov, look_at

    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * 2 - 1
    quats = torch.randn(n, 4, generator=g)
    lo, hi = math.log(0.005), math.log(0.03)
    scales = torch.exp(torch.rand(n, 3, generator=g) * (hi - lo) + lo)
    opacities = torch.rand(n, generator=g) * 0.8 + 0.1
    colors = torch.rand(n, 3, generator=g)
    viewmats = look_at(torch.tensor([[0.0, -4.0, 0.0]]), torch.zeros(1, 3))
    Ks = intrinsics_from_fov(40.0, size, size)[None]
    return (means, quats, scales, opacities, colors), viewmats, Ks


def _median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure_machine() -> dict:
    """Memory bandwidth (copy of 256 MiB, read + write) and float32 matmul rate."""
    import torch

    src = torch.empty(64 * 1024 * 1024, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    t_copy = _median_seconds(lambda: dst.copy_(src), 5)
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    t_mm = _median_seconds(lambda: a @ b, 5)
    return {"bandwidth_GBps": 2 * src.numel() * 4 / t_copy / 1e9, "matmul_GFLOPs": 2 * 1024**3 / t_mm / 1e9}


class _PeakRSS:
    """Samples this process's resident memory every millisecond; ``peak_mib`` is above the start."""

    def __init__(self):
        import threading

        self._stop = threading.Event()
        self.base = self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def run_one(n: int, size: int, backend: str, repeats: int) -> dict:
    """Time one configuration in this process (called in a subprocess by main)."""
    import torch

    from motion4d.render import rasterization

    params, viewmats, Ks = standard_scene(n, size)
    ps = [p.clone().requires_grad_() for p in params]

    def forward():
        with torch.no_grad():
            return rasterization(*ps, viewmats, Ks, size, size, backend=backend)

    def forward_backward():
        out, _, _ = rasterization(*ps, viewmats, Ks, size, size, backend=backend)
        out.sum().backward()

    forward_backward()  # compile / warm up before the memory baseline
    with _PeakRSS() as mem:
        t_fwd = _median_seconds(forward, repeats)
        t_fb = _median_seconds(forward_backward, repeats)
    peak_mib = mem.peak_mib

    _, _, meta = forward()
    r = meta["radii"][0].long()
    m = meta["means2d"][0]
    x0 = torch.ceil(m[:, 0] - r[:, 0] - 0.5).clamp(0, size)
    x1 = (torch.floor(m[:, 0] + r[:, 0] - 0.5) + 1).clamp(0, size)
    y0 = torch.ceil(m[:, 1] - r[:, 1] - 0.5).clamp(0, size)
    y1 = (torch.floor(m[:, 1] + r[:, 1] - 0.5) + 1).clamp(0, size)
    visible = (r > 0).any(-1)
    pairs = int(((x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0))[visible].sum())
    return {"n": n, "size": size, "backend": backend, "fwd_ms": t_fwd * 1e3, "fwd_bwd_ms": t_fb * 1e3,
            "peak_mib": peak_mib, "box_pairs": pairs, "visible": int(visible.sum())}


def floors(row: dict, machine: dict) -> dict:
    """Lower bounds in ms: bytes that must move / bandwidth, arithmetic / matmul rate."""
    n, px = row["n"], row["size"] ** 2
    bytes_fwd = n * (14 * 4) + px * 4 * 4  # Gaussian parameters in, image (RGB + alpha) out
    bytes_bwd = bytes_fwd + n * 14 * 4 + px * 4 * 4  # gradients out, image gradients in
    bw = machine["bandwidth_GBps"] * 1e9
    rate = machine["matmul_GFLOPs"] * 1e9
    return {
        "fwd_floor_ms": 1e3 * max(bytes_fwd / bw, row["box_pairs"] * FLOPS_PER_PAIR_FWD / rate),
        "fwd_bwd_floor_ms": 1e3 * max(bytes_bwd / bw, row["box_pairs"] * FLOPS_PER_PAIR_BWD / rate),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="128,256,512")
    ap.add_argument("--counts", default="1000,10000,100000")
    ap.add_argument("--backend", default="numba", help="numba, torch or gsplat (CUDA)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/results/render.json")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # "N,SIZE": child-process mode
    args = ap.parse_args(argv)

    if args.one:
        n, size = map(int, args.one.split(","))
        print(json.dumps(run_one(n, size, args.backend, args.repeats)))
        return 0

    import torch

    machine = measure_machine()
    machine.update(threads=torch.get_num_threads(), cpu_count=os.cpu_count(), torch=torch.__version__)
    rows = []
    header = f"{'N':>7} {'res':>5} {'fwd ms':>8} {'floor':>6} {'fwd+bwd ms':>10} {'floor':>6} {'peak MiB':>8} {'box pairs':>10}"
    print(f"backend={args.backend}  bandwidth {machine['bandwidth_GBps']:.1f} GB/s  matmul {machine['matmul_GFLOPs']:.0f} GFLOP/s")
    print(header)
    for size in map(int, args.sizes.split(",")):
        for n in map(int, args.counts.split(",")):
            cmd = [sys.executable, __file__, "--one", f"{n},{size}", "--backend", args.backend, "--repeats", str(args.repeats)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(f"{n:>7} {size:>5}  failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}")
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row.update(floors(row, machine))
            rows.append(row)
            print(f"{n:>7} {size:>5} {row['fwd_ms']:>8.1f} {row['fwd_floor_ms']:>6.1f} {row['fwd_bwd_ms']:>10.1f} "
                  f"{row['fwd_bwd_floor_ms']:>6.1f} {row['peak_mib']:>8.0f} {row['box_pairs']:>10}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
