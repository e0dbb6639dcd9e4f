"""Image files to float tensors: reading, alpha compositing and integer downscaling."""

from __future__ import annotations

import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from motion4d.errors import DataError, MissingFileError, first_line


def to_float(array: np.ndarray) -> np.ndarray:
    """Integer or float image [H,W,...] → float32 in [0,1] (uint8 / 255, uint16 / 65535, floats as-is)."""
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    return array.astype(np.float32)


def read_image(path: str | Path) -> Tensor:
    """Read an image file into ``[H,W,C]`` float32 in [0,1], with C = 3 (RGB) or 4 (RGBA).

    Grey images are expanded to RGB (grey+alpha to RGBA). Raises :class:`DataError` naming ``path`` if the
    file is missing, cannot be decoded, or is not a single 2D image.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: image not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (not an image)")
    try:
        with warnings.catch_warnings():  # imageio's fallback plugins warn about themselves when nothing decodes
            warnings.simplefilter("ignore", DeprecationWarning)
            array = iio.imread(path)
    except Exception as e:  # noqa: BLE001 - any decoder failure is a corrupt/unsupported file
        raise DataError(f"{path}: cannot read image ({first_line(e)})") from None
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or min(array.shape[:2]) < 1:
        raise DataError(f"{path}: not a single 2D image (array shape {list(array.shape)})")
    img = to_float(array)
    c = img.shape[-1]
    if c == 1:
        img = np.repeat(img, 3, axis=-1)
    elif c == 2:
        img = np.concatenate([np.repeat(img[..., :1], 3, axis=-1), img[..., 1:]], axis=-1)
    return torch.from_numpy(np.ascontiguousarray(img))


def composite(image: Tensor, background: tuple[float, float, float] | Tensor) -> tuple[Tensor, Tensor | None]:
    """Split ``image [...,H,W,C]`` (C = 3 or 4, straight alpha) into ``rgb [...,H,W,3]`` over ``background``
    and ``alpha [...,H,W,1]`` (None when C = 3, where rgb is returned unchanged).

    ``rgb = rgb·a + background·(1 − a)``.
    """
    if image.shape[-1] == 3:
        return image, None
    if image.shape[-1] != 4:
        raise ValueError(f"image must have 3 or 4 channels, got shape {list(image.shape)}")
    bg = torch.as_tensor(background, dtype=image.dtype, device=image.device)
    if bg.shape != (3,):
        raise ValueError(f"background must have 3 values, got {list(bg.shape)}")
    alpha = image[..., 3:]
    return image[..., :3] * alpha + bg * (1.0 - alpha), alpha


def downscale(image: Tensor, factor: int) -> Tensor:
    """Shrink ``image [H,W,C]`` by an integer ``factor`` by averaging ``factor``×``factor`` blocks.

    H and W are first cropped (bottom / right) to multiples of ``factor``, so the result is
    ``[H // factor, W // factor, C]`` and pinhole intrinsics scale exactly by ``1 / factor``.
    """
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"downscale factor must be a positive int, got {factor!r}")
    if factor == 1:
        return image
    H, W = image.shape[0] // factor, image.shape[1] // factor
    if H < 1 or W < 1:
        raise ValueError(f"cannot downscale a {image.shape[1]}x{image.shape[0]} image by {factor}")
    x = image[: H * factor, : W * factor].permute(2, 0, 1)[None]
    return F.avg_pool2d(x, factor)[0].permute(1, 2, 0).contiguous()
