"""Mesh coverage (the mesh's antialiased alpha) and the coverage fit of surface Gaussians."""

import numpy as np
import pytest
import torch
import trimesh

from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.gaussians.surface import surface_gaussians
from motion4d.optim.coverage import fit_coverage, mesh_coverages
from motion4d.render.frame import render_frame
from motion4d.optim.trainer_base import decayed
from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats
from motion4d.render.mesh_raster import mesh_coverage, rasterize_triangles


def test_mesh_coverage_is_the_covered_area():
    # a square facing the camera, its edges off the pixel grid: 2·0.515·f/z = 10.3 px wide
    f, z, w = 20.0, 4.0, 32
    a = 0.515
    V = np.array([[-a, -a, z], [a, -a, z], [a, a, z], [-a, a, z]]) + np.array([0.013, -0.021, 0.0])
    F = np.array([[0, 1, 2], [0, 2, 3]])
    K = np.array([[f, 0, w / 2], [0, f, w / 2], [0, 0, 1.0]])
    side = 2 * a * f / z
    cov = mesh_coverage(V, F, np.eye(4), K, w, w, supersample=8)
    assert cov.shape == (w, w) and cov.min() >= 0 and cov.max() <= 1
    assert abs(cov.sum() - side**2) < 4 * side / 8  # within half a sub-sample along the outline
    assert cov.max() == 1.0 and 0 < cov[cov < 1].max()  # full inside, fractional on the outline
    hit = rasterize_triangles(V, F, np.eye(4), K, w, w).face_ids >= 0
    assert np.array_equal(mesh_coverage(V, F, np.eye(4), K, w, w, supersample=1), hit.astype(np.float32))
    with pytest.raises(ValueError, match="supersample"):
        mesh_coverage(V, F, np.eye(4), K, w, w, supersample=0)


def fat_sphere(scale_factor: float) -> MeshGaussians:
    ico = trimesh.creation.icosphere(subdivisions=2)
    V, F = torch.tensor(ico.vertices, dtype=torch.float32), torch.tensor(ico.faces)
    fid, bary, covars = surface_gaussians(V, F, 800, scale_factor=scale_factor)
    colors = torch.full((len(fid), 3), 0.5)
    return MeshGaussians.build(V, F, fid, bary, colors, torch.tensor([0.0, 1.0]), n_nodes=8, covars=covars)


@pytest.mark.slow  # > 5 s
def test_coverage_fit_makes_the_gaussians_cover_the_mesh():
    size = 48
    viewmats = orbit_viewmats(6, 3.5, elevation_deg=25.0, up=(0.0, 1.0, 0.0))
    Ks = intrinsics_from_fov(50.0, size, size).expand(6, 3, 3).clone()
    model = fat_sphere(0.9)  # Gaussians twice too wide: their tails spill past the outline
    before = model.rest_covars.clone()
    fit = fit_coverage(model, viewmats, Ks, size, size, steps=60, lr=0.05)
    assert fit.ratio_before > 1.03
    assert fit.l1_after < 0.5 * fit.l1_before, fit
    assert abs(fit.ratio_after - 1) < 0.5 * abs(fit.ratio_before - 1), fit
    # baked into the model: rendering it now gives the "after" numbers
    with torch.no_grad():
        alpha = render_frame(model.at_time(None), viewmats, Ks, size, size, background=torch.zeros(3)).alpha
    target = mesh_coverages(model, viewmats, Ks, size, size)
    assert float((alpha - target).abs().mean()) == pytest.approx(fit.l1_after, rel=1e-4)
    assert not torch.allclose(model.rest_covars, before)
    assert torch.linalg.eigvalsh(model.rest_covars.double()).min() > 0  # still covariances


def test_decayed_learning_rate_allows_zero():
    assert decayed(1e-2, 1e-4, 0.5) == pytest.approx(1e-3)
    assert decayed(0.0, 0.0, 0.3) == 0.0  # a frozen parameter group
    assert decayed(1e-2, 0.0, 0.5) == pytest.approx(5e-3)
