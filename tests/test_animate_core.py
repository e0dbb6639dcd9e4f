"""Deformation graph, surface Gaussians, MeshGaussians and the animate trainer on tiny synthetic meshes."""

import math

import numpy as np
import pytest
import torch

from motion4d.data.transforms import ImageSet
from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.gaussians.deform_graph import DeformationGraph, farthest_point_sampling, skinning_weights
from motion4d.gaussians.rotations import quat_to_rotmat
from motion4d.gaussians.surface import face_areas, refine_triangles, rest_covariances, sample_surface, surface_gaussians, surface_points
from motion4d.gaussians.surface_patches import face_patches
from motion4d.render.frame import render_frame
from motion4d.optim.trainer_animate import AnimateTrainer, preset
from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats


def grid_mesh(n: int = 6, size: float = 1.0):
    """An n×n vertex sheet in the xz-plane (slightly wavy), faces counter-clockwise from +y."""
    xs = torch.linspace(-size, size, n)
    X, Z = torch.meshgrid(xs, xs, indexing="ij")
    V = torch.stack([X.flatten(), 0.1 * torch.sin(2 * X.flatten()), Z.flatten()], -1)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a = i * n + j
            faces += [[a, a + 1, a + n], [a + 1, a + n + 1, a + n]]
    return V, torch.tensor(faces)


def rigid_graph_motion(graph: DeformationGraph, frame: int, R: torch.Tensor, t: torch.Tensor) -> None:
    """Set keyframe ``frame`` to the rigid motion p ↦ R p + t."""
    from motion4d.gaussians.rotations import rotmat_to_quat

    with torch.no_grad():
        graph.quats[frame] = rotmat_to_quat(R)
        graph.translations[frame] = graph.nodes @ R.T + t - graph.nodes


def test_fps_and_skinning_weights():
    V, _ = grid_mesh(8)
    idx = farthest_point_sampling(V, 10)
    assert len(set(idx.tolist())) == 10
    nodes = V[idx]
    j, w = skinning_weights(V, nodes, k=4)
    assert j.shape == (64, 4) and w.shape == (64, 4)
    assert torch.allclose(w.sum(1), torch.ones(64), atol=1e-6) and bool((w >= 0).all())
    # a vertex that is a node is bound to it with the largest weight
    assert bool((j[idx, 0] == torch.arange(10)).all())
    # fewer nodes than k+1 still gives normalised weights
    j2, w2 = skinning_weights(V, nodes[:2], k=4)
    assert j2.shape == (64, 2) and torch.allclose(w2.sum(1), torch.ones(64), atol=1e-6)


def test_rigid_motion_is_exact_and_free_of_arap():
    V, F = grid_mesh(6)
    nodes = V[farthest_point_sampling(V, 8)]
    graph = DeformationGraph(nodes, torch.tensor([0.0, 0.5, 1.0]))
    a = 0.7
    R = quat_to_rotmat(torch.tensor([math.cos(a / 2), 0.0, math.sin(a / 2), 0.0]))
    t = torch.tensor([0.3, -0.2, 0.1])
    for f in range(3):
        rigid_graph_motion(graph, f, R, t)
    j, w = skinning_weights(V, nodes)
    assert torch.allclose(graph.deform(V, j, w, 0.25), V @ R.T + t, atol=1e-5)
    assert float(graph.arap().detach()) < 1e-10
    assert float(graph.motion_smoothness().detach()) < 1e-10
    # a non-rigid motion (one node pulled away) costs ARAP
    with torch.no_grad():
        graph.translations[1, 0] += 0.5
    assert float(graph.arap().detach()) > 1e-3


