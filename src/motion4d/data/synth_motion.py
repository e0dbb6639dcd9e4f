"""The motions of the captioned synthetic dataset: rest vertices and times → posed vertices.

All motions act in the z-up world of :mod:`motion4d.data.synth_shapes` over ``t ∈ [0, 1]``, with
amplitudes large enough to see at 64² and time profiles that tell them apart from trajectories alone:

=========  =======================================================================================
bouncing   up and down along z, three bounces: ``z = z0 + 0.45 k |sin 3πt|``
jumping    one hop and landing: at rest until t = 0.2, airborne to t = 0.8 (peak 0.55 k), at rest after
sliding    left to right along +x (the front camera's right): ``x = 0.45 k (2t − 1)``
orbiting   one turn counter-clockwise (seen from above) on a circle of radius 0.42 k about the z axis,
           orientation fixed
spinning   one turn (× k) counter-clockwise about the z axis, in place
swaying    a rigid tilt about the base (the lowest point) around the y axis: ``θ = 0.5 k sin 2πt``
           (the top goes right, then left, as seen from the front)
pulsing    uniform scale about the centre, two pulses: ``s = 1 + 0.3 k sin 4πt``
bending    non-rigid: x shifted by ``0.45 k sin(2πt) u²``, u the height above the base in [0, 1]
=========  =======================================================================================

``k`` is a per-sample amplitude jitter (:attr:`MotionSpec.amplitude`, ≈ 1); ``z0 = −0.2`` for bouncing and
jumping (they rise from below the centre). Before the motion the rest shape is scaled by
:attr:`MotionSpec.scale` and turned by :attr:`MotionSpec.yaw_deg` about z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from motion4d.data.synth_vocab import MOTIONS

GROUND_Z = -0.2
"""Rest height of the centre for bouncing and jumping."""
AMPLITUDE_RANGE = (0.85, 1.15)
"""Range of the amplitude factor k drawn for each sample (uniform) unless a dataset asks for another."""


@dataclass(frozen=True)
class MotionSpec:
    """One sample's motion and its pose jitter."""

    motion: str
    """One of :data:`motion4d.data.synth_vocab.MOTIONS`."""
    amplitude: float = 1.0
    """Amplitude factor k (module docstring)."""
    scale: float = 1.0
    """Uniform size factor of the rest shape."""
    yaw_deg: float = 0.0
    """Rest orientation about the z axis."""
    phase: float = 0.0
    """Start angle (radians) of the orbit."""

    @staticmethod
    def random(motion: str, rng: np.random.Generator, amplitude_range: tuple[float, float] = AMPLITUDE_RANGE) -> "MotionSpec":
        """``motion`` with random jitter: amplitude uniform over ``amplitude_range``, size 0.9–1.05, yaw ±25°,
        any orbit start."""
        return MotionSpec(motion, float(rng.uniform(*amplitude_range)), float(rng.uniform(0.9, 1.05)), float(rng.uniform(-25, 25)),
                          float(rng.uniform(0, 2 * math.pi)))  # fmt: skip


def _rot_z(angle: np.ndarray) -> np.ndarray:
    """[...,3,3] rotations about z by ``angle [...]`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    o, i = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def _rot_y(angle: np.ndarray) -> np.ndarray:
    """[...,3,3] rotations about y by ``angle [...]`` radians (positive: +z towards +x)."""
    c, s = np.cos(angle), np.sin(angle)
    o, i = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def animate(rest: np.ndarray, spec: MotionSpec, times: np.ndarray) -> np.ndarray:
    """[T,V,3] float32 world positions of the rest vertices ``rest [V,3]`` at ``times [T]`` (in [0,1])."""
    rest = np.asarray(rest, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if rest.ndim != 2 or rest.shape[1] != 3 or t.ndim != 1:
        raise ValueError(f"rest [V,3] and times [T] expected, got {list(rest.shape)}, {list(t.shape)}")
    if spec.motion not in MOTIONS:
        raise ValueError(f"unknown motion {spec.motion!r} (one of {', '.join(MOTIONS)})")
    p = spec.scale * rest @ _rot_z(np.radians(spec.yaw_deg)).T
    k, m = spec.amplitude, spec.motion
    out = np.broadcast_to(p, (len(t),) + p.shape).copy()
    zmin, zmax = p[:, 2].min(), p[:, 2].max()
    if m == "bouncing":
        out[..., 2] += GROUND_Z + 0.45 * k * np.abs(np.sin(3 * math.pi * t))[:, None]
    elif m == "jumping":
        hop = np.sin(math.pi * np.clip((t - 0.2) / 0.6, 0.0, 1.0))
        out[..., 2] += GROUND_Z + 0.55 * k * hop[:, None]
    elif m == "sliding":
        out[..., 0] += 0.45 * k * (2 * t - 1)[:, None]
    elif m == "orbiting":
        a = spec.phase + 2 * math.pi * t
        out[..., 0] += 0.42 * k * np.cos(a)[:, None]
        out[..., 1] += 0.42 * k * np.sin(a)[:, None]
    elif m == "spinning":
        out = np.einsum("tij,vj->tvi", _rot_z(2 * math.pi * k * t), p)
    elif m == "swaying":
        pivot = np.array([0.0, 0.0, zmin])
        out = np.einsum("tij,vj->tvi", _rot_y(0.5 * k * np.sin(2 * math.pi * t)), p - pivot) + pivot
    elif m == "pulsing":
        out = p[None] * (1 + 0.3 * k * np.sin(4 * math.pi * t))[:, None, None]
    elif m == "bending":
        u = (p[:, 2] - zmin) / max(zmax - zmin, 1e-9)
        out[..., 0] += 0.45 * k * np.sin(2 * math.pi * t)[:, None] * (u**2)[None]
    return out.astype(np.float32)
