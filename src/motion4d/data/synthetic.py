"""The built-in demo dataset: a small procedural object, ray cast analytically in numpy.

The object is a handful of coloured spheres and ellipsoids around a glossy-free (Lambertian) core, lit by a
fixed directional light with ambient fill and hard shadows, on a transparent background. Images are
anti-aliased by 2×2 supersampling; their alpha is the pixel's coverage. Rendering is exact ray casting,
independent of the Gaussian rasterizer, so fitting it is a real test of the rasterizer.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from motion4d.render.cameras import ring_viewmats, viewmat_to_opengl_c2w

CAMERA_ANGLE_X = 0.6911112070083618
"""Horizontal field of view (radians) of the demo cameras: Blender's default 50 mm lens."""
ORBIT_RADIUS = 4.0
"""Distance of the demo cameras from the origin (z-up world)."""
LIGHT_DIR = np.array([0.45, -0.35, 0.82])
"""Direction towards the light (normalised on use)."""
AMBIENT = 0.35
"""Ambient light added to the Lambertian term."""


@dataclass(frozen=True)
class Ellipsoid:
    """An axis-aligned ellipsoid (a sphere when the radii are equal)."""

    center: tuple[float, float, float]
    """World-space centre."""
    radii: tuple[float, float, float]
    """Semi-axes along world x, y, z."""
    color: tuple[float, float, float]
    """Albedo, RGB in [0,1]."""


DEMO_OBJECTS: tuple[Ellipsoid, ...] = (
    Ellipsoid((0.00, 0.00, -0.06), (0.68, 0.50, 0.42), (0.95, 0.62, 0.15)),  # orange core
    Ellipsoid((0.61, 0.35, 0.31), (0.33, 0.33, 0.33), (0.15, 0.45, 0.95)),  # blue
    Ellipsoid((-0.61, 0.33, 0.13), (0.38, 0.38, 0.38), (0.20, 0.80, 0.35)),  # green
    Ellipsoid((0.17, -0.55, 0.33), (0.28, 0.28, 0.28), (0.98, 0.90, 0.20)),  # yellow
    Ellipsoid((-0.13, 0.02, 0.68), (0.24, 0.24, 0.24), (0.75, 0.30, 0.85)),  # purple, on top
    Ellipsoid((0.24, 0.46, -0.46), (0.28, 0.28, 0.28), (0.90, 0.18, 0.22)),  # red, below
    Ellipsoid((-0.50, -0.44, -0.33), (0.20, 0.20, 0.33), (0.10, 0.80, 0.85)),  # cyan, upright
)
"""The demo object: all within a radius of about 1.25 around the origin."""


def _intersect(origins: np.ndarray, dirs: np.ndarray, obj: Ellipsoid) -> np.ndarray:
    """Nearest positive hit distance of rays ``origins, dirs [R,3]`` with ``obj``; ``inf`` where missed. [R]"""
    inv_r = 1.0 / np.asarray(obj.radii)
    o = (origins - np.asarray(obj.center)) * inv_r  # unit-sphere space
    d = dirs * inv_r
    a = (d * d).sum(-1)
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - 1.0
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0 = (-b - sq) / a
    t1 = (-b + sq) / a
    t = np.where(t0 > 1e-6, t0, t1)
    return np.where((disc >= 0.0) & (t > 1e-6), t, np.inf)


