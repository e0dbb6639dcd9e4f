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
import os

import numba
import numpy as np

if "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's OpenMP layer spin-waits between kernels: on a machine whose cores are busy (a second job, torch's
    # own threads) that starves the Python thread, a 12x slower 4D fit on 2 cores; the work-queue pool sleeps.
    numba.config.THREADING_LAYER = "workqueue"

ALPHA_MIN = np.float32(1.0 / 255.0)
ALPHA_MAX = np.float32(0.999)
T_MIN = np.float32(1e-4)
_LOG2E = np.float32(1.4426950408889634)
_LN2 = np.float32(0.6931471805599453)
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


@numba.njit(inline="always", fastmath=True, **_JIT)
def _exp_neg(s):
    """exp(−s) for s ≥ 0 without a libm call, so loops vectorize; relative error < 2e-7 on [0, 8]
    (s is clamped to 8: there exp(−s)·1 < 1/255 and the pair is skipped anyway)."""
    s = min(max(s, np.float32(0.0)), np.float32(8.0))
    t = s * _LOG2E
    n = np.floor(t)
    u = (np.float32(0.5) - (t - n)) * _LN2  # exp(u) = 2^(0.5 - frac(t)), |u| ≤ ln2 / 2
    p = np.float32(1.0) + u * (np.float32(1.0) + u * (np.float32(0.5) + u * (np.float32(1 / 6) + u * (
        np.float32(1 / 24) + u * (np.float32(1 / 120) + u * (np.float32(1 / 720) + u * np.float32(1 / 5040)))))))
    ni = np.int32(n)
    scale = np.float32(0.7071067811865476)  # 2^-0.5 undoes the 0.5 shift; then 2^-n bit by bit
    scale *= np.float32(0.5) if ni & 1 else np.float32(1.0)
    scale *= np.float32(0.25) if ni & 2 else np.float32(1.0)
    scale *= np.float32(1 / 16) if ni & 4 else np.float32(1.0)
    scale *= np.float32(1 / 256) if ni & 8 else np.float32(1.0)
    return p * scale


