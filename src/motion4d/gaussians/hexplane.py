"""HexPlane: a multi-resolution space-time feature field (K-Planes / 4DGaussians, Wu et al. CVPR 2024).

Six feature planes per resolution level — space planes xy, xz, yz and time planes xt, yt, zt — are
sampled bilinearly at a point (x, y, z, t); the six samples are multiplied channel-wise and the levels
concatenated, so the field maps ``xyz [N,3]``, ``t`` to ``features [N, F·L]`` (F channels, L levels).

Layout (one entry per level l, resolution R_l = base_resolution · multires[l], T = time_resolution):

- ``space[l] [3,F,R_l,R_l]``: planes (x,y), (x,z), (y,z); for plane (a,b) the first coordinate a runs
  along the last (width) axis and b along the height axis, as ``grid_sample``'s (x, y) grid order;
- ``time[l] [3,F,T,R_l]``: planes (x,t), (y,t), (z,t); the spatial coordinate along the width axis,
  time along the height axis.

Samples use ``align_corners=True`` and border padding (4DGaussians' choice): points outside the
bounding box or times outside ``time_range`` read the border values. Lookups run through
``grid_sample`` (any device; the reference) or, for CPU float32, fused numba kernels
(:mod:`motion4d.gaussians._hexplane_numba`), chosen by ``HexPlaneConfig.backend``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:
    from motion4d.gaussians._hexplane_numba import hexplane_level as _numba_level
except ImportError:  # numba missing: grid_sample only
    _numba_level = None

SPACE_PAIRS = ((0, 1), (0, 2), (1, 2))
"""Coordinate pairs (width axis, height axis) of the space planes xy, xz, yz."""
TIME_PAIRS = ((0, 3), (1, 3), (2, 3))
"""Coordinate pairs (width axis, height axis) of the time planes xt, yt, zt (3 = time)."""


@dataclass(frozen=True)
class HexPlaneConfig:
    """Sizes of the HexPlane field and of the deformation MLP that reads it.

    Defaults are sized for a 2-core CPU: the deformation of 20k Gaussians, forward and backward,
    takes tens of milliseconds.
    """

    feature_dim: int = 16
    """Channels F of every plane; the field outputs ``F · len(multires)`` features per point."""
    base_resolution: int = 32
    """Grid points per spatial axis (across the bounding box) at the coarsest level."""
    multires: tuple[int, ...] = (1, 2)
    """Spatial resolution multipliers, one level each; levels' features are concatenated."""
    time_resolution: int = 25
    """Grid points along time (the same at every level, as 4DGaussians)."""
    time_range: tuple[float, float] = (0.0, 1.0)
    """Times mapped onto the first and last time grid points; times outside read the border."""
    aabb: tuple[float, float, float, float, float, float] | None = None
    """Bounding box (xmin, ymin, zmin, xmax, ymax, zmax) the space coordinates are normalised into;
    None: the canonical means' box grown by ``aabb_padding`` (or the box the caller passes)."""
    aabb_padding: float = 0.1
    """When the box comes from the means, it is grown by this fraction of its size on each side."""
    init_range: tuple[float, float] = (0.1, 0.5)
    """Space planes start uniform in this range (4DGaussians / K-Planes)."""
    time_init_range: tuple[float, float] = (1.0, 1.0)
    """Time planes start uniform in this range; the default 1 makes them multiplicatively neutral, so
    features do not depend on t until the time planes have been trained (4DGaussians)."""
    mlp_width: int = 64
    """Hidden width W of the shared feature MLP and of every head."""
    mlp_depth: int = 1
    """Linear layers in the shared feature MLP (features → W, then ReLU-Linear(W, W) for the rest)."""
    deform_opacity: bool = False
    """Also predict a change of the opacity logits (off in 4DGaussians' defaults)."""
    backend: str = "auto"
    """Plane lookups: "torch" (``grid_sample``, any device, the reference), "numba" (fused CPU kernels,
    float32), or "auto" (numba for CPU float32 tensors when numba is installed, else torch)."""

    def __post_init__(self) -> None:
        ints = {"feature_dim": self.feature_dim, "base_resolution": self.base_resolution,
                "time_resolution": self.time_resolution, "mlp_width": self.mlp_width, "mlp_depth": self.mlp_depth}
        for name, v in ints.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"HexPlaneConfig.{name} must be a positive int, got {v!r}")
        if self.base_resolution < 2 or self.time_resolution < 2:
            raise ValueError("HexPlaneConfig resolutions must be >= 2 grid points")
        if not self.multires or any(not isinstance(m, int) or m < 1 for m in self.multires):
            raise ValueError(f"HexPlaneConfig.multires must be positive ints, got {self.multires!r}")
        if len(self.time_range) != 2 or not self.time_range[1] > self.time_range[0]:
            raise ValueError(f"HexPlaneConfig.time_range must be (t0, t1) with t1 > t0, got {self.time_range!r}")
        if self.aabb is not None:
            check_aabb(torch.as_tensor(self.aabb, dtype=torch.float64))
        for name in ("init_range", "time_init_range"):
            r = getattr(self, name)
            if len(r) != 2 or not r[0] <= r[1]:
                raise ValueError(f"HexPlaneConfig.{name} must be (lo, hi) with lo <= hi, got {r!r}")
        if self.backend not in ("auto", "torch", "numba"):
            raise ValueError(f"HexPlaneConfig.backend must be 'auto', 'torch' or 'numba', got {self.backend!r}")
        if not self.aabb_padding >= 0:
            raise ValueError(f"HexPlaneConfig.aabb_padding must be >= 0, got {self.aabb_padding!r}")

    @property
    def out_dim(self) -> int:
        """Features per point the field outputs: ``feature_dim · len(multires)``."""
        return self.feature_dim * len(self.multires)


