import dataclasses
import math

import numpy as np
import pytest
import torch

from motion4d.render.cameras import (
    OrbitRig,
    camera_centers,
    look_at,
    orbit_viewmats,
    project_points,
    ring_positions,
    ring_viewmats,
    sample_spherical_poses,
    spherical_viewmats,
)


def test_spherical_front_camera_is_on_minus_y_and_sees_plus_x_on_its_right():
    v = spherical_viewmats(torch.tensor([0.0, 90.0, 0.0]), torch.tensor([0.0, 0.0, 90.0 - 1e-3]), torch.tensor([2.0, 3.0, 1.0]))
    c = camera_centers(v)
    assert torch.allclose(c[0], torch.tensor([0.0, -2.0, 0.0]), atol=1e-5)
    assert torch.allclose(c[1], torch.tensor([3.0, 0.0, 0.0]), atol=1e-5)
    assert torch.allclose(c[2], torch.tensor([0.0, 0.0, 1.0]), atol=1e-4)
    K = torch.tensor([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]])[None]
    uv, z = project_points(torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.5]]), v[:1], K)
    assert uv[0, 0, 0] > 32 and uv[0, 1, 1] < 32  # +x to the right, +z up in the front view
    assert (z > 0).all()


def _old_ring_positions(n, elevations_deg, distance, azimuth_offset_deg=0.0):
    """``dataset from-gltf``'s camera positions as that pipeline computed them before the rings moved here."""
    pos = []
    for i in range(n):
        el = math.radians(elevations_deg[i % len(elevations_deg)])
        az = math.radians(azimuth_offset_deg + 360.0 * i / n)
        pos.append([distance * math.cos(el) * math.cos(az), distance * math.cos(el) * math.sin(az), distance * math.sin(el)])
    return np.asarray(pos)


def _old_orbit_viewmats(n, radius, elevation_deg, target):
    """The orbit videos' cameras as computed before (float32)."""
    az = torch.deg2rad(torch.linspace(0.0, 360.0, n + 1)[:n])
    el = math.radians(elevation_deg)
    eye = torch.stack([radius * math.cos(el) * torch.cos(az), radius * math.cos(el) * torch.sin(az), torch.full_like(az, radius * math.sin(el))], -1)
    eye = eye + torch.tensor(target)
    return look_at(eye, torch.tensor(target).expand_as(eye))


@pytest.mark.parametrize("n, offset", [(1, 0.0), (7, 7.3), (20, 0.0), (4, 16.0), (24, 189.2)])
def test_ring_is_bit_identical_to_the_old_dataset_cameras(n, offset):
    new = ring_positions(n, (-10.0, 15.0, 40.0), 3.25, offset)
    old = _old_ring_positions(n, (-10.0, 15.0, 40.0), 3.25, offset)
    assert new.dtype == torch.float64 and np.array_equal(new.numpy(), old)
    assert torch.equal(ring_viewmats(n, (-10.0, 15.0, 40.0), 3.25, offset), look_at(torch.from_numpy(old).float(), torch.zeros(n, 3)))
    assert ring_viewmats(0, (5.0,), 3.0).shape == (0, 4, 4)


def test_orbit_is_bit_identical_to_the_old_orbit_and_the_rig_recovers_it():
    target = (0.1, -0.2, 0.05)
    vm = orbit_viewmats(48, 3.3, elevation_deg=17.0, target=target)
    assert torch.equal(vm, _old_orbit_viewmats(48, 3.3, 17.0, target))
    rig = OrbitRig.from_views(vm[::5], torch.eye(3), 32, 24, torch.tensor(target))
    assert rig.distance == pytest.approx(3.3, rel=1e-5) and rig.elevation_deg == pytest.approx(17.0, abs=1e-3)
    assert OrbitRig(**dataclasses.asdict(rig)) == rig  # what .m4d metadata stores
    assert torch.allclose(rig.viewmats(48), vm, atol=1e-4)
    assert torch.equal(rig.intrinsics(), torch.eye(3)) and rig.intrinsics().dtype == torch.float32


def test_spherical_pose_sampler_stays_in_its_ranges_and_repeats_per_seed():
    def draw(seed, n=400):
        return sample_spherical_poses(n, (-30.0, 60.0), (5.0, 35.0), (2.0, 2.5), torch.Generator().manual_seed(seed), target=(0.0, 0.0, 0.5))

    p = draw(0)
    for values, (lo, hi) in ((p.azimuth_deg, (-30.0, 60.0)), (p.elevation_deg, (5.0, 35.0)), (p.radius, (2.0, 2.5))):
        assert values.shape == (400,) and values.dtype == torch.float32
        assert lo <= float(values.min()) < lo + 0.05 * (hi - lo) and hi - 0.05 * (hi - lo) < float(values.max()) <= hi
    assert p.viewmats.shape == (400, 4, 4)
    assert torch.equal(p.viewmats, spherical_viewmats(p.azimuth_deg, p.elevation_deg, p.radius, target=(0.0, 0.0, 0.5)))
    offsets = camera_centers(p.viewmats) - torch.tensor([0.0, 0.0, 0.5])
    assert torch.allclose(offsets.norm(dim=-1), p.radius, atol=1e-5)
    assert torch.allclose(torch.rad2deg(torch.asin(offsets[:, 2] / p.radius)), p.elevation_deg, atol=1e-3)
    again, other = draw(0), draw(1)
    assert all(torch.equal(a, b) for a, b in zip(dataclasses.astuple(p), dataclasses.astuple(again)))
    assert not torch.equal(p.azimuth_deg, other.azimuth_deg)
    fixed = sample_spherical_poses(3, (10.0, 10.0), (0.0, 0.0), (3.0, 3.0))
    assert torch.equal(fixed.azimuth_deg, torch.full((3,), 10.0)) and torch.equal(fixed.radius, torch.full((3,), 3.0))


@pytest.mark.parametrize("kwargs", [{"elevation_range_deg": (0.0, 95.0)}, {"azimuth_range_deg": (10.0, 0.0)}, {"radius_range": (0.0, 1.0)}])
def test_spherical_pose_sampler_rejects_bad_ranges(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        sample_spherical_poses(2, **kwargs)


def test_demo_cameras_are_bit_identical_to_the_old_demo_rig():
    from motion4d.data.synthetic import ORBIT_RADIUS, demo_cameras

    n, offset, (lo, hi) = 24, 131.7, (10.0, 40.0)
    az = np.radians(offset + 360.0 * np.arange(n) / n)
    el = np.radians(lo + (hi - lo) * ((np.arange(n) * 0.6180339887498949 + 0.5) % 1.0))
    eye = ORBIT_RADIUS * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    old = look_at(torch.tensor(eye, dtype=torch.float32), torch.zeros(n, 3))
    assert torch.equal(demo_cameras(n, azimuth_offset_deg=offset, elevation_range_deg=(lo, hi)), old)
