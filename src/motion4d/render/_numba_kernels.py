"""Numba CPU kernels: tile binning, forward compositing and its backward.

Work is proportional to the Gaussian–pixel pairs inside the opacity-aware boxes: each tile walks its
depth-sorted Gaussians and, for each, only the pixels of the box ∩ tile rectangle. Tiles run in
parallel. The backward pass recomputes α from the inputs instead of storing per-pair state, walking
each tile back to front and recovering transmittance by division (α ≤ 0.999). Per-pair gradients
land in a per-intersection buffer (no write races) and are reduced per Gaussian afterwards.

All arrays are float32 / int32 / int64 numpy arrays, C-contiguous.
"""

from __future__ import annotations

import math

import numba
import numpy as np

ALPHA_MIN = np.float32(1.0 / 255.0)
ALPHA_MAX = np.float32(0.999)
T_MIN = np.float32(1e-4)
_JIT = dict(nogil=True, cache=True, error_model="numpy")


@numba.njit(**_JIT)
def bin_gaussians(bounds, depths, tile_size, width, height):
    """Depth-ordered per-tile Gaussian lists.

    Args:
        bounds: [C,N,4] int32 pixel ranges (x0, x1, y0, y1), half-open; empty where culled.
        depths: [C,N] float32 camera-space depths.

    Returns:
        offsets: [C*T+1] int64, tile j's list is flat_ids[offsets[j]:offsets[j+1]].
        flat_ids: [M] int32 indices into the flattened [C*N] Gaussians, front to back per tile.
    """
    C, N = depths.shape
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    n_tiles = tiles_x * tiles_y
    counts = np.zeros(C * n_tiles + 1, dtype=np.int64)
    for c in range(C):
        for g in range(N):
            x0, x1, y0, y1 = bounds[c, g, 0], bounds[c, g, 1], bounds[c, g, 2], bounds[c, g, 3]
            if x1 <= x0 or y1 <= y0:
                continue
            for ty in range(y0 // tile_size, (y1 - 1) // tile_size + 1):
                for tx in range(x0 // tile_size, (x1 - 1) // tile_size + 1):
                    counts[c * n_tiles + ty * tiles_x + tx + 1] += 1
    offsets = np.cumsum(counts)
    cursor = offsets[:-1].copy()
    flat_ids = np.empty(offsets[-1], dtype=np.int32)
    for c in range(C):
        order = np.argsort(depths[c], kind="mergesort")
        for i in range(N):
            g = order[i]
            x0, x1, y0, y1 = bounds[c, g, 0], bounds[c, g, 1], bounds[c, g, 2], bounds[c, g, 3]
            if x1 <= x0 or y1 <= y0:
                continue
            for ty in range(y0 // tile_size, (y1 - 1) // tile_size + 1):
                for tx in range(x0 // tile_size, (x1 - 1) // tile_size + 1):
                    j = c * n_tiles + ty * tiles_x + tx
                    flat_ids[cursor[j]] = c * N + g
                    cursor[j] += 1
    return offsets, flat_ids


@numba.njit(parallel=True, fastmath={"nsz", "arcp", "contract", "afn"}, **_JIT)
def rasterize_fwd(
    offsets, flat_ids, bounds, means2d, conics, opacities, colors, backgrounds, width, height, tile_size
):
    """Composite front to back.

    Args:
        bounds [C*N,4] int32, means2d [C*N,2], conics [C*N,3], opacities [C*N], colors [C*N,D],
        backgrounds [C,D] float32.

    Returns:
        out_colors [C,H,W,D], out_T [C,H,W] (final transmittance), last [C,H,W] int64: position in
        flat_ids of the last Gaussian composited into each pixel (-1: none).
    """
    D = colors.shape[1]
    C = backgrounds.shape[0]
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    n_tiles = tiles_x * tiles_y
    out_colors = np.empty((C, height, width, D), dtype=np.float32)
    out_T = np.empty((C, height, width), dtype=np.float32)
    last = np.empty((C, height, width), dtype=np.int64)
    for job in numba.prange(C * n_tiles):
        c = job // n_tiles
        t = job % n_tiles
        px0 = (t % tiles_x) * tile_size
        py0 = (t // tiles_x) * tile_size
        tw = min(tile_size, width - px0)
        th = min(tile_size, height - py0)
        npix = tw * th
        T = np.ones(npix, dtype=np.float32)
        acc = np.zeros((npix, D), dtype=np.float32)
        lst = np.full(npix, -1, dtype=np.int64)
        done = np.zeros(npix, dtype=np.bool_)
        n_done = 0
        for k in range(offsets[job], offsets[job + 1]):
            g = flat_ids[k]
            x0 = max(bounds[g, 0], px0)
            x1 = min(bounds[g, 1], px0 + tw)
            y0 = max(bounds[g, 2], py0)
            y1 = min(bounds[g, 3], py0 + th)
            mx = means2d[g, 0]
            my = means2d[g, 1]
            ca = conics[g, 0]
            cb = conics[g, 1]
            cc = conics[g, 2]
            o = opacities[g]
            for y in range(y0, y1):
                dy = np.float32(y) + np.float32(0.5) - my
                row = (y - py0) * tw - px0
                for x in range(x0, x1):
                    p = row + x
                    if done[p]:
                        continue
                    dx = np.float32(x) + np.float32(0.5) - mx
                    sigma = np.float32(0.5) * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0:
                        continue
                    alpha = min(ALPHA_MAX, o * math.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_T = T[p] * (np.float32(1.0) - alpha)
                    if next_T <= T_MIN:
                        done[p] = True
                        n_done += 1
                        continue
                    w = alpha * T[p]
                    for d in range(D):
                        acc[p, d] += w * colors[g, d]
                    T[p] = next_T
                    lst[p] = k
            if n_done == npix:
                break
        for yy in range(th):
            for xx in range(tw):
                p = yy * tw + xx
                for d in range(D):
                    out_colors[c, py0 + yy, px0 + xx, d] = acc[p, d] + T[p] * backgrounds[c, d]
                out_T[c, py0 + yy, px0 + xx] = T[p]
                last[c, py0 + yy, px0 + xx] = lst[p]
    return out_colors, out_T, last


@numba.njit(parallel=True, fastmath={"nsz", "arcp", "contract", "afn"}, **_JIT)
def rasterize_bwd(
    offsets,
    flat_ids,
    bounds,
    means2d,
    conics,
    opacities,
    colors,
    backgrounds,
    out_T,
    last,
    grad_colors,
    grad_alphas,
    width,
    height,
    tile_size,
):
    """Gradients of a loss w.r.t. the compositing inputs, given dL/d(out colors) [C,H,W,D] and
    dL/d(out alphas) [C,H,W] (alpha = 1 − T).

    Returns per-intersection gradients [M, 6+D]: (d means2d x, y, d conic a, b, c, d opacity,
    d colors...), row k belonging to Gaussian flat_ids[k]. Reduce with :func:`reduce_grads`.
    """
    D = colors.shape[1]
    C = backgrounds.shape[0]
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    n_tiles = tiles_x * tiles_y
    isect_grads = np.zeros((flat_ids.shape[0], 6 + D), dtype=np.float32)
    for job in numba.prange(C * n_tiles):
        c = job // n_tiles
        t = job % n_tiles
        px0 = (t % tiles_x) * tile_size
        py0 = (t // tiles_x) * tile_size
        tw = min(tile_size, width - px0)
        th = min(tile_size, height - py0)
        npix = tw * th
        T = np.empty(npix, dtype=np.float32)
        T_final = np.empty(npix, dtype=np.float32)
        behind = np.empty((npix, D), dtype=np.float32)
        dC = np.empty((npix, D), dtype=np.float32)
        dA = np.empty(npix, dtype=np.float32)
        lst = np.empty(npix, dtype=np.int64)
        for yy in range(th):
            for xx in range(tw):
                p = yy * tw + xx
                tf = out_T[c, py0 + yy, px0 + xx]
                T[p] = tf
                T_final[p] = tf
                lst[p] = last[c, py0 + yy, px0 + xx]
                dA[p] = grad_alphas[c, py0 + yy, px0 + xx]
                for d in range(D):
                    behind[p, d] = tf * backgrounds[c, d]
                    dC[p, d] = grad_colors[c, py0 + yy, px0 + xx, d]
        for k in range(offsets[job + 1] - 1, offsets[job] - 1, -1):
            g = flat_ids[k]
            x0 = max(bounds[g, 0], px0)
            x1 = min(bounds[g, 1], px0 + tw)
            y0 = max(bounds[g, 2], py0)
            y1 = min(bounds[g, 3], py0 + th)
            mx = means2d[g, 0]
            my = means2d[g, 1]
            ca = conics[g, 0]
            cb = conics[g, 1]
            cc = conics[g, 2]
            o = opacities[g]
            g_mx = np.float32(0.0)
            g_my = np.float32(0.0)
            g_a = np.float32(0.0)
            g_b = np.float32(0.0)
            g_c = np.float32(0.0)
            g_o = np.float32(0.0)
            for y in range(y0, y1):
                dy = np.float32(y) + np.float32(0.5) - my
                row = (y - py0) * tw - px0
                for x in range(x0, x1):
                    p = row + x
                    if k > lst[p]:
                        continue
                    dx = np.float32(x) + np.float32(0.5) - mx
                    sigma = np.float32(0.5) * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0:
                        continue
                    vis = math.exp(-sigma)
                    raw = o * vis
                    alpha = min(ALPHA_MAX, raw)
                    if alpha < ALPHA_MIN:
                        continue
                    inv = np.float32(1.0) / (np.float32(1.0) - alpha)
                    Ti = T[p] * inv
                    w = alpha * Ti
                    g_alpha = dA[p] * T_final[p] * inv
                    for d in range(D):
                        col = colors[g, d]
                        isect_grads[k, 6 + d] += w * dC[p, d]
                        g_alpha += dC[p, d] * (col * Ti - behind[p, d] * inv)
                        behind[p, d] += col * w
                    T[p] = Ti
                    if raw <= ALPHA_MAX:
                        g_o += g_alpha * vis
                        g_sigma = -g_alpha * alpha
                        g_mx -= g_sigma * (ca * dx + cb * dy)
                        g_my -= g_sigma * (cb * dx + cc * dy)
                        g_a += np.float32(0.5) * g_sigma * dx * dx
                        g_b += g_sigma * dx * dy
                        g_c += np.float32(0.5) * g_sigma * dy * dy
            isect_grads[k, 0] = g_mx
            isect_grads[k, 1] = g_my
            isect_grads[k, 2] = g_a
            isect_grads[k, 3] = g_b
            isect_grads[k, 4] = g_c
            isect_grads[k, 5] = g_o
    return isect_grads


@numba.njit(**_JIT)
def reduce_grads(flat_ids, isect_grads, n_total):
    """Sum per-intersection gradients [M,K] into per-Gaussian gradients [n_total,K]."""
    out = np.zeros((n_total, isect_grads.shape[1]), dtype=np.float32)
    for k in range(flat_ids.shape[0]):
        g = flat_ids[k]
        for j in range(isect_grads.shape[1]):
            out[g, j] += isect_grads[k, j]
    return out
