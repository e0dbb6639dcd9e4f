"""glTF reading and animation evaluation against hand-computed values: samplers, node TRS animation,
morph targets, skinning, materials, primitive modes and bad files."""

import base64
import io
import json
import logging
import math
import struct

import imageio.v3 as iio
import numpy as np
import pygltflib
import pytest
from gltf_builder import GltfBuilder

from motion4d.data.errors import DataError
from motion4d.data.gltf import load_gltf
from motion4d.data.gltf_anim import quat_xyzw_to_matrix, sample_channel


# ---- independent 4x4 helpers -----------------------------------------------------------------------
def T(x, y, z):
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def S(x, y, z):
    return np.diag([x, y, z, 1.0])


def Rz(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def Ry(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1.0]])


def quat(axis, deg):
    """xyzw quaternion of a rotation by ``deg`` about a unit ``axis``."""
    h = math.radians(deg) / 2
    return [*(np.asarray(axis, dtype=float) * math.sin(h)), math.cos(h)]


def apply(m, p):
    return p @ m[:3, :3].T + m[:3, 3]


# ---- samplers ----------------------------------------------------------------------------------
def test_sample_channel_step_linear_cubic():
    times = np.array([0.0, 1.0, 3.0])
    values = np.array([[0.0], [2.0], [6.0]])
    assert sample_channel(times, values, "LINEAR", 0.5)[0] == pytest.approx(1.0)
    assert sample_channel(times, values, "LINEAR", 2.0)[0] == pytest.approx(4.0)
    assert sample_channel(times, values, "STEP", 2.9)[0] == 2.0 and sample_channel(times, values, "STEP", 1.0)[0] == 2.0
    assert sample_channel(times, values, "STEP", 0.99)[0] == 0.0 and sample_channel(times, values, "STEP", 3.0)[0] == 6.0
    got = sample_channel(times, values, "LINEAR", np.array([-1.0, 0.0, 2.5, 9.0]))  # clamped outside the keys
    assert got.shape == (4, 1) and np.allclose(got[:, 0], [0.0, 0.0, 5.0, 6.0])
    # cubic Hermite on [0,1], p0=0, p1=1, out-tangent of key 0 = in-tangent of key 1 = 0: smoothstep
    cubic = np.array([[[9.0], [0.0], [0.0]], [[0.0], [1.0], [9.0]]])  # the 9s are never used
    for a in (0.25, 0.5, 0.8):
        assert sample_channel(np.array([0.0, 1.0]), cubic, "CUBICSPLINE", a)[0] == pytest.approx(3 * a * a - 2 * a**3)
    # tangents are per second, scaled by the keyframe interval: p(t) = t on [0,2] with slopes 1
    lin = np.array([[[1.0], [0.0], [1.0]], [[1.0], [2.0], [1.0]]])
    assert sample_channel(np.array([0.0, 2.0]), lin, "CUBICSPLINE", 0.5)[0] == pytest.approx(0.5)
    # p(t) = t² on [0,1]: p0=0, m0=0, p1=1, m1=2 → exact
    sq = np.array([[[0.0], [0.0], [0.0]], [[2.0], [1.0], [0.0]]])
    assert sample_channel(np.array([0.0, 1.0]), sq, "CUBICSPLINE", 0.3)[0] == pytest.approx(0.09)


def test_rotation_slerp_angle_and_short_way():
    q0 = np.array([0.0, 0.0, 0.0, 1.0])
    q1 = np.array(quat([0, 0, 1], 90))
    for a, flip in ((0.5, 1), (0.25, -1)):  # -q1 is the same rotation: slerp must take the short way
        q = sample_channel(np.array([0.0, 1.0]), np.stack([q0, flip * q1]), "LINEAR", a, "rotation")
        assert np.allclose(quat_xyzw_to_matrix(q), Rz(90 * a)[:3, :3], atol=1e-12)
    near = sample_channel(np.array([0.0, 1.0]), np.stack([q0, quat([0, 0, 1], 0.01)]), "LINEAR", 0.5, "rotation")
    assert np.allclose(quat_xyzw_to_matrix(near), Rz(0.005)[:3, :3], atol=1e-9)
    with pytest.raises(ValueError, match="interpolation"):
        sample_channel(np.array([0.0]), np.zeros((1, 3)), "BEZIER", 0.0)


