"""Densification: row edits keep Adam state consistent; clone / split / prune / reset behave as 3DGS."""

import torch

from motion4d.gaussians import Gaussians3D
from motion4d.optim.strategy import DensifyConfig, DensifyStrategy, edit_rows
from motion4d.render import rasterization
from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats


def _model_and_adam(n=6):
    g = Gaussians3D.random_in_sphere(n, radius=1.0, sh_degree=1, seed=0)
    opt = torch.optim.Adam([{"params": [p], "name": k, "lr": 1e-2} for k, p in g.params.items()], eps=1e-15)
    f = g.at_time()
    (f.means.square().sum() + f.scales.sum() + f.opacities.sum() + f.sh.sum() + f.quats.sum()).backward()
    opt.step()
    opt.zero_grad()
    return g, opt


def _fake_meta(grads: torch.Tensor, width=64, height=64):
    m = torch.zeros_like(grads, requires_grad=True)
    m.grad = grads.clone()
    radii = torch.ones(grads.shape[:-1] + (2,), dtype=torch.int32)
    return {"means2d": m, "radii": radii, "width": width, "height": height, "n_cameras": grads.shape[0]}


def test_edit_rows_keeps_and_zeros_adam_moments():
    g, opt = _model_and_adam(5)
    before = {k: (p.detach().clone(), opt.state[p]["exp_avg"].clone()) for k, p in g.params.items()}
    keep = torch.tensor([0, 2, 4])
    edit_rows(g.params, opt, keep, {k: p.data[:2] for k, p in g.params.items()})
    assert len(g) == 5
    for k, p in g.params.items():
        torch.testing.assert_close(p.data[:3], before[k][0][keep])
        st = opt.state[p]
        torch.testing.assert_close(st["exp_avg"][:3], before[k][1][keep])
        assert st["exp_avg"][3:].abs().sum() == 0 and st["exp_avg_sq"].shape == p.shape
        assert any(q is p for grp in opt.param_groups for q in grp["params"])
    assert len(opt.state) == len(g.params)
    g.at_time().means.sum().backward()
    opt.step()  # shapes still agree


def test_clone_split_prune():
    g, opt = _model_and_adam(4)
    with torch.no_grad():
        g.params["log_scales"].data[:] = torch.log(torch.tensor([0.001, 0.001, 0.5, 0.5]))[:, None]
        g.params["opacity_logits"].data[:] = torch.logit(torch.tensor([0.5, 0.5, 0.5, 0.001]))
    cfg = DensifyConfig(refine_start=0, refine_every=1, reset_every=0, grow_grad2d=0.01, grow_scale3d=0.01)
    s = DensifyStrategy(cfg, scene_scale=1.0)
    # Gaussians 0 (small) and 2 (large) have large gradients; 3 is nearly transparent.
    grads = torch.zeros(1, 4, 2)
    grads[0, 0, 0] = grads[0, 2, 0] = 1.0
    s.update(g.params, 1, _fake_meta(grads))
    parent_mean = g.means[2].detach().clone()
    stats = s.refine(g.params, opt, 1)
    assert (stats.n_cloned, stats.n_split, stats.n_pruned) == (1, 1, 1)
    # 4 + 1 clone - 1 split parent + 2 children - 1 pruned
    assert len(g) == 5 == stats.n_gaussians
    scales = g.scales.detach()
    assert torch.isclose(scales[-2:], torch.full((2, 3), 0.5 / 1.6)).all()
    assert ((g.means[-2:].detach() - parent_mean).norm(dim=-1) < 3.0).all()
    assert (scales < 0.01).all(dim=-1).sum() == 3  # small Gaussians 0 and 1, and the clone of 0
    assert s.grad2d.shape == (5,) and s.grad2d.sum() == 0


def test_cap_and_reset_and_schedule():
    g, opt = _model_and_adam(4)
    with torch.no_grad():
        g.params["log_scales"].data.fill_(-7.0)
    cfg = DensifyConfig(refine_start=10, refine_every=10, reset_every=20, grow_grad2d=0.0, max_gaussians=6)
    s = DensifyStrategy(cfg, scene_scale=1.0)
    s.update(g.params, 5, _fake_meta(torch.rand(2, 4, 2) + 0.1))
    assert s.refine(g.params, opt, 5) is None  # before refine_start
    s.update(g.params, 20, _fake_meta(torch.rand(2, 4, 2) + 0.1))
    stats = s.refine(g.params, opt, 20)
    assert stats.n_cloned == 2 and len(g) == 6
    assert (g.opacities <= 2 * cfg.prune_opacity + 1e-6).all()
    assert opt.state[g.params["opacity_logits"]]["exp_avg"].abs().sum() == 0


def test_update_from_real_render_counts_visible():
    g = Gaussians3D.random_in_sphere(200, radius=0.5, sh_degree=0, seed=0)
    viewmats = orbit_viewmats(2, 3.0)
    Ks = intrinsics_from_fov(40.0, 32, 32)[None].repeat(2, 1, 1)
    f = g.at_time()
    img, _, meta = rasterization(f.means, f.quats, f.scales, f.opacities, f.sh, viewmats, Ks, 32, 32, sh_degree=0)
    img.mean().backward()
    s = DensifyStrategy(DensifyConfig(), scene_scale=1.0)
    s.update(g.params, 1, meta)
    visible = (meta["radii"] > 0).all(-1).sum(0).float()
    torch.testing.assert_close(s.count, visible)
    assert s.grad2d.sum() > 0
    state = s.state_dict()
    s2 = DensifyStrategy(DensifyConfig(), scene_scale=1.0)
    s2.load_state_dict(state)
    torch.testing.assert_close(s2.grad2d, s.grad2d)
