"""Geodesic deformation graphs: parts that touch in space but not on the surface are bound and joined apart."""

import numpy as np
import pytest
import torch

from motion4d.data.part_mesh import Box, Tube, build_parts
from motion4d.gaussians.animated_mesh import MeshGaussians
from motion4d.gaussians.deform_graph import farthest_point_sampling, skinning_weights
from motion4d.gaussians.geodesic import geodesic_graph, geodesic_skin, surface_graph

TEXTURE = np.full((8, 8, 3), 200, dtype=np.uint8)


def two_legs(separate: bool = False):
    """Two legs side by side (radius 0.05, their surfaces 0.024 apart, < 3 % of the diagonal) hanging from a
    hip bar along z — one connected surface, the legs joined only through the hip (``separate``: two
    unconnected legs, no hip)."""
    legs = []
    for z in (0.062, -0.062):
        pts = np.array([(0, 0.9, z), (0, 0.6, z), (0, 0.1, z)])
        legs.append(Tube(pts, np.array([0.05 if separate else 0.07, 0.05, 0.05]), [0, 0], parent=None if separate else 0))
    if separate:
        return build_parts(legs, 0.03, TEXTURE)
    hip = Tube(np.array([(0, 1.0, -0.3), (0, 1.0, 0.0), (0, 1.0, 0.3)]), np.full(3, 0.12), [0, 0], sides=16)
    return build_parts([hip, *legs], 0.03, TEXTURE)


def leg_side_binding(vertices, node_pos, idx, w):
    """Weight share of the lower legs' vertices (y < 0.7) bound to nodes on the other leg (below the hip)."""
    lower = vertices[:, 1] < 0.7
    side = np.sign(vertices[lower, 2])
    n = node_pos[idx[lower]]
    other = (np.sign(n[..., 2]) != side[:, None]) & (n[..., 1] < 0.8)
    return float((w[lower] * other).sum() / lower.sum())


def test_geodesic_skin_binds_each_touching_leg_to_its_own_nodes():
    mesh, _, _ = two_legs()
    v = mesh.vertices.astype(np.float64)
    sg = surface_graph(v, mesh.faces)
    assert int(sg.component.max()) == 0  # seams welded: one surface
    g = geodesic_graph(v, mesh.faces, 24, n_neighbors=6, skin_k=4)
    nodes = v[g.node_vertices]
    assert leg_side_binding(v, nodes, g.skin_indices, g.skin_weights) == 0.0
    # graph edges never jump between the legs below the hip
    low = nodes[:, 1] < 0.7
    for j in np.nonzero(low)[0]:
        for k in g.neighbors[j]:
            assert k == j or nodes[k, 1] >= 0.7 or np.sign(nodes[k, 2]) == np.sign(nodes[j, 2])
    # the same nodes bound by distance in space: some of a leg's vertices follow the other leg
    ei, ew = skinning_weights(torch.from_numpy(v), torch.from_numpy(nodes), 4)
    assert leg_side_binding(v, nodes, ei.numpy(), ew.numpy()) > 0.01
    # seam duplicates share their skin
    dup = np.unique(mesh.vertices, axis=0, return_inverse=True)[1].reshape(-1)
    first = {}
    for i, d in enumerate(dup):
        if d in first:
            a, b = first[d], i
            dense = np.zeros((2, 24))
            np.add.at(dense, (0, g.skin_indices[a]), g.skin_weights[a])
            np.add.at(dense, (1, g.skin_indices[b]), g.skin_weights[b])
            assert np.allclose(dense[0], dense[1])
        first.setdefault(d, i)


def test_separate_parts_share_no_nodes_or_edges_unless_within_the_gap():
    mesh, _, _ = two_legs(separate=True)
    v = mesh.vertices.astype(np.float64)
    g = geodesic_graph(v, mesh.faces, 10, n_neighbors=4)
    assert g.n_components == 2
    nodes = v[g.node_vertices]
    assert (nodes[:, 2] > 0).sum() >= 3 and (nodes[:, 2] < 0).sum() >= 3  # both legs get nodes
    assert leg_side_binding(v, nodes, g.skin_indices, g.skin_weights) == 0.0
    assert all(k == j or np.sign(nodes[k, 2]) == np.sign(nodes[j, 2]) for j in range(len(nodes)) for k in g.neighbors[j])
    # with a gap larger than theirs the legs are joined
    assert geodesic_graph(v, mesh.faces, 10, gap=0.03).n_components == 1


def test_touching_boxes_are_joined_and_tiny_parts_bound_to_their_neighbour():
    parts = [Box((0, 0, 0), (1, 1, 1), 0), Box((1.0, 0, 0), (1, 1, 1), 0), Box((3, 0, 0), (1, 1, 1), 0), Box((3.6, 0, 0), (0.05, 0.05, 0.05), 0, cells=1)]
    mesh, _, _ = build_parts(parts, 0.1, TEXTURE)
    v = mesh.vertices.astype(np.float64)
    g = geodesic_graph(v, mesh.faces, 6, n_neighbors=3, gap=1e-3)
    # boxes 0 and 1 share a face plane (joined); box 2 stands apart; the tiny box is joined to box 2 rather
    # than taking one of the 6 nodes
    assert g.n_components == 2
    tiny = v[:, 0] > 3.55
    assert (v[g.node_vertices, 0] < 3.55).all()
    assert (v[g.node_vertices[g.skin_indices[tiny]], 0] > 2.4).all()


