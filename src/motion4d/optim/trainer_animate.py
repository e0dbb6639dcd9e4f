"""Fitting a static mesh's motion to a multi-view driving video (Animate3D's motion reconstruction).

The model is :class:`~motion4d.gaussians.animated_mesh.MeshGaussians`: surface Gaussians on the asset's
mesh, moved by a deformation graph with one rigid transform per node and keyframe (the driving video's
frames). Each step renders ``batch_views`` training images, each at its own frame, and minimises

    (1 − λ_dssim)·L1 + λ_dssim·(1 − SSIM)  +  λ_mask · L1(alpha, mask)  +  λ_silhouette · chamfer(surface, mask)
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

Frames are brought in progressively (tracking): at the start only the first keyframe is fitted; over the
first ``warmup_fraction`` of training the later ones join one after another, each starting from its
predecessor's transforms, so a new frame begins close to its answer. Half of each step's images come
from the newest frame, the rest from all active ones.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.optim.checkpoint import list_checkpoints
from motion4d.optim.coverage import CoverageFit, fit_coverage
from motion4d.render.frame import render_frame
from motion4d.optim.losses import SilhouetteTarget, silhouette_chamfer
from motion4d.optim.strategy import DensifyConfig
from motion4d.optim.trainer_base import GaussianTrainer, TrainConfig, TrainResult, decayed, replace_preset
from motion4d.render.cameras import project_points

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
    """Number of surface Gaussians (about; at least one per face)."""
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
    skin_k: int = 4
    """Nodes each vertex is bound to."""
    scale_factor: float = 0.45
    """Size of the surface Gaussians: each takes the shape of its piece of the surface, with an area of
    about scale_factor² × the piece's (see :func:`motion4d.gaussians.surface.surface_gaussians`). Total
    rendered alpha over the images' at the true pose (frames 0 and 8, 20 views): 0.45 → RiggedFigure
    1.02, CesiumMilkTruck 1.02, AnimatedMorphSphere 0.95 / 1.03; 0.5 → 1.07, 1.04, 1.00 / 1.06. Too much
    alpha fattens the silhouettes and the fit shrinks the mesh to match (at 0.5 CesiumMilkTruck's static
    body shrank 1.3 %)."""
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
    offsets_gate: float = 0.15
    """The offsets train only if, at ``offsets_start``, some keyframe's relative silhouette error
    (Σ|alpha − mask| / Σ mask over up to 8 of its training images) exceeds this; 0: always (with
    alpha-less data: the relative colour error). Graph-only fits: RiggedFigure 0.06,
    CesiumMilkTruck 0.02; AnimatedMorphSphere ≥ 0.3 at its peak frames."""
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
    coverage_steps: int = 150
    """Steps of the coverage fit before the motion fit (:mod:`motion4d.optim.coverage`: each surface
    Gaussian's size fitted so that the rest pose's alpha matches the mesh's own coverage in the driving
    cameras); 0 skips it. CesiumMilkTruck: alpha L1 0.022 → 0.006, and its static body no longer shrinks."""
    lr_coverage: float = 0.02
    """Learning rate of the coverage fit's per-Gaussian log-sizes."""


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

    def __init__(self, config: AnimateConfig, model: "MeshGaussians | SkinnedGaussians", views: "ImageSet", scene_scale: float, *, ckpt_dir: str | Path | None = None):
        if views.times is None:
            raise ValueError("animate needs driving images with a 'time' per frame")
        if config.batch_views < 1:
            raise ValueError(f"batch_views must be >= 1, got {config.batch_views}")
        self.offsets_on: bool | None = None
        """Whether the vertex offsets train (None: not decided yet, before ``offsets_start``); set before the
        base class builds the optimizer, which asks :meth:`field_lr`."""
        super().__init__(config, model, views, scene_scale, ckpt_dir=ckpt_dir)
        self.alphas = views.alphas.to(self.device, torch.float32) if views.alphas is not None else None
        self.silhouettes = [SilhouetteTarget.from_alpha(a) for a in self.alphas] if self.alphas is not None and config.lambda_silhouette > 0 else None
        ft = model.graph.frame_times.cpu()
        self.frame_of_row = (views.times.double()[:, None] - ft.double()[None]).abs().argmin(dim=1)  # [M]
        self.rows_of_frame = [torch.where(self.frame_of_row == f)[0] for f in range(len(ft))]
        self.active = 1 if config.warmup_fraction > 0 else len(ft)
        self.frame_error = torch.full((len(ft),), float("nan"))
        """[T] each keyframe's relative silhouette (or colour) error when the offsets were decided (NaN before)."""
        self.coverage: CoverageFit | None = None
        """The coverage fit's result (None: not run by this trainer, e.g. resumed or splats)."""

    def train(self, *, resume: bool = False, on_step: "Callable[[int, float], None] | None" = None) -> TrainResult:
        """Fit the Gaussians' coverage (a fresh mesh model only), then the motion (see :meth:`GaussianTrainer.train`)."""
        resuming = resume and self.ckpt_dir is not None and bool(list_checkpoints(self.ckpt_dir))
        if isinstance(self.model, MeshGaussians) and self.config.coverage_steps > 0 and self.step == 0 and not resuming:
            start = time.perf_counter()
            self.coverage = fit_coverage(self.model, self.viewmats, self.Ks, self.views.width, self.views.height, steps=self.config.coverage_steps,
                                         lr=self.config.lr_coverage, batch_views=self.config.batch_views, backend=self.config.backend,
                                         seed=self.config.seed)  # fmt: skip
            self.seconds += time.perf_counter() - start
        return super().train(resume=resume, on_step=on_step)

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
        state = {"active": torch.tensor(self.active), "frame_error": self.frame_error.clone(),
                 "offsets_on": torch.tensor(-1 if self.offsets_on is None else int(self.offsets_on))}  # fmt: skip
        if isinstance(self.model, MeshGaussians):  # the coverage fit's sizes
            state["rest_covars"] = self.model.rest_covars.detach()
        return state

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        if "active" in state:
            self.active = int(state["active"])
        if "frame_error" in state and state["frame_error"].shape == self.frame_error.shape:
            self.frame_error = state["frame_error"].cpu().clone()
        if "offsets_on" in state:
            self.offsets_on = None if int(state["offsets_on"]) < 0 else bool(int(state["offsets_on"]))
        if "rest_covars" in state and isinstance(self.model, MeshGaussians):
            if state["rest_covars"].shape != self.model.rest_covars.shape:
                raise ValueError("checkpoint: rest_covars do not match the model")
            with torch.no_grad():
                self.model.rest_covars.copy_(state["rest_covars"].to(self.model.rest_covars))

    def _activate(self, progress: float) -> None:
        n = len(self.rows_of_frame)
        w = self.config.warmup_fraction
        want = n if w <= 0 else min(n, 1 + int(math.floor((n - 1) * min(progress / w, 1.0) + 1e-9)))
        while self.active < want:
            self.model.copy_frame(self.active - 1, self.active)
            self.active += 1

    def _sample_rows(self) -> Tensor:
        b = self.config.batch_views
        g = self.generator
        newest = self.rows_of_frame[self.active - 1]
        n_new = min((b + 1) // 2, len(newest))
        rows = [newest[torch.randperm(len(newest), generator=g)[:n_new]]]
        pool = torch.cat(self.rows_of_frame[: self.active])
        rows.append(pool[torch.randint(len(pool), (b - n_new,), generator=g)])
        return torch.cat(rows)

    def train_step(self) -> float:
        """One step (renders, loss, backward, Adam); returns the loss."""
        cfg = self.config
        progress = self.progress()
        self._decide_offsets(progress)
        self.update_lrs(progress)
        self._activate(progress)
        rows = self._sample_rows()
        frames = self.frame_of_row[rows]
        ft = self.model.graph.frame_times
        loss = torch.zeros((), device=self.device)
        for f in torch.unique(frames).tolist():
            idx = rows[frames == f].to(self.device)
            posed = self.model.at_time(float(ft[f]))
            out = render_frame(posed, self.viewmats[idx], self.Ks[idx], self.views.width, self.views.height,
                               background=self.background, backend=cfg.backend)  # fmt: skip
            term = self.photometric_loss(out.rgb, self.images[idx])
            if self.alphas is not None and cfg.lambda_mask > 0:
                term = term + cfg.lambda_mask * (out.alpha - self.alphas[idx]).abs().mean()
            if self.silhouettes is not None:
                term = term + cfg.lambda_silhouette * self._silhouette(posed.means, idx)
            loss = loss + term * (len(idx) / len(rows))
        regs = self.model.regularizers()
        loss = loss + cfg.lambda_arap * regs["arap"] + cfg.lambda_arap_l1 * regs["arap_l1"] + cfg.lambda_motion_smoothness * regs["motion_smoothness"] + cfg.lambda_rest * regs["rest"]
        if "offset_laplacian" in regs and self.offsets_on:
            loss = loss + (cfg.lambda_offset_laplacian * regs["offset_laplacian"] + cfg.lambda_offset_smoothness * regs["offset_smoothness"]
                           + cfg.lambda_offset_magnitude * regs["offset_magnitude"])  # fmt: skip
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return float(loss.detach())

    def measure_frame_errors(self, max_views: int = 8) -> Tensor:
        """[T] each keyframe's relative silhouette error now, Σ|alpha − mask| / Σ mask over up to
        ``max_views`` of its training images (relative colour error for data without alpha)."""
        errors = torch.zeros(len(self.rows_of_frame))
        ft = self.model.graph.frame_times
        with torch.no_grad():
            for f, rows in enumerate(self.rows_of_frame):
                idx = rows[torch.linspace(0, len(rows) - 1, min(max_views, len(rows))).round().long()].to(self.device)
                out = render_frame(self.model.at_time(float(ft[f])), self.viewmats[idx], self.Ks[idx], self.views.width, self.views.height,
                                   background=self.background, backend=self.config.backend)  # fmt: skip
                got, target = (out.alpha, self.alphas[idx]) if self.alphas is not None else (out.rgb, self.images[idx])
                errors[f] = float((got - target).abs().sum() / target.abs().sum().clamp_min(1e-6))
        return errors

    def _decide_offsets(self, progress: float) -> None:
        """At ``offsets_start``: let the vertex offsets train if the graph leaves a keyframe's silhouette off."""
        cfg = self.config
        if self.offsets_on is not None or progress < cfg.offsets_start or cfg.lr_offsets <= 0 or not isinstance(self.model, MeshGaussians):
            return
        self.frame_error = self.measure_frame_errors()
        worst = float(self.frame_error.max())
        self.offsets_on = cfg.offsets_gate <= 0 or worst > cfg.offsets_gate
        log.info("animate: worst keyframe silhouette error %.3f (gate %.3f): vertex offsets %s", worst, cfg.offsets_gate,
                 "on" if self.offsets_on else "off (the graph makes the shapes)")  # fmt: skip

    def _silhouette(self, means: Tensor, idx: Tensor) -> Tensor:
        """Mean silhouette chamfer (in image widths) of the surface points ``means`` over the images ``idx``."""
        uv, z = project_points(means, self.viewmats[idx], self.Ks[idx])
        total = means.sum() * 0.0
        for b, row in enumerate(idx.tolist()):
            total = total + silhouette_chamfer(uv[b][z[b] > 0], self.silhouettes[row])
        return total / (len(idx) * self.views.width)

    def postfix(self, loss: float) -> dict[str, object]:
        return {**super().postfix(loss), "frames": f"{self.active}/{len(self.rows_of_frame)}"}