def test_keyframe_interpolation():
    nodes = torch.zeros(1, 3)
    graph = DeformationGraph(nodes, torch.tensor([0.0, 1.0]))
    with torch.no_grad():
        graph.translations[1] = torch.tensor([[2.0, 0.0, 0.0]])
        graph.quats[1] = torch.tensor([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]])  # 90° about z
    R, d = graph.transforms_at(0.5)
    assert torch.allclose(d, torch.tensor([[1.0, 0.0, 0.0]]))
    expect = quat_to_rotmat(torch.tensor([math.cos(math.pi / 8), 0.0, 0.0, math.sin(math.pi / 8)]))
    assert torch.allclose(R[0], expect, atol=1e-6)
    # clamped outside the keyframes
    assert torch.allclose(graph.transforms_at(-1.0)[1], torch.zeros(1, 3))
    assert torch.allclose(graph.transforms_at(5.0)[1], torch.tensor([[2.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="strictly increasing"):
        DeformationGraph(nodes, torch.tensor([0.0, 0.0]))


def test_surface_sampling_and_flat_covariances():
    V, F = grid_mesh(5)
    fid, bary = sample_surface(V, F, 400, generator=torch.Generator().manual_seed(0))
    assert bool((bary >= -1e-6).all()) and torch.allclose(bary.sum(1), torch.ones(len(fid)), atol=1e-5)
    counts = torch.bincount(fid, minlength=len(F))
    assert bool((counts >= 1).all())
    assert abs(len(fid) - 400) < len(F)  # about n, at least one per face
    cov = rest_covariances(V, F, fid, shaped=False)
    eig = torch.linalg.eigvalsh(cov)
    assert bool((eig[:, 0] < 0.02 * eig[:, 2]).all())  # flat: the normal direction is 10× thinner
    area_per = (face_areas(V, F)[fid] / counts[fid]).sqrt()
    assert torch.allclose(eig[:, 2].sqrt(), 0.7 * area_per, rtol=1e-4)
    shaped = torch.linalg.eigvalsh(rest_covariances(V, F, fid))
    assert bool((shaped[:, 0] < 0.02 * shaped[:, 2]).all())


def test_shaped_covariances_follow_the_triangle():
    s = 2.0
    equi = torch.tensor([[0.0, 0, 0], [s, 0, 0], [s / 2, s * math.sqrt(3) / 2, 0]], dtype=torch.float64)
    sliver = torch.tensor([[0.0, 0, 0], [4.0, 0, 0], [2.0, 0.05, 0]], dtype=torch.float64)
    for verts in (equi, sliver):
        fid = torch.zeros(4, dtype=torch.long)
        cov = rest_covariances(verts, torch.tensor([[0, 1, 2]]), fid, scale_factor=0.5, normal_ratio=0.0)
        ev = torch.linalg.eigvalsh(cov[0])
        area = float(face_areas(verts, torch.tensor([[0, 1, 2]]))[0])
        assert float(ev[1] * ev[2]) == pytest.approx((0.25 * area / 4) ** 2, rel=1e-6)  # the same area as isotropic
        if verts is equi:
            assert float(ev[1]) == pytest.approx(float(ev[2]), rel=1e-6)
        else:
            assert ev[2] > 100 * ev[1]  # thin across the sliver: no sideways spill
            assert torch.linalg.eigh(cov[0]).eigenvectors[:, 2].abs()[0] > 0.99  # long along x


def sliver_mesh():
    """Two faces: a 10 × 0.2 right-angled sliver (area 1) and a unit right triangle (area 0.5), sharing no vertex."""
    V = torch.tensor([[0.0, 0, 0], [10, 0, 0], [0, 0.2, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1]], dtype=torch.float64)
    return V, torch.tensor([[0, 1, 2], [3, 4, 5]])


def test_refine_triangles_splits_long_edges_and_keeps_the_surface():
    V, F = sliver_mesh()
    parent, corners = refine_triangles(V, F, 0.3)
    assert torch.allclose(corners.sum(-1), torch.ones_like(corners[..., 0]))  # barycentric rows
    pieces = corners @ V[F[parent]]
    edges = torch.stack([(pieces[:, i] - pieces[:, (i + 1) % 3]).norm(dim=-1) for i in range(3)], 1)
    assert float(edges.max()) <= 0.3 + 1e-9
    piece_faces = torch.arange(3 * len(parent)).reshape(-1, 3)
    areas = face_areas(pieces.reshape(-1, 3), piece_faces)
    for f in range(2):  # the pieces tile each face: same area, same winding
        assert float(areas[parent == f].sum()) == pytest.approx(float(face_areas(V, F)[f]), rel=1e-9)
    n_face = torch.linalg.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])[parent]
    n_piece = torch.linalg.cross(pieces[:, 1] - pieces[:, 0], pieces[:, 2] - pieces[:, 0])
    assert bool(((n_face * n_piece).sum(-1) > 0).all())
    parent, corners = refine_triangles(V, F, 100.0, max_area=0.01)
    pieces = corners @ V[F[parent]]
    assert float(face_areas(pieces.reshape(-1, 3), torch.arange(3 * len(parent)).reshape(-1, 3)).max()) <= 0.01
    # the cap stops the splitting early instead of exceeding it
    assert len(refine_triangles(V, F, 0.01, max_triangles=500)[0]) <= 500


def test_surface_gaussians_tile_without_needles():
    V, F = sliver_mesh()
    fid, bary, cov = surface_gaussians(V, F, 200)
    assert 100 <= len(fid) <= 300  # bisection counts come in powers of two per face: coarse on two faces
    gv, gf = grid_mesh(6)
    assert abs(len(surface_gaussians(gv, gf, 1000)[0]) - 1000) <= 100  # on 50 faces: within 10 %
    assert bool((bary >= -1e-9).all()) and torch.allclose(bary.sum(1), torch.ones(len(fid), dtype=bary.dtype))
    # both faces covered, more densely the sliver: its pieces are also split by length
    assert 0 < int((fid == 1).sum()) / 0.5 <= int((fid == 0).sum()) / 1.0
    # no Gaussian is much longer than the spacing; random points with each Gaussian shaped like its whole
    # face give needles over 4× longer than that on the sliver
    spacing = (1.5 / len(fid)) ** 0.5
    assert float(torch.linalg.eigvalsh(cov)[:, 2].sqrt().max()) < 2 * spacing
    old_fid, _ = sample_surface(V, F, 200, generator=torch.Generator().manual_seed(0))
    old = torch.linalg.eigvalsh(rest_covariances(V, F, old_fid, scale_factor=0.5))[:, 2].sqrt()
    assert float(old.max()) > 4 * spacing
    with pytest.raises(ValueError, match="n must be"):
        surface_gaussians(V, F, 0)


def make_model(frame_times, n_nodes=6, seed=0):
    V, F = grid_mesh(6)
    fid, bary = sample_surface(V, F, 600, generator=torch.Generator().manual_seed(seed))
    colors = torch.stack([(bary[:, 0] * 0.8 + 0.1), (V[F[fid, 0], 0] + 1) / 2 * 0.8 + 0.1, torch.full((len(fid),), 0.4)], -1)
    return MeshGaussians.build(V, F, fid, bary, colors, torch.tensor(frame_times), n_nodes=n_nodes)


def test_mesh_gaussians_follow_the_mesh_and_round_trip(tmp_path):
    model = make_model([0.0, 1.0])
    rest = model.at_time(None)
    assert torch.allclose(model.at_time(0.5).means, rest.means)  # identity graph
    a = 0.5
    R = quat_to_rotmat(torch.tensor([math.cos(a / 2), math.sin(a / 2), 0.0, 0.0]))
    t = torch.tensor([0.0, 0.4, 0.0])
    rigid_graph_motion(model.graph, 1, R, t)
    moved = model.at_time(1.0)
    assert torch.allclose(moved.means, rest.means @ R.T + t, atol=1e-5)
    assert torch.allclose(moved.covars, R @ rest.covars @ R.T, atol=1e-6)
    path = model.save(tmp_path / "m.safetensors")
    back = MeshGaussians.load(path)
    assert torch.allclose(back.at_time(0.7).means, model.at_time(0.7).means)
    assert torch.allclose(back.at_time(0.7).covars, model.at_time(0.7).covars)


def synthetic_driving(target: MeshGaussians, n_views=6, size=40):
    """Images of ``target`` at each of its keyframes from ``n_views`` orbit cameras."""
    times = target.graph.frame_times
    viewmats = orbit_viewmats(n_views, 3.5, elevation_deg=35.0, up=(0.0, 1.0, 0.0))
    K = intrinsics_from_fov(50.0, size, size)
    imgs, alphas, vms, ts = [], [], [], []
    with torch.no_grad():
        for t in times.tolist():
            out = render_frame(target.at_time(t), viewmats, K.expand(n_views, 3, 3), size, size, background=torch.ones(3))
            imgs.append(out.rgb)
            alphas.append(out.alpha)
            vms.append(viewmats)
            ts.append(torch.full((n_views,), t))
    m = n_views * len(times)
    return ImageSet(torch.cat(imgs), torch.cat(alphas), torch.cat(vms), K.expand(m, 3, 3).clone(), torch.cat(ts),
                    [f"img{i}" for i in range(m)], size, size, (1.0, 1.0, 1.0))  # fmt: skip


@pytest.mark.slow  # > 5 s
def test_trainer_recovers_a_known_motion(tmp_path):
    times = [0.0, 0.5, 1.0]
    target = make_model(times)
    for f, a in enumerate([0.0, 0.25, 0.5]):
        R = quat_to_rotmat(torch.tensor([math.cos(a / 2), 0.0, 0.0, math.sin(a / 2)]))
        rigid_graph_motion(target.graph, f, R, torch.tensor([0.0, 0.15 * f, 0.0]))
    views = synthetic_driving(target)
    model = make_model(times)
    with torch.no_grad():
        before = max(float((model.vertices_at(t) - target.vertices_at(t)).norm(dim=-1).mean()) for t in times)
    cfg = preset("tiny", iters=150, batch_views=4, lr_sh0=0.0, warmup_fraction=0.3, ckpt_every=0)
    result = AnimateTrainer(cfg, model, views, 3.5, ckpt_dir=tmp_path / "ck").train()
    with torch.no_grad():
        after = max(float((model.vertices_at(t) - target.vertices_at(t)).norm(dim=-1).mean()) for t in times)
    assert result.steps == 150
    assert after < 0.3 * before, (before, after)


@pytest.mark.slow  # > 5 s
def test_silhouette_term_reaches_beyond_the_outline():
    """The target lies a whole sheet-width away (the silhouettes do not overlap): colour and alpha see
    nothing to pull on, the silhouette chamfer pulls the sheet over."""
    times = [0.0, 1.0]
    target = make_model(times)
    rigid_graph_motion(target.graph, 1, torch.eye(3), torch.tensor([0.0, 0.0, 2.2]))
    views = synthetic_driving(target, n_views=4)
    errors = {}
    for lam in (0.0, 1.0):
        model = make_model(times)
        cfg = preset("tiny", iters=60, batch_views=4, lr_sh0=0.0, warmup_fraction=0.0, ckpt_every=0, lambda_silhouette=lam,
                     lambda_dssim=0.0, lr_translation=2e-2, lr_translation_final=2e-2)  # fmt: skip
        AnimateTrainer(cfg, model, views, 3.5).train()
        with torch.no_grad():
            errors[lam] = float((model.vertices_at(1.0) - target.vertices_at(1.0)).norm(dim=-1).mean())
    assert errors[1.0] < 0.5 * errors[0.0] and errors[1.0] < 1.0, errors


def test_frames_the_fit_fails_get_the_draws():
    """Once every frame has joined, ``frame_error_share`` draws images by each frame's running silhouette
    error: the frame the model does not explain gets most of them, the explained ones still some."""
    times = [0.0, 0.5, 1.0]
    target = make_model(times)
    rigid_graph_motion(target.graph, 2, torch.eye(3), torch.tensor([0.0, 0.5, 0.0]))
    views = synthetic_driving(target, n_views=4, size=24)
    trainer = AnimateTrainer(preset("tiny", frame_error_share=0.8, warmup_fraction=0.0), make_model(times), views, 3.5)
    d = trainer.driving
    assert torch.isnan(d.running_error).all() and torch.allclose(d.frame_weights(), torch.full((3,), 1 / 3))
    with torch.no_grad():
        d.terms(torch.arange(len(views.times)), track=True)  # every image once
    e = d.running_error
    assert e[2] > 10 * max(float(e[0]), float(e[1]), 1e-4), e
    w = d.frame_weights()
    assert float(w.sum()) == pytest.approx(1.0) and float(w.min()) >= 0.2 / 3 - 1e-6 and w[2] > 0.8, w
    g = torch.Generator().manual_seed(0)
    drawn = torch.cat([d.frame_of_row[d.sample_rows(g)] for _ in range(300)])
    assert abs(float((drawn == 2).float().mean()) - float(w[2])) < 0.05
    before = d.running_error.clone()
    d.terms(torch.arange(4), track=False)  # scoring rows (the gate, the pull) leaves the running errors alone
    assert torch.equal(d.running_error, before)


def killed_at(trainer: AnimateTrainer, step: int) -> None:
    """Train until ``step``, then stop as a kill would (no final checkpoint)."""

    class Stop(Exception):
        pass

    def stop(at, loss):
        if at == step:
            raise Stop

    with pytest.raises(Stop):
        trainer.train(on_step=stop)


@pytest.mark.parametrize("error_share", [0.0, 0.7])
def test_trainer_resume_reproduces_the_uninterrupted_run(tmp_path, error_share):
    times = [0.0, 1.0]
    target = make_model(times)
    rigid_graph_motion(target.graph, 1, torch.eye(3), torch.tensor([0.0, 0.2, 0.0]))
    views = synthetic_driving(target, n_views=3, size=24)
    cfg = preset("tiny", iters=8, ckpt_every=4, frame_error_share=error_share, warmup_fraction=0.2)
    full = AnimateTrainer(cfg, make_model(times), views, 3.5, ckpt_dir=tmp_path / "a")
    full.train()

    killed_at(AnimateTrainer(cfg, make_model(times), views, 3.5, ckpt_dir=tmp_path / "b"), 5)
    resumed = AnimateTrainer(cfg, make_model(times), views, 3.5, ckpt_dir=tmp_path / "b")
    resumed.train(resume=True)
    assert resumed.step == 8 and resumed.active == full.active
    assert torch.allclose(resumed.model.graph.translations, full.model.graph.translations, atol=1e-6)
    assert torch.allclose(resumed.model.graph.quats, full.model.graph.quats, atol=1e-6)
    assert torch.allclose(resumed.driving.running_error, full.driving.running_error, equal_nan=True)
    assert full.coverage is not None and resumed.coverage is None  # not refitted on resume: the sizes come from the checkpoint
    assert torch.allclose(resumed.model.rest_covars, full.model.rest_covars)


def test_skinned_gaussians_move_rigidly_and_round_trip(tmp_path):
    from motion4d.gaussians import Gaussians3D
    from motion4d.gaussians.skinned import SkinnedGaussians

    g = Gaussians3D.random_in_sphere(200, radius=1.0, sh_degree=1, seed=0, init_opacity=0.8)
    model = SkinnedGaussians.build(g, torch.tensor([0.0, 1.0]), n_nodes=10)
    rest = model.at_time(None)
    a = 0.8
    R = quat_to_rotmat(torch.tensor([math.cos(a / 2), 0.0, math.sin(a / 2), 0.0]))
    t = torch.tensor([0.1, 0.2, -0.3])
    rigid_graph_motion(model.graph, 1, R, t)
    moved = model.at_time(1.0)
    cov_rest = quat_to_rotmat(rest.quats) @ torch.diag_embed(rest.scales**2) @ quat_to_rotmat(rest.quats).transpose(-1, -2)
    assert torch.allclose(moved.means, rest.means @ R.T + t, atol=1e-5)
    assert torch.allclose(moved.covars, R @ cov_rest @ R.T, atol=1e-6)
    loss = moved.means.square().sum() + moved.covars.sum()
    loss.backward()  # gradients exist and are finite at the identity too
    assert torch.isfinite(model.graph.quats.grad).all()
    back = SkinnedGaussians.load(model.save(tmp_path / "s.safetensors"))
    assert torch.allclose(back.at_time(0.5).means, model.at_time(0.5).means, atol=1e-6)


def test_rest_term_is_zero_at_rest_and_nearly_l1():
    graph = DeformationGraph(torch.randn(10, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0.0, 1.0]))
    graph.requires_grad_(False)
    assert float(graph.rest_deviation()) == 0.0
    s = float(graph._neighbor_scale())
    small, large = [], []
    for amount, out in ((0.5, small), (5.0, large)):
        with torch.no_grad():
            graph.translations.zero_()
            graph.translations[1, 0, 0] = amount * s  # one node of one keyframe moves `amount` neighbour distances
        out.append(float(graph.rest_deviation()))
    per_node = 1 / (10 * 2)
    assert small[0] == pytest.approx(per_node * 0.5, rel=0.03) and large[0] == pytest.approx(per_node * 5.0, rel=0.01)
    # a rotation by θ costs 2 sin(θ/2) (about θ), for either sign of the quaternion
    for sign in (1.0, -1.0):
        with torch.no_grad():
            graph.translations.zero_()
            graph.quats[1, 3] = sign * torch.tensor([math.cos(0.2), 0.0, 0.0, math.sin(0.2)])
        assert float(graph.rest_deviation()) == pytest.approx(per_node * 2 * math.sin(0.2), rel=0.03)
    assert set(graph.regularizers()) == {"arap", "arap_l1", "motion_smoothness", "rest"}


