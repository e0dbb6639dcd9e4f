"""Loss providers: what a training step minimises, apart from the loop that minimises it.

A provider is any callable ``provider(ctx: StepContext) -> LossOutput`` (or a plain mapping of terms):
each step :class:`~motion4d.optim.trainer_base.GaussianTrainer` calls its providers in order, collects
their unweighted scalar terms ``"loss_<name>"``, adds the model's regularisers (evaluated at the first
``time`` a provider reports) and minimises ``Σ lambda_<name> · loss_<name>`` with the weights of its
config. A provider draws its randomness from ``ctx.generator`` (the trainer's checkpointed generator, so
a resumed run continues exactly) and hands the rasterizer metas of the renders it made back in
:attr:`LossOutput.metas`, from which density control reads the screen-space gradients after backward.

The photometric term over posed images (:class:`PhotometricLoss`) is one provider; one that renders
random cameras and returns ``{"loss_sds": ...}`` without any images is another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Union

import torch
from torch import Tensor

from motion4d.metrics.image import ssim
from motion4d.optim.losses import l1_loss
from motion4d.render.frame import RenderOutput, group_by_time, render_frame

if TYPE_CHECKING:
    from motion4d.data.transforms import ImageSet
    from motion4d.gaussians import GaussianFrame
    from motion4d.optim.hooks import GaussianModel


@dataclass(frozen=True)
class StepContext:
    """What a provider knows about the step it computes the loss of."""

    step: int
    """Index of this step (0-based: the number of steps completed before it)."""
    progress: float
    """Training progress in [0,1] (step and time-budget fraction; see ``GaussianTrainer.progress``)."""
    sh_degree: int
    """SH degree to render with at this step (the trainer's progressive schedule)."""
    generator: torch.Generator
    """The trainer's CPU generator: draw every random choice from it (it is checkpointed)."""


@dataclass
class LossOutput:
    """One provider's contribution to a step."""

    losses: dict[str, Tensor]
    """Unweighted scalar terms by name, each ``"loss_<name>"`` (weighted by the config's ``lambda_<name>``)."""
    metas: list[dict] = field(default_factory=list)
    """Rasterizer metas of this step's renders (``means2d`` kept for its gradient): density control's input."""
    time: float | None = None
    """A time this step rendered the model at: the model's regularisers are evaluated at the first one reported."""


class LossProvider(Protocol):
    """Computes (part of) one training step's loss."""

    def __call__(self, ctx: StepContext) -> Union[LossOutput, Mapping[str, Tensor]]:
        """The step's terms (see :class:`LossOutput`); a plain mapping means terms only, no renders."""
        ...


def as_loss_output(out: Union[LossOutput, Mapping[str, Tensor]]) -> LossOutput:
    """A provider's answer as a :class:`LossOutput`, with every term name checked to be ``loss_<name>``."""
    if not isinstance(out, LossOutput):
        if not isinstance(out, Mapping):
            raise TypeError(f"a loss provider must return a LossOutput or a mapping of loss_* terms, got {type(out).__name__}")
        out = LossOutput(dict(out))
    for name in out.losses:
        if not name.startswith("loss_") or name == "loss_":
            raise ValueError(f"loss term names must be 'loss_<name>', got {name!r}")
    return out


def photometric_loss(rgb: Tensor, gt: Tensor, lambda_dssim: float) -> Tensor:
    """(1-λ)·L1 + λ·(1-SSIM) of renders ``rgb [B,H,W,3]`` against ``gt [B,H,W,3]`` (λ = ``lambda_dssim``)."""
    loss = (1.0 - lambda_dssim) * l1_loss(rgb, gt)
    return loss + lambda_dssim * (1.0 - ssim(rgb, gt)) if lambda_dssim > 0 else loss


@dataclass
class TrainViews:
    """An ImageSet's images and cameras on the training device."""

    images: Tensor
    """[M,H,W,3] float32 targets (composited on the data's background)."""
    alphas: Tensor | None
    """[M,H,W,1] float32 foreground masks, or None."""
    viewmats: Tensor
    """[M,4,4] world→camera."""
    Ks: Tensor
    """[M,3,3] intrinsics."""
    width: int
    height: int

    @classmethod
    def of(cls, views: "ImageSet", device: torch.device | str) -> "TrainViews":
        """``views``' tensors as float32 on ``device``."""
        alphas = views.alphas.to(device, torch.float32) if views.alphas is not None else None
        return cls(views.images.to(device, torch.float32), alphas, views.viewmats.to(device, torch.float32), views.Ks.to(device, torch.float32),
                   views.width, views.height)  # fmt: skip

    def __len__(self) -> int:
        return self.images.shape[0]


def render_by_time(
    model: "GaussianModel", views: TrainViews, rows: Tensor, row_times: Tensor, *, background: Tensor, sh_degree: int | None, backend: str
) -> Iterator[tuple[Tensor, "GaussianFrame", RenderOutput]]:
    """Render the images ``rows [B]`` (times ``row_times [B]``), the model evaluated once per distinct time.

    Yields ``(idx [b], frame, render)`` per distinct time, ascending: ``idx`` the rows at that time (on
    the views' device), ``frame`` the model at it, ``render`` of ``frame`` into those cameras.
    """
    for t, pos in group_by_time(row_times):
        idx = rows[pos].to(views.images.device)
        frame = model.at_time(t)
        out = render_frame(frame, views.viewmats[idx], views.Ks[idx], views.width, views.height, background=background, sh_degree=sh_degree, backend=backend)
        yield idx, frame, out


class PhotometricLoss:
    """``loss_photometric``: (1-λ)·L1 + λ·(1-SSIM) of a static model's renders against a random batch of views.

    Args:
        model: the model (rendered at ``at_time()``).
        views: the training views.
        batch_size: views rendered per step (the loss is their mean).
        lambda_dssim: λ, the D-SSIM share of the term.
        background: [3] background colour of the targets and renders.
        random_background: composite each step's targets and renders on a random colour (needs ``views.alphas``).
        backend: rasterizer backend.
    """

    def __init__(self, model: "GaussianModel", views: TrainViews, *, batch_size: int, lambda_dssim: float, background: Tensor,
                 random_background: bool = False, backend: str = "auto"):  # fmt: skip
        if random_background and views.alphas is None:
            raise ValueError("random_background needs images with an alpha channel")
        self.model, self.views = model, views
        self.batch_size, self.lambda_dssim, self.background = batch_size, lambda_dssim, background
        self.random_background, self.backend = random_background, backend

    def _targets(self, idx: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        gt = self.views.images[idx]
        if not self.random_background:
            return gt, self.background[None].expand(len(idx), 3)
        bg = torch.rand(len(idx), 3, generator=generator).to(gt.device)
        gt = gt + (bg[:, None, None, :] - self.background) * (1.0 - self.views.alphas[idx])
        return gt, bg

    def __call__(self, ctx: StepContext) -> LossOutput:
        v = self.views
        idx = torch.randperm(len(v), generator=ctx.generator)[: self.batch_size].to(v.images.device)
        gt, bg = self._targets(idx, ctx.generator)
        out = render_frame(self.model.at_time(), v.viewmats[idx], v.Ks[idx], v.width, v.height, background=bg, sh_degree=ctx.sh_degree, backend=self.backend)
        return LossOutput({"loss_photometric": photometric_loss(out.rgb, gt, self.lambda_dssim)}, [out.meta])