@numba.njit(inline="always", **_JIT)
def _tile_rect(job, n_tiles, tiles_x, tile_size, width, height):
    """Camera index and pixel rectangle (x0, y0, width, height) of tile job = c·n_tiles + t."""
    t = job % n_tiles
    px0 = (t % tiles_x) * tile_size
    py0 = (t // tiles_x) * tile_size
    return job // n_tiles, px0, py0, min(tile_size, width - px0), min(tile_size, height - py0)


@numba.njit(parallel=True, fastmath=True, **_JIT)
def rasterize_fwd(
    offsets, flat_ids, bounds, means2d, conics, opacities, colors, backgrounds, width, height, tile_size
):
    """Composite front to back.

    Args:
        bounds [C*N,4] int32, means2d [C*N,2], conics [C*N,3], opacities [C*N], colors [C*N,D],
        backgrounds [C,D] float32.

    Returns:
        out_colors [C,H,W,D], out_T [C,H,W] (final transmittance), last [C,H,W] int32: position in
        flat_ids of the last Gaussian composited into each pixel (-1: none).
    """
    D = colors.shape[1]
    C = backgrounds.shape[0]
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    n_tiles = tiles_x * tiles_y
    out_colors = np.empty((C, height, width, D), dtype=np.float32)
    out_T = np.empty((C, height, width), dtype=np.float32)
    last = np.empty((C, height, width), dtype=np.int32)
    for job in numba.prange(C * n_tiles):
        c, px0, py0, tw, th = _tile_rect(job, n_tiles, tiles_x, tile_size, width, height)
        npix = tw * th
        T = np.ones(npix, dtype=np.float32)
        live = np.ones(npix, dtype=np.float32)  # 0 once the pixel has saturated
        acc = np.zeros((D, npix), dtype=np.float32)
        lst = np.full(npix, -1, dtype=np.int32)
        wbuf = np.empty(tile_size, dtype=np.float32)
        n_done = np.float32(0.0)
        for k in range(offsets[job], offsets[job + 1]):
            g = flat_ids[k]
            # Whole tile rows (fixed trip count, vectorized): pixels outside the box get α < 1/255.
            x0 = px0
            x1 = px0 + tw
            y0 = max(bounds[g, 2], py0)
            y1 = min(bounds[g, 3], py0 + th)
            mx, my, ca, cb, cc, o = means2d[g, 0], means2d[g, 1], conics[g, 0], conics[g, 1], conics[g, 2], opacities[g]
            kk = np.int32(k)
            for y in range(y0, y1):
                dy = np.float32(y) + np.float32(0.5) - my
                base = (y - py0) * tw - px0
                for x in range(x0, x1):
                    p = np.uintp(base + x)
                    dx = np.float32(x) + np.float32(0.5) - mx
                    sigma = np.float32(0.5) * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    alpha = min(ALPHA_MAX, o * _exp_neg(sigma))
                    ok = (sigma >= 0) & (alpha >= ALPHA_MIN) & (live[p] > 0)
                    Tp = T[p]
                    next_T = Tp * (np.float32(1.0) - alpha)
                    stop = ok & (next_T <= T_MIN)
                    add = ok & (next_T > T_MIN)
                    wbuf[np.uintp(x - x0)] = alpha * Tp if add else np.float32(0.0)
                    T[p] = next_T if add else Tp
                    lst[p] = kk if add else lst[p]
                    live[p] = np.float32(0.0) if stop else live[p]
                    n_done += np.float32(1.0) if stop else np.float32(0.0)
                for d in range(D):
                    cd = colors[g, d]
                    for x in range(x0, x1):
                        acc[d, np.uintp(base + x)] += wbuf[np.uintp(x - x0)] * cd
            if n_done >= npix:
                break
        for yy in range(th):
            for xx in range(tw):
                p = yy * tw + xx
                for d in range(D):
                    out_colors[c, py0 + yy, px0 + xx, d] = acc[d, p] + T[p] * backgrounds[c, d]
                out_T[c, py0 + yy, px0 + xx] = T[p]
                last[c, py0 + yy, px0 + xx] = lst[p]
    return out_colors, out_T, last


@numba.njit(parallel=True, fastmath=True, **_JIT)
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
        c, px0, py0, tw, th = _tile_rect(job, n_tiles, tiles_x, tile_size, width, height)
        npix = tw * th
        T = np.empty(npix, dtype=np.float32)
        T_final = np.empty(npix, dtype=np.float32)
        behind = np.empty((D, npix), dtype=np.float32)
        dC = np.empty((D, npix), dtype=np.float32)
        dA = np.empty(npix, dtype=np.float32)
        lst = np.empty(npix, dtype=np.int32)
        # Per-row scratch: weight, 1/(1−α), T before, dL/dα, α, exp(−σ), whether α was clamped.
        w_b = np.empty(tile_size, dtype=np.float32)
        inv_b = np.empty(tile_size, dtype=np.float32)
        Ti_b = np.empty(tile_size, dtype=np.float32)
        ga_b = np.empty(tile_size, dtype=np.float32)
        a_b = np.empty(tile_size, dtype=np.float32)
        vis_b = np.empty(tile_size, dtype=np.float32)
        free_b = np.empty(tile_size, dtype=np.float32)
        for yy in range(th):
            for xx in range(tw):
                p = yy * tw + xx
                tf = out_T[c, py0 + yy, px0 + xx]
                T[p] = tf
                T_final[p] = tf
                lst[p] = last[c, py0 + yy, px0 + xx]
                dA[p] = grad_alphas[c, py0 + yy, px0 + xx]
                for d in range(D):
                    behind[d, p] = tf * backgrounds[c, d]
                    dC[d, p] = grad_colors[c, py0 + yy, px0 + xx, d]
        for k in range(offsets[job + 1] - 1, offsets[job] - 1, -1):
            g = flat_ids[k]
            # Whole tile rows (fixed trip count, vectorized): pixels outside the box get α < 1/255.
            x0 = px0
            x1 = px0 + tw
            y0 = max(bounds[g, 2], py0)
            y1 = min(bounds[g, 3], py0 + th)
            mx, my, ca, cb, cc, o = means2d[g, 0], means2d[g, 1], conics[g, 0], conics[g, 1], conics[g, 2], opacities[g]
            kk = np.int32(k)
            g_mx = np.float32(0.0)
            g_my = np.float32(0.0)
            g_a = np.float32(0.0)
            g_b = np.float32(0.0)
            g_c = np.float32(0.0)
            g_o = np.float32(0.0)
            for y in range(y0, y1):
                dy = np.float32(y) + np.float32(0.5) - my
                base = (y - py0) * tw - px0
                for x in range(x0, x1):
                    p = np.uintp(base + x)
                    i = np.uintp(x - x0)
                    dx = np.float32(x) + np.float32(0.5) - mx
                    sigma = np.float32(0.5) * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    vis = _exp_neg(sigma)
                    raw = o * vis
                    alpha = min(ALPHA_MAX, raw)
                    # Load everything unconditionally and blend: conditional loads block vectorizing.
                    Tp = T[p]
                    dAp = dA[p]
                    Tf = T_final[p]
                    lp = lst[p]
                    okf = np.float32((sigma >= 0) & (alpha >= ALPHA_MIN) & (kk <= lp))
                    inv = np.float32(1.0) / (np.float32(1.0) - alpha)
                    Ti = okf * (Tp * inv) + (np.float32(1.0) - okf) * Tp
                    a_b[i] = alpha
                    inv_b[i] = inv
                    Ti_b[i] = Ti
                    w_b[i] = okf * alpha * Ti
                    ga_b[i] = okf * dAp * Tf * inv
                    vis_b[i] = vis
                    free_b[i] = okf * np.float32(raw <= ALPHA_MAX)
                    T[p] = Ti
                for dd in range(D):
                    d = np.uintp(dd)
                    col = colors[g, d]
                    g_col = np.float32(0.0)
                    for x in range(x0, x1):
                        p = np.uintp(base + x)
                        i = np.uintp(x - x0)
                        w = w_b[i]
                        dcp = dC[d, p]
                        g_col += w * dcp
                        used = np.float32(w != 0)
                        ga_b[i] += used * dcp * (col * Ti_b[i] - behind[d, p] * inv_b[i])
                        behind[d, p] += col * w
                    isect_grads[k, 6 + d] += g_col
                for x in range(x0, x1):
                    i = np.uintp(x - x0)
                    dx = np.float32(x) + np.float32(0.5) - mx
                    f = free_b[i] * ga_b[i]
                    g_o += f * vis_b[i]
                    g_sigma = -f * a_b[i]
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


@numba.njit(parallel=True, fastmath=True, **_JIT)
def project_fwd(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far):
    """Forward-only EWA projection, the twin of :func:`motion4d.render.projection.project_gaussians`
    (used when no gradient is needed). Inputs float32: means [N,3], quats [N,4] wxyz, scales [N,3],
    opacities [N], viewmats [C,4,4], Ks [C,3,3].

    Returns means2d [C,N,2], conics [C,N,3], depths [C,N], radii [C,N,2] int32, bounds [C,N,4] int32.
    """
    N = means.shape[0]
    C = viewmats.shape[0]
    means2d = np.zeros((C, N, 2), dtype=np.float32)
    conics = np.zeros((C, N, 3), dtype=np.float32)
    depths = np.zeros((C, N), dtype=np.float32)
    radii = np.zeros((C, N, 2), dtype=np.int32)
    bounds = np.zeros((C, N, 4), dtype=np.int32)
    for job in numba.prange(C * N):
        c = job // N
        g = job % N
        qw, qx, qy, qz = quats[g, 0], quats[g, 1], quats[g, 2], quats[g, 3]
        qn = np.float32(1.0) / max(math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz), np.float32(1e-12))
        qw, qx, qy, qz = qw * qn, qx * qn, qy * qn, qz * qn
        Rq = np.empty((3, 3), dtype=np.float32)
        Rq[0, 0] = 1 - 2 * (qy * qy + qz * qz)
        Rq[0, 1] = 2 * (qx * qy - qw * qz)
        Rq[0, 2] = 2 * (qx * qz + qw * qy)
        Rq[1, 0] = 2 * (qx * qy + qw * qz)
        Rq[1, 1] = 1 - 2 * (qx * qx + qz * qz)
        Rq[1, 2] = 2 * (qy * qz - qw * qx)
        Rq[2, 0] = 2 * (qx * qz - qw * qy)
        Rq[2, 1] = 2 * (qy * qz + qw * qx)
        Rq[2, 2] = 1 - 2 * (qx * qx + qy * qy)
        # M = Rview · Rq · diag(s): camera-space covariance is M·Mᵀ.
        M = np.empty((3, 3), dtype=np.float32)
        for i in range(3):
            for j in range(3):
                M[i, j] = (
                    viewmats[c, i, 0] * Rq[0, j] + viewmats[c, i, 1] * Rq[1, j] + viewmats[c, i, 2] * Rq[2, j]
                ) * scales[g, j]
        tx = viewmats[c, 0, 0] * means[g, 0] + viewmats[c, 0, 1] * means[g, 1] + viewmats[c, 0, 2] * means[g, 2] + viewmats[c, 0, 3]
        ty = viewmats[c, 1, 0] * means[g, 0] + viewmats[c, 1, 1] * means[g, 1] + viewmats[c, 1, 2] * means[g, 2] + viewmats[c, 1, 3]
        tz = viewmats[c, 2, 0] * means[g, 0] + viewmats[c, 2, 1] * means[g, 1] + viewmats[c, 2, 2] * means[g, 2] + viewmats[c, 2, 3]
        depths[c, g] = tz
        o = opacities[g]
        if not (tz > near and tz < far and o >= ALPHA_MIN):
            continue
        fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
        tan_x = np.float32(0.5) * width / fx
        tan_y = np.float32(0.5) * height / fy
        u = min(max(tx / tz, -(cx / fx + np.float32(0.3) * tan_x)), (width - cx) / fx + np.float32(0.3) * tan_x)
        v = min(max(ty / tz, -(cy / fy + np.float32(0.3) * tan_y)), (height - cy) / fy + np.float32(0.3) * tan_y)
        # J = [[fx/z, 0, -fx·u/z], [0, fy/z, -fy·v/z]]; A = J·M (2×3); Σ₂D = A·Aᵀ + eps2d·I.
        a = np.float32(0.0)
        b = np.float32(0.0)
        cc = np.float32(0.0)
        for j in range(3):
            r0 = fx / tz * (M[0, j] - u * M[2, j])
            r1 = fy / tz * (M[1, j] - v * M[2, j])
            a += r0 * r0
            b += r0 * r1
            cc += r1 * r1
        a += eps2d
        cc += eps2d
        det = a * cc - b * b
        if not det > 0:
            continue
        mx = fx * tx / tz + cx
        my = fy * ty / tz + cy
        ext = min(np.float32(3.33), math.sqrt(np.float32(2.0) * math.log(o / ALPHA_MIN)))
        rx = math.ceil(ext * math.sqrt(a))
        ry = math.ceil(ext * math.sqrt(cc))
        if (rx <= 0 and ry <= 0) or mx + rx <= 0 or mx - rx >= width or my + ry <= 0 or my - ry >= height:
            continue
        means2d[c, g, 0] = mx
        means2d[c, g, 1] = my
        conics[c, g, 0] = cc / det
        conics[c, g, 1] = -b / det
        conics[c, g, 2] = a / det
        radii[c, g, 0] = np.int32(rx)
        radii[c, g, 1] = np.int32(ry)
        x0 = min(max(math.ceil(mx - rx - np.float32(0.5)), 0), width)
        x1 = min(max(math.floor(mx + rx - np.float32(0.5)) + 1, 0), width)
        y0 = min(max(math.ceil(my - ry - np.float32(0.5)), 0), height)
        y1 = min(max(math.floor(my + ry - np.float32(0.5)) + 1, 0), height)
        if x1 > x0 and y1 > y0:
            bounds[c, g, 0] = x0
            bounds[c, g, 1] = x1
            bounds[c, g, 2] = y0
            bounds[c, g, 3] = y1
    return means2d, conics, depths, radii, bounds