def test_arap_l1_is_zero_for_rigid_motion_and_prefers_one_joint_to_a_drift():
    V, _ = grid_mesh(8)
    graph = DeformationGraph(V[farthest_point_sampling(V, 16)], torch.tensor([0.0, 1.0]))
    graph.requires_grad_(False)
    a = 0.4
    rigid_graph_motion(graph, 1, quat_to_rotmat(torch.tensor([math.cos(a / 2), 0.0, 0.0, math.sin(a / 2)])), torch.tensor([0.2, 0.0, 0.1]))
    assert float(graph.arap_l1()) < 1e-6 and float(graph.arap()) < 1e-10
    # the same total squared non-rigidity, once spread over every node (a 2 % shrink) and once gathered on one node
    nodes, s = graph.nodes, float(graph._neighbor_scale())
    with torch.no_grad():
        graph.quats.zero_()
        graph.quats[..., 0] = 1.0
        graph.translations.zero_()
        graph.translations[1] = -0.02 * (nodes - nodes.mean(0))
    spread = (float(graph.arap()), float(graph.arap_l1()))
    with torch.no_grad():
        graph.translations.zero_()
        graph.translations[1, 0, 1] = 1.0  # one node pushed off the sheet; scale it to the same squared ARAP
        graph.translations[1, 0, 1] *= math.sqrt(spread[0] / float(graph.arap()))
    gathered = (float(graph.arap()), float(graph.arap_l1()))
    assert gathered[0] == pytest.approx(spread[0], rel=1e-4) and s > 0
    assert gathered[1] < 0.5 * spread[1], (spread, gathered)  # L1 charges the drift far more than the one bend


