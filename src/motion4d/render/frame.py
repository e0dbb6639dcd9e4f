"""Rendering one Gaussian frame into a batch of cameras, grouping images by time so that a 4D model is
evaluated once per distinct time, and rendering a model over time (videos)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from motion4d.progress import bar_disabled
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


@torch.no_grad()
def render_over_time(
    model, viewmats: Tensor, K: Tensor, width: int, height: int, times: Tensor, *,
    background=(1.0, 1.0, 1.0), backend: str = "auto", progress: bool = False,
) -> Tensor:
    """Frames [T,H,W,3] in [0,1] on CPU: frame i is ``model`` (anything with ``at_time(t) -> GaussianFrame``)
    at ``times[i]`` seen from ``viewmats[i]`` (``viewmats [T,4,4]``, ``times [T]``, one ``K [3,3]``), on
    ``background`` (RGB); the model is evaluated once per distinct time."""
    if viewmats.shape[0] != times.shape[0]:
        raise ValueError(f"need one viewmat per time, got {viewmats.shape[0]} and {times.shape[0]}")
    frames: list[Tensor | None] = [None] * times.shape[0]
    with tqdm(total=times.shape[0], desc="render", disable=bar_disabled(progress)) as bar:
        for t, rows in group_by_time(times):
            frame = model.at_time(t)
            bg = torch.tensor(background, dtype=torch.float32, device=frame.means.device)
            for i in rows.tolist():
                out = render_frame(frame, viewmats[i : i + 1].to(bg.device), K[None].to(bg.device), width, height, background=bg, backend=backend)
                frames[i] = out.rgb.clamp(0, 1).cpu()
                bar.update(1)
    return torch.cat(frames)
