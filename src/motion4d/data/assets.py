"""Static 3D assets in, by file extension: glTF/GLB (:mod:`motion4d.data.gltf`), OBJ (+MTL and textures,
parsed by trimesh) and mesh PLY (vertices + faces, optional vertex colours, via plyfile).

Sanity checks shared by all: a mesh needs faces; meshes larger than ``max_faces`` are refused with a
message telling the user to decimate (a silent decimation would change the asset the user asked to
animate). 3D Gaussian splat PLYs (no faces, ``f_dc_*`` / ``opacity`` properties) are recognised and
refused here with a pointer: they are point sets, not meshes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from motion4d.data.errors import DataError
from motion4d.data.gltf import GltfAsset, load_gltf
from motion4d.data.mesh import GREY, Material, Mesh

log = logging.getLogger(__name__)

MAX_FACES = 500_000
"""Default face limit of :func:`load_asset`."""


def _check(mesh: Mesh, path: Path, max_faces: int) -> Mesh:
    if mesh.num_faces == 0:
        raise DataError(f"{path}: the mesh has no faces")
    if mesh.num_faces > max_faces:
        raise DataError(f"{path}: {mesh.num_faces} faces is more than the limit of {max_faces}; decimate it first "
                        f"(e.g. Blender's Decimate modifier) or raise max_faces")  # fmt: skip
    return mesh


def load_obj(path: str | Path) -> Mesh:
    """An OBJ file (with its MTL's diffuse colour ``Kd`` and texture ``map_Kd``) as one :class:`Mesh`."""
    import trimesh

    path = Path(path)
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False, maintain_order=True)
    except Exception as e:  # trimesh raises many kinds on malformed files
        raise DataError(f"{path}: not a readable OBJ file ({type(e).__name__}: {e})") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise DataError(f"{path}: the mesh has no faces")
    uvs, material = None, Material(GREY, None, "default")
    visual = loaded.visual
    if getattr(visual, "kind", None) == "texture":
        if visual.uv is not None and len(visual.uv) == len(loaded.vertices):
            uvs = np.asarray(visual.uv, dtype=np.float32).copy()
            uvs[:, 1] = 1.0 - uvs[:, 1]  # OBJ's v runs up; glTF's (ours) runs down
        mat = visual.material
        image = getattr(mat, "image", None) or getattr(mat, "baseColorTexture", None)
        diffuse = getattr(mat, "diffuse", None)
        if diffuse is None:
            diffuse = getattr(mat, "baseColorFactor", None)
        color = tuple(np.asarray(diffuse, dtype=np.float64)[:4] / 255.0) if diffuse is not None else (1.0, 1.0, 1.0, 1.0)
        if len(color) == 3:
            color = (*color, 1.0)
        texture = np.asarray(image.convert("RGBA")) if image is not None else None
        if texture is None:
            log.warning("%s: no texture found for material %r; using its colour", path, getattr(mat, "name", "?"))
        material = Material(color, texture, getattr(mat, "name", None) or "material")
    colors = None
    if getattr(visual, "kind", None) == "vertex":
        colors = np.asarray(visual.vertex_colors, dtype=np.float32)[:, :3] / 255.0
    return Mesh(np.asarray(loaded.vertices), np.asarray(loaded.faces), uvs=uvs, vertex_colors=colors, materials=[material], name=path.stem)


def _is_splat_ply(names: set[str]) -> bool:
    return "opacity" in names and "f_dc_0" in names


def load_mesh_ply(path: str | Path) -> Mesh:
    """A PLY with a ``face`` element (``vertex_indices`` / ``vertex_index`` lists) and optional vertex colours."""
    from plyfile import PlyData

    path = Path(path)
    try:
        ply = PlyData.read(str(path))
    except Exception as e:  # plyfile raises many kinds on malformed files
        raise DataError(f"{path}: not a readable PLY file ({type(e).__name__}: {e})") from None
    if "vertex" not in ply:
        raise DataError(f"{path}: PLY without a vertex element")
    v = ply["vertex"].data
    names = set(v.dtype.names or ())
    if "face" not in ply or len(ply["face"].data) == 0:
        if _is_splat_ply(names):
            raise DataError(f"{path}: a 3D Gaussian splat PLY, not a mesh (animate needs a mesh: glTF/GLB, OBJ or PLY with faces)")
        raise DataError(f"{path}: the mesh has no faces")
    verts = np.stack([v["x"], v["y"], v["z"]], axis=1)
    f = ply["face"].data
    key = "vertex_indices" if "vertex_indices" in f.dtype.names else "vertex_index"
    polys = list(f[key])
    tris = [(p[0], p[i], p[i + 1]) for p in polys for i in range(1, len(p) - 1)]  # fan-triangulate polygons
    colors = None
    if {"red", "green", "blue"} <= names:
        colors = np.stack([v["red"], v["green"], v["blue"]], axis=1).astype(np.float32) / 255.0
    return Mesh(verts, np.asarray(tris, dtype=np.int64).reshape(-1, 3), vertex_colors=colors, name=path.stem)


def load_asset(path: str | Path, *, max_faces: int = MAX_FACES) -> GltfAsset | Mesh:
    """Read a static asset: ``.glb``/``.gltf`` → :class:`GltfAsset` (its ``mesh`` is the rest pose),
    ``.obj`` / mesh ``.ply`` → :class:`Mesh`. Problems raise a one-line DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    ext = path.suffix.lower()
    if ext in (".glb", ".gltf"):
        asset = load_gltf(path)
        _check(asset.mesh, path, max_faces)
        return asset
    if ext == ".obj":
        return _check(load_obj(path), path, max_faces)
    if ext == ".ply":
        return _check(load_mesh_ply(path), path, max_faces)
    raise DataError(f"{path}: unknown asset type {ext or '(no extension)'!r}; use .glb, .gltf, .obj or .ply")
