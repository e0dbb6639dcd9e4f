"""Procedural shapes of the captioned synthetic dataset: triangle meshes coloured in two shades.

Every shape is a :class:`~motion4d.data.mesh.Mesh` in a z-up world, centred on its bounding box at the
origin and inside a sphere of radius ≈ 0.45 (so that its motions stay inside the unit sphere). Surfaces are
subdivided grids (so that non-rigid motions can bend them); flat faces (the cube's, the pyramid's, caps) have
their own vertices so that edges stay sharp under the renderer's vertex-normal shading.

Colour: material 0 is the object's dominant colour (:data:`PALETTE`, saturated and distinct in hue), material
1 a darker shade of the same hue, assigned per face by a pattern that is not symmetric about the z axis
(stripes, bands or spots; see :func:`pattern_mask`) so that a spin is visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from motion4d.data.mesh import Material, Mesh, srgb_to_linear
from motion4d.data.synth_vocab import COLOURS, SHAPES

PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.08, 0.08),
    "orange": (0.96, 0.48, 0.04),
    "yellow": (0.95, 0.86, 0.08),
    "green": (0.10, 0.72, 0.14),
    "cyan": (0.04, 0.80, 0.86),
    "blue": (0.10, 0.24, 0.92),
    "purple": (0.56, 0.14, 0.82),
    "pink": (0.97, 0.44, 0.70),
}
"""Dominant colour of each colour name, sRGB in [0,1] (hues ≈ 0, 30, 53, 123, 183, 226, 276, 330°)."""

SHADE = 0.5
"""The pattern's second shade: the dominant sRGB colour times this (same hue, darker)."""

PATTERNS: tuple[str, ...] = ("stripes", "bands", "spots")
"""Pattern kinds: vertical stripes (by azimuth), helical bands (azimuth and height), spots."""

assert set(PALETTE) == set(COLOURS)


