"""benchmarks/inset_oracle.py's probe: the normals it offsets the true surface along keep split vertices
together, and the least-error offset is read off its samples correctly."""

import sys
from pathlib import Path

import numpy as np
import torch
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from inset_oracle import _argmin_parabola, _welded_normals  # noqa: E402

from motion4d.gaussians.vertex_offsets import weld_vertices  # noqa: E402


def test_split_copies_of_a_vertex_get_one_normal_and_move_together():
    s = trimesh.creation.icosphere(subdivisions=2)
    faces = np.asarray(s.faces)
    verts = torch.from_numpy(np.asarray(s.vertices)[faces.reshape(-1)]).float()  # every face its own three copies (flat shading)
    split_faces = np.arange(len(verts)).reshape(-1, 3)
    weld = weld_vertices(verts)[0]
    assert int(weld.max()) + 1 == len(s.vertices)
    n = _welded_normals(verts, split_faces, weld)
    radial = torch.nn.functional.normalize(verts, dim=-1)
    assert float((n * radial).sum(-1).min()) > 0.995  # a sphere's welded normals point outward
    for u in range(int(weld.max()) + 1):
        copies = n[weld == u]
        assert torch.allclose(copies, copies[:1].expand_as(copies), atol=1e-6)
    moved = verts + 0.1 * n
    assert torch.allclose(moved[weld == 0], moved[weld == 0][:1].expand(int((weld == 0).sum()), 3), atol=1e-6)  # no crack opens


def test_least_error_offset_is_the_parabola_vertex_and_an_edge_sample_stays():
    xs = [-0.6, -0.4, -0.2, 0.0, 0.2, 0.4]
    assert abs(_argmin_parabola(xs, [(x + 0.13) ** 2 + 1.0 for x in xs]) + 0.13) < 1e-9
    assert _argmin_parabola(xs, [x for x in xs]) == -0.6  # still falling at the range's end: the end, not an extrapolation
    assert _argmin_parabola(xs, [-x for x in xs]) == 0.4
