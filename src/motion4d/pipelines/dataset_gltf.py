"""``motion4d dataset from-gltf``: render an animated glTF asset into a multi-view video dataset.

The output has the layout of the multi-view benchmark data (D-NeRF format): ``transforms_train.json`` and
``transforms_test.json`` (``camera_angle_x``, ``asset_to_world``; frames with ``file_path`` (RGBA PNG, no
extension), ``time`` in [0,1] over the clip, ``view``, ``transform_matrix`` camera→world in Blender/OpenGL
axes), ``train/v00_f00.png`` ... and ``gt_vertices.npz`` (``vertices [T,V,3]`` world, ``times [T]``,
``frames [T]`` (the times in 24 fps frames), ``normalise_scale``, ``normalise_center``).

World = the asset's scene turned from Y-up to Z-up, centred on its bounding box over all frames and scaled
into the unit sphere; ``asset_to_world`` records that similarity. Frame i of T is at ``t = i/(T-1)``, the
animation at ``t × duration`` seconds (all animations together). Cameras look at the origin from
``distance``: training views on rings at three elevations, test views at other azimuths and elevations.

Shading (our renderer, :mod:`motion4d.render.mesh_raster`): base colour × texture × vertex colour (linear),
times ``ambient + (1 − ambient)·|n·v|`` with n the interpolated vertex normal and v the direction to the
camera (a headlight), re-encoded as sRGB; ``supersample``² samples per pixel give antialiased colour and alpha.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from tqdm.auto import tqdm

from motion4d.progress import bar_disabled
from motion4d.atomic import atomic_path
from motion4d.errors import DataError
from motion4d.data.gltf import load_gltf
from motion4d.data.mesh import Mesh, linear_to_srgb, srgb_to_linear
from motion4d.render.cameras import intrinsics_from_fov, ring_viewmats
from motion4d.render.mesh_raster import rasterize_triangles

log = logging.getLogger(__name__)

BLENDER_FPS = 24.0
"""``gt_vertices.npz``'s ``frames`` are the animation's times in frames of this rate (as in the Blender-rendered
benchmark data, whose files hold Blender's frame numbers: ``frames / 24`` is each frame's time in seconds)."""
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
"""Rotation taking glTF's Y-up scene to a Z-up world (x stays, y → z, z → −y)."""


