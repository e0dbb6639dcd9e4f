"""Static 3D assets in, by file extension: glTF/GLB (:mod:`motion4d.data.gltf`), OBJ with MTL and textures
(:mod:`motion4d.data.obj`), and PLY: a 3D Gaussian splat PLY (``opacity`` / ``f_dc_0`` vertex properties,
read by :mod:`motion4d.data.splat_ply`) or a mesh PLY (vertices + faces, optional vertex colours).

Mesh sanity checks shared by all: a mesh needs faces, and meshes with more than ``max_faces`` faces are
refused with a message telling the user to decimate. They are not decimated here: trimesh's quadric
decimation needs an extra package (``fast_simplification``) and a silent decimation would change the asset
the user asked to animate.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from motion4d.errors import DataError, naming
from motion4d.data.gltf import GltfAsset, load_gltf
from motion4d.data.mesh import Mesh
from motion4d.data.obj import load_obj
from motion4d.data.points import read_ply
from motion4d.data.splat_ply import is_splat_ply, load_ply
from motion4d.gaussians.gaussians3d import Gaussians3D

log = logging.getLogger(__name__)

MAX_FACES = 500_000
"""Default face limit of :func:`load_asset`."""
EXTENSIONS = (".glb", ".gltf", ".obj", ".ply")
"""The file types :func:`load_asset` reads."""


def check_mesh(mesh: Mesh, path: str | Path, max_faces: int = MAX_FACES) -> Mesh:
    """``mesh`` if it has faces and at most ``max_faces`` of them; else a DataError naming ``path``."""
    if mesh.num_faces == 0:
        raise DataError(f"{path}: the mesh has no faces")
    if mesh.num_faces > max_faces:
        raise DataError(f"{path}: {mesh.num_faces} faces is more than the limit of {max_faces}; decimate the mesh first "
                        f"(e.g. Blender's Decimate modifier) or raise max_faces")  # fmt: skip
    return mesh


def _mesh_from_ply(ply, path: Path) -> Mesh:
    """The :class:`Mesh` of a PLY with a ``face`` element (``vertex_indices`` / ``vertex_index`` lists, polygons
    fan-triangulated) and optional ``red/green/blue`` vertex colours."""
    if "vertex" not in ply or not {"x", "y", "z"} <= set(ply["vertex"].data.dtype.names or ()):
        raise DataError(f"{path}: PLY without x, y, z vertices")
    v = ply["vertex"].data
    if "face" not in ply or len(ply["face"].data) == 0:
        raise DataError(f"{path}: the mesh has no faces")
    f = ply["face"].data
    key = next((k for k in ("vertex_indices", "vertex_index") if k in f.dtype.names), None)
    if key is None:
        raise DataError(f"{path}: PLY faces lack vertex_indices")
    sizes = np.fromiter((len(p) for p in f[key]), dtype=np.int64, count=len(f))
    flat = np.concatenate(list(f[key])).astype(np.int64)
    n_tri = np.maximum(sizes - 2, 0)  # polygon p gives fan triangles (p0, p_k, p_k+1), k = 1 .. n-2
    first = np.repeat(np.cumsum(sizes) - sizes, n_tri)
    k = np.arange(n_tri.sum()) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    tris = np.stack([flat[first], flat[first + k], flat[first + k + 1]], axis=1)
    colors = None
    if {"red", "green", "blue"} <= set(v.dtype.names):
        rgb = np.stack([v["red"], v["green"], v["blue"]], axis=1)
        colors = rgb.astype(np.float32) / (255.0 if rgb.dtype.kind in "ui" else 1.0)
    try:
        return Mesh(np.stack([v["x"], v["y"], v["z"]], axis=1), tris, vertex_colors=colors, name=path.stem)
    except DataError as e:
        raise naming(path, e) from None


def load_asset(path: str | Path, *, max_faces: int = MAX_FACES) -> GltfAsset | Mesh | Gaussians3D:
    """Read a static asset by extension.

    ``.glb`` / ``.gltf`` → :class:`GltfAsset` (its ``mesh`` is the rest pose); ``.obj`` → :class:`Mesh`;
    ``.ply`` → :class:`Gaussians3D` for a 3D Gaussian splat PLY, else a :class:`Mesh`. Meshes must have
    faces and at most ``max_faces`` of them. Problems raise a one-line DataError naming the file.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataError(f"{path}: unknown asset type {ext or '(no extension)'!r}; use one of {', '.join(EXTENSIONS)}")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if ext in (".glb", ".gltf"):
        asset = load_gltf(path)
        check_mesh(asset.mesh, path, max_faces)
        return asset
    if ext == ".obj":
        return check_mesh(load_obj(path), path, max_faces)
    ply = read_ply(path)
    if "vertex" in ply and is_splat_ply(set(ply["vertex"].data.dtype.names or ())):
        return Gaussians3D.from_activated(**load_ply(path))
    return check_mesh(_mesh_from_ply(ply, path), path, max_faces)


def load_mesh(path: str | Path, *, max_faces: int = MAX_FACES) -> Mesh:
    """The static mesh of an asset file: a glTF/GLB's rest-pose :attr:`GltfAsset.mesh`, an OBJ or a mesh PLY.

    A 3D Gaussian splat PLY (no surface to animate) and every other problem raise a one-line DataError naming the file.
    """
    asset = load_asset(path, max_faces=max_faces)
    if isinstance(asset, Gaussians3D):
        raise DataError(f"{path}: a 3D Gaussian splat PLY, not a mesh (use a glTF/GLB, OBJ or a PLY with faces)")
    return asset.mesh if isinstance(asset, GltfAsset) else asset
