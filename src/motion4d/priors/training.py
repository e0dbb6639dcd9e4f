"""What one training step of the prior needs: batches from packed samples, the diffusion loss, EMA weights.

A batch is assembled per sample from a packed :class:`~motion4d.data.synth_packed.SynthSample`:

- views: ``views`` of the sample's views in random order, view 0 (the front camera) first with probability
  ``front_prob``; frames: ``frames`` evenly spaced over the clip;
- reference mask: one of :data:`~motion4d.priors.conditioning.REFERENCE_KINDS` drawn with ``reference_probs``
  (none = text → 4D, image, video, static asset);
- condition dropout for classifier-free guidance: no text with ``p_drop_text``; no motion with ``p_static``,
  whose clip is then *static* (one random frame repeated) and whose ``motion_scale`` is 0, so that the motion
  condition means "this motion, at this amplitude" against "standing still";
- motion scale: the sample's recorded ``amplitude`` (the factor k of :mod:`motion4d.data.synth_motion`; 1, the
  data's typical amplitude, when the record has none), so that a dataset drawn over a range of amplitudes
  teaches what ``motion_scale`` 0.5 or 2 looks like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motion4d.data.synth_packed import SynthSample
from motion4d.priors.conditioning import REFERENCE_KINDS, Conditioning, Denoiser, reference_mask
from motion4d.priors.grid import rgba_to_grid
from motion4d.priors.text_encoder import TextEncoder


@dataclass(frozen=True)
class BatchRecipe:
    """How training grids are cut out of packed samples (see the module docstring)."""

    views: int = 4
    """Views V per training grid (at most the dataset's views per sample)."""
    frames: int = 8
    """Frames T per training grid, evenly spaced over the clip (at most the dataset's frames)."""
    resolution: int = 64
    """Side of the training images (the data is resized when its ``res`` differs)."""
    front_prob: float = 0.5
    """Probability that the grid's view 0 is the sample's front camera (view 0)."""
    reference_probs: tuple[float, float, float, float] = (0.4, 0.2, 0.2, 0.2)
    """Probabilities of the reference kinds none / image / video / static."""
    p_drop_text: float = 0.1
    """Probability of training a sample without its text (for text guidance)."""
    p_static: float = 0.1
    """Probability of training a sample without motion: a static clip with ``motion_scale`` 0 (motion guidance)."""


def frame_indices(available: int, frames: int) -> Tensor:
    """``frames`` indices evenly spaced over ``available`` frames, first and last included."""
    if not 1 <= frames <= available:
        raise ValueError(f"frames must be in 1..{available} (the data's frames), got {frames}")
    return torch.linspace(0, available - 1, frames).round().long()


def pick_views(available: int, views: int, front_prob: float, generator: torch.Generator) -> Tensor:
    """``views`` distinct view indices out of ``available``, random order; view 0 first with ``front_prob``."""
    if not 1 <= views <= available:
        raise ValueError(f"views must be in 1..{available} (the data's views per sample), got {views}")
    if torch.rand((), generator=generator) < front_prob:
        rest = torch.randperm(available - 1, generator=generator)[: views - 1] + 1
        return torch.cat([torch.zeros(1, dtype=torch.long), rest])
    return torch.randperm(available, generator=generator)[:views]


def make_batch(
    samples: Sequence[SynthSample], text: TextEncoder, recipe: BatchRecipe, generator: torch.Generator
) -> tuple[Tensor, Conditioning]:
    """Clean grids ``x0 [B, V, T, 4, R, R]`` and their :class:`Conditioning` (reference = ``x0`` under its mask)."""
    grids, cams, masks, static = [], [], [], []
    times = None
    kinds = torch.multinomial(torch.tensor(recipe.reference_probs, dtype=torch.float), len(samples), True, generator=generator)
    for s, kind in zip(samples, kinds):
        vi = pick_views(s.images.shape[0], recipe.views, recipe.front_prob, generator)
        ti = frame_indices(s.images.shape[1], recipe.frames)
        grid = rgba_to_grid(s.images[vi][:, ti])  # [V, T, 4, R, R]
        if grid.shape[-1] != recipe.resolution:
            grid = F.interpolate(grid.flatten(0, 1), size=recipe.resolution, mode="area").unflatten(0, grid.shape[:2])
        is_static = bool(torch.rand((), generator=generator) < recipe.p_static)
        if is_static:
            grid = grid[:, torch.randint(grid.shape[1], (), generator=generator)].unsqueeze(1).expand_as(grid)
        grids.append(grid)
        static.append(is_static)
        cams.append(torch.stack([s.azimuth_deg[vi], s.elevation_deg[vi], s.radius[vi]]))
        masks.append(reference_mask(REFERENCE_KINDS[int(kind)], recipe.views, recipe.frames))
        times = s.times[ti]
    x0 = torch.stack(grids).contiguous()
    cams = torch.stack(cams).float()
    emb = text.encode([s.record["caption"] for s in samples])
    scale = torch.tensor([float(s.record.get("amplitude", 1.0)) for s in samples])
    cond = Conditioning.create(emb, cams[:, 0], cams[:, 1], cams[:, 2], times, motion_scale=scale, reference=x0,
                               reference_mask=torch.stack(masks))  # fmt: skip
    drop_text = torch.rand(len(samples), generator=generator) < recipe.p_drop_text
    return x0, cond.dropped(text=drop_text, motion=torch.tensor(static))


def draw_timesteps(n: int, num_train_timesteps: int, generator: torch.Generator, *, high_noise_fraction: float = 0.0,
                   high_noise_span: float = 0.25) -> Tensor:  # fmt: skip
    """``n`` training timesteps: uniform over the schedule, except that each is, with probability
    ``high_noise_fraction``, drawn uniformly from the noisiest ``high_noise_span`` of it instead. That is where
    a sample's layout over the grid (where the object is in each frame and view) is decided, and where uniform
    draws spend few steps (no extra random draws when the fraction is 0)."""
    t = torch.randint(0, num_train_timesteps, (n,), generator=generator)
    if high_noise_fraction > 0:
        span = max(int(round(high_noise_span * num_train_timesteps)), 1)
        high = num_train_timesteps - 1 - torch.randint(0, span, (n,), generator=generator)
        t = torch.where(torch.rand(n, generator=generator) < high_noise_fraction, high, t)
    return t


def diffusion_loss(denoiser: Denoiser, scheduler, x0: Tensor, cond: Conditioning, generator: torch.Generator,
                   *, snr_gamma: float = 5.0, high_noise_fraction: float = 0.0, high_noise_span: float = 0.25) -> Tensor:  # fmt: skip
    """Weighted squared error of the denoiser's prediction over the cells not given as reference, at timesteps
    from :func:`draw_timesteps`; ``scheduler`` is a diffusers DDPM scheduler whose ``prediction_type`` says what the
    denoiser predicts. "epsilon" and "v_prediction" are plain MSE on their targets; "sample" (the clean grid,
    which large pixel patches can represent where noise cannot) is weighted ``min(SNR, snr_gamma) + 1``, the
    v-loss (``SNR + 1`` times the x0 error) with its low-noise end clamped."""
    b = x0.shape[0]
    t = draw_timesteps(b, scheduler.config.num_train_timesteps, generator, high_noise_fraction=high_noise_fraction,
                       high_noise_span=high_noise_span).to(x0.device)  # fmt: skip
    noise = torch.randn(x0.shape, generator=generator).to(x0)
    x_t = cond.apply_reference(scheduler.add_noise(x0, noise, t))
    pred = denoiser(x_t, t, cond)
    kind = scheduler.config.prediction_type
    weight = torch.ones(b, device=x0.device)
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(x0, noise, t)
    elif kind == "sample":
        target = x0
        abar = scheduler.alphas_cumprod.to(x0.device)[t].float()
        weight = (abar / (1.0 - abar)).clamp(max=snr_gamma) + 1.0
    else:
        raise ValueError(f"prediction type must be epsilon, v_prediction or sample, got {kind!r}")
    free = (~cond.given(x0)).float() * weight[:, None, None]
    per_cell = ((pred.float() - target.float()) ** 2).mean(dim=(-3, -2, -1))
    return (per_cell * free).sum() / (~cond.given(x0)).sum().clamp_min(1)


class EMA:
    """Exponential moving average of a model's parameters, decay warmed up as ``min(decay, (1+n)/(10+n))``."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: p.detach().clone().float() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for k, p in model.named_parameters():
            self.shadow[k].lerp_(p.detach().float(), 1.0 - d)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for k, p in model.named_parameters():
            p.copy_(self.shadow[k])