def _shade(origins: np.ndarray, dirs: np.ndarray, objects: tuple[Ellipsoid, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Colour [R,3] and coverage [R] (0 or 1) of rays ``origins, dirs [R,3]`` (dirs unit length)."""
    hits = np.stack([_intersect(origins, dirs, obj) for obj in objects])  # [O,R]
    t = hits.min(0)
    covered = np.isfinite(t)
    color = np.zeros(dirs.shape, dtype=np.float64)
    which = hits[:, covered].argmin(0)  # shade only the rays that hit something
    points = origins[covered] + dirs[covered] * t[covered, None]
    centers = np.array([o.center for o in objects])[which]
    radii = np.array([o.radii for o in objects])[which]
    albedo = np.array([o.color for o in objects])[which]
    normals = (points - centers) / radii**2
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    light = LIGHT_DIR / np.linalg.norm(LIGHT_DIR)
    lambert = np.clip(normals @ light, 0.0, None)
    shadow_origins = points + normals * 1e-4
    light_rays = np.broadcast_to(light, points.shape)
    blocked = np.zeros(len(points), dtype=bool)
    for obj in objects:
        blocked |= np.isfinite(_intersect(shadow_origins, light_rays, obj))
    intensity = AMBIENT + (1.0 - AMBIENT) * lambert * ~blocked
    color[covered] = np.clip(albedo * intensity[:, None], 0.0, 1.0)
    return color, covered.astype(np.float64)


def dynamic_objects(t: float) -> tuple[Ellipsoid, ...]:
    """The dynamic demo object at time ``t`` in [0,1]: a static orange core; a blue sphere circling it
    once about the vertical axis (radius 0.8, height 0.2); a green one bobbing along z between −0.5 and
    0.5; a red one sliding along x from −0.7 to 0.7 under the core (all positions exact functions of t)."""
    a = 2.0 * math.pi * t
    return (
        Ellipsoid((0.0, 0.0, 0.0), (0.42, 0.42, 0.36), (0.95, 0.62, 0.15)),
        Ellipsoid((0.8 * math.cos(a), 0.8 * math.sin(a), 0.2), (0.25, 0.25, 0.25), (0.15, 0.45, 0.95)),
        Ellipsoid((-0.2, 0.75, 0.5 * math.sin(a)), (0.22, 0.22, 0.22), (0.20, 0.80, 0.35)),
        Ellipsoid((-0.7 + 1.4 * t, -0.6, -0.45), (0.2, 0.2, 0.2), (0.90, 0.18, 0.22)),
    )


def render_rgba(
    viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, *, supersample: int = 2,
    objects: tuple[Ellipsoid, ...] = DEMO_OBJECTS,
) -> np.ndarray:
    """Ray cast the demo object from one camera: ``viewmat [4,4]`` (world→camera, OpenCV), ``K [3,3]``.

    Pixel (i, j) covers [i, i+1]×[j, j+1] in image coordinates (centre i + 0.5, the gsplat convention);
    each is sampled at ``supersample``² sub-pixel centres. Returns straight-alpha RGBA ``[H,W,4]`` float64
    in [0,1] with alpha the covered fraction.
    """
    s = supersample
    R = viewmat[:3, :3].double().numpy()
    eye = -R.T @ viewmat[:3, 3].double().numpy()
    Kd = K.double().numpy()
    sub = (np.arange(s) + 0.5) / s
    u = (np.arange(width)[:, None] + sub[None]).reshape(-1)  # [W*s]
    v = (np.arange(height)[:, None] + sub[None]).reshape(-1)  # [H*s]
    uu, vv = np.meshgrid(u, v)  # [H*s, W*s]
    cam = np.stack([(uu - Kd[0, 2]) / Kd[0, 0], (vv - Kd[1, 2]) / Kd[1, 1], np.ones_like(uu)], -1)
    dirs = cam.reshape(-1, 3) @ R  # camera → world: R^T d
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    color, cover = _shade(np.broadcast_to(eye, dirs.shape), dirs, objects)
    color = color.reshape(height, s, width, s, 3).sum((1, 3))
    cover = cover.reshape(height, s, width, s).sum((1, 3))
    rgb = color / np.maximum(cover, 1e-12)[..., None]  # straight (unpremultiplied) colour
    return np.concatenate([rgb, (cover / (s * s))[..., None]], axis=-1)


def demo_cameras(n: int, *, azimuth_offset_deg: float, elevation_range_deg: tuple[float, float]) -> torch.Tensor:
    """``n`` viewmats [n,4,4] on the demo orbit: azimuths evenly spaced from ``azimuth_offset_deg``,
    elevations spread over ``elevation_range_deg`` by a golden-ratio sequence (so neighbours differ)."""
    lo, hi = elevation_range_deg
    frac = (np.arange(n) * 0.6180339887498949 + 0.5) % 1.0
    return ring_viewmats(n, lo + (hi - lo) * frac, ORBIT_RADIUS, azimuth_offset_deg)


def _demo_intrinsics(size: int) -> torch.Tensor:
    """K [3,3] of a ``size``² demo camera (horizontal field of view :data:`CAMERA_ANGLE_X`)."""
    fx = 0.5 * size / math.tan(CAMERA_ANGLE_X / 2.0)
    return torch.tensor([[fx, 0.0, size / 2.0], [0.0, fx, size / 2.0], [0.0, 0.0, 1.0]])


def _write_split(out: Path, split: str, viewmats: torch.Tensor, size: int) -> dict:
    K = _demo_intrinsics(size)
    (out / split).mkdir(parents=True, exist_ok=True)
    c2ws = viewmat_to_opengl_c2w(viewmats.double())
    frames = []
    for i in range(viewmats.shape[0]):
        rgba = render_rgba(viewmats[i], K, size, size)
        iio.imwrite(out / split / f"r_{i:03d}.png", np.round(rgba * 255.0).astype(np.uint8))
        frames.append({"file_path": f"./{split}/r_{i:03d}", "transform_matrix": c2ws[i].tolist()})
    return {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}


def _write_json(path: Path, meta: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def make_demo_scene(out_dir: str | Path, *, n_train: int = 24, n_test: int = 8, size: int = 64, seed: int = 0) -> Path:
    """Write the demo object as a Blender-format dataset in ``out_dir`` and return ``out_dir``.

    Writes ``train/r_XXX.png`` and ``test/r_XXX.png`` (RGBA, ``size``×``size``) and
    ``transforms_{train,test}.json`` (``camera_angle_x``; camera→world ``transform_matrix`` in OpenGL
    axes). Train cameras orbit at radius 4 with elevations in 10–40°; test cameras sit at azimuths between
    the train ones, elevations 15–35°. ``seed`` rotates the whole camera rig about the vertical axis.
    The JSON files are written last (atomically), so a folder with ``transforms_train.json`` is complete.
    """
    if n_train < 1 or n_test < 0 or size < 4:
        raise ValueError(f"need n_train >= 1, n_test >= 0, size >= 4; got {n_train}, {n_test}, {size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spin = float(np.random.default_rng(seed).uniform(0.0, 360.0)) if seed else 0.0
    train = demo_cameras(n_train, azimuth_offset_deg=spin, elevation_range_deg=(10.0, 40.0))
    test_offset = spin + 180.0 / n_train  # halfway between neighbouring train azimuths
    test = demo_cameras(n_test, azimuth_offset_deg=test_offset, elevation_range_deg=(15.0, 35.0)) if n_test else None
    if test is not None:
        _write_json(out / "transforms_test.json", _write_split(out, "test", test, size))
    _write_json(out / "transforms_train.json", _write_split(out, "train", train, size))
    return out


def _write_dynamic_split(out: Path, split: str, viewmats: torch.Tensor, times: np.ndarray, size: int) -> dict:
    K = _demo_intrinsics(size)
    (out / split).mkdir(parents=True, exist_ok=True)
    c2ws = viewmat_to_opengl_c2w(viewmats.double())
    frames = []
    for j, t in enumerate(times):
        objects = dynamic_objects(float(t))
        for i in range(viewmats.shape[0]):
            name = f"r_{i:03d}_t{j:03d}"
            rgba = render_rgba(viewmats[i], K, size, size, objects=objects)
            iio.imwrite(out / split / f"{name}.png", np.round(rgba * 255.0).astype(np.uint8))
            frames.append({"file_path": f"./{split}/{name}", "transform_matrix": c2ws[i].tolist(), "time": float(t), "view": i})
    return {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}


def make_dynamic_demo_scene(
    out_dir: str | Path, *, n_train: int = 12, n_test: int = 2, n_frames: int = 12, size: int = 64, seed: int = 0
) -> Path:
    """Write the moving demo object (:func:`dynamic_objects`) as a D-NeRF-format multi-view video in ``out_dir``.

    Every one of ``n_train`` train and ``n_test`` test cameras (placed as in :func:`make_demo_scene`)
    sees each of ``n_frames`` times evenly spaced in [0, 1]: ``<split>/r_<view>_t<frame>.png`` (RGBA,
    ``size``²), listed in ``transforms_<split>.json`` with ``time`` and ``view`` per frame (the defaults
    make 168 images, well under 1 MB). JSON files are written last, so a folder with
    ``transforms_train.json`` is complete. Returns ``out_dir``.
    """
    if n_train < 1 or n_test < 0 or n_frames < 1 or size < 4:
        raise ValueError(f"need n_train >= 1, n_test >= 0, n_frames >= 1, size >= 4; got {n_train}, {n_test}, {n_frames}, {size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spin = float(np.random.default_rng(seed).uniform(0.0, 360.0)) if seed else 0.0
    times = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    train = demo_cameras(n_train, azimuth_offset_deg=spin, elevation_range_deg=(10.0, 40.0))
    if n_test:
        test = demo_cameras(n_test, azimuth_offset_deg=spin + 180.0 / n_train, elevation_range_deg=(15.0, 35.0))
        _write_json(out / "transforms_test.json", _write_dynamic_split(out, "test", test, times, size))
    _write_json(out / "transforms_train.json", _write_dynamic_split(out, "train", train, times, size))
    return out
