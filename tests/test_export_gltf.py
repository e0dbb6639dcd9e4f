"""The GLB writers read back by our reader (and by trimesh): skinned round trip against independent LBS,
static meshes with materials, argument errors."""

import numpy as np
import pygltflib
import pytest

from motion4d.data.assets import load_asset
from motion4d.data.errors import DataError
from motion4d.data.gltf import load_gltf
from motion4d.data.gltf_anim import quat_xyzw_to_matrix
from motion4d.data.mesh import Material, Mesh
from motion4d.export.gltf import write_skinned_glb, write_static_glb


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
    weights[0, 1], joints[0, 1] = 0.0, 2  # an unused slot that names a joint
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
    # unused joint slots (weight 0) hold joint 0, as the specification asks
    blob = g.binary_blob()

    def read(i, dtype, width):
        a, v = g.accessors[i], g.bufferViews[g.accessors[i].bufferView]
        return np.frombuffer(blob[v.byteOffset : v.byteOffset + v.byteLength], dtype=dtype).reshape(a.count, width)

    attrs = g.meshes[0].primitives[0].attributes
    j_file, w_file = read(attrs.JOINTS_0, np.uint8, 4), read(attrs.WEIGHTS_0, np.float32, 4)
    assert w_file[0, 1] == 0 and not j_file[w_file == 0].any()


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


def test_too_many_faces_is_refused(tmp_path):
    path = write_static_glb(tmp_path / "s.glb", strip_mesh())
    with pytest.raises(DataError, match="decimate"):
        load_asset(path, max_faces=3)
