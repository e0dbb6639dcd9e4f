"""Numba CPU kernels for one HexPlane level: six bilinear samples per point, multiplied, and the backward.

The same computation as :meth:`motion4d.gaussians.hexplane.HexPlaneField` does with ``grid_sample``
(``align_corners=True``, border padding), fused so that no [P,F,N] intermediate is written; on a CPU it
is faster forward and backward. The kernels are serial on purpose: on a shared 2-core CPU, a second
thread pool (numba's OpenMP beside torch's) fighting for the cores made them many times slower. The
backward can still split the points into chunks, each scattering into its own plane-gradient buffer.

Arrays are float32, C-contiguous: ``coords [N,4]`` in [-1,1] (x, y, z, t), ``space [3,R,R,F]`` (planes
xy, xz, yz; rows = second coordinate, columns = first), ``time [3,T,R,F]`` (planes xt, yt, zt; rows = t).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

_JIT = dict(nogil=True, cache=True, error_model="numpy")
_WIDTH_AXIS = np.array([0, 0, 1, 0, 1, 2], dtype=np.int64)
"""Coordinate along each plane's columns (planes xy, xz, yz, xt, yt, zt)."""
_HEIGHT_AXIS = np.array([1, 2, 2, 3, 3, 3], dtype=np.int64)
"""Coordinate along each plane's rows."""


@numba.njit(inline="always", **_JIT)
def _tap(c, size):
    """Grid cell, fraction and d(position)/d(coordinate) of coordinate ``c`` on an axis of ``size`` points."""
    x = (c + 1.0) * 0.5 * (size - 1)
    slope = 0.5 * (size - 1)
    if not x > 0.0:
        x = 0.0
        slope = 0.0
    elif x >= size - 1:
        x = float(size - 1)
        slope = 0.0
    i0 = min(int(math.floor(x)), size - 2)
    return i0, np.float32(x - i0), np.float32(slope)


@numba.njit(fastmath=True, **_JIT)
def level_forward(coords, space, time, out):
    """``out [N,F]`` = product over the six planes of their bilinear samples at ``coords [N,4]``."""
    n_points, n_feat = out.shape
    for n in range(n_points):
        for f in range(n_feat):
            out[n, f] = 1.0
        for p in range(6):
            plane = space[p] if p < 3 else time[p - 3]
            x0, fx, _ = _tap(coords[n, _WIDTH_AXIS[p]], plane.shape[1])
            y0, fy, _ = _tap(coords[n, _HEIGHT_AXIS[p]], plane.shape[0])
            w00, w01 = (1 - fx) * (1 - fy), fx * (1 - fy)
            w10, w11 = (1 - fx) * fy, fx * fy
            for f in range(n_feat):
                v = (plane[y0, x0, f] * w00 + plane[y0, x0 + 1, f] * w01
                     + plane[y0 + 1, x0, f] * w10 + plane[y0 + 1, x0 + 1, f] * w11)
                out[n, f] *= v


