"""Cameras as plain tensors: ``viewmats [C,4,4]`` (world→camera, OpenCV axes: x right, y down,
z forward) and ``Ks [C,3,3]`` pinhole intrinsics, the convention of gsplat and of
:func:`motion4d.render.rasterization`.

Blender / NeRF / nerfstudio files store camera→world matrices in OpenGL axes (x right, y up,
z backward); :func:`opengl_c2w_to_viewmat` is the one place that converts them.

Camera placements, all in a z-up world: :func:`orbit_viewmats` (one circle; :class:`OrbitRig` remembers
one for orbit videos) and :func:`ring_viewmats` (rings at several elevations: datasets and demo scenes)
measure azimuth from +x towards +y; :func:`spherical_viewmats` and :func:`sample_spherical_poses` use the
object-centric convention of generated assets, azimuth 0 = the front camera on −y (spherical azimuth =
orbit azimuth + 90°).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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


def _circle_eyes(azimuth_rad: Tensor, elevation_rad: Tensor, radius: float, target: tuple[float, float, float]) -> Tensor:
    """Points [C,3] ``target + (r·cos el·cos az, r·cos el·sin az, r·sin el)``: azimuth from +x towards +y (z up).

    ``azimuth_rad [C]`` sets the dtype of the arithmetic; ``elevation_rad [C]`` is float64 (its products with
    ``radius`` are rounded once to that dtype), so float32 orbits and float64 rings each keep their numbers.
    """
    rc = (radius * torch.cos(elevation_rad)).to(azimuth_rad.dtype)
    rs = (radius * torch.sin(elevation_rad)).to(azimuth_rad.dtype)
    eye = torch.stack([rc * torch.cos(azimuth_rad), rc * torch.sin(azimuth_rad), rs], dim=-1)
    return eye + torch.tensor(target, dtype=azimuth_rad.dtype)


def orbit_viewmats(
    n: int,
    radius: float,
    *,
    elevation_deg: float = 20.0,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    up: tuple[float, float, float] = (0.0, 0.0, 1.0),
    start_deg: float = 0.0,
) -> Tensor:
    """``n`` viewmats [n,4,4] (float32) evenly spaced on one circle around ``target`` at ``elevation_deg``,
    the first at azimuth ``start_deg`` (from +x towards +y), looking at ``target`` with ``up``."""
    az = torch.deg2rad(torch.linspace(0.0, 360.0, n + 1)[:n] + start_deg)
    eye = _circle_eyes(az, torch.full((n,), math.radians(elevation_deg), dtype=torch.float64), radius, target)
    return look_at(eye, torch.tensor(target).expand_as(eye), torch.tensor(up).expand_as(eye))


def ring_positions(n: int, elevations_deg: Sequence[float], radius: float, azimuth_offset_deg: float = 0.0) -> Tensor:
    """[n,3] float64 camera positions around the origin: camera ``i`` at azimuth ``azimuth_offset_deg + 360·i/n``
    (from +x towards +y) and elevation ``elevations_deg[i % len(elevations_deg)]``, at distance ``radius``."""
    if len(elevations_deg) == 0:
        raise ValueError("elevations_deg must hold at least one elevation")
    az = np.radians(azimuth_offset_deg + 360.0 * np.arange(n) / n)
    el = np.radians(np.asarray(elevations_deg, dtype=np.float64)[np.arange(n) % len(elevations_deg)])
    return _circle_eyes(torch.from_numpy(az), torch.from_numpy(el), float(radius), (0.0, 0.0, 0.0))


def ring_viewmats(n: int, elevations_deg: Sequence[float], radius: float, azimuth_offset_deg: float = 0.0) -> Tensor:
    """Viewmats [n,4,4] (float32) of cameras at :func:`ring_positions` looking at the origin (z up): the
    camera rings of ``dataset from-gltf`` and of the demo scenes."""
    eye = ring_positions(n, elevations_deg, radius, azimuth_offset_deg).float()
    return look_at(eye, torch.zeros_like(eye))


@dataclass
class OrbitRig:
    """A circle of cameras around a scene, for orbit videos (saved in ``.m4d`` metadata as ``orbit``)."""

    center: tuple[float, float, float]
    """The point looked at."""
    distance: float
    """Camera distance from ``center``."""
    elevation_deg: float
    """Camera elevation above the horizontal plane."""
    K: list[list[float]]
    """[3,3] intrinsics."""
    width: int
    """Image width."""
    height: int
    """Image height."""

    @classmethod
    def from_views(cls, viewmats: Tensor, K: Tensor, width: int, height: int, center: Tensor) -> "OrbitRig":
        """The cameras' mean distance and mean elevation around ``center [3]``; ``viewmats [M,4,4]``, ``K [3,3]``."""
        offsets = camera_centers(viewmats.double()) - center.double()
        dist = offsets.norm(dim=-1)
        elevation = math.degrees(float(torch.asin((offsets[:, 2] / dist).clamp(-1, 1)).mean()))
        return cls(tuple(float(x) for x in center), float(dist.mean()), elevation, K.double().tolist(), width, height)

    def viewmats(self, n: int) -> Tensor:
        """``n`` viewmats [n,4,4] (float32) once around the circle, starting on the +x side of ``center``."""
        return orbit_viewmats(n, self.distance, elevation_deg=self.elevation_deg, target=self.center)

    def intrinsics(self) -> Tensor:
        """``K`` as a float32 tensor [3,3]."""
        return torch.tensor(self.K, dtype=torch.float32)


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


