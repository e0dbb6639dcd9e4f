"""A small triangle rasterizer for the CPU: per-pixel nearest face and perspective-correct barycentrics.

It answers "which surface point does each pixel see" (a visibility buffer); shading and texturing are left
to the caller, which knows the materials (e.g. :meth:`motion4d.data.mesh.Mesh.colors_at`). Pixel (x, y)
samples the point (x + 0.5, y + 0.5), as the Gaussian rasterizer does. Triangles with a vertex at or behind
``near_plane`` are dropped (not clipped): meant for objects in front of the camera. Both faces of a
triangle are drawn.

Why our own: the rendering libraries that install with pip either need an OpenGL context (pyrender,
moderngl: no display, no EGL here) or are slow pure-Python ray casters; a z-buffer over a few thousand
triangles is a short numba loop. :func:`rasterize_triangles_reference` is its dense numpy twin for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency; keep the module importable without it
    njit = None


@dataclass
class VisibilityBuffer:
    """What each pixel of one view sees."""

    face_ids: np.ndarray
    """[H,W] int64 nearest face, -1 where empty."""
    barycentrics: np.ndarray
    """[H,W,3] float32 perspective-correct barycentric weights of the face's vertices (0 where empty)."""
    depth: np.ndarray
    """[H,W] float32 camera-space depth z (0 where empty)."""


