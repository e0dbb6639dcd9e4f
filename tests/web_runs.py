"""Tiny runs for the web player's tests, built without training: a dataset of test cameras only, and run
folders / ``.m4d`` files holding a 4D-Rotor model, a moving deformation-field model, and an animated mesh
(MeshGaussians + its skinned GLB, as ``motion4d animate`` writes them)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from motion4d.export.gltf import write_static_glb
from motion4d.export.m4d import ModelInfo, save_m4d
from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.gaussians.deform import DeformGaussians
from motion4d.gaussians.rotations import quat_to_rotmat, rotmat_to_quat
from motion4d.gaussians.rotor4d import Gaussians4DRotor
from motion4d.gaussians.surface import sample_surface
from motion4d.render.cameras import orbit_viewmats, viewmat_to_opengl_c2w

from test_animate_cli import A2W, asset_mesh  # the folded, textured sheet (Y up) and its placement in our Z-up world


def camera_dataset(root: Path, size: int = 256, n_views: int = 3, fov_deg: float = 45.0) -> Path:
    """A D-NeRF-format dataset whose test split has ``n_views`` cameras around the origin (blank images)."""
    (root / "test").mkdir(parents=True, exist_ok=True)
    viewmats = orbit_viewmats(n_views, 2.4, elevation_deg=25.0)
    frames = []
    for v in range(n_views):
        iio.imwrite(root / "test" / f"v{v}.png", np.full((size, size, 3), 255, np.uint8))
        c2w = viewmat_to_opengl_c2w(viewmats[v].double())
        frames.append({"file_path": f"./test/v{v}", "time": 0.0, "view": v, "transform_matrix": c2w.tolist()})
    (root / "transforms_test.json").write_text(json.dumps({"camera_angle_x": math.radians(fov_deg), "frames": frames}))
    return root


def rotor_run(path: Path, data: Path, n: int = 3000) -> Path:
    """An ``.m4d`` of random 4D-Rotor Gaussians (tilted in space-time, SH degree 1) over t ∈ [0, 2]."""
    g = torch.Generator().manual_seed(3)
    m = Gaussians4DRotor.random(n, radius=0.5, t_range=(0.0, 2.0), sh_degree=1, seed=0, init_opacity=0.5)
    with torch.no_grad():
        m.params["rotors"].add_(0.3 * torch.randn(m.params["rotors"].shape, generator=g))
        m.params["shN"].normal_(0, 0.2, generator=g)
        m.params["log_scales"][:, 3] = math.log(0.8)
    save_m4d(m, path, ModelInfo("rotor4d", (0.0, 2.0), {"data_root": str(data), "background": [1.0, 1.0, 1.0]}))
    return path


def deform_run(path: Path, data: Path, n: int = 2000) -> Path:
    """An ``.m4d`` of deformation-field Gaussians with smooth random time planes and random heads: moving, turning and
    growing over t ∈ [0, 1], placed (canonical centres solved for) so that at t = 0.5 they fill a ball."""
    m = DeformGaussians.random(n, torch.zeros(3), 0.6, sh_degree=0, seed=1, init_opacity=0.9)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in m.field.named_parameters():  # time planes [3,F,T,W]: smooth in t, as trained ones are
            if name.startswith("time."):
                phase = torch.rand(p.shape[0], p.shape[1], 1, p.shape[3], generator=g)
                p.mul_(1 + 0.8 * torch.sin(2 * math.pi * (torch.linspace(0, 1, p.shape[2])[:, None] + phase)))
        for name, head in m.heads.items():
            head[-1].weight.normal_(0, {"means": 1.0, "quats": 1.0, "log_scales": 0.2}[name], generator=g)
        target = m.params["means"].clone()
        for _ in range(8):  # canonical centres whose deformed positions at t = 0.5 are the ball's
            m.params["means"].copy_(target - m.deltas(0.5)["means"])
    save_m4d(m, path, ModelInfo("deform", (0.0, 1.0), {"data_root": str(data), "background": [1.0, 1.0, 1.0]}))
    return path


def animate_run(folder: Path, data: Path, times=(0.0, 0.5, 1.0), n: int = 3000) -> Path:
    """A run folder as ``motion4d animate`` leaves it (model.m4d, asset.glb, animation.glb): the sheet, one
    half swinging about the fold over ``times``."""
    from motion4d.pipelines.animate import export_animation_glb

    folder.mkdir(parents=True, exist_ok=True)
    mesh = asset_mesh()
    world = mesh.transformed(A2W)
    V, F = torch.from_numpy(world.vertices), torch.from_numpy(world.faces)
    fid, bary = sample_surface(V, F, n, generator=torch.Generator().manual_seed(1))
    colors = torch.from_numpy(world.colors_at(fid.numpy(), bary.numpy()))
    model = MeshGaussians.build(V, F, fid, bary, colors, torch.tensor(times), n_nodes=12)
    with torch.no_grad():
        for f, t in enumerate(times):
            a = 1.2 * t
            R = quat_to_rotmat(torch.tensor([math.cos(a / 2), 0.0, math.sin(a / 2), 0.0]))
            nodes = model.graph.nodes
            moving = nodes[:, 0] > 0
            model.graph.quats[f, moving] = rotmat_to_quat(R)
            model.graph.translations[f, moving] = nodes[moving] @ R.T - nodes[moving]
    extra = {"background": [1.0, 1.0, 1.0], "data_root": str(data), "asset_to_world": A2W.tolist()}
    save_m4d(model, folder / "model.m4d", ModelInfo("mesh_gaussians", (float(times[0]), float(times[-1])), extra))
    write_static_glb(folder / "asset.glb", mesh)
    export_animation_glb(model, mesh, A2W, folder / "animation.glb", duration_s=1.5)
    return folder