@numba.njit(fastmath=True, **_JIT)
def level_backward(coords, space, time, grad_out, g_space, g_time, g_coords):
    """Gradients of :func:`level_forward` given ``grad_out [N,F]``.

    Writes ``g_space [C,3,R,R,F]`` and ``g_time [C,3,T,R,F]`` (one slice per chunk of points, C chunks;
    zeroed here) and adds into ``g_coords [N,4]``.
    """
    n_points, n_feat = grad_out.shape
    n_chunks = g_space.shape[0]
    g_space[:] = 0.0
    g_time[:] = 0.0
    for c in range(n_chunks):
        vals = np.empty((6, n_feat), dtype=np.float32)
        gvec = np.empty((6, n_feat), dtype=np.float32)
        taps = np.empty((6, 2), dtype=np.int64)
        fracs = np.empty((6, 4), dtype=np.float32)
        for n in range(c * n_points // n_chunks, (c + 1) * n_points // n_chunks):
            for p in range(6):
                plane = space[p] if p < 3 else time[p - 3]
                x0, fx, sx = _tap(coords[n, _WIDTH_AXIS[p]], plane.shape[1])
                y0, fy, sy = _tap(coords[n, _HEIGHT_AXIS[p]], plane.shape[0])
                taps[p, 0], taps[p, 1] = x0, y0
                fracs[p, 0], fracs[p, 1], fracs[p, 2], fracs[p, 3] = fx, fy, sx, sy
                for f in range(n_feat):
                    vals[p, f] = (plane[y0, x0, f] * (1 - fx) * (1 - fy) + plane[y0, x0 + 1, f] * fx * (1 - fy)
                                  + plane[y0 + 1, x0, f] * (1 - fx) * fy + plane[y0 + 1, x0 + 1, f] * fx * fy)
            for p in range(6):  # gvec[p] = grad_out · Π_{q≠p} vals[q], in f-contiguous loops
                for f in range(n_feat):
                    gvec[p, f] = grad_out[n, f]
            for q in range(6):
                for p in range(6):
                    if p != q:
                        for f in range(n_feat):
                            gvec[p, f] *= vals[q, f]
            for p in range(6):
                plane = space[p] if p < 3 else time[p - 3]
                gplane = g_space[c, p] if p < 3 else g_time[c, p - 3]
                x0, y0 = taps[p, 0], taps[p, 1]
                fx, fy, sx, sy = fracs[p, 0], fracs[p, 1], fracs[p, 2], fracs[p, 3]
                w00, w01 = (1 - fx) * (1 - fy), fx * (1 - fy)
                w10, w11 = (1 - fx) * fy, fx * fy
                for f in range(n_feat):
                    gplane[y0, x0, f] += gvec[p, f] * w00
                for f in range(n_feat):
                    gplane[y0, x0 + 1, f] += gvec[p, f] * w01
                for f in range(n_feat):
                    gplane[y0 + 1, x0, f] += gvec[p, f] * w10
                for f in range(n_feat):
                    gplane[y0 + 1, x0 + 1, f] += gvec[p, f] * w11
                gx = np.float32(0.0)
                gy = np.float32(0.0)
                for f in range(n_feat):
                    v00, v01 = plane[y0, x0, f], plane[y0, x0 + 1, f]
                    v10, v11 = plane[y0 + 1, x0, f], plane[y0 + 1, x0 + 1, f]
                    gx += gvec[p, f] * ((v01 - v00) * (1 - fy) + (v11 - v10) * fy)
                    gy += gvec[p, f] * ((v10 - v00) * (1 - fx) + (v11 - v01) * fx)
                g_coords[n, _WIDTH_AXIS[p]] += gx * sx
                g_coords[n, _HEIGHT_AXIS[p]] += gy * sy


def _channels_last(planes: Tensor) -> np.ndarray:
    return planes.detach().permute(0, 2, 3, 1).contiguous().numpy()


class _Level(torch.autograd.Function):
    @staticmethod
    def forward(ctx, coords: Tensor, space: Tensor, time: Tensor) -> Tensor:
        c = coords.detach().contiguous().numpy()
        s, t = _channels_last(space), _channels_last(time)
        out = np.empty((c.shape[0], s.shape[-1]), dtype=np.float32)
        level_forward(c, s, t, out)
        ctx.arrays = (c, s, t)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        c, s, t = ctx.arrays
        n_chunks = 1  # serial kernels: one buffer
        g_space = np.empty((n_chunks, *s.shape), dtype=np.float32)
        g_time = np.empty((n_chunks, *t.shape), dtype=np.float32)
        g_coords = np.zeros(c.shape, dtype=np.float32)
        level_backward(c, s, t, grad_out.detach().contiguous().numpy(), g_space, g_time, g_coords)
        gs = torch.from_numpy(g_space.sum(axis=0)).permute(0, 3, 1, 2).contiguous()
        gt = torch.from_numpy(g_time.sum(axis=0)).permute(0, 3, 1, 2).contiguous()
        return torch.from_numpy(g_coords), gs, gt


def hexplane_level(coords: Tensor, space: Tensor, time: Tensor) -> Tensor:
    """Features [N,F] of one level: ``coords [N,4]`` in [-1,1], ``space [3,F,R,R]``, ``time [3,F,T,R]``.

    CPU float32 tensors only; differentiable in all three.
    """
    return _Level.apply(coords, space, time)
