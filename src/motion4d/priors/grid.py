"""Multi-view video images ↔ the prior's pixel-space grids, and contact sheets of grids.

A pixel-space grid holds premultiplied RGBA in [-1, 1], channels first: ``[..., 4, H, W]``
(premultiplied so that the colour of empty background is defined: black, alpha 0).
"""

from __future__ import annotations

import torch
from torch import Tensor


def rgba_to_grid(images: Tensor) -> Tensor:
    """Straight RGBA images ``[..., H, W, 4]`` (uint8, or float in [0, 1]) → grid cells ``[..., 4, H, W]``."""
    if images.shape[-1] != 4:
        raise ValueError(f"images must be RGBA [..., H, W, 4], got {list(images.shape)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    rgb, alpha = x[..., :3] * x[..., 3:], x[..., 3:]
    return (torch.cat([rgb, alpha], dim=-1) * 2.0 - 1.0).movedim(-1, -3)


def grid_to_rgba(grid: Tensor) -> Tensor:
    """Grid cells ``[..., 4, H, W]`` → straight RGBA ``[..., H, W, 4]`` float in [0, 1] (the inverse of
    :func:`rgba_to_grid`, clamped; colour where alpha is ~0 is black)."""
    x = ((grid.float().movedim(-3, -1) + 1.0) / 2.0).clamp(0.0, 1.0)
    alpha = x[..., 3:]
    rgb = torch.where(alpha > 1e-3, (x[..., :3] / alpha.clamp_min(1e-3)).clamp(0.0, 1.0), torch.zeros_like(x[..., :3]))
    return torch.cat([rgb, alpha], dim=-1)


def contact_sheet(rgba: Tensor, background: float = 1.0, gap: int = 2) -> Tensor:
    """Grids ``[B, V, T, H, W, 4]`` (straight RGBA in [0, 1]) → one uint8 RGB image ``[rows, cols, 3]``:
    one row per view of each sample (samples stacked), frames left to right, over a ``background`` grey."""
    b, v, t, h, w, _ = rgba.shape
    rgb = rgba[..., :3] * rgba[..., 3:] + background * (1.0 - rgba[..., 3:])
    sheet = torch.full((b * v * (h + gap) + gap, t * (w + gap) + gap, 3), 0.5)
    for i in range(b * v):
        for j in range(t):
            y, x = gap + i * (h + gap), gap + j * (w + gap)
            sheet[y : y + h, x : x + w] = rgb.reshape(b * v, t, h, w, 3)[i, j]
    return (sheet * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
