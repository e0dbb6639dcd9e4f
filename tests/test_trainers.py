"""The training loop itself: every preset of the 4D and animate trainers for 2 steps on tiny data with the real
models (fit3d's presets: test_fit3d), a fit driven by a loss provider that uses no images (with checkpoint
and resume), weights only from ``lambda_<name>``, and the configs' range checks."""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from test_animate_core import grid_mesh, synthetic_driving

from motion4d.data.mesh import Mesh
from motion4d.data.transforms import ImageSet
from motion4d.gaussians import Gaussians3D
from motion4d.gaussians.deform import DeformGaussians
from motion4d.gaussians.hexplane import HexPlaneConfig
from motion4d.gaussians.rotor4d import Gaussians4DRotor
from motion4d.gaussians.skinned import SkinnedGaussians
from motion4d.optim import trainer3d, trainer4d, trainer_animate
from motion4d.optim.checkpoint import checkpoint_path, list_checkpoints
from motion4d.optim.providers import LossOutput, StepContext
from motion4d.optim.strategy import DensifyConfig
from motion4d.optim.trainer_base import GaussianTrainer, TrainConfig
from motion4d.pipelines.animate import build_model
from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats
from motion4d.render.frame import render_frame

SIZE = 16


def _views(frames: list[tuple[float | None, Gaussians3D]], n_views: int = 4) -> ImageSet:
    """An ImageSet of each ``(time, gaussians)`` seen from ``n_views`` orbit cameras (times None: static)."""
    viewmats = orbit_viewmats(n_views, 3.0, elevation_deg=25.0)
    K = intrinsics_from_fov(45.0, SIZE, SIZE)[None].expand(n_views, 3, 3)
    imgs, alphas, ts = [], [], []
    with torch.no_grad():
        for t, g in frames:
            out = render_frame(g.at_time(), viewmats, K, SIZE, SIZE, background=torch.ones(3))
            imgs.append(out.rgb.clamp(0, 1))
            alphas.append(out.alpha)
            ts.append(torch.full((n_views,), t if t is not None else 0.0))
    m = n_views * len(frames)
    times = torch.cat(ts) if frames[0][0] is not None else None
    return ImageSet(torch.cat(imgs), torch.cat(alphas), viewmats.repeat(len(frames), 1, 1), K.repeat(len(frames), 1, 1), times,
                    [f"img{i}" for i in range(m)], SIZE, SIZE, (1.0, 1.0, 1.0))  # fmt: skip


def _cloud(shift: float = 0.0) -> Gaussians3D:
    g = Gaussians3D.random_in_sphere(80, radius=0.6, sh_degree=0, init_opacity=0.8, seed=5)
    with torch.no_grad():
        g.params["log_scales"].add_(0.7)
        g.params["means"][:, 0] += shift
    return g


@pytest.fixture(scope="module")
def static_views():
    return _views([(None, _cloud())])


@pytest.fixture(scope="module")
def video_views():
    return _views([(t, _cloud(0.3 * t)) for t in (0.0, 0.5, 1.0)], n_views=2)


@pytest.fixture(scope="module")
def mesh_world():
    V, F = grid_mesh(6)
    return Mesh(V.numpy().astype(np.float32), F.numpy())


def _finite(result) -> bool:
    return all(math.isfinite(x) for x in result.losses)


@pytest.mark.parametrize("kind", ["rotor4d", "deform"])
@pytest.mark.parametrize("name", sorted(trainer4d.PRESETS))
def test_every_reconstruct_preset_runs_two_steps_with_both_models(name, kind, video_views):
    cfg = trainer4d.preset(name, iters=2, n_init=100, progress=False)
    if kind == "rotor4d":
        model = Gaussians4DRotor.random(cfg.n_init, radius=1.5, sh_degree=cfg.sh_degree, seed=0, init_opacity=cfg.init_opacity)
        regs = {"loss_entropy", "loss_consistency4d"}
    else:
        small = HexPlaneConfig(feature_dim=4, base_resolution=8, time_resolution=4, mlp_width=16)  # the trainer is under test, not the field
        model = DeformGaussians.random(cfg.n_init, radius=1.5, sh_degree=cfg.sh_degree, seed=0, config=small, init_opacity=cfg.init_opacity)
        regs = {"loss_plane_tv", "loss_time_smoothness"}
    result = trainer4d.Trainer4D(cfg, model, video_views, 3.0).train()
    assert result.steps == 2 and _finite(result)
    assert {"loss_photometric", "loss_temporal", *regs} == set(result.terms)  # step 0 applies the temporal term
    assert all(len(h) == 2 for h in result.terms.values())


