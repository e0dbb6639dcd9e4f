"""Triangle meshes as plain arrays: what every mesh reader returns and the mesh renderer, the surface
Gaussians and the glTF writer take.

Readers for each format live beside this module (:mod:`motion4d.data.gltf`, :mod:`motion4d.data.obj`);
:func:`motion4d.data.assets.load_asset` picks one by file extension.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from motion4d.data.errors import DataError

GREY = (0.7, 0.7, 0.7, 1.0)
"""Base colour of meshes without a material (and of materials whose texture is missing)."""


@dataclass
class Material:
    """A surface's colour: ``base_color`` × (``texture`` at the UV, if any) × (the vertex colour, if any)."""

    base_color: tuple[float, float, float, float] = GREY
    """RGBA factor (linear)."""
    texture: np.ndarray | None = None
    """[H,W,3|4] uint8 base-colour image (sRGB-encoded, as stored in files), or None."""
    name: str = "material"
    """The source's material name."""
    extras: dict = field(default_factory=dict)
    """Format-specific properties a writer may carry through (e.g. the source glTF material's JSON,
    ``{"gltf": {...}}``, and the texture's encoded bytes and MIME type, ``{"image_bytes": b"...",
    "mime_type": "image/png"}``)."""

    def __post_init__(self) -> None:
        self.base_color = tuple(float(c) for c in self.base_color)
        if len(self.base_color) != 4:
            raise DataError(f"material {self.name}: base_color must have 4 components, got {len(self.base_color)}")
        if self.texture is not None:
            t = np.asarray(self.texture)
            if t.ndim != 3 or t.shape[2] not in (3, 4) or t.dtype != np.uint8:
                raise DataError(f"material {self.name}: texture must be a [H,W,3|4] uint8 image, got {t.dtype} {list(t.shape)}")
            self.texture = np.ascontiguousarray(t)


@dataclass
class Mesh:
    """A triangle mesh with one or more materials, in numpy arrays (float32 / int64 / uint8).

    Per-vertex attributes share the vertex index (a vertex on a UV seam is duplicated, as in glTF).
    Face ``f`` uses ``materials[face_materials[f]]``.
    """

    vertices: np.ndarray
    """[V,3] float32 positions."""
    faces: np.ndarray
    """[F,3] int64 vertex indices, counter-clockwise seen from outside."""
    uvs: np.ndarray | None = None
    """[V,2] float32 texture coordinates (glTF convention: origin top-left, v down), or None."""
    vertex_colors: np.ndarray | None = None
    """[V,3] float32 RGB in [0,1] (multiplied in), or None."""
    materials: list[Material] = field(default_factory=lambda: [Material()])
    """The materials (at least one; default: one grey material)."""
    face_materials: np.ndarray | None = None
    """[F] int64 index into ``materials`` per face (None: all faces use material 0)."""
    normals: np.ndarray | None = None
    """[V,3] float32 unit vertex normals, or None (compute with :meth:`vertex_normals`)."""
    name: str = "mesh"
    """Where it came from (file stem / mesh name), for messages."""
    extras: dict = field(default_factory=dict)
    """Format-specific extras a writer may carry through (e.g. the source material's glTF JSON)."""

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        v = self.vertices.shape[0] if self.vertices.ndim == 2 else -1
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise DataError(f"{self.name}: vertices must have shape [V,3], got {list(self.vertices.shape)}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise DataError(f"{self.name}: faces must have shape [F,3], got {list(self.faces.shape)}")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= v):
            raise DataError(f"{self.name}: face indices out of range for {v} vertices")
        for attr, width in (("uvs", 2), ("vertex_colors", 3), ("normals", 3)):
            a = getattr(self, attr)
            if a is not None:
                a = np.ascontiguousarray(a, dtype=np.float32)
                if a.shape != (v, width):
                    raise DataError(f"{self.name}: {attr} must have shape [{v},{width}], got {list(a.shape)}")
                setattr(self, attr, a)
        if not self.materials:
            raise DataError(f"{self.name}: a mesh needs at least one material")
        if self.face_materials is None:
            self.face_materials = np.zeros(self.faces.shape[0], dtype=np.int64)
        self.face_materials = np.ascontiguousarray(self.face_materials, dtype=np.int64)
        if self.face_materials.shape != (self.faces.shape[0],):
            raise DataError(f"{self.name}: face_materials must have shape [{self.faces.shape[0]}], got {list(self.face_materials.shape)}")
        if self.face_materials.size and (self.face_materials.min() < 0 or self.face_materials.max() >= len(self.materials)):
            raise DataError(f"{self.name}: face_materials index a material beyond the {len(self.materials)} given")
        if not np.isfinite(self.vertices).all():
            raise DataError(f"{self.name}: vertices contain NaN or infinite values")

    @property
    def num_vertices(self) -> int:
        """V."""
        return self.vertices.shape[0]

    @property
    def num_faces(self) -> int:
        """F."""
        return self.faces.shape[0]

    def bounds(self) -> np.ndarray:
        """[2,3] axis-aligned box (min, max) of the vertices."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    def diagonal(self) -> float:
        """Length of the bounding box's diagonal."""
        lo, hi = self.bounds()
        return float(np.linalg.norm(hi - lo))

    def face_normals(self, vertices: np.ndarray | None = None) -> np.ndarray:
        """[F,3] unit normals of the faces (of ``vertices [V,3]`` if given, e.g. a posed copy)."""
        p = self.vertices if vertices is None else np.asarray(vertices, dtype=np.float32)
        a, b, c = (p[self.faces[:, i]] for i in range(3))
        n = np.cross(b - a, c - a)
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)

    def vertex_normals(self, vertices: np.ndarray | None = None) -> np.ndarray:
        """[V,3] area-weighted unit vertex normals (of ``vertices [V,3]`` if given)."""
        p = self.vertices if vertices is None else np.asarray(vertices, dtype=np.float32)
        a, b, c = (p[self.faces[:, i]] for i in range(3))
        fn = np.cross(b - a, c - a)  # length = 2·area
        n = np.zeros_like(p)
        for i in range(3):
            np.add.at(n, self.faces[:, i], fn)
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)

    def with_vertices(self, vertices: np.ndarray) -> "Mesh":
        """The same mesh (faces, UVs, material) with other positions ``vertices [V,3]`` (normals dropped)."""
        return replace(self, vertices=vertices, normals=None)

    def transformed(self, matrix: np.ndarray) -> "Mesh":
        """The mesh with its vertices mapped by a 4×4 affine ``matrix`` (normals dropped)."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f"matrix must be 4x4, got {list(m.shape)}")
        p = self.vertices.astype(np.float64) @ m[:3, :3].T + m[:3, 3]
        return self.with_vertices(p.astype(np.float32))
