"""Image quality over a set of views: of one Gaussian frame (:func:`evaluate_views`), and of a 4D model
whose views each have their own time (:func:`evaluate_model`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from motion4d.data.transforms import ImageSet
from motion4d.gaussians import GaussianFrame
from motion4d.metrics.image import psnr, ssim
from motion4d.render.frame import group_by_time, render_frame


@dataclass
class ViewMetrics:
    """Per-view image quality of renders against ground truth."""

    psnr: list[float]
    """PSNR (dB) per view."""
    ssim: list[float]
    """SSIM per view."""
    seconds_per_frame: float
    """Mean wall time to render one view."""

    @property
    def mean_psnr(self) -> float:
        """Mean PSNR over views."""
        return sum(self.psnr) / max(len(self.psnr), 1)

    @property
    def mean_ssim(self) -> float:
        """Mean SSIM over views."""
        return sum(self.ssim) / max(len(self.ssim), 1)


@torch.no_grad()
def evaluate_views(
    frame: GaussianFrame,
    images: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    *,
    background: Tensor,
    backend: str = "auto",
    return_renders: bool = False,
) -> ViewMetrics | tuple[ViewMetrics, Tensor]:
    """Render each camera and compare with ``images [M,H,W,3]`` (in [0,1], on ``background [3]``).

    Returns :class:`ViewMetrics` and, with ``return_renders``, the renders [M,H,W,3] on CPU.
    """
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape [M,H,W,3], got {list(images.shape)}")
    M, H, W, _ = images.shape
    if viewmats.shape != (M, 4, 4) or Ks.shape != (M, 3, 3):
        raise ValueError(f"need viewmats [{M},4,4] and Ks [{M},3,3], got {list(viewmats.shape)}, {list(Ks.shape)}")
    psnrs, ssims, renders, seconds = [], [], [], 0.0
    if M > 0:  # warm-up (JIT compilation, allocator) so the timing is of steady-state renders
        render_frame(frame, viewmats[:1], Ks[:1], W, H, background=background, backend=backend)
    for i in range(M):
        t0 = time.perf_counter()
        out = render_frame(frame, viewmats[i : i + 1], Ks[i : i + 1], W, H, background=background, backend=backend)
        seconds += time.perf_counter() - t0
        pred = out.rgb.clamp(0, 1)
        gt = images[i : i + 1].to(pred)
        psnrs.append(float(psnr(pred, gt)))
        ssims.append(float(ssim(pred, gt)))
        if return_renders:
            renders.append(pred.cpu())
    metrics = ViewMetrics(psnrs, ssims, seconds / max(M, 1))
    if return_renders:
        return metrics, torch.cat(renders) if renders else images.new_zeros(0, H, W, 3)
    return metrics


@torch.no_grad()
def evaluate_model(model, views: ImageSet, *, background: Tensor, backend: str = "auto") -> ViewMetrics:
    """Metrics of ``model`` (anything with ``at_time(t)``) on ``views``: each image rendered at its own
    ``time`` (all at t=0 when ``views.times`` is None), the model evaluated once per distinct time; the
    per-view lists are in the order of ``views``."""
    if views.times is None:
        return evaluate_views(model.at_time(0.0), views.images, views.viewmats, views.Ks, background=background, backend=backend)
    M = views.images.shape[0]
    psnrs, ssims, seconds = [0.0] * M, [0.0] * M, 0.0
    for t, rows in group_by_time(views.times):
        m = evaluate_views(model.at_time(t), views.images[rows], views.viewmats[rows], views.Ks[rows], background=background, backend=backend)
        for i, p, s in zip(rows.tolist(), m.psnr, m.ssim):
            psnrs[i], ssims[i] = p, s
        seconds += m.seconds_per_frame * len(rows)
    return ViewMetrics(psnrs, ssims, seconds / max(M, 1))
