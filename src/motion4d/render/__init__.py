"""Cameras, projection and the Gaussian rasterizer (one call, several backends)."""

from motion4d.render.rasterization import gsplat_available, rasterization

__all__ = ["rasterization", "gsplat_available"]
