"""4D-Rotor Gaussians: rotor algebra against a generic Cl(4,0) product, slicing against a float64
conditional Gaussian, rendering, gradients, regularisers, densification hooks, files."""

import math

import pytest
import torch
from render_scenes import cameras

from motion4d.gaussians import Gaussians3D
from motion4d.gaussians.rotor4d import (
    Gaussians4DRotor,
    normalize_rotor,
    rotor_from_quaternion,
    rotor_to_matrix,
    slice_4d,
)
from motion4d.render import rasterization
from motion4d.render.projection import covariance_3d, quat_to_rotmat

# ---- float64 reference: the sandwich R x R̃ with a generic geometric product ---------------
# Multivectors of Cl(4,0) are [..., 16] over blades named by bitmask (bit i = e_{i+1}).
BLADES = [0b0000, 0b0011, 0b0101, 0b1001, 0b0110, 0b1010, 0b1100, 0b1111]  # 1, e12, e13, e14, e23, e24, e34, e1234
VECTORS = [0b0001, 0b0010, 0b0100, 0b1000]  # e1..e4 = x, y, z, t


def _swap_sign(a: int, b: int) -> int:
    """Sign of reordering blade a·b into canonical order (Euclidean metric: squares are +1)."""
    a >>= 1
    swaps = 0
    while a:
        swaps += bin(a & b).count("1")
        a >>= 1
    return -1 if swaps % 2 else 1