def check_aabb(aabb: Tensor) -> Tensor:
    """``aabb`` as [2,3] (min row, max row) from [2,3] or [6]; raises unless max > min on every axis."""
    if aabb.numel() != 6:
        raise ValueError(f"aabb must have 6 numbers (xmin, ymin, zmin, xmax, ymax, zmax), got shape {list(aabb.shape)}")
    aabb = aabb.reshape(2, 3)
    if not bool((aabb[1] > aabb[0]).all()):
        raise ValueError(f"aabb max must exceed min on every axis, got {aabb.tolist()}")
    return aabb


def sample_planes(planes: Tensor, coords: Tensor) -> Tensor:
    """Bilinear samples of P planes at N points each: ``planes [P,F,H,W]``, ``coords [P,N,2]`` → ``[P,N,F]``.

    ``coords[..., 0]`` runs along the width axis and ``coords[..., 1]`` along the height axis, both in
    [-1, 1] with -1 and 1 at the first and last grid points (``align_corners=True``); outside, the
    border value.
    """
    if planes.dim() != 4 or coords.dim() != 3 or coords.shape[0] != planes.shape[0] or coords.shape[2] != 2:
        raise ValueError(f"need planes [P,F,H,W] and coords [P,N,2], got {list(planes.shape)} and {list(coords.shape)}")
    return _sample_channels_first(planes, coords).transpose(1, 2)


def _sample_channels_first(planes: Tensor, coords: Tensor) -> Tensor:
    """:func:`sample_planes` without checks, channels first: ``[P,F,N]``."""
    out = F.grid_sample(planes, coords[:, None], mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, 0]  # [P,F,1,N] -> [P,F,N]


