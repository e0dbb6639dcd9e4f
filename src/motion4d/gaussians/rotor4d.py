"""4D-Rotor Gaussian Splatting (Duan et al., SIGGRAPH 2024): Gaussians in (x, y, z, t).

Each Gaussian has a 4D mean, 4 scales and an 8-component rotor (see :mod:`motion4d.gaussians.rotor_math`
for the rotor convention and normalisation); at time t it is sliced into a 3D Gaussian (conditional mean
and covariance) whose opacity is multiplied by the marginal weight in t.

Stored (raw) parameters, all with N rows, in ``Gaussians4DRotor.params`` (an ``nn.ParameterDict`` that
densification may replace entry by entry):

- ``means [N,4]`` (x, y, z, t); ``rotors [N,8]`` (unnormalised);
- ``log_scales [N,4]`` → ``scales = exp(log_scales)``; ``opacity_logits [N]`` → ``opacities = sigmoid``;
- ``sh0 [N,1,3]``, ``shN [N,K-1,3]`` SH colour coefficients (K = (sh_degree+1)²).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from motion4d.gaussians.activations import (
    opacity_activation,
    opacity_inverse,
    scale_activation,
    scale_inverse,
)
from motion4d.gaussians.base import GaussianParams, check_shapes, make_params
from motion4d.gaussians.files import load_tensors, model_loader, save_tensors
from motion4d.gaussians.gaussians3d import GaussianFrame, Gaussians3D
from motion4d.gaussians.rotor_math import (
    conditional_terms,
    covariance_4d,
    covariance_factor,
    identity_rotors,
    normalize_rotor,
    rotor_from_quaternion,
    rotor_to_matrix,
    slice_4d,
)

__all__ = [
    "Gaussians4DRotor",
    "normalize_rotor",
    "rotor_from_quaternion",
    "rotor_to_matrix",
    "slice_4d",
    "covariance_4d",
    "covariance_factor",
    "identity_rotors",
]

PARAM_NAMES = ("means", "rotors", "log_scales", "opacity_logits", "sh0", "shN")
FORMAT = "motion4d.Gaussians4DRotor"


def _generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else seed)


class Gaussians4DRotor(GaussianParams):
    """N 4D Gaussians with rotor orientations and SH colours up to ``sh_degree``.

    Args:
        means: [N,4] (x,y,z,t). rotors: [N,8]. log_scales: [N,4]. opacity_logits: [N].
        sh0: [N,1,3]. shN: [N,K-1,3] with K = (sh_degree+1)² for some degree in 0..3.
    """

    def __init__(self, means: Tensor, rotors: Tensor, log_scales: Tensor, opacity_logits: Tensor, sh0: Tensor, shN: Tensor):
        super().__init__()
        tensors = dict(zip(PARAM_NAMES, (means, rotors, log_scales, opacity_logits, sh0, shN)))
        self._sh_degree = check_shapes(tensors, {"means": 4, "rotors": 8, "log_scales": 4, "opacity_logits": None})
        self.params = make_params(tensors)

    # ---- activated values -----------------------------------------------------------------
    @property
    def means(self) -> Tensor:
        """[N,4] centres (x,y,z,t)."""
        return self.params["means"]

    @property
    def rotors(self) -> Tensor:
        """[N,8] unit simple rotors (the stored rotors normalised)."""
        return normalize_rotor(self.params["rotors"])

    @property
    def rotation_matrices(self) -> Tensor:
        """[N,4,4] rotations of (x,y,z,t)."""
        return rotor_to_matrix(self.params["rotors"])

    def covariances(self) -> Tensor:
        """[N,4,4] 4D covariances R·diag(scales²)·Rᵀ."""
        return covariance_4d(self.params["rotors"], self.scales)

    def at_time(self, t: float | Tensor) -> GaussianFrame:
        """The 3D Gaussians at time ``t``: conditional means and covariances, opacities × temporal weights."""
        means, covars, weights = slice_4d(self.params["means"], self.params["rotors"], self.scales, t)
        return GaussianFrame(means, None, None, self.opacities * weights, self.sh, self._sh_degree, covars=covars)

    def velocities(self) -> Tensor:
        """[N,3] velocities Σ_xyz,t/Σ_tt: the derivative of each sliced mean with respect to t."""
        return conditional_terms(covariance_factor(self.params["rotors"], self.scales))[0]

    def motion_displacement(self, t0: float, t1: float) -> Tensor:
        """[N] distance each sliced mean travels from ``t0`` to ``t1`` (the motion is linear in t)."""
        return self.velocities().norm(dim=-1) * abs(float(t1) - float(t0))

    @torch.no_grad()
    def max_scale3d(self) -> Tensor:
        """[N] largest spatial standard deviation of the slices (√ of the top eigenvalue of the conditional
        covariance, which is the same at every t); for clone/split/prune decisions, no gradient."""
        cov3 = conditional_terms(covariance_factor(self.params["rotors"], self.scales))[1]
        return torch.linalg.eigvalsh(cov3)[:, -1].clamp_min(0).sqrt()

    # ---- regularisers ---------------------------------------------------------------------
    def regularizers(
        self,
        t: float,
        *,
        k: int = 8,
        max_samples: int = 2048,
        min_weight: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """The paper's regularisers, as 0-dim tensors differentiable in the raw parameters.

        - ``"entropy"``: mean binary entropy −o·log o − (1−o)·log(1−o) of the opacities (pushes them to 0 or 1).
        - ``"consistency4d"``: among the Gaussians present at time ``t`` (temporal weight ≥ ``min_weight``),
          a random subset of at most ``max_samples``; the mean over it of the L1 distance between each one's
          velocity and the mean velocity of its ``k`` nearest neighbours in the subset (by the sliced means
          at ``t``; neighbours are chosen without gradient). 0 when fewer than two are present.
          ``generator`` (CPU) picks the subset.
        """
        x = self.params["opacity_logits"]
        # -o log o - (1-o) log(1-o) with log o = -softplus(-x), log(1-o) = -softplus(x): finite for any x.
        o = opacity_activation(x)
        entropy = (o * nn.functional.softplus(-x) + (1 - o) * nn.functional.softplus(x)).mean()
        scales = self.scales
        with torch.no_grad():
            xyz, _, weights = slice_4d(self.params["means"], self.params["rotors"], scales, t)
            idx = torch.where(weights >= min_weight)[0]
            if idx.shape[0] > max_samples:
                idx = idx[torch.randperm(idx.shape[0], generator=generator)[:max_samples].to(idx.device)]
        velocity = conditional_terms(covariance_factor(self.params["rotors"][idx], scales[idx]))[0]
        if idx.shape[0] < 2:
            consistency = velocity.sum() * 0.0 + scales.sum() * 0.0
        else:
            kk = min(k, idx.shape[0] - 1)
            with torch.no_grad():
                sub = xyz[idx]
                nbrs = torch.cdist(sub, sub).topk(kk + 1, dim=1, largest=False).indices[:, 1:]  # [S,kk]
            consistency = (velocity - velocity[nbrs].mean(dim=1)).abs().mean()
        return {"entropy": entropy, "consistency4d": consistency}

    # ---- densification hooks --------------------------------------------------------------
    @torch.no_grad()
    def clone_rows(self, mask: Tensor) -> dict[str, Tensor]:
        """Copies of the raw parameter rows selected by ``mask [N]`` (bool), per parameter name."""
        sel = self._selection(mask)
        return {name: p.detach()[sel].clone() for name, p in self.params.items()}

    @torch.no_grad()
    def split_rows(
        self, mask: Tensor, n_children: int = 2, factor: float = 1.6, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Raw parameter rows [n_children·S, ...] of the children of the S Gaussians selected by ``mask [N]``.

        Children's 4D means are drawn from their parent's 4D Gaussian N(μ, Σ) (a space-time split), their
        scales are the parent's divided by ``factor``, everything else is copied. Row c·S + s is child c of
        the s-th selected parent. ``generator`` (CPU) draws the samples.
        """
        if not isinstance(n_children, int) or n_children < 1:
            raise ValueError(f"n_children must be a positive int, got {n_children!r}")
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor!r}")
        sel = self._selection(mask)
        s = sel.shape[0]
        rows = {name: p.detach()[sel] for name, p in self.params.items()}
        scales = scale_activation(rows["log_scales"])
        axes = covariance_factor(rows["rotors"], scales)  # [S,4,4]: Σ = axes·axesᵀ
        noise = torch.randn(n_children, s, 4, generator=generator, dtype=torch.float64).to(axes)
        out = {}
        for name, p in rows.items():
            if name == "means":
                out[name] = (p[None] + torch.einsum("sij,csj->csi", axes, noise)).reshape(n_children * s, 4)
            elif name == "log_scales":
                out[name] = scale_inverse(scales / factor).repeat(n_children, 1)
            else:
                out[name] = p.repeat(n_children, *([1] * (p.dim() - 1)))
        return out

    def _selection(self, mask: Tensor) -> Tensor:
        if mask.dtype != torch.bool or mask.shape != (len(self),):
            raise ValueError(f"mask must be a bool tensor of shape [{len(self)}], got {mask.dtype} {list(mask.shape)}")
        return torch.where(mask.to(self.params["means"].device))[0]

    # ---- constructors ---------------------------------------------------------------------
    @classmethod
    def random(
        cls,
        n: int,
        center: Tensor | tuple[float, float, float] = (0.0, 0.0, 0.0),
        radius: float = 1.0,
        t_range: tuple[float, float] = (0.0, 1.0),
        *,
        sh_degree: int = 3,
        seed: int | None = None,
        time_scale: float = 0.2,
        init_opacity: float = 0.1,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> "Gaussians4DRotor":
        """``n`` Gaussians uniform in the ball (``center [3]``, ``radius``) and in time over ``t_range``.

        Rotors are the identity; spatial scales are the mean distance to the 3 nearest neighbours (as
        3DGS); the temporal standard deviation is ``time_scale`` × the sequence length. Randomness comes
        from ``generator`` or else a CPU generator seeded with ``seed`` (default 0).
        """
        t0, t1 = map(float, t_range)
        if not t1 > t0:
            raise ValueError(f"t_range must be increasing, got {t_range!r}")
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        gen = _generator(generator, seed)
        g3d = Gaussians3D.random_in_sphere(
            n, center, radius, sh_degree=sh_degree, init_opacity=init_opacity, generator=gen, dtype=torch.float64
        )
        times = t0 + (t1 - t0) * torch.rand(n, generator=gen, dtype=torch.float64)
        p = g3d.params
        log_st = scale_inverse(torch.full((n, 1), time_scale * (t1 - t0), dtype=torch.float64))
        model = cls(
            means=torch.cat([p["means"].detach(), times[:, None]], dim=1),
            rotors=identity_rotors(n, dtype=torch.float64),
            log_scales=torch.cat([p["log_scales"].detach(), log_st], dim=1),
            opacity_logits=p["opacity_logits"].detach(),
            sh0=p["sh0"].detach(),
            shN=p["shN"].detach(),
        )
        return model.to(device=device, dtype=dtype)

    @classmethod
    def from_gaussians3d(
        cls, g3d: Gaussians3D, times: Sequence[float] | Tensor, *, time_scale: float | None = None
    ) -> "Gaussians4DRotor":
        """A copy of the static model ``g3d`` (N Gaussians) at each of ``times [T]``: N·T Gaussians.

        Copy τ has temporal mean τ and the rotor of its 3D rotation (t axis fixed), so slicing it at τ gives
        exactly the 3D Gaussian with weight 1. Its temporal standard deviation is ``time_scale``, by
        default half the mean spacing of ``times`` (1 when T = 1), so neighbouring copies overlap little.
        Row τ_index·N + i is copy τ_index of Gaussian i.
        """
        p = {k: v.detach() for k, v in g3d.params.items()}
        ref = p["means"]
        times = torch.as_tensor(times, dtype=ref.dtype, device=ref.device).reshape(-1)
        n_t, n = times.shape[0], ref.shape[0]
        if n_t == 0:
            raise ValueError("times must hold at least one time")
        if time_scale is None:
            time_scale = 0.5 * float(times.max() - times.min()) / (n_t - 1) if n_t > 1 else 1.0
            time_scale = time_scale if time_scale > 0 else 1.0
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")

        def rep(x: Tensor) -> Tensor:
            return x.repeat(n_t, *([1] * (x.dim() - 1)))

        log_st = scale_inverse(torch.full((n_t * n, 1), float(time_scale), dtype=ref.dtype, device=ref.device))
        return cls(
            means=torch.cat([rep(ref), times.repeat_interleave(n)[:, None]], dim=1),
            rotors=rep(rotor_from_quaternion(p["quats"])),
            log_scales=torch.cat([rep(p["log_scales"]), log_st], dim=1),
            opacity_logits=rep(p["opacity_logits"]),
            sh0=rep(p["sh0"]),
            shN=rep(p["shN"]),
        )

    @classmethod
    def from_activated(
        cls, means: Tensor, rotors: Tensor, scales: Tensor, opacities: Tensor, sh: Tensor
    ) -> "Gaussians4DRotor":
        """Build from activated values: means [N,4], rotors [N,8], scales [N,4] > 0, opacities [N] in
        (0,1), sh [N,K,3]."""
        if sh.dim() != 3 or sh.shape[1] < 1:
            raise ValueError(f"sh must have shape [N,K,3], got {list(sh.shape)}")
        return cls(means, rotors, scale_inverse(scales), opacity_inverse(opacities), sh[:, :1], sh[:, 1:])

    # ---- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the raw parameters to a safetensors file (atomically: temp file, then rename)."""
        return save_tensors(path, dict(self.params.items()), FORMAT, sh_degree=self._sh_degree)

    @classmethod
    @model_loader(FORMAT)
    def load(cls, path: str | os.PathLike, *, device: torch.device | str | None = None) -> "Gaussians4DRotor":
        """Read a file written by :meth:`save`."""
        tensors, _ = load_tensors(path, FORMAT)
        model = cls(*(tensors[k] for k in PARAM_NAMES))
        return model.to(device) if device is not None else model
