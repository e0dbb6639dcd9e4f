"""Posed-image datasets in the ``transforms*.json`` family: Blender / D-NeRF and nerfstudio.

Two layouts are read:

* **Blender / D-NeRF**: ``transforms_{train,val,test}.json``, each with ``camera_angle_x`` (horizontal
  field of view, radians; optional ``camera_angle_y``) and ``frames`` of ``file_path`` (often without
  extension: ``./train/r_000`` → ``./train/r_000.png``), ``transform_matrix`` and, for dynamic scenes, ``time``
  (and optionally ``view``, the camera index).
* **nerfstudio**: one ``transforms.json`` with pinhole intrinsics ``fl_x, fl_y, cx, cy, w, h`` at the top level
  or per frame. Splits come from ``train_filenames`` / ``val_filenames`` / ``test_filenames`` when present
  (train defaults to the frames no list names); otherwise frames sorted by ``file_path`` are split
  deterministically, every 8th (indices 0, 8, 16, ...) to "test" and the rest to "train". nerfstudio's
  automatic re-orientation and re-scaling of poses is *not* applied: the world is the file's world.
  ``ply_file_path`` (a point cloud) is reported as :attr:`ImageSet.points_path`.

When a folder has ``transforms_<split>.json`` files, those are its splits and ``transforms.json`` is ignored.
Camera→world matrices in these files use OpenGL camera axes; they become world→camera viewmats in OpenCV
axes through :func:`motion4d.render.cameras.opengl_c2w_to_viewmat`, the one place that converts.

Every problem with the files raises :class:`~motion4d.errors.DataError` naming the file.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from motion4d.errors import DataError
from motion4d.data.images import composite, read_image
from motion4d.data.images import downscale as downscale_image
from motion4d.data.points import load_points_ply
from motion4d.render.cameras import camera_centers, opengl_c2w_to_viewmat

__all__ = ["ImageSet", "SceneBounds", "available_splits", "load_points_ply", "load_transforms", "scene_bounds"]

log = logging.getLogger(__name__)

NERFSTUDIO_FILE = "transforms.json"
TEST_EVERY = 8
"""nerfstudio datasets without split lists: every TEST_EVERY-th frame (sorted by path) is a test frame."""
_STANDARD_SPLITS = ("train", "val", "test")
_IMAGE_SUFFIXES = ("", ".png", ".jpg", ".jpeg", ".PNG", ".JPG")
_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


@dataclass
class ImageSet:
    """The posed images of one split."""

    images: Tensor
    """[M,H,W,3] float32 in [0,1]; RGBA sources are already composited over :attr:`background`."""
    alphas: Tensor | None
    """[M,H,W,1] float32 in [0,1]; None if no source image had an alpha channel."""
    viewmats: Tensor
    """[M,4,4] float32 world→camera, OpenCV axes (x right, y down, z forward)."""
    Ks: Tensor
    """[M,3,3] float32 pinhole intrinsics for the (downscaled) images."""
    times: Tensor | None
    """[M] float32 per-frame ``time`` (D-NeRF), None if the frames have none."""
    names: list[str]
    """M image paths relative to the dataset root (POSIX separators)."""
    width: int
    """Image width W in pixels."""
    height: int
    """Image height H in pixels."""
    background: tuple[float, float, float]
    """The colour RGBA images were composited over."""
    views: Tensor | None = None
    """[M] int64 per-frame camera index (``view``), None if the frames have none."""
    points_path: Path | None = None
    """The dataset's point cloud (nerfstudio ``ply_file_path``), None if it names none."""

    def __len__(self) -> int:
        return self.images.shape[0]


class SceneBounds(NamedTuple):
    """A sphere around the content the cameras look at."""

    center: Tensor
    """[3] float32 world-space centre."""
    radius: float
    """Radius: 1.1 × the largest camera distance from ``center`` (3DGS's ``cameras_extent``)."""


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
        raise DataError(f"{path}: not a transforms file (needs an object with a 'frames' list)")
    return meta


def _blender_split_files(root: Path) -> dict[str, Path]:
    files = {p.name[len("transforms_") : -len(".json")]: p for p in root.glob("transforms_*.json") if p.is_file()}
    order = [s for s in _STANDARD_SPLITS if s in files] + sorted(s for s in files if s not in _STANDARD_SPLITS)
    return {s: files[s] for s in order}


def _nerfstudio_splits(meta: dict) -> list[str]:
    listed = [s for s in _STANDARD_SPLITS if isinstance(meta.get(f"{s}_filenames"), list)]
    if not listed:
        return ["train", "test"]
    return ["train"] + [s for s in listed if s != "train"]


