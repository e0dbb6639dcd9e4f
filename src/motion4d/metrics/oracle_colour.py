"""Colour from hue statistics: which palette colour the foreground pixels of renders are.

Every synthetic object is its dominant colour (:data:`motion4d.data.synth_shapes.PALETTE`) with a pattern in
the same colour darkened, lit by a headlight. Darkening (a factor on sRGB values) and mixing with a white
or grey background (a renderer's edge pixels) leave the sRGB *hue* unchanged and the shading changes it by
a few degrees, so each foreground pixel votes, with weight ``alpha × chroma`` (chroma = max − min of its
straight sRGB), for the palette colour whose hue is nearest to its own. A colour's score is its share of
the votes; the winner is the oracle's colour. Greyish pixels (chroma below ``min_chroma``: highlights,
background bleeding through) do not vote.
"""

from __future__ import annotations

import torch
from torch import Tensor

from motion4d.data.synth_shapes import PALETTE
from motion4d.data.synth_vocab import COLOURS

UNKNOWN = "unknown"
"""The answer when there is no evidence at all (nothing visible, or nothing coloured)."""


def hue_and_chroma(rgb: Tensor) -> tuple[Tensor, Tensor]:
    """HSV hue in degrees [0, 360) and chroma (max − min) of ``rgb [...,3]`` (sRGB in [0,1])."""
    if rgb.shape[-1] != 3:
        raise ValueError(f"rgb must have shape [...,3], got {list(rgb.shape)}")
    r, g, b = rgb.unbind(-1)
    # atan2 form of the hexcone hue: within a degree of the piecewise HSV formula, smooth everywhere
    hue = torch.rad2deg(torch.atan2(3**0.5 * (g - b), 2 * r - g - b)) % 360.0
    return hue, rgb.max(-1).values - rgb.min(-1).values


PALETTE_HUES: dict[str, float] = {
    name: float(hue_and_chroma(torch.tensor(PALETTE[name], dtype=torch.float64))[0]) for name in COLOURS
}
"""Hue (degrees, the atan2 hexcone form of :func:`hue_and_chroma`) of each palette colour."""


def colour_scores(rgb: Tensor, alpha: Tensor, *, min_alpha: float = 0.5, min_chroma: float = 0.08) -> dict[str, float]:
    """Each colour's share of the hue votes of the pixels ``rgb [...,3]`` (straight sRGB) with ``alpha [...]``
    (or [...,1]) above ``min_alpha`` (module docstring). All zero when nothing votes."""
    if alpha.shape[-1:] == (1,) and alpha.dim() == rgb.dim():
        alpha = alpha[..., 0]
    if alpha.shape != rgb.shape[:-1]:
        raise ValueError(f"alpha must have shape {list(rgb.shape[:-1])} (or with a trailing 1), got {list(alpha.shape)}")
    hue, chroma = hue_and_chroma(rgb.detach().float().clamp(0.0, 1.0).reshape(-1, 3))
    a = alpha.detach().float().reshape(-1)
    weight = a * chroma * ((a >= min_alpha) & (chroma >= min_chroma))
    centres = torch.tensor([PALETTE_HUES[c] for c in COLOURS])
    gap = (hue[:, None] - centres[None]).abs() % 360.0
    nearest = torch.minimum(gap, 360.0 - gap).argmin(dim=1)
    votes = torch.zeros(len(COLOURS)).index_add_(0, nearest, weight)
    total = float(votes.sum())
    return {c: float(v) / total if total > 0 else 0.0 for c, v in zip(COLOURS, votes)}


def classify_colour(rgb: Tensor, alpha: Tensor, *, min_alpha: float = 0.5, min_chroma: float = 0.08) -> tuple[str, dict[str, float]]:
    """The palette colour of the foreground of ``rgb [...,3]`` (straight sRGB in [0,1]) with ``alpha [...]``
    or [...,1], and every colour's score (share of the votes; module docstring). :data:`UNKNOWN` when
    nothing votes."""
    scores = colour_scores(rgb, alpha, min_alpha=min_alpha, min_chroma=min_chroma)
    best = max(scores, key=scores.get)
    return (best if scores[best] > 0 else UNKNOWN), scores
