"""Diffusion priors: the denoiser interface, our multi-view video transformer, its text encoder and sampling.

- :mod:`~motion4d.priors.conditioning`: :class:`Conditioning` and the :class:`Denoiser` protocol every sampler
  and guidance uses (``denoiser(x_t [B,V,T,C,H,W], timesteps [B], cond)``);
- :mod:`~motion4d.priors.mvvideo`: :class:`MultiViewVideoTransformer` (a diffusers model) and :func:`load_denoiser`;
- :mod:`~motion4d.priors.attention`: spatial / frame / view / Klotski grid-window attention;
- :mod:`~motion4d.priors.text_encoder`: the frozen all-MiniLM-L6-v2 :class:`TextEncoder`;
- :mod:`~motion4d.priors.sampling`: :func:`sample_grid` with diffusers schedulers and guidance;
- :mod:`~motion4d.priors.grid`: images ↔ pixel-space grids; :mod:`~motion4d.priors.training`: batches, loss, EMA;
  :mod:`~motion4d.priors.checkpoint`: the trainer's checkpoint.
"""

from motion4d.priors.conditioning import REFERENCE_KINDS, Conditioning, Denoiser, reference_mask
from motion4d.priors.mvvideo import MultiViewVideoTransformer, load_denoiser
from motion4d.priors.sampling import GuidanceScales, make_scheduler, sample_grid
from motion4d.priors.text_encoder import TextEmbeddings, TextEncoder

__all__ = [
    "REFERENCE_KINDS", "Conditioning", "Denoiser", "GuidanceScales", "MultiViewVideoTransformer", "TextEmbeddings",
    "TextEncoder", "load_denoiser", "make_scheduler", "reference_mask", "sample_grid",
]  # fmt: skip
