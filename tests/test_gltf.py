"""glTF in and out: animation sampling, morph targets, node animation, skinning round trips, materials,
OBJ / PLY meshes and bad files."""

import json
import math
import struct

import numpy as np
import pygltflib
import pytest

from motion4d.data.assets import load_asset
from motion4d.data.errors import DataError
from motion4d.data.gltf import load_gltf, quat_xyzw_to_matrix, sample_channel
from motion4d.data.mesh import Material, Mesh
from motion4d.export.gltf import write_skinned_glb, write_static_glb


# ---- samplers ------------------------------------------------------------------------------------
def test_sample_channel_step_linear_cubic():
    times = np.array([0.0, 1.0, 3.0])
    values = np.array([[0.0], [2.0], [6.0]])
    assert sample_channel(times, values, "LINEAR", 0.5)[0] == pytest.approx(1.0)
    assert sample_channel(times, values, "LINEAR", 2.0)[0] == pytest.approx(4.0)
    assert sample_channel(times, values, "STEP", 2.9)[0] == pytest.approx(2.0)
    assert sample_channel(times, values, "LINEAR", -1.0)[0] == 0.0 and sample_channel(times, values, "LINEAR", 9.0)[0] == 6.0
    # cubic Hermite on [0,1] with p0=0, p1=1, out-tangent of key 0 = 0, in-tangent of key 1 = 0: smoothstep
    cubic = np.array([[[0.0], [0.0], [0.0]], [[0.0], [1.0], [0.0]]])
    for a in (0.25, 0.5, 0.8):
        assert sample_channel(np.array([0.0, 1.0]), cubic, "CUBICSPLINE", a)[0] == pytest.approx(3 * a * a - 2 * a**3)
    # tangents scale with the keyframe interval: p(t) = t on [0,2] with slopes 1
    lin = np.array([[[1.0], [0.0], [1.0]], [[1.0], [2.0], [1.0]]])
    assert sample_channel(np.array([0.0, 2.0]), lin, "CUBICSPLINE", 0.5)[0] == pytest.approx(0.5)


def test_rotation_slerp_takes_the_short_way():
    q0 = np.array([0.0, 0.0, 0.0, 1.0])
    q1 = np.array([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)])  # 90° about z
    half = sample_channel(np.array([0.0, 1.0]), np.stack([q0, -q1]), "LINEAR", 0.5, rotation=True)
    R = quat_xyzw_to_matrix(half)
    assert np.allclose(R @ [1, 0, 0], [math.cos(math.pi / 4), math.sin(math.pi / 4), 0], atol=1e-9)


# ---- hand-built glTF: morph target + node TRS animation -----------------------------------------
def _blob_accessor(g, blob: bytearray, array: np.ndarray, type_: str, minmax=False) -> int:
    while len(blob) % 4:
        blob.append(0)
    data = np.ascontiguousarray(array, dtype=np.float32 if array.dtype.kind == "f" else np.uint16).tobytes()
    g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(data)))
    blob.extend(data)
    comp = 5126 if array.dtype.kind == "f" else 5123
    acc = pygltflib.Accessor(bufferView=len(g.bufferViews) - 1, componentType=comp, count=len(array), type=type_)
    if minmax:
        acc.min, acc.max = array.min(0).tolist(), array.max(0).tolist()
    g.accessors.append(acc)
    return len(g.accessors) - 1


