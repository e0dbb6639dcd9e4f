"""metrics: geometry errors on tiny known cases, evaluate_model's per-view order, render_over_time."""

import numpy as np
import pytest
import torch
from fake4d import LinearMotionGaussians

from motion4d.data.transforms import ImageSet
from motion4d.metrics import (
    bbox_diagonal,
    evaluate_model,
    nearest_distances,
    nearest_vertex_error_pct,
    per_vertex_error,
    psnr,
    shape_oracle_error,
    ssim,
    surface_chamfer,
    trajectory_deviation,
)
from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats
from motion4d.render.frame import render_frame, render_over_time

CUBE = np.array([[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)])
"""The unit cube's corners: bounding-box diagonal √3."""
CUBE_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                       [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])  # fmt: skip


def test_a_shifted_copy_scores_the_shift():
    shift = np.array([0.0, 0.0, 0.1])
    truth = np.stack([CUBE, CUBE + shift])  # [T=2,V=8,3]: the cube, then lifted by 0.1
    assert bbox_diagonal(truth[0]) == pytest.approx(np.sqrt(3.0))
    still = np.stack([CUBE, CUBE])
    assert per_vertex_error(still, truth) == pytest.approx(0.05)  # 0 in frame 0, 0.1 in frame 1
    assert per_vertex_error(CUBE, truth) == pytest.approx(0.05)  # a rest pose broadcasts over frames
    assert nearest_vertex_error_pct(still, truth) == pytest.approx(100 * 0.05 / bbox_diagonal(truth))
    assert nearest_vertex_error_pct(truth, truth) == 0.0
    # one-sided: extra ground-truth geometry far away costs nothing
    extra = np.concatenate([truth, np.full((2, 1, 3), 50.0)], axis=1)
    assert nearest_vertex_error_pct(truth, extra) == 0.0
    assert np.allclose(nearest_distances(CUBE + shift, CUBE), 0.1)
    a, b = np.random.default_rng(0).normal(size=(2, 500, 3))  # exact: as brute force
    assert np.allclose(nearest_distances(a, b), np.linalg.norm(a[:, None] - b[None], axis=-1).min(1), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="frames"):
        nearest_vertex_error_pct(still[:1], truth)


def test_surface_chamfer_and_the_shape_oracle():
    shift = np.array([0.0, 0.0, 0.1])
    assert surface_chamfer(CUBE, CUBE_FACES, CUBE, CUBE_FACES, samples=4000) < 0.03  # two samplings of one surface
    moved = surface_chamfer(CUBE, CUBE_FACES, CUBE + shift, CUBE_FACES, samples=4000)
    assert 0.02 < moved < 0.1  # the top and bottom faces are 0.1 apart, the sides slide onto themselves
    # a vertex sliding along the surface: the oracle, moving each rest vertex to the nearest true surface
    # point, cannot see a shift within the plane of a flat square
    square = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    faces = np.array([[0, 1, 3], [0, 3, 2]])
    inner = np.array([[0.5, 0.5, 0.0]])
    truth = np.concatenate([square, inner + [0.2, 0.0, 0.0]])[None]  # the inner vertex truly slid by 0.2
    assert shape_oracle_error(inner, faces, truth, np.array([4]), samples=2000) == pytest.approx(0.2, abs=0.02)


def test_trajectory_deviation_matches_by_whole_trajectory():
    ours = np.stack([CUBE, CUBE + [0.0, 0.0, 1.0]])
    theirs = ours[:, [3, 3, 5]] + [0.01, 0.0, 0.0]  # a repeated vertex, offset by 0.01
    assert np.allclose(trajectory_deviation(theirs, ours), 0.01)


def _moving_model():
    model = LinearMotionGaussians.random(200, torch.zeros(3), 0.8, (0.0, 1.0), sh_degree=0, seed=0, init_opacity=0.6)
    with torch.no_grad():
        model.params["velocities"].copy_(torch.randn(200, 3, generator=torch.Generator().manual_seed(1)) * 0.5)
    return model


class _CountingModel:
    def __init__(self, model):
        self.model, self.times = model, []

    def at_time(self, t):
        self.times.append(t)
        return self.model.at_time(t)


def test_evaluate_model_keeps_the_dataset_order_and_evaluates_each_time_once():
    model, W = _moving_model(), 24
    times = torch.tensor([1.0, 0.0, 1.0, 0.5, 0.0])
    viewmats = orbit_viewmats(5, 3.0, elevation_deg=20.0)
    Ks = intrinsics_from_fov(50.0, W, W)[None].expand(5, 3, 3)
    bg = torch.ones(3)
    with torch.no_grad():
        renders = torch.cat([render_frame(model.at_time(float(t)), viewmats[i : i + 1], Ks[i : i + 1], W, W, background=bg).rgb for i, t in enumerate(times)])
    images = (renders + torch.linspace(0.0, 0.2, 5)[:, None, None, None]).clamp(0, 1)  # a different error per view
    views = ImageSet(images, None, viewmats, Ks, times, [f"v{i}" for i in range(5)], W, W, (1.0, 1.0, 1.0))
    counting = _CountingModel(model)
    m = evaluate_model(counting, views, background=bg)
    assert sorted(counting.times) == [0.0, 0.5, 1.0]
    pred = renders.clamp(0, 1)
    assert m.psnr == [float(psnr(pred[i : i + 1], images[i : i + 1])) for i in range(5)]
    assert m.ssim == [float(ssim(pred[i : i + 1], images[i : i + 1])) for i in range(5)]
    assert m.psnr[0] > m.psnr[2] > m.psnr[4]  # the added error grows along the dataset order
    views.times = None  # a static split: every view against the model at t = 0
    static = evaluate_model(model, views, background=bg)
    assert static.psnr[1] == pytest.approx(m.psnr[1]) and static.psnr[0] != pytest.approx(m.psnr[0])


def test_render_over_time_renders_frame_i_at_time_i():
    model, W = _moving_model(), 16
    times = torch.tensor([0.0, 0.5, 0.5, 1.0])
    viewmats = orbit_viewmats(4, 3.0)
    K = intrinsics_from_fov(50.0, W, W)
    counting = _CountingModel(model)
    video = render_over_time(counting, viewmats, K, W, W, times, background=(0.0, 0.0, 0.0))
    assert video.shape == (4, W, W, 3) and sorted(counting.times) == [0.0, 0.5, 1.0]
    with torch.no_grad():
        for i, t in enumerate(times.tolist()):
            want = render_frame(model.at_time(t), viewmats[i : i + 1], K[None], W, W, background=torch.zeros(3)).rgb.clamp(0, 1)
            assert torch.equal(video[i : i + 1], want)
    assert not torch.equal(video[1], video[2])  # same time, other camera
    with pytest.raises(ValueError, match="one viewmat per time"):
        render_over_time(model, viewmats[:3], K, W, W, times)
