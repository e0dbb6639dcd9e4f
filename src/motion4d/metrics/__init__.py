"""Metrics: image quality (PSNR, SSIM), evaluation over views, motion amplitude, geometry errors, and the
generation oracle (`motion4d.metrics.oracle`: shape, colour and motion of a generated asset, no learned model)."""

from motion4d.metrics.geometry import (
    bbox_diagonal,
    nearest_distances,
    nearest_vertex_error_pct,
    per_vertex_error,
    shape_oracle_error,
    surface_chamfer,
    trajectory_deviation,
)
from motion4d.metrics.image import gaussian_window, psnr, ssim
from motion4d.metrics.motion import motion_amplitude
from motion4d.metrics.views import ViewMetrics, evaluate_model, evaluate_views

__all__ = [
    "ViewMetrics",
    "bbox_diagonal",
    "evaluate_model",
    "evaluate_views",
    "gaussian_window",
    "motion_amplitude",
    "nearest_distances",
    "nearest_vertex_error_pct",
    "per_vertex_error",
    "psnr",
    "shape_oracle_error",
    "ssim",
    "surface_chamfer",
    "trajectory_deviation",
]