@pytest.mark.parametrize("name", sorted(trainer_animate.PRESETS))
def test_every_animate_preset_runs_two_steps(name, mesh_world):
    times = torch.tensor([0.0, 0.5, 1.0])
    cfg = trainer_animate.preset(name, iters=2, n_init=150, n_nodes=8, coverage_steps=2, progress=False)
    target = build_model(mesh_world, times, cfg)
    model = build_model(mesh_world, times, cfg)
    trainer = trainer_animate.AnimateTrainer(cfg, model, synthetic_driving(target, n_views=3, size=SIZE), 3.5)
    result = trainer.train()
    assert result.steps == 2 and _finite(result)
    assert {"loss_photometric", "loss_mask", "loss_silhouette", "loss_arap", "loss_motion_smoothness"} <= set(result.terms)
    assert set(result.report) == {"vertex_offsets", "silhouette_errors", "keyframe_silhouette_errors", "coverage_alpha_l1", "refined_nodes", "skipped_steps"}
    assert len(result.report["keyframe_silhouette_errors"]) == 3 and all(e >= 0 for e in result.report["keyframe_silhouette_errors"])
    assert len(result.report["coverage_alpha_l1"]) == 2 and trainer.coverage is not None


def test_animate_trains_skinned_splats(static_views):
    cfg = trainer_animate.preset("tiny", iters=2, n_nodes=6)
    times = torch.tensor([0.0, 1.0])
    model = SkinnedGaussians.build(_cloud(), times, n_nodes=cfg.n_nodes)
    views = dataclasses.replace(static_views, times=torch.tensor([0.0, 0.0, 1.0, 1.0]))
    result = trainer_animate.AnimateTrainer(cfg, model, views, 3.0).train()
    assert result.steps == 2 and _finite(result) and result.report["coverage_alpha_l1"] is None


# ---- a fit without images ------------------------------------------------------------------
@dataclass(frozen=True)
class PointsConfig(TrainConfig):
    """A fit of Gaussians' centres to a point cloud."""

    lambda_points: float = 2.0
    """Weight of the pull toward the target points."""


class PointsTrainer(GaussianTrainer):
    desc = "points"

    def param_lrs(self) -> dict[str, float]:
        return {**super().param_lrs(), "quats": 1e-3}


