"""optim.losses: L1, SSIM against a float64 sliding-window reference (both paddings), PSNR, gradients."""

import math

import numpy as np
import pytest
import torch

from motion4d.metrics.image import gaussian_window, psnr, ssim
from motion4d.optim.losses import SilhouetteTarget, l1_loss, silhouette_chamfer


def _ssim_reference(a: np.ndarray, b: np.ndarray, padding: str) -> float:
    """Mean SSIM of [H,W,C] float64 images, written out window by window (11×11 Gaussian, σ = 1.5)."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    if padding == "same":
        a = np.pad(a, ((5, 5), (5, 5), (0, 0)))
        b = np.pad(b, ((5, 5), (5, 5), (0, 0)))
    Ho, Wo = a.shape[0] - 10, a.shape[1] - 10
    values = []
    for i in range(Ho):
        for j in range(Wo):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            mu_a = np.einsum("ij,ijc->c", w, pa)
            mu_b = np.einsum("ij,ijc->c", w, pb)
            var_a = np.einsum("ij,ijc->c", w, pa * pa) - mu_a**2
            var_b = np.einsum("ij,ijc->c", w, pb * pb) - mu_b**2
            cov = np.einsum("ij,ijc->c", w, pa * pb) - mu_a * mu_b
            c1, c2 = 0.01**2, 0.03**2
            values.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def _pair(shape, seed, noise=0.2):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("shape", [(13, 17, 3), (2, 16, 12, 3), (11, 11, 1)])
def test_ssim_matches_reference(padding, shape):
    x, y = _pair(shape, seed=len(shape) + shape[-2])
    batch = (x[None], y[None]) if x.dim() == 3 else (x, y)
    ref = np.mean([_ssim_reference(a.numpy(), b.numpy(), padding) for a, b in zip(*batch)])
    assert float(ssim(x, y, padding=padding)) == pytest.approx(ref, abs=1e-10)
    assert float(ssim(x.float(), y.float(), padding=padding)) == pytest.approx(ref, abs=1e-5)


def test_ssim_properties():
    x, y = _pair((2, 20, 24, 3), seed=0)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(x, y)) == pytest.approx(float(ssim(y, x)), abs=1e-12)
    x2, y2 = _pair((2, 20, 24, 3), seed=0, noise=0.05)
    assert float(ssim(x2, y2)) > float(ssim(x, y))  # less noise, more similar
    per = ssim(x, y, reduction="none")
    assert per.shape == (2,) and float(per.mean()) == pytest.approx(float(ssim(x, y)))
    assert ssim(x[0], y[0], reduction="none").shape == ()
    assert float(ssim(torch.rand(1, 5, 6, 3), torch.rand(1, 5, 6, 3))) < 1  # "same" works below window size


def test_ssim_gradient():
    x, y = _pair((1, 11, 12, 2), seed=3)
    x.requires_grad_(True)
    for padding in ("same", "valid"):
        assert torch.autograd.gradcheck(lambda a: ssim(a, y, padding=padding), (x,), fast_mode=True)


def test_ssim_bad_input():
    x = torch.rand(8, 8, 3)
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, torch.rand(8, 9, 3))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x, x, padding="valid")
    with pytest.raises(ValueError, match="padding"):
        ssim(x, x, padding="reflect")
    with pytest.raises(ValueError, match=r"\[B,H,W,C\]"):
        ssim(x[0], x[0])


def test_gaussian_window():
    g = gaussian_window(11, 1.5, dtype=torch.float64)
    assert g.shape == (11,) and float(g.sum()) == pytest.approx(1.0) and int(g.argmax()) == 5
    assert float(g[4] / g[5]) == pytest.approx(math.exp(-1 / (2 * 1.5**2)))


def test_psnr_known_values():
    x = torch.full((2, 4, 5, 3), 0.3)
    assert float(psnr(x, x + 0.1)) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    y = x.clone()
    y[1] += 0.01  # per-image MSE 0, 1e-4 → 100 dB (capped), 40 dB
    torch.testing.assert_close(psnr(x, y, reduction="none"), torch.tensor([100.0, 40.0]), atol=1e-3, rtol=0)
    assert float(psnr(x, y)) == pytest.approx(70.0, abs=1e-3)
    assert float(psnr(x[0], x[0] + 0.1)) == pytest.approx(20.0, abs=1e-4)


def test_l1_loss():
    a = torch.zeros(2, 3, 3, 3)
    b = torch.full((2, 3, 3, 3), 0.25)
    b[0] = -0.25
    assert float(l1_loss(a, b)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same shape"):
        l1_loss(a, b[0])



def _brute_chamfer(points, fg, tol=0.5):
    ys, xs = torch.nonzero(fg, as_tuple=True)
    pix = torch.stack([xs, ys], 1).double() + 0.5
    d = torch.cdist(points.double(), pix)
    return float((d.min(1).values - tol).clamp_min(0).mean() + (d.min(0).values - tol).clamp_min(0).mean())


def test_silhouette_chamfer_matches_brute_force_at_pixel_centres():
    fg = torch.zeros(12, 16, dtype=torch.bool)
    fg[3:9, 4:10] = True
    target = SilhouetteTarget.from_alpha(fg.float()[..., None])
    assert float(target.outside[5, 5]) == 0.0 and float(target.outside[5, 12]) == 3.0
    ys, xs = torch.nonzero(fg, as_tuple=True)
    for shift in (0, 1, 3, 5):  # points on pixel centres: exact (both halves)
        pts = torch.stack([xs + shift, ys], 1).float() + 0.5
        assert float(silhouette_chamfer(pts, target)) == pytest.approx(_brute_chamfer(pts, fg), abs=1e-5)
    assert float(silhouette_chamfer(torch.zeros(0, 2), target)) == 0.0
    # a point beyond the image border: its distance keeps growing past it (24.5 px out + 6 px to the mask,
    # less the tolerance); with no point inside the image, the pixel → point half is left out
    far = torch.tensor([[40.0, 6.0]])
    assert float(silhouette_chamfer(far, target)) == pytest.approx(30.0)


def test_silhouette_chamfer_gradient_pulls_toward_the_mask():
    fg = torch.zeros(20, 20, dtype=torch.bool)
    fg[5:15, 5:15] = True
    target = SilhouetteTarget.from_alpha(fg.float())
    ys, xs = torch.nonzero(fg, as_tuple=True)
    pts = (torch.stack([xs + 4, ys], 1).float() + 0.5).requires_grad_(True)  # 4 px right of the mask
    silhouette_chamfer(pts, target).backward()
    out = pts.detach()[:, 0] > 15
    assert (pts.grad[out, 0] > 0).all()  # outside points: descent moves them left (−x)
    left = pts.detach()[:, 0] < 10  # the left column of points is pulled toward the uncovered pixels
    assert (pts.grad[left, 0] > 0).any()
