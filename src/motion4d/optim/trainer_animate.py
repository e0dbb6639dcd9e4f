"""Fitting a static mesh's motion to a multi-view driving video (Animate3D's motion reconstruction).

The model is :class:`~motion4d.gaussians.animated_mesh.MeshGaussians`: surface Gaussians on the asset's
mesh, moved by a deformation graph with one rigid transform per node and keyframe (the driving video's
frames). Each step renders ``batch_views`` training images, each at its own frame
(:class:`~motion4d.optim.driving.DrivingVideoLoss`), and minimises

    λ_photometric · ((1 − λ_dssim)·L1 + λ_dssim·(1 − SSIM))  +  λ_mask · L1(alpha, mask)  +  λ_silhouette · chamfer(surface, mask)
      +  λ_arap · ARAP  +  λ_arap_l1 · ARAP_L1  +  λ_motion_smoothness · smoothness  +  λ_rest · rest
      +  λ_offset_laplacian · offset Laplacian  +  λ_offset_smoothness · offset smoothness  +  λ_offset_magnitude · |offsets|²

The silhouette chamfer (:func:`~motion4d.optim.losses.silhouette_chamfer`, in image widths) compares the
projected surface points with the images' foreground pixels. Its gradient reaches parts far outside the
current outline, where the alpha and colour terms, which only move Gaussians on the outline, see nothing:
AnimatedMorphSphere flattens to about twice its width, and without it the fit stays a sphere.

The graph carries the motion it can (articulation, rigid parts); per-keyframe vertex offsets
(:mod:`motion4d.gaussians.vertex_offsets`, applied before the graph's skinning, exported as morph
targets) carry the non-rigid rest — a morph target's bulges and spikes. Free offsets also explain what
the images show but the motion is not (shading, a slightly different silhouette) by small drifts of the
whole surface — on RiggedFigure they tripled the per-vertex error (0.18 → 0.51 %) — so they are gated:
the graph fits alone until ``offsets_start`` of training, and the offsets join only if some keyframe's
silhouette error is still above ``offsets_gate`` (the graph cannot make that shape). ``lr_offsets`` 0
turns them off, ``offsets_gate`` 0 on.

``lambda_arap`` trades motion amplitude against fidelity as in Animate3D: high values keep the asset
rigid-ish (faithful shape, damped motion), low values follow the video more freely.

An open gate also says the motion is not (only) articulated, so the fit switches to a non-rigid mode for
the rest of training: ARAP weighs ``lambda_arap_nonrigid`` instead (a stretch is what ARAP forbids), and
``refine_nodes`` more graph nodes go where the images pull hardest on the surface (the norm of the image
loss's gradient with respect to each vertex's offset, summed over keyframes), spread by geodesic
farthest-point sampling and starting from the motion the graph already gives them. Articulated assets,
whose gate stays closed, never see either.

Frames are brought in progressively (tracking, see :mod:`motion4d.optim.driving`) over the first
``warmup_fraction`` of training. The trainer reports (:meth:`AnimateTrainer.report`) whether the offsets
trained, the keyframes' silhouette errors when that was decided and at the end, and the coverage fit's
alpha errors.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.optim.checkpoint import list_checkpoints
from motion4d.optim.config_checks import at_least, positive, within
from motion4d.optim.coverage import CoverageFit, fit_coverage
from motion4d.optim.driving import DrivingVideoLoss
from motion4d.optim.providers import TrainViews
from motion4d.optim.strategy import DensifyConfig
from motion4d.optim.trainer_base import GaussianTrainer, TrainConfig, TrainResult, decayed, rebuilt_optimizer, replace_preset

if TYPE_CHECKING:
    from collections.abc import Callable

    from motion4d.data.transforms import ImageSet
    from motion4d.gaussians.skinned import SkinnedGaussians

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnimateConfig(TrainConfig):
    """Everything that decides an animate run (saved in the run's ``config.json``)."""

    iters: int = 1500
    """Optimisation steps."""
    sh_degree: int = 0
    """Colours only (the asset's material)."""
    n_init: int = 20_000
    """Number of surface Gaussians (about): a mesh with fewer faces has its faces split into that many
    pieces, one Gaussian each; a denser one gets one Gaussian per patch of neighbouring faces
    (:mod:`motion4d.gaussians.surface_patches`), so a step costs about the same on any mesh."""
    ckpt_every: int = 250
    """Write a checkpoint every this many steps (and always at the end); 0 = only at the end."""
    densify: DensifyConfig = field(default_factory=lambda: DensifyConfig(refine_stop=0, reset_every=0))
    """No density control: the Gaussians stay bound to the surface."""
    batch_views: int = 4
    """Images rendered per step."""
    n_nodes: int = 96
    """Deformation-graph nodes (farthest-point samples of the vertices)."""
    n_neighbors: int = 6
    """Graph neighbours per node for the ARAP term."""
    graph_metric: Literal["geodesic", "euclidean"] = "geodesic"
    """How a mesh's graph is built: "geodesic" — nodes spread, vertices bound and nodes joined by distance
    over the surface, so parts that touch in space but not on the surface (legs side by side, an arm along
    the torso) are not tied (:mod:`motion4d.gaussians.geodesic`); "euclidean" — by distance in space
    (splats always are)."""
    graph_gap: float = 1e-3
    """Separate parts of a mesh closer than this × its diagonal count as joined (geodesic graphs)."""
    skin_k: int = 4
    """Nodes each vertex is bound to."""
    scale_factor: float = 0.45
    """Size of the surface Gaussians: each takes the shape of its piece of the surface, with an area of
    about scale_factor² × the piece's (see :func:`motion4d.gaussians.surface.surface_gaussians`). Total
    rendered alpha over the images' at the true pose (frames 0 and 8, 20 views): 0.45 → RiggedFigure
    1.02, CesiumMilkTruck 1.02, AnimatedMorphSphere 0.95 / 1.03; 0.5 → 1.07, 1.04, 1.00 / 1.06. Too much
    alpha fattens the silhouettes and the fit shrinks the mesh to match (at 0.5 CesiumMilkTruck's static
    body shrank 1.3 %)."""
    surface_inset: float = 1.0
    """How far each surface Gaussian sits behind its face, in its own sizes (rendering only; see
    :class:`~motion4d.gaussians.animated_mesh.MeshGaussians`). Our Gaussians render the true shape about
    a third of a pixel fat at the outline, and the fit shrinks the shape to match the images (see the
    README); an inset of 1 takes that back. 0 → 1 on all ten benchmark assets (one run each,
    ``benchmarks/results/animate_inset1.json``): surface chamfer RiggedFigure 0.09 → 0.08 %,
    CesiumMilkTruck 0.38 → 0.27 %, AnimatedMorphSphere 0.84 → 0.79 %, the seven held-out characters
    0.15–0.35 % from 0.19–0.50 %, each lower, and per-vertex error lower on all ten; test PSNR 0.2–2.6 dB
    higher on nine (the sphere's 0.1 dB lower). The sphere's stretched peak frame fits worse (1.28 → 1.38 %)."""
    surface_max_stretch: float = 0.0
    """The most a face's surface Gaussians grow with it, in linear size (0: no limit; rendering only, see
    :class:`~motion4d.gaussians.animated_mesh.MeshGaussians`). Gaussians that stretch with their faces
    spill past the outline: at AnimatedMorphSphere's peak (faces stretched up to 9×, a quarter of them
    folded over) the true shape renders 37 % more alpha than it covers without a limit, 4 % less at 1.5.
    Off by default: at 1.5 the sphere's fit did not move closer (chamfer 0.77 % either way, worst frame
    1.33 → 1.34 %, test PSNR 31.6 → 30.9 dB; one run each) — from its fit, the way to the folded truth
    leads through shapes that explain the images worse than either (``benchmarks/truth_loss.py``)."""
    lr_sh0: float = 2e-2
    """Learning rate of the Gaussians' colours: they absorb the driving video's lighting and shading (a
    Cycles render of a light-grey material can look dark grey), quickly, so that motion is not used to
    explain colour."""
    lr_opacities: float = 0.0
    """Learning rate of the opacity logits (0: the surface stays opaque)."""
    lr_rotation: float = 5e-3
    """Learning rate of the graph's keyframe rotations (raw quaternions)."""
    lr_rotation_final: float = 5e-4
    """Final learning rate of the rotations."""
    lr_translation: float = 2e-3
    """Learning rate of the graph's keyframe translations, times the scene radius."""
    lr_translation_final: float = 2e-4
    """Final learning rate of the translations, times the scene radius."""
    lambda_mask: float = 0.5
    """Weight of the L1 between rendered alpha and the images' alpha (when the data has alpha)."""
    lambda_silhouette: float = 1.0
    """Weight of the silhouette chamfer between projected surface points and the images' alpha masks."""
    lambda_arap: float = 1.0
    """Weight of the graph's as-rigid-as-possible term."""
    lambda_arap_nonrigid: float = 0.1
    """Weight of the ARAP term once the gate has found the motion non-rigid (the vertex offsets train, see
    ``offsets_gate``): a stretching or morphing shape is what ARAP forbids, and the graph should carry what
    it can of it. Assets whose gate stays closed never use it. AnimatedMorphSphere (one run each): 1 →
    surface chamfer 0.90 % (worst frame 1.42 %), 0.1 → 0.84 % (1.28 %). Fitting the graph directly to
    its true vertices (``benchmarks/graph_capacity.py``, 96 nodes): 1 → 0.74 %, 0.1 → 0.25 %."""
    lambda_arap_l1: float = 0.0
    """Weight of the nearly-L1 (Charbonnier) ARAP term (see :mod:`motion4d.gaussians.deform_graph`): keeps
    what does not move rigid while letting joints bend."""
    lambda_motion_smoothness: float = 0.05
    """Weight of the keyframes' second-difference smoothness."""
    lambda_rest: float = 0.0
    """Weight of the graph's pull toward the rest pose (nearly L1 in each node's motion; see
    :mod:`motion4d.gaussians.deform_graph`): among fits the images cannot tell apart, the one that moves
    least. Off by default: it helps assets that barely move and hurts articulated ones. CesiumMilkTruck's
    static body drifts 0.6 % of the diagonal without it (mostly a 1.2 % shrink), 0.4 % at 0.05, 0.1 % at
    0.2, 0.05 % at 0.5; but already at 0.05 RiggedFigure's limbs stop moving (per-vertex error 1.04 %,
    as not moving; 0.26 % without)."""
    lr_offsets: float = 3e-3
    """Learning rate of the per-keyframe vertex offsets, times the scene radius (0: graph motion only)."""
    lr_offsets_final: float = 3e-4
    """Final learning rate of the vertex offsets, times the scene radius."""
    offsets_start: float = 0.45
    """Fraction of training after which the vertex offsets may train (the graph fits alone before); after
    ``warmup_fraction``, so that every keyframe has been fitted (RiggedFigure's worst silhouette error is
    0.06 from 0.4 of training on)."""
    offsets_gate: float = 0.3
    """The offsets train only if, at ``offsets_start``, some keyframe's relative silhouette error
    (Σ|alpha − mask| / Σ mask over up to 8 of its training images) exceeds this; 0: always (with
    alpha-less data: the relative colour error). Graph-only fits: RiggedFigure 0.06,
    CesiumMilkTruck 0.02, the tuning characters' thin legs and arms 0.17–0.18 (with the offsets their
    chamfer doubles: they explain shading by moving the surface); AnimatedMorphSphere 0.54 at its peak
    frame, where the offsets are the morph."""
    refine_nodes: int = 0
    """Graph nodes added when the gate opens (0: none), where the images pull hardest on the surface: the
    vertices whose image-loss gradient (summed over keyframes) is in the top ``1 − refine_quantile`` get
    new nodes, spread over them by geodesic farthest-point sampling (:meth:`MeshGaussians.refine_graph`).
    Assets whose gate stays closed never refine. Off by default: on AnimatedMorphSphere 96 more (184 in
    all) left the chamfer at 0.84 % (worst frame 1.28 → 1.23 %) for 1.4 more minutes and twice the
    joints; what limits it there is not the graph (see the README)."""
    refine_quantile: float = 0.75
    """Vertices above this quantile of the image loss's pull are where new nodes go (see ``refine_nodes``)."""
    lambda_offset_laplacian: float = 0.01
    """Weight of the offsets' squared uniform Laplacian (in mean edge lengths): offsets must vary smoothly
    over the surface. AnimatedMorphSphere (offsets from the start, lr 3e-3): 1 → surface chamfer 1.06 %,
    test PSNR 27.4 dB; 0.1 → 0.78 %, 29.8 dB; 0.01 → 0.75 %, 33.3 dB (rest pose: 1.63 %)."""
    lambda_offset_smoothness: float = 0.05
    """Weight of the offsets' second difference over keyframes (in mean edge lengths)."""
    lambda_offset_magnitude: float = 1e-3
    """Weight of the offsets' mean square (in mean edge lengths): what the graph can explain, it does."""
    warmup_fraction: float = 0.4
    """Fraction of training over which keyframes join one by one (0: all from the start)."""
    frame_error_share: float = 0.5
    """Once all keyframes have joined, the share of each step's images whose keyframe is drawn in proportion
    to its running silhouette error (the rest uniformly), so that the frames the fit still fails get the
    steps; 0: half of each step's images stay on the last keyframe, the rest uniform, as before (see
    :class:`~motion4d.optim.driving.DrivingVideoLoss`). 0 → 0.5, one run each, surface chamfer (per-vertex
    error): AnimatedMorphSphere 0.79 → 0.64 % (worst frame 1.38 → 1.02 %; 4.41 → 4.54 %, mostly motion
    along its surface), RiggedFigure 0.075 → 0.073 % (0.12 → 0.10 %), CesiumMilkTruck 0.266 → 0.264 %
    (1.24 % both), and the tuning characters
    quadruped0_walk 0.17 → 0.15 % (0.37 → 0.32 %), biped1_wave 0.15 → 0.13 % (0.39 → 0.33 %), bird3_flap
    0.16 → 0.14 % (0.47 → 0.24 %); test PSNR 0.15–2.5 dB higher on all six (the first three against the table of
    ``benchmarks/results/animate_inset1.json``, the characters against runs of the same day). About 7 %
    more time (each image's keyframe is evaluated on its own): the sphere 7.6 min, against 7.1 for runs of
    the same day."""
    coverage_steps: int = 150
    """Steps of the coverage fit before the motion fit (:mod:`motion4d.optim.coverage`: each surface
    Gaussian's size fitted so that the rest pose's alpha matches the mesh's own coverage in the driving
    cameras); 0 skips it. CesiumMilkTruck: alpha L1 0.022 → 0.006, and its static body no longer shrinks."""
    lr_coverage: float = 0.02
    """Learning rate of the coverage fit's per-Gaussian log-sizes."""

    def __post_init__(self):
        super().__post_init__()
        at_least(self, 1, "batch_views", "n_nodes", "n_neighbors", "skin_k")
        at_least(self, 0, "offsets_gate", "coverage_steps", "graph_gap", "refine_nodes")
        within(self, "refine_quantile", 0.0, 1.0)
        positive(self, "scale_factor")
        within(self, "warmup_fraction", 0.0, 1.0)
        within(self, "frame_error_share", 0.0, 1.0)
        within(self, "offsets_start", 0.0, 1.0)
        if self.surface_max_stretch != 0 and not self.surface_max_stretch >= 1:
            raise ValueError(f"surface_max_stretch must be 0 (no limit) or >= 1, got {self.surface_max_stretch!r}")


_DEFAULT = AnimateConfig()
PRESETS: dict[str, AnimateConfig] = {
    "default": _DEFAULT,
    "fast": dataclasses.replace(_DEFAULT, iters=600, n_init=10_000, n_nodes=64),
    "tiny": dataclasses.replace(_DEFAULT, iters=12, n_init=300, n_nodes=8, batch_views=2, ckpt_every=4, progress=False, coverage_steps=4),
}
"""Named configurations: "default" (minutes on a CPU at 128²), "fast", "tiny" (tests)."""


def preset(name: str, **overrides) -> AnimateConfig:
    """The named preset with some fields replaced."""
    return replace_preset(PRESETS, name, **overrides)


class AnimateTrainer(GaussianTrainer):
    """Fits the deformation graph of ``model`` (a MeshGaussians) to ``views`` (images with ``times``).

    Args:
        config: the fit's settings.
        model: the mesh Gaussians; its graph's ``frame_times`` are the keyframes.
        views: training images ``images [M,H,W,3]``, ``alphas [M,H,W,1]`` or None, ``viewmats``, ``Ks``, ``times [M]``.
        scene_scale: scene radius (scales the translations' learning rate).
        ckpt_dir: folder for checkpoints (None: none written, no resume).
    """

    desc = "animate"
    densifies = False
    """The Gaussians stay bound to the surface (or the splats to their skin)."""

    def __init__(self, config: AnimateConfig, model: "MeshGaussians | SkinnedGaussians", views: "ImageSet", scene_scale: float, *, ckpt_dir: str | Path | None = None):
        if views.times is None:
            raise ValueError("animate needs driving images with a 'time' per frame")
        self.offsets_on: bool | None = None
        """Whether the vertex offsets train (None: not decided yet, before ``offsets_start``); set before the
        base class builds the optimizer, which asks :meth:`field_lr`."""
        super().__init__(config, model, scene_scale, ckpt_dir=ckpt_dir)
        has_alpha = views.alphas is not None
        self.driving = DrivingVideoLoss(self.model, TrainViews.of(views, self.device), views.times, batch_views=config.batch_views,
                                        lambda_dssim=config.lambda_dssim, warmup_fraction=config.warmup_fraction,
                                        masks=has_alpha and config.lambda_mask > 0, silhouettes=has_alpha and config.lambda_silhouette > 0,
                                        background=self.background, backend=config.backend, error_share=config.frame_error_share)  # fmt: skip
        """The loss provider (it also keeps which keyframes have joined)."""
        self.losses.append(self.driving)
        self.frame_error = torch.full((self.driving.n_frames,), float("nan"))
        """[T] each keyframe's relative silhouette (or colour) error when the offsets were decided (NaN before)."""
        self.refined: int | None = None
        """The graph's node count after refinement (None: not refined)."""
        self.coverage: CoverageFit | None = None
        """The coverage fit's result (None: not run by this trainer, e.g. resumed or splats)."""

    @property
    def active(self) -> int:
        """Number of keyframes fitted so far."""
        return self.driving.active

    def train(self, *, resume: bool = False, on_step: "Callable[[int, float], None] | None" = None) -> TrainResult:
        """Fit the Gaussians' coverage (a fresh mesh model only), then the motion (see :meth:`GaussianTrainer.train`)."""
        resuming = resume and self.ckpt_dir is not None and bool(list_checkpoints(self.ckpt_dir))
        if isinstance(self.model, MeshGaussians) and self.config.coverage_steps > 0 and self.step == 0 and not resuming:
            start = time.perf_counter()
            v = self.driving.views
            self.coverage = fit_coverage(self.model, v.viewmats, v.Ks, v.width, v.height, steps=self.config.coverage_steps,
                                         lr=self.config.lr_coverage, batch_views=self.config.batch_views, backend=self.config.backend,
                                         seed=self.config.seed)  # fmt: skip
            self.seconds += time.perf_counter() - start
        return super().train(resume=resume, on_step=on_step)

    def report(self) -> dict[str, Any]:
        """``vertex_offsets`` (whether they trained; None: not decided), ``silhouette_errors`` (each keyframe's
        when that was decided; None: not measured), ``keyframe_silhouette_errors`` (each keyframe's now, see
        :meth:`keyframe_errors`), ``coverage_alpha_l1`` (the coverage fit's mean alpha error before and after;
        None: it did not run in this call), ``refined_nodes`` (the graph's node count after refinement; None:
        not refined), ``skipped_steps`` (steps whose loss or gradient was not finite, so not applied)."""
        measured = not bool(torch.isnan(self.frame_error).any())
        coverage = None if self.coverage is None else [self.coverage.l1_before, self.coverage.l1_after]
        return {"vertex_offsets": self.offsets_on, "silhouette_errors": self.frame_error.tolist() if measured else None,
                "keyframe_silhouette_errors": self.keyframe_errors(), "coverage_alpha_l1": coverage, "refined_nodes": self.refined,
                "skipped_steps": self.skipped_steps}  # fmt: skip

    def keyframe_errors(self) -> list[float]:
        """Each keyframe's relative silhouette error of the model as it is now, Σ|alpha − mask| / Σ mask over
        up to 8 of its training images (relative colour error for data without alpha): which frames the fit
        explains and which it does not. Keyframes above ``offsets_gate`` are logged."""
        with torch.no_grad():
            errors = self.driving.frame_errors().tolist()
        bad = [f"{f} ({e:.3f})" for f, e in enumerate(errors) if e > self.config.offsets_gate > 0]
        if bad:
            log.warning("animate: keyframes the fit does not explain (silhouette error above %.2f): %s", self.config.offsets_gate, ", ".join(bad))
        return errors

    def param_lrs(self) -> dict[str, float]:
        # the geometry of the Gaussians is the asset's (a splat set's means/quats/scales stay fixed)
        fixed = {"means": 0.0, "quats": 0.0, "log_scales": 0.0}
        return {**fixed, "sh0": self.config.lr_sh0, "shN": self.config.lr_shN, "opacity_logits": self.config.lr_opacities}

    def field_lr(self, name: str, progress: float) -> float:
        cfg = self.config
        if name == "field.quats":
            return decayed(cfg.lr_rotation, cfg.lr_rotation_final, progress)
        if name == "field.translations":
            return decayed(cfg.lr_translation * self.scene_scale, cfg.lr_translation_final * self.scene_scale, progress)
        if name == "field.offsets":
            return 0.0 if cfg.lr_offsets <= 0 or not self.offsets_on else decayed(cfg.lr_offsets * self.scene_scale, cfg.lr_offsets_final * self.scene_scale, progress)
        return super().field_lr(name, progress)

    def extra_state(self) -> dict[str, Tensor]:
        state = {"active": torch.tensor(self.driving.active), "frame_error": self.frame_error.clone(), "running_error": self.driving.running_error.clone(),
                 "offsets_on": torch.tensor(-1 if self.offsets_on is None else int(self.offsets_on))}  # fmt: skip
        if isinstance(self.model, MeshGaussians):  # the coverage fit's sizes
            state["rest_covars"] = self.model.rest_covars.detach()
        if self.refined is not None:  # the refined graph's shape (the base class saves its transforms)
            m = self.model
            state.update(graph_nodes=m.graph.nodes, graph_neighbors=m.graph.neighbors, skin_indices=m.skin_indices, skin_weights=m.skin_weights)
        return state

    def before_restore(self, state: dict[str, Tensor]) -> None:
        """A checkpoint of a refined graph: resize the model's graph to it before its transforms load."""
        if "graph_nodes" in state and isinstance(self.model, MeshGaussians):
            self.model.resize_graph(state["graph_nodes"], state["graph_neighbors"], state["skin_indices"], state["skin_weights"])
            self.refined = self.model.graph.num_nodes

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        if "active" in state:
            self.driving.active = int(state["active"])
        if "frame_error" in state and state["frame_error"].shape == self.frame_error.shape:
            self.frame_error = state["frame_error"].cpu().clone()
        if "running_error" in state and state["running_error"].shape == self.driving.running_error.shape:
            self.driving.running_error = state["running_error"].cpu().clone()
        if "offsets_on" in state:
            self.offsets_on = None if int(state["offsets_on"]) < 0 else bool(int(state["offsets_on"]))
        if "rest_covars" in state and isinstance(self.model, MeshGaussians):
            if state["rest_covars"].shape != self.model.rest_covars.shape:
                raise ValueError("checkpoint: rest_covars do not match the model")
            with torch.no_grad():
                self.model.rest_covars.copy_(state["rest_covars"].to(self.model.rest_covars))

    def weight(self, name: str) -> float:
        if name == "loss_arap" and self.offsets_on:
            return self.config.lambda_arap_nonrigid
        return super().weight(name)

    def model_terms(self, t: float | None) -> dict[str, Tensor]:
        if isinstance(self.model, MeshGaussians):  # the offsets' terms only while they train (not even computed before)
            return {f"loss_{k}": v for k, v in self.model.regularizers(t, offsets=bool(self.offsets_on)).items()}
        return super().model_terms(t)

    def before_step(self, progress: float) -> None:
        """At ``offsets_start``: let the vertex offsets train if the graph leaves a keyframe's silhouette off."""
        cfg = self.config
        if self.offsets_on is not None or progress < cfg.offsets_start or cfg.lr_offsets <= 0 or not isinstance(self.model, MeshGaussians):
            return
        self.frame_error = self.driving.frame_errors()
        worst = float(self.frame_error.max())
        self.offsets_on = cfg.offsets_gate <= 0 or worst > cfg.offsets_gate
        log.info("animate: worst keyframe silhouette error %.3f (gate %.3f): vertex offsets %s", worst, cfg.offsets_gate,
                 "on" if self.offsets_on else "off (the graph makes the shapes)")  # fmt: skip
        if self.offsets_on and cfg.refine_nodes > 0:
            self.refine_graph()

    def vertex_pull(self) -> Tensor:
        """[V] how hard the images pull on each vertex: the norm of the weighted image loss's gradient with
        respect to its offset, summed over the keyframes (up to 8 images each)."""
        offsets = self.model.offsets.offsets
        self.optimizer.zero_grad(set_to_none=True)
        for f in range(self.driving.n_frames):
            out = self.driving.terms(self.driving.frame_rows(f))
            loss = sum((self.weight(k) * v for k, v in out.losses.items() if self.weight(k)), torch.zeros((), device=self.device))
            if loss.requires_grad:
                loss.backward()
        pull = torch.zeros(offsets.shape[1], device=offsets.device) if offsets.grad is None else offsets.grad.detach().norm(dim=-1).sum(0)
        self.optimizer.zero_grad(set_to_none=True)
        return pull[self.model.offsets.weld]

    def refine_graph(self) -> int:
        """Add ``refine_nodes`` graph nodes where the images pull hardest (see the config) and rebuild the
        optimizer, keeping every other parameter's Adam state; returns the number added."""
        cfg = self.config
        pull = self.vertex_pull()
        candidates = pull >= torch.quantile(pull.double(), cfg.refine_quantile).to(pull)
        before = self.model.graph.num_nodes
        added = self.model.refine_graph(candidates & (pull > 0), cfg.refine_nodes, n_neighbors=cfg.n_neighbors, gap=cfg.graph_gap)
        if added:
            self.optimizer = rebuilt_optimizer(self.optimizer, self.make_optimizer())
        self.refined = self.model.graph.num_nodes
        log.info("animate: graph refined from %d to %d nodes where the images pull hardest", before, self.refined)
        return added

    def postfix(self, loss: float) -> dict[str, object]:
        return {**super().postfix(loss), "frames": f"{self.driving.active}/{self.driving.n_frames}"}
