"""Static 3D Gaussians: raw parameters stored as ``nn.Parameter``s, activated values exposed.

Stored (raw) parameters, all with N rows, in ``Gaussians3D.params`` (an ``nn.ParameterDict`` that
densification may replace entry by entry):

- ``means [N,3]`` centres; ``quats [N,4]`` rotations (wxyz, unnormalised);
- ``log_scales [N,3]`` → ``scales = exp(log_scales)``; ``opacity_logits [N]`` → ``opacities = sigmoid``;
- ``sh0 [N,1,3]`` DC colour coefficients, ``shN [N,K-1,3]`` higher SH bands (K = (sh_degree+1)²).

Every representation (static, 4D rotor, deformation field) answers :meth:`at_time` with a
:class:`GaussianFrame` of activated tensors, so renderers and pipelines need not know which one they hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from motion4d.gaussians.activations import (
    num_sh_bases,
    opacity_inverse,
    rgb_to_sh0,
    scale_inverse,
)
from motion4d.gaussians.base import GaussianParams, check_shapes, make_params
from motion4d.gaussians.files import load_tensors, model_loader, save_tensors

FORMAT = "motion4d.Gaussians3D"
PARAM_NAMES = ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN")


@dataclass
class GaussianFrame:
    """Activated 3D Gaussians at one instant, in the renderer's names and shapes."""

    means: Tensor
    """[N,3] centres."""
    quats: Tensor | None
    """[N,4] rotations, wxyz, unnormalised (None when ``covars`` is given)."""
    scales: Tensor | None
    """[N,3] standard deviations (None when ``covars`` is given)."""
    opacities: Tensor
    """[N] opacities in (0, 1)."""
    sh: Tensor
    """[N,K,3] SH colour coefficients."""
    sh_degree: int
    """Largest SH degree ``sh`` holds (K = (sh_degree+1)²)."""
    covars: Tensor | None = None
    """[N,3,3] covariances, for representations that give them directly (4D slices)."""
    rasterize_mode: str = "classic"
    """How to render them: "classic" or "antialiased" (see :func:`motion4d.render.rasterization`)."""

    def __len__(self) -> int:
        return self.means.shape[0]


