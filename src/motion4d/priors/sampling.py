"""Sampling a grid from any :class:`~motion4d.priors.conditioning.Denoiser` with diffusers schedulers.

Classifier-free guidance composes four predictions, each condition added on the previous ones
(the nesting of InstructPix2Pix, extended by the motion condition):

    p = p(∅) + s_ref · (p(ref) − p(∅)) + s_text · (p(ref, text) − p(ref)) + s_motion · (p(ref, text, motion) − p(ref, text))

that is ``Σ w_i p_i`` with ``w = (1 − s_ref, s_ref − s_text, s_text − s_motion, s_motion)``; predictions whose
weight is 0 are not computed, and without reference cells the first two are one. All scales 1 is the plain
conditional prediction. The motion condition's null is a *static* clip (see :mod:`motion4d.priors.training`),
and ``s_motion`` is the guidance scale times each sample's ``motion_scale``: the motion-amplitude enhancement
acts through the motion tokens' amplitude and through the guidance (0 asks for no motion, 2 for more than
the data's). The reference cells are put back clean before every denoiser call and at the end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import Tensor
from tqdm.auto import tqdm

from motion4d.progress import bar_disabled
from motion4d.priors.conditioning import Conditioning, Denoiser

logger = logging.getLogger(__name__)

SCHEDULERS = ("dpm++", "ddim", "ddpm")
"""Sampler names: DPM-Solver++ (2nd order, the default), DDIM (deterministic), DDPM (ancestral, the training chain)."""


@dataclass(frozen=True)
class GuidanceScales:
    """Classifier-free guidance scales (1 = that condition's plain conditional prediction, 0 = ignore it)."""

    text: float = 4.0
    """Strength of the prompt, on top of the reference cells."""
    reference: float = 1.5
    """Strength of the given reference cells (no effect when none is given)."""
    motion: float = 1.5
    """Strength of the motion condition (the motion tokens at ``motion_scale``), on top of the text."""


def make_scheduler(denoiser: Denoiser, kind: str = "dpm++"):
    """A diffusers scheduler of ``kind`` (:data:`SCHEDULERS`) over the denoiser's training noise schedule."""
    config = dict(denoiser.scheduler_config)
    if kind == "ddpm":
        return DDPMScheduler.from_config(config)
    if kind == "ddim":
        return DDIMScheduler.from_config(config, timestep_spacing="trailing", set_alpha_to_one=False)
    if kind == "dpm++":
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing", final_sigmas_type="zero",
            thresholding=False,
        )
    raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {kind!r}")


def guidance_terms(cond: Conditioning, scales: GuidanceScales) -> list[tuple[Tensor, Conditioning]]:
    """The ``(weights [B], conditioning)`` pairs whose weighted sum of predictions is the guided prediction."""
    s_motion = scales.motion * cond.motion_scale.float()
    s_text = torch.full_like(s_motion, scales.text)
    s_ref = torch.full_like(s_motion, scales.reference)
    levels = [
        (1.0 - s_ref, cond.dropped(text=True, reference=True, motion=True)),
        (s_ref - s_text, cond.dropped(text=True, motion=True)),
        (s_text - s_motion, cond.dropped(motion=True)),
        (s_motion, cond),
    ]
    if cond.reference_mask is None or not bool(cond.reference_mask.any()):
        levels = [(levels[0][0] + levels[1][0], levels[0][1])] + levels[2:]
    return [(w, c) for w, c in levels if bool(w.ne(0).any())]


def guided_prediction(denoiser: Denoiser, x_t: Tensor, t: Tensor, cond: Conditioning, scales: GuidanceScales) -> Tensor:
    """The guided prediction ``[B,V,T,C,H,W]`` (in the denoiser's parameterisation), all terms in one batch."""
    terms = guidance_terms(cond, scales)
    b = x_t.shape[0]
    batch_cond = Conditioning.cat([c for _, c in terms])
    timesteps = torch.as_tensor(t, device=x_t.device).reshape(1).expand(b * len(terms))
    out = denoiser(x_t.repeat(len(terms), 1, 1, 1, 1, 1), timesteps, batch_cond).split(b)
    return sum(w.to(o).view(b, 1, 1, 1, 1, 1) * o for (w, _), o in zip(terms, out))


@torch.no_grad()
def sample_grid(
    denoiser: Denoiser,
    cond: Conditioning,
    shape: tuple[int, int, int, int, int],
    *,
    steps: int = 25,
    scheduler: str = "dpm++",
    guidance: GuidanceScales = GuidanceScales(),
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> Tensor:
    """Sample ``[B, V, T, C, H, W]`` grids (``shape`` is ``(V, T, C, H, W)``, B from ``cond``).

    ``seed`` fixes the initial noise (drawn on the CPU, so the same seed gives the same grid on any device) and
    the sampler's noise. Given reference cells come out exactly as given.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    b = cond.batch_size
    cond = cond.to(device)
    sched = make_scheduler(denoiser, scheduler)
    sched.set_timesteps(steps, device=device)
    generator = torch.Generator("cpu").manual_seed(seed)
    x = (torch.randn((b, *shape), generator=generator) * sched.init_noise_sigma).to(device)
    cond.check(x)
    for t in tqdm(sched.timesteps, desc="sampling", disable=bar_disabled(progress), leave=False):
        x = cond.apply_reference(x)
        pred = guided_prediction(denoiser, sched.scale_model_input(x, t), t, cond, guidance)
        x = sched.step(pred, t, x, generator=generator).prev_sample
    return cond.apply_reference(x)
