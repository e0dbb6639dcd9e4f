"""Point clouds for initialisation: plain PLY vertices with optional colours."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData
from torch import Tensor

from motion4d.errors import DataError, MissingFileError, first_line
from motion4d.data.images import to_float

log = logging.getLogger(__name__)


def read_ply(path: str | Path) -> PlyData:
    """A PLY file (ASCII or binary), every element read.

    Raises :class:`DataError` naming ``path`` for a missing, empty, truncated or otherwise unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        return PlyData.read(str(path))
    except Exception as e:  # noqa: BLE001 - plyfile raises several types for malformed files
        raise DataError(f"{path}: not a readable PLY file ({first_line(e)})") from None


def read_ply_vertices(path: str | Path) -> np.ndarray:
    """The ``vertex`` element of a PLY file (ASCII or binary) as a numpy structured array.

    Raises :class:`DataError` naming ``path`` for a missing or unreadable file or one without vertices.
    """
    ply = read_ply(path)
    if "vertex" not in ply:
        raise DataError(f"{path}: PLY has no 'vertex' element")
    return ply["vertex"].data


def load_points_ply(path: str | Path) -> tuple[Tensor, Tensor]:
    """Read the ``vertex`` element of a PLY file (ASCII or binary).

    Returns ``xyz [P,3]`` float32 and ``rgb [P,3]`` float32 in [0,1], from the ``red``/``green``/``blue``
    properties (integers scaled by their type's maximum, floats used as-is) or grey 0.5 when the file has
    none. Raises :class:`DataError` naming ``path`` for a missing or unreadable file, or one without
    ``x``/``y``/``z`` vertices.
    """
    v = read_ply_vertices(path)
    names = set(v.dtype.names or ())
    if not {"x", "y", "z"} <= names:
        raise DataError(f"{path}: PLY vertices lack x, y, z")
    if len(v) == 0:
        raise DataError(f"{path}: PLY has no vertices")
    xyz = np.stack([v["x"], v["y"], v["z"]], axis=-1).astype(np.float32)
    if not np.isfinite(xyz).all():
        raise DataError(f"{path}: PLY has non-finite vertex positions")
    if {"red", "green", "blue"} <= names:
        rgb = np.clip(to_float(np.stack([v["red"], v["green"], v["blue"]], axis=-1)), 0.0, 1.0)
    else:
        log.info("%s: no vertex colours, using grey", path)
        rgb = np.full_like(xyz, 0.5)
    return torch.from_numpy(xyz), torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
