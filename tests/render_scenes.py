"""Random Gaussian scenes and cameras shared by the rasterizer tests."""

from __future__ import annotations

import math

import torch

from motion4d.render.cameras import intrinsics_from_fov, look_at


def random_scene(n: int, *, seed: int = 0, dtype=torch.float32, sh_degree: int | None = None, d: int = 3,
                 scale_range=(0.05, 0.3)):
    """means [n,3] in [-1,1]³, random quats, log-uniform scales, opacities in [0.1,0.9], colors."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    means = torch.rand(n, 3, generator=g) * 2 - 1
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(torch.rand(n, 3, generator=g) * (hi - lo) + lo)
    opacities = torch.rand(n, generator=g) * 0.8 + 0.1
    if sh_degree is None:
        colors = torch.rand(n, d, generator=g)
    else:
        colors = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3
    return [t.to(dtype) for t in (means, quats, scales, opacities, colors)]


def cameras(width: int, height: int, n: int = 2, *, dtype=torch.float32, fov: float = 40.0):
    """n cameras ~4 units from the origin looking at it: viewmats [n,4,4], Ks [n,3,3]."""
    eyes = torch.tensor([[0.0, -4.0, 0.3], [3.0, -2.5, 1.0], [-2.0, 3.0, -1.5], [0.5, 0.5, 4.0]])[:n]
    viewmats = look_at(eyes, torch.zeros_like(eyes))
    Ks = intrinsics_from_fov(fov, width, height)[None].repeat(n, 1, 1)
    return viewmats.to(dtype), Ks.to(dtype)
