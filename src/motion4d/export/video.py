"""Frames out: videos (``.mp4`` via ffmpeg/libx264, ``.gif``) and PNG images, written atomically."""

from __future__ import annotations

import logging
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from torch import Tensor

from motion4d.atomic import atomic_path

__all__ = ["VIDEO_FORMATS", "save_image", "to_uint8", "write_video"]

log = logging.getLogger(__name__)

VIDEO_FORMATS = (".mp4", ".gif")


def to_uint8(frames: Tensor | np.ndarray) -> np.ndarray:
    """uint8 array of the same shape as ``frames``: uint8 passes through, floats in [0,1] are clipped,
    scaled by 255 and rounded."""
    if isinstance(frames, Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    if not np.issubdtype(frames.dtype, np.floating):
        raise ValueError(f"frames must be uint8 or float in [0,1], got dtype {frames.dtype}")
    return np.round(np.clip(np.nan_to_num(frames), 0.0, 1.0) * 255.0).astype(np.uint8)


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """Pad [T,H,W,3] on the bottom/right by edge replication so H and W are even (yuv420p needs it)."""
    H, W = frames.shape[1:3]
    if H % 2 == 0 and W % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), mode="edge")


def write_video(path: str | Path, frames: Tensor | np.ndarray, fps: float = 24) -> None:
    """Write ``frames [T,H,W,3]`` (float in [0,1] or uint8) as a video at ``path``, atomically.

    ``.mp4``: H.264 (libx264), yuv420p, odd sizes padded to even by repeating the last row/column,
    ``+faststart`` so browsers can stream it. ``.gif``: looping, ``1/fps`` s per frame.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise ValueError(f"{path}: unsupported video format {path.suffix or '(none)'!r} (use .mp4 or .gif)")
    shape = tuple(frames.shape)
    if len(shape) != 4 or shape[-1] != 3 or min(shape[:3]) < 1:
        raise ValueError(f"frames must have shape [T,H,W,3] with T, H, W >= 1, got {list(shape)}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    data = to_uint8(frames)
    with atomic_path(path) as tmp:
        if suffix == ".mp4":
            _write_mp4(tmp, _pad_even(data), fps)
        else:
            iio.imwrite(tmp, data, extension=".gif", duration=1000.0 / fps, loop=0)
    log.debug("wrote %s (%d frames, %dx%d)", path, shape[0], shape[2], shape[1])


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    import imageio_ffmpeg

    T, H, W, _ = frames.shape
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (W, H),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        quality=8,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=["-movflags", "+faststart"],
    )
    writer.send(None)  # start the generator
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()


def save_image(path: str | Path, image: Tensor | np.ndarray) -> None:
    """Write ``image [H,W]`` or ``[H,W,C]`` (C = 1, 3 or 4; float in [0,1] or uint8) as a PNG, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: save_image writes PNG files (use a .png name)")
    shape = tuple(image.shape)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3, 4))) or min(shape[:2]) < 1:
        raise ValueError(f"image must have shape [H,W] or [H,W,1|3|4], got {list(shape)}")
    data = to_uint8(image)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, data, extension=".png")