@dataclass
class SphericalPoses:
    """Cameras drawn by :func:`sample_spherical_poses`, in :func:`spherical_viewmats`' convention."""

    viewmats: Tensor
    """[n,4,4] float32 world→camera matrices looking at the target."""
    azimuth_deg: Tensor
    """[n] azimuths (0 = front camera on −y, 90 = on +x)."""
    elevation_deg: Tensor
    """[n] elevations above the xy-plane."""
    radius: Tensor
    """[n] distances from the target."""


def _check_range(name: str, lo_hi: tuple[float, float], lo_bound: float, hi_bound: float) -> tuple[float, float]:
    lo, hi = (float(x) for x in lo_hi)
    if not lo_bound <= lo <= hi <= hi_bound:
        raise ValueError(f"{name} must be (low, high) with {lo_bound} <= low <= high <= {hi_bound}, got {tuple(lo_hi)}")
    return lo, hi


def sample_spherical_poses(
    n: int,
    azimuth_range_deg: tuple[float, float] = (-180.0, 180.0),
    elevation_range_deg: tuple[float, float] = (-10.0, 45.0),
    radius_range: tuple[float, float] = (3.0, 4.0),
    generator: torch.Generator | None = None,
    *,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> SphericalPoses:
    """``n`` random cameras looking at ``target``: azimuth, elevation (both in degrees) and radius each uniform
    in its closed range, drawn from ``generator`` (the same seed gives the same poses). Random views for score
    distillation; the ranges follow :func:`spherical_viewmats` (elevation within [−90, 90], radius > 0)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    ranges = [
        _check_range("azimuth_range_deg", azimuth_range_deg, -math.inf, math.inf),
        _check_range("elevation_range_deg", elevation_range_deg, -90.0, 90.0),
        _check_range("radius_range", radius_range, 0.0, math.inf),
    ]
    if ranges[2][0] <= 0.0:
        raise ValueError(f"radius_range must be positive, got {tuple(radius_range)}")
    u = torch.rand(3, n, generator=generator, dtype=torch.float64)
    az, el, r = ((lo + (hi - lo) * u[i]).float() for i, (lo, hi) in enumerate(ranges))
    return SphericalPoses(spherical_viewmats(az, el, r, target=target), az, el, r)
