"""What every Gaussian representation shares: raw-parameter storage with shape checks and the
activated accessors (scales, opacities, SH) defined once.

A representation stores its per-Gaussian raw tensors (all with N rows) in ``self.params``, an
``nn.ParameterDict`` that densification may replace entry by entry, always including ``means``,
``log_scales``, ``opacity_logits``, ``sh0 [N,1,3]`` and ``shN [N,K-1,3]`` (K = (sh_degree+1)²).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from motion4d.gaussians.activations import opacity_activation, scale_activation


def check_shapes(tensors: dict[str, Tensor], widths: dict[str, int | None]) -> int:
    """Check raw parameters against their widths and return the SH degree.

    Args:
        tensors: name → tensor; must include ``means`` (2-D, its rows define N) and ``shN``.
        widths: name → last-dimension size (``None`` for a 1-D ``[N]`` tensor); ``sh0`` is always ``[N,1,3]``.

    Raises ValueError naming the first tensor of the wrong shape.
    """
    means = tensors["means"]
    n = means.shape[0] if means.dim() == 2 else -1
    expected = {k: (n,) if w is None else (n, w) for k, w in widths.items()}
    expected["sh0"] = (n, 1, 3)
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape or n < 0:
            raise ValueError(f"{name} must have shape {list(shape)}, got {list(tensors[name].shape)}")
    shN = tensors["shN"]
    if shN.dim() != 3 or shN.shape[0] != n or shN.shape[2] != 3:
        raise ValueError(f"shN must have shape [N,K-1,3], got {list(shN.shape)}")
    degree = math.isqrt(shN.shape[1] + 1) - 1
    if not 0 <= degree <= 3 or (degree + 1) ** 2 != shN.shape[1] + 1:
        raise ValueError(f"shN has {shN.shape[1]} coefficients; need (d+1)²-1 for a degree d in 0..3")
    return degree


def make_params(tensors: dict[str, Tensor]) -> nn.ParameterDict:
    """An ``nn.ParameterDict`` of detached copies of ``tensors`` (in the given order)."""
    return nn.ParameterDict({k: nn.Parameter(v.detach().clone()) for k, v in tensors.items()})


class GaussianParams(nn.Module):
    """Base of the representations: ``params``, ``sh_degree``, length and the activated accessors."""

    params: nn.ParameterDict
    _sh_degree: int

    @property
    def scales(self) -> Tensor:
        """[N,D] standard deviations, ``exp(log_scales)`` (D = 3, or 4 for 4D Gaussians)."""
        return scale_activation(self.params["log_scales"])

    @property
    def opacities(self) -> Tensor:
        """[N] opacities in (0, 1), ``sigmoid(opacity_logits)`` (canonical / peak values)."""
        return opacity_activation(self.params["opacity_logits"])

    @property
    def sh(self) -> Tensor:
        """[N,K,3] SH coefficients (sh0 then shN)."""
        return torch.cat([self.params["sh0"], self.params["shN"]], dim=1)

    @property
    def sh_degree(self) -> int:
        """Largest SH degree stored."""
        return self._sh_degree

    def __len__(self) -> int:
        return self.params["means"].shape[0]

    @property
    def num_gaussians(self) -> int:
        """N."""
        return len(self)