def mean_knn_distance(xyz: Tensor, k: int = 3, max_elements: int = 1 << 24) -> Tensor:
    """Mean Euclidean distance [N] from each point of ``xyz [N,3]`` to its ``k`` nearest others.

    Computed in row chunks of ``torch.cdist`` so that no block exceeds ``max_elements`` entries
    (100k points take ~64 MB at a time). A lone point gets distance 1.
    """
    if xyz.dim() != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz must have shape [N,3], got {list(xyz.shape)}")
    n = xyz.shape[0]
    if n < 2:
        return torch.ones(n, dtype=xyz.dtype, device=xyz.device)
    kk = min(k + 1, n)  # +1: each point's nearest is itself
    chunk = max(1, max_elements // n)
    out = []
    for start in range(0, n, chunk):
        d = torch.cdist(xyz[start : start + chunk], xyz)
        out.append(d.topk(kk, dim=1, largest=False).values[:, 1:].mean(dim=1))
    return torch.cat(out)


class Gaussians3D(GaussianParams):
    """N static 3D Gaussians with SH colours up to ``sh_degree``.

    Args:
        means: [N,3]. quats: [N,4] wxyz. log_scales: [N,3]. opacity_logits: [N].
        sh0: [N,1,3]. shN: [N,K-1,3] with K = (sh_degree+1)² for some degree in 0..3.
    """

    def __init__(self, means: Tensor, quats: Tensor, log_scales: Tensor, opacity_logits: Tensor, sh0: Tensor, shN: Tensor):
        super().__init__()
        tensors = dict(zip(PARAM_NAMES, (means, quats, log_scales, opacity_logits, sh0, shN)))
        self._sh_degree = check_shapes(tensors, {"means": 3, "quats": 4, "log_scales": 3, "opacity_logits": None})
        self.params = make_params(tensors)

    # ---- raw parameters -------------------------------------------------------------------
    @property
    def means(self) -> Tensor:
        """[N,3] centres."""
        return self.params["means"]

    @property
    def quats(self) -> Tensor:
        """[N,4] rotations, wxyz, unnormalised."""
        return self.params["quats"]

    @property
    def log_scales(self) -> Tensor:
        """[N,3] raw scales."""
        return self.params["log_scales"]

    @property
    def opacity_logits(self) -> Tensor:
        """[N] raw opacities."""
        return self.params["opacity_logits"]

    def at_time(self, t: float | None = None) -> GaussianFrame:
        """The activated Gaussians at time ``t`` (ignored: these are static)."""
        return GaussianFrame(self.means, self.quats, self.scales, self.opacities, self.sh, self._sh_degree)

    # ---- constructors ---------------------------------------------------------------------
    @classmethod
    def from_activated(
        cls, means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: Tensor
    ) -> "Gaussians3D":
        """Build from activated values: scales [N,3] > 0, opacities [N] in (0,1), sh [N,K,3]."""
        if sh.dim() != 3 or sh.shape[1] < 1:
            raise ValueError(f"sh must have shape [N,K,3], got {list(sh.shape)}")
        return cls(means, quats, scale_inverse(scales), opacity_inverse(opacities), sh[:, :1], sh[:, 1:])

    @classmethod
    def from_points(
        cls,
        xyz: Tensor,
        rgb: Tensor | None = None,
        *,
        sh_degree: int = 3,
        init_opacity: float = 0.1,
        scale_factor: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> "Gaussians3D":
        """Isotropic Gaussians at points ``xyz [N,3]`` with colours ``rgb [N,3]`` in [0,1] (grey if None).

        Each scale is ``scale_factor`` × the mean distance to its 3 nearest neighbours (as 3DGS).
        """
        xyz = torch.as_tensor(xyz, dtype=dtype, device=device)
        if xyz.dim() != 2 or xyz.shape[1] != 3 or xyz.shape[0] == 0:
            raise ValueError(f"xyz must have shape [N,3] with N > 0, got {list(xyz.shape)}")
        n = xyz.shape[0]
        if rgb is None:
            rgb = torch.full((n, 3), 0.5, dtype=dtype, device=xyz.device)
        rgb = torch.as_tensor(rgb, dtype=dtype, device=xyz.device)
        if rgb.shape != (n, 3):
            raise ValueError(f"rgb must have shape [{n},3], got {list(rgb.shape)}")
        dist = mean_knn_distance(xyz).clamp_min(1e-7) * scale_factor
        quats = torch.zeros(n, 4, dtype=dtype, device=xyz.device)
        quats[:, 0] = 1.0
        k = num_sh_bases(sh_degree)
        return cls(
            means=xyz,
            quats=quats,
            log_scales=scale_inverse(dist)[:, None].repeat(1, 3),
            opacity_logits=opacity_inverse(torch.full((n,), init_opacity, dtype=dtype, device=xyz.device)),
            sh0=rgb_to_sh0(rgb)[:, None, :],
            shN=torch.zeros(n, k - 1, 3, dtype=dtype, device=xyz.device),
        )

    @classmethod
    def random_in_sphere(
        cls,
        n: int,
        center: Tensor | tuple[float, float, float] = (0.0, 0.0, 0.0),
        radius: float = 1.0,
        *,
        sh_degree: int = 3,
        init_opacity: float = 0.1,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> "Gaussians3D":
        """``n`` Gaussians uniform in the ball (``center [3]``, ``radius``) with random colours.

        Randomness comes from ``generator`` or else a CPU generator seeded with ``seed`` (default 0),
        so results do not depend on the device.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if not radius > 0:
            raise ValueError(f"radius must be > 0, got {radius!r}")
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator, dtype=torch.float64), dim=-1)
        r = radius * torch.rand(n, 1, generator=generator, dtype=torch.float64) ** (1.0 / 3.0)
        center = torch.as_tensor(center, dtype=torch.float64).reshape(3)
        xyz = (center + dirs * r).to(dtype)
        rgb = torch.rand(n, 3, generator=generator, dtype=torch.float64).to(dtype)
        return cls.from_points(xyz.to(device), rgb.to(device), sh_degree=sh_degree, init_opacity=init_opacity, device=device, dtype=dtype)

    # ---- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the raw parameters to a safetensors file (atomically: temp file, then rename)."""
        return save_tensors(path, dict(self.params.items()), FORMAT, sh_degree=self._sh_degree)

    @classmethod
    @model_loader(FORMAT)
    def load(cls, path: str | os.PathLike, *, device: torch.device | str | None = None) -> "Gaussians3D":
        """Read a file written by :meth:`save`."""
        tensors, _ = load_tensors(path, FORMAT)
        model = cls(*(tensors[k] for k in PARAM_NAMES))
        return model.to(device) if device is not None else model