def test_geodesic_skin_weights_with_few_nodes_on_a_part():
    d = np.array([[0.0, 1.0, 2.0, np.inf], [1.0, 0.0, 1.0, np.inf], [np.inf, np.inf, np.inf, 0.0]])  # [J=3, U=4]
    idx, w = geodesic_skin(d, k=4)
    assert np.allclose(w.sum(1), 1.0)
    assert (idx[3][w[3] > 0] == 2).all()  # alone on its part: bound to its one node
    assert set(idx[0][w[0] > 0]) <= {0, 1} and w[0][idx[0] == 0].sum() > w[0][idx[0] == 1].sum()


@pytest.mark.parametrize("metric", ["geodesic", "euclidean"])
def test_mesh_gaussians_build_with_either_metric_and_rigid_motion_costs_no_arap(metric):
    mesh, _, _ = two_legs()
    v, f = torch.from_numpy(mesh.vertices).double(), torch.from_numpy(mesh.faces)
    fid = torch.arange(f.shape[0])
    bary = torch.full((f.shape[0], 3), 1 / 3, dtype=torch.float64)
    model = MeshGaussians.build(v, f, fid, bary, torch.rand(f.shape[0], 3, dtype=torch.float64), torch.tensor([0.0, 1.0]), n_nodes=16, metric=metric)
    assert model.graph.num_nodes == 16 and torch.allclose(model.skin_weights.sum(1), torch.ones(()).double())
    with torch.no_grad():
        model.graph.translations[1] = torch.tensor([0.3, -0.1, 0.2])
        assert float(model.graph.arap()) < 1e-12 and float(model.graph._neighbor_scale()) > 0
        assert torch.allclose(model.vertices_at(1.0), v + torch.tensor([0.3, -0.1, 0.2]).double())
    if metric == "euclidean":
        assert torch.equal(model.graph.nodes, v[farthest_point_sampling(v, 16)])


def test_refinement_adds_spread_nodes_only_where_asked_and_keeps_the_old_ones():
    from motion4d.gaussians.geodesic import refine_geodesic_graph

    mesh, _, _ = two_legs()
    v = mesh.vertices.astype(np.float64)
    base = geodesic_graph(v, mesh.faces, 12, 6, 4)
    wanted = (v[:, 1] < 0.5) & (v[:, 2] > 0)  # the lower half of one leg
    g = refine_geodesic_graph(v, mesh.faces, base.node_vertices, wanted, 6, 6, 4)
    old_pos, new_pos = v[base.node_vertices], v[g.node_vertices]
    assert len(g.node_vertices) == 18 and np.allclose(new_pos[:12], old_pos)
    assert wanted[g.node_vertices[12:]].all()
    gaps = np.linalg.norm(new_pos[12:, None] - new_pos[None, :], axis=-1) + np.eye(18)[12:] * 9
    assert gaps.min() > 0.03  # spread, not piled up: no two nodes on top of each other
    assert g.skin_indices.shape == base.skin_indices.shape and np.allclose(g.skin_weights.sum(1), 1)
    lower = wanted & (v[:, 1] < 0.3)
    assert (g.skin_indices[lower] >= 12).any(1).all()  # the refined region is bound to its new nodes
    assert leg_side_binding(v, new_pos, g.skin_indices, g.skin_weights) == 0.0
    few = refine_geodesic_graph(v, mesh.faces, base.node_vertices, np.isin(np.arange(len(v)), base.node_vertices[:3]), 5, 6, 4)
    assert len(few.node_vertices) == 12  # candidates that are already nodes: nothing to add


def test_refined_mesh_graph_keeps_the_pose():
    """New nodes start from the motion the graph gives them: a rigid motion stays exact, a bend barely moves."""
    mesh, _, _ = two_legs()
    v, f = torch.from_numpy(mesh.vertices).double(), torch.from_numpy(mesh.faces)
    fid = torch.arange(f.shape[0])
    bary = torch.full((f.shape[0], 3), 1 / 3, dtype=torch.float64)
    model = MeshGaussians.build(v, f, fid, bary, torch.rand(f.shape[0], 3, dtype=torch.float64), torch.tensor([0.0, 1.0]), n_nodes=12)
    a = 0.4
    with torch.no_grad():
        model.graph.quats[1] = torch.tensor([np.cos(a / 2), np.sin(a / 2), 0.0, 0.0]).double()
        R = model.graph.keyframe_transforms()[0][1, 0]
        g = model.graph.nodes
        model.graph.translations[1] = g @ R.T + torch.tensor([0.3, -0.1, 0.2]).double() - g  # one rigid motion of the whole
        rigid = model.vertices_at(1.0).clone()
        assert model.refine_graph(v[:, 1] < 0.5, 6) == 6 and model.graph.num_nodes == 18
        assert torch.allclose(model.vertices_at(1.0), rigid, atol=1e-9)
        model.graph.translations[1, :, 1] += 0.3 * model.graph.nodes[:, 1]  # a non-rigid stretch
        before = model.vertices_at(1.0).clone()
        model.refine_graph(v[:, 1] > 0.5, 6)
        change = (model.vertices_at(1.0) - before).norm(dim=-1)
        moved = (before - v).norm(dim=-1)
    assert model.graph.num_nodes == 24 and float(change.mean()) < 0.05 * float(moved.mean()), (float(change.mean()), float(moved.mean()))
    with pytest.raises(ValueError, match="candidates must have shape"):
        model.refine_graph(torch.ones(3, dtype=torch.bool), 2)