def _project(vertices: np.ndarray, viewmat: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam = vertices.astype(np.float64) @ viewmat[:3, :3].T.astype(np.float64) + viewmat[:3, 3]
    z = cam[:, 2]
    safe = np.where(np.abs(z) > 1e-12, z, 1e-12)
    uv = np.stack([K[0, 0] * cam[:, 0] / safe + K[0, 2], K[1, 1] * cam[:, 1] / safe + K[1, 2]], axis=1)
    return uv, z


def _check(vertices, faces, viewmat, K, width, height):
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape [V,3], got {list(vertices.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape [F,3], got {list(faces.shape)}")
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        raise ValueError("faces index vertices out of range")
    if viewmat.shape != (4, 4) or K.shape != (3, 3):
        raise ValueError(f"viewmat must be [4,4] and K [3,3], got {list(viewmat.shape)}, {list(K.shape)}")
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be >= 1, got {width}, {height}")


def _raster_loop(uv, z, faces, width, height, near, face_ids, bary, depth):
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        z0, z1, z2 = z[i0], z[i1], z[i2]
        if z0 <= near or z1 <= near or z2 <= near:
            continue
        x0, y0, x1, y1, x2, y2 = uv[i0, 0], uv[i0, 1], uv[i1, 0], uv[i1, 1], uv[i2, 0], uv[i2, 1]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-18:
            continue
        xmin = max(int(np.floor(min(x0, x1, x2) - 0.5)), 0)
        xmax = min(int(np.ceil(max(x0, x1, x2) - 0.5)), width - 1)
        ymin = max(int(np.floor(min(y0, y1, y2) - 0.5)), 0)
        ymax = min(int(np.ceil(max(y0, y1, y2) - 0.5)), height - 1)
        for py in range(ymin, ymax + 1):
            sy = py + 0.5
            for px in range(xmin, xmax + 1):
                sx = px + 0.5
                w0 = ((x1 - sx) * (y2 - sy) - (x2 - sx) * (y1 - sy)) / area
                w1 = ((x2 - sx) * (y0 - sy) - (x0 - sx) * (y2 - sy)) / area
                w2 = 1.0 - w0 - w1
                if w0 < 0.0 or w1 < 0.0 or w2 < 0.0:
                    continue
                inv = w0 / z0 + w1 / z1 + w2 / z2
                zz = 1.0 / inv
                if face_ids[py, px] >= 0 and zz >= depth[py, px]:
                    continue
                face_ids[py, px] = f
                depth[py, px] = zz
                bary[py, px, 0] = w0 / z0 * zz
                bary[py, px, 1] = w1 / z1 * zz
                bary[py, px, 2] = w2 / z2 * zz


_raster_numba = njit(cache=True)(_raster_loop) if njit is not None else None


def rasterize_triangles(
    vertices: np.ndarray, faces: np.ndarray, viewmat: np.ndarray, K: np.ndarray, width: int, height: int, *, near_plane: float = 0.01
) -> VisibilityBuffer:
    """Visibility buffer of the mesh (``vertices [V,3]`` world, ``faces [F,3]``) in one pinhole camera
    (``viewmat [4,4]`` world→camera, OpenCV axes; ``K [3,3]``) of ``width`` × ``height`` pixels."""
    vertices, faces = np.asarray(vertices), np.asarray(faces, dtype=np.int64)
    viewmat, K = np.asarray(viewmat, dtype=np.float64), np.asarray(K, dtype=np.float64)
    _check(vertices, faces, viewmat, K, width, height)
    uv, z = _project(vertices, viewmat, K)
    face_ids = np.full((height, width), -1, dtype=np.int64)
    bary = np.zeros((height, width, 3), dtype=np.float64)
    depth = np.zeros((height, width), dtype=np.float64)
    loop = _raster_numba if _raster_numba is not None else _raster_loop
    loop(np.ascontiguousarray(uv), np.ascontiguousarray(z), np.ascontiguousarray(faces), width, height, near_plane, face_ids, bary, depth)
    return VisibilityBuffer(face_ids, bary.astype(np.float32), depth.astype(np.float32))


def rasterize_triangles_reference(
    vertices: np.ndarray, faces: np.ndarray, viewmat: np.ndarray, K: np.ndarray, width: int, height: int, *, near_plane: float = 0.01
) -> VisibilityBuffer:
    """Dense numpy twin of :func:`rasterize_triangles` (every pixel against every triangle; small inputs)."""
    vertices, faces = np.asarray(vertices), np.asarray(faces, dtype=np.int64)
    viewmat, K = np.asarray(viewmat, dtype=np.float64), np.asarray(K, dtype=np.float64)
    _check(vertices, faces, viewmat, K, width, height)
    uv, z = _project(vertices, viewmat, K)
    sy, sx = np.mgrid[0:height, 0:width] + 0.5
    best = np.full((height, width), np.inf)
    face_ids = np.full((height, width), -1, dtype=np.int64)
    bary = np.zeros((height, width, 3))
    for f, (i0, i1, i2) in enumerate(faces):
        if min(z[i0], z[i1], z[i2]) <= near_plane:
            continue
        (x0, y0), (x1, y1), (x2, y2) = uv[i0], uv[i1], uv[i2]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-18:
            continue
        w0 = ((x1 - sx) * (y2 - sy) - (x2 - sx) * (y1 - sy)) / area
        w1 = ((x2 - sx) * (y0 - sy) - (x0 - sx) * (y2 - sy)) / area
        w2 = 1 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        zz = 1.0 / (w0 / z[i0] + w1 / z[i1] + w2 / z[i2])
        take = inside & (zz < best)
        best[take] = zz[take]
        face_ids[take] = f
        b = np.stack([w0 / z[i0], w1 / z[i1], w2 / z[i2]], axis=-1) * zz[..., None]
        bary[take] = b[take]
    depth = np.where(face_ids >= 0, best, 0.0)
    return VisibilityBuffer(face_ids, bary.astype(np.float32), depth.astype(np.float32))


def mesh_coverage(
    vertices: np.ndarray, faces: np.ndarray, viewmat: np.ndarray, K: np.ndarray, width: int, height: int, *, supersample: int = 4
) -> np.ndarray:
    """[H,W] float32 fraction of each pixel the mesh covers (``supersample``² samples per pixel, box filter):
    the mesh's antialiased alpha in one camera (arguments as :func:`rasterize_triangles`)."""
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    K_hi = np.asarray(K, dtype=np.float64).copy()
    K_hi[:2] *= supersample
    hit = rasterize_triangles(vertices, faces, viewmat, K_hi, width * supersample, height * supersample).face_ids >= 0
    return hit.reshape(height, supersample, width, supersample).mean(axis=(1, 3)).astype(np.float32)
