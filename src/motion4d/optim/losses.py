"""Training losses: L1 on images (with :func:`motion4d.metrics.image.ssim` it makes the D-SSIM term) and the
silhouette chamfer distance between projected surface points and a mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

__all__ = ["SilhouetteTarget", "l1_loss", "silhouette_chamfer"]


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference (scalar) of two tensors of the same shape."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {list(pred.shape)} and {list(target.shape)}")
    return (pred - target).abs().mean()


@dataclass(frozen=True)
class SilhouetteTarget:
    """A mask prepared for :func:`silhouette_chamfer`: ``fg [H,W]`` bool and ``outside [H,W]``, each pixel
    centre's distance in pixels to the nearest foreground pixel centre (0 on the foreground)."""

    fg: Tensor
    outside: Tensor

    @classmethod
    def from_alpha(cls, alpha: Tensor, threshold: float = 0.5) -> "SilhouetteTarget":
        """From an alpha image ``[H,W]`` or ``[H,W,1]`` (foreground: alpha > ``threshold``)."""
        fg = (alpha.reshape(alpha.shape[0], alpha.shape[1]) > threshold).cpu()
        dist = ndimage.distance_transform_edt(~fg.numpy()) if bool(fg.any()) else np.full(tuple(fg.shape), 1e6)
        return cls(fg.to(alpha.device), torch.from_numpy(np.asarray(dist, dtype=np.float32)).to(alpha.device))


def silhouette_chamfer(points: Tensor, target: SilhouetteTarget, *, tolerance: float = 0.5) -> Tensor:
    """Symmetric 2-D chamfer distance (pixels) between projected surface points ``points [P,2]`` (uv, pixel
    centres at +0.5) and a mask's foreground pixels: the mean over points of the distance to the nearest
    foreground pixel, plus the mean over foreground pixels of the distance to the nearest point, each less
    ``tolerance`` (a point inside the mask, or a pixel with a point within half a pixel, costs nothing).

    The projection of all points of a closed surface is its silhouette, so this compares silhouettes with a
    gradient that reaches far beyond their outlines (a rendered-alpha loss only moves Gaussians on the
    outline). Linear in pixels and points: the first half samples the mask's distance transform
    (bilinearly, so it is differentiable); the second finds each foreground pixel's nearest point-occupied
    pixel with a distance transform of the points' occupancy (nearest up to the pixel grid). Returns 0
    when there are no points or no foreground.
    """
    H, W = target.fg.shape
    if points.shape[0] == 0 or not bool(target.fg.any()):
        return points.sum() * 0.0
    size = torch.tensor([W, H], dtype=points.dtype, device=points.device)
    inside = torch.minimum(torch.maximum(points, torch.full_like(size, 0.5)), size - 0.5)
    grid = (inside / size * 2 - 1)[None, None]  # align_corners=False: pixel centre i + 0.5 ↦ (2i + 1) / W − 1
    d = F.grid_sample(target.outside[None, None].to(points.dtype), grid, mode="bilinear", align_corners=False)[0, 0, 0]
    to_mask = ((d + (points - inside).norm(dim=-1)) - tolerance).clamp_min(0).mean()

    with torch.no_grad():  # nearest point of each foreground pixel, via the points' occupancy grid
        ij = points.detach().floor().long()
        ok = (ij[:, 0] >= 0) & (ij[:, 0] < W) & (ij[:, 1] >= 0) & (ij[:, 1] < H)
        occ = torch.full((H, W), -1, dtype=torch.long)
        ids = torch.nonzero(ok)[:, 0]
        occ[ij[ids, 1].cpu(), ij[ids, 0].cpu()] = ids.cpu()
        if ids.numel() == 0:
            return to_mask
        near = ndimage.distance_transform_edt(occ.numpy() < 0, return_distances=False, return_indices=True)
        fy, fx = torch.nonzero(target.fg.cpu(), as_tuple=True)
        nearest = occ[torch.from_numpy(near[0])[fy, fx], torch.from_numpy(near[1])[fy, fx]].to(points.device)
        pix = torch.stack([fx, fy], dim=1).to(points.device, points.dtype) + 0.5
    to_points = ((pix - points[nearest]).norm(dim=-1) - tolerance).clamp_min(0).mean()
    return to_mask + to_points