def morph_and_node_asset(path, *, external: bool = False):
    """A triangle with one morph target (weights 0 → 1 over 1 s) under a parent node translated 0 → 2 in x
    over 2 s (STEP-less LINEAR), written as .glb (or .gltf + .bin)."""
    g, blob = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0")), bytearray()
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    delta = np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=np.float32)
    p_acc = _blob_accessor(g, blob, pos, "VEC3", minmax=True)
    d_acc = _blob_accessor(g, blob, delta, "VEC3", minmax=True)
    i_acc = _blob_accessor(g, blob, np.array([0, 1, 2], dtype=np.uint16), "SCALAR")
    prim = pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=p_acc), indices=i_acc, targets=[{"POSITION": d_acc}])
    g.meshes.append(pygltflib.Mesh(primitives=[prim], weights=[0.0]))
    g.nodes.append(pygltflib.Node(children=[1], translation=[0.0, 0.0, 0.0]))
    g.nodes.append(pygltflib.Node(mesh=0, scale=[2.0, 2.0, 2.0]))
    g.scenes.append(pygltflib.Scene(nodes=[0]))
    g.scene = 0
    t1 = _blob_accessor(g, blob, np.array([[0.0], [1.0]], dtype=np.float32), "SCALAR", minmax=True)
    w1 = _blob_accessor(g, blob, np.array([[0.0], [1.0]], dtype=np.float32), "SCALAR")
    t2 = _blob_accessor(g, blob, np.array([[0.0], [2.0]], dtype=np.float32), "SCALAR", minmax=True)
    tr = _blob_accessor(g, blob, np.array([[0, 0, 0], [2, 0, 0]], dtype=np.float32), "VEC3")
    # two animations that must play together
    g.animations.append(pygltflib.Animation(samplers=[pygltflib.AnimationSampler(input=t1, output=w1)],
                                            channels=[pygltflib.AnimationChannel(sampler=0, target=pygltflib.AnimationChannelTarget(node=1, path="weights"))]))  # fmt: skip
    g.animations.append(pygltflib.Animation(samplers=[pygltflib.AnimationSampler(input=t2, output=tr)],
                                            channels=[pygltflib.AnimationChannel(sampler=0, target=pygltflib.AnimationChannelTarget(node=0, path="translation"))]))  # fmt: skip
    while len(blob) % 4:
        blob.append(0)
    if external:
        (path.parent / "data.bin").write_bytes(bytes(blob))
        g.buffers.append(pygltflib.Buffer(byteLength=len(blob), uri="data.bin"))
        g.save_json(str(path))
    else:
        g.buffers.append(pygltflib.Buffer(byteLength=len(blob)))
        g.set_binary_blob(bytes(blob))
        g.save_binary(str(path))
    return path


@pytest.mark.parametrize("name,external", [("a.glb", False), ("a.gltf", True)])
def test_morph_targets_and_node_animation_play_together(tmp_path, name, external):
    asset = load_gltf(morph_and_node_asset(tmp_path / name, external=external))
    assert asset.duration == pytest.approx(2.0) and asset.num_animations == 2
    rest = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0]], dtype=np.float32)
    assert np.allclose(asset.mesh.vertices, rest)
    v = asset.vertices_at(0.5)  # weight 0.5 → first vertex z = 0.5·2 (node scale 2); parent x = 0.5
    assert np.allclose(v, rest + [[0.5, 0, 1.0], [0.5, 0, 0], [0.5, 0, 0]], atol=1e-6)
    both = asset.vertices_at(np.array([1.5, 5.0]))  # weights clamp at 1; translation 1.5 then clamps at 2
    assert both.shape == (2, 3, 3)
    assert np.allclose(both[0], rest + [[1.5, 0, 2.0], [1.5, 0, 0], [1.5, 0, 0]], atol=1e-6)
    assert np.allclose(both[1], rest + [[2.0, 0, 2.0], [2.0, 0, 0], [2.0, 0, 0]], atol=1e-6)


# ---- our skinned export, re-read by our evaluator and by independent numpy -------------------------
def strip_mesh(n=6):
    xs = np.linspace(0, 1, n)
    verts = np.array([[x, y, 0.0] for x in xs for y in (0.0, 0.2)], dtype=np.float32)
    faces = []
    for i in range(n - 1):
        a = 2 * i
        faces += [[a, a + 2, a + 1], [a + 1, a + 2, a + 3]]
    uvs = np.stack([verts[:, 0], verts[:, 1] * 5], 1)
    tex = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, -1)
    mats = [Material((1.0, 0.5, 0.5, 1.0), tex, "checker"), Material((0.2, 0.3, 0.9, 1.0), None, "blue")]
    fm = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])[: len(faces)]
    return Mesh(verts, np.array(faces), uvs=uvs, materials=mats, face_materials=fm, name="strip")