class HexPlaneField(nn.Module):
    """Space-time features of points: ``forward(xyz [N,3], t) -> [N, config.out_dim]``.

    Args:
        config: sizes and ranges.
        aabb: [2,3] or [6] box the positions are normalised into (else ``config.aabb``).
        generator: CPU generator for the space planes' initial values (default: seeded with 0).
        device, dtype: of the planes.
    """

    def __init__(
        self,
        config: HexPlaneConfig = HexPlaneConfig(),
        aabb: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if aabb is None and config.aabb is None:
            raise ValueError("HexPlaneField needs a bounding box: pass aabb or set config.aabb")
        box = torch.as_tensor(config.aabb if aabb is None else aabb, dtype=dtype).detach().clone()
        self.register_buffer("aabb", check_aabb(box).to(device))
        self.config = config
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        lo, hi = config.init_range
        tlo, thi = config.time_init_range
        fd, tr = config.feature_dim, config.time_resolution
        space, time = [], []
        for m in config.multires:
            r = config.base_resolution * m
            s = torch.rand(3, fd, r, r, generator=generator, dtype=torch.float64) * (hi - lo) + lo
            space.append(nn.Parameter(s.to(device=device, dtype=dtype)))
            tm = torch.rand(3, fd, tr, r, generator=generator, dtype=torch.float64) * (thi - tlo) + tlo
            time.append(nn.Parameter(tm.to(device=device, dtype=dtype)))
        self.space = nn.ParameterList(space)
        self.time = nn.ParameterList(time)

    @property
    def out_dim(self) -> int:
        """Features per point."""
        return self.config.out_dim

    def normalize(self, xyz: Tensor, t: float | Tensor) -> Tensor:
        """Coordinates [N,4] in [-1,1] (inside the box and time range) of points ``xyz [N,3]`` at ``t``.

        ``t`` is a number, a scalar tensor or a [N] tensor of per-point times.
        """
        if xyz.dim() != 2 or xyz.shape[1] != 3:
            raise ValueError(f"xyz must have shape [N,3], got {list(xyz.shape)}")
        n = xyz.shape[0]
        t = torch.as_tensor(t, dtype=xyz.dtype, device=xyz.device)
        if t.dim() > 1 or (t.dim() == 1 and t.shape[0] != n):
            raise ValueError(f"t must be a number or a [N] tensor (N={n}), got shape {list(t.shape)}")
        lo, hi = self.aabb[0], self.aabb[1]
        space = (xyz - lo) / (hi - lo) * 2.0 - 1.0
        t0, t1 = self.config.time_range
        tn = ((t - t0) / (t1 - t0) * 2.0 - 1.0).expand(n)
        return torch.cat([space, tn[:, None]], dim=1)

    def _use_numba(self, coords: Tensor) -> bool:
        backend = self.config.backend
        if backend == "torch":
            return False
        cpu32 = coords.device.type == "cpu" and coords.dtype == torch.float32 and self.space[0].dtype == torch.float32
        if backend == "numba":
            if not cpu32 or _numba_level is None:
                raise ValueError("backend='numba' needs numba and CPU float32 tensors")
            return True
        return cpu32 and _numba_level is not None

    def forward(self, xyz: Tensor, t: float | Tensor) -> Tensor:
        """Features [N, F·L] of points ``xyz [N,3]`` at times ``t`` (number, scalar or [N] tensor)."""
        coords = self.normalize(xyz, t)  # [N,4]
        if self._use_numba(coords):
            return torch.cat([_numba_level(coords, sp, tm) for sp, tm in zip(self.space, self.time)], dim=1)
        pairs = torch.tensor(SPACE_PAIRS + TIME_PAIRS, device=xyz.device)  # [6,2]
        uv = coords[:, pairs].transpose(0, 1)  # [6,N,2]
        space_uv, time_uv = uv[:3], uv[3:]
        levels = []
        for space, time in zip(self.space, self.time):
            xy, xz, yz = _sample_channels_first(space, space_uv).unbind(0)  # 3 × [F,N]
            xt, yt, zt = _sample_channels_first(time, time_uv).unbind(0)  # 3 × [F,N]
            # Explicit products: Tensor.prod's backward is several times slower (it guards against zeros).
            levels.append(xy * xz * yz * xt * yt * zt)  # [F,N]
        return torch.cat(levels, dim=0).t()  # [N,F·L]

    def plane_tv(self) -> Tensor:
        """Total variation of the space planes: mean squared first difference along both axes, summed
        over planes' levels (K-Planes' spatial TV; zero for constant planes). Scalar."""
        total = self.space[0].new_zeros(())
        for p in self.space:
            total = total + (p[..., 1:, :] - p[..., :-1, :]).square().mean() + (p[..., 1:] - p[..., :-1]).square().mean()
        return total

    def time_smoothness(self) -> Tensor:
        """Mean squared second difference along time of the time planes, summed over levels
        (4DGaussians' time smoothness; zero for planes linear in time). Scalar."""
        total = self.time[0].new_zeros(())
        for p in self.time:
            d1 = p[:, :, 1:] - p[:, :, :-1]
            total = total + (d1[:, :, 1:] - d1[:, :, :-1]).square().mean()
        return total
