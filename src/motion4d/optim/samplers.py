"""Which training images a 4D step uses: multi-scale spatio-temporal sliding windows, or uniform.

A dynamic dataset holds M images, each a (camera, time) pair; its distinct times, sorted, are the
sequence's F *frames*. A sampler answers, for step ``s`` of ``S``, with a :class:`WindowSample`:
the image rows to render this step and three consecutive frames for the temporal-consistency term.

**Sliding windows** (Motion4D's multi-scale spatio-temporal sampling). Each step trains on a window of
``W`` consecutive frames. The window slides ``stride`` frames per step through the sequence (cyclically,
so every frame is visited every ``F - W + 1`` steps); the step draws ``frames_per_step`` distinct frames
inside it and its views (distinct cameras) at those frames. The window size goes coarse to fine over
training: ``window_fractions`` (e.g. 1, 1/2, 1/4 of the sequence) split the steps into equal stages.
Large windows first tie the whole sequence together while the geometry is still forming (the motion
is learnt globally, not frame by frame); small windows later concentrate each step's gradient on a few
neighbouring frames, which is what sharpens fast local motion. The temporal term's three frames are
consecutive frames inside the window, so consistency is enforced where the step is looking.

**Uniform**: the same number of frames and views per step, drawn uniformly over the whole sequence;
the temporal triple anywhere in it. The two differ only in where the frames come from.

Stages follow training *progress* in [0,1], which the trainer takes as the larger of the step fraction
and the time-budget fraction, so a run cut short by its budget still goes through every scale.
The samplers are stateless given the step, the progress and the caller's generator, so a resumed run continues
exactly (the generator's state is in the checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


@dataclass(frozen=True)
class SamplerConfig:
    """How training images are chosen each step."""

    kind: Literal["sliding", "uniform"] = "uniform"
    """"sliding": multi-scale sliding temporal windows; "uniform": any image, uniformly (the default: at equal
    time it reconstructed all four benchmark scenes better, 0.5 to 3.1 dB; see benchmarks/reconstruct.py)."""
    window_fractions: tuple[float, ...] = (1.0, 0.5, 0.25)
    """Window sizes as fractions of the number of frames, one per stage, in training order."""
    min_window: int = 3
    """Smallest window, in frames (3 lets the temporal term live inside every window)."""
    stride: int = 1
    """Frames the window advances per step."""
    frames_per_step: int = 2
    """Distinct frames (times) per step; the step's views are shared among them, distinct cameras at
    each frame (more frames when a frame has too few cameras, e.g. one for monocular D-NeRF data). Fewer frames per step means fewer evaluations of the model per step (its cost on CPU)."""


@dataclass
class WindowSample:
    """The images and frames of one training step."""

    rows: Tensor
    """[B] int64 indices into the dataset's images."""
    window: tuple[int, int]
    """(first frame, number of frames) of the window the rows come from."""
    triple: Tensor | None
    """[3] float32 times of three consecutive frames for the temporal term (None when F < 3)."""


class FrameIndex:
    """The frames of a dynamic image set: distinct times and the images at each.

    Args:
        times: [M] per-image time.
    """

    def __init__(self, times: Tensor):
        if times.dim() != 1 or times.numel() == 0:
            raise ValueError(f"times must have shape [M] with M > 0, got {list(times.shape)}")
        self.times, self.frame_of_row = torch.unique(times.float(), sorted=True, return_inverse=True)
        """[F] distinct times, sorted; [M] frame index of each image."""
        self.rows_of_frame = [torch.where(self.frame_of_row == f)[0] for f in range(len(self.times))]
        """F tensors of image rows."""

    def __len__(self) -> int:
        return len(self.times)


class FrameSampler:
    """Draws each step's images under :class:`SamplerConfig`.

    Args:
        config: sampler settings.
        times: [M] per-image time of the training set.
        batch_views: images per step.
    """

    def __init__(self, config: SamplerConfig, times: Tensor, batch_views: int):
        if config.kind not in ("sliding", "uniform"):
            raise ValueError(f"sampler kind must be 'sliding' or 'uniform', got {config.kind!r}")
        if not config.window_fractions or any(not 0 < f <= 1 for f in config.window_fractions):
            raise ValueError(f"window_fractions must be in (0, 1], got {config.window_fractions}")
        if batch_views < 1 or config.stride < 1 or config.min_window < 1 or config.frames_per_step < 1:
            raise ValueError("batch_views, stride, min_window and frames_per_step must be >= 1")
        self.config = config
        self.frames = FrameIndex(times)
        self.batch_views = batch_views
        self._min_cameras = min(len(r) for r in self.frames.rows_of_frame)

    def window_size(self, progress: float) -> int:
        """Frames in the window at training ``progress`` in [0,1] (the whole sequence for "uniform")."""
        F = len(self.frames)
        if self.config.kind == "uniform":
            return F
        fr = self.config.window_fractions
        stage = min(max(int(len(fr) * progress), 0), len(fr) - 1)
        return max(1, min(F, max(self.config.min_window, round(fr[stage] * F))))

    def window(self, step: int, progress: float) -> tuple[int, int]:
        """(first frame, size) of the window at ``step`` and ``progress``; slides ``stride`` frames per step, cyclically."""
        size = self.window_size(progress)
        positions = len(self.frames) - size + 1
        return (step * self.config.stride) % positions, size

    def sample(self, step: int, progress: float, generator: torch.Generator) -> WindowSample:
        """The images of ``step`` at training ``progress`` in [0,1], drawn with ``generator`` (CPU)."""
        F = len(self.frames)
        start, size = self.window(step, progress)
        lo, n = (0, F) if self.config.kind == "uniform" else (start, size)
        n_frames = min(max(self.config.frames_per_step, -(-self.batch_views // self._min_cameras)), self.batch_views)
        perm = torch.randperm(n, generator=generator)
        picks = [lo + int(perm[i % n]) for i in range(n_frames)]
        rows = []
        for i, f in enumerate(picks):
            count = self.batch_views // n_frames + (1 if i < self.batch_views % n_frames else 0)
            rows.append(self._rows_at(f, count, generator))
        rows = torch.cat(rows)
        triple = None
        if F >= 3:
            lo, n = (start, size) if size >= 3 else (0, F)
            first = lo + int(torch.randint(n - 2, (1,), generator=generator))
            triple = self.frames.times[first : first + 3].clone()
        return WindowSample(rows=rows, window=(start, size), triple=triple)

    def _rows_at(self, frame: int, count: int, generator: torch.Generator) -> Tensor:
        """``count`` rows of ``frame``: distinct cameras while there are enough."""
        rows = self.frames.rows_of_frame[frame]
        perm = torch.randperm(len(rows), generator=generator)
        return rows[perm[torch.arange(count) % len(rows)]]
