"""Edge cases and bad input for rasterization."""

import pytest
import torch
from render_scenes import cameras, random_scene

from motion4d.render import rasterization

BACKENDS = ["numba", "torch", "reference"]


def _one(mean, scale=0.2, opacity=0.8):
    means = torch.tensor([mean], dtype=torch.float32)
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    scales = torch.full((1, 3), scale)
    return means, quats, scales, torch.tensor([opacity]), torch.tensor([[1.0, 0.5, 0.25]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_gaussians(backend):
    params = [p[:0] for p in random_scene(3)]
    viewmats, Ks = cameras(8, 6, 2)
    bg = torch.tensor([[0.1, 0.2, 0.3], [1.0, 1.0, 1.0]])
    out, alpha, meta = rasterization(*params, viewmats, Ks, 8, 6, backgrounds=bg, backend=backend)
    assert out.shape == (2, 6, 8, 3) and alpha.shape == (2, 6, 8, 1)
    assert torch.allclose(out, bg[:, None, None, :].expand_as(out))
    assert (alpha == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "case,mean,scale,opacity",
    [
        ("behind camera", [0.0, -6.0, 0.0], 0.2, 0.8),
        ("on the near plane", [0.0, -3.995, 0.3], 0.2, 0.8),
        ("off screen", [50.0, 0.0, 0.0], 0.2, 0.8),
        ("zero opacity", [0.0, 0.0, 0.0], 0.2, 0.0),
        ("below 1/255 opacity", [0.0, 0.0, 0.0], 0.2, 0.003),
    ],
)
def test_culled_gaussians_render_nothing(backend, case, mean, scale, opacity):
    viewmats, Ks = cameras(16, 12, 1)  # camera at (0, -4, 0.3) looking at the origin
    out, alpha, meta = rasterization(*_one(mean, scale, opacity), viewmats, Ks, 16, 12, near_plane=0.01, backend=backend)
    assert (alpha == 0).all(), case
    assert (meta["radii"] == 0).all(), case


@pytest.mark.parametrize("backend", BACKENDS)
def test_degenerate_and_huge_scales(backend):
    viewmats, Ks = cameras(16, 12, 1)
    # Zero scale: eps2d keeps the 2D covariance invertible, a ~1-pixel splat.
    out, alpha, meta = rasterization(*_one([0.0, 0.0, 0.0], scale=0.0), viewmats, Ks, 16, 12, backend=backend)
    assert alpha.max() > 0.3 and torch.isfinite(out).all()
    # Huge scale: covers the whole image, nearly uniform.
    out, alpha, _ = rasterization(*_one([0.0, 0.0, 0.0], scale=100.0), viewmats, Ks, 16, 12, backend=backend)
    assert torch.allclose(alpha, torch.full_like(alpha, 0.8), atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("w,h", [(1, 1), (1, 7), (37, 5)])
def test_tiny_and_non_square_images(backend, w, h):
    params = random_scene(50, seed=1, scale_range=(0.3, 0.6))
    viewmats, Ks = cameras(w, h, 2)
    out, alpha, _ = rasterization(*params, viewmats, Ks, w, h, backend=backend)
    ref, ref_a, _ = rasterization(*[p.double() for p in params], viewmats.double(), Ks.double(), w, h, backend="reference")
    assert out.shape == (2, h, w, 3)
    assert torch.allclose(out.double(), ref, atol=1e-4)


def test_saturated_pixels_stop_compositing():
    """Many opaque Gaussians on one pixel: T never falls below 1e-4 and later ones are not added."""
    n = 20
    means = torch.zeros(n, 3)
    means[:, 1] = torch.linspace(-0.5, 0.5, n)  # increasing depth from the camera at y = -4
    params = [means, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.full((n, 3), 0.5), torch.full((n,), 0.99),
              torch.rand(n, 3)]
    viewmats, Ks = cameras(8, 8, 1)
    for backend in ("numba", "torch"):
        out, alpha, _ = rasterization(*params, viewmats, Ks, 8, 8, backend=backend)
        ref, ref_a, _ = rasterization(*[p.double() for p in params], viewmats.double(), Ks.double(), 8, 8, backend="reference")
        assert torch.allclose(out.double(), ref, atol=1e-5)
        assert (1 - alpha).min() > 1e-4


@pytest.mark.parametrize(
    "bad,match",
    [
        (lambda p: {**p, "means": p["means"][:, :2]}, "means"),
        (lambda p: {**p, "quats": p["quats"][:-1]}, "quats"),
        (lambda p: {**p, "scales": p["scales"].double()}, "scales"),
        (lambda p: {**p, "opacities": p["opacities"].int()}, "opacities"),
        (lambda p: {**p, "colors": p["colors"][:, None, :2]}, "colors"),
        (lambda p: {**p, "viewmats": p["viewmats"][:, :3]}, "viewmats"),
        (lambda p: {**p, "Ks": p["Ks"][:1]}, "Ks"),
        (lambda p: {**p, "means": p["means"].clone().index_fill_(0, torch.tensor([0]), float("nan"))}, "means"),
        (lambda p: {**p, "scales": p["scales"].clone().index_fill_(0, torch.tensor([1]), float("inf"))}, "scales"),
        (lambda p: {**p, "width": 0}, "width"),
        (lambda p: {**p, "height": 2.5}, "height"),
        (lambda p: {**p, "render_mode": "RGBD"}, "render_mode"),
        (lambda p: {**p, "backgrounds": torch.zeros(3)}, "backgrounds"),
        (lambda p: {**p, "sh_degree": 4}, "sh_degree"),
        (lambda p: {**p, "backend": "cuda"}, "backend"),
        (lambda p: {**p, "means": p["means"].to("meta")}, "device"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(bad, match):
    means, quats, scales, opac, colors = random_scene(5)
    viewmats, Ks = cameras(8, 8, 2)
    args = dict(means=means, quats=quats, scales=scales, opacities=opac, colors=colors, viewmats=viewmats, Ks=Ks,
                width=8, height=8)
    with pytest.raises(ValueError, match=match):
        rasterization(**bad(args))


def test_auto_backend_on_cpu_is_numba_and_meta_has_densification_fields():
    params = [p.requires_grad_() for p in random_scene(30, seed=2)]
    viewmats, Ks = cameras(16, 16, 2)
    out, _, meta = rasterization(*params, viewmats, Ks, 16, 16)
    out.sum().backward()
    assert meta["backend"] == "numba"
    assert meta["means2d"].shape == (2, 30, 2) and meta["means2d"].grad is not None
    assert meta["radii"].shape == (2, 30, 2) and meta["radii"].dtype == torch.int32
    assert meta["n_cameras"] == 2 and meta["width"] == 16 and meta["height"] == 16


@pytest.mark.parametrize("backend", BACKENDS)
def test_covars_instead_of_quats_and_scales(backend):
    from motion4d.render.projection import covariance_3d

    means, quats, scales, opac, colors = random_scene(40, seed=4)
    viewmats, Ks = cameras(20, 16, 2)
    a, _, _ = rasterization(means, quats, scales, opac, colors, viewmats, Ks, 20, 16, backend=backend)
    covars = covariance_3d(quats, scales).requires_grad_()
    b, _, _ = rasterization(means, None, None, opac, colors, viewmats, Ks, 20, 16, backend=backend, covars=covars)
    assert torch.allclose(a, b, atol=1e-5)
    b.sum().backward()
    assert covars.grad is not None and torch.isfinite(covars.grad).all()
    with pytest.raises(ValueError, match="quats and scales"):
        rasterization(means, None, None, opac, colors, viewmats, Ks, 20, 16, backend=backend)


def test_float64_inputs_on_the_numba_backend():
    params = [p.double().requires_grad_() for p in random_scene(20, seed=3)]
    viewmats, Ks = cameras(12, 12, 1, dtype=torch.float64)
    out, alpha, _ = rasterization(*params, viewmats, Ks, 12, 12, backend="numba")
    assert out.dtype == alpha.dtype == torch.float64
    out.sum().backward()
    assert all(p.grad.dtype == torch.float64 for p in params)
