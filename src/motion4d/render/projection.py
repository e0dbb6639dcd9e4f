"""EWA projection of 3D Gaussians to the image plane (gsplat "classic" conventions), in PyTorch.

Everything here is differentiable through autograd; it is cheap (O(N·C) small tensor ops) next to
the per-pixel compositing, which the backends implement.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from motion4d.gaussians.rotations import quat_to_rotmat

ALPHA_THRESHOLD = 1.0 / 255.0
"""Contributions with α below this are skipped, and Gaussians with opacity below it culled."""
MAX_EXTENT = 3.33
"""Box half-side in standard deviations for a fully opaque Gaussian (gsplat's 3.33)."""
FOV_CLAMP = 0.3
"""The Jacobian uses x/z, y/z clamped to the field of view widened by this fraction of tan(fov/2)."""


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """World covariances Σ = R·diag(s²)·Rᵀ [..., 3, 3] from quats [..., 4] and scales [..., 3]."""
    M = quat_to_rotmat(quats) * scales[..., None, :]
    return M @ M.transpose(-1, -2)


@dataclass
class Projected:
    """Per-camera screen-space Gaussians. C cameras, N Gaussians.

    Attributes:
        means2d: [C,N,2] pixel coordinates (pixel centres at +0.5).
        conics: [C,N,3] upper triangle (a, b, c) of the inverse 2D covariance.
        depths: [C,N] camera-space z.
        radii: [C,N,2] int32 half-sides of the opacity-aware box; 0 where culled.
        opacities: [C,N] opacities (culled ones unchanged; use ``radii`` to mask).
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    radii: Tensor
    opacities: Tensor


def project_gaussians(
    means: Tensor,
    covars: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    antialiased: bool = False,
) -> Projected:
    """Project Gaussians (means [N,3], covars [N,3,3], opacities [N]) into C pinhole cameras
    (viewmats [C,4,4] world→camera OpenCV, Ks [C,3,3]).

    ``antialiased`` (gsplat's "antialiased" mode, Mip-Splatting's 2D filter): opacities are multiplied by
    ``sqrt(det Σ₂D / det(Σ₂D + eps2d·I))`` so that the low-pass filter spreads a Gaussian without adding
    to its total opacity (in "classic" mode a sub-pixel Gaussian grows to ~0.55 px at full opacity, which
    fattens thin, densely covered surfaces).

    Culled (radii 0): depth outside (near_plane, far_plane), singular 2D covariance, opacity below
    1/255, or box entirely off-image. The box half-sides are ceil(k·sqrt(Σ₂D,xx)),
    ceil(k·sqrt(Σ₂D,yy)) with k = min(3.33, sqrt(2·ln(255·o))): outside it α < 1/255.
    """
    R = viewmats[:, None, :3, :3]  # [C,1,3,3]
    t = viewmats[:, None, :3, 3]  # [C,1,3]
    means_c = (R @ means[None, :, :, None])[..., 0] + t  # [C,N,3]
    covars_c = R @ covars[None] @ R.transpose(-1, -2)  # [C,N,3,3]
    tx, ty, tz = torch.unbind(means_c, dim=-1)

    fx = Ks[:, 0, 0, None]
    fy = Ks[:, 1, 1, None]
    cx = Ks[:, 0, 2, None]
    cy = Ks[:, 1, 2, None]
    tan_x = 0.5 * width / fx
    tan_y = 0.5 * height / fy
    # Guard the division for Gaussians behind the camera; they are culled below.
    safe_z = torch.where(tz.abs() > 1e-12, tz, torch.full_like(tz, 1e-12))
    u = torch.clamp(tx / safe_z, min=-(cx / fx + FOV_CLAMP * tan_x), max=(width - cx) / fx + FOV_CLAMP * tan_x)
    v = torch.clamp(ty / safe_z, min=-(cy / fy + FOV_CLAMP * tan_y), max=(height - cy) / fy + FOV_CLAMP * tan_y)
    zeros = torch.zeros_like(tz)
    J = torch.stack(
        [fx / safe_z, zeros, -fx * u / safe_z, zeros, fy / safe_z, -fy * v / safe_z], dim=-1
    ).reshape(tz.shape + (2, 3))
    covars2d = J @ covars_c @ J.transpose(-1, -2)
    if antialiased:
        a0, b0, c0 = covars2d[..., 0, 0], 0.5 * (covars2d[..., 0, 1] + covars2d[..., 1, 0]), covars2d[..., 1, 1]
        det0 = a0 * c0 - b0 * b0
    covars2d = covars2d + eps2d * torch.eye(2, dtype=covars2d.dtype, device=covars2d.device)
    a, b, c = covars2d[..., 0, 0], 0.5 * (covars2d[..., 0, 1] + covars2d[..., 1, 0]), covars2d[..., 1, 1]
    det = a * c - b * b
    opacities = opacities.expand(tz.shape)
    if antialiased:
        safe = torch.where(det > 0, det, torch.ones_like(det))
        opacities = opacities * torch.sqrt((det0 / safe).clamp(min=0.0))
    safe_det = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([c / safe_det, -b / safe_det, a / safe_det], dim=-1)
    means2d = torch.stack([fx * tx / safe_z + cx, fy * ty / safe_z + cy], dim=-1)

    with torch.no_grad():
        opac = opacities.detach()
        extent = torch.sqrt(2.0 * torch.log(torch.clamp(opac / ALPHA_THRESHOLD, min=1.0))).clamp(max=MAX_EXTENT)
        rx = torch.ceil(extent * torch.sqrt(a.detach().clamp(min=0)))
        ry = torch.ceil(extent * torch.sqrt(c.detach().clamp(min=0)))
        m = means2d.detach()
        valid = (
            (det.detach() > 0)
            & (tz.detach() > near_plane)
            & (tz.detach() < far_plane)
            & (opac >= ALPHA_THRESHOLD)
            & ((rx > 0) | (ry > 0))
            & (m[..., 0] + rx > 0)
            & (m[..., 0] - rx < width)
            & (m[..., 1] + ry > 0)
            & (m[..., 1] - ry < height)
            & torch.isfinite(m).all(dim=-1)
        )
        radii = torch.stack([rx, ry], dim=-1)
        radii = torch.where(valid[..., None], radii, torch.zeros_like(radii)).to(torch.int32)
    return Projected(
        means2d=means2d,
        conics=conics,
        depths=tz,
        radii=radii,
        opacities=opacities,
    )


def pixel_bounds(means2d: Tensor, radii: Tensor, width: int, height: int) -> Tensor:
    """Pixel index ranges [C,N,4] int32 (x0, x1, y0, y1; half-open) of the pixels whose centres lie
    inside each Gaussian's box, clipped to the image; empty (x0 == x1) where culled."""
    m = means2d.detach()
    r = radii.to(m.dtype)
    x0 = torch.ceil(m[..., 0] - r[..., 0] - 0.5).clamp(0, width)
    x1 = (torch.floor(m[..., 0] + r[..., 0] - 0.5) + 1).clamp(0, width)
    y0 = torch.ceil(m[..., 1] - r[..., 1] - 0.5).clamp(0, height)
    y1 = (torch.floor(m[..., 1] + r[..., 1] - 0.5) + 1).clamp(0, height)
    visible = (radii > 0).any(dim=-1)
    x1 = torch.where(visible & (x1 > x0), x1, x0)
    y1 = torch.where(visible & (y1 > y0), y1, y0)
    return torch.stack([x0, x1, y0, y1], dim=-1).to(torch.int32)
