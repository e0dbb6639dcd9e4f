"""Static assets by extension: OBJ with MTL and texture, mesh and splat PLY, bad files."""

import json
import struct

import numpy as np
import pygltflib
import pytest
from test_gltf import morph_asset

from motion4d.data.assets import load_asset
from motion4d.data.errors import DataError


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
    good = morph_asset(tmp_path / "good.glb").read_bytes()
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


