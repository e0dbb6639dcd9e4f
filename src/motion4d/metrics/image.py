"""Image metrics: SSIM and PSNR on ``[B,H,W,C]`` or ``[H,W,C]`` images in [0,1] (differentiable).

SSIM follows 3DGS / ``pytorch_msssim``: an 11×11 Gaussian window (σ = 1.5), C1 = 0.01², C2 = 0.03²
(data range 1), the SSIM map averaged. ``padding="same"`` (the default) zero-pads the filtered statistics
to the image size as 3DGS's ``ssim`` (used for its loss and its reported metrics) does; ``padding="valid"``
keeps only windows fully inside the image, as ``pytorch_msssim`` and torchmetrics do.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_window", "psnr", "ssim"]

Reduction = Literal["mean", "none"]


def _as_batch(img1: Tensor, img2: Tensor) -> tuple[Tensor, Tensor, bool]:
    """Check two images of the same shape [B,H,W,C] or [H,W,C]; return them as [B,H,W,C] and whether batched."""
    if img1.shape != img2.shape:
        raise ValueError(f"images must have the same shape, got {list(img1.shape)} and {list(img2.shape)}")
    if img1.dim() == 3:
        return img1[None], img2[None], False
    if img1.dim() == 4:
        return img1, img2, True
    raise ValueError(f"images must have shape [B,H,W,C] or [H,W,C], got {list(img1.shape)}")


def _reduce(per_image: Tensor, batched: bool, reduction: Reduction) -> Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "none":
        return per_image if batched else per_image[0]
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def gaussian_window(size: int = 11, sigma: float = 1.5, *, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """Normalised 1D Gaussian [size] centred on the middle tap; the 2D window is its outer product."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _filter(x: Tensor, g: Tensor, pad: int) -> Tensor:
    """Separable Gaussian filter of every plane of ``x [N,H,W]`` with ``g [k]``, zero padding ``pad`` per side.

    Returns [N,H',W'] (H' = H + 2·pad − k + 1). The planes are the channels of one depthwise conv per axis
    (on CPU, depthwise convs run forward and backward far faster than single-channel ones).
    """
    N, k = x.shape[0], g.numel()
    x = F.conv2d(x[None], g.view(1, 1, 1, k).expand(N, 1, 1, k), padding=(0, pad), groups=N)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(N, 1, k, 1), padding=(pad, 0), groups=N)[0]


def ssim(
    img1: Tensor,
    img2: Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    padding: Literal["same", "valid"] = "same",
    reduction: Reduction = "mean",
) -> Tensor:
    """Structural similarity of ``img1`` and ``img2``, each [B,H,W,C] or [H,W,C] in [0,1]; differentiable.

    Returns the mean of the SSIM map (over pixels, channels and images) as a scalar, or with
    ``reduction="none"`` one value per image ([B], or a scalar for [H,W,C] inputs). ``padding`` is
    explained in the module docstring; "valid" needs H, W ≥ ``window_size``.
    """
    x, y, batched = _as_batch(img1, img2)
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd int, got {window_size}")
    if padding == "same":
        pad = window_size // 2
    elif padding == "valid":
        pad = 0
        if min(x.shape[1:3]) < window_size:
            raise ValueError(f"valid SSIM needs images of at least {window_size}x{window_size}, got {list(img1.shape)}")
    else:
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    B, H, W, C = x.shape
    g = gaussian_window(window_size, sigma, dtype=x.dtype, device=x.device)
    planes = torch.stack([x, y, x * x, y * y, x * y]).permute(0, 1, 4, 2, 3).reshape(5 * B * C, H, W)
    stats = _filter(planes, g, pad).reshape(5, B, C, -1)  # filtered x, y, x², y², xy per pixel
    mu_x, mu_y, e_xx, e_yy, e_xy = stats
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x, var_y, cov = e_xx - mu_xx, e_yy - mu_yy, e_xy - mu_xy
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_xy + c1) * (2 * cov + c2)) / ((mu_xx + mu_yy + c1) * (var_x + var_y + c2))
    return _reduce(ssim_map.flatten(1).mean(1), batched, reduction)


def psnr(img1: Tensor, img2: Tensor, *, reduction: Reduction = "mean", max_db: float = 100.0) -> Tensor:
    """Peak signal-to-noise ratio in dB (data range 1) of images [B,H,W,C] or [H,W,C].

    Computed per image, ``-10·log10(MSE)``, capped at ``max_db`` for identical images; ``reduction="mean"``
    averages the per-image values.
    """
    x, y, batched = _as_batch(img1, img2)
    mse = (x - y).pow(2).flatten(1).mean(1)
    per_image = -10.0 * torch.log10(mse.clamp_min(10.0 ** (-max_db / 10.0)))
    return _reduce(per_image, batched, reduction)
