"""``motion4d animate`` end to end on a tiny asset and a driving video made here, then export / evaluate /
render of the run, and the bad-input errors."""

import json
import math
import shutil

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from motion4d.cli import main
from motion4d.data.gltf import load_gltf
from motion4d.data.mesh import Material, Mesh
from motion4d.export.gltf import write_static_glb
from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.gaussians.rotations import quat_to_rotmat, rotmat_to_quat
from motion4d.gaussians.surface import sample_surface
from motion4d.render.frame import render_frame
from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats

pytestmark = pytest.mark.slow  # the module's run takes > 5 s

A2W = np.array([[0.5, 0, 0, 0.0], [0, 0, -0.5, 0.0], [0, 0.5, 0, 0.1], [0, 0, 0, 1]])  # Y-up asset → Z-up world, ½ scale


def asset_mesh() -> Mesh:
    """A folded 6×6 sheet (asset coordinates, Y up) with a 2-colour texture."""
    n = 6
    xs = np.linspace(-1, 1, n)
    verts = np.array([[x, 0.3 * abs(x), z] for x in xs for z in xs], dtype=np.float32)
    faces = [[i * n + j, i * n + j + 1, (i + 1) * n + j] for i in range(n - 1) for j in range(n - 1)]
    faces += [[i * n + j + 1, (i + 1) * n + j + 1, (i + 1) * n + j] for i in range(n - 1) for j in range(n - 1)]
    uvs = np.stack([(verts[:, 0] + 1) / 2, (verts[:, 2] + 1) / 2], 1)
    tex = np.zeros((4, 4, 3), dtype=np.uint8)
    tex[:, :2] = (220, 60, 40)
    tex[:, 2:] = (40, 90, 220)
    return Mesh(verts, np.array(faces), uvs=uvs, materials=[Material((1, 1, 1, 1), tex, "paint")], name="sheet")


def write_driving(root, mesh: Mesh, n_views=5, size=32, times=(0.0, 0.5, 1.0)):
    """Render the sheet (placed by A2W) bending over ``times``: one half rotates about the fold."""
    world = mesh.transformed(A2W)
    V = torch.from_numpy(world.vertices)
    F = torch.from_numpy(world.faces)
    fid, bary = sample_surface(V, F, 1500, generator=torch.Generator().manual_seed(1))
    colors = torch.from_numpy(world.colors_at(fid.numpy(), bary.numpy()))
    target = MeshGaussians.build(V, F, fid, bary, colors, torch.tensor(times), n_nodes=12)
    gt = []
    with torch.no_grad():
        for f, t in enumerate(times):
            a = 0.5 * t
            R = quat_to_rotmat(torch.tensor([math.cos(a / 2), 0.0, math.sin(a / 2), 0.0]))
            g = target.graph.nodes
            moving = g[:, 0] > 0  # the +x half swings about the y axis through x = 0
            target.graph.quats[f, moving] = rotmat_to_quat(R)
            target.graph.translations[f, moving] = g[moving] @ R.T - g[moving]
            gt.append(target.vertices_at(t).numpy())
    vm = orbit_viewmats(n_views + 2, 2.5, elevation_deg=30.0)
    K = intrinsics_from_fov(45.0, size, size)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    for split, views in (("train", range(n_views)), ("test", range(n_views, n_views + 2))):
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for f, t in enumerate(times):
            for v in views:
                with torch.no_grad():
                    out = render_frame(target.at_time(t), vm[v : v + 1], K[None], size, size, background=torch.zeros(3))
                rgba = torch.cat([out.rgb[0] / out.alpha[0].clamp_min(1e-6), out.alpha[0]], -1).clamp(0, 1)
                name = f"{split}/v{v}_f{f}"
                iio.imwrite(root / f"{name}.png", (rgba.numpy() * 255).round().astype(np.uint8))
                c2w = torch.linalg.inv(vm[v]) @ flip
                frames.append({"file_path": f"./{name}", "time": t, "view": v, "transform_matrix": c2w.tolist()})
        meta = {"camera_angle_x": math.radians(45.0), "asset_to_world": A2W.tolist(), "frames": frames}
        (root / f"transforms_{split}.json").write_text(json.dumps(meta))
    np.savez(root / "gt_vertices.npz", vertices=np.stack(gt).astype(np.float32), times=np.array(times))
    return root


