"""Cameras as plain tensors: ``viewmats [C,4,4]`` (world→camera, OpenCV axes: x right, y down,
z forward) and ``Ks [C,3,3]`` pinhole intrinsics, the convention of gsplat and of
:func:`motion4d.render.rasterization`.

Blender / NeRF / nerfstudio files store camera→world matrices in OpenGL axes (x right, y up,
z backward); :func:`opengl_c2w_to_viewmat` is the one place that converts them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Flips the y and z camera axes: OpenGL (y up, z back) <-> OpenCV (y down, z forward).
_GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


def opengl_c2w_to_viewmat(c2w: Tensor) -> Tensor:
    """Camera→world matrices in OpenGL axes [..., 4, 4] → world→camera viewmats in OpenCV axes."""
    if c2w.shape[-2:] != (4, 4):
        raise ValueError(f"c2w must have shape [...,4,4], got {tuple(c2w.shape)}")
    flip = _GL_TO_CV.to(dtype=c2w.dtype, device=c2w.device)
    return torch.linalg.inv(c2w @ flip)


def viewmat_to_opengl_c2w(viewmats: Tensor) -> Tensor:
    """Inverse of :func:`opengl_c2w_to_viewmat`."""
    flip = _GL_TO_CV.to(dtype=viewmats.dtype, device=viewmats.device)
    return torch.linalg.inv(viewmats) @ flip


def camera_centers(viewmats: Tensor) -> Tensor:
    """World-space camera centres [..., 3] of viewmats [..., 4, 4]."""
    R = viewmats[..., :3, :3]
    t = viewmats[..., :3, 3:]
    return -(R.transpose(-1, -2) @ t)[..., 0]


def intrinsics_from_fov(
    fov_x_deg: float, width: int, height: int, *, fov_y_deg: float | None = None
) -> Tensor:
    """Pinhole K [3,3] (float32) with the principal point at the image centre.

    ``fov_y_deg`` defaults to square pixels (fy = fx).
    """
    fx = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    fy = fx if fov_y_deg is None else 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    return torch.tensor(
        [[fx, 0.0, width / 2.0], [0.0, fy, height / 2.0], [0.0, 0.0, 1.0]], dtype=torch.float32
    )


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """World→camera viewmats (OpenCV axes) for cameras at ``eye [...,3]`` looking at ``target [...,3]``.

    ``up`` [...,3] is the world's up direction (default +z). Returns [..., 4, 4].
    """
    eye = torch.as_tensor(eye, dtype=torch.float32)
    target = torch.as_tensor(target, dtype=eye.dtype, device=eye.device)
    if up is None:
        up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device)
    up = torch.as_tensor(up, dtype=eye.dtype, device=eye.device)
    eye, target, up = torch.broadcast_tensors(eye, target, up)
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    right = torch.linalg.cross(forward, up, dim=-1)
    # Looking straight along `up`: pick any perpendicular right vector.
    degenerate = right.norm(dim=-1, keepdim=True) < 1e-8
    alt = torch.linalg.cross(forward, torch.roll(up, 1, dims=-1), dim=-1)
    right = torch.nn.functional.normalize(torch.where(degenerate, alt, right), dim=-1)
    down = torch.linalg.cross(forward, right, dim=-1)
    R = torch.stack([right, down, forward], dim=-2)  # rows: camera axes in world coordinates
    viewmat = torch.zeros(eye.shape[:-1] + (4, 4), dtype=eye.dtype, device=eye.device)
    viewmat[..., :3, :3] = R
    viewmat[..., :3, 3] = -(R @ eye[..., None])[..., 0]
    viewmat[..., 3, 3] = 1.0
    return viewmat


def orbit_viewmats(
    n: int,
    radius: float,
    *,
    elevation_deg: float = 20.0,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    up: tuple[float, float, float] = (0.0, 0.0, 1.0),
    start_deg: float = 0.0,
) -> Tensor:
    """``n`` viewmats [n,4,4] evenly spaced on a circle around ``target`` (z-up world)."""
    az = torch.deg2rad(torch.linspace(0.0, 360.0, n + 1)[:n] + start_deg)
    el = math.radians(elevation_deg)
    eye = torch.stack(
        [
            radius * math.cos(el) * torch.cos(az),
            radius * math.cos(el) * torch.sin(az),
            torch.full_like(az, radius * math.sin(el)),
        ],
        dim=-1,
    ) + torch.tensor(target)
    return look_at(eye, torch.tensor(target).expand_as(eye), torch.tensor(up).expand_as(eye))


def project_points(points: Tensor, viewmats: Tensor, Ks: Tensor) -> tuple[Tensor, Tensor]:
    """Pinhole projection of world ``points [P,3]`` into cameras ``viewmats [C,4,4]``, ``Ks [C,3,3]``.

    Returns pixel coordinates ``uv [C,P,2]`` (pixel centres at +0.5) and camera depths ``z [C,P]``;
    points at depth <= 0 get the uv of depth 1e-6 (mask them with ``z``). Differentiable.
    """
    cam = torch.einsum("cab,pb->cpa", viewmats[:, :3, :3], points) + viewmats[:, None, :3, 3]
    z = cam[..., 2]
    safe = z.clamp_min(1e-6)
    u = Ks[:, None, 0, 0] * cam[..., 0] / safe + Ks[:, None, 0, 2]
    v = Ks[:, None, 1, 1] * cam[..., 1] / safe + Ks[:, None, 1, 2]
    return torch.stack([u, v], dim=-1), z


def spherical_viewmats(
    azimuth_deg: Tensor,
    elevation_deg: Tensor,
    radius: Tensor | float,
    *,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Tensor:
    """Viewmats [C,4,4] of cameras on spheres around ``target`` in a z-up world, looking at it.

    The object-centric convention of generated assets: azimuth 0 is the *front* camera on the −y axis,
    azimuth 90° is on +x (the object's right as seen from the front), elevation is above the xy-plane.
    ``azimuth_deg [C]``, ``elevation_deg [C]``, ``radius [C]`` or a float.
    """
    az = torch.deg2rad(torch.as_tensor(azimuth_deg, dtype=torch.float32))
    el = torch.deg2rad(torch.as_tensor(elevation_deg, dtype=torch.float32))
    if az.dim() != 1 or el.shape != az.shape:
        raise ValueError(f"azimuth and elevation must both have shape [C], got {list(az.shape)} and {list(el.shape)}")
    r = torch.as_tensor(radius, dtype=torch.float32).expand_as(az)
    center = torch.tensor(target, dtype=torch.float32)
    eye = torch.stack([r * el.cos() * az.sin(), -r * el.cos() * az.cos(), r * el.sin()], dim=-1) + center
    return look_at(eye, center.expand_as(eye))
