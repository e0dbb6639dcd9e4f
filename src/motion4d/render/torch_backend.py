"""Pure-PyTorch compositing backend: runs on any device torch runs on, differentiable by autograd.

Tile-based like the others: Gaussians are binned into 16×16 tiles and sorted by (tile, depth); each
(Gaussian, tile) entry expands to the pixels of its box ∩ tile, and a stable sort by pixel keeps the
depth order inside every pixel. Transmittance is a segmented cumulative sum of log(1−α) in float64.
Work is split into chunks of whole tiles, each recomputed in the backward pass (activation
checkpointing), so memory stays bounded on large scenes.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from motion4d.render.projection import ALPHA_THRESHOLD

ALPHA_MAX = 0.999
T_MIN = 1e-4
TILE_SIZE = 16
MAX_PAIRS_PER_CHUNK = 1 << 22


def _bin(bounds: Tensor, depths: Tensor, width: int, height: int, tile_size: int):
    """(Gaussian, tile) entries sorted by (camera, tile, depth) and their pixel rectangles."""
    C, N = depths.shape
    dev = depths.device
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    b = bounds.reshape(C * N, 4).long()
    gid = torch.nonzero((b[:, 1] > b[:, 0]) & (b[:, 3] > b[:, 2]))[:, 0]
    x0, x1, y0, y1 = b[gid].unbind(-1)
    tx0, tx1 = x0 // tile_size, (x1 - 1) // tile_size
    ty0, ty1 = y0 // tile_size, (y1 - 1) // tile_size
    ntx = tx1 - tx0 + 1
    nt = ntx * (ty1 - ty0 + 1)
    total = int(nt.sum())
    rep = lambda v: torch.repeat_interleave(v, nt)  # noqa: E731
    local = torch.arange(total, device=dev) - rep(torch.cumsum(nt, 0) - nt)
    e_tx = rep(tx0) + local % rep(ntx)
    e_ty = rep(ty0) + local // rep(ntx)
    e_g = rep(gid)
    rank = torch.empty_like(depths, dtype=torch.long)
    order = torch.argsort(depths, dim=1, stable=True)
    rank.scatter_(1, order, torch.arange(N, device=dev).expand(C, N).contiguous())
    tile = (e_g // N) * (tiles_x * tiles_y) + e_ty * tiles_x + e_tx
    perm = torch.argsort(tile * N + rank.reshape(-1)[e_g])
    e_g, e_tx, e_ty, tile = e_g[perm], e_tx[perm], e_ty[perm], tile[perm]
    rect = torch.stack(
        [
            torch.maximum(b[e_g, 0], e_tx * tile_size),
            torch.minimum(b[e_g, 1], e_tx * tile_size + tile_size),
            torch.maximum(b[e_g, 2], e_ty * tile_size),
            torch.minimum(b[e_g, 3], e_ty * tile_size + tile_size),
        ],
        dim=-1,
    )
    return e_g, tile, rect


def _pairs(e_g: Tensor, rect: Tensor, N: int, width: int, height: int):
    """Expand entries to (Gaussian, pixel) pairs grouped by pixel, front to back inside a pixel."""
    w = rect[:, 1] - rect[:, 0]
    npx = w * (rect[:, 3] - rect[:, 2])
    total = int(npx.sum())
    rep = lambda v: torch.repeat_interleave(v, npx)  # noqa: E731
    local = torch.arange(total, device=e_g.device) - rep(torch.cumsum(npx, 0) - npx)
    px = rep(rect[:, 0]) + local % rep(w)
    py = rep(rect[:, 2]) + local // rep(w)
    g = rep(e_g)
    pixel = (g // N) * (height * width) + py * width + px
    perm = torch.argsort(pixel, stable=True)
    return g[perm], pixel[perm], px[perm], py[perm]


def _segment_exclusive_cumsum(x: Tensor, first: Tensor) -> Tensor:
    """Exclusive cumulative sum of x restarting at each segment; first[i] = index where i's segment starts."""
    excl = torch.cumsum(x, 0) - x
    return excl - excl[first]