@pytest.fixture(scope="module")
def animate_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("animate")
    mesh = asset_mesh()
    asset = write_static_glb(base / "sheet.glb", mesh)
    data = write_driving(base / "driving", mesh)
    run = base / "run"
    rc = main(["-q", "animate", str(asset), "--driving", str(data), "--out", str(run), "--preset", "tiny", "--iters", "40",
               "--video-frames", "4", "--nodes", "8"])  # fmt: skip
    assert rc == 0
    return base, asset, data, run


def test_animate_writes_the_run(animate_run, capsys):
    base, asset, data, run = animate_run
    for name in ("config.json", "model.m4d", "asset.glb", "animation.glb", "video.mp4", "report.json"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert report["iters"] == 40 and report["n_nodes"] == 8 and report["n_frames"] == 3
    assert report["vertex_error_pct"] is not None and report["vertex_error_pct"] < 50
    assert report["duration_s"] == pytest.approx(3 / 16)
    assert isinstance(report["vertex_offsets"], bool) and len(report["silhouette_errors"]) == 3
    assert len(report["keyframe_silhouette_errors"]) == 3 and all(0 <= e < 2 for e in report["keyframe_silhouette_errors"])
    # the exported animation keeps the asset's rest pose and coordinates and moves over time
    anim = load_gltf(run / "animation.glb")
    rest = load_gltf(asset).mesh.vertices
    assert np.allclose(np.sort(anim.mesh.vertices, 0), np.sort(rest, 0), atol=1e-5)
    assert anim.duration == pytest.approx(3 / 16)
    assert len(anim.mesh.materials) == 1 and anim.mesh.materials[0].texture is not None


def test_export_glb_matches_the_model_and_takes_a_duration(animate_run, tmp_path, capsys):
    base, asset, data, run = animate_run
    out = tmp_path / "anim.glb"
    assert main(["-q", "export", str(run), "--format", "glb", "--out", str(out), "--duration", "2"]) == 0
    anim = load_gltf(out)
    assert anim.duration == pytest.approx(2.0)
    from motion4d.pipelines.models import load_run_model

    model, info = load_run_model(run)
    a2w = np.asarray(info.extra["asset_to_world"])
    for t in (0.0, 0.5, 1.0):
        ours = anim.vertices_at(2.0 * t) @ a2w[:3, :3].T + a2w[:3, 3]
        with torch.no_grad():
            want = model.vertices_at(t).numpy()
        d = np.linalg.norm(ours[:, None] - want[None], axis=-1).min(1)  # same vertices, maybe reordered
        assert d.max() < 1e-4, t


def test_evaluate_render_and_ply_export_of_an_animate_run(animate_run, tmp_path, capsys):
    base, asset, data, run = animate_run
    capsys.readouterr()
    assert main(["-q", "evaluate", str(run), "--data", str(data), "--split", "test"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_images"] == 6 and metrics["psnr"] > 10
    assert main(["-q", "render", str(run), "--out", str(tmp_path / "v.gif"), "--frames", "3"]) == 0
    assert main(["-q", "export", str(run), "--format", "ply-sequence", "--out", str(tmp_path / "ply"), "--frames", "2"]) == 0
    assert len(list((tmp_path / "ply").glob("*.ply"))) == 2


def test_animate_bad_inputs(animate_run, tmp_path, capsys):
    base, asset, data, run = animate_run
    (tmp_path / "nofaces.obj").write_text("v 0 0 0\nv 1 0 0\n")
    static = tmp_path / "static"
    static.mkdir()
    meta = json.loads((data / "transforms_train.json").read_text())
    for f in meta["frames"]:
        f.pop("time")
    (static / "transforms_train.json").write_text(json.dumps(meta))
    shutil.copytree(data / "train", static / "train")
    cases = [
        (["animate", str(tmp_path / "nofaces.obj"), "--driving", str(data)], "nofaces.obj: the mesh has no faces"),
        (["animate", str(tmp_path / "missing.glb"), "--driving", str(data)], "missing.glb: no such file"),
        (["animate", str(asset), "--driving", str(tmp_path / "nodata")], "nodata"),
        (["animate", str(asset), "--driving", str(data), "--nodes", "0"], "--nodes"),
        (["animate", str(asset), "--driving", str(data), "--lambda-rest", "-1"], "--lambda-rest"),
        (["animate", str(asset), "--driving", str(data), "--lambda-silhouette", "-0.5"], "--lambda-silhouette"),
        (["animate", str(asset), "--driving", str(data), "--lr-offsets", "-1e-3"], "--lr-offsets"),
        (["animate", str(asset), "--driving", str(data), "--offsets-gate", "-0.1"], "--offsets-gate"),
        (["animate", str(asset), "--driving", str(data), "--lambda-offset-laplacian", "-1"], "--lambda-offset-laplacian"),
        (["animate", str(asset), "--driving", str(data), "--lambda-arap-l1", "-2"], "--lambda-arap-l1"),
        (["animate", str(asset), "--driving", str(static)], "no 'time'"),
        (["export", str(tmp_path / "nothing"), "--format", "glb", "--out", str(tmp_path / "x.glb")], "nothing"),
    ]
    for argv, msg in cases:
        capsys.readouterr()
        rc = main(["-q", *argv, "--out", str(tmp_path / "r")] if argv[0] == "animate" else ["-q", *argv])
        err = capsys.readouterr().err
        assert rc == 2, argv
        assert msg in err and err.startswith("error: ") and err.count("\n") == 1, err


def test_animate_a_3dgs_ply(animate_run, tmp_path, capsys):
    """A splat PLY (Gaussians on the sheet) is animated as splats: .m4d, PLY sequence, no glTF."""
    from motion4d.export.ply import save_ply
    from motion4d.gaussians import Gaussians3D

    base, asset, data, run = animate_run
    mesh = load_gltf(asset).mesh
    fid = np.repeat(np.arange(mesh.num_faces), 4)
    bary = np.random.default_rng(0).dirichlet([1, 1, 1], size=len(fid)).astype(np.float32)
    xyz = np.einsum("nk,nkc->nc", bary, mesh.vertices[mesh.faces[fid]])
    g = Gaussians3D.from_points(torch.from_numpy(xyz), torch.from_numpy(mesh.colors_at(fid, bary)), sh_degree=0, init_opacity=0.9)
    ply = tmp_path / "sheet_splats.ply"
    save_ply(ply, *(x.detach() for x in (g.means, g.quats, g.scales, g.opacities, g.sh)))
    out = tmp_path / "run"
    assert main(["-q", "animate", str(ply), "--driving", str(data), "--out", str(out), "--preset", "tiny", "--iters", "10",
                 "--video-frames", "0", "--nodes", "6"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["vertex_error_pct"] is None and report["n_gaussians"] == len(fid)
    assert (out / "model.m4d").is_file() and not (out / "animation.glb").exists()
    assert main(["-q", "export", str(out), "--format", "ply-sequence", "--out", str(tmp_path / "ply"), "--frames", "3"]) == 0
    assert len(list((tmp_path / "ply").glob("*.ply"))) == 3
    capsys.readouterr()
    assert main(["-q", "export", str(out), "--format", "glb", "--out", str(tmp_path / "x.glb")]) == 2
    assert "mesh animated by" in capsys.readouterr().err


def test_animate_refines_the_graph_and_exports_it(animate_run, tmp_path, capsys):
    """``--refine-nodes`` with an open gate: the run's graph grows, and the exported skin has a joint per node
    and plays what the model shows."""
    import pygltflib

    base, asset, data, run = animate_run
    out = tmp_path / "run"
    assert main(["-q", "animate", str(asset), "--driving", str(data), "--out", str(out), "--preset", "tiny", "--iters", "12",
                 "--video-frames", "0", "--nodes", "6", "--offsets-gate", "0", "--offsets-start", "0.3", "--refine-nodes", "4"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["vertex_offsets"] is True and report["refined_nodes"] == report["n_nodes"] == 10
    assert len(pygltflib.GLTF2().load(str(out / "animation.glb")).skins[0].joints) == 10
    from motion4d.pipelines.models import load_run_model

    model, info = load_run_model(out)
    assert model.graph.num_nodes == 10
    anim = load_gltf(out / "animation.glb")
    a2w = np.asarray(info.extra["asset_to_world"])
    ours = anim.vertices_at(anim.duration * 0.5) @ a2w[:3, :3].T + a2w[:3, 3]
    with torch.no_grad():
        want = model.vertices_at(0.5).numpy()
    assert np.linalg.norm(ours[:, None] - want[None], axis=-1).min(1).max() < 1e-4
