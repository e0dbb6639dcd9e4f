"""Make surface Gaussians cover exactly what their mesh covers (before a motion fit).

Gaussians bound to a mesh (:mod:`motion4d.gaussians.surface`) approximate its coverage: their tails spill
past outlines and open edges while thin gaps can remain between them. A motion fit against real images then
bends the geometry to repair the difference: with 1.9 % too much alpha at the true pose, CesiumMilkTruck's
static body shrank 1.5 % (3 % in height) to match its images. So before fitting motion we fit each
Gaussian's size, at the rest pose, to the mesh's own antialiased coverage (:func:`~motion4d.render.mesh_raster.mesh_coverage`)
in the driving cameras: one log-size per Gaussian, L1 on alpha, Adam. The sizes are then baked into the
model's rest covariances, so everything downstream (motion fit, export, rendering) uses them unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from motion4d.gaussians.gaussians3d import GaussianFrame
from motion4d.render.frame import render_frame
from motion4d.render.mesh_raster import mesh_coverage

if TYPE_CHECKING:
    from motion4d.gaussians.animated_mesh import MeshGaussians

log = logging.getLogger(__name__)


@dataclass
class CoverageFit:
    """How well the Gaussians' alpha matched the mesh's coverage, before and after the fit (all views)."""

    l1_before: float
    """Mean |alpha − coverage| over all pixels of all views, before."""
    l1_after: float
    """The same after."""
    ratio_before: float
    """Total alpha over total coverage, before (1 is right)."""
    ratio_after: float
    """The same after."""
    steps: int
    """Optimisation steps taken."""


def mesh_coverages(model: "MeshGaussians", viewmats: Tensor, Ks: Tensor, width: int, height: int, *, vertices: Tensor | None = None,
                   supersample: int = 4) -> Tensor:  # fmt: skip
    """[C,H,W,1] coverage of ``model``'s mesh in each camera, at its rest pose or posed at ``vertices [V,3]``."""
    verts = (model.rest_vertices if vertices is None else vertices).detach().cpu().double().numpy()
    faces = model.faces.cpu().numpy()
    vm, K = viewmats.detach().cpu().double().numpy(), Ks.detach().cpu().double().numpy()
    cov = np.stack([mesh_coverage(verts, faces, vm[c], K[c], width, height, supersample=supersample) for c in range(len(vm))])
    return torch.from_numpy(cov)[..., None].to(model.rest_vertices.device, torch.float32)


def _rest_frame(model: "MeshGaussians", log_size: Tensor) -> GaussianFrame:
    frame = model.at_time(None)
    frame.covars = frame.covars * torch.exp(2.0 * log_size)[:, None, None].to(frame.covars)
    return frame


@torch.no_grad()
def _alpha_stats(model: "MeshGaussians", log_size: Tensor, viewmats: Tensor, Ks: Tensor, width: int, height: int, targets: Tensor, backend: str, chunk: int = 8) -> tuple[float, float]:
    frame = _rest_frame(model, log_size)
    bg = torch.zeros(3, device=targets.device)
    l1, total = 0.0, 0.0
    for s in range(0, len(viewmats), chunk):
        out = render_frame(frame, viewmats[s : s + chunk], Ks[s : s + chunk], width, height, background=bg, backend=backend)
        l1 += float((out.alpha - targets[s : s + chunk]).abs().sum())
        total += float(out.alpha.sum())
    return l1 / targets.numel(), total / max(float(targets.sum()), 1e-12)


def fit_coverage(
    model: "MeshGaussians",
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    steps: int = 150,
    lr: float = 0.02,
    batch_views: int = 4,
    max_log_size: float = 1.0,
    backend: str = "auto",
    seed: int = 0,
) -> CoverageFit:
    """Fit one size factor per Gaussian of ``model`` (at its rest pose) so that its rendered alpha in the
    cameras ``viewmats [C,4,4]``, ``Ks [C,3,3]`` matches the mesh's coverage; bake it into ``model.rest_covars``.

    Each Gaussian's covariance is scaled by exp(2·s) with s ∈ [−max_log_size, max_log_size]; Gaussians no
    camera sees keep their size.
    """
    viewmats, Ks = viewmats.to(model.rest_vertices.device), Ks.to(model.rest_vertices.device)
    targets = mesh_coverages(model, viewmats, Ks, width, height)
    log_size = torch.zeros(len(model), device=model.rest_vertices.device, requires_grad=True)
    l1_before, ratio_before = _alpha_stats(model, log_size, viewmats, Ks, width, height, targets, backend)
    opt = torch.optim.Adam([log_size], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    bg = torch.zeros(3, device=targets.device)
    for _ in range(steps):
        idx = torch.randperm(len(viewmats), generator=gen)[:batch_views].to(viewmats.device)
        out = render_frame(_rest_frame(model, log_size), viewmats[idx], Ks[idx], width, height, background=bg, backend=backend)
        loss = (out.alpha - targets[idx]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            log_size.clamp_(-max_log_size, max_log_size)
    log_size = log_size.detach()
    l1_after, ratio_after = _alpha_stats(model, log_size, viewmats, Ks, width, height, targets, backend)
    with torch.no_grad():
        model.rest_covars.mul_(torch.exp(2.0 * log_size)[:, None, None].to(model.rest_covars))
    fit = CoverageFit(l1_before, l1_after, ratio_before, ratio_after, steps)
    log.info("coverage: alpha L1 %.4f → %.4f, alpha/coverage %.3f → %.3f (%d steps)", l1_before, l1_after, ratio_before, ratio_after, steps)
    return fit
