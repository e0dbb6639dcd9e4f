"""Procedural textures of the test characters: one horizontal band of the image per part, a pattern in each.

Patterns (chosen per part by the seed): ``stripes`` (across the part), ``rings`` (around it), ``spots``,
``checker`` and ``panels`` (a machine's plates with dark seams and a hazard stripe). Two colours per
character (a saturated base and a contrasting shade), so that motion is visible along every part.
"""

from __future__ import annotations

import colorsys

import numpy as np

PATTERNS = ("stripes", "rings", "spots", "checker")
"""The organic patterns; machines wear ``panels``."""


def palette(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two sRGB colours [3] in [0,1]: a saturated base of a random hue and a darker, hue-shifted shade."""
    h = float(rng.uniform(0, 1))
    base = colorsys.hsv_to_rgb(h, float(rng.uniform(0.55, 0.85)), float(rng.uniform(0.75, 0.95)))
    shade = colorsys.hsv_to_rgb((h + float(rng.uniform(0.05, 0.15))) % 1.0, float(rng.uniform(0.4, 0.8)), float(rng.uniform(0.3, 0.5)))
    return np.asarray(base), np.asarray(shade)


def _pattern(kind: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[H,W] mix in [0,1] of the shade over the base at band coordinates ``u`` (around) and ``v`` (along)."""
    if kind == "stripes":
        n = int(rng.integers(3, 7))
        return (np.sin(2 * np.pi * (n * u + float(rng.uniform(0, 1)))) > 0.3).astype(np.float64)
    if kind == "rings":
        n = int(rng.integers(4, 10))
        return (np.sin(2 * np.pi * n * v + 2 * np.pi * u) > 0.2).astype(np.float64)
    if kind == "spots":
        m = np.zeros_like(u)
        for _ in range(int(rng.integers(6, 14))):
            cu, cv, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.06, 0.14)
            du = np.minimum(np.abs(u - cu), 1 - np.abs(u - cu))
            m = np.maximum(m, ((du / r) ** 2 + ((v - cv) / (2 * r)) ** 2 < 1).astype(np.float64))
        return m
    if kind == "checker":
        n = int(rng.integers(3, 6))
        return ((np.floor(u * 2 * n) + np.floor(v * n)) % 2).astype(np.float64)
    if kind == "panels":
        n = int(rng.integers(2, 4))
        seams = (np.minimum((u * 6 * n) % 1, (v * n) % 1) < 0.08).astype(np.float64)
        hazard = ((v > 0.75) & ((u * 24 + v * 4) % 1 < 0.5)).astype(np.float64)
        return np.maximum(seams, hazard)
    raise ValueError(f"unknown pattern {kind!r}")


def character_texture(n_parts: int, rng: np.random.Generator, *, machine: bool = False, size: int = 256) -> np.ndarray:
    """[size,size,3] uint8 texture with ``n_parts`` horizontal bands (part i: rows i/n to (i+1)/n), each a
    random pattern in the character's two colours (machines: panels)."""
    base, shade = palette(rng)
    img = np.zeros((size, size, 3))
    rows = np.linspace(0, size, n_parts + 1).round().astype(int)
    for i in range(n_parts):
        h = rows[i + 1] - rows[i]
        v, u = np.meshgrid((np.arange(h) + 0.5) / max(h, 1), (np.arange(size) + 0.5) / size, indexing="ij")
        kind = "panels" if machine else PATTERNS[int(rng.integers(len(PATTERNS)))]
        mix = _pattern(kind, u, v, rng)[..., None]
        img[rows[i] : rows[i + 1]] = base * (1 - mix) + shade * mix
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
