"""Trainer3D and the fit3d / evaluate pipelines on tiny real scenes (CPU)."""

import dataclasses
import json
from types import SimpleNamespace

import pytest
import torch

from motion4d.gaussians import Gaussians3D
from motion4d.optim.checkpoint import list_checkpoints, load_checkpoint
from motion4d.metrics.views import evaluate_views
from motion4d.render.frame import render_frame
from motion4d.optim.trainer3d import PRESETS, Fit3DConfig, Trainer3D, preset
from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats

SIZE = 32


@pytest.fixture(scope="module")
def scene():
    """Views of a known random Gaussian cloud, as the trainer's ImageSet would hold them."""
    gt = Gaussians3D.random_in_sphere(150, radius=0.6, sh_degree=0, init_opacity=0.8, seed=5)
    with torch.no_grad():
        gt.params["log_scales"].add_(0.7)
    viewmats = orbit_viewmats(10, 3.0, elevation_deg=25.0)
    Ks = intrinsics_from_fov(45.0, SIZE, SIZE)[None].repeat(10, 1, 1)
    with torch.no_grad():
        out = render_frame(gt.at_time(), viewmats, Ks, SIZE, SIZE, background=torch.ones(3))
    return SimpleNamespace(images=out.rgb.clamp(0, 1), alphas=out.alpha, viewmats=viewmats, Ks=Ks, width=SIZE, height=SIZE, background=(1.0, 1.0, 1.0))


def _model(cfg, seed=0):
    return Gaussians3D.random_in_sphere(cfg.n_init, radius=3.0 * cfg.init_radius, sh_degree=cfg.sh_degree, seed=seed, init_opacity=cfg.init_opacity)


def _psnr(model, scene):
    return evaluate_views(model.at_time(), scene.images, scene.viewmats, scene.Ks, background=torch.ones(3)).mean_psnr


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_two_steps(name, scene):
    cfg = preset(name, iters=2, n_init=200, progress=False, ckpt_every=0)
    result = Trainer3D(cfg, _model(cfg), scene, scene_scale=3.0).train()
    assert result.steps == 2 and len(result.losses) == 2 and all(map(lambda x: x == x, result.losses))


@pytest.mark.slow  # > 5 s
def test_fit_improves_psnr_and_densifies(scene):
    cfg = preset("tiny", iters=60, random_background=True)
    model = _model(cfg)
    before = _psnr(model, scene)
    result = Trainer3D(cfg, model, scene, scene_scale=3.0).train()
    after = _psnr(result.model, scene)
    assert after > before + 3.0, (before, after)
    assert sum(result.losses[-10:]) < sum(result.losses[:10])
    assert result.n_gaussians != cfg.n_init  # density control changed the count


@pytest.mark.slow  # > 5 s
def test_resume_after_kill_continues(scene, tmp_path):
    cfg = preset("tiny", iters=20, ckpt_every=5)
    full = Trainer3D(cfg, _model(cfg), scene, 3.0, ckpt_dir=tmp_path / "full").train()

    class Killed(Exception):  # a kill: unlike Ctrl-C (KeyboardInterrupt), it leaves no checkpoint at step 12
        pass

    def kill(step, loss):
        if step == 12:
            raise Killed

    t = Trainer3D(cfg, _model(cfg), scene, 3.0, ckpt_dir=tmp_path / "run")
    with pytest.raises(Killed):
        t.train(on_step=kill)
    assert [load_checkpoint(p).step for p in list_checkpoints(tmp_path / "run")] == [5, 10]

    seen = []
    resumed = Trainer3D(cfg, _model(cfg, seed=99), scene, 3.0, ckpt_dir=tmp_path / "run")
    result = resumed.train(resume=True, on_step=lambda s, l: seen.append(s))
    assert seen[0] == 11 and result.steps == 20 and len(result.losses) == 10
    assert load_checkpoint(list_checkpoints(tmp_path / "run")[-1]).step == 20
    assert result.n_gaussians == full.n_gaussians
    for k in full.model.params:  # same RNG, optimizer and strategy state → the same fit
        torch.testing.assert_close(result.model.params[k], full.model.params[k], atol=1e-4, rtol=1e-3)


def test_time_budget_stops_and_keeps_result(scene, tmp_path):
    cfg = preset("tiny", iters=1000, time_budget_s=0.0)
    result = Trainer3D(cfg, _model(cfg), scene, 3.0, ckpt_dir=tmp_path).train()
    assert result.stopped_by_budget and result.steps == 1 and result.checkpoint.is_file()


def test_checkpoint_restores_optimizer(scene, tmp_path):
    cfg = preset("tiny", iters=6, ckpt_every=0)
    t = Trainer3D(cfg, _model(cfg), scene, 3.0, ckpt_dir=tmp_path)
    t.train()
    u = Trainer3D(cfg, _model(cfg, seed=3), scene, 3.0, ckpt_dir=tmp_path)
    assert u.restore() and u.step == 6
    for g, h in zip(t.optimizer.param_groups, u.optimizer.param_groups):
        assert g["name"] == h["name"] and g["lr"] == pytest.approx(h["lr"])
        sa, sb = t.optimizer.state[g["params"][0]], u.optimizer.state[h["params"][0]]
        torch.testing.assert_close(sa["exp_avg_sq"], sb["exp_avg_sq"])
        assert float(sa["step"]) == float(sb["step"])


def test_config_round_trip_and_errors():
    cfg = preset("fast", background=(0.0, 0.5, 1.0))
    again = Fit3DConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown"):
        Fit3DConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="preset"):
        preset("nope")
    assert dataclasses.replace(PRESETS["default"], iters=7).densify == PRESETS["default"].densify