def test_a_degenerate_face_leaves_the_gradients_finite():
    """A zero-area face (real meshes have them: a collapsed cap, a welded tip) holds no Gaussians, but its
    frame is computed with the others: its gradient must stay finite, or every step is skipped."""
    V, F = grid_mesh(4)
    V = torch.cat([V, V[1:2]])
    F = torch.cat([F, torch.tensor([[0, 1, V.shape[0] - 1]])])  # two of its corners coincide (a seam duplicate)
    fid, bary = sample_surface(V, F, 200, generator=torch.Generator().manual_seed(0))
    assert not bool((fid == F.shape[0] - 1).any())
    model = MeshGaussians.build(V, F, fid, bary, torch.full((len(fid), 3), 0.5), torch.tensor([0.0, 1.0]), n_nodes=4)
    with torch.no_grad():
        model.graph.translations[1] = torch.tensor([0.0, 0.1, 0.0])
    views = orbit_viewmats(2, 3.5, elevation_deg=35.0, up=(0.0, 1.0, 0.0))
    K = intrinsics_from_fov(50.0, 16, 16).expand(2, 3, 3)
    out = render_frame(model.at_time(1.0), views, K, 16, 16, background=torch.ones(3))
    out.alpha.sum().backward()
    grads = [model.graph.translations.grad, model.graph.quats.grad, model.offsets.offsets.grad]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert float(model.graph.translations.grad.abs().sum()) > 0


