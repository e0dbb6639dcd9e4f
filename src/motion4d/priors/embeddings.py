"""Embeddings of the prior's scalar conditions: timesteps, cameras, frame times, motion scale, patch positions."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal(x: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features of ``x [...]`` → ``[..., dim]`` (cosines then sines, geometric frequencies)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def patch_positions(rows: int, cols: int, dim: int) -> Tensor:
    """Fixed 2D sin-cos embedding ``[rows * cols, dim]`` of a patch grid (half the width per axis), row-major."""
    if dim % 4:
        raise ValueError(f"width {dim} must be divisible by 4 for 2D position embeddings")
    y, x = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.cat([sinusoidal(y.flatten(), dim // 2, 100.0), sinusoidal(x.flatten(), dim // 2, 100.0)], dim=-1)


def mlp(n_in: int, dim: int) -> nn.Sequential:
    """The two-layer SiLU MLP every condition goes through into the model's width."""
    return nn.Sequential(nn.Linear(n_in, dim), nn.SiLU(), nn.Linear(dim, dim))


class TimestepEmbedding(nn.Module):
    """Diffusion timestep ``[B]`` (0 … num_train_timesteps) → ``[B, D]``."""

    def __init__(self, dim: int, features: int = 256) -> None:
        super().__init__()
        self.features = features
        self.mlp = mlp(features, dim)

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(sinusoidal(t, self.features))


class FourierEmbedding(nn.Module):
    """Small real inputs ``[..., K]`` (angles in radians, times in [0, 1], scales) → ``[..., D]`` through
    ``sin / cos`` of integer multiples 1 … ``harmonics`` (periodic in 2π: angles wrap), plus the raw values."""

    def __init__(self, n_in: int, dim: int, harmonics: int = 6) -> None:
        super().__init__()
        self.register_buffer("k", torch.arange(1, harmonics + 1, dtype=torch.float32), persistent=False)
        self.mlp = mlp(n_in * (2 * harmonics + 1), dim)

    def forward(self, x: Tensor) -> Tensor:
        args = x[..., None] * self.k
        return self.mlp(torch.cat([x, torch.sin(args).flatten(-2), torch.cos(args).flatten(-2)], dim=-1))


class CameraEmbedding(nn.Module):
    """Per-view camera ``azimuth_deg, elevation_deg, radius [B, V]`` → ``[B, V, D]`` (any angle, azimuth wraps)."""

    def __init__(self, dim: int, harmonics: int = 6, reference_radius: float = 4.0) -> None:
        super().__init__()
        self.reference_radius = reference_radius
        self.fourier = FourierEmbedding(3, dim, harmonics)

    def forward(self, azimuth_deg: Tensor, elevation_deg: Tensor, radius: Tensor) -> Tensor:
        log_r = torch.log(radius.float().clamp_min(1e-3) / self.reference_radius)
        return self.fourier(torch.stack([torch.deg2rad(azimuth_deg.float()), torch.deg2rad(elevation_deg.float()), log_r], -1))
