"""The loss provider of ``animate``: a keyframed model against the images of a multi-view driving video.

Each image belongs to the keyframe nearest its time. Frames are brought in progressively (tracking): at
the start only the first keyframe is fitted; over the first ``warmup_fraction`` of training the later
ones join one after another, each starting from its predecessor's pose (``model.copy_frame``), so a new
frame begins close to its answer. Half of each step's images come from the newest frame, the rest from
all active ones. Terms (each the mean over the step's images):

- ``loss_photometric``: (1 − λ_dssim)·L1 + λ_dssim·(1 − SSIM) of the renders,
- ``loss_mask``: L1 between the rendered alpha and the images' alpha (data with alpha, ``masks``),
- ``loss_silhouette``: chamfer (in image widths) between the projected surface points and the images'
  foreground pixels (:func:`~motion4d.optim.losses.silhouette_chamfer`; data with alpha, ``silhouettes``).
"""

from __future__ import annotations

import math
import torch
from torch import Tensor

from motion4d.optim.hooks import KeyframedModel
from motion4d.optim.losses import SilhouetteTarget, silhouette_chamfer
from motion4d.optim.providers import LossOutput, StepContext, TrainViews, photometric_loss, render_by_time
from motion4d.render.cameras import project_points
from motion4d.render.frame import render_frame


_RUNNING = 0.2
"""Weight of each new image in a frame's running error (about its last five images)."""


