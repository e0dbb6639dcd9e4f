"""What each sample of the captioned synthetic dataset shows: combinations, splits, captions, cameras.

Everything here is drawn from ``numpy.random.default_rng`` seeded by the dataset seed (the held-out
combinations and the order of training combinations) or by ``[seed, sample index]`` (each sample's caption,
pattern, pose jitter and cameras), so a sample is the same whichever worker renders it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from motion4d.errors import DataError
from motion4d.data.synth_motion import AMPLITUDE_RANGE, MotionSpec
from motion4d.data.synth_shapes import PatternSpec
from motion4d.data.synth_vocab import COLOURS, MOTIONS, SHAPES, make_caption

Combination = tuple[str, str, str]
"""(shape, colour, motion)."""

ALL_COMBINATIONS: tuple[Combination, ...] = tuple(itertools.product(SHAPES, COLOURS, MOTIONS))
"""All 6 × 8 × 8 = 384 shape × colour × motion combinations."""


@dataclass(frozen=True)
class SampleSpec:
    """One sample: what it shows, how it is captioned and from where it is seen."""

    index: int
    """Position in the dataset (training samples first, then held-out ones)."""
    id: str
    """Six-digit name (``000042``): the folder and the packed record's ``id``."""
    shape: str
    """Canonical shape name."""
    colour: str
    """Canonical colour name."""
    motion: str
    """Canonical motion name."""
    caption: str
    """Caption from a training template (or the ``--captions`` line)."""
    paraphrase: str
    """Another caption of the same sample from a held-out template (paraphrase test)."""
    split: str
    """"train", or "held_out" when its combination is held out."""
    pattern: PatternSpec
    """Which faces wear the second shade."""
    motion_spec: MotionSpec
    """The motion's amplitude and the rest pose's jitter."""
    azimuth_deg: np.ndarray
    """[V] camera azimuths (0 = front camera on −y, 90° on +x); the fixed evaluation views first."""
    elevation_deg: np.ndarray
    """[V] camera elevations above the xy-plane."""
    radius: np.ndarray
    """[V] camera distances from the origin."""

    def record(self) -> dict:
        """The packed form's per-sample metadata (``id, caption, shape, colour, motion, split`` + extras)."""
        return {"id": self.id, "caption": self.caption, "shape": self.shape, "colour": self.colour, "motion": self.motion,
                "split": self.split, "paraphrase": self.paraphrase, "pattern": self.pattern.kind,
                "amplitude": round(self.motion_spec.amplitude, 4)}  # fmt: skip


def choose_held_out(seed: int, fraction: float) -> list[Combination]:
    """``round(fraction × 384)`` combinations drawn with ``seed``, such that every pair of a held-out
    combination's attributes (shape–colour, shape–motion, colour–motion) still occurs in a training
    combination (so every single shape, colour and motion does too). Sorted."""
    if not 0.0 <= fraction <= 0.5:
        raise ValueError(f"held-out fraction must be in [0, 0.5], got {fraction}")
    want = round(fraction * len(ALL_COMBINATIONS))
    rng = np.random.default_rng([seed, 0x5EED])
    pairs: dict[tuple, int] = {}
    for s, c, m in ALL_COMBINATIONS:
        for key in ((0, s, c), (1, s, m), (2, c, m)):
            pairs[key] = pairs.get(key, 0) + 1
    chosen = []
    for j in rng.permutation(len(ALL_COMBINATIONS)):
        if len(chosen) == want:
            break
        s, c, m = ALL_COMBINATIONS[j]
        keys = ((0, s, c), (1, s, m), (2, c, m))
        if all(pairs[k] > 1 for k in keys):
            for k in keys:
                pairs[k] -= 1
            chosen.append(ALL_COMBINATIONS[j])
    return sorted(chosen)


