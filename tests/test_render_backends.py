"""The fast backends against the dense float64 reference: values and gradients."""

import pytest
import torch
from render_scenes import cameras, random_scene

from motion4d.render import rasterization

BACKENDS = ["numba", "torch"]


def _render(backend, params, viewmats, Ks, w, h, dtype, **kw):
    ps = [p.detach().to(dtype).requires_grad_() for p in params]
    out, alpha, meta = rasterization(*ps, viewmats.to(dtype), Ks.to(dtype), w, h, backend=backend, **kw)
    return ps, out, alpha, meta


def _close_fraction(a, b, atol):
    return ((a - b).abs() <= atol).float().mean().item()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n,w,h,n_cam", [(1, 8, 8, 1), (60, 33, 17, 2), (400, 48, 40, 3)])
def test_forward_and_gradients_match_reference(backend, n, w, h, n_cam):
    params = random_scene(n, seed=n)
    viewmats, Ks = cameras(w, h, n_cam)
    bg = torch.rand(n_cam, 3, generator=torch.Generator().manual_seed(1))
    weights = torch.rand(n_cam, h, w, 3, generator=torch.Generator().manual_seed(2))
    weights_a = torch.rand(n_cam, h, w, 1, generator=torch.Generator().manual_seed(3))
    results = {}
    for name, dtype in ((backend, torch.float32), ("reference", torch.float64)):
        ps, out, alpha, meta = _render(name, params, viewmats, Ks, w, h, dtype, backgrounds=bg.to(dtype))
        ((out * weights.to(dtype)).sum() + (alpha * weights_a.to(dtype)).sum()).backward()
        results[name] = (out.double(), alpha.double(), [p.grad.double() for p in ps], meta)
    out, alpha, grads, meta = results[backend]
    out_r, alpha_r, grads_r, meta_r = results["reference"]
    # float32 vs float64 can flip a threshold decision (α = 1/255, T = 1e-4) at a rare pixel.
    assert _close_fraction(out, out_r, 1e-4) > 0.999
    assert _close_fraction(alpha, alpha_r, 1e-4) > 0.999
    assert (out - out_r).abs().max() < 2e-2
    assert torch.equal(meta["radii"], meta_r["radii"])
    for name, g, g_r in zip(["means", "quats", "scales", "opacities", "colors"], grads, grads_r):
        scale = g_r.abs().max().clamp(min=1e-6)
        assert ((g - g_r).abs().max() / scale) < 2e-3, name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["RGB", "D", "ED", "RGB+D", "RGB+ED"])
def test_render_modes_match_reference(backend, mode):
    params = random_scene(80, seed=5)
    viewmats, Ks = cameras(24, 20, 2)
    bg = torch.tensor([[0.2, 0.4, 0.6], [1.0, 1.0, 1.0]])
    _, out, alpha, _ = _render(backend, params, viewmats, Ks, 24, 20, torch.float32, render_mode=mode, backgrounds=bg)
    _, out_r, alpha_r, _ = _render("reference", params, viewmats, Ks, 24, 20, torch.float64, render_mode=mode, backgrounds=bg.double())
    channels = {"RGB": 3, "D": 1, "ED": 1, "RGB+D": 4, "RGB+ED": 4}[mode]
    assert out.shape == (2, 20, 24, channels)
    assert _close_fraction(out.double(), out_r, 1e-3) > 0.995
    if mode in ("D", "RGB+D"):
        # Accumulated depth ≤ max depth × alpha; background contributes nothing to depth.
        assert (out[..., -1] <= 6.0 * alpha[..., 0] + 1e-4).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_sh_colors_match_reference(backend, sh_degree):
    params = random_scene(50, seed=7, sh_degree=sh_degree)
    viewmats, Ks = cameras(20, 16, 2)
    _, out, _, _ = _render(backend, params, viewmats, Ks, 20, 16, torch.float32, sh_degree=sh_degree)
    _, out_r, _, _ = _render("reference", params, viewmats, Ks, 20, 16, torch.float64, sh_degree=sh_degree)
    assert _close_fraction(out.double(), out_r, 1e-4) > 0.999


@pytest.mark.parametrize("backend", BACKENDS)
def test_feature_channels_and_per_view_colors(backend):
    means, quats, scales, opac, _ = random_scene(40, seed=9)
    viewmats, Ks = cameras(16, 16, 2)
    feats = torch.rand(2, 40, 5)  # [C,N,D] per-view features, D=5
    out, _, _ = rasterization(means, quats, scales, opac, feats, viewmats, Ks, 16, 16, backend=backend)
    ref, _, _ = rasterization(means.double(), quats.double(), scales.double(), opac.double(), feats.double(),
                              viewmats.double(), Ks.double(), 16, 16, backend="reference")
    assert out.shape == (2, 16, 16, 5)
    assert _close_fraction(out.double(), ref, 1e-4) > 0.999


def test_backends_agree_with_each_other_on_a_larger_scene():
    params = random_scene(3000, seed=11, scale_range=(0.005, 0.05))
    viewmats, Ks = cameras(96, 80, 2)
    outs = [rasterization(*params, viewmats, Ks, 96, 80, backend=b)[0] for b in BACKENDS]
    assert _close_fraction(outs[0], outs[1], 1e-4) > 0.999


def test_numba_gradient_matches_finite_differences():
    """Float32 central differences on the numba path, independent of any autograd reference."""
    params = random_scene(12, seed=13, scale_range=(0.2, 0.4))
    viewmats, Ks = cameras(16, 16, 1)
    weights = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(0))

    def loss(ps):
        return (rasterization(*ps, viewmats, Ks, 16, 16, backend="numba")[0] * weights).sum()

    ps = [p.clone().requires_grad_() for p in params]
    loss(ps).backward()
    eps = 1e-3
    for i, name in [(0, "means"), (2, "scales"), (3, "opacities"), (4, "colors")]:
        for idx in [(0,), (5,), (11,)]:
            j = idx + (0,) * (params[i].dim() - 1)
            plus = [p.clone() for p in params]
            minus = [p.clone() for p in params]
            plus[i][j] += eps
            minus[i][j] -= eps
            with torch.no_grad():
                fd = (loss(plus) - loss(minus)) / (2 * eps)
            assert abs(fd.item() - ps[i].grad[j].item()) < 2e-2 * max(1.0, abs(fd.item())), (name, idx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_viewmat_gradients_match_reference(backend):
    params = random_scene(50, seed=21)
    viewmats, Ks = cameras(24, 24, 2)
    grads = {}
    for name, dtype in ((backend, torch.float32), ("reference", torch.float64)):
        vm = viewmats.detach().to(dtype).clone().requires_grad_()
        out, _, _ = rasterization(*[p.to(dtype) for p in params], vm, Ks.to(dtype), 24, 24, backend=name)
        out.square().sum().backward()
        grads[name] = vm.grad.double()
    assert ((grads[backend] - grads["reference"]).abs().max() / grads["reference"].abs().max()) < 2e-3