def test_inset_moves_the_gaussians_behind_their_faces_only(tmp_path):
    V, F = grid_mesh(4)
    fid, bary = sample_surface(V, F, 100, generator=torch.Generator().manual_seed(0))
    colors = torch.full((len(fid), 3), 0.5)
    flat = MeshGaussians.build(V, F, fid, bary, colors, torch.tensor([0.0, 1.0]), n_nodes=4)
    inset = MeshGaussians.build(V, F, fid, bary, colors, torch.tensor([0.0, 1.0]), n_nodes=4, inset=1.0)
    a, b = flat.at_time(0.5), inset.at_time(0.5)
    f = V[F[fid]]
    normal = torch.nn.functional.normalize(torch.linalg.cross(f[:, 1] - f[:, 0], f[:, 2] - f[:, 0]), dim=-1)
    size = (a.covars.diagonal(dim1=-2, dim2=-1).sum(-1) / 2).sqrt()
    assert torch.allclose(b.means, a.means - size[:, None] * normal, atol=1e-6)
    assert torch.equal(b.covars, a.covars) and torch.equal(inset.vertices_at(0.5), flat.vertices_at(0.5))
    back = MeshGaussians.load(inset.save(tmp_path / "m.safetensors"))
    assert torch.allclose(back.at_time(0.5).means, b.means)


