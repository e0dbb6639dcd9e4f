"""data/: transforms*.json loading (Blender / D-NeRF / nerfstudio), its errors, scene bounds, point clouds
and the analytic demo scene, on tiny datasets the tests write themselves."""

import json
import math
import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from motion4d.data import (
    DataError,
    available_splits,
    load_points_ply,
    load_transforms,
    make_demo_scene,
    scene_bounds,
)
from motion4d.data.synthetic import DEMO_OBJECTS
from motion4d.render.cameras import camera_centers, look_at, viewmat_to_opengl_c2w

ANGLE_X = 0.7


def _c2w(i: int) -> list:
    """A Blender camera→world matrix (OpenGL axes) on a circle, looking at the origin."""
    az = 0.6 * i
    eye = torch.tensor([3.0 * math.cos(az), 3.0 * math.sin(az), 1.0 + 0.1 * i])
    return viewmat_to_opengl_c2w(look_at(eye, torch.zeros(3)).double()).tolist()


def _rgba(i: int, w: int = 8, h: int = 6) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)


def _blender(root, split="train", n=3, *, w=8, h=6, channels=4, ext=".png", with_ext=False, extra=None, meta=None):
    """Write a Blender-format split with ``n`` random images; returns the list of uint8 arrays written."""
    (root / split).mkdir(parents=True, exist_ok=True)
    arrays, frames = [], []
    for i in range(n):
        a = _rgba(i, w, h)[..., :channels]
        iio.imwrite(root / split / f"r_{i}{ext}", a)
        arrays.append(a)
        frame = {"file_path": f"./{split}/r_{i}" + (ext if with_ext else ""), "transform_matrix": _c2w(i)}
        frame.update((extra or {}).get(i, {}))
        frames.append(frame)
    data = {"camera_angle_x": ANGLE_X, "frames": frames, **(meta or {})}
    (root / f"transforms_{split}.json").write_text(json.dumps(data))
    return arrays