SIGNS = torch.tensor([[_swap_sign(a, b) for b in range(16)] for a in range(16)], dtype=torch.float64)
REVERSE = torch.tensor([(-1) ** (bin(a).count("1") * (bin(a).count("1") - 1) // 2) for a in range(16)], dtype=torch.float64)


def geometric_product(x, y):
    out = torch.zeros(torch.broadcast_shapes(x.shape, y.shape), dtype=torch.float64)
    for a in range(16):
        for b in range(16):
            out[..., a ^ b] += SIGNS[a, b] * x[..., a] * y[..., b]
    return out


def to_multivector(rotors):
    mv = torch.zeros(rotors.shape[0], 16, dtype=torch.float64)
    mv[:, BLADES] = rotors.to(torch.float64)
    return mv


def sandwich_matrix(rotors):
    """[N,4,4] with column i the vector part of R eᵢ R̃ (R used as given, not normalised)."""
    R = to_multivector(rotors)
    cols = []
    for v in VECTORS:
        e = torch.zeros(16, dtype=torch.float64)
        e[v] = 1.0
        y = geometric_product(geometric_product(R, e), R * REVERSE)
        cols.append(y[:, VECTORS])
    return torch.stack(cols, dim=-1)


def random_simple_rotors(n, seed):
    """Products of rotations in all six planes: unit rotors with R R̃ = 1 exactly."""
    g = torch.Generator().manual_seed(seed)
    R = to_multivector(torch.tensor([[1.0] + [0.0] * 7], dtype=torch.float64).repeat(n, 1))
    for blade in BLADES[1:7]:
        half = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
        plane = torch.zeros(n, 16, dtype=torch.float64)
        plane[:, 0] = torch.cos(half)
        plane[:, blade] = torch.sin(half)
        R = geometric_product(R, plane)
    return R[:, BLADES]


def reference_slice(means4d, rotors, scales, t):
    """Conditional Gaussian of x,y,z given t, computed in float64 from the 4×4 covariance."""
    M = sandwich_matrix(rotors / rotors.norm(dim=-1, keepdim=True))
    s = scales.to(torch.float64)
    cov = M @ torch.diag_embed(s * s) @ M.transpose(-1, -2)
    mu = means4d.to(torch.float64)
    s_xx, s_xt, s_tt = cov[:, :3, :3], cov[:, :3, 3:], cov[:, 3:, 3:]  # [N,3,3], [N,3,1], [N,1,1]
    dt = (t - mu[:, 3])[:, None, None]
    mean = mu[:, :3] + (s_xt @ torch.linalg.inv(s_tt) @ dt)[..., 0]
    schur = s_xx - s_xt @ torch.linalg.inv(s_tt) @ s_xt.transpose(-1, -2)
    weight = torch.exp(-0.5 * dt[:, 0, 0] ** 2 / s_tt[:, 0, 0])
    # The Schur complement is also the inverse of the precision matrix's xyz block.
    torch.testing.assert_close(schur, torch.linalg.inv(torch.linalg.inv(cov)[:, :3, :3]))
    return mean, schur, weight


# ---- rotors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 5, 1000])
def test_rotor_matrices_are_rotations(n):
    rotors = torch.randn(n, 8, generator=torch.Generator().manual_seed(n)) * 3
    for dtype in (torch.float32, torch.float64):
        M = rotor_to_matrix(rotors.to(dtype))
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        eye = torch.eye(4, dtype=dtype).expand(n, 4, 4)
        torch.testing.assert_close(M @ M.transpose(-1, -2), eye, atol=tol, rtol=0)
        torch.testing.assert_close(torch.linalg.det(M), torch.ones(n, dtype=dtype), atol=tol, rtol=0)


def test_identity_rotor_is_identity():
    rotors = torch.zeros(3, 8)
    rotors[:, 0] = torch.tensor([1.0, 2.5, 0.01])
    torch.testing.assert_close(rotor_to_matrix(rotors), torch.eye(4).expand(3, 4, 4))


def test_simple_rotors_match_the_sandwich():
    R = random_simple_rotors(50, seed=1)
    torch.testing.assert_close(normalize_rotor(R), R)  # already unit and simple
    torch.testing.assert_close(rotor_to_matrix(R), sandwich_matrix(R))
    torch.testing.assert_close(rotor_to_matrix(R * 3.7), sandwich_matrix(R))  # normalised by the norm


def test_normalize_rotor_gives_simple_unit_rotors_whose_sandwich_is_the_matrix():
    raw = torch.randn(40, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    R = normalize_rotor(raw)
    mv = to_multivector(R)
    rr = geometric_product(mv, mv * REVERSE)  # R R̃ = 1: scalar 1, no pseudoscalar, nothing else
    want = torch.zeros(40, 16, dtype=torch.float64)
    want[:, 0] = 1.0
    torch.testing.assert_close(rr, want)
    torch.testing.assert_close(rotor_to_matrix(raw), sandwich_matrix(R))
    # It is the nearest simple unit rotor: no other one (here 2000 random ones) is closer to raw.
    others = random_simple_rotors(2000, seed=3)
    nearest = (R - raw).norm(dim=-1)
    assert (nearest[:, None] <= torch.cdist(raw, others) + 1e-12).all()


def test_quaternion_rotor_equals_the_3d_rotation():
    q = torch.randn(20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    M = rotor_to_matrix(rotor_from_quaternion(q))
    torch.testing.assert_close(M[:, :3, :3], quat_to_rotmat(q))
    e_t = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(20, 4)
    torch.testing.assert_close(M[:, 3, :], e_t)
    torch.testing.assert_close(M[:, :, 3], e_t)


# ---- slicing --------------------------------------------------------------------------------
def _random_4d(n, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 4, generator=g, dtype=dtype)
    rotors = torch.randn(n, 8, generator=g, dtype=dtype)
    scales = torch.exp(torch.randn(n, 4, generator=g, dtype=dtype) * 0.5)
    return means, rotors, scales


@pytest.mark.parametrize("t", [-0.7, 0.0, 0.4, 2.0])
def test_slice_matches_float64_conditional(t):
    means, _, scales = _random_4d(64, seed=4)
    rotors = random_simple_rotors(64, seed=5)
    want = reference_slice(means, rotors, scales, t)
    got64 = slice_4d(means, rotors, scales, torch.tensor(t, dtype=torch.float64))
    for g, w in zip(got64, want):
        torch.testing.assert_close(g, w)
    got32 = slice_4d(means.float(), rotors.float(), scales.float(), t)
    for g, w in zip(got32, want):
        torch.testing.assert_close(g, w.float(), atol=2e-4, rtol=2e-4)


def test_slice_gradients_match_reference_and_gradcheck():
    means, _, scales = _random_4d(6, seed=6)
    rotors = random_simple_rotors(6, seed=7)
    grads = []
    for fn in (slice_4d, reference_slice):
        m, s = means.clone().requires_grad_(), scales.clone().requires_grad_()
        mean, cov, w = fn(m, rotors, s, 0.3)
        (mean.sin().sum() + (cov * cov).sum() + w.sum()).backward()
        grads.append((m.grad, s.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    rotors = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r, m, s: slice_4d(m, r, s, 0.3), (rotors, means.requires_grad_(), scales.requires_grad_()))


def test_weight_is_one_at_the_temporal_mean_and_t_aligned_gaussians_do_not_move():
    means, rotors, scales = _random_4d(10, seed=8)
    for i in range(10):
        _, _, w = slice_4d(means[i : i + 1], rotors[i : i + 1], scales[i : i + 1], float(means[i, 3]))
        torch.testing.assert_close(w, torch.ones(1, dtype=torch.float64))
    model = Gaussians4DRotor.random(20, seed=1, dtype=torch.float64)
    assert model.velocities().abs().max() == 0
    a, b = model.at_time(0.1), model.at_time(0.9)
    torch.testing.assert_close(a.means, b.means)
    torch.testing.assert_close(a.covars, torch.diag_embed(model.scales[:, :3] ** 2))
    torch.testing.assert_close(model.max_scale3d(), model.scales[:, :3].max(dim=-1).values)


def test_velocity_is_the_derivative_of_the_sliced_mean():
    model = Gaussians4DRotor.random(30, seed=2, dtype=torch.float64)
    with torch.no_grad():
        model.params["rotors"].add_(torch.randn(30, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(9)))
    v = model.velocities()
    assert v.norm(dim=-1).min() > 0
    torch.testing.assert_close(model.at_time(0.8).means - model.at_time(0.3).means, 0.5 * v)
    torch.testing.assert_close(model.motion_displacement(0.3, 0.8), 0.5 * v.norm(dim=-1))


# ---- the model ------------------------------------------------------------------------------
def test_random_constructor():
    model = Gaussians4DRotor.random(400, (1.0, 0.0, 0.0), 0.5, (2.0, 4.0), sh_degree=1, seed=0, time_scale=0.1)
    assert len(model) == 400 and model.sh_degree == 1
    assert (model.means[:, :3].detach() - torch.tensor([1.0, 0.0, 0.0])).norm(dim=-1).max() <= 0.5 + 1e-5
    t = model.means[:, 3].detach()
    assert t.min() >= 2.0 and t.max() <= 4.0 and t.std() > 0.4
    torch.testing.assert_close(model.scales[:, 3].detach(), torch.full((400,), 0.2))
    frame = model.at_time(3.0)
    assert frame.quats is None and frame.scales is None
    assert frame.covars.shape == (400, 3, 3) and frame.sh.shape == (400, 4, 3) and frame.opacities.shape == (400,)
    with pytest.raises(ValueError, match="rotors must have shape"):
        Gaussians4DRotor(model.means, model.means, *(model.params[k] for k in ("log_scales", "opacity_logits", "sh0", "shN")))


def test_from_gaussians3d_slices_back_to_the_static_model():
    g3d = Gaussians3D.random_in_sphere(25, sh_degree=1, seed=4, dtype=torch.float64)
    with torch.no_grad():
        g3d.params["quats"].normal_(generator=torch.Generator().manual_seed(1))
    times = [0.0, 0.5, 1.0]
    model = Gaussians4DRotor.from_gaussians3d(g3d, times)
    assert len(model) == 75
    torch.testing.assert_close(model.scales[:, 3], torch.full((75,), 0.25, dtype=torch.float64))
    for j, tau in enumerate(times):
        frame = model.at_time(tau)
        rows = slice(25 * j, 25 * (j + 1))
        torch.testing.assert_close(frame.means[rows], g3d.means)
        torch.testing.assert_close(frame.covars[rows], covariance_3d(g3d.quats, g3d.scales))
        torch.testing.assert_close(frame.opacities[rows], g3d.opacities)
        torch.testing.assert_close(frame.sh[rows], g3d.sh)


def test_save_load_round_trip(tmp_path):
    model = Gaussians4DRotor.random(50, sh_degree=2, seed=5)
    with torch.no_grad():
        model.params["rotors"].normal_()
    path = model.save(tmp_path / "sub" / "g4d.safetensors")
    loaded = Gaussians4DRotor.load(path)
    assert loaded.sh_degree == 2 and len(loaded) == 50
    for k, v in model.params.items():
        torch.testing.assert_close(loaded.params[k], v)
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["g4d.safetensors"]
    Gaussians3D.random_in_sphere(5, seed=0).save(tmp_path / "g3d.safetensors")
    with pytest.raises(ValueError, match="not a motion4d.Gaussians4DRotor"):
        Gaussians4DRotor.load(tmp_path / "g3d.safetensors")


def test_render_and_gradients_reach_every_raw_parameter():
    model = Gaussians4DRotor.random(40, radius=0.8, sh_degree=1, seed=6, time_scale=0.5)
    with torch.no_grad():
        model.params["rotors"].add_(0.3 * torch.randn(40, 8, generator=torch.Generator().manual_seed(0)))
        model.params["opacity_logits"].fill_(1.0)
    viewmats, Ks = cameras(20, 16, 2)
    frame = model.at_time(0.5)
    rgb, alpha, _ = rasterization(
        frame.means, None, None, frame.opacities, frame.sh, viewmats, Ks, 20, 16, sh_degree=frame.sh_degree, covars=frame.covars
    )
    assert rgb.shape == (2, 16, 20, 3) and alpha.max() > 0.5
    (rgb.sum() + alpha.sum()).backward()
    for name, p in model.params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_regularizers_finite_and_differentiable():
    model = Gaussians4DRotor.random(300, seed=7)
    reg = model.regularizers(0.5)
    assert set(reg) == {"entropy", "consistency4d"}
    o = model.opacities.detach().double()
    torch.testing.assert_close(reg["entropy"].double(), (-o * o.log() - (1 - o) * (1 - o).log()).mean(), rtol=1e-5, atol=1e-6)
    assert reg["consistency4d"].item() == 0  # identity rotors: nobody moves
    with torch.no_grad():
        model.params["rotors"].normal_(generator=torch.Generator().manual_seed(1))
        model.params["opacity_logits"][:3] = torch.tensor([-200.0, 200.0, 0.0])
    reg = model.regularizers(0.5, max_samples=100, generator=torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v) and v.dim() == 0 for v in reg.values()) and reg["consistency4d"] > 0
    (reg["entropy"] + reg["consistency4d"]).backward()
    for name in ("rotors", "log_scales", "opacity_logits"):
        g = model.params[name].grad
        assert torch.isfinite(g).all() and g.abs().sum() > 0, name


# ---- densification hooks --------------------------------------------------------------------
def test_split_rows_sample_the_parent_4d_gaussian():
    model = Gaussians4DRotor.random(3, seed=8, dtype=torch.float64)
    with torch.no_grad():
        model.params["rotors"].normal_(generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([False, True, False])
    n = 4000
    rows = model.split_rows(mask, n_children=n, factor=1.6, generator=torch.Generator().manual_seed(3))
    assert set(rows) == set(model.params) and all(v.shape[0] == n for v in rows.values())
    parent = model.means[1].detach()
    cov = model.covariances()[1].detach()
    sd = cov.diagonal().sqrt()
    assert ((rows["means"].mean(dim=0) - parent).abs() < 4 * sd / math.sqrt(n)).all()
    torch.testing.assert_close(rows["means"].T.cov(), cov, atol=0.1 * sd.max() ** 2, rtol=0.1)
    torch.testing.assert_close(rows["log_scales"], (model.params["log_scales"][1] - math.log(1.6)).expand(n, 4).detach())
    for name in ("rotors", "opacity_logits", "sh0", "shN"):
        torch.testing.assert_close(rows[name], model.params[name][1:2].detach().expand_as(rows[name]))
    two = model.split_rows(torch.tensor([True, False, True]), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(two["rotors"], model.params["rotors"].detach()[[0, 2, 0, 2]])


def test_clone_rows_and_max_scale3d():
    model = Gaussians4DRotor.random(6, seed=9)
    mask = torch.tensor([True, False, False, True, False, False])
    rows = model.clone_rows(mask)
    for k, v in model.params.items():
        torch.testing.assert_close(rows[k], v.detach()[mask])
    with torch.no_grad():
        model.params["rotors"].normal_()
    cov3 = model.at_time(0.0).covars.detach()
    torch.testing.assert_close(model.max_scale3d(), torch.linalg.eigvalsh(cov3)[:, -1].sqrt())
    with pytest.raises(ValueError, match="mask"):
        model.clone_rows(torch.ones(5, dtype=torch.bool))


def test_sliced_covariances_stay_positive_semidefinite_in_float32():
    g = torch.Generator().manual_seed(11)
    rotors = torch.randn(500, 8, generator=g)
    scales = torch.tensor([1e-3, 2e-3, 1e-3, 30.0]).expand(500, 4)  # thin in space, long in time
    _, covars, _ = slice_4d(torch.zeros(500, 4), rotors, scales, 0.0)
    torch.testing.assert_close(covars, covars.transpose(-1, -2), rtol=0, atol=0)
    assert torch.linalg.eigvalsh(covars.double()).min() >= -1e-12


def test_densify_strategy_clones_and_splits_through_the_model_hooks():
    from motion4d.optim.strategy import DensifyConfig, DensifyStrategy

    model = Gaussians4DRotor.random(40, radius=0.8, sh_degree=0, seed=10, time_scale=0.5)
    with torch.no_grad():
        model.params["opacity_logits"].fill_(1.0)
    optimizer = torch.optim.Adam(model.params.values(), lr=1e-3)
    median = model.max_scale3d().median().item()
    config = DensifyConfig(refine_start=0, refine_every=1, reset_every=0, grow_grad2d=0.0, grow_scale3d=median, prune_opacity=0.0)
    strategy = DensifyStrategy(config, scene_scale=1.0)
    viewmats, Ks = cameras(20, 16, 1)
    frame = model.at_time(0.5)
    rgb, _, meta = rasterization(frame.means, None, None, frame.opacities, frame.sh, viewmats, Ks, 20, 16, sh_degree=0, covars=frame.covars)
    rgb.sum().backward()
    optimizer.step()
    strategy.update(model.params, 1, meta)
    visible = int((meta["radii"] > 0).all(dim=-1).sum())
    stats = strategy.refine(model.params, optimizer, 1, model=model)
    assert stats is not None and stats.n_cloned > 0 and stats.n_split > 0
    assert len(model) == 40 + stats.n_cloned + stats.n_split == stats.n_gaussians and stats.n_cloned + stats.n_split <= visible
    assert all(p.shape[0] == len(model) for p in model.params.values())
    assert model.at_time(0.5).covars.shape == (len(model), 3, 3)


def test_consistency_only_involves_gaussians_present_at_t():
    model = Gaussians4DRotor.random(200, seed=12, dtype=torch.float64)
    with torch.no_grad():
        early = torch.arange(200) < 100  # at t = 0, briefly, moving every which way
        model.params["means"][:, 3] = torch.where(early, 0.0, 1.0)
        model.params["log_scales"][early] = torch.tensor([0.02, 0.01, 0.02, 0.002], dtype=torch.float64).log()
        model.params["rotors"][early] += torch.randn(100, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert model.velocities()[early].norm(dim=-1).min() > 1e-3
    assert model.regularizers(1.0)["consistency4d"] == 0  # only the still, late ones are present
    assert model.regularizers(0.0)["consistency4d"] > 0
    assert model.regularizers(0.0, min_weight=2.0)["consistency4d"] == 0  # nobody present