def available_splits(root: str | Path) -> list[str]:
    """Names of the splits :func:`load_transforms` can read from the dataset folder ``root``.

    Blender-style ``transforms_<split>.json`` files first ("train", "val", "test", then others sorted);
    else the splits of a nerfstudio ``transforms.json``; else an empty list.
    """
    root = Path(root)
    files = _blender_split_files(root)
    if files:
        return list(files)
    ns = root / NERFSTUDIO_FILE
    if ns.is_file():
        return _nerfstudio_splits(_read_json(ns))
    return []


def _norm(file_path: str) -> str:
    return posixpath.normpath(str(file_path).replace("\\", "/"))


def _select_nerfstudio(meta: dict, split: str, json_path: Path) -> list[dict]:
    frames = sorted(meta["frames"], key=lambda f: _norm(f.get("file_path", "")) if isinstance(f, dict) else "")
    splits = _nerfstudio_splits(meta)
    if split not in splits:
        raise DataError(f"{json_path}: no split {split!r} (splits here: {', '.join(splits)})")
    lists = {s: {_norm(p) for p in meta[f"{s}_filenames"]} for s in _STANDARD_SPLITS if isinstance(meta.get(f"{s}_filenames"), list)}
    if not lists:
        is_test = [i % TEST_EVERY == 0 for i in range(len(frames))]
        return [f for f, t in zip(frames, is_test) if t == (split == "test")]
    path_of = lambda f: _norm(f.get("file_path", "")) if isinstance(f, dict) else ""  # noqa: E731
    if split in lists:
        return [f for f in frames if path_of(f) in lists[split]]
    named = set().union(*lists.values())
    return [f for f in frames if path_of(f) not in named]


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _resolve_image(root: Path, json_path: Path, index: int, file_path: object) -> Path:
    """The image file of frame ``index``; refuses paths that leave the dataset folder ``root`` (resolved)."""
    if not isinstance(file_path, str) or not file_path:
        raise DataError(f"{json_path}: frame {index} has no 'file_path'")
    base = root / file_path.replace("\\", "/")
    for suffix in _IMAGE_SUFFIXES:
        candidate = (base.parent / (base.name + suffix)).resolve()
        if not _inside(candidate, root):
            raise DataError(f"{json_path}: frame {index} file_path {file_path!r} escapes the dataset folder {root}")
        if candidate.is_file():
            return candidate
    raise DataError(f"{base}: image not found (frame {index} of {json_path})")


def _c2w(frame: dict, index: int, json_path: Path) -> np.ndarray:
    try:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{json_path}: frame {index} has no numeric 'transform_matrix'") from None
    if m.shape == (3, 4):
        m = np.concatenate([m, [[0.0, 0.0, 0.0, 1.0]]])
    if m.shape != (4, 4) or not np.isfinite(m).all() or abs(np.linalg.det(m[:3, :3])) < 1e-12:
        raise DataError(f"{json_path}: frame {index} 'transform_matrix' is not a finite invertible 4x4 matrix")
    return m


def _number(value: object, key: str, where: str) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key!r} is not a number ({value!r})") from None
    if not math.isfinite(x):
        raise DataError(f"{where}: {key!r} is not finite")
    return x


def _has_intrinsics(meta: dict, frame: dict) -> bool:
    return any(k in frame or k in meta for k in ("fl_x", "camera_angle_x"))