def _composite_chunk(means2d, conics, opacities, colors, g, pixel, px, py, first, inverse, n_pix):
    """Per-pixel Σ wᵢcᵢ [n_pix,D] and log T_final [n_pix] for one chunk of pairs."""
    dx = px.to(means2d.dtype) + 0.5 - means2d[g, 0]
    dy = py.to(means2d.dtype) + 0.5 - means2d[g, 1]
    q = conics[g]
    sigma = 0.5 * (q[:, 0] * dx * dx + q[:, 2] * dy * dy) + q[:, 1] * dx * dy
    alpha = torch.clamp_max(opacities[g] * torch.exp(-sigma), ALPHA_MAX)
    valid = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
    with torch.no_grad():
        logs = torch.log1p(-torch.where(valid, alpha, torch.zeros_like(alpha)).double())
        log_next = _segment_exclusive_cumsum(logs, first) + logs
        pos = torch.arange(g.shape[0], device=g.device)
        stop_pos = torch.where(valid & (log_next <= torch.log(torch.tensor(T_MIN, dtype=torch.float64))), pos, g.shape[0])
        first_stop = torch.full((n_pix,), g.shape[0], dtype=torch.long, device=g.device)
        first_stop = first_stop.scatter_reduce(0, inverse, stop_pos, reduce="amin")
        used = valid & (pos < first_stop[inverse])
    a = torch.where(used, alpha, torch.zeros_like(alpha))
    logs = torch.log1p(-a.double())
    T = torch.exp(_segment_exclusive_cumsum(logs, first)).to(a.dtype)
    contrib = (a * T)[:, None] * colors[g]
    acc = torch.zeros((n_pix, colors.shape[1]), dtype=colors.dtype, device=colors.device)
    acc = acc.index_add(0, inverse, contrib)
    log_T = torch.zeros(n_pix, dtype=torch.float64, device=g.device).index_add(0, inverse, logs)
    return acc, log_T


def composite_torch(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    colors: Tensor,
    backgrounds: Tensor,
    bounds: Tensor,
    depths: Tensor,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
    max_pairs_per_chunk: int = MAX_PAIRS_PER_CHUNK,
) -> tuple[Tensor, Tensor]:
    """Same contract as :func:`motion4d.render.numba_backend.composite_numba`."""
    C, N = depths.shape
    D = colors.shape[-1]
    flat = (
        means2d.reshape(C * N, 2),
        conics.reshape(C * N, 3),
        opacities.reshape(C * N),
        colors.reshape(C * N, D),
    )
    with torch.no_grad():
        e_g, tile, rect = _bin(bounds, depths, width, height, tile_size)
        npx = (rect[:, 1] - rect[:, 0]) * (rect[:, 3] - rect[:, 2])
        # Chunk boundaries fall between tiles, so each pixel's pairs stay in one chunk.
        tile_change = torch.ones_like(tile, dtype=torch.bool)
        tile_change[1:] = tile[1:] != tile[:-1]
        starts = torch.nonzero(tile_change)[:, 0].tolist() + [tile.shape[0]]
        cum = torch.cumsum(npx, 0).tolist()
    out = torch.zeros((C * height * width, D), dtype=colors.dtype, device=colors.device)
    log_T = torch.zeros(C * height * width, dtype=torch.float64, device=colors.device)
    i, done_pairs = 0, 0
    while i < len(starts) - 1:
        j = i + 1
        while j < len(starts) - 1 and cum[starts[j + 1] - 1] - done_pairs <= max_pairs_per_chunk:
            j += 1
        lo, hi = starts[i], starts[j]
        with torch.no_grad():
            g, pixel, px, py = _pairs(e_g[lo:hi], rect[lo:hi], N, width, height)
            pix_ids, inverse = torch.unique_consecutive(pixel, return_inverse=True)
            pos = torch.arange(g.shape[0], device=g.device)
            first = torch.zeros(pix_ids.shape[0], dtype=torch.long, device=g.device)
            first = first.scatter_reduce(0, inverse, pos, reduce="amin", include_self=False)[inverse]
        args = (*flat, g, pixel, px, py, first, inverse, pix_ids.shape[0])
        if torch.is_grad_enabled() and any(t.requires_grad for t in flat):
            acc, lt = checkpoint(_composite_chunk, *args, use_reentrant=False)
        else:
            acc, lt = _composite_chunk(*args)
        out = out.index_add(0, pix_ids, acc)
        log_T = log_T.index_add(0, pix_ids, lt)
        done_pairs = cum[hi - 1]
        i = j
    T = torch.exp(log_T).to(colors.dtype).reshape(C, height, width, 1)
    out = out.reshape(C, height, width, D) + T * backgrounds[:, None, None, :]
    return out, 1 - T