# ---- node-animated box: STEP translation, LINEAR rotation, CUBICSPLINE scale -------------------
BOX = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=np.float32)
BOX_FACES = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]


def box_asset(path):
    b = GltfBuilder()
    box = b.node(mesh=b.mesh(BOX, BOX_FACES), scale=[1.0, 1.0, 1.0])
    parent = b.node(children=[box], matrix=T(0, 0, 1).T.reshape(-1).tolist())  # column-major, not animated
    cubic = np.array([[[0, 0, 0], [1, 1, 1], [0, 0, 0]], [[0, 0, 0], [2, 1, 1], [0, 0, 0]]], dtype=float)
    b.animation([
        (box, "translation", [0.0, 1.0, 2.0], [[0, 0, 0], [1, 0, 0], [2, 0, 0]], "STEP"),
        (box, "rotation", [0.0, 2.0], [quat([0, 1, 0], 0), quat([0, 1, 0], 90)], "LINEAR"),
        (box, "scale", [0.0, 2.0], cubic, "CUBICSPLINE"),
    ])  # fmt: skip
    return b.save(path, [parent])


def expected_box(t):
    tc = min(max(t, 0.0), 2.0)
    step = 0.0 if tc < 1 else (1.0 if tc < 2 else 2.0)
    a = tc / 2
    sx = 1 + 3 * a * a - 2 * a**3
    return apply(T(0, 0, 1) @ T(step, 0, 0) @ Ry(90 * a) @ S(sx, 1, 1), BOX.astype(float))


@pytest.mark.parametrize("name", ["box.glb", "box.gltf"])
def test_node_animation_box(tmp_path, name):
    asset = load_gltf(box_asset(tmp_path / name))
    assert asset.duration == pytest.approx(2.0) and asset.num_animations == 1
    assert asset.mesh.num_faces == 12 and np.allclose(asset.mesh.vertices, expected_box(0.0), atol=1e-6)
    times = np.array([-1.0, 0.0, 0.5, 1.0, 1.5, 1.99, 2.0, 5.0])
    got = asset.vertices_at(times)
    assert got.shape == (len(times), 8, 3)
    for t, v in zip(times, got):
        assert np.allclose(v, expected_box(t), atol=1e-5), t
    assert np.allclose(asset.vertices_at(1.5), got[4])
    world = asset.node_world_matrices(0.5)
    assert world.shape == (2, 4, 4) and np.allclose(world[0], T(0, 0, 1) @ Ry(22.5) @ S(1.15625, 1, 1))


# ---- morph-target triangle under a translated parent, two animations playing together ----------
def morph_asset(path):
    b = GltfBuilder()
    delta = b.accessor(np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]]), "VEC3")
    tri = b.node(mesh=b.mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]]), [0, 1, 2], targets=[{"POSITION": delta}], weights=[0.0]),
                 scale=[2.0, 2.0, 2.0])  # fmt: skip
    parent = b.node(children=[tri])
    b.animation([(tri, "weights", [0.0, 1.0], [[0.0], [1.0]], "LINEAR")])
    b.animation([(parent, "translation", [0.0, 2.0], [[0, 0, 0], [2, 0, 0]], "LINEAR")])
    return b.save(path, [parent])