@dataclass(frozen=True)
class CameraPlan:
    """Cameras of every sample: the fixed evaluation views, then random ones."""

    eval_views: tuple[tuple[float, float, float], ...]
    """(azimuth_deg, elevation_deg, radius) of the fixed evaluation views (the first views of every sample)."""
    views_per_sample: int
    """Views per sample in all (evaluation views included)."""
    elevation_range_deg: tuple[float, float]
    """Range of the random views' elevations (azimuths are uniform over the circle)."""
    radius: float
    """Distance of the random views from the origin."""

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``azimuth_deg, elevation_deg, radius`` float32 [views_per_sample] for one sample."""
        fixed = np.asarray(self.eval_views, dtype=np.float64).reshape(-1, 3)[: self.views_per_sample]
        k = self.views_per_sample - len(fixed)
        az = np.concatenate([fixed[:, 0], rng.uniform(0.0, 360.0, k)])
        el = np.concatenate([fixed[:, 1], rng.uniform(*self.elevation_range_deg, k)])
        r = np.concatenate([fixed[:, 2], np.full(k, self.radius)])
        return az.astype(np.float32), el.astype(np.float32), r.astype(np.float32)


def _spec(index: int, combo: Combination, caption: str | None, split: str, seed: int, cameras: CameraPlan,
          amplitude_range: tuple[float, float]) -> SampleSpec:  # fmt: skip
    rng = np.random.default_rng([seed, index])
    shape, colour, motion = combo
    if caption is None:
        caption = make_caption(shape, colour, motion, rng)
    paraphrase = make_caption(shape, colour, motion, rng, held_out=True)
    pattern = PatternSpec.random(rng)
    motion_spec = MotionSpec.random(motion, rng, amplitude_range)
    az, el, r = cameras.draw(rng)
    return SampleSpec(index, f"{index:06d}", shape, colour, motion, caption, paraphrase, split, pattern, motion_spec, az, el, r)


def plan_samples(
    n: int | None,
    seed: int,
    held_out: list[Combination],
    cameras: CameraPlan,
    *,
    held_out_samples: int | None = None,
    captions: list[tuple[str, Combination]] | None = None,
    amplitude_range: tuple[float, float] = AMPLITUDE_RANGE,
) -> list[SampleSpec]:
    """Every sample of a dataset.

    Without ``captions``: ``n`` training samples cycling over the training combinations (each cycle in a new
    random order, so the combinations are balanced), then ``held_out_samples`` held-out samples cycling over
    ``held_out`` (default one per held-out combination). With ``captions`` (``(text, combination)`` per line):
    one sample per line, cycled to ``n`` samples if ``n`` is given; a line whose combination is held out is a
    held-out sample, and no others are added. Each sample's motion amplitude k is drawn uniformly from
    ``amplitude_range``.
    """
    if n is not None and n < 0:
        raise ValueError(f"--n must be >= 0, got {n}")
    held = set(held_out)
    if captions is not None:
        count = len(captions) if n is None else n
        return [_spec(i, captions[i % len(captions)][1], captions[i % len(captions)][0],
                      "held_out" if captions[i % len(captions)][1] in held else "train", seed, cameras, amplitude_range)
                for i in range(count)]  # fmt: skip
    if n is None:
        raise ValueError("--n is needed without --captions")
    train = [c for c in ALL_COMBINATIONS if c not in held]
    if not train:
        raise DataError("every combination is held out: nothing to train on")
    rng = np.random.default_rng([seed, 0xC0DE])
    cycles = math.ceil(n / len(train)) if n else 0
    order = [train[j] for _ in range(cycles) for j in rng.permutation(len(train))][:n]
    specs = [_spec(i, c, None, "train", seed, cameras, amplitude_range) for i, c in enumerate(order)]
    m = len(held_out) if held_out_samples is None else held_out_samples
    if m and not held_out:
        raise ValueError("held-out samples were asked for but no combination is held out")
    specs += [_spec(n + j, held_out[j % len(held_out)], None, "held_out", seed, cameras, amplitude_range) for j in range(m)]
    return specs
