"""Embeddings of the prior's scalar conditions: timesteps, cameras, frame times, motion scale, patch positions,
and each patch's camera ray."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from motion4d.render.cameras import intrinsics_from_fov, spherical_viewmats


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


def patch_rays(azimuth_deg: Tensor, elevation_deg: Tensor, radius: Tensor, fov_deg: float, height: int, width: int,
               patch: int) -> Tensor:  # fmt: skip
    """Plücker coordinates ``(d, o × d)`` ``[B, V, N, 6]`` of the ray through each patch's centre (patches row-major,
    as :func:`patch_positions`), for cameras ``[B, V]`` in :func:`~motion4d.render.cameras.spherical_viewmats`'
    convention looking at the origin with a horizontal field of view ``fov_deg``: ``d`` the unit direction in
    the z-up world, ``o`` the camera centre."""
    b, v = azimuth_deg.shape
    view = spherical_viewmats(azimuth_deg.reshape(-1).float().cpu(), elevation_deg.reshape(-1).float().cpu(),
                              radius.reshape(-1).float().cpu())  # fmt: skip
    k = intrinsics_from_fov(fov_deg, width, height)
    ys, xs = torch.meshgrid(torch.arange(height // patch), torch.arange(width // patch), indexing="ij")
    pix = torch.stack([(xs.flatten() + 0.5) * patch, (ys.flatten() + 0.5) * patch, torch.ones(xs.numel())], -1)
    rot = view[:, :3, :3]  # world -> camera rows
    d = torch.nn.functional.normalize(torch.einsum("cji,nj->cni", rot, pix @ torch.linalg.inv(k).T), dim=-1)
    o = -(rot.transpose(1, 2) @ view[:, :3, 3:])[..., 0]
    m = torch.linalg.cross(o[:, None].expand_as(d), d, dim=-1)
    return torch.cat([d, m], dim=-1).reshape(b, v, -1, 6).to(azimuth_deg.device)


class RayEmbedding(nn.Module):
    """Each patch's camera ray (:func:`patch_rays`, the moment in units of ``reference_radius``) → ``[B, V, N, D]``,
    so that where a token looks in the world is an input rather than something to infer from the camera's
    angles. The last layer starts at zero: a model that gains this embedding computes what it did before."""

    def __init__(self, dim: int, harmonics: int = 4, reference_radius: float = 3.0) -> None:
        super().__init__()
        self.reference_radius = reference_radius
        self.fourier = FourierEmbedding(6, dim, harmonics)
        nn.init.zeros_(self.fourier.mlp[-1].weight)
        nn.init.zeros_(self.fourier.mlp[-1].bias)

    def forward(self, azimuth_deg: Tensor, elevation_deg: Tensor, radius: Tensor, fov_deg: float, height: int, width: int,
                patch: int) -> Tensor:  # fmt: skip
        rays = patch_rays(azimuth_deg, elevation_deg, radius, fov_deg, height, width, patch)
        scale = torch.tensor([1.0, 1.0, 1.0] + [1.0 / self.reference_radius] * 3, device=rays.device)
        return self.fourier(rays * scale)
