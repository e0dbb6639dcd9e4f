"""The fast CPU backend: screen-space compositing in numba kernels behind a torch autograd Function."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from motion4d.render import _numba_kernels as K
from motion4d.render.projection import Projected

TILE_SIZE = 16


def _np(x: Tensor, dtype=np.float32) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=dtype)


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, backgrounds, bounds, depths, width, height, tile_size):
        C, N = depths.shape
        D = colors.shape[-1]
        bounds_np = _np(bounds, np.int32)
        offsets, flat_ids = K.bin_gaussians(bounds_np, _np(depths), tile_size, width, height)
        arrays = (
            bounds_np.reshape(C * N, 4),
            _np(means2d).reshape(C * N, 2),
            _np(conics).reshape(C * N, 3),
            _np(opacities).reshape(C * N),
            _np(colors).reshape(C * N, D),
            _np(backgrounds).reshape(C, D),
        )
        out_colors, out_T, last = K.rasterize_fwd(offsets, flat_ids, *arrays, width, height, tile_size)
        ctx.state = (offsets, flat_ids, arrays, out_T, last, width, height, tile_size)
        ctx.shapes = (C, N, D)
        ctx.device = means2d.device
        ctx.dtype = means2d.dtype  # kernels run in float32; results come back in the input dtype
        colors_t = torch.from_numpy(out_colors).to(means2d.device, means2d.dtype)
        alphas_t = torch.from_numpy(1.0 - out_T[..., None]).to(means2d.device, means2d.dtype)
        return colors_t, alphas_t

    @staticmethod
    def backward(ctx, grad_colors, grad_alphas):
        offsets, flat_ids, arrays, out_T, last, width, height, tile_size = ctx.state
        C, N, D = ctx.shapes
        isect = K.rasterize_bwd(
            offsets,
            flat_ids,
            *arrays,
            out_T,
            last,
            _np(grad_colors),
            _np(grad_alphas)[..., 0],
            width,
            height,
            tile_size,
        )
        grads = torch.from_numpy(K.reduce_grads(flat_ids, isect, C * N)).to(ctx.device, ctx.dtype)
        g_means2d = grads[:, 0:2].reshape(C, N, 2)
        g_conics = grads[:, 2:5].reshape(C, N, 3)
        g_opac = grads[:, 5].reshape(C, N)
        g_colors = grads[:, 6:].reshape(C, N, D)
        g_bg = None
        if ctx.needs_input_grad[4]:
            g_bg = (grad_colors * torch.from_numpy(out_T[..., None]).to(ctx.device, ctx.dtype)).sum(dim=(1, 2))
        ctx.state = None
        return g_means2d, g_conics, g_opac, g_colors, g_bg, None, None, None, None, None


def composite_numba(
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
) -> tuple[Tensor, Tensor]:
    """Composite screen-space Gaussians front to back.

    Args:
        means2d [C,N,2], conics [C,N,3], opacities [C,N], colors [C,N,D], backgrounds [C,D],
        bounds [C,N,4] int32 pixel ranges (see :func:`~motion4d.render.projection.pixel_bounds`),
        depths [C,N] (sort keys).

    Returns:
        colors [C,H,W,D] and alphas [C,H,W,1], differentiable w.r.t. means2d, conics, opacities,
        colors and backgrounds.
    """
    return _Composite.apply(
        means2d, conics, opacities, colors, backgrounds, bounds, depths, width, height, tile_size
    )


def project_numba(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    eps2d: float,
    near_plane: float,
    far_plane: float,
) -> tuple[Projected, Tensor]:
    """Forward-only projection in one numba pass (no autograd); returns the projection and the
    pixel bounds [C,N,4] of :func:`~motion4d.render.projection.pixel_bounds`."""
    m2d, conics, depths, radii, bounds = K.project_fwd(
        _np(means), _np(quats), _np(scales), _np(opacities), _np(viewmats), _np(Ks),
        width, height, eps2d, near_plane, far_plane,
    )  # fmt: skip
    C = viewmats.shape[0]
    def t(x: np.ndarray) -> Tensor:  # back in the caller's float dtype
        return torch.from_numpy(x).to(means.dtype)

    proj = Projected(
        means2d=t(m2d), conics=t(conics), depths=t(depths), radii=torch.from_numpy(radii),
        opacities=opacities.detach().expand(C, -1),
    )  # fmt: skip
    return proj, torch.from_numpy(bounds)
