"""The rigged test characters: deterministic per seed, sound skins, and their GLB files read back by our glTF
evaluator (the one benchmarks/gltf_check.py checks against Blender) as the rig poses them."""

import json

import numpy as np
import pytest

from motion4d.cli import main
from motion4d.data.characters import CLIPS, KINDS, make_character
from motion4d.data.gltf import load_gltf
from motion4d.data.rig import Clip, Skeleton, axis_angle_quat, pose_vertices
from motion4d.data.transforms import read_asset_to_world
from motion4d.pipelines.dataset_characters import split_of, write_character_glb


@pytest.mark.parametrize("seed", range(5))
def test_every_kind_is_deterministic_per_seed_and_soundly_skinned(seed):
    a, b = make_character(seed), make_character(seed)
    assert a.kind == KINDS[seed % 5] and a.name == f"{a.kind}{seed}"
    assert np.array_equal(a.mesh.vertices, b.mesh.vertices) and np.array_equal(a.mesh.faces, b.mesh.faces)
    assert np.array_equal(a.mesh.materials[0].texture, b.mesh.materials[0].texture)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.joints, b.joints)
    assert [c.name for c in a.clips] == list(CLIPS[a.kind])
    for ca, cb in zip(a.clips, b.clips):
        assert np.array_equal(ca.rotations, cb.rotations) and np.array_equal(ca.root_translation, cb.root_translation)
    other = make_character(seed + 5)  # the same kind, other proportions and colours
    assert other.kind == a.kind
    assert other.mesh.num_vertices != a.mesh.num_vertices or not np.allclose(other.mesh.vertices, a.mesh.vertices)
    assert not np.array_equal(other.mesh.materials[0].texture, a.mesh.materials[0].texture)
    # every clip moves the character and loops
    for clip in a.clips:
        posed = pose_vertices(a.mesh.vertices, a.joints, a.weights, a.skeleton, clip)
        motion = np.linalg.norm(posed - a.mesh.vertices, axis=-1).max() / a.mesh.diagonal()
        assert motion > 0.05, (a.name, clip.name, motion)
        assert np.abs(posed[-1] - posed[0]).max() < 1e-6 * a.mesh.diagonal()
    # the skin: rows sum to 1, valid joints, and a vertex's seam duplicates share its weights (no tearing; the
    # machine's rigid parts may touch at a vertex)
    assert np.allclose(a.weights.sum(1), 1.0) and a.joints.max() < a.skeleton.num_joints and (a.weights >= 0).all()
    if a.kind == "machine":
        return
    _, inverse = np.unique(a.mesh.vertices.round(6), axis=0, return_inverse=True)
    dense = np.zeros((a.mesh.num_vertices, a.skeleton.num_joints))
    np.add.at(dense, (np.arange(a.mesh.num_vertices)[:, None], a.joints), a.weights)
    for group in np.unique(inverse.reshape(-1)):
        rows = dense[inverse.reshape(-1) == group]
        assert np.allclose(rows, rows[0], atol=1e-9)


def test_pose_vertices_rotates_a_child_about_its_joint():
    s = Skeleton(["root", "arm"], np.array([-1, 0]), np.array([[0.0, 0, 0], [1.0, 0, 0]]))
    q = np.zeros((2, 2, 4))
    q[..., 3] = 1
    q[1, 1] = axis_angle_quat([0, 0, 1], np.pi / 2)
    clip = Clip("bend", np.array([0.0, 1.0]), q, np.array([[0.0, 0, 0], [0.0, 2, 0]]))
    v = np.array([[2.0, 0, 0], [0.5, 0, 0]])
    posed = pose_vertices(v, np.array([[1], [0]]), np.ones((2, 1)), s, clip)
    assert np.allclose(posed[0], v)
    assert np.allclose(posed[1], [[1.0, 3.0, 0], [0.5, 2.0, 0]])  # about (1,0,0), then the root's lift