@dataclass(frozen=True)
class PatternSpec:
    """Which faces wear the second shade."""

    kind: str
    """One of :data:`PATTERNS`."""
    phase: float
    """Azimuthal phase (radians) of stripes and bands."""
    spots: tuple[tuple[float, float, float], ...] = ()
    """Unit directions of the spot centres (spots only)."""

    @staticmethod
    def random(rng: np.random.Generator) -> "PatternSpec":
        """A random pattern: kind, phase and (for spots) five spot directions."""
        kind = PATTERNS[int(rng.integers(len(PATTERNS)))]
        d = rng.normal(size=(5, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return PatternSpec(kind, float(rng.uniform(0, 2 * math.pi)), tuple(map(tuple, d.tolist())) if kind == "spots" else ())


def pattern_mask(points: np.ndarray, pattern: PatternSpec) -> np.ndarray:
    """[F] bool: which of the points ``[F,3]`` (face centroids, rest pose) wear the second shade."""
    phi = np.arctan2(points[:, 1], points[:, 0])
    if pattern.kind == "stripes":
        return np.sin(3 * phi + pattern.phase) > 0.2
    if pattern.kind == "bands":
        return np.sin(2 * phi + 9.0 * points[:, 2] + pattern.phase) > 0.0
    if pattern.kind == "spots":
        d = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-9)
        return (d @ np.asarray(pattern.spots).T).max(axis=1) > math.cos(0.55)
    raise ValueError(f"unknown pattern {pattern.kind!r} (one of {', '.join(PATTERNS)})")


def _grid(points: np.ndarray, *, wrap_u: bool = False, wrap_v: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [nu·nv,3] and faces [F,3] of a quad grid of ``points [nu,nv,3]`` (two triangles a quad)."""
    nu, nv = points.shape[:2]
    idx = np.arange(nu * nv).reshape(nu, nv)
    iu = np.arange(nu if wrap_u else nu - 1)
    iv = np.arange(nv if wrap_v else nv - 1)
    a = idx[iu[:, None], iv[None]]
    b = idx[((iu + 1) % nu)[:, None], iv[None]]
    c = idx[((iu + 1) % nu)[:, None], ((iv + 1) % nv)[None]]
    d = idx[iu[:, None], ((iv + 1) % nv)[None]]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return points.reshape(-1, 3), faces


def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def _disk(radius: float, z: float, n_u: int, n_r: int = 4) -> tuple[np.ndarray, np.ndarray]:
    u = np.linspace(0, 2 * math.pi, n_u, endpoint=False)
    r = np.linspace(0, radius, n_r + 1)
    p = np.stack([r[None] * np.cos(u)[:, None], r[None] * np.sin(u)[:, None], np.full((n_u, n_r + 1), z)], -1)
    return _grid(p, wrap_u=True)


def _revolve(radius: np.ndarray, z: np.ndarray, n_u: int) -> tuple[np.ndarray, np.ndarray]:
    """Surface of revolution about z through the profile ``(radius [nv], z [nv])``."""
    u = np.linspace(0, 2 * math.pi, n_u, endpoint=False)
    p = np.stack([radius[None] * np.cos(u)[:, None], radius[None] * np.sin(u)[:, None], np.broadcast_to(z, (n_u, len(z)))], -1)
    return _grid(p, wrap_u=True)


def _square_face(corner: np.ndarray, du: np.ndarray, dv: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    s = np.linspace(0, 1, n + 1)
    return _grid(corner + s[:, None, None] * du + s[None, :, None] * dv)


def _cube(n: int = 6, h: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    parts = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            o, a, b = np.zeros(3), np.zeros(3), np.zeros(3)
            o[axis] = sign * h
            a[(axis + 1) % 3], b[(axis + 2) % 3] = 2 * h, 2 * h
            o[(axis + 1) % 3] = o[(axis + 2) % 3] = -h
            parts.append(_square_face(o, a, b, n))
    return _merge(parts)


def _sphere(r: float = 0.4, n_u: int = 32, n_v: int = 16) -> tuple[np.ndarray, np.ndarray]:
    theta = np.linspace(0, math.pi, n_v + 1)
    return _revolve(r * np.sin(theta), -r * np.cos(theta), n_u)


def _cylinder(r: float = 0.3, h: float = 0.62, n_u: int = 32, n_v: int = 8) -> tuple[np.ndarray, np.ndarray]:
    z = np.linspace(-h / 2, h / 2, n_v + 1)
    return _merge([_revolve(np.full_like(z, r), z, n_u), _disk(r, -h / 2, n_u), _disk(r, h / 2, n_u)])


def _cone(r: float = 0.32, h: float = 0.62, n_u: int = 32, n_v: int = 10) -> tuple[np.ndarray, np.ndarray]:
    s = np.linspace(0, 1, n_v + 1)
    return _merge([_revolve(r * (1 - s), -h / 2 + h * s, n_u), _disk(r, -h / 2, n_u)])


def _torus(big: float = 0.29, small: float = 0.13, n_u: int = 32, n_v: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Standing upright, its hole facing the front camera (axis y)."""
    u = np.linspace(0, 2 * math.pi, n_u, endpoint=False)[:, None]
    v = np.linspace(0, 2 * math.pi, n_v, endpoint=False)[None]
    x, z = (big + small * np.cos(v)) * np.cos(u), (big + small * np.cos(v)) * np.sin(u)
    p = np.stack([x, np.broadcast_to(small * np.sin(v), x.shape), z], -1)
    return _grid(p, wrap_u=True, wrap_v=True)


def _pyramid(h_base: float = 0.27, height: float = 0.56, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    z0 = -height / 2
    apex = np.array([0.0, 0.0, height / 2])
    corners = np.array([[-h_base, -h_base, z0], [h_base, -h_base, z0], [h_base, h_base, z0], [-h_base, h_base, z0]])
    s = np.linspace(0, 1, n + 1)
    parts = []
    for k in range(4):
        edge = corners[k] + s[:, None] * (corners[(k + 1) % 4] - corners[k])  # [n+1,3]
        parts.append(_grid(edge[:, None] * (1 - s[None, :, None]) + apex * s[None, :, None]))
    parts.append(_square_face(corners[0], corners[1] - corners[0], corners[3] - corners[0], n))
    return _merge(parts)


_BUILDERS = {"cube": _cube, "sphere": _sphere, "cone": _cone, "cylinder": _cylinder, "torus": _torus, "pyramid": _pyramid}
assert set(_BUILDERS) == set(SHAPES)


def shape_mesh(shape: str, colour: str, pattern: PatternSpec) -> Mesh:
    """The rest-pose mesh of ``shape`` in ``colour`` wearing ``pattern`` (module docstring)."""
    if shape not in _BUILDERS:
        raise ValueError(f"unknown shape {shape!r} (one of {', '.join(SHAPES)})")
    if colour not in PALETTE:
        raise ValueError(f"unknown colour {colour!r} (one of {', '.join(COLOURS)})")
    vertices, faces = _BUILDERS[shape]()
    lo, hi = vertices.min(0), vertices.max(0)
    vertices = vertices - (lo + hi) / 2
    centroids = vertices[faces].mean(axis=1)
    main = np.asarray(PALETTE[colour], dtype=np.float32)
    mats = [Material(tuple(srgb_to_linear(c).tolist()) + (1.0,), name=n) for c, n in ((main, colour), (main * SHADE, f"{colour} shade"))]
    return Mesh(vertices, faces, materials=mats, face_materials=pattern_mask(centroids, pattern).astype(np.int64), name=f"{colour} {shape}")