def test_max_stretch_limits_only_the_faces_that_stretch_past_it(tmp_path):
    V, F = grid_mesh(4)
    V[:, 1] = 0.0  # flat: stretching x by f multiplies every face's area by f exactly
    fid, bary = sample_surface(V, F, 100, generator=torch.Generator().manual_seed(0))
    colors, times = torch.full((len(fid), 3), 0.5), torch.tensor([0.0, 1.0])
    free = MeshGaussians.build(V, F, fid, bary, colors, times, n_nodes=4)
    capped = MeshGaussians.build(V, F, fid, bary, colors, times, n_nodes=4, max_stretch=1.5)
    for factor in (1.2, 3.0):  # x stretched: each face's area × factor, linear stretch √factor
        for m in (free, capped):
            with torch.no_grad():
                m.offsets.offsets[1] = 0.0
                m.offsets.offsets[1, :, 0] = V[:, 0] * (factor - 1.0)
        a, b = free.at_time(1.0).covars, capped.at_time(1.0).covars
        if factor == 1.2:  # √1.2 < 1.5: untouched, bit for bit
            assert torch.equal(a, b)
        else:  # √3 > 1.5: scaled by (1.5 / √3)² in every direction
            assert torch.allclose(b, a * (1.5 / math.sqrt(3.0)) ** 2, rtol=1e-5, atol=1e-10)
            assert not torch.allclose(b, a)
    assert torch.equal(free.at_time(0.0).covars, capped.at_time(0.0).covars)
    capped.at_time(1.0).covars.sum().backward()
    grad = capped.offsets.offsets.grad
    assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0
    back = MeshGaussians.load(capped.save(tmp_path / "m.safetensors"))
    assert float(back.max_stretch) == 1.5 and torch.allclose(back.at_time(1.0).covars, capped.at_time(1.0).covars)
    with pytest.raises(ValueError, match="max_stretch"):
        MeshGaussians.build(V, F, fid, bary, colors, times, n_nodes=4, max_stretch=0.5)


