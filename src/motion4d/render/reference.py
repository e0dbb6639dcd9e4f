"""Reference twin of the compositing backends: every pixel against every Gaussian, no tiles, no boxes.

Short and obviously correct rather than fast (memory O(C·H·W·N)); run it in float64 on tiny scenes
to check the fast backends' values and gradients (autograd gives the gradients here).
"""

from __future__ import annotations

import torch
from torch import Tensor

from motion4d.render.projection import ALPHA_THRESHOLD

ALPHA_MAX = 0.999
T_MIN = 1e-4


def composite_dense(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    colors: Tensor,
    backgrounds: Tensor,
    visible: Tensor,
    depths: Tensor,
    width: int,
    height: int,
) -> tuple[Tensor, Tensor]:
    """Dense front-to-back compositing.

    Args:
        means2d [C,N,2], conics [C,N,3], opacities [C,N], colors [C,N,D], backgrounds [C,D],
        visible [C,N] bool (not culled by the projection), depths [C,N].

    Returns:
        colors [C,H,W,D], alphas [C,H,W,1].
    """
    C, N = depths.shape
    dtype = means2d.dtype
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=means2d.device) + 0.5,
        torch.arange(width, dtype=dtype, device=means2d.device) + 0.5,
        indexing="ij",
    )
    pix = torch.stack([xs, ys], dim=-1).reshape(1, -1, 1, 2)  # [1,P,1,2]
    order = torch.argsort(depths, dim=1, stable=True)  # [C,N]

    def take(x: Tensor) -> Tensor:
        idx = order.reshape(order.shape + (1,) * (x.dim() - 2)).expand(order.shape + x.shape[2:])
        return torch.gather(x, 1, idx)

    m, q, o, col, vis = take(means2d), take(conics), take(opacities), take(colors), take(visible)
    d = pix - m[:, None]  # [C,P,N,2]
    dx, dy = d[..., 0], d[..., 1]
    sigma = 0.5 * (q[:, None, :, 0] * dx * dx + q[:, None, :, 2] * dy * dy) + q[:, None, :, 1] * dx * dy
    alpha = torch.clamp_max(o[:, None] * torch.exp(-sigma), ALPHA_MAX)  # [C,P,N]
    valid = vis[:, None] & (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
    with torch.no_grad():
        a = torch.where(valid, alpha, torch.zeros_like(alpha))
        next_T = torch.cumprod(1 - a, dim=-1)
        stopped = torch.cummax((valid & (next_T <= T_MIN)).to(torch.int8), dim=-1).values.bool()
        used = valid & ~stopped
    a = torch.where(used, alpha, torch.zeros_like(alpha))
    one_minus = 1 - a
    T = torch.cumprod(torch.cat([torch.ones_like(a[..., :1]), one_minus[..., :-1]], dim=-1), dim=-1)
    w = a * T  # [C,P,N]
    T_final = T[..., -1] * one_minus[..., -1] if N > 0 else torch.ones(C, height * width, dtype=dtype)
    out = torch.einsum("cpn,cnd->cpd", w, col) + T_final[..., None] * backgrounds[:, None, :]
    D = colors.shape[-1]
    return out.reshape(C, height, width, D), (1 - T_final).reshape(C, height, width, 1)
