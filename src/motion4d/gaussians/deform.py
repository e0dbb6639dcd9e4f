"""Deformation-field Gaussians (4DGaussians, Wu et al. CVPR 2024; DreamGaussian4D).

N canonical 3D Gaussians plus a :class:`~motion4d.gaussians.hexplane.HexPlaneField` and small MLP heads
that map a Gaussian's canonical centre and a time t to changes of its raw parameters:

    h = relu(feature_mlp(field(means, t)))                # [N,W]; each head: Linear-ReLU-Linear
    means(t) = means + Δmeans(h)                          # [N,3]
    quats(t) = quats + Δquats(h)                          # [N,4], wxyz, a delta added as 4DGaussians
    log_scales(t) = log_scales + Δlog_scales(h)           # [N,3]
    opacity_logits(t) = opacity_logits + Δopacity(h)      # [N], only with ``config.deform_opacity``

The heads' output layers start at zero, so a new model does not move at all. The same N Gaussians
exist at every t (persistent identity, e.g. for mesh animation). ``params`` holds the per-Gaussian raw
parameters only (the names and shapes of :class:`Gaussians3D`), so the 3DGS densification strategy
edits its rows like any other model's; the field and heads are submodules, their parameters listed by
:meth:`DeformGaussians.field_parameters`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from motion4d.gaussians.activations import (
    opacity_activation,
    scale_activation,
    scale_inverse,
)
from motion4d.gaussians.base import GaussianParams
from motion4d.gaussians.files import load_tensors, model_loader, save_tensors
from motion4d.gaussians.gaussians3d import PARAM_NAMES, GaussianFrame, Gaussians3D
from motion4d.gaussians.hexplane import HexPlaneConfig, HexPlaneField, check_aabb
from motion4d.gaussians.rotations import quat_to_rotmat

__all__ = ["DeformGaussians", "HexPlaneConfig", "HexPlaneField"]

FORMAT = "motion4d.DeformGaussians"
HEAD_DIMS = {"means": 3, "quats": 4, "log_scales": 3, "opacity_logits": 1}
"""Output size of the head that changes each raw parameter."""


def _linear(n_in: int, n_out: int, generator: torch.Generator, *, zero: bool = False, device=None, dtype=None) -> nn.Linear:
    """``nn.Linear`` initialised from ``generator`` (PyTorch's default uniform bounds), or all zeros."""
    layer = torch.nn.utils.skip_init(nn.Linear, n_in, n_out, device=device, dtype=dtype)
    with torch.no_grad():
        if zero:
            layer.weight.zero_()
            layer.bias.zero_()
        else:
            bound = 1.0 / math.sqrt(n_in)
            w = torch.rand(n_out, n_in, generator=generator, dtype=torch.float64) * 2 - 1
            b = torch.rand(n_out, generator=generator, dtype=torch.float64) * 2 - 1
            layer.weight.copy_(w * bound)
            layer.bias.copy_(b * bound)
    return layer


def _box_of(means: Tensor, padding: float) -> Tensor:
    """[2,3] box around ``means [N,3]`` grown by ``padding`` × its size per side (at least 1e-3 wide)."""
    lo, hi = means.detach().min(dim=0).values, means.detach().max(dim=0).values
    size = (hi - lo).clamp_min(1e-3)
    mid = (lo + hi) / 2
    half = size * (0.5 + padding)
    return torch.stack([mid - half, mid + half])


class DeformGaussians(GaussianParams):
    """Canonical 3D Gaussians moved over time by a HexPlane deformation field.

    Args:
        means: [N,3]. quats: [N,4] wxyz. log_scales: [N,3]. opacity_logits: [N]. sh0: [N,1,3].
        shN: [N,K-1,3] (K = (sh_degree+1)²). All canonical (time-independent) raw parameters.
        aabb: [2,3] or [6] box for the field (else ``config.aabb``, else the means' padded box).
        config: field and MLP sizes.
        seed: seeds the field planes' and hidden layers' initial values (CPU generator).
    """

    def __init__(
        self,
        means: Tensor,
        quats: Tensor,
        log_scales: Tensor,
        opacity_logits: Tensor,
        sh0: Tensor,
        shN: Tensor,
        *,
        aabb: Tensor | None = None,
        config: HexPlaneConfig = HexPlaneConfig(),
        seed: int = 0,
    ):
        super().__init__()
        canonical = Gaussians3D(means, quats, log_scales, opacity_logits, sh0, shN)  # validates shapes
        self.params = canonical.params
        self._sh_degree = canonical.sh_degree
        self.config = config
        dev, dt = means.device, means.dtype
        if aabb is None:
            aabb = torch.as_tensor(config.aabb, dtype=dt) if config.aabb is not None else _box_of(means, config.aabb_padding)
        g = torch.Generator().manual_seed(seed)
        self.field = HexPlaneField(config, torch.as_tensor(aabb, dtype=dt), generator=g, device=dev, dtype=dt)
        w = config.mlp_width
        layers: list[nn.Module] = [_linear(config.out_dim, w, g, device=dev, dtype=dt)]
        for _ in range(config.mlp_depth - 1):
            layers += [nn.ReLU(), _linear(w, w, g, device=dev, dtype=dt)]
        self.feature_mlp = nn.Sequential(*layers)
        names = [k for k in HEAD_DIMS if k != "opacity_logits" or config.deform_opacity]
        self.heads = nn.ModuleDict({
            k: nn.Sequential(
                _linear(w, w, g, device=dev, dtype=dt),
                nn.ReLU(), _linear(w, HEAD_DIMS[k], g, zero=True, device=dev, dtype=dt),
            )
            for k in names
        })

    # ---- per-Gaussian state ---------------------------------------------------------------
    def field_parameters(self) -> dict[str, nn.Parameter]:
        """Everything not per-Gaussian, by name: the HexPlane planes as ``grid.<name>`` and the MLPs' weights
        as ``mlp.<name>`` (trainers give grids and MLPs their own learning rates)."""
        out = {f"grid.{k}": p for k, p in self.field.named_parameters()}
        out.update({f"mlp.feature.{k}": p for k, p in self.feature_mlp.named_parameters()})
        out.update({f"mlp.heads.{k}": p for k, p in self.heads.named_parameters()})
        return out

    def max_scale3d(self) -> Tensor:
        """[N] largest canonical standard deviation of each Gaussian (for densification)."""
        return self.scales.max(dim=-1).values

    # ---- deformation ----------------------------------------------------------------------
    def deltas(self, t: float | Tensor) -> dict[str, Tensor]:
        """Changes of the raw parameters at time ``t`` (number, scalar or [N] tensor).

        Returns ``{"means": [N,3], "quats": [N,4], "log_scales": [N,3]}`` and, with
        ``config.deform_opacity``, ``"opacity_logits": [N]``; each is added to the canonical value.
        """
        h = torch.relu(self.feature_mlp(self.field(self.params["means"], t)))  # [N,W], shared by the heads
        out = {k: head(h) for k, head in self.heads.items()}
        if "opacity_logits" in out:
            out["opacity_logits"] = out["opacity_logits"][:, 0]
        return out

    def raw_at_time(self, t: float | Tensor | None) -> dict[str, Tensor]:
        """Deformed raw ``means``, ``quats``, ``log_scales``, ``opacity_logits`` at ``t`` (None: canonical)."""
        raw = {k: self.params[k] for k in ("means", "quats", "log_scales", "opacity_logits")}
        if t is None:
            return raw
        for k, d in self.deltas(t).items():
            raw[k] = raw[k] + d
        return raw

    def at_time(self, t: float | Tensor | None = None) -> GaussianFrame:
        """The activated Gaussians at time ``t`` (number, scalar or [N] tensor; None: canonical)."""
        raw = self.raw_at_time(t)
        return GaussianFrame(
            means=raw["means"],
            quats=raw["quats"],
            scales=scale_activation(raw["log_scales"]),
            opacities=opacity_activation(raw["opacity_logits"]),
            sh=self.sh,
            sh_degree=self._sh_degree,
        )

    def frame_gaussians3d(self, t: float | Tensor | None) -> Gaussians3D:
        """A detached static copy (:class:`Gaussians3D`) of the Gaussians at ``t`` (None: canonical), e.g. for export."""
        with torch.no_grad():
            raw = self.raw_at_time(t)
            return Gaussians3D(raw["means"], raw["quats"], raw["log_scales"], raw["opacity_logits"],
                               self.params["sh0"], self.params["shN"])

    def motion_displacement(self, t0: float | Tensor, t1: float | Tensor) -> Tensor:
        """[N] distance each Gaussian's centre moves from ``t0`` to ``t1``."""
        return (self.raw_at_time(t1)["means"] - self.raw_at_time(t0)["means"]).norm(dim=-1)

    def regularizers(self, t: float | Tensor | None = None) -> dict[str, Tensor]:
        """Field regularisers (scalars), weighted by the trainer's ``lambda_<name>``.

        ``"plane_tv"``: total variation of the space planes; ``"time_smoothness"``: squared second
        difference along time of the time planes. Both are global; ``t`` is accepted so that every
        representation has the same call.
        """
        return {"plane_tv": self.field.plane_tv(), "time_smoothness": self.field.time_smoothness()}

    # ---- densification --------------------------------------------------------------------
    def _rows(self, mask: Tensor) -> Tensor:
        if mask.dtype != torch.bool or mask.shape != (len(self),):
            raise ValueError(f"mask must be a bool tensor of shape [{len(self)}], got {mask.dtype} {list(mask.shape)}")
        return torch.where(mask)[0]

    @torch.no_grad()
    def clone_rows(self, mask: Tensor) -> dict[str, Tensor]:
        """Copies of the masked rows ``mask [N]`` (bool) of every per-Gaussian parameter: ``{name: [S,...]}``."""
        sel = self._rows(mask)
        return {k: p.data[sel].clone() for k, p in self.params.items()}

    @torch.no_grad()
    def split_rows(
        self, mask: Tensor, n_children: int = 2, factor: float = 1.6, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Children of the masked Gaussians, as 3DGS splits them, in canonical space.

        Each child's centre is drawn from its parent's canonical Gaussian, its scales are the parent's
        divided by ``factor``; every other parameter is copied. Returns ``{name: [n_children·S, ...]}``,
        child-major (all first children, then all second ones). ``generator``: CPU generator.
        """
        sel = self._rows(mask)
        means = self.params["means"].data[sel]
        scales = scale_activation(self.params["log_scales"].data[sel])  # [S,3]
        rot = quat_to_rotmat(self.params["quats"].data[sel])  # [S,3,3]
        noise = torch.randn(n_children, sel.shape[0], 3, generator=generator).to(scales)
        offsets = torch.einsum("sij,sj,bsj->bsi", rot, scales, noise)  # [C,S,3]
        rows = {}
        for k, p in self.params.items():
            if k == "means":
                rows[k] = (means[None] + offsets).reshape(-1, 3)
            elif k == "log_scales":
                rows[k] = scale_inverse(scales / factor).repeat(n_children, 1)
            else:
                rows[k] = p.data[sel].repeat(n_children, *([1] * (p.dim() - 1)))
        return rows

    # ---- constructors ---------------------------------------------------------------------
    @classmethod
    def from_gaussians3d(
        cls, g3d: Gaussians3D, aabb: Tensor | None = None, config: HexPlaneConfig = HexPlaneConfig(), *, seed: int = 0
    ) -> "DeformGaussians":
        """Start from static Gaussians ``g3d`` as the canonical ones (copied), with an identity deformation.

        ``aabb`` [2,3] or [6]: the field's box (else ``config.aabb``, else the means' padded box).
        """
        p = g3d.params
        return cls(*(p[k].detach() for k in PARAM_NAMES), aabb=aabb, config=config, seed=seed)

    @classmethod
    def random(
        cls,
        n: int,
        center: Tensor | tuple[float, float, float] = (0.0, 0.0, 0.0),
        radius: float = 1.0,
        sh_degree: int = 3,
        seed: int = 0,
        config: HexPlaneConfig = HexPlaneConfig(),
        *,
        init_opacity: float = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> "DeformGaussians":
        """``n`` Gaussians uniform in the ball (``center [3]``, ``radius``); the field's box is the ball's
        bounding cube grown by ``config.aabb_padding`` (unless ``config.aabb`` is set)."""
        g3d = Gaussians3D.random_in_sphere(
            n, center, radius, sh_degree=sh_degree, init_opacity=init_opacity, seed=seed, device=device, dtype=dtype
        )
        c = torch.as_tensor(center, dtype=dtype).reshape(3)
        half = radius * (1.0 + config.aabb_padding)
        aabb = None if config.aabb is not None else torch.stack([c - half, c + half]).to(device)
        return cls.from_gaussians3d(g3d, aabb, config, seed=seed)

    # ---- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write canonical parameters, field and MLP weights and the config to one safetensors file (atomically)."""
        return save_tensors(path, self.state_dict(), FORMAT, sh_degree=self._sh_degree, config=json.dumps(dataclasses.asdict(self.config)))

    @classmethod
    @model_loader(FORMAT)
    def load(cls, path: str | os.PathLike, *, device: torch.device | str | None = None) -> "DeformGaussians":
        """Read a file written by :meth:`save`."""
        tensors, metadata = load_tensors(path, FORMAT)
        raw = json.loads(metadata["config"])
        config = HexPlaneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
        aabb = check_aabb(tensors["field.aabb"])
        model = cls(*(tensors[f"params.{k}"] for k in PARAM_NAMES), aabb=aabb, config=config)
        model.load_state_dict(tensors)
        return model.to(device) if device is not None else model
