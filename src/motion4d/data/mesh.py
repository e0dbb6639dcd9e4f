"""Triangle meshes as plain arrays: what every mesh reader returns and the mesh renderer, the surface
Gaussians and the glTF writer take.

Readers for each format live beside this module (:mod:`motion4d.data.gltf`, :mod:`motion4d.data.obj`);
:func:`motion4d.data.assets.load_asset` picks one by file extension.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from motion4d.errors import DataError

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

    def colors_at(self, face_ids: np.ndarray, barycentrics: np.ndarray) -> np.ndarray:
        """[N,3] RGB in [0,1] (display-encoded, as images are) of surface points.

        Args:
            face_ids: [N] int face of each point.
            barycentrics: [N,3] weights of the face's three vertices (rows sum to 1).

        Colour = material base colour × bilinearly sampled texture (repeat wrap, glTF UV convention: u right,
        v down from the top-left) × vertex colour, multiplied in linear space and re-encoded as sRGB.
        """
        face_ids = np.asarray(face_ids, dtype=np.int64)
        bary = np.asarray(barycentrics, dtype=np.float32)
        if face_ids.ndim != 1 or bary.shape != (face_ids.shape[0], 3):
            raise ValueError(f"face_ids [N] and barycentrics [N,3] expected, got {list(face_ids.shape)}, {list(bary.shape)}")
        tri = self.faces[face_ids]  # [N,3]
        lin = np.ones((face_ids.shape[0], 3), dtype=np.float32)
        if self.vertex_colors is not None:
            lin *= np.einsum("nk,nkc->nc", bary, self.vertex_colors[tri])
        mats = self.face_materials[face_ids]
        for m, material in enumerate(self.materials):
            sel = mats == m
            if not sel.any():
                continue
            lin[sel] *= np.asarray(material.base_color[:3], dtype=np.float32)
            if material.texture is not None and self.uvs is not None:
                uv = np.einsum("nk,nkc->nc", bary[sel], self.uvs[tri[sel]])
                lin[sel] *= srgb_to_linear(sample_bilinear(material.texture[..., :3], uv))
        return linear_to_srgb(np.clip(lin, 0.0, 1.0))


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0,1] to linear."""
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear values in [0,1] to sRGB encoding."""
    c = np.clip(np.asarray(c, dtype=np.float32), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055).astype(np.float32)


def sample_bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """[N,C] float values in [0,1] of a uint8 ``image [H,W,C]`` at ``uv [N,2]`` (repeat wrap; texel centres
    at (i+0.5)/W as glTF samplers)."""
    h, w = image.shape[:2]
    x = np.mod(uv[:, 0], 1.0) * w - 0.5
    y = np.mod(uv[:, 1], 1.0) * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    x1, y1 = (x0 + 1) % w, (y0 + 1) % h
    x0, y0 = x0 % w, y0 % h
    img = image.astype(np.float32) / 255.0
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy
