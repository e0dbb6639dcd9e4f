"""Attention over the view × frame grid of a multi-view video, as modules (torch SDPA, no globals).

Tokens are ``[B, V, T, N, D]``: B samples, V views, T frames, N patch tokens per image, width D.
Every self-attention variant of Motion4D's 4D diffusion is one grouping of the grid's *cells* (v, t):

- spatial attention: window (1, 1), each image alone;
- frame attention: window (1, T), one view's frames together;
- view attention: window (V, 1), one frame's views together;
- Klotski attention: windows of a few cells, e.g. (2, 2) or (2, 4), shifted between layers with wrap-around
  so that, like the blocks of a sliding-block puzzle, information slides across the whole grid.

A window holds every patch token of its cells, so all of them also mix within each image.
:func:`cell_windows` is the one grouping function; tests check it covers the grid exactly once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FULL = 0
"""A window extent meaning "the whole axis" (frame attention is ``(1, FULL)``)."""


def fitted_extent(size: int, extent: int) -> int:
    """The window extent used on an axis of ``size`` cells: ``extent`` (FULL = ``size``), reduced to the
    largest divisor of ``size`` not above it so that the windows tile the axis."""
    if size < 1:
        raise ValueError(f"grid axis must have at least one cell, got {size}")
    want = size if extent == FULL else min(extent, size)
    return max(d for d in range(1, want + 1) if size % d == 0)


def cell_windows(views: int, frames: int, window: tuple[int, int], shift: tuple[int, int] = (0, 0)) -> Tensor:
    """Partition of the ``views × frames`` grid into windows of cells.

    ``window`` (wv, wt) is fitted to the grid by :func:`fitted_extent`; ``shift`` (sv, st) moves every window
    by that many cells, wrapping around both axes. Returns ``[n_windows, wv * wt]`` long indices of cells
    ``v * frames + t``, each cell exactly once, window by window, cells in (view, frame) order.
    """
    wv, wt = fitted_extent(views, window[0]), fitted_extent(frames, window[1])
    v = torch.arange(views).view(views // wv, 1, wv, 1)
    t = torch.arange(frames).view(1, frames // wt, 1, wt)
    v = (v + shift[0]) % views
    t = (t + shift[1]) % frames
    cells = v * frames + t  # [nV, nT, wv, wt]
    return cells.reshape((views // wv) * (frames // wt), wv * wt)


def attention(q: Tensor, k: Tensor, v: Tensor, heads: int, mask: Tensor | None = None) -> Tensor:
    """Multi-head SDPA. ``q [G, Lq, D]``, ``k, v [G, Lk, D]``, ``mask [G, Lk]`` bool (True = attend) → [G, Lq, D]."""
    g, lq, d = q.shape
    split = lambda x: x.view(g, x.shape[1], heads, d // heads).transpose(1, 2)  # noqa: E731
    attn_mask = None if mask is None else mask[:, None, None, :]
    out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=attn_mask)
    return out.transpose(1, 2).reshape(g, lq, d)


class SelfAttention(nn.Module):
    """Multi-head self-attention over groups of tokens ``[G, L, D]``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.out(attention(q, k, v, self.heads))


class GridWindowAttention(nn.Module):
    """Self-attention within windows of cells of the view × frame grid (see the module docstring).

    ``window`` (wv, wt) in cells, ``FULL`` for a whole axis; ``shift`` (sv, st) in cells, wrapping.
    """

    def __init__(self, dim: int, heads: int, window: tuple[int, int], shift: tuple[int, int] = (0, 0)) -> None:
        super().__init__()
        self.window = (int(window[0]), int(window[1]))
        self.shift = (int(shift[0]), int(shift[1]))
        self.attn = SelfAttention(dim, heads)

    def extra_repr(self) -> str:
        return f"window={self.window}, shift={self.shift}"

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, V, T, N, D]`` → the same shape."""
        b, nv, nt, n, d = x.shape
        idx = cell_windows(nv, nt, self.window, self.shift)
        nw, s = idx.shape
        in_order = bool((idx.flatten() == torch.arange(nv * nt)).all())  # spatial and frame windows: a reshape
        cells = x.reshape(b, nv * nt, n, d)
        if not in_order:
            cells = cells[:, idx.flatten().to(x.device)]
        out = self.attn(cells.reshape(b * nw, s * n, d)).reshape(b, nw * s, n, d)
        if not in_order:
            out = out[:, torch.argsort(idx.flatten()).to(x.device)]
        return out.reshape(b, nv, nt, n, d)


class CrossAttention(nn.Module):
    """Every token of a sample attends to that sample's context tokens (text and motion tokens)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor) -> Tensor:
        """``x [B, V, T, N, D]``, ``context [B, K, D]``, ``mask [B, K]`` bool (True = attend) → ``x``'s shape."""
        shape = x.shape
        k, v = self.kv(context).chunk(2, dim=-1)
        out = attention(self.q(x.reshape(shape[0], -1, shape[-1])), k, v, self.heads, mask)
        return self.out(out).reshape(shape)