class DrivingVideoLoss:
    """Photometric, mask and silhouette terms of ``model`` against driving images (see the module docstring).

    Args:
        model: the keyframed model.
        views: the driving images; times: [M] their times.
        batch_views: images rendered per step.
        lambda_dssim: the D-SSIM share of the photometric term.
        warmup_fraction: fraction of training over which keyframes join one by one (0: all from the start).
        masks: compute ``loss_mask`` (needs ``views.alphas``).
        silhouettes: compute ``loss_silhouette`` (needs ``views.alphas``).
        background: [3] background colour.
        error_share: once all frames have joined, the share of image draws whose frame is chosen in
            proportion to its running relative silhouette error (colour error without alpha); the rest are
            uniform over frames. 0: uniform, with half of each step still from the newest frame (as before).
        backend: rasterizer backend.
    """

    def __init__(self, model: KeyframedModel, views: TrainViews, times: Tensor, *, batch_views: int, lambda_dssim: float, warmup_fraction: float,
                 masks: bool, silhouettes: bool, background: Tensor, error_share: float, backend: str = "auto"):  # fmt: skip
        if (masks or silhouettes) and views.alphas is None:
            raise ValueError("mask and silhouette terms need images with an alpha channel")
        self.model, self.views, self.batch_views = model, views, batch_views
        self.lambda_dssim, self.warmup_fraction, self.background, self.backend = lambda_dssim, warmup_fraction, background, backend
        self.masks = masks
        self.silhouettes = [SilhouetteTarget.from_alpha(a) for a in views.alphas] if silhouettes else None
        ft = model.graph.frame_times.cpu()
        self.frame_of_row = (times.double()[:, None] - ft.double()[None]).abs().argmin(dim=1)  # [M]
        self.rows_of_frame = [torch.where(self.frame_of_row == f)[0] for f in range(len(ft))]
        self.active = 1 if warmup_fraction > 0 else len(ft)
        """Number of keyframes fitted so far (the first ``active``)."""
        self.error_share = error_share
        self.running_error = torch.full((len(ft),), float("nan"))
        """[T] each keyframe's running relative error (an average over its recent training images; NaN: none
        rendered yet), which ``error_share`` samples by."""

    @property
    def n_frames(self) -> int:
        """T, the number of keyframes."""
        return len(self.rows_of_frame)

    def activate(self, progress: float) -> None:
        """Let the keyframes due at ``progress`` join, each starting from its predecessor's pose."""
        n, w = self.n_frames, self.warmup_fraction
        want = n if w <= 0 else min(n, 1 + int(math.floor((n - 1) * min(progress / w, 1.0) + 1e-9)))
        while self.active < want:
            self.model.copy_frame(self.active - 1, self.active)
            self.active += 1

    def sample_rows(self, generator: torch.Generator) -> Tensor:
        """[batch_views] image rows: half from the newest active frame, the rest from all active ones; once all
        frames are active and ``error_share`` > 0, each row's frame drawn by :meth:`frame_weights`."""
        b = self.batch_views
        if self.error_share > 0 and self.active == self.n_frames:
            frames = torch.multinomial(self.frame_weights(), b, replacement=True, generator=generator)
            return torch.stack([self.rows_of_frame[f][torch.randint(len(self.rows_of_frame[f]), (1,), generator=generator)[0]] for f in frames.tolist()])
        newest = self.rows_of_frame[self.active - 1]
        n_new = min((b + 1) // 2, len(newest))
        rows = [newest[torch.randperm(len(newest), generator=generator)[:n_new]]]
        pool = torch.cat(self.rows_of_frame[: self.active])
        rows.append(pool[torch.randint(len(pool), (b - n_new,), generator=generator)])
        return torch.cat(rows)

    def frame_weights(self) -> Tensor:
        """[T] the probability of drawing each keyframe: ``error_share`` in proportion to its running error
        (a frame not rendered yet counts as the worst), the rest uniform."""
        e = self.running_error.clone()
        known = ~torch.isnan(e)
        e[~known] = float(e[known].max()) if bool(known.any()) else 1.0
        e = e.clamp_min(0)
        by_error = e / e.sum() if float(e.sum()) > 0 else torch.full_like(e, 1 / len(e))
        return self.error_share * by_error + (1 - self.error_share) / len(e)

    def __call__(self, ctx: StepContext) -> LossOutput:
        self.activate(ctx.progress)
        return self.terms(self.sample_rows(ctx.generator), track=True)

    def frame_rows(self, frame: int, max_views: int = 8) -> Tensor:
        """Up to ``max_views`` image rows of keyframe ``frame``, spread over its views."""
        rows = self.rows_of_frame[frame]
        return rows[torch.linspace(0, len(rows) - 1, min(max_views, len(rows))).round().long()]

    def terms(self, rows: Tensor, *, track: bool = False) -> LossOutput:
        """The terms over the image rows ``rows`` (``track``: also update the frames' running errors)."""
        ft = self.model.graph.frame_times.cpu()
        v = self.views
        zero = torch.zeros((), device=v.images.device)
        photometric, mask, silhouette = zero, zero, zero
        metas = []
        for idx, posed, out in render_by_time(self.model, v, rows, ft[self.frame_of_row[rows]], background=self.background, sh_degree=None,
                                              backend=self.backend):  # fmt: skip
            share = len(idx) / len(rows)
            photometric = photometric + photometric_loss(out.rgb, v.images[idx], self.lambda_dssim) * share
            if track:
                self.track(idx, out)
            if self.masks:
                mask = mask + (out.alpha - v.alphas[idx]).abs().mean() * share
            if self.silhouettes is not None:
                silhouette = silhouette + self.silhouette(posed.means, idx) * share
            metas.append(out.meta)
        terms = {"loss_photometric": photometric}
        if self.masks:
            terms["loss_mask"] = mask
        if self.silhouettes is not None:
            terms["loss_silhouette"] = silhouette
        return LossOutput(terms, metas, time=float(ft[self.frame_of_row[rows[0]]]))

    def scored(self, out, idx: Tensor) -> tuple[Tensor, Tensor]:
        """What the relative errors compare for the renders ``out`` of rows ``idx``: alpha against the images'
        alpha, or colour against the images where the data has no alpha."""
        v = self.views
        return (out.alpha, v.alphas[idx]) if v.alphas is not None else (out.rgb, v.images[idx])

    @torch.no_grad()
    def track(self, idx: Tensor, out) -> None:
        """Fold the relative errors of the renders ``out`` of rows ``idx`` into their frames' running errors."""
        got, target = self.scored(out, idx)
        err = ((got - target).abs().flatten(1).sum(1) / target.abs().flatten(1).sum(1).clamp_min(1e-6)).cpu()
        for f, e in zip(self.frame_of_row[idx.cpu()].tolist(), err.tolist()):
            old = float(self.running_error[f])
            self.running_error[f] = e if math.isnan(old) else (1 - _RUNNING) * old + _RUNNING * e

    def silhouette(self, means: Tensor, idx: Tensor) -> Tensor:
        """Mean silhouette chamfer (in image widths) of the surface points ``means [N,3]`` over the images ``idx``."""
        uv, z = project_points(means, self.views.viewmats[idx], self.views.Ks[idx])
        total = means.sum() * 0.0
        for b, row in enumerate(idx.tolist()):
            total = total + silhouette_chamfer(uv[b][z[b] > 0], self.silhouettes[row])
        return total / (len(idx) * self.views.width)

    @torch.no_grad()
    def frame_errors(self, max_views: int = 8) -> Tensor:
        """[T] each keyframe's relative silhouette error now, Σ|alpha − mask| / Σ mask over up to
        ``max_views`` of its images (relative colour error for data without alpha)."""
        v = self.views
        errors = torch.zeros(self.n_frames)
        ft = self.model.graph.frame_times
        for f in range(self.n_frames):
            idx = self.frame_rows(f, max_views).to(v.images.device)
            out = render_frame(self.model.at_time(float(ft[f])), v.viewmats[idx], v.Ks[idx], v.width, v.height, background=self.background,
                               backend=self.backend)  # fmt: skip
            got, target = self.scored(out, idx)
            errors[f] = float((got - target).abs().sum() / target.abs().sum().clamp_min(1e-6))
        return errors
