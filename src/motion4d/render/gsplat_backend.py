"""The CUDA backend: gsplat's fused kernels, called with the conventions of the other backends."""

from __future__ import annotations

from torch import Tensor


def rasterization_gsplat(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    **kwargs,
) -> tuple[Tensor, Tensor, dict]:
    """gsplat ``rasterization``, unpacked, so images match the CPU backends (``rasterize_mode`` passed on)."""
    import gsplat

    kwargs.setdefault("rasterize_mode", "classic")
    colors_out, alphas, meta = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height, packed=False, **kwargs,
    )  # fmt: skip
    meta["backend"] = "gsplat"
    return colors_out, alphas, meta
