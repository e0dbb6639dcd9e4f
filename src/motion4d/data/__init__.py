"""Datasets in: posed images (Blender / D-NeRF / nerfstudio ``transforms*.json``), point clouds, and the
built-in procedural demo scene."""

from motion4d.errors import DataError
from motion4d.data.points import load_points_ply
from motion4d.data.synthetic import make_demo_scene
from motion4d.data.transforms import ImageSet, SceneBounds, available_splits, load_transforms, scene_bounds

__all__ = [
    "DataError",
    "ImageSet",
    "SceneBounds",
    "available_splits",
    "load_points_ply",
    "load_transforms",
    "make_demo_scene",
    "scene_bounds",
]
