"""Animate a static 3D asset with the motion of a multi-view driving video (Animate3D's static → 4D path).

The asset's mesh is placed in the driving data's world (its JSON's ``asset_to_world``, else identity),
covered with surface Gaussians coloured by its material, and bound to a deformation graph whose keyframe
transforms are fitted to the driving images (:mod:`motion4d.optim.trainer_animate`). The run folder RUN holds
``config.json``, ``checkpoints/``, ``model.m4d`` (the Gaussians + graph, reloadable by render / evaluate /
export), ``asset.glb`` (the static asset, materials kept, in its own coordinates), ``animation.glb`` (the
animated, skinned mesh: graph nodes as joints), ``video.mp4`` and ``report.json``. When the driving folder has
``gt_vertices.npz`` (datasets rendered from an animated asset), the report includes the exported animation's
vertex error against it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from motion4d.data.assets import load_asset
from motion4d.errors import DataError
from motion4d.data.gltf import GltfAsset, load_gltf
from motion4d.data.mesh import Mesh
from motion4d.data.transforms import load_transforms, read_asset_to_world, scene_bounds
from motion4d.export.gltf import write_skinned_glb, write_static_glb
from motion4d.export.m4d import ModelInfo, save_m4d
from motion4d.export.video import write_video
from motion4d.gaussians import Gaussians3D
from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.gaussians.rotations import quat_to_rotmat, rotmat_to_quat
from motion4d.gaussians.skinned import SkinnedGaussians
from motion4d.gaussians.surface import surface_gaussians
from motion4d.metrics.geometry import nearest_vertex_error_pct
from motion4d.metrics.motion import motion_amplitude
from motion4d.metrics.views import evaluate_model
from motion4d.optim.trainer_animate import PRESETS, AnimateConfig, AnimateTrainer
from motion4d.pipelines.models import MODEL_FILE, load_run_model
from motion4d.pipelines.run import RunFolder, SplitReport, dataset_splits
from motion4d.render.cameras import OrbitRig
from motion4d.render.frame import render_over_time

log = logging.getLogger(__name__)

ASSET_FILE = "asset.glb"
ANIMATION_FILE = "animation.glb"
VIDEO_FILE = "video.mp4"
GT_VERTICES_FILE = "gt_vertices.npz"
MORPH_TOLERANCE = 1e-4
"""Largest vertex error, in bounding-box diagonals, of writing the fitted offsets as fewer morph targets."""
FRAMES_PER_SECOND = 16.0
"""Default animation speed of exported glTF: 16 driving frames per second (a 16-frame clip lasts 1 s)."""


@dataclass(frozen=True)
class AnimateInputs:
    """What an animate run reads and how long its animation lasts (saved in ``config.json`` as its ``inputs``)."""

    asset: str
    """Static asset file (glTF/GLB, OBJ, mesh PLY; or a 3DGS PLY, animated as splats without a glTF export)."""
    driving: str
    """Driving video dataset folder (D-NeRF format with 'time'; 'asset_to_world' in its JSON places the asset)."""
    downscale: int = 1
    """Integer image downscale factor."""
    duration_s: float | None = None
    """Length of the exported animation in seconds (default: keyframes / 16)."""
    video_frames: int = 48
    """Frames of the run's video (0: none)."""

    def __post_init__(self):
        if self.downscale < 1:
            raise ValueError(f"downscale must be >= 1, got {self.downscale}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        if self.video_frames < 0:
            raise ValueError(f"video_frames must be >= 0, got {self.video_frames}")


@dataclass
class AnimateReport(SplitReport):
    """What ``report.json`` holds: the fields of :class:`SplitReport` (PSNR / SSIM of the Gaussians over the
    held-out driving images, each at its own time) and these."""

    vertex_error_pct: float | None
    """Mean distance from each vertex of the exported animation to the nearest vertex of ``gt_vertices.npz``
    at the same time (averaged over vertices and frames), in % of the ground truth's bounding-box diagonal;
    None without that file. One-sided because such files may hold extra geometry (RiggedFigure's has 42
    vertices its glTF does not)."""
    motion_amplitude: float
    """Scale-free motion of the Gaussians (see :mod:`motion4d.metrics.motion`)."""
    n_nodes: int
    """Deformation-graph nodes (joints of the exported skin)."""
    n_frames: int
    """Keyframes (distinct driving times)."""
    duration_s: float
    """Length of the exported animation in seconds."""
    vertex_offsets: bool | None = None
    """Whether the per-frame vertex offsets trained (the gate opened; None: not decided, e.g. splats or a
    run shorter than ``offsets_start``)."""
    silhouette_errors: list[float] | None = None
    """Each keyframe's relative silhouette error when the gate was decided (None: not measured)."""
    keyframe_silhouette_errors: list[float] | None = None
    """Each keyframe's relative silhouette error of the final fit, Σ|alpha − mask| / Σ mask over up to 8 of
    its training images (data without alpha: the relative colour error): how well the fit explains each
    frame's images, so that the frames it failed on stand out (the fits of the benchmark assets stay below
    about 0.1; above ``offsets_gate`` is logged as a warning)."""
    refined_nodes: int | None = None
    """The graph's node count after the gate refined it (``refine_nodes``; None: not refined)."""
    skipped_steps: int = 0
    """Steps not applied because their loss or gradient was not finite (in this call; more than a few means
    the fit did not run as it should)."""
    coverage_alpha_l1: list[float] | None = None
    """Mean |alpha − mesh coverage| of the rest pose in the driving cameras before and after the coverage
    fit (None when it did not run: splats, resumed runs, ``coverage_steps`` 0)."""


def load_static_asset(path: str | Path) -> Mesh | Gaussians3D:
    """The static asset to animate: a mesh (glTF/GLB in its rest pose, OBJ, mesh PLY) or a 3DGS PLY's Gaussians."""
    asset = load_asset(path)
    return asset.mesh if isinstance(asset, GltfAsset) else asset


def transform_gaussians(g: Gaussians3D, matrix: np.ndarray) -> Gaussians3D:
    """``g`` mapped by a similarity ``matrix [4,4]`` (rotation × uniform scale + translation)."""
    m = torch.from_numpy(np.asarray(matrix, dtype=np.float64))
    s = float(torch.linalg.det(m[:3, :3]).abs() ** (1 / 3))
    R = (m[:3, :3] / s).to(g.params["means"].dtype)
    p = {k: v.detach() for k, v in g.params.items()}
    means = p["means"] @ R.T * s + m[:3, 3].to(R.dtype)
    quats = rotmat_to_quat(R @ quat_to_rotmat(p["quats"]))
    return Gaussians3D(means, quats, p["log_scales"] + float(np.log(s)), p["opacity_logits"], p["sh0"], p["shN"])


def build_model(mesh_world: Mesh, frame_times: torch.Tensor, config: AnimateConfig) -> MeshGaussians:
    """Surface Gaussians on ``mesh_world`` (coloured by its materials) bound to a fresh deformation graph."""
    vertices = torch.from_numpy(mesh_world.vertices)
    faces = torch.from_numpy(mesh_world.faces)
    face_ids, bary, covars = surface_gaussians(vertices, faces, config.n_init, scale_factor=config.scale_factor)
    colors = torch.from_numpy(mesh_world.colors_at(face_ids.numpy(), bary.numpy()))
    return MeshGaussians.build(
        vertices, faces, face_ids, bary, colors, frame_times,
        n_nodes=config.n_nodes, n_neighbors=config.n_neighbors, skin_k=config.skin_k, covars=covars, metric=config.graph_metric, gap=config.graph_gap,
        inset=config.surface_inset, max_stretch=config.surface_max_stretch,
    )  # fmt: skip


def export_animation_glb(model: MeshGaussians, mesh: Mesh, asset_to_world: np.ndarray, path: str | Path, *, duration_s: float | None = None) -> Path:
    """Write ``mesh`` (asset coordinates) skinned to ``model``'s graph and animated over its keyframes.

    Each vertex takes the skin (nodes and weights) and the vertex offsets of the model's vertex at its rest
    position, so any vertex order or seam duplication of ``mesh`` gets the fitted motion exactly. The offsets become morph targets when any is
    larger than 1e-6 of the mesh's size: as few as keep every vertex within :data:`MORPH_TOLERANCE`. Keyframe time t is placed at ``t × duration_s`` seconds (default:
    keyframes / 16 s).
    """
    graph = model.graph
    duration = duration_s if duration_s is not None else graph.num_frames / FRAMES_PER_SECOND
    if not duration > 0:
        raise DataError(f"--duration must be > 0, got {duration}")
    a2w = torch.from_numpy(np.asarray(asset_to_world, dtype=np.float64))
    world = (torch.from_numpy(mesh.vertices).double() @ a2w[:3, :3].T + a2w[:3, 3]).to(graph.nodes.dtype)
    nearest = nearest_rest_vertex(model, world)
    joints, weights = model.skin_indices[nearest], model.skin_weights[nearest]
    with torch.no_grad():
        R, d = graph.keyframe_transforms()
    times = graph.frame_times.double() * duration
    morph = morph_offsets(model, nearest, a2w.numpy())
    return write_skinned_glb(
        path, mesh, graph.nodes.double().numpy(), R.detach().double().numpy(), d.detach().double().numpy(), joints.numpy(), weights.double().numpy(),
        times.numpy(), asset_to_world=np.asarray(asset_to_world, dtype=np.float64), morph_offsets=morph,
        morph_tolerance=MORPH_TOLERANCE * float(np.linalg.norm(np.ptp(mesh.vertices, axis=0))),
    )  # fmt: skip


def nearest_rest_vertex(model: MeshGaussians, world_vertices: Tensor) -> Tensor:
    """[V] index of the model's rest vertex nearest each of ``world_vertices [V,3]``."""
    rest = model.rest_vertices.detach().double().cpu().numpy()
    idx = cKDTree(rest).query(world_vertices.detach().double().cpu().numpy(), k=1)[1]
    return torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(model.rest_vertices.device)


def morph_offsets(model: MeshGaussians, nearest: Tensor, asset_to_world: np.ndarray, *, min_size: float = 1e-6) -> np.ndarray | None:
    """[T,V,3] the model's vertex offsets of its rest vertices ``nearest [V]`` (:func:`nearest_rest_vertex`),
    in the asset's coordinates; None when all are below ``min_size`` × the mesh's bounding-box diagonal
    (nothing to morph)."""
    rest = model.rest_vertices.double()
    with torch.no_grad():
        offsets = model.offsets.vertex_offsets().detach().double()  # [T,V_model,3] world
    diag = float((rest.max(0).values - rest.min(0).values).norm())
    if offsets.numel() == 0 or float(offsets.abs().max()) <= min_size * diag:
        return None
    linear_inv = np.linalg.inv(np.asarray(asset_to_world, dtype=np.float64)[:3, :3])
    return offsets[:, nearest].numpy() @ linear_inv.T


def vertex_error_pct(animation: str | Path, asset_to_world: np.ndarray, gt_path: str | Path, duration_s: float) -> float:
    """:func:`~motion4d.metrics.geometry.nearest_vertex_error_pct` of the animation's vertices (re-read from
    the file, at ``t × duration_s``, mapped to world) against ``gt_vertices.npz`` (``vertices [T,V',3]``
    world, ``times [T]``; see :attr:`AnimateReport.vertex_error_pct`)."""
    try:
        gt = np.load(gt_path)
        gt_v, gt_t = np.asarray(gt["vertices"], dtype=np.float64), np.asarray(gt["times"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{gt_path}: not a gt_vertices file ({e})") from None
    if gt_v.ndim != 3 or gt_v.shape[-1] != 3 or gt_t.shape != gt_v.shape[:1]:
        raise DataError(f"{gt_path}: need vertices [T,V,3] and times [T], got {list(gt_v.shape)} and {list(gt_t.shape)}")
    ours = load_gltf(animation).vertices_at(gt_t * duration_s)  # [T,V,3] asset coordinates
    return nearest_vertex_error_pct(ours @ asset_to_world[:3, :3].T + asset_to_world[:3, 3], gt_v)


def animate(
    asset: str | Path,
    driving: str | Path,
    out: str | Path,
    config: AnimateConfig | None = None,
    *,
    downscale: int = AnimateInputs.downscale,
    resume: bool = False,
    duration_s: float | None = AnimateInputs.duration_s,
    video_frames: int = AnimateInputs.video_frames,
    fps: int = 24,
) -> AnimateReport:
    """Fit ``asset``'s motion to the multi-view video ``driving`` and write the run folder ``out``.

    Args:
        asset: static asset file (glTF/GLB, OBJ, mesh PLY; or a 3DGS PLY, animated as splats without a glTF export).
        driving: dataset folder (D-NeRF format, frames with ``time``; ``asset_to_world`` in its JSON places the asset).
        out: run folder (created).
        config: fit settings (default: the "default" preset).
        downscale, duration_s, video_frames: see :class:`AnimateInputs`.
        resume: continue from the newest checkpoint in ``out/checkpoints``.
        fps: frame rate of ``video.mp4``.
    """
    config = config if config is not None else PRESETS["default"]
    run, driving = RunFolder(out), Path(driving)
    inputs = AnimateInputs(str(Path(asset).resolve()), str(driving.resolve()), downscale, duration_s, video_frames)
    static = load_static_asset(asset)
    _, split = dataset_splits(driving)
    train = load_transforms(driving, "train", background=config.background, downscale=downscale)
    if train.times is None:
        raise DataError(f"{driving}: frames have no 'time' (the driving data must be a video)")
    a2w = read_asset_to_world(driving)
    a2w = np.eye(4) if a2w is None else a2w
    frame_times = torch.unique(train.times.double()).float()
    mesh = static if isinstance(static, Mesh) else None
    if mesh is not None:
        model, kind = build_model(mesh.transformed(a2w), frame_times, config), "mesh_gaussians"
        what = f"{mesh.num_vertices} vertices, {mesh.num_faces} faces"
    else:
        model = SkinnedGaussians.build(transform_gaussians(static, a2w), frame_times, n_nodes=config.n_nodes,
                                       n_neighbors=config.n_neighbors, skin_k=config.skin_k)  # fmt: skip
        kind, what = "skinned_gaussians", "3D Gaussian splats"
    center, radius = scene_bounds(train)
    log.info("animate: %s (%s) → %d Gaussians, %d graph nodes; %d driving images over %d frames",
             Path(asset).name, what, len(model), model.graph.num_nodes, len(train), len(frame_times))  # fmt: skip

    run.write_config("animate", config, inputs)
    trainer = AnimateTrainer(config, model, train, float(radius), ckpt_dir=run.checkpoints)
    result = trainer.train(resume=resume)
    model = result.model.cpu().eval()

    time_range = (float(frame_times[0]), float(frame_times[-1]))
    rig = OrbitRig.from_views(train.viewmats, train.Ks[0], train.width, train.height, center)
    extra = {"background": list(config.background), "orbit": asdict(rig), "data_root": inputs.driving, "downscale": downscale,
             "asset_to_world": a2w.tolist()}  # fmt: skip
    save_m4d(model, run.path / MODEL_FILE, ModelInfo(kind, time_range, extra))
    duration = duration_s if duration_s is not None else model.graph.num_frames / FRAMES_PER_SECOND
    if mesh is not None:  # splats have no mesh to skin: their outputs are the .m4d, PLY sequences and videos
        write_static_glb(run.path / ASSET_FILE, mesh)
        export_animation_glb(model, mesh, a2w, run.path / ANIMATION_FILE, duration_s=duration)

    test = load_transforms(driving, split, background=config.background, downscale=downscale)
    bg = torch.tensor(config.background, dtype=torch.float32)
    with torch.no_grad():
        metrics = evaluate_model(model, test, background=bg, backend=config.backend)
        if video_frames > 0:
            times = torch.linspace(*time_range, video_frames)
            frames = render_over_time(model, rig.viewmats(video_frames), rig.intrinsics(), rig.width, rig.height, times,
                                      background=config.background, backend=config.backend)  # fmt: skip
            write_video(run.path / VIDEO_FILE, frames, fps)
        amplitude = motion_amplitude(model, time_range)
    gt_path = driving / GT_VERTICES_FILE
    verr = vertex_error_pct(run.path / ANIMATION_FILE, a2w, gt_path, duration) if gt_path.is_file() and mesh is not None else None
    report = AnimateReport(
        **run.summary(result, metrics, split), vertex_error_pct=verr, motion_amplitude=amplitude, n_nodes=model.graph.num_nodes,
        n_frames=model.graph.num_frames, duration_s=duration, vertex_offsets=result.report["vertex_offsets"],
        silhouette_errors=result.report["silhouette_errors"], keyframe_silhouette_errors=result.report["keyframe_silhouette_errors"],
        coverage_alpha_l1=result.report["coverage_alpha_l1"], refined_nodes=result.report["refined_nodes"],
        skipped_steps=result.report["skipped_steps"],
    )  # fmt: skip
    run.write_report(report)
    log.info("animate: %s PSNR %.2f dB, vertex error %s, motion %.3f, %d steps in %.0f s", split, report.psnr,
             "n/a" if verr is None else f"{verr:.2f} %", amplitude, report.iters, report.seconds)  # fmt: skip
    return report


def export_run_glb(run: str | Path, out: str | Path, *, duration_s: float | None = None) -> Path:
    """``motion4d export RUN --format glb``: the animate run's mesh, skinned and animated, as one GLB file."""
    run = Path(run)
    model, info = load_run_model(run)
    if not isinstance(model, MeshGaussians) or not run.is_dir() or not (run / ASSET_FILE).is_file():
        raise DataError(f"{run}: --format glb needs the run folder of a mesh animated by 'motion4d animate' (it holds the mesh, "
                        f"{ASSET_FILE}); for other runs use ply-sequence or m4d")  # fmt: skip
    mesh = load_gltf(run / ASSET_FILE).mesh
    a2w = np.asarray(info.extra.get("asset_to_world", np.eye(4).tolist()), dtype=np.float64)
    path = export_animation_glb(model, mesh, a2w, out, duration_s=duration_s)
    log.info("wrote %s (%d joints, %d keyframes)", path, model.graph.num_nodes, model.graph.num_frames)
    return path