class PullToPoints:
    """``loss_points``: symmetric chamfer between the means and a random half of the target points."""

    def __init__(self, model, target: torch.Tensor):
        self.model, self.target = model, target

    def __call__(self, ctx: StepContext) -> LossOutput:
        pick = torch.randperm(len(self.target), generator=ctx.generator)[: len(self.target) // 2]
        d = torch.cdist(self.target[pick], self.model.params["means"])
        return LossOutput({"loss_points": d.min(1).values.square().mean() + d.min(0).values.square().mean()})


def _points_fit(cfg, ckpt_dir=None, seed=0):
    model = Gaussians3D.random_in_sphere(60, radius=1.0, sh_degree=0, seed=seed)
    target = torch.randn(200, 3, generator=torch.Generator().manual_seed(1)) * 0.3 + torch.tensor([0.5, 0.0, 0.0])
    trainer = PointsTrainer(cfg, model, 1.0, ckpt_dir=ckpt_dir)
    trainer.losses.append(PullToPoints(trainer.model, target))
    return trainer


def test_a_fit_without_images_resumes_exactly(tmp_path):
    cfg = PointsConfig(iters=20, n_init=60, lr_means=2e-2, lr_means_final=2e-3, ckpt_every=5, progress=False, densify=DensifyConfig(enabled=False))
    full = _points_fit(cfg, tmp_path / "full").train()
    h = full.terms["loss_points"]
    assert full.steps == 20 and h[-1] < 0.7 * h[0]
    np.testing.assert_allclose(full.losses, [cfg.lambda_points * x for x in h], rtol=1e-6)  # weighted by lambda_points only

    class Killed(Exception):
        pass

    def kill(step, loss):
        if step == 12:
            raise Killed  # as a kill: no checkpoint at step 12

    with pytest.raises(Killed):
        _points_fit(cfg, tmp_path / "run").train(on_step=kill)
    assert len(list_checkpoints(tmp_path / "run")) == 2
    resumed = _points_fit(cfg, tmp_path / "run", seed=7).train(resume=True)
    assert resumed.steps == 20 and len(resumed.losses) == 10
    np.testing.assert_allclose(resumed.terms["loss_points"], h[10:], rtol=1e-5)  # same parameters, Adam state and RNG
    torch.testing.assert_close(resumed.model.params["means"], full.model.params["means"])

    def ctrl_c(step, loss):
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _points_fit(cfg, tmp_path / "run2").train(on_step=ctrl_c)
    assert list_checkpoints(tmp_path / "run2")[-1].name == checkpoint_path(".", 12).name  # Ctrl-C keeps the work done
    resumed = _points_fit(cfg, tmp_path / "run2", seed=7).train(resume=True)
    assert len(resumed.losses) == 8
    np.testing.assert_allclose(resumed.terms["loss_points"], h[12:], rtol=1e-5)
    torch.testing.assert_close(resumed.model.params["means"], full.model.params["means"])


class BadGradientAt:
    """``loss_points`` pulling the means to the origin, with a finite loss but a NaN gradient at the steps in
    ``bad`` (|x|^½ at 0, as a degenerate triangle gives)."""

    def __init__(self, model, bad: set[int]):
        self.model, self.bad = model, bad

    def __call__(self, ctx: StepContext) -> LossOutput:
        means = self.model.params["means"]
        loss = means.square().mean()
        if ctx.step in self.bad:
            loss = loss + (means[0, 0] - means[0, 0].detach()).abs().sqrt()
        return LossOutput({"loss_points": loss})


def test_a_non_finite_gradient_skips_the_update(caplog):
    cfg = PointsConfig(iters=6, n_init=60, lr_means=2e-2, progress=False, ckpt_every=0, densify=DensifyConfig(enabled=False))
    trainer = PointsTrainer(cfg, Gaussians3D.random_in_sphere(60, radius=1.0, sh_degree=0, seed=0), 1.0)
    trainer.losses.append(BadGradientAt(trainer.model, {2, 3}))
    after = {}  # parameters after n steps

    def snapshot(done, loss):
        after[done] = trainer.model.params["means"].detach().clone()

    trainer.train(on_step=snapshot)
    assert trainer.skipped_steps == 2 and trainer.step == 6
    assert all(torch.isfinite(p).all() for p in trainer.model.params.values())
    torch.testing.assert_close(after[3], after[2])  # the steps with the NaN gradient changed nothing
    torch.testing.assert_close(after[4], after[2])
    assert not torch.equal(after[5], after[4]) and not torch.equal(after[2], after[1])
    assert "non-finite loss or gradient" in caplog.text


def test_terms_need_a_lambda_and_a_provider():
    cfg = PointsConfig(iters=1, progress=False, densify=DensifyConfig(enabled=False))
    trainer = _points_fit(cfg)
    trainer.losses.append(lambda ctx: {"loss_nope": trainer.model.params["means"].sum()})
    with pytest.raises(ValueError, match="lambda_nope"):
        trainer.train()
    bad = _points_fit(cfg)
    bad.losses.append(lambda ctx: {"points2": bad.model.params["means"].sum()})
    with pytest.raises(ValueError, match="loss_<name>"):
        bad.train()
    twice = _points_fit(cfg)
    twice.losses.append(twice.losses[0])
    with pytest.raises(ValueError, match="twice"):
        twice.train()
    with pytest.raises(ValueError, match="no loss providers"):
        PointsTrainer(cfg, Gaussians3D.random_in_sphere(10, sh_degree=0, seed=0)).train()
    zero = _points_fit(dataclasses.replace(cfg, lambda_points=0.0))
    with pytest.raises(ValueError, match="weight > 0"):
        zero.train()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: trainer3d.preset("tiny", iters=-1), "iters must be >= 0, got -1"),
        (lambda: trainer3d.preset("tiny", batch_size=0), "batch_size must be >= 1"),
        (lambda: trainer3d.preset("tiny", lambda_dssim=1.5), "lambda_dssim must be in"),
        (lambda: trainer3d.preset("tiny", lr_means=-1e-3), "lr_means must be >= 0"),
        (lambda: trainer3d.preset("tiny", time_budget_s=-1.0), "time_budget_s must be >= 0 or None"),
        (lambda: trainer3d.preset("tiny", background=(2.0, 0.0, 0.0)), "background must be"),
        (lambda: trainer4d.preset("tiny", batch_views=0), "batch_views must be >= 1, got 0"),
        (lambda: trainer4d.preset("tiny", lambda_temporal=-0.1), "lambda_temporal must be >= 0"),
        (lambda: trainer4d.preset("tiny", lr_field=-1.0), "lr_field must be >= 0"),
        (lambda: trainer_animate.preset("tiny", lambda_arap=-1.0), "lambda_arap must be >= 0"),
        (lambda: trainer_animate.preset("tiny", warmup_fraction=2.0), "warmup_fraction must be in"),
        (lambda: trainer_animate.preset("tiny", frame_error_share=1.5), "frame_error_share must be in"),
        (lambda: trainer_animate.preset("tiny", surface_max_stretch=0.5), "surface_max_stretch must be 0 (no limit) or >= 1"),
        (lambda: DensifyConfig(refine_every=0), "refine_every must be >= 1"),
        (lambda: trainer4d.Reconstruct4DConfig.from_dict({"iters": -5}), "iters must be >= 0, got -5"),
    ],
)
def test_config_ranges_are_checked_naming_the_field(make, message):
    with pytest.raises(ValueError) as e:
        make()
    assert str(e.value).startswith(message)


