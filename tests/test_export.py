"""export/: atomic writes, the standard 3DGS PLY layout, videos and images, written and read back."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from motion4d.data import DataError
from motion4d.export import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    load_ply,
    rgb_to_sh0,
    save_image,
    save_ply,
    sh0_to_rgb,
    write_video,
)

# --- atomic writes -------------------------------------------------------------------------------------------


def test_atomic_write_creates_parents_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a" / "b" / "report.json"
    atomic_write_text(path, "{}\n")
    assert path.read_text() == "{}\n"
    atomic_write_bytes(path, b"xyz")
    assert path.read_bytes() == b"xyz"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]


def test_atomic_path_keeps_suffix_and_old_file_on_failure(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp != path
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "never.txt"):
            pass  # nothing written: an error, not an empty file
    assert not (tmp_path / "never.txt").exists()


# --- PLY -----------------------------------------------------------------------------------------------------

# The property list of the original 3DGS `construct_list_of_attributes` (gaussian_model.py).
def _reference_attributes(K):
    names = ["x", "y", "z", "nx", "ny", "nz"] + [f"f_dc_{i}" for i in range(3)]
    names += [f"f_rest_{i}" for i in range(3 * (K - 1))] + ["opacity"]
    return names + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)]


def _gaussians(N, K, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(N, 3, generator=g),
        torch.randn(N, 4, generator=g),
        torch.rand(N, 3, generator=g) * 0.5 + 0.01,
        torch.rand(N, generator=g) * 0.98 + 0.01,
        torch.randn(N, K, 3, generator=g),
    )


@pytest.mark.parametrize("K", [1, 4, 16])
def test_ply_layout_matches_3dgs(tmp_path, K):
    means, quats, scales, opacities, sh = _gaussians(7, K)
    save_ply(tmp_path / "g.ply", means, quats, scales, opacities, sh)
    ply = PlyData.read(str(tmp_path / "g.ply"))
    assert not ply.text and ply.byte_order == "<" and [e.name for e in ply.elements] == ["vertex"]
    v = ply["vertex"]
    assert [p.name for p in v.properties] == _reference_attributes(K)
    assert all(v.data.dtype[p.name] == np.dtype("<f4") for p in v.properties)
    d = v.data
    np.testing.assert_allclose(np.stack([d["x"], d["y"], d["z"]], -1), means.numpy())
    assert np.all(d["nx"] == 0)
    np.testing.assert_allclose(d["opacity"], torch.logit(opacities).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d["scale_1"], scales[:, 1].log().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.stack([d[f"rot_{i}"] for i in range(4)], -1), quats.numpy())  # raw wxyz
    np.testing.assert_allclose(d["f_dc_2"], sh[:, 0, 2].numpy())
    if K > 1:  # channel-major: f_rest_{c*(K-1) + j} is coefficient j+1 of channel c
        for c in range(3):
            for j in range(K - 1):
                np.testing.assert_allclose(d[f"f_rest_{c * (K - 1) + j}"], sh[:, j + 1, c].numpy())


def test_ply_round_trip(tmp_path):
    means, quats, scales, opacities, sh = _gaussians(50, 9)
    save_ply(tmp_path / "g.ply", means, quats, scales, opacities, sh)
    out = load_ply(tmp_path / "g.ply")
    assert set(out) == {"means", "quats", "scales", "opacities", "sh"}
    assert all(t.dtype == torch.float32 for t in out.values())
    torch.testing.assert_close(out["means"], means)
    torch.testing.assert_close(out["quats"], torch.nn.functional.normalize(quats, dim=-1))
    torch.testing.assert_close(out["scales"], scales)
    torch.testing.assert_close(out["opacities"], opacities, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out["sh"], sh)


def test_ply_extreme_values_stay_finite(tmp_path):
    means, quats, scales, opacities, sh = _gaussians(3, 1)
    opacities = torch.tensor([0.0, 1.0, 0.5])
    scales = torch.tensor([[0.0, 1.0, 1.0]] * 3)
    save_ply(tmp_path / "g.ply", means, quats, scales, opacities, sh)
    d = PlyData.read(str(tmp_path / "g.ply"))["vertex"].data
    assert np.isfinite(d["opacity"]).all() and np.isfinite(d["scale_0"]).all()


def test_ply_bad_input(tmp_path):
    means, quats, scales, opacities, sh = _gaussians(4, 4)
    with pytest.raises(ValueError, match="quats"):
        save_ply(tmp_path / "g.ply", means, quats[:, :3], scales, opacities, sh)
    with pytest.raises(ValueError, match="sh"):
        save_ply(tmp_path / "g.ply", means, quats, scales, opacities, sh[:, :3])
    with pytest.raises(ValueError, match="opacities"):
        save_ply(tmp_path / "g.ply", means, quats, scales, opacities[:, None], sh)
    assert not list(tmp_path.iterdir())
    # A plain point cloud is not a splat file.
    v = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(v, "vertex")]).write(str(tmp_path / "points.ply"))
    with pytest.raises(DataError, match=r"points\.ply.*missing: f_dc_0"):
        load_ply(tmp_path / "points.ply")
    (tmp_path / "junk.ply").write_bytes(b"ply\nformat nonsense\n")
    with pytest.raises(DataError, match=r"junk\.ply"):
        load_ply(tmp_path / "junk.ply")
    with pytest.raises(DataError, match=r"none\.ply"):
        load_ply(tmp_path / "none.ply")


def test_rgb_sh0_conversion():
    rgb = torch.tensor([[0.5, 0.0, 1.0]])
    sh0 = rgb_to_sh0(rgb)
    torch.testing.assert_close(sh0, (rgb - 0.5) / 0.28209479177387814)
    torch.testing.assert_close(sh0_to_rgb(sh0), rgb)


# --- video and images ----------------------------------------------------------------------------------------


def test_mp4_pads_odd_sizes_and_round_trips(tmp_path):
    frames = torch.zeros(5, 17, 23, 3)
    frames[..., 0] = torch.linspace(0.1, 0.9, 5)[:, None, None]  # red ramps over time
    frames[..., 2] = 0.5
    write_video(tmp_path / "v.mp4", frames, fps=10)
    back = iio.imread(tmp_path / "v.mp4")
    assert back.shape == (5, 18, 24, 3)
    red = back[:, 4:12, 4:16, 0].mean((1, 2)) / 255.0
    np.testing.assert_allclose(red, np.linspace(0.1, 0.9, 5), atol=0.04)
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_gif_and_uint8_frames(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 8, 10, 3), dtype=np.uint8)
    write_video(tmp_path / "v.gif", frames, fps=20)
    back = iio.imread(tmp_path / "v.gif")
    assert back.shape[:3] == (3, 8, 10)
    assert iio.immeta(tmp_path / "v.gif")["duration"] == 50


def test_video_errors(tmp_path):
    with pytest.raises(ValueError, match=r"v\.avi.*\.mp4 or \.gif"):
        write_video(tmp_path / "v.avi", torch.zeros(2, 4, 4, 3))
    with pytest.raises(ValueError, match=r"\[T,H,W,3\]"):
        write_video(tmp_path / "v.mp4", torch.zeros(4, 4, 3))
    with pytest.raises(ValueError, match="T, H, W >= 1"):
        write_video(tmp_path / "v.mp4", torch.zeros(0, 4, 4, 3))
    assert not list(tmp_path.iterdir())


def test_save_image(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, size=(5, 7, 4), dtype=np.uint8)
    save_image(tmp_path / "a.png", rgba)
    np.testing.assert_array_equal(iio.imread(tmp_path / "a.png"), rgba)
    img = torch.tensor([[[0.0, 0.5, 1.0], [2.0, -1.0, 0.2]]])
    save_image(tmp_path / "b.png", img)
    np.testing.assert_array_equal(iio.imread(tmp_path / "b.png"), [[[0, 128, 255], [255, 0, 51]]])
    with pytest.raises(ValueError, match=r"c\.jpg"):
        save_image(tmp_path / "c.jpg", img)
