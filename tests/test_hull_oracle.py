"""benchmarks/hull_oracle.py's carving, checked on a shape whose visual hull is known: a convex shape's hull
is the shape, up to the views' outline and the carving's cells."""

import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from hull_oracle import Masks, hull_surface  # noqa: E402

from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats  # noqa: E402
from motion4d.render.mesh_raster import mesh_coverage  # noqa: E402


def masks_of(vertices: np.ndarray, faces: np.ndarray, n_views=12, size=96) -> Masks:
    vms = np.concatenate([orbit_viewmats(n_views // 2, 4.0, elevation_deg=e).double().numpy() for e in (-25.0, 35.0)])
    K = intrinsics_from_fov(40.0, size, size).double().numpy()
    masks = np.stack([mesh_coverage(vertices, faces, vm, K, size, size) > 0.5 for vm in vms])
    return Masks(vms, np.broadcast_to(K, (len(vms), 3, 3)), masks)


def test_a_sphere_carves_to_itself():
    s = trimesh.creation.icosphere(subdivisions=3)
    masks = masks_of(np.asarray(s.vertices), np.asarray(s.faces))
    assert masks.inside(np.zeros((1, 3)))[0] and not masks.inside(np.array([[1.3, 0.0, 0.0]]))[0]
    points, h = hull_surface(masks, np.full(3, -1.2), np.full(3, 1.2), grid=32, levels=2)
    r = np.linalg.norm(points, axis=1)
    assert h == pytest.approx(2.4 / 128)
    assert len(points) > 1000 and np.abs(r - 1.0).mean() < 0.03 and r.min() > 0.9, (np.abs(r - 1).mean(), r.min())
