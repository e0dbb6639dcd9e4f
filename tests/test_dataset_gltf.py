"""The triangle rasterizer against its dense twin, and ``motion4d dataset from-gltf`` end to end."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from motion4d.cli import main
from motion4d.data.gltf import load_gltf
from motion4d.data.mesh import Material, Mesh
from motion4d.data.transforms import load_transforms, read_asset_to_world
from motion4d.export.gltf import write_skinned_glb
from motion4d.render.cameras import intrinsics_from_fov, look_at
from motion4d.render.mesh_raster import rasterize_triangles, rasterize_triangles_reference


def test_quad_covers_the_expected_pixels_at_its_depth():
    # a square at depth 2 spanning x, y in [-0.5, 0.5]; fx = 20 at 40 px: it covers pixels 15..24
    verts = np.array([[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.5, 0.5, 2.0], [-0.5, 0.5, 2.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    K = np.array([[20.0, 0, 20], [0, 20.0, 20], [0, 0, 1]])
    vb = rasterize_triangles(verts, faces, np.eye(4), K, 40, 40)
    covered = vb.face_ids >= 0
    assert covered[15:25, 15:25].all() and covered.sum() == 100
    assert np.allclose(vb.depth[covered], 2.0, atol=1e-5)
    assert np.allclose(vb.barycentrics[covered].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_dense_reference_on_random_triangles(seed):
    rng = np.random.default_rng(seed)
    verts = rng.uniform(-1, 1, size=(30, 3)) + [0, 0, 4]
    faces = rng.integers(0, 30, size=(20, 3))
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    K = np.array([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]])
    a = rasterize_triangles(verts, faces, np.eye(4), K, 32, 24)
    b = rasterize_triangles_reference(verts, faces, np.eye(4), K, 32, 24)
    same = a.face_ids == b.face_ids
    assert same.mean() > 0.995  # ties on shared edges may go either way
    assert np.allclose(a.depth[same], b.depth[same], atol=1e-5)
    assert np.allclose(a.barycentrics[same], b.barycentrics[same], atol=1e-5)


def test_perspective_correct_barycentrics():
    # a triangle slanted in depth: the interpolated camera-space point must lie on the triangle's plane
    verts = np.array([[-1.0, -1.0, 2.0], [1.0, -1.0, 6.0], [0.0, 1.0, 4.0]])
    K = np.array([[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]])
    vb = rasterize_triangles(verts, np.array([[0, 1, 2]]), np.eye(4), K, 32, 32)
    hit = vb.face_ids >= 0
    p = vb.barycentrics[hit] @ verts  # [n,3] camera-space points
    u = K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2]
    ys, xs = np.nonzero(hit)
    assert np.allclose(u, xs + 0.5, atol=1e-3)
    assert np.allclose(p[:, 2], vb.depth[hit], atol=1e-4)


def animated_strip(path):
    n = 5
    xs = np.linspace(-1, 1, n)
    verts = np.array([[x, y, 0.0] for x in xs for y in (-0.3, 0.3)], dtype=np.float32)
    faces = np.array([f for i in range(n - 1) for f in ([2 * i, 2 * i + 2, 2 * i + 1], [2 * i + 1, 2 * i + 2, 2 * i + 3])])
    tex = np.zeros((2, 2, 3), dtype=np.uint8)
    tex[:, 0] = (255, 0, 0)
    tex[:, 1] = (0, 0, 255)
    mesh = Mesh(verts, faces, uvs=np.stack([(verts[:, 0] + 1) / 2, verts[:, 1] + 0.5], 1), materials=[Material((1, 1, 1, 1), tex, "rb")])
    nodes = np.array([[-1.0, 0, 0], [1.0, 0, 0]])
    R = np.tile(np.eye(3), (2, 2, 1, 1))
    d = np.zeros((2, 2, 3))
    d[1, 1] = [0.0, 0.0, 0.8]  # the right end lifts
    joints = np.tile([0, 1], (len(verts), 1))
    w1 = (verts[:, 0:1] + 1) / 2
    return write_skinned_glb(path, mesh, nodes, R, d, joints, np.concatenate([1 - w1, w1], 1), np.array([0.0, 1.0]))


def test_dataset_from_gltf_cli(tmp_path, capsys):
    asset = animated_strip(tmp_path / "strip.glb")
    out = tmp_path / "data"
    argv = ["-q", "dataset", "from-gltf", str(asset), "--out", str(out), "--views", "3", "--test-views", "1", "--frames", "3", "--res", "24"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 3
    train = load_transforms(out, "train")
    test = load_transforms(out, "test")
    assert len(train) == 9 and len(test) == 3 and train.width == 24
    assert sorted(set(train.times.tolist())) == pytest.approx([0.0, 0.5, 1.0])
    assert train.alphas is not None and float(train.alphas.mean()) > 0.02
    # gt_vertices = the asset's animation mapped by asset_to_world, inside the unit sphere
    gt = np.load(out / "gt_vertices.npz")
    a2w = read_asset_to_world(out)
    src = load_gltf(asset)
    want = src.vertices_at(gt["times"] * src.duration) @ a2w[:3, :3].T + a2w[:3, 3]
    assert np.allclose(gt["vertices"], want, atol=1e-5)
    assert np.linalg.norm(gt["vertices"], axis=-1).max() <= 1.0 + 1e-5
    # the cameras see the object where the vertices project: the centre pixel of each view is covered
    img = iio.imread(out / "train" / "v00_f00.png")
    assert img.shape == (24, 24, 4) and img[..., 3].max() == 255
    # red and blue halves of the texture both show up
    rgb = img[..., :3][img[..., 3] > 200].astype(int)
    assert (rgb[:, 0] > rgb[:, 2] + 50).any() and (rgb[:, 2] > rgb[:, 0] + 50).any()
    # an existing folder is refused; a bad asset names the file
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "bad.glb").write_bytes(b"glTF\x02\x00\x00\x00")
    assert main(["-q", "dataset", "from-gltf", str(tmp_path / "bad.glb"), "--out", str(tmp_path / "d2")]) == 2
    assert "bad.glb" in capsys.readouterr().err
    assert main(["-q", "dataset", "from-gltf", str(asset), "--out", str(tmp_path / "d3"), "--res", "0"]) == 2
    assert "--res" in capsys.readouterr().err


def test_cameras_look_at_the_origin():
    from motion4d.render.cameras import ring_positions

    pos = ring_positions(6, (-10.0, 40.0), 3.0).numpy()
    assert np.allclose(np.linalg.norm(pos, axis=1), 3.0)
    vm = look_at(torch.from_numpy(pos).float(), torch.zeros(6, 3)).numpy()
    K = intrinsics_from_fov(40.0, 32, 32).numpy()
    centre = (vm[:, :3, :3] @ np.zeros(3) + vm[:, :3, 3]) @ K.T
    assert np.allclose(centre[:, :2] / centre[:, 2:], 16.0, atol=1e-3)