def _dense_sphere(subdivisions=5):
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    return torch.tensor(m.vertices, dtype=torch.float32), torch.tensor(m.faces)


def test_surface_gaussians_on_a_mesh_denser_than_n_share_faces_in_patches():
    V, F = _dense_sphere()  # 20480 faces
    fid, bary, cov = surface_gaussians(V, F, 2000)
    assert abs(len(fid) - 2000) <= 200  # about n, not one per face
    assert torch.allclose(bary.sum(1), torch.ones(len(fid))) and (bary >= 0).all()
    # each is flat along the sphere where it sits, and about as large as its share of the area
    means = surface_points(V, F, fid, bary)
    radial = torch.nn.functional.normalize(means, dim=-1)
    along = (radial[:, None, :] @ cov @ radial[:, :, None]).squeeze(-1).squeeze(-1)
    inplane = (cov.diagonal(dim1=-2, dim2=-1).sum(-1) - along) / 2
    assert float((along / inplane).max()) < 0.05
    sigma = float(inplane.sqrt().median())
    want = 0.5 * math.sqrt(4 * math.pi / len(fid))  # scale_factor × √(area per Gaussian)
    assert 0.8 * want < sigma < 1.25 * want
    # fewer faces than n: one or more per face, as before
    assert len(surface_gaussians(V, F, 30000)[0]) >= F.shape[0]


