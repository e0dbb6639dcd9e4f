"""Deformation-field Gaussians: identity at start, training makes them move, HexPlane lookups vs a
hand-written bilinear reference, regularisers, files, rendering and densification rows."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from render_scenes import cameras

from motion4d.gaussians.deform import DeformGaussians, HexPlaneConfig, HexPlaneField
from motion4d.gaussians.gaussians3d import PARAM_NAMES, Gaussians3D
from motion4d.gaussians.hexplane import SPACE_PAIRS, TIME_PAIRS, sample_planes
from motion4d.render import rasterization

SMALL = HexPlaneConfig(feature_dim=4, base_resolution=8, multires=(1, 2), time_resolution=6, mlp_width=16)


def _frame_tensors(frame):
    return (frame.means, frame.quats, frame.scales, frame.opacities, frame.sh)


def _time_loss(model: DeformGaussians, times=(0.0, 0.5, 1.0)) -> torch.Tensor:
    """Pull the Gaussians along +x by t: a loss whose optimum moves with time."""
    loss = 0.0
    for t in times:
        f = model.at_time(t)
        target = model.params["means"].detach() + torch.tensor([t, 0.0, 0.0])
        quat = torch.tensor([1.0, 0.2 * t, 0.0, 0.0])
        loss = loss + (f.means - target).square().sum() + (f.quats - quat).square().sum() + f.scales.sum() + f.opacities.sum()
    return loss


def _train(model: DeformGaussians, steps: int, lr: float = 1e-2) -> None:
    opt = torch.optim.Adam([{"params": list(model.params.values())}, {"params": list(model.field_parameters().values())}], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        _time_loss(model).backward()
        opt.step()


def bilinear_reference(plane: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Plane [F,H,W] sampled at uv [N,2] in [-1,1] (u along W, v along H; corners aligned; border) → [N,F]."""
    _, h, w = plane.shape
    x = ((uv[:, 0] + 1) / 2 * (w - 1)).clamp(0, w - 1)
    y = ((uv[:, 1] + 1) / 2 * (h - 1)).clamp(0, h - 1)
    x0 = x.floor().long().clamp(max=w - 2)
    y0 = y.floor().long().clamp(max=h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    p = plane.permute(1, 2, 0)  # [H,W,F]
    return (p[y0, x0] * (1 - fx) * (1 - fy) + p[y0, x0 + 1] * fx * (1 - fy)
            + p[y0 + 1, x0] * (1 - fx) * fy + p[y0 + 1, x0 + 1] * fx * fy)


def field_reference(field: HexPlaneField, xyz: torch.Tensor, t: float) -> torch.Tensor:
    """The HexPlane features by hand: product of the six planes' bilinear samples, levels concatenated."""
    lo, hi = field.aabb[0], field.aabb[1]
    t0, t1 = field.config.time_range
    coords = torch.cat([(xyz - lo) / (hi - lo) * 2 - 1, torch.full_like(xyz[:, :1], (t - t0) / (t1 - t0) * 2 - 1)], 1)
    levels = []
    for space, time in zip(field.space, field.time):
        feat = 1.0
        for planes, pairs in ((space, SPACE_PAIRS), (time, TIME_PAIRS)):
            for plane, (a, b) in zip(planes, pairs):
                feat = feat * bilinear_reference(plane, coords[:, [a, b]])
        levels.append(feat)
    return torch.cat(levels, 1)


def test_zero_initialised_deformation_is_identity():
    model = DeformGaussians.random(300, sh_degree=1, seed=1, config=SMALL)
    canon = _frame_tensors(model.at_time(None))
    n = len(model)
    for t in (0.0, 0.25, 0.7, 1.0, 3.0, torch.tensor(0.4), torch.linspace(0, 1, n)):
        for a, b in zip(_frame_tensors(model.at_time(t)), canon):
            assert torch.equal(a, b)
        assert all(torch.count_nonzero(d) == 0 for d in model.deltas(t).values())
    assert torch.equal(model.motion_displacement(0.0, 1.0), torch.zeros(n))
    assert model.at_time(0.5).sh_degree == 1 and len(model.at_time(0.5)) == n


def test_training_makes_deformation_nonzero_and_time_dependent():
    model = DeformGaussians.random(200, sh_degree=0, seed=2, config=SMALL)
    _train(model, 1)
    d0, d1 = model.deltas(0.0), model.deltas(1.0)
    assert d0["means"].abs().max() > 0 and d0["log_scales"].abs().max() > 0
    # Time planes start at 1 (neutral), so the first step only trains the heads: t still has no effect.
    assert torch.allclose(d0["means"], d1["means"])
    _train(model, 1)
    assert not torch.allclose(model.deltas(0.0)["means"], model.deltas(1.0)["means"], atol=1e-7)
    assert model.motion_displacement(0.0, 1.0).max() > 0
    baked = model.frame_gaussians3d(1.0)
    assert torch.equal(baked.at_time().means, model.at_time(1.0).means.detach())
    # Jittered time planes make t matter after a single step.
    jitter = dataclasses.replace(SMALL, time_init_range=(0.9, 1.1))
    model = DeformGaussians.random(200, sh_degree=0, seed=2, config=jitter)
    assert torch.equal(model.at_time(0.0).means, model.at_time(1.0).means)
    _train(model, 1)
    assert not torch.allclose(model.at_time(0.0).means, model.at_time(1.0).means, atol=1e-7)


def test_gradients_reach_field_and_per_gaussian_params():
    model = DeformGaussians.random(150, sh_degree=1, seed=3, config=dataclasses.replace(SMALL, deform_opacity=True))
    _train(model, 1)
    model.zero_grad()
    f = model.at_time(0.3)
    (_time_loss(model) + f.sh.sum()).backward()
    for name in PARAM_NAMES:
        assert model.params[name].grad is not None and model.params[name].grad.abs().sum() > 0, name
    for p in model.field_parameters().values():
        assert p.grad is not None and p.grad.abs().sum() > 0
    field_ids = {id(p) for p in model.field_parameters().values()}
    assert not field_ids & {id(p) for p in model.params.values()}
    assert len(field_ids) + len(model.params) == len(list(model.parameters()))


@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 2, 2), (2, 9, 4)])
def test_sample_planes_matches_bilinear_reference(shape):
    f, h, w = shape
    g = torch.Generator().manual_seed(h * w)
    planes = torch.randn(2, f, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(2, 40, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2).requires_grad_(True)
    fast = sample_planes(planes, uv)
    ref = torch.stack([bilinear_reference(planes[i], uv[i]) for i in range(2)])
    torch.testing.assert_close(fast, ref)
    w_out = torch.randn(fast.shape, generator=g, dtype=torch.float64)
    gp_fast, gu_fast = torch.autograd.grad((fast * w_out).sum(), (planes, uv))
    gp_ref, gu_ref = torch.autograd.grad((ref * w_out).sum(), (planes, uv))
    torch.testing.assert_close(gp_fast, gp_ref)
    inside = (uv.abs() < 0.99).all(-1, keepdim=True)  # the reference's clamp has no slope outside
    torch.testing.assert_close(gu_fast * inside, gu_ref * inside)


@pytest.mark.parametrize("n", [1, 17, 256])
def test_field_matches_reference_composition(n):
    cfg = dataclasses.replace(SMALL, time_init_range=(0.5, 1.5))
    field = HexPlaneField(cfg, torch.tensor([-1.0, -2.0, -1.0, 1.0, 2.0, 3.0]), dtype=torch.float64)
    xyz = torch.rand(n, 3, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 4 - 2
    for t in (0.0, 0.37, 1.0):
        out = field(xyz, t)
        assert out.shape == (n, cfg.out_dim)
        torch.testing.assert_close(out, field_reference(field, xyz, t))
    torch.testing.assert_close(field(xyz, torch.full((n,), 0.37, dtype=torch.float64)), field(xyz, 0.37))


@pytest.mark.parametrize("n", [1, 300, 2049])
def test_numba_field_matches_grid_sample(n):
    """The fused numba kernels against the grid_sample path: values and gradients, points outside the box too."""
    cfg = dataclasses.replace(SMALL, time_init_range=(0.5, 1.5), multires=(1, 3))
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
    fast = HexPlaneField(dataclasses.replace(cfg, backend="numba"), aabb, generator=torch.Generator().manual_seed(n))
    ref = HexPlaneField(dataclasses.replace(cfg, backend="torch"), aabb, generator=torch.Generator().manual_seed(n))
    g = torch.Generator().manual_seed(n + 1)
    xyz = (torch.rand(n, 3, generator=g) * 2.4 - 1.2).requires_grad_(True)
    t = torch.rand(n, generator=g) * 1.4 - 0.2
    a, b = fast(xyz, t), ref(xyz, t)
    torch.testing.assert_close(a, b)
    w = torch.randn(a.shape, generator=g)
    ga = torch.autograd.grad((a * w).sum(), [xyz, *fast.space, *fast.time])
    gb = torch.autograd.grad((b * w).sum(), [xyz, *ref.space, *ref.time])
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="numba"):
        fast(xyz.detach().double(), 0.5)


def test_regularizers_finite_differentiable_zero_for_constant_planes():
    model = DeformGaussians.random(50, sh_degree=0, config=dataclasses.replace(SMALL, time_init_range=(0.5, 1.5)))
    reg = model.regularizers(0.5)
    assert set(reg) == {"plane_tv", "time_smoothness"}
    assert all(v.dim() == 0 and torch.isfinite(v) and v > 0 for v in reg.values())
    sum(reg.values()).backward()
    assert all(p.grad.abs().sum() > 0 for p in [*model.field.space, *model.field.time])
    with torch.no_grad():
        for p in model.field.space:
            p.fill_(0.3)
        for p in model.field.time:  # linear in time: no second difference
            p.copy_(torch.linspace(0, 1, p.shape[2])[None, None, :, None].expand_as(p))
    reg = model.regularizers(0.5)
    assert reg["plane_tv"] == 0 and reg["time_smoothness"].abs() < 1e-12


def test_save_load_round_trip(tmp_path):
    cfg = dataclasses.replace(SMALL, multires=(1, 2, 3), deform_opacity=True, time_range=(-1.0, 2.0))
    model = DeformGaussians.random(120, center=(0.5, 0.0, -1.0), radius=2.0, sh_degree=2, seed=4, config=cfg)
    _train(model, 2)
    path = model.save(tmp_path / "deform.safetensors")
    loaded = DeformGaussians.load(path)
    assert loaded.config == cfg and loaded.sh_degree == 2 and len(loaded) == 120
    torch.testing.assert_close(loaded.field.aabb, model.field.aabb, rtol=0, atol=0)
    with torch.no_grad():
        for t in (None, -1.0, 0.3, 1.7):
            for a, b in zip(_frame_tensors(loaded.at_time(t)), _frame_tensors(model.at_time(t))):
                assert torch.equal(a, b)
    g3d = Gaussians3D.random_in_sphere(10, sh_degree=0)
    g3d.save(tmp_path / "static.safetensors")
    with pytest.raises(ValueError, match="not a motion4d.DeformGaussians"):
        DeformGaussians.load(tmp_path / "static.safetensors")
    with pytest.raises(FileNotFoundError):
        DeformGaussians.load(tmp_path / "missing.safetensors")


def test_render_a_deformed_frame():
    model = DeformGaussians.random(200, radius=0.8, sh_degree=1, seed=5, config=SMALL)
    _train(model, 2)
    viewmats, Ks = cameras(24, 20, n=1)
    frame = model.at_time(0.6)
    rgb, alpha, _ = rasterization(frame.means, frame.quats, frame.scales, frame.opacities, frame.sh, viewmats, Ks,
                                  24, 20, sh_degree=frame.sh_degree, backend="torch")
    assert rgb.shape == (1, 20, 24, 3) and alpha.shape == (1, 20, 24, 1)
    assert torch.isfinite(rgb).all() and alpha.max() > 0.05
    rgb.mean().backward()
    assert model.field.space[0].grad.abs().sum() > 0 and model.params["means"].grad.abs().sum() > 0


def test_split_clone_rows_and_editing_params():
    model = DeformGaussians.random(40, sh_degree=1, seed=6, config=SMALL)
    mask = torch.zeros(40, dtype=torch.bool)
    mask[[1, 5, 7]] = True
    clones = model.clone_rows(mask)
    children = model.split_rows(mask, n_children=2, factor=1.6, generator=torch.Generator().manual_seed(0))
    for name, p in model.params.items():
        assert clones[name].shape == (3, *p.shape[1:])
        assert children[name].shape == (6, *p.shape[1:])
    torch.testing.assert_close(clones["means"], model.params["means"][mask])
    torch.testing.assert_close(children["log_scales"][:3].exp(), model.scales.detach()[mask] / 1.6)
    torch.testing.assert_close(children["sh0"][3:], model.params["sh0"][mask])
    assert model.max_scale3d().shape == (40,)
    # The densification strategy appends rows; the field copes with any N.
    with torch.no_grad():
        for name in list(model.params):
            model.params[name] = torch.nn.Parameter(torch.cat([model.params[name], children[name]]))
    frame = model.at_time(0.5)
    assert len(model) == 46 and frame.means.shape == (46, 3) and frame.sh.shape == (46, 4, 3)
    with pytest.raises(ValueError, match="mask"):
        model.clone_rows(torch.ones(3, dtype=torch.bool))


def test_bad_inputs_raise():
    model = DeformGaussians.random(10, sh_degree=0, config=SMALL)
    with pytest.raises(ValueError, match="t must be"):
        model.at_time(torch.zeros(3))
    with pytest.raises(ValueError, match="positive int"):
        HexPlaneConfig(feature_dim=0)
    with pytest.raises(ValueError, match="time_init_range"):
        HexPlaneConfig(time_init_range=(1.0, 0.5))
    with pytest.raises(ValueError, match="aabb"):
        HexPlaneConfig(aabb=(0, 0, 0, 1, -1, 1))
    with pytest.raises(ValueError, match="bounding box"):
        HexPlaneField(SMALL)
    with pytest.raises(ValueError, match="means"):
        DeformGaussians(torch.zeros(4, 2), torch.zeros(4, 4), torch.zeros(4, 3), torch.zeros(4), torch.zeros(4, 1, 3),
                        torch.zeros(4, 0, 3))


def test_densify_strategy_edits_rows_and_the_field_follows():
    from motion4d.optim.strategy import DensifyConfig, DensifyStrategy

    model = DeformGaussians.random(60, radius=0.8, sh_degree=0, seed=7, config=SMALL)
    opt = torch.optim.Adam([{"params": list(model.params.values())}, {"params": list(model.field_parameters().values()), "lr": 1e-3}])
    cfg = DensifyConfig(refine_start=0, refine_every=1, reset_every=0, grow_grad2d=0.0, grow_scale3d=0.05,
                        prune_opacity=0.0)
    strategy = DensifyStrategy(cfg, scene_scale=1.0, generator=torch.Generator().manual_seed(0))
    viewmats, Ks = cameras(16, 16, n=1)
    frame = model.at_time(0.4)
    rgb, _, meta = rasterization(frame.means, frame.quats, frame.scales, frame.opacities, frame.sh, viewmats, Ks,
                                 16, 16, sh_degree=0, backend="torch")
    meta.update(width=16, height=16, n_cameras=1)
    meta["means2d"].retain_grad()
    rgb.sum().backward()
    opt.step()
    strategy.update(model.params, 1, meta)
    stats = strategy.refine(model.params, opt, 1, model=model)
    assert stats is not None and stats.n_cloned + stats.n_split > 0 and len(model) == stats.n_gaussians > 60
    opt.zero_grad()
    model.at_time(0.7).means.sum().backward()
    opt.step()
    assert all(p.shape[0] == len(model) for p in model.params.values())