@pytest.mark.parametrize("name", ["m.glb", "m.gltf"])
def test_morph_targets_and_two_animations_play_together(tmp_path, name):
    asset = load_gltf(morph_asset(tmp_path / name))
    assert asset.duration == pytest.approx(2.0) and asset.num_animations == 2
    rest = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0]], dtype=np.float32)
    assert np.allclose(asset.mesh.vertices, rest)
    v = asset.vertices_at(0.5)  # weight 0.5 → first vertex z = 0.5·2 (node scale 2); parent x = 0.5
    assert np.allclose(v, rest + [[0.5, 0, 1.0], [0.5, 0, 0], [0.5, 0, 0]], atol=1e-6)
    both = asset.vertices_at(np.array([1.5, 5.0]))  # weights clamp at 1; translation 1.5 then clamps at 2
    assert np.allclose(both[0], rest + [[1.5, 0, 2.0], [1.5, 0, 0], [1.5, 0, 0]], atol=1e-6)
    assert np.allclose(both[1], rest + [[2.0, 0, 2.0], [2.0, 0, 0], [2.0, 0, 0]], atol=1e-6)
    only_morph = asset.vertices_at(1.5, animations=[0])
    assert np.allclose(only_morph, rest + [[0, 0, 2.0], [0, 0, 0], [0, 0, 0]], atol=1e-6)


def test_alternative_animations_of_the_same_property_play_one_by_default(tmp_path):
    """Two clips driving the same weights are alternatives (MorphStressTest's kind): by default only the
    first plays, with the duration its own; a third on another property still plays with it."""
    b = GltfBuilder()
    delta = b.accessor(np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]]), "VEC3")
    tri = b.node(mesh=b.mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]]), [0, 1, 2], targets=[{"POSITION": delta}], weights=[0.0]))
    parent = b.node(children=[tri])
    b.animation([(tri, "weights", [0.0, 1.0], [[0.0], [1.0]], "LINEAR")])
    b.animation([(tri, "weights", [0.0, 4.0], [[1.0], [0.0]], "LINEAR")])  # the same weights, another take
    b.animation([(parent, "translation", [0.0, 2.0], [[0, 0, 0], [2, 0, 0]], "LINEAR")])
    asset = load_gltf(b.save(tmp_path / "alt.glb", [parent]))
    assert asset.num_animations == 3 and asset.default_animations == [0, 2] and asset.duration == pytest.approx(2.0)
    assert np.allclose(asset.vertices_at(0.5)[0], [0.5, 0, 0.5], atol=1e-6)
    assert np.allclose(asset.vertices_at(1.0, animations=[1])[0], [0, 0, 0.75], atol=1e-6)


def test_node_morph_weights_override_the_mesh_defaults(tmp_path):
    path = morph_asset(tmp_path / "m.gltf")
    meta = json.loads(path.read_text())
    meta["nodes"][0]["weights"] = [0.25]  # pygltflib cannot write this: edit the JSON
    meta["animations"] = []
    path.write_text(json.dumps(meta))
    asset = load_gltf(path)
    assert asset.duration == 0.0 and np.allclose(asset.vertices_at(3.0)[0], [0, 0, 0.5]) and np.allclose(asset.mesh.vertices[0], [0, 0, 0.5])


# ---- 2-joint skinned strip ----------------------------------------------------------------------
STRIP = np.array([[x, y, 0.0] for x in np.linspace(0, 2, 5) for y in (0.0, 0.2)])
STRIP_FACES = [[2 * i, 2 * i + 2, 2 * i + 1] for i in range(4)] + [[2 * i + 1, 2 * i + 2, 2 * i + 3] for i in range(4)]
W1 = np.clip(STRIP[:, 0] - 0.5, 0, 1)  # weight of joint 1 by x: 0, 0, .5, 1, 1