def test_face_patches_keep_thin_parts_and_sharp_edges_apart():
    import trimesh

    # two dense plates 1e-3 apart (the two sides of a thin wing) and a dense box (sharp edges)
    plate = trimesh.creation.box(extents=(1.0, 1.0, 1e-3))
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    box.apply_translation((2.0, 0, 0))
    mesh = trimesh.util.concatenate([plate, box])
    v, f = mesh.vertices, mesh.faces
    for _ in range(4):
        v, f = trimesh.remesh.subdivide(v, f)
    p = face_patches(v, f, 200)
    assert abs(len(p.host) - 200) <= 40 and (p.labels >= 0).all() and p.labels.max() == len(p.host) - 1
    normals = trimesh.Trimesh(v, f, process=False).face_normals
    for label in range(len(p.host)):
        n = normals[p.labels == label]
        assert np.allclose(n, n[0], atol=1e-6)  # one side of the plate, one side of the box: never round an edge
        assert p.labels[p.host[label]] == label
    # a patch of one face is shaped as that face's own Gaussian
    single = face_patches(np.eye(3), np.array([[0, 1, 2]]), 1)
    tri = torch.tensor(np.eye(3))
    want = rest_covariances(tri, torch.tensor([[0, 1, 2]]), torch.tensor([0]), scale_factor=1.0, normal_ratio=0.0)
    got = 6.0 * 3.0**0.5 * torch.from_numpy(single.uniform)
    assert torch.allclose(got, want, atol=1e-12) and np.allclose(single.barycentrics, 1 / 3)
