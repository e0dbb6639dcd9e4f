"""The activations between stored (raw) Gaussian parameters and the values a renderer uses.

Each activation and its inverse are defined here once; every representation and every densification
step goes through these functions, so changing one (e.g. softplus scales) changes it everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814
"""Degree-0 real SH basis constant: colour = SH_C0 · sh0 + 0.5."""


def scale_activation(log_scales: Tensor) -> Tensor:
    """Standard deviations [..., 3] from stored ``log_scales`` [..., 3]."""
    return torch.exp(log_scales)


def scale_inverse(scales: Tensor) -> Tensor:
    """Stored ``log_scales`` [..., 3] from standard deviations [..., 3] (must be > 0)."""
    return torch.log(scales)


def opacity_activation(opacity_logits: Tensor) -> Tensor:
    """Opacities in (0, 1) [...] from stored logits [...]."""
    return torch.sigmoid(opacity_logits)


def opacity_inverse(opacities: Tensor, eps: float = 1e-6) -> Tensor:
    """Stored logits [...] from opacities [...] (clamped to [eps, 1-eps])."""
    return torch.logit(opacities.clamp(eps, 1.0 - eps))


def rgb_to_sh0(rgb: Tensor) -> Tensor:
    """DC SH coefficients [..., 3] that render as colour ``rgb`` [..., 3] (in [0, 1])."""
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_sh0`: view-independent colour [..., 3] of DC coefficients [..., 3]."""
    return sh0 * SH_C0 + 0.5


def num_sh_bases(degree: int) -> int:
    """Number of SH coefficients K = (degree + 1)² for an SH degree in 0..3."""
    if not isinstance(degree, int) or not 0 <= degree <= 3:
        raise ValueError(f"sh_degree must be an int in 0..3, got {degree!r}")
    return (degree + 1) ** 2