def skinned_asset(path):
    b = GltfBuilder()
    joints = b.accessor(np.tile([0, 1, 0, 0], (len(STRIP), 1)), "VEC4", 5121)
    weights = b.accessor(np.stack([1 - W1, W1, 0 * W1, 0 * W1], 1), "VEC4")
    ibm = b.accessor(np.stack([np.eye(4), T(-1, 0, 0)]).transpose(0, 2, 1).reshape(2, 16), "MAT4")  # column-major
    mesh = b.mesh(STRIP, STRIP_FACES, JOINTS_0=joints, WEIGHTS_0=weights)
    j1 = b.node(translation=[1.0, 0.0, 0.0])
    j0 = b.node(children=[j1])
    skinned = b.node(mesh=mesh, skin=0, translation=[100.0, 0.0, 0.0])  # its own transform must be ignored
    root = b.node(children=[j0, skinned], translation=[0.0, 0.0, 5.0], scale=[2.0, 2.0, 2.0])
    b.g.skins.append(pygltflib.Skin(joints=[j0, j1], inverseBindMatrices=ibm))
    b.animation([(j1, "rotation", [0.0, 1.0], [quat([0, 0, 1], 0), quat([0, 0, 1], 90)], "LINEAR")])
    b.animation([(j0, "translation", [0.0, 2.0], [[0, 0, 0], [0, 1, 0]], "LINEAR")])
    return b.save(path, [root])


def expected_skin(t):
    """Linear blend skinning written out: Σ_j w_j · world_j · inverseBind_j · p."""
    tc1, tc2 = min(max(t, 0.0), 1.0), min(max(t, 0.0), 2.0)
    root = T(0, 0, 5) @ S(2, 2, 2)
    world0 = root @ T(0, tc2 / 2, 0)
    world1 = world0 @ T(1, 0, 0) @ Rz(90 * tc1)
    m0, m1 = world0 @ np.eye(4), world1 @ T(-1, 0, 0)
    return (1 - W1)[:, None] * apply(m0, STRIP) + W1[:, None] * apply(m1, STRIP)


@pytest.mark.parametrize("name", ["skin.glb", "skin.gltf"])
def test_skinned_strip(tmp_path, name):
    asset = load_gltf(skinned_asset(tmp_path / name))
    assert asset.num_animations == 2 and asset.duration == pytest.approx(2.0)
    assert np.allclose(asset.bind_positions, STRIP)
    assert np.allclose(asset.mesh.vertices, apply(T(0, 0, 5) @ S(2, 2, 2), STRIP), atol=1e-6)  # rest = skin at rest TRS
    times = np.array([-0.5, 0.25, 0.5, 1.0, 1.5, 3.0])
    for t, v in zip(times, asset.vertices_at(times)):
        assert np.allclose(v, expected_skin(t), atol=1e-5), t
    # joint 1 rotated a quarter turn at t=1: the strip's tip (x=2) swings to x=1 (×2 scale), y up by 1
    tip = asset.vertices_at(1.0)[8]
    assert np.allclose(tip, [2.0, 2 * (0.5 + 1.0), 5.0], atol=1e-5)


# ---- materials, attributes, primitive modes -----------------------------------------------------
def _png(color) -> bytes:
    buf = io.BytesIO()
    iio.imwrite(buf, np.full((4, 4, 3), color, dtype=np.uint8), extension=".png")
    return buf.getvalue()


def textured_asset(path, *, image_uri: str | None = None):
    b = GltfBuilder()
    if image_uri is None:
        b.g.images.append(pygltflib.Image(bufferView=b.view(_png((200, 10, 10))), mimeType="image/png"))
    else:
        b.g.images.append(pygltflib.Image(uri=image_uri))
    b.g.textures.append(pygltflib.Texture(source=0))
    pbr = pygltflib.PbrMetallicRoughness(baseColorFactor=[1.0, 1.0, 1.0, 1.0], baseColorTexture=pygltflib.TextureInfo(index=0))
    b.g.materials.append(pygltflib.Material(name="skin", pbrMetallicRoughness=pbr))
    b.g.materials.append(pygltflib.Material(name="blue", pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(baseColorFactor=[0, 0, 1, 1])))
    uv = b.accessor(np.array([[0, 0], [1, 0], [0, 1]]), "VEC2")
    col = b.accessor(np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]]), "VEC4")
    a = b.node(mesh=b.mesh(np.eye(3), [0, 1, 2], TEXCOORD_0=uv, COLOR_0=col, material=0))
    c = b.node(mesh=b.mesh(np.eye(3) + 2, [0, 1, 2], material=1))
    strip = b.node(mesh=b.mesh(np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0]]), mode=5, material=1))  # 2 triangles
    fan = b.node(mesh=b.mesh(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [-1, 1, 0]]), mode=6, material=1))  # 3
    points = b.node(mesh=b.mesh(np.zeros((2, 3)), mode=0))
    return b.save(path, [a, c, strip, fan, points])


