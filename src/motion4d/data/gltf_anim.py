"""glTF animation arithmetic, apart from any file: keyframe sampling and node transforms.

:func:`sample_channel` evaluates one animation sampler (the spec's STEP, LINEAR and CUBICSPLINE
interpolations, LINEAR rotations by spherical interpolation) at any number of times, clamping times
outside the keyframes to the first / last value. :func:`trs_matrices` builds node matrices T·R·S.
Quaternions are glTF's ``(x, y, z, w)``. Everything is float64 numpy, vectorised over the sample times.
"""

from __future__ import annotations

import numpy as np

INTERPOLATIONS = ("STEP", "LINEAR", "CUBICSPLINE")
"""The sampler interpolations of glTF 2.0."""
PATHS = ("translation", "rotation", "scale", "weights")
"""The animation channel targets of glTF 2.0."""


def quat_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    """[...,3,3] rotation matrices of glTF quaternions ``q [...,4]`` (x, y, z, w; normalised here)."""
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1:] != (4,):
        raise ValueError(f"quaternions must have shape [...,4], got {list(q.shape)}")
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))  # fmt: skip


def trs_matrices(t: np.ndarray, r: np.ndarray, s: np.ndarray) -> np.ndarray:
    """[...,4,4] matrices T·R·S of translations ``t [...,3]``, xyzw quaternions ``r [...,4]``, scales ``s [...,3]``."""
    t, r, s = (np.asarray(a, dtype=np.float64) for a in (t, r, s))
    batch = np.broadcast_shapes(t.shape[:-1], r.shape[:-1], s.shape[:-1])
    m = np.zeros(batch + (4, 4))
    m[..., :3, :3] = quat_xyzw_to_matrix(r) * s[..., None, :]
    m[..., :3, 3] = t
    m[..., 3, 3] = 1.0
    return m


def slerp(q0: np.ndarray, q1: np.ndarray, a: np.ndarray) -> np.ndarray:
    """[T,4] spherical interpolation between unit quaternions ``q0, q1 [T,4]`` at fractions ``a [T]``,
    along the shorter arc (``q1`` is negated where ``q0·q1 < 0``); nearly equal pairs are lerped."""
    q0 = q0 / np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    d = np.sum(q0 * q1, axis=-1)
    q1 = np.where(d[:, None] < 0, -q1, q1)
    d = np.abs(d)
    theta = np.arccos(np.clip(d, -1.0, 1.0))
    sin = np.sin(theta)
    near = d > 0.9995
    safe = np.where(near, 1.0, sin)
    w0 = np.where(near, 1 - a, np.sin((1 - a) * theta) / safe)
    w1 = np.where(near, a, np.sin(a * theta) / safe)
    q = w0[:, None] * q0 + w1[:, None] * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def sample_channel(times: np.ndarray, values: np.ndarray, interpolation: str, t: float | np.ndarray, path: str = "translation") -> np.ndarray:
    """Value of one glTF animation sampler at time(s) ``t``, clamped to its first / last keyframe.

    Args:
        times: [K] non-decreasing keyframe times (seconds).
        values: [K,C] keyframe values, or for CUBICSPLINE [K,3,C] (in-tangent, value, out-tangent).
        interpolation: "STEP", "LINEAR" or "CUBICSPLINE".
        t: a time or [T] times (seconds).
        path: the channel target ("translation", "rotation", "scale" or "weights"); "rotation" values are
            xyzw quaternions: LINEAR slerps, CUBICSPLINE results are renormalised.

    Returns:
        [C] for a scalar ``t``, [T,C] for an array.
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64)
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; expected one of {INTERPOLATIONS}")
    if path not in PATHS:
        raise ValueError(f"unknown channel path {path!r}; expected one of {PATHS}")
    cubic = interpolation == "CUBICSPLINE"
    k = len(times)
    if k == 0 or values.shape[0] != k or values.ndim != (3 if cubic else 2) or (cubic and values.shape[1] != 3):
        want = "[K,3,C]" if cubic else "[K,C]"
        raise ValueError(f"values must have shape {want} for {k} keyframe times, got {list(values.shape)}")
    scalar = np.ndim(t) == 0
    ts = np.asarray(t, dtype=np.float64).reshape(-1)
    key = values[:, 1] if cubic else values  # [K,C]
    if k == 1:
        out = np.repeat(key[:1], len(ts), axis=0)
    else:
        tc = np.clip(ts, times[0], times[-1])
        i = np.clip(np.searchsorted(times, tc, side="right") - 1, 0, k - 2)  # segment [i, i+1]
        dt = times[i + 1] - times[i]
        a = np.where(dt > 0, (tc - times[i]) / np.where(dt > 0, dt, 1.0), 1.0)
        if interpolation == "STEP":
            out = key[np.where(a >= 1.0, i + 1, i)]
        elif cubic:
            p0, m0 = key[i], values[i, 2] * dt[:, None]
            p1, m1 = key[i + 1], values[i + 1, 0] * dt[:, None]
            a2, a3 = (a * a)[:, None], (a * a * a)[:, None]
            a1 = a[:, None]
            out = (2 * a3 - 3 * a2 + 1) * p0 + (a3 - 2 * a2 + a1) * m0 + (-2 * a3 + 3 * a2) * p1 + (a3 - a2) * m1
        elif path == "rotation":
            out = slerp(key[i], key[i + 1], a)
        else:
            out = key[i] * (1 - a[:, None]) + key[i + 1] * a[:, None]
    if path == "rotation":
        out = out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    return out[0] if scalar else out