def test_rebuilt_optimizer_keeps_kept_state_and_grows_grown_state():
    from motion4d.optim.trainer_base import rebuilt_optimizer

    a, b = torch.nn.Parameter(torch.ones(2, 3)), torch.nn.Parameter(torch.ones(2, 3, 4))
    old = torch.optim.Adam([{"params": [a], "name": "a"}, {"params": [b], "name": "b"}])
    ((a * torch.arange(6.0).reshape(2, 3)).sum() + (b * 2).sum()).backward()
    old.step()
    grown = torch.nn.Parameter(torch.ones(2, 5, 4))
    new = rebuilt_optimizer(old, torch.optim.Adam([{"params": [a], "name": "a"}, {"params": [grown], "name": "b"}]))
    assert new.state[a] is old.state[a]
    s, o = new.state[grown], old.state[b]
    assert torch.equal(s["exp_avg"][:, :3], o["exp_avg"]) and bool((s["exp_avg"][:, 3:] == 0).all())
    assert torch.equal(s["exp_avg_sq"][:, :3], o["exp_avg_sq"])
    assert torch.allclose(s["exp_avg_sq"][:, 3:], o["exp_avg_sq"].mean(1, keepdim=True).expand(2, 2, 4))
    assert float(s["step"]) == float(o["step"])
    grown.grad = torch.ones_like(grown)
    new.step()  # the carried state is usable
    assert torch.isfinite(grown).all()