def test_blender_rgba_composite_cameras_and_names(tmp_path):
    arrays = _blender(tmp_path, n=3)
    bg = (0.2, 0.4, 0.6)
    s = load_transforms(tmp_path, "train", background=bg)
    assert s.images.shape == (3, 6, 8, 3) and s.alphas.shape == (3, 6, 8, 1) and len(s) == 3
    assert s.images.dtype == torch.float32 and (s.width, s.height) == (8, 6) and s.background == bg
    a = arrays[1].astype(np.float64) / 255.0
    expected = a[..., :3] * a[..., 3:] + np.array(bg) * (1 - a[..., 3:])
    np.testing.assert_allclose(s.images[1].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(s.alphas[1, ..., 0].numpy(), a[..., 3], atol=1e-6)
    assert s.names == ["train/r_0.png", "train/r_1.png", "train/r_2.png"]
    assert s.times is None and s.views is None
    fx = 0.5 * 8 / math.tan(ANGLE_X / 2)
    np.testing.assert_allclose(s.Ks[0].numpy(), [[fx, 0, 4], [0, fx, 3], [0, 0, 1]], rtol=1e-6)
    # viewmats: world→camera in OpenCV axes. Camera centre = c2w translation; +z looks along −z_gl.
    c2w = torch.tensor([_c2w(i) for i in range(3)])
    np.testing.assert_allclose(camera_centers(s.viewmats.double()).numpy(), c2w[:, :3, 3].numpy(), atol=1e-5)
    np.testing.assert_allclose(s.viewmats[:, 2, :3].numpy(), -c2w[:, :3, 2].numpy(), atol=1e-6)
    np.testing.assert_allclose(s.viewmats[:, 1, :3].numpy(), -c2w[:, :3, 1].numpy(), atol=1e-6)


def test_rgb_images_are_used_as_is_and_16_bit_and_extensions(tmp_path):
    arrays = _blender(tmp_path, n=2, channels=3, with_ext=True)
    s = load_transforms(tmp_path, background=(0.0, 0.0, 0.0))
    assert s.alphas is None
    np.testing.assert_allclose(s.images[0].numpy(), arrays[0] / 255.0, atol=1e-6)
    deep = np.random.default_rng(0).integers(0, 65536, size=(6, 8), dtype=np.uint16)  # 16-bit grey
    iio.imwrite(tmp_path / "train" / "r_1.png", deep)
    s = load_transforms(tmp_path)
    np.testing.assert_allclose(s.images[1].numpy(), np.repeat(deep[..., None] / 65535.0, 3, -1), atol=1e-6)


def test_downscale_averages_blocks_and_scales_intrinsics(tmp_path):
    _blender(tmp_path, n=2, w=9, h=6)
    full = load_transforms(tmp_path, background=(1.0, 1.0, 1.0))
    half = load_transforms(tmp_path, background=(1.0, 1.0, 1.0), downscale=2)
    assert half.images.shape == (2, 3, 4, 3) and (half.width, half.height) == (4, 3)
    blocks = full.images[:, :6, :8].reshape(2, 3, 2, 4, 2, 3).mean((2, 4))  # crop to 8 wide, 2x2 means
    np.testing.assert_allclose(half.images.numpy(), blocks.numpy(), atol=1e-6)
    np.testing.assert_allclose(half.alphas.numpy(), full.alphas[:, :6, :8].reshape(2, 3, 2, 4, 2, 1).mean((2, 4)).numpy(), atol=1e-6)
    np.testing.assert_allclose(half.Ks[:, :2].numpy(), full.Ks[:, :2].numpy() / 2, rtol=1e-6)
    torch.testing.assert_close(half.viewmats, full.viewmats)


def test_time_selection_views_and_max_images(tmp_path):
    times = [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]
    extra = {i: {"time": t, "view": i // 3} for i, t in enumerate(times)}
    _blender(tmp_path, n=6, extra=extra)
    s = load_transforms(tmp_path)
    torch.testing.assert_close(s.times, torch.tensor(times))
    assert s.views.tolist() == [0, 0, 0, 1, 1, 1]
    snap = load_transforms(tmp_path, time=0.4)
    assert snap.names == ["train/r_1.png", "train/r_4.png"] and snap.times.tolist() == [0.5, 0.5]
    few = load_transforms(tmp_path, max_images=3)
    assert few.names == ["train/r_0.png", "train/r_2.png", "train/r_5.png"]  # evenly spaced, ends included


def test_available_splits_order(tmp_path):
    assert available_splits(tmp_path) == []
    for split in ("test", "train", "val", "extra"):
        _blender(tmp_path, split, n=1)
    assert available_splits(tmp_path) == ["train", "val", "test", "extra"]


def _nerfstudio(root, n=10, lists=None, **top):
    (root / "images").mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(n):
        iio.imwrite(root / "images" / f"frame_{i:03d}.png", _rgba(i, 8, 6)[..., :3])
        frames.append({"file_path": f"images/frame_{i:03d}.png", "transform_matrix": _c2w(i)})
    frames.reverse()  # the split must not depend on the file's frame order
    meta = {"fl_x": 10.0, "fl_y": 11.0, "cx": 4.5, "cy": 2.5, "w": 8, "h": 6, "frames": frames, **top}
    meta.update(lists or {})
    (root / "transforms.json").write_text(json.dumps(meta))


def test_nerfstudio_every_eighth_frame_is_test(tmp_path):
    _nerfstudio(tmp_path, n=10)
    assert available_splits(tmp_path) == ["train", "test"]
    test = load_transforms(tmp_path, "test")
    train = load_transforms(tmp_path, "train")
    assert test.names == ["images/frame_000.png", "images/frame_008.png"]
    assert len(train) == 8 and not set(train.names) & set(test.names)
    np.testing.assert_allclose(train.Ks[0].numpy(), [[10, 0, 4.5], [0, 11, 2.5], [0, 0, 1]])
    with pytest.raises(DataError, match="transforms.json"):
        load_transforms(tmp_path, "val")


def test_nerfstudio_split_lists_and_intrinsics_rescaled_to_image(tmp_path):
    lists = {"val_filenames": ["./images/frame_003.png"], "test_filenames": ["images/frame_001.png", "images/frame_002.png"]}
    _nerfstudio(tmp_path, n=5, lists=lists, w=16, h=12)  # intrinsics given for 16x12, images are 8x6
    assert available_splits(tmp_path) == ["train", "val", "test"]
    assert load_transforms(tmp_path, "val").names == ["images/frame_003.png"]
    assert load_transforms(tmp_path, "test").names == ["images/frame_001.png", "images/frame_002.png"]
    train = load_transforms(tmp_path, "train")
    assert train.names == ["images/frame_000.png", "images/frame_004.png"]
    np.testing.assert_allclose(train.Ks[0].numpy(), [[5, 0, 2.25], [0, 5.5, 1.25], [0, 0, 1]])


def test_nerfstudio_per_frame_intrinsics_and_point_cloud(tmp_path):
    _nerfstudio(tmp_path, n=2, ply_file_path="sparse.ply")
    meta = json.loads((tmp_path / "transforms.json").read_text())
    meta["frames"][0]["fl_x"] = 20.0  # frame_001 after the reversal
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    _write_ply(tmp_path / "sparse.ply", np.zeros((3, 3)))
    s = load_transforms(tmp_path, "train")
    assert s.names == ["images/frame_001.png"] and float(s.Ks[0, 0, 0]) == 20.0
    assert s.points_path == (tmp_path / "sparse.ply").resolve()


# --- errors: each a DataError whose one-line message names the offending file -------------------------


def _raises(fn, *names):
    with pytest.raises(DataError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    for name in names:
        assert str(name) in msg, (name, msg)
    return msg


def test_error_missing_folder_and_json(tmp_path):
    _raises(lambda: load_transforms(tmp_path / "nope"), tmp_path / "nope")
    _blender(tmp_path, "train", n=1)
    msg = _raises(lambda: load_transforms(tmp_path, "test"), "transforms_test.json")
    assert "train" in msg  # lists the splits that exist


def test_error_invalid_json(tmp_path):
    (tmp_path / "transforms_train.json").write_text('{"camera_angle_x": 0.7, "frames": [')
    _raises(lambda: load_transforms(tmp_path), "transforms_train.json", "invalid JSON")
    (tmp_path / "transforms_train.json").write_text('{"camera_angle_x": 0.7}')
    _raises(lambda: load_transforms(tmp_path), "transforms_train.json", "frames")


def test_error_missing_and_corrupt_images(tmp_path):
    _blender(tmp_path, n=2)
    (tmp_path / "train" / "r_1.png").unlink()
    _raises(lambda: load_transforms(tmp_path), "r_1", "image not found")
    (tmp_path / "train" / "r_1.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    _raises(lambda: load_transforms(tmp_path), "r_1.png", "cannot read image")


def test_error_mismatched_sizes(tmp_path):
    _blender(tmp_path, n=2)
    iio.imwrite(tmp_path / "train" / "r_1.png", _rgba(1, 9, 6))
    _raises(lambda: load_transforms(tmp_path), "r_1.png", "9x6", "8x6")


def test_error_empty_split(tmp_path):
    (tmp_path / "transforms_val.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": []}))
    _raises(lambda: load_transforms(tmp_path, "val"), "transforms_val.json", "no frames")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "train/../../outside"])
def test_error_file_path_escaping_the_dataset(tmp_path, bad):
    root = tmp_path / "ds"
    _blender(root, n=1)
    iio.imwrite(tmp_path / "outside.png", _rgba(0))  # exists, so only the containment check can refuse it
    meta = json.loads((root / "transforms_train.json").read_text())
    meta["frames"][0]["file_path"] = bad
    (root / "transforms_train.json").write_text(json.dumps(meta))
    _raises(lambda: load_transforms(root), "transforms_train.json", "escapes")


def test_error_symlink_escaping_the_dataset(tmp_path):
    root = tmp_path / "ds"
    _blender(root, n=1)
    iio.imwrite(tmp_path / "secret.png", _rgba(0))
    (root / "train" / "r_0.png").unlink()
    os.symlink(tmp_path / "secret.png", root / "train" / "r_0.png")
    _raises(lambda: load_transforms(root), "transforms_train.json", "escapes")


def test_error_missing_intrinsics_and_bad_matrix(tmp_path):
    _blender(tmp_path, n=1)
    meta = json.loads((tmp_path / "transforms_train.json").read_text())
    del meta["camera_angle_x"]
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    _raises(lambda: load_transforms(tmp_path), "transforms_train.json", "intrinsics")
    meta["camera_angle_x"] = ANGLE_X
    meta["frames"][0]["transform_matrix"] = [[1, 0], [0, 1]]
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    _raises(lambda: load_transforms(tmp_path), "transforms_train.json", "transform_matrix")


def test_error_bad_arguments(tmp_path):
    _blender(tmp_path, n=1)
    _raises(lambda: load_transforms(tmp_path, downscale=0), "downscale")
    _raises(lambda: load_transforms(tmp_path, downscale=2.0), "downscale")
    _raises(lambda: load_transforms(tmp_path, time=0.5), "transforms_train.json", "time")
    _raises(lambda: load_transforms(tmp_path, background=(1, 1)), "background")


# --- scene bounds and point clouds ------------------------------------------------------------------------


def test_scene_bounds_orbit_and_forward_facing():
    target = torch.tensor([1.0, 2.0, 3.0])
    az = torch.linspace(0, 5.5, 8)
    eyes = target + torch.stack([3 * az.cos(), 3 * az.sin(), 0.5 + 0.2 * az], -1)
    s = type("S", (), {"viewmats": look_at(eyes, target.expand(8, 3))})()
    center, radius = scene_bounds(s)
    torch.testing.assert_close(center, target, atol=1e-4, rtol=0)
    assert radius == pytest.approx(1.1 * float((eyes - target).norm(dim=-1).max()), rel=1e-5)
    # Parallel optical axes: no meeting point; fall back to the mean camera centre.
    eyes = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    s.viewmats = look_at(eyes, eyes + torch.tensor([0.0, 0, -1]), torch.tensor([0.0, 1, 0]).expand(3, 3))
    center, radius = scene_bounds(s)
    torch.testing.assert_close(center, eyes.mean(0))
    assert radius > 0


def _write_ply(path, xyz, rgb=None, names=("x", "y", "z")):
    fields = [(n, "f4") for n in names] + ([(c, "u1") for c in ("red", "green", "blue")] if rgb is not None else [])
    v = np.empty(len(xyz), dtype=fields)
    for i, n in enumerate(names):
        v[n] = xyz[:, i]
    if rgb is not None:
        v["red"], v["green"], v["blue"] = rgb.T
    PlyData([PlyElement.describe(v, "vertex")]).write(str(path))


def test_load_points_ply(tmp_path):
    xyz = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    rgb = np.array([[0, 128, 255]] * 5, dtype=np.uint8)
    _write_ply(tmp_path / "c.ply", xyz, rgb)
    p, c = load_points_ply(tmp_path / "c.ply")
    np.testing.assert_allclose(p.numpy(), xyz)
    np.testing.assert_allclose(c.numpy(), rgb / 255.0, atol=1e-6)
    _write_ply(tmp_path / "g.ply", xyz)
    assert torch.all(load_points_ply(tmp_path / "g.ply")[1] == 0.5)
    _write_ply(tmp_path / "bad.ply", xyz, names=("a", "b", "c"))
    _raises(lambda: load_points_ply(tmp_path / "bad.ply"), "bad.ply", "x, y, z")
    (tmp_path / "junk.ply").write_text("not a ply")
    _raises(lambda: load_points_ply(tmp_path / "junk.ply"), "junk.ply")
    _raises(lambda: load_points_ply(tmp_path / "none.ply"), "none.ply")


# --- the demo scene ------------------------------------------------------------------------------------------


def _first_hit(origin: np.ndarray, target: np.ndarray) -> int:
    """Index of the first demo object hit by the ray from ``origin`` towards ``target`` (independent check)."""
    d = (target - origin) / np.linalg.norm(target - origin)
    best, which = np.inf, -1
    for k, obj in enumerate(DEMO_OBJECTS):
        r = np.array(obj.radii)
        o, dd = (origin - obj.center) / r, d / r
        a, b, c = dd @ dd, o @ dd, o @ o - 1
        disc = b * b - a * c
        if disc >= 0 and (t := (-b - math.sqrt(disc)) / a) > 0 and t < best:
            best, which = t, k
    return which


def test_demo_scene_round_trip(tmp_path):
    root = make_demo_scene(tmp_path / "demo", n_train=6, n_test=3, size=48)
    assert available_splits(root) == ["train", "test"]
    train = load_transforms(root, "train", background=(1.0, 1.0, 1.0))
    test = load_transforms(root, "test")
    assert train.images.shape == (6, 48, 48, 3) and test.images.shape == (3, 48, 48, 3)
    assert train.alphas is not None and float(train.alphas[:, 0, 0].max()) == 0.0  # transparent corners
    assert 0.05 < float(train.alphas.mean()) < 0.6  # an object, not an empty or full frame
    # Test cameras sit at other azimuths than the train cameras.
    d = torch.cdist(camera_centers(test.viewmats), camera_centers(train.viewmats))
    assert float(d.min()) > 0.3
    meta = json.loads((root / "transforms_train.json").read_text())
    checked = 0
    for i in range(len(train)):
        c2w = np.array(meta["frames"][i]["transform_matrix"])
        eye = c2w[:3, 3]
        for k, obj in enumerate(DEMO_OBJECTS):
            if _first_hit(eye, np.array(obj.center)) != k:
                continue  # occluded from this camera
            p = train.Ks[i].double() @ (train.viewmats[i].double() @ torch.tensor([*obj.center, 1.0], dtype=torch.float64))[:3]
            u, v = float(p[0] / p[2]), float(p[1] / p[2])
            # The same pixel by the OpenGL convention straight from the JSON (y up, looking down −z).
            q = np.linalg.inv(c2w) @ np.array([*obj.center, 1.0])
            fx = float(train.Ks[i, 0, 0])
            assert u == pytest.approx(24 + fx * q[0] / -q[2], abs=1e-3) and v == pytest.approx(24 - fx * q[1] / -q[2], abs=1e-3)
            x, y = int(u), int(v)
            corners = [(x + a, y + b) for a in (0.0, 1.0) for b in (0.0, 1.0)]
            rays = [c2w[:3, :3] @ np.array([(cx - 24) / fx, -(cy - 24) / fx, -1.0]) for cx, cy in corners]
            if any(_first_hit(eye, eye + r) != k for r in rays):
                continue  # the pixel straddles an edge
            px = train.images[i, y, x].numpy()
            assert float(train.alphas[i, y, x]) == pytest.approx(1.0)
            albedo = np.array(obj.color)
            cosine = px @ albedo / (np.linalg.norm(px) * np.linalg.norm(albedo))
            assert cosine > 0.99, (i, k, px, albedo)
            checked += 1
    assert checked >= len(train) * 2