def random_rotations(rng, shape):
    q = rng.normal(size=shape + (4,))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return quat_xyzw_to_matrix(q)


def expected_lbs(verts_asset, a2w, nodes, R, d, joints, weights):
    v = verts_asset @ a2w[:3, :3].T + a2w[:3, 3]
    g = nodes[joints]  # [V,k,3]
    moved = np.einsum("vkab,vkb->vka", R[joints], v[:, None] - g) + g + d[joints]
    world = (weights[..., None] * moved).sum(1)
    w2a = np.linalg.inv(a2w)
    return world @ w2a[:3, :3].T + w2a[:3, 3]


def test_skinned_glb_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    mesh = strip_mesh()
    s = 0.8
    a2w = np.array([[s, 0, 0, 0.1], [0, 0, -s, 0.2], [0, s, 0, -0.3], [0, 0, 0, 1]])  # Y-up → Z-up, scaled
    nodes = np.array([[0.0, 0, 0], [0.4, 0, 0.1], [0.8, 0, 0]])
    T = 5
    R = random_rotations(rng, (T, 3))
    R[0] = np.eye(3)
    d = rng.normal(scale=0.1, size=(T, 3, 3))
    d[0] = 0
    joints = rng.integers(0, 3, size=(mesh.num_vertices, 3))
    weights = rng.random((mesh.num_vertices, 3)) + 0.1
    weights /= weights.sum(1, keepdims=True)
    times = np.linspace(0, 1.5, T)
    path = write_skinned_glb(tmp_path / "anim.glb", mesh, nodes, R, d, joints, weights, times, asset_to_world=a2w)

    asset = load_gltf(path)
    assert asset.duration == pytest.approx(1.5)
    # the reader merges per-material primitives: map each re-read vertex back to ours by position at rest
    rest = asset.mesh.vertices
    back = np.array([np.argmin(np.linalg.norm(mesh.vertices - p, axis=1)) for p in rest])
    assert np.allclose(rest, mesh.vertices[back], atol=1e-6)
    for f, t in enumerate(times):
        want = expected_lbs(mesh.vertices.astype(np.float64), a2w, nodes, R[f], d[f], joints, weights)[back]
        assert np.allclose(asset.vertices_at(t), want, atol=1e-5), f
    # between keyframes the joints interpolate, so vertices stay between their keyframe positions' span
    mid = asset.vertices_at(0.5 * (times[1] + times[2]))
    assert np.isfinite(mid).all()
    # materials and the texture survive
    assert [m.name for m in asset.mesh.materials] == ["checker", "blue"]
    assert np.array_equal(asset.mesh.materials[0].texture[..., :3], mesh.materials[0].texture)
    assert asset.mesh.num_faces == mesh.num_faces
    g = pygltflib.GLTF2().load(str(path))
    assert g.asset.version == "2.0" and len(g.skins[0].joints) == 3
    acc = g.accessors[g.meshes[0].primitives[0].attributes.POSITION]
    assert acc.min is not None and acc.max is not None


def test_static_glb_round_trip_and_trimesh_reads_it(tmp_path):
    import trimesh

    mesh = strip_mesh()
    path = write_static_glb(tmp_path / "s.glb", mesh)
    back = load_asset(path).mesh
    assert back.num_faces == mesh.num_faces and len(back.materials) == 2
    # one primitive per material: vertices on the material boundary appear once per primitive
    assert mesh.num_vertices <= back.num_vertices <= mesh.num_vertices + 4
    assert {tuple(p) for p in back.vertices.round(6)} == {tuple(p) for p in mesh.vertices.round(6)}
    # each face's corners and UVs are kept
    got = {tuple(np.round(back.vertices[f].ravel(), 6)) for f in back.faces}
    assert got == {tuple(np.round(mesh.vertices[f].ravel(), 6)) for f in mesh.faces}
    loaded = trimesh.load(str(path), force="mesh")
    assert len(loaded.faces) == mesh.num_faces