@pytest.mark.parametrize("seed", [1000, 1004])
def test_character_glb_round_trips_through_the_gltf_evaluator(tmp_path, seed):
    c = make_character(seed)
    for clip in c.clips:
        asset = load_gltf(write_character_glb(c, clip, tmp_path / f"{c.name}_{clip.name}.glb"))
        assert asset.num_animations == 1 and asset.duration == pytest.approx(clip.duration)
        assert np.abs(asset.mesh.vertices - c.mesh.vertices).max() < 1e-6  # the rest pose is the bind pose
        assert asset.mesh.materials[0].texture is not None and asset.mesh.uvs is not None
        want = pose_vertices(c.mesh.vertices, c.joints, c.weights, c.skeleton, clip)
        assert np.abs(asset.vertices_at(clip.times) - want).max() < 1e-5 * c.mesh.diagonal()
        # Blender plays only a file's first animation: here that is all of it
        t = np.linspace(0, clip.duration, 7)
        assert np.array_equal(asset.vertices_at(t, animations=[0]), asset.vertices_at(t))


def test_dataset_characters_cli(tmp_path, capsys):
    out = tmp_path / "chars"
    argv = ["-q", "--json", "dataset", "characters", "--out", str(out), "--n", "1", "--seed", "3", "--views", "2", "--test-views", "1", "--frames", "3",
            "--res", "16", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["datasets"] == ["bird3_flap"]
    manifest = json.loads((out / "characters.json").read_text())
    assert manifest["datasets"][0]["split"] == "tuning" == split_of(3) and split_of(1000) == "held_out"
    data = out / "multiview" / "bird3_flap"
    assert (data / "transforms_train.json").is_file() and (data / "test" / "v00_f02.png").is_file()
    # gt_vertices: the file evaluated at Blender's frame times (frames / 24 s), as benchmarks/animate.py reads it
    gt, src, a2w = np.load(data / "gt_vertices.npz"), load_gltf(out / "gltf" / "bird3_flap.glb"), read_asset_to_world(data)
    want = src.vertices_at(gt["frames"] / 24.0) @ a2w[:3, :3].T + a2w[:3, 3]
    assert np.allclose(gt["vertices"], want, atol=1e-5)
    assert main(argv) == 0  # again: the rendered dataset is kept


@pytest.mark.parametrize("seed", [0, 4])
def test_a_subdivided_character_is_the_same_character_four_times_denser(tmp_path, seed):
    c, d = make_character(seed), make_character(seed, subdivide=1)
    assert d.mesh.faces.shape[0] == 4 * c.mesh.faces.shape[0] and d.name == c.name
    v = c.mesh.num_vertices
    # the original vertices come first, unmoved and with their own skin; the surface does not move
    assert np.array_equal(d.mesh.vertices[:v], c.mesh.vertices) and np.array_equal(d.mesh.uvs[:v], c.mesh.uvs)
    dense = lambda ch: np.add.at(z := np.zeros((ch.mesh.num_vertices, ch.skeleton.num_joints)), (np.arange(ch.mesh.num_vertices)[:, None], ch.joints), ch.weights) or z  # noqa: E731
    assert np.allclose(dense(d)[:v], dense(c))
    assert np.allclose(d.weights.sum(1), 1.0) and (d.weights >= 0).all() and d.joints.shape[1] == c.joints.shape[1]
    # a midpoint of an edge: the mean of its ends' positions and UVs, its skin the ends' weights blended
    f = c.mesh.faces[0]
    mid = (c.mesh.vertices[f[0]] + c.mesh.vertices[f[1]]) / 2
    k = int(np.argmin(np.linalg.norm(d.mesh.vertices[v:] - mid, axis=1))) + v
    assert np.allclose(d.mesh.vertices[k], mid, atol=1e-6) and np.allclose(d.mesh.uvs[k], (c.mesh.uvs[f[0]] + c.mesh.uvs[f[1]]) / 2, atol=1e-6)
    blend = (dense(c)[f[0]] + dense(c)[f[1]]) / 2
    if (blend > 0).sum() <= c.joints.shape[1]:
        assert np.allclose(dense(d)[k], blend)
    # it animates through the GLB as the rig poses it, and the original vertices move as the original's
    clip = d.clips[0]
    asset = load_gltf(write_character_glb(d, clip, tmp_path / "dense.glb"))
    posed = asset.vertices_at(clip.times)
    assert np.abs(posed - pose_vertices(d.mesh.vertices, d.joints, d.weights, d.skeleton, clip)).max() < 1e-5 * d.mesh.diagonal()
    assert np.abs(posed[:, :v] - pose_vertices(c.mesh.vertices, c.joints, c.weights, c.skeleton, c.clips[0])).max() < 1e-5 * c.mesh.diagonal()
    with pytest.raises(ValueError, match="subdivide"):
        make_character(seed, subdivide=-1)
