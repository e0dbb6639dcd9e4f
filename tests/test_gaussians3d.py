"""Gaussians3D: activations, constructors, kNN scales, save/load."""

import pytest
import torch

from motion4d.gaussians import Gaussians3D, mean_knn_distance
from motion4d.gaussians.activations import (
    opacity_activation,
    opacity_inverse,
    rgb_to_sh0,
    scale_activation,
    scale_inverse,
    sh0_to_rgb,
)


def test_activation_inverses_round_trip():
    x = torch.rand(100, dtype=torch.float64) * 0.98 + 0.01
    torch.testing.assert_close(opacity_activation(opacity_inverse(x)), x)
    s = torch.rand(10, 3, dtype=torch.float64) + 1e-3
    torch.testing.assert_close(scale_activation(scale_inverse(s)), s)
    torch.testing.assert_close(sh0_to_rgb(rgb_to_sh0(s)), s)


@pytest.mark.parametrize("n", [1, 2, 7, 300])
def test_knn_matches_dense_reference(n):
    xyz = torch.randn(n, 3, dtype=torch.float64)
    got = mean_knn_distance(xyz, max_elements=50)  # forces many chunks
    d = torch.cdist(xyz, xyz) + torch.eye(n, dtype=torch.float64) * 1e9
    want = d.sort(dim=1).values[:, : min(3, n - 1)].mean(dim=1) if n > 1 else torch.ones(1, dtype=torch.float64)
    torch.testing.assert_close(got, want)


def test_random_in_sphere_shapes_and_bounds():
    g = Gaussians3D.random_in_sphere(500, (1.0, 2.0, 3.0), 0.5, sh_degree=2, seed=3)
    assert len(g) == 500 and g.sh_degree == 2
    assert (g.means.detach() - torch.tensor([1.0, 2.0, 3.0])).norm(dim=-1).max() <= 0.5 + 1e-5
    f = g.at_time(0.3)
    assert f.sh.shape == (500, 9, 3) and f.scales.shape == (500, 3) and f.opacities.shape == (500,)
    torch.testing.assert_close(f.opacities, torch.full((500,), 0.1))
    g2 = Gaussians3D.random_in_sphere(500, (1.0, 2.0, 3.0), 0.5, sh_degree=2, seed=3)
    torch.testing.assert_close(g.means, g2.means)


def test_from_points_colours_and_scales():
    xyz = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [5, 5, 5]])
    rgb = torch.rand(5, 3)
    g = Gaussians3D.from_points(xyz, rgb, sh_degree=0)
    assert g.sh.shape == (5, 1, 3) and g.params["shN"].shape == (5, 0, 3)
    torch.testing.assert_close(sh0_to_rgb(g.sh[:, 0]), rgb)
    torch.testing.assert_close(g.scales[0], torch.ones(3))


def test_gradients_reach_raw_parameters():
    g = Gaussians3D.random_in_sphere(10, sh_degree=1)
    f = g.at_time()
    (f.scales.sum() + f.opacities.sum() + f.sh.sum() + f.means.sum() + f.quats.sum()).backward()
    assert all(p.grad is not None for p in g.params.values())


def test_save_load_round_trip(tmp_path):
    for deg in (0, 3):
        g = Gaussians3D.random_in_sphere(50, sh_degree=deg, seed=1)
        path = g.save(tmp_path / f"g{deg}.safetensors")
        h = Gaussians3D.load(path)
        assert h.sh_degree == deg
        for k in g.params:
            torch.testing.assert_close(g.params[k], h.params[k])


def test_bad_shapes_and_files_raise(tmp_path):
    with pytest.raises(ValueError, match="quats"):
        Gaussians3D(torch.zeros(3, 3), torch.zeros(2, 4), torch.zeros(3, 3), torch.zeros(3), torch.zeros(3, 1, 3), torch.zeros(3, 0, 3))
    with pytest.raises(ValueError, match="shN"):
        Gaussians3D(torch.zeros(3, 3), torch.zeros(3, 4), torch.zeros(3, 3), torch.zeros(3), torch.zeros(3, 1, 3), torch.zeros(3, 2, 3))
    with pytest.raises(FileNotFoundError):
        Gaussians3D.load(tmp_path / "nope.safetensors")
