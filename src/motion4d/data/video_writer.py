"""Writing a multi-view video as a D-NeRF-style split: ``transforms_<split>.json`` + one PNG per view and frame.

The layout every dynamic pipeline reads (:func:`motion4d.data.transforms.load_transforms`): ``camera_angle_x``,
``frames`` of ``file_path`` (``./<split>/vNN_fNN``), ``time``, ``view`` and the camera→world
``transform_matrix`` (OpenGL axes), plus any per-view and top-level fields the caller adds (``azimuth_deg``,
``caption``, ...). The JSON file is written last and atomically, so a split whose JSON exists is complete.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from motion4d.atomic import atomic_write_text
from motion4d.render.cameras import viewmat_to_opengl_c2w


def write_video_split(
    folder: str | Path, split: str, images: np.ndarray, viewmats: Tensor, fov_deg: float, times: Sequence[float], *,
    meta: Mapping | None = None, per_view: Sequence[Mapping] | None = None,
) -> Path:  # fmt: skip
    """Write ``images`` (uint8 ``[V, T, H, W, C]``, RGB or straight RGBA) seen by the cameras ``viewmats``
    (``[V, 4, 4]`` world→camera, OpenCV axes; horizontal field of view ``fov_deg``) at ``times [T]`` as the
    ``split`` of the dataset ``folder``. ``meta``: extra top-level keys; ``per_view``: extra keys of each
    view's frames. Returns the JSON file."""
    folder = Path(folder)
    images = np.asarray(images)
    if images.ndim != 5 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [V,T,H,W,C], got {images.dtype} {list(images.shape)}")
    n_views, n_frames = images.shape[:2]
    if len(viewmats) != n_views or len(times) != n_frames or (per_view is not None and len(per_view) != n_views):
        raise ValueError(f"{n_views} views × {n_frames} frames of images, but {len(viewmats)} cameras and {len(times)} times")
    c2w = viewmat_to_opengl_c2w(torch.as_tensor(viewmats)).double().numpy()
    (folder / split).mkdir(parents=True, exist_ok=True)
    frames = []
    for f, t in enumerate(times):
        for v in range(n_views):
            name = f"{split}/v{v:02d}_f{f:02d}"
            iio.imwrite(folder / f"{name}.png", images[v, f])
            extra = dict(per_view[v]) if per_view is not None else {}
            frames.append({"file_path": f"./{name}", "time": float(t), "view": v, **extra, "transform_matrix": c2w[v].tolist()})
    path = folder / f"transforms_{split}.json"
    atomic_write_text(path, json.dumps({"camera_angle_x": math.radians(fov_deg), **(meta or {}), "frames": frames}, indent=1) + "\n")
    return path
