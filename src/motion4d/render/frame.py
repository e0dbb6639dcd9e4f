"""Rendering one Gaussian frame into a batch of cameras, and grouping images by time so that a 4D model
is evaluated once per distinct time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from motion4d.gaussians import GaussianFrame
from motion4d.render.rasterization import rasterization


@dataclass
class RenderOutput:
    """One batch of rendered views."""

    rgb: Tensor
    """[C,H,W,3] colours composited on the background."""
    alpha: Tensor
    """[C,H,W,1] accumulated opacity."""
    meta: dict
    """The rasterizer's ``meta`` (``means2d`` with its gradient, ``radii``, ...)."""


def render_frame(
    frame: GaussianFrame,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    background: Tensor,
    sh_degree: int | None = None,
    backend: str = "auto",
) -> RenderOutput:
    """Render ``frame`` into C cameras (``viewmats [C,4,4]``, ``Ks [C,3,3]``) on ``background [C,3]`` or [3].

    ``sh_degree`` (default: all the frame holds) limits the SH bands used.
    """
    C = viewmats.shape[0]
    background = background.to(frame.means)
    if background.dim() == 1:
        background = background[None].expand(C, 3)
    degree = frame.sh_degree if sh_degree is None else min(sh_degree, frame.sh_degree)
    rgb, alpha, meta = rasterization(
        frame.means, frame.quats, frame.scales, frame.opacities, frame.sh,
        viewmats.to(frame.means), Ks.to(frame.means), width, height,
        sh_degree=degree, backgrounds=background, backend=backend, covars=frame.covars, rasterize_mode=frame.rasterize_mode,
    )  # fmt: skip
    return RenderOutput(rgb, alpha, meta)


def group_by_time(times: Tensor) -> list[tuple[float, Tensor]]:
    """``[(t, rows)]``: each distinct value ``t`` of ``times [M]`` once, ascending, with the indices
    ``rows [k]`` (long, on ``times``' device) of the entries equal to it — render a 4D model once per ``t``."""
    if times.dim() != 1:
        raise ValueError(f"times must have shape [M], got {list(times.shape)}")
    return [(float(t), torch.where(times == t)[0]) for t in torch.unique(times)]
