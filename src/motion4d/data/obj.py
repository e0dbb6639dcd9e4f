"""Wavefront OBJ meshes in (with their MTL materials and textures), parsed by trimesh.

Each OBJ material (``usemtl`` group) becomes one :class:`~motion4d.data.mesh.Material`: its ``map_Kd``
texture decoded to uint8 with base colour white (as Blender's OBJ importer and glTF exporters do, the
texture replaces ``Kd`` rather than being darkened by it), or, without a texture, base colour ``Kd``. The
MTL's ``Kd`` is kept in ``Material.extras["obj"]``. A ``map_Kd`` whose file is missing or unreadable gives a
grey material and a warning. UVs are converted to the glTF convention (v down).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from motion4d.errors import DataError, naming
from motion4d.data.mesh import GREY, Material, Mesh

log = logging.getLogger(__name__)


def _texture_names(obj_path: Path) -> dict[str, str]:
    """``{material name: map_Kd file}`` from the MTL files the OBJ names (unreadable ones skipped)."""
    out: dict[str, str] = {}
    try:
        libs = [ln.split(None, 1)[1].strip() for ln in obj_path.read_text(errors="replace").splitlines() if ln.startswith("mtllib ")]
    except OSError:
        return out
    for lib in libs:
        try:
            text = (obj_path.parent / lib).read_text(errors="replace")
        except OSError:
            continue
        current = None
        for ln in text.splitlines():
            parts = ln.strip().split(None, 1)
            if len(parts) == 2 and parts[0] == "newmtl":
                current = parts[1].strip()
            elif len(parts) == 2 and parts[0].lower() == "map_kd" and current is not None:
                out[current] = parts[1].split()[-1]  # the file name follows any options
    return out


def _material(mat, textures: dict[str, str], path: Path) -> Material:
    """A trimesh material (SimpleMaterial from an MTL, or PBRMaterial) as our :class:`Material`."""
    name = getattr(mat, "name", None) or "material"
    exact = (getattr(mat, "kwargs", None) or {}).get("kd")  # the MTL's floats (``diffuse`` is quantised to uint8)
    kd = getattr(mat, "diffuse", None)
    if kd is None:
        kd = getattr(mat, "baseColorFactor", None)
    if isinstance(exact, (list, tuple, np.ndarray)) and len(exact) >= 3:
        color = tuple(float(c) for c in exact[:3])
    else:
        color = tuple(np.asarray(kd, dtype=np.float64)[:4] / 255.0) if kd is not None else (1.0, 1.0, 1.0, 1.0)
    color = (*color, 1.0) if len(color) == 3 else color
    image = getattr(mat, "image", None)
    if image is None:
        image = getattr(mat, "baseColorTexture", None)
    extras = {"obj": {"Kd": list(color[:3])}}
    if image is not None:
        return Material((1.0, 1.0, 1.0, color[3]), np.asarray(image.convert("RGBA")), name, extras)
    if name in textures:
        log.warning("%s: texture %r of material %r is missing or unreadable; using grey", path, textures[name], name)
        return Material(GREY, None, name, extras)
    return Material(color, None, name, extras)


def load_obj(path: str | Path) -> Mesh:
    """Read an OBJ file with its MTL materials and ``map_Kd`` textures as one :class:`Mesh` (see module docstring).

    Raises a one-line :class:`DataError` naming ``path`` for a missing or unreadable file or one without faces.
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        scene = trimesh.load(str(path), force="scene", process=False, maintain_order=True)
    except Exception as e:  # noqa: BLE001 - trimesh raises many kinds on malformed files
        raise DataError(f"{path}: not a readable OBJ file ({type(e).__name__}: {e})") from None
    textures = _texture_names(path)
    parts = []
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        used, faces = np.unique(np.asarray(geom.faces, dtype=np.int64), return_inverse=True)
        verts = np.asarray(geom.vertices, dtype=np.float64)[used] @ transform[:3, :3].T + transform[:3, 3]
        visual = geom.visual
        uv = colors = None
        material = Material(GREY, None, "default")
        if getattr(visual, "kind", None) == "texture" or hasattr(visual, "material"):
            if getattr(visual, "uv", None) is not None and len(visual.uv) == len(geom.vertices):
                uv = np.asarray(visual.uv, dtype=np.float64)[used] * [1.0, -1.0] + [0.0, 1.0]  # OBJ's v runs up
            material = _material(visual.material, textures, path)
        if getattr(visual, "kind", None) == "vertex":
            colors = np.asarray(visual.vertex_colors, dtype=np.float32)[used, :3] / 255.0
        parts.append((verts, faces.reshape(-1, 3), uv, colors, material))
    if not parts:
        raise DataError(f"{path}: the mesh has no faces")
    offsets = np.cumsum([0] + [len(p[0]) for p in parts])
    any_uv, any_color = (any(p[2] is not None for p in parts), any(p[3] is not None for p in parts))
    try:
        return Mesh(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] + o for p, o in zip(parts, offsets)]),
            uvs=np.concatenate([p[2] if p[2] is not None else np.zeros((len(p[0]), 2)) for p in parts]) if any_uv else None,
            vertex_colors=np.concatenate([p[3] if p[3] is not None else np.ones((len(p[0]), 3)) for p in parts]) if any_color else None,
            materials=[p[4] for p in parts],
            face_materials=np.concatenate([np.full(len(p[1]), i, dtype=np.int64) for i, p in enumerate(parts)]),
            name=path.stem,
        )
    except DataError as e:
        raise naming(path, e) from None