def test_materials_attributes_and_modes(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        asset = load_gltf(textured_asset(tmp_path / "t.glb"))
    assert "mode 0" in caplog.text
    m = asset.mesh
    assert m.num_faces == 1 + 1 + 2 + 3 and m.num_vertices == 3 + 3 + 4 + 5
    assert [x.name for x in m.materials] == ["skin", "blue"] and list(m.face_materials) == [0, 1, 1, 1, 1, 1, 1]
    tex = m.materials[0].texture
    assert tex.dtype == np.uint8 and tuple(tex[0, 0, :3]) == (200, 10, 10)
    assert m.materials[0].extras["mime_type"] == "image/png" and m.materials[0].extras["image_bytes"][:4] == b"\x89PNG"
    assert m.materials[0].extras["gltf"]["name"] == "skin" and m.materials[1].base_color == (0, 0, 1, 1)
    assert np.allclose(m.uvs[:3], [[0, 0], [1, 0], [0, 1]]) and np.allclose(m.vertex_colors[:3], np.eye(3))
    assert np.allclose(m.vertex_colors[3:], 1.0)
    # strip winding alternates; every triangle faces +z or -z consistently with the first
    normals = m.face_normals()[2:4]
    assert np.allclose(normals[0], normals[1])


def test_missing_texture_is_grey_with_a_warning(tmp_path, caplog):
    path = textured_asset(tmp_path / "t.gltf", image_uri="nowhere.png")
    with caplog.at_level(logging.WARNING):
        asset = load_gltf(path)
    assert "nowhere.png" in caplog.text
    assert asset.mesh.materials[0].texture is None and asset.mesh.materials[0].base_color == (0.7, 0.7, 0.7, 1.0)


def test_data_uri_buffer(tmp_path):
    path = morph_asset(tmp_path / "m.gltf")
    meta = json.loads(path.read_text())
    meta["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode((tmp_path / "m.bin").read_bytes()).decode()
    (tmp_path / "m.bin").unlink()
    (tmp_path / "inline.gltf").write_text(json.dumps(meta))
    assert load_gltf(tmp_path / "inline.gltf").mesh.num_faces == 1


# ---- bad files ---------------------------------------------------------------------------------------
def test_bad_files_name_the_file(tmp_path):
    good = box_asset(tmp_path / "good.glb").read_bytes()
    (tmp_path / "trunc.glb").write_bytes(good[: len(good) // 2])
    header = struct.pack("<III", 0x46546C67, 2, 12 + 8 + 5) + struct.pack("<II", 5, 0x4E4F534A) + b"{oops"
    (tmp_path / "badjson.glb").write_bytes(header)
    meta = json.loads(box_asset(tmp_path / "ok.gltf").read_text())
    meta["buffers"][0]["uri"] = "../outside.bin"
    (tmp_path / "escape.gltf").write_text(json.dumps(meta))
    b = GltfBuilder()
    b.save(tmp_path / "lines.glb", [b.node(mesh=b.mesh(np.eye(3), [0, 1, 1, 2], mode=1))])
    for name, msg in [("trunc.glb", None), ("badjson.glb", None), ("escape.gltf", "outside"), ("lines.glb", "no triangles"),
                      ("missing.glb", "no such file")]:  # fmt: skip
        with pytest.raises(DataError, match=msg) as e:
            load_gltf(tmp_path / name)
        assert str(e.value).startswith(str(tmp_path / name)) and "\n" not in str(e.value)