@dataclass(frozen=True)
class DatasetConfig:
    """How ``dataset from-gltf`` renders."""

    views: int = 20
    """Training cameras."""
    test_views: int = 4
    """Held-out cameras (other positions than the training ones)."""
    frames: int = 16
    """Frames over the clip (t = i/(frames-1))."""
    res: int = 128
    """Image width and height in pixels."""
    fov_deg: float = 39.6
    """Horizontal field of view (the benchmark data's camera_angle_x = 0.691 rad)."""
    distance: float = 3.25
    """Camera distance from the origin (the object fits in the unit sphere)."""
    supersample: int = 2
    """Samples per pixel along each axis."""
    ambient: float = 0.3
    """Ambient share of the headlight shading."""

    def __post_init__(self):
        for name in ("views", "frames", "res", "supersample"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.test_views < 0:
            raise ValueError(f"--test-views must be >= 0, got {self.test_views}")


def render_mesh_rgba(mesh: Mesh, vertices: np.ndarray, viewmat: np.ndarray, K: np.ndarray, res: int, *, supersample: int = 2, ambient: float = 0.3) -> np.ndarray:
    """[res,res,4] float32 RGBA (straight alpha, sRGB) of ``mesh`` posed at ``vertices [V,3]`` (world)."""
    ss = supersample
    K_hi = K.astype(np.float64).copy()
    K_hi[:2] *= ss
    vb = rasterize_triangles(vertices, mesh.faces, viewmat, K_hi, res * ss, res * ss)
    hit = vb.face_ids >= 0
    rgb = np.zeros((res * ss, res * ss, 3), dtype=np.float32)
    if hit.any():
        fid, bary = vb.face_ids[hit], vb.barycentrics[hit]
        tri = mesh.faces[fid]
        normals = mesh.vertex_normals(vertices)
        n = np.einsum("nk,nkc->nc", bary, normals[tri])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        p = np.einsum("nk,nkc->nc", bary, vertices[tri].astype(np.float64))
        center = -viewmat[:3, :3].T @ viewmat[:3, 3]
        v = center[None] - p
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        shade = ambient + (1.0 - ambient) * np.abs((n * v).sum(1))
        rgb[hit] = linear_to_srgb(srgb_to_linear(mesh.colors_at(fid, bary)) * shade[:, None])
    alpha = hit.astype(np.float32)
    blocks = lambda x: x.reshape(res, ss, res, ss, -1).mean(axis=(1, 3))  # noqa: E731
    a = blocks(alpha[..., None])
    c = blocks(rgb * alpha[..., None]) / np.maximum(a, 1e-12)
    return np.concatenate([c, a], axis=-1).astype(np.float32)


def dataset_from_gltf(asset: str | Path, out: str | Path, config: DatasetConfig = DatasetConfig(), *, progress: bool = True) -> Path:
    """Render ``asset`` (an animated .glb/.gltf) into the dataset folder ``out`` (see the module docstring).

    The folder is written under a temporary name and renamed at the end; an existing ``out`` is an error.
    """
    out = Path(out)
    if out.exists():
        raise DataError(f"{out}: already exists (choose a new --out folder)")
    src = load_gltf(asset)
    times = np.linspace(0.0, 1.0, config.frames) if config.frames > 1 else np.zeros(1)
    if src.duration <= 0:
        log.warning("%s has no animation: every frame shows the rest pose", asset)
    scene = src.vertices_at(times * src.duration).astype(np.float64)  # [T,V,3]
    turned = scene @ Y_UP_TO_Z_UP.T
    lo, hi = turned.reshape(-1, 3).min(0), turned.reshape(-1, 3).max(0)
    center = (lo + hi) / 2
    scale = 1.0 / max(float(np.linalg.norm(turned.reshape(-1, 3) - center, axis=1).max()), 1e-12)
    a2w = np.eye(4)
    a2w[:3, :3] = scale * Y_UP_TO_Z_UP
    a2w[:3, 3] = -scale * center
    world = (turned - center) * scale  # [T,V,3]

    K = intrinsics_from_fov(config.fov_deg, config.res, config.res).numpy().astype(np.float64)
    splits = {
        "train": ring_viewmats(config.views, (-10.0, 15.0, 40.0), config.distance),
        "test": ring_viewmats(config.test_views, (5.0, 30.0), config.distance, azimuth_offset_deg=180.0 / max(config.views, 1) + 7.0),
    }
    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes ↔ OpenGL / Blender
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    total = sum(len(p) for p in splits.values()) * len(times)
    bar = tqdm(total=total, desc="dataset", disable=bar_disabled(progress), dynamic_ncols=True)
    try:
        for split, cameras in splits.items():
            if len(cameras) == 0:
                continue
            (tmp / split).mkdir(parents=True, exist_ok=True)
            viewmats = cameras.numpy().astype(np.float64)
            frames = []
            for f, t in enumerate(times):
                for v, vm in enumerate(viewmats):
                    rgba = render_mesh_rgba(src.mesh, world[f], vm, K, config.res, supersample=config.supersample, ambient=config.ambient)
                    name = f"{split}/v{v:02d}_f{f:02d}"
                    iio.imwrite(tmp / f"{name}.png", (rgba * 255).round().astype(np.uint8))
                    c2w = np.linalg.inv(vm) @ flip
                    frames.append({"file_path": f"./{name}", "time": float(t), "view": v, "transform_matrix": c2w.tolist()})
                    bar.update(1)
            meta = {"camera_angle_x": math.radians(config.fov_deg), "asset_to_world": a2w.tolist(), "frames": frames}
            (tmp / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1) + "\n")
        with atomic_path(tmp / "gt_vertices.npz") as p:
            with open(p, "wb") as fh:
                np.savez(fh, vertices=world.astype(np.float32), times=times, frames=times * src.duration * BLENDER_FPS,
                         normalise_scale=np.float64(scale), normalise_center=center)  # fmt: skip
    finally:
        bar.close()
    tmp.rename(out)
    log.info("wrote %s: %d train + %d test views × %d frames at %d², asset_to_world scale %.4g", out, config.views, config.test_views,
             len(times), config.res, scale)  # fmt: skip
    return out