def test_skin_argument_errors(tmp_path):
    mesh = strip_mesh()
    v = mesh.num_vertices
    ok = dict(node_positions=np.zeros((2, 3)), rotations=np.tile(np.eye(3), (2, 2, 1, 1)), translations=np.zeros((2, 2, 3)),
              joints=np.zeros((v, 2), dtype=int), weights=np.ones((v, 2)), times_s=np.array([0.0, 1.0]))  # fmt: skip
    write_skinned_glb(tmp_path / "ok.glb", mesh, **ok)
    for key, bad, msg in [
        ("rotations", np.tile(np.eye(3), (3, 2, 1, 1)), "rotations"),
        ("weights", np.zeros((v, 2)), "weights"),
        ("times_s", np.array([1.0, 0.0]), "times_s"),
        ("joints", np.full((v, 2), 5), "joints"),
    ]:
        with pytest.raises(ValueError, match=msg):
            write_skinned_glb(tmp_path / "bad.glb", mesh, **{**ok, key: bad})


# ---- other formats and bad files ------------------------------------------------------------------
def test_obj_with_mtl_and_texture(tmp_path):
    import imageio.v3 as iio

    tex = np.zeros((4, 4, 3), dtype=np.uint8)
    tex[:, :, 0] = 200
    iio.imwrite(tmp_path / "tex.png", tex)
    (tmp_path / "m.mtl").write_text("newmtl red\nKd 1.0 1.0 1.0\nmap_Kd tex.png\n")
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl red\nf 1/1 2/2 3/3\n")
    mesh = load_asset(tmp_path / "m.obj")
    assert mesh.num_faces == 1 and mesh.uvs is not None
    assert mesh.materials[0].texture is not None and mesh.materials[0].texture[0, 0, 0] == 200
    rgb = mesh.colors_at(np.array([0]), np.array([[1 / 3, 1 / 3, 1 / 3]]))
    assert rgb[0, 0] > 0.7 and rgb[0, 1] < 0.05


def test_mesh_ply_and_splat_ply(tmp_path):
    from plyfile import PlyData, PlyElement

    v = np.array([(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    f = np.array([([0, 1, 3, 2],)], dtype=[("vertex_indices", "i4", (4,))])
    PlyData([PlyElement.describe(v, "vertex"), PlyElement.describe(f, "face")]).write(str(tmp_path / "quad.ply"))
    assert load_asset(tmp_path / "quad.ply").num_faces == 2  # the quad is fan-triangulated
    splat = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("f_dc_0", "f4"), ("opacity", "f4")])
    PlyData([PlyElement.describe(splat, "vertex")]).write(str(tmp_path / "splat.ply"))
    with pytest.raises(DataError, match="splat.ply: a 3D Gaussian splat PLY"):
        load_asset(tmp_path / "splat.ply")


def test_bad_files_name_the_file(tmp_path):
    good = morph_and_node_asset(tmp_path / "good.glb").read_bytes()
    (tmp_path / "trunc.glb").write_bytes(good[: len(good) // 2])
    header = struct.pack("<III", 0x46546C67, 2, 12 + 8 + 5) + struct.pack("<II", 5, 0x4E4F534A) + b"{oops"
    (tmp_path / "badjson.glb").write_bytes(header)
    meta = json.loads(pygltflib.GLTF2().load(str(tmp_path / "good.glb")).to_json())
    meta["buffers"][0]["uri"] = "../outside.bin"
    (tmp_path / "escape.gltf").write_text(json.dumps(meta))
    (tmp_path / "empty.obj").write_text("v 0 0 0\nv 1 0 0\n")
    (tmp_path / "x.fbx").write_text("")
    for name, msg in [("trunc.glb", None), ("badjson.glb", None), ("escape.gltf", "outside"), ("empty.obj", "no faces"),
                      ("x.fbx", "unknown asset type"), ("missing.glb", "no such file")]:  # fmt: skip
        with pytest.raises(DataError, match=msg) as e:
            load_asset(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and "\n" not in str(e.value)


def test_too_many_faces_is_refused(tmp_path):
    path = write_static_glb(tmp_path / "s.glb", strip_mesh())
    with pytest.raises(DataError, match="decimate"):
        load_asset(path, max_faces=3)