def _pinhole(meta: dict, frame: dict, W: int, H: int, json_path: Path) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) for an image of W×H pixels; per-frame keys override the top level.

    nerfstudio intrinsics given for a different ``w``×``h`` than the image's are rescaled to the image.
    """
    get = lambda k: frame.get(k, meta.get(k))  # noqa: E731
    where = str(json_path)
    if get("fl_x") is not None:
        fx = _number(get("fl_x"), "fl_x", where)
        fy = _number(get("fl_y"), "fl_y", where) if get("fl_y") is not None else fx
        w = _number(get("w"), "w", where) if get("w") is not None else float(W)
        h = _number(get("h"), "h", where) if get("h") is not None else float(H)
        cx = _number(get("cx"), "cx", where) if get("cx") is not None else w / 2.0
        cy = _number(get("cy"), "cy", where) if get("cy") is not None else h / 2.0
        sx, sy = W / w, H / h
        fx, cx, fy, cy = fx * sx, cx * sx, fy * sy, cy * sy
    elif get("camera_angle_x") is not None:
        ax = _number(get("camera_angle_x"), "camera_angle_x", where)
        if not 0.0 < ax < math.pi:
            raise DataError(f"{json_path}: 'camera_angle_x' must be in (0, pi) radians, got {ax}")
        fx = 0.5 * W / math.tan(ax / 2.0)
        ay = get("camera_angle_y")
        fy = 0.5 * H / math.tan(_number(ay, "camera_angle_y", where) / 2.0) if ay is not None else fx
        cx, cy = W / 2.0, H / 2.0
    else:
        raise DataError(f"{json_path}: no camera intrinsics (needs 'camera_angle_x' or 'fl_x')")
    if not (fx > 0 and fy > 0):
        raise DataError(f"{json_path}: focal lengths must be positive, got fx={fx}, fy={fy}")
    return fx, fy, cx, cy


def _check_args(background, downscale: int, max_images: int | None) -> tuple[float, float, float]:
    if not isinstance(downscale, int) or isinstance(downscale, bool) or downscale < 1:
        raise DataError(f"downscale must be a positive integer, got {downscale!r}")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise DataError(f"max_images must be a positive integer, got {max_images!r}")
    try:
        bg = tuple(float(c) for c in background)
    except (TypeError, ValueError):
        bg = ()
    if len(bg) != 3:
        raise DataError(f"background must be 3 numbers (R,G,B), got {background!r}")
    return bg  # type: ignore[return-value]


def _frames_at_time(frames: list[dict], time: float, json_path: Path) -> list[dict]:
    if not frames or any(not isinstance(f, dict) or "time" not in f for f in frames):
        raise DataError(f"{json_path}: time={time} was asked for but the frames have no 'time'")
    times = np.array([_number(f["time"], "time", str(json_path)) for f in frames])
    gap = np.abs(times - float(time))
    return [f for f, g in zip(frames, gap) if g <= gap.min() + 1e-6]


def _points_path(meta: dict, root: Path, json_path: Path) -> Path | None:
    name = meta.get("ply_file_path")
    if not isinstance(name, str) or not name:
        return None
    path = (root / name).resolve()
    if not _inside(path, root):
        raise DataError(f"{json_path}: ply_file_path {name!r} escapes the dataset folder {root}")
    if not path.is_file():
        log.warning("%s: ply_file_path %s does not exist; ignoring it", json_path, path)
        return None
    return path


def load_transforms(
    root: str | Path,
    split: str = "train",
    *,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    downscale: int = 1,
    time: float | None = None,
    max_images: int | None = None,
) -> ImageSet:
    """Load one split of the dataset folder ``root`` (see the module docstring for the formats).

    Args:
        root: dataset folder holding ``transforms_<split>.json`` or ``transforms.json``.
        split: "train", "val", "test" (or any ``transforms_<split>.json`` name).
        background: RGB in [0,1] that RGBA images are composited over (``rgb·a + bg·(1−a)``).
        downscale: integer factor N; images are cropped to multiples of N and N×N block-averaged, and
            fx, fy, cx, cy divided by N.
        time: keep only the frames whose ``time`` is closest to this (a static snapshot of a dynamic scene).
        max_images: keep at most this many frames, evenly spaced over the split (after ``time``).

    Returns:
        An :class:`ImageSet` of M images [M,H,W,3] with their cameras.
    """
    bg = _check_args(background, downscale, max_images)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    root = root.resolve()
    split_files = _blender_split_files(root)
    if split in split_files:
        json_path = split_files[split]
        meta = _read_json(json_path)
        frames = list(meta["frames"])
    elif not split_files and (root / NERFSTUDIO_FILE).is_file():
        json_path = root / NERFSTUDIO_FILE
        meta = _read_json(json_path)
        frames = _select_nerfstudio(meta, split, json_path)
    else:
        known = ", ".join(available_splits(root)) or "none"
        raise DataError(f"{root / f'transforms_{split}.json'}: no such file (splits here: {known})")
    if not frames:
        raise DataError(f"{json_path}: split {split!r} has no frames")
    for i, f in enumerate(frames):
        if not isinstance(f, dict):
            raise DataError(f"{json_path}: frame {i} is not an object")
        if not _has_intrinsics(meta, f):
            raise DataError(f"{json_path}: no camera intrinsics (needs 'camera_angle_x' or 'fl_x')")
    if time is not None:
        frames = _frames_at_time(frames, time, json_path)
    if max_images is not None and max_images < len(frames):
        keep = np.unique(np.linspace(0, len(frames) - 1, max_images).round().astype(int))
        frames = [frames[i] for i in keep]
    if any(meta.get(k) or any(f.get(k) for f in frames) for k in _DISTORTION_KEYS):
        log.warning("%s: lens distortion coefficients are ignored (pinhole model only)", json_path)

    c2ws = np.stack([_c2w(f, i, json_path) for i, f in enumerate(frames)])
    paths = [_resolve_image(root, json_path, i, f.get("file_path")) for i, f in enumerate(frames)]
    rgbs, alphas, Ks = [], [], []
    size0 = None
    for path, frame in zip(paths, frames):
        img = read_image(path)
        size = (img.shape[1], img.shape[0])
        if size0 is None:
            size0 = size
        elif size != size0:
            raise DataError(f"{path}: image is {size[0]}x{size[1]} but {paths[0]} is {size0[0]}x{size0[1]} (a split's images must match)")
        fx, fy, cx, cy = _pinhole(meta, frame, size[0], size[1], json_path)
        Ks.append([[fx / downscale, 0.0, cx / downscale], [0.0, fy / downscale, cy / downscale], [0.0, 0.0, 1.0]])
        rgb, alpha = composite(img, bg)
        rgbs.append(downscale_image(rgb, downscale))
        alphas.append(downscale_image(alpha, downscale) if alpha is not None else None)
    images = torch.stack(rgbs)
    if all(a is None for a in alphas):
        alpha_t = None
    else:
        alpha_t = torch.stack([a if a is not None else torch.ones_like(images[i, ..., :1]) for i, a in enumerate(alphas)])

    times = None
    if all("time" in f for f in frames):
        times = torch.tensor([_number(f["time"], "time", str(json_path)) for f in frames], dtype=torch.float32)
    elif any("time" in f for f in frames):
        raise DataError(f"{json_path}: 'time' is given for some frames but not all")
    views = None
    if all(isinstance(f.get("view"), int) for f in frames):
        views = torch.tensor([f["view"] for f in frames], dtype=torch.int64)

    viewmats = opengl_c2w_to_viewmat(torch.from_numpy(c2ws)).float()
    M, H, W = images.shape[:3]
    log.info("%s: %d %s images, %dx%d%s", root, M, split, W, H, f", time {time}" if time is not None else "")
    return ImageSet(
        images=images,
        alphas=alpha_t,
        viewmats=viewmats,
        Ks=torch.tensor(Ks, dtype=torch.float32),
        times=times,
        names=[p.relative_to(root).as_posix() for p in paths],
        width=W,
        height=H,
        background=bg,
        views=views,
        points_path=_points_path(meta, root, json_path),
    )


def scene_bounds(images: ImageSet) -> SceneBounds:
    """A centre and radius for the scene seen by the cameras of ``images``.

    Method: each camera's optical axis is the ray from its centre along its viewing direction (+z in
    OpenCV camera axes). The centre is the point nearest to all these axes in the least-squares sense (for
    an orbit, the point the cameras look at). If the axes are close to parallel (e.g. a forward-facing
    rig) or that point lies behind the cameras, the mean of the camera centres is used instead, as 3DGS
    does. The radius is 1.1 × the largest camera distance from the centre (1.0 if that is zero).
    """
    viewmats = images.viewmats.double()
    origins = camera_centers(viewmats)  # [M,3]
    dirs = torch.nn.functional.normalize(viewmats[:, 2, :3], dim=-1)  # [M,3]: camera +z in world
    proj = torch.eye(3, dtype=torch.float64) - dirs[:, :, None] * dirs[:, None, :]  # [M,3,3]
    A = proj.mean(0)
    b = (proj @ origins[:, :, None]).mean(0)[:, 0]
    center = origins.mean(0)
    if torch.linalg.eigvalsh(A)[0] > 1e-2:
        candidate = torch.linalg.solve(A, b)
        if ((candidate - origins) * dirs).sum(-1).mean() > 0:
            center = candidate
    radius = 1.1 * float((origins - center).norm(dim=-1).max())
    return SceneBounds(center.float(), radius if radius > 1e-9 else 1.0)


def read_asset_to_world(root: str | Path, split: str = "train") -> np.ndarray | None:
    """The dataset's ``asset_to_world`` [4,4] float64 (the source asset's coordinates → the dataset's world,
    as in datasets rendered from a 3D asset), or None when the split's JSON has none."""
    root = Path(root)
    files = _blender_split_files(root)
    path = files.get(split, root / NERFSTUDIO_FILE)
    meta = _read_json(path)
    if "asset_to_world" not in meta:
        return None
    try:
        m = np.asarray(meta["asset_to_world"], dtype=np.float64)
    except (TypeError, ValueError):
        m = np.zeros(0)
    if m.shape != (4, 4) or not np.isfinite(m).all() or abs(np.linalg.det(m[:3, :3])) < 1e-12:
        raise DataError(f"{path}: asset_to_world must be an invertible 4x4 matrix of numbers")
    return m
