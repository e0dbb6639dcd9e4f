"""Static assets by extension: OBJ with MTL and textures, mesh and splat PLY, glTF, limits and bad files."""

import logging

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement
from test_gltf import box_asset

from motion4d.data.assets import load_asset, load_mesh
from motion4d.data.errors import DataError
from motion4d.data.gltf import GltfAsset
from motion4d.data.mesh import GREY, Mesh
from motion4d.data.obj import load_obj
from motion4d.export.ply import save_ply
from motion4d.gaussians.gaussians3d import Gaussians3D

OBJ = """mtllib m.mtl
v 0 0 0
v 1 0 0
v 0 1 0
v 1 1 0
v 2 0 0
vt 0 0
vt 1 0
vt 0 1
usemtl textured
f 1/1 2/2 3/3
usemtl plain
f 2 4 3
f 2 5 4
"""


def write_obj(folder, texture: str = "tex.png", write_texture: bool = True):
    if write_texture:
        tex = np.zeros((4, 4, 3), dtype=np.uint8)
        tex[:, :, 0] = 200
        iio.imwrite(folder / texture, tex)
    (folder / "m.mtl").write_text(f"newmtl textured\nKd 0.5 0.5 0.5\nmap_Kd {texture}\n\nnewmtl plain\nKd 0.0 0.25 1.0\n")
    (folder / "m.obj").write_text(OBJ)
    return folder / "m.obj"


def test_obj_with_mtl_and_texture(tmp_path):
    mesh = load_asset(write_obj(tmp_path))
    assert isinstance(mesh, Mesh) and mesh.num_faces == 3 and mesh.num_vertices == 3 + 4
    names = [m.name for m in mesh.materials]
    assert sorted(names) == ["plain", "textured"]
    tex_id, plain_id = names.index("textured"), names.index("plain")
    textured, plain = mesh.materials[tex_id], mesh.materials[plain_id]
    assert textured.texture is not None and textured.texture[0, 0, 0] == 200 and textured.base_color == (1, 1, 1, 1)
    assert textured.extras["obj"]["Kd"] == pytest.approx([0.5, 0.5, 0.5])
    assert plain.texture is None and plain.base_color == pytest.approx((0.0, 0.25, 1.0, 1.0), abs=3e-3)
    assert np.bincount(mesh.face_materials, minlength=2)[[tex_id, plain_id]].tolist() == [1, 2]
    # OBJ's vt (0,0) is the image's bottom-left: glTF-convention v = 1
    tri = mesh.faces[mesh.face_materials == tex_id][0]
    corner = tri[np.argmin(np.linalg.norm(mesh.vertices[tri], axis=1))]  # the vertex at the origin
    assert np.allclose(mesh.uvs[corner], [0.0, 1.0])
    rgb = mesh.colors_at(np.array([np.where(mesh.face_materials == tex_id)[0][0]]), np.array([[1 / 3, 1 / 3, 1 / 3]]))
    assert rgb[0, 0] > 0.7 and rgb[0, 1] < 0.05
    # every face keeps its corners' positions
    got = {tuple(sorted(map(tuple, mesh.vertices[f].round(6)))) for f in mesh.faces}
    assert got == {((0, 0, 0), (0, 1, 0), (1, 0, 0)), ((0, 1, 0), (1, 0, 0), (1, 1, 0)), ((1, 0, 0), (1, 1, 0), (2, 0, 0))}


def test_obj_missing_texture_is_grey_with_warning(tmp_path, caplog):
    path = write_obj(tmp_path, texture="gone.png", write_texture=False)
    with caplog.at_level(logging.WARNING, logger="motion4d"):
        mesh = load_obj(path)
    textured = next(m for m in mesh.materials if m.name == "textured")
    assert textured.texture is None and textured.base_color == GREY
    assert "gone.png" in caplog.text


def test_mesh_ply_polygons_and_colours(tmp_path):
    v = np.array([(0, 0, 0, 255, 0, 0), (1, 0, 0, 0, 255, 0), (1, 1, 0, 0, 0, 255), (0, 1, 0, 255, 255, 255), (2, 0, 0, 0, 0, 0)],
                 dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])  # fmt: skip
    f = np.empty(2, dtype=[("vertex_indices", "O")])
    f["vertex_indices"] = [np.array([0, 1, 2, 3], dtype=np.int32), np.array([1, 4, 2], dtype=np.int32)]
    PlyData([PlyElement.describe(v, "vertex"), PlyElement.describe(f, "face")], text=True).write(str(tmp_path / "quad.ply"))
    mesh = load_asset(tmp_path / "quad.ply")
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 2]]  # the quad fan-triangulated
    assert np.allclose(mesh.vertex_colors[:2], [[1, 0, 0], [0, 1, 0]])


def test_splat_ply_gives_gaussians(tmp_path):
    g = torch.Generator().manual_seed(0)
    n = 5
    means, quats = (torch.randn(n, 3, generator=g), torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1))
    scales, opac, sh = (torch.rand(n, 3, generator=g) + 0.1, torch.rand(n, generator=g) * 0.8 + 0.1, torch.randn(n, 4, 3, generator=g))
    save_ply(tmp_path / "splat.ply", means, quats, scales, opac, sh)
    gs = load_asset(tmp_path / "splat.ply")
    assert isinstance(gs, Gaussians3D)
    assert torch.allclose(gs.means, means) and torch.allclose(gs.opacities, opac, atol=1e-6) and torch.allclose(gs.sh, sh)
    with pytest.raises(DataError, match="splat.ply: a 3D Gaussian splat PLY, not a mesh"):
        load_mesh(tmp_path / "splat.ply")
    bad = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("f_dc_0", "f4"), ("opacity", "f4")])
    PlyData([PlyElement.describe(bad, "vertex")]).write(str(tmp_path / "half.ply"))
    with pytest.raises(DataError, match="half.ply: not a 3DGS PLY"):
        load_asset(tmp_path / "half.ply")


def test_gltf_through_load_asset_and_face_limit(tmp_path):
    path = box_asset(tmp_path / "box.glb")
    asset = load_asset(path)
    assert isinstance(asset, GltfAsset) and asset.mesh.num_faces == 12
    assert np.array_equal(load_mesh(path).vertices, asset.mesh.vertices)
    with pytest.raises(DataError, match="decimate") as e:
        load_asset(path, max_faces=11)
    assert str(e.value).startswith(str(path))


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "empty.obj").write_text("v 0 0 0\nv 1 0 0\n")
    pts = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(pts, "vertex")]).write(str(tmp_path / "points.ply"))
    (tmp_path / "junk.ply").write_bytes(b"not a ply at all")
    (tmp_path / "x.fbx").write_text("")
    for name, msg in [("empty.obj", "no faces"), ("points.ply", "no faces"), ("junk.ply", "PLY"), ("x.fbx", "unknown asset type"),
                      ("missing.glb", "no such file"), ("missing.obj", "no such file")]:  # fmt: skip
        with pytest.raises(DataError, match=msg) as e:
            load_asset(tmp_path / name)
        assert str(e.value).startswith(str(tmp_path / name)) and "\n" not in str(e.value)
