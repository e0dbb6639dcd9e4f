"""Geodesic deformation graphs: node placement, skinning and node edges by distance over the mesh surface.

Euclidean distance ties together what is close in space but far apart on the surface: a quadruped's legs
side by side, an arm hanging along the torso, the two halves of a coiled tail. Binding a leg's vertices to
its k nearest nodes in space binds some to the other leg, and a graph edge between the legs makes ARAP
hold them together as they swing apart. Here every distance is measured along the mesh:

- :func:`surface_graph`: the vertex graph of the mesh — vertices at the same position welded (UV and
  normal seams, as glTF splits them), an edge per triangle side weighted by its length, and *bridges*
  between separate connected components only where they come within ``gap`` (a fraction of the bounding-box
  diagonal) of each other: parts modelled as separate shells that touch are joined, parts that merely come
  close (two legs, two fingers of a gripper) are not;
- :func:`geodesic_nodes`: farthest-point sampling by geodesic distance (scipy.sparse.csgraph's Dijkstra).
  A component not yet reached counts as far as its own size, so every part big enough gets its own nodes
  and tiny parts (a bolt, an eye) are bridged to their nearest part instead of taking one;
- :func:`geodesic_skin`: each vertex bound to its k geodesically nearest nodes with embedded deformation's
  weights ``(1 − d_i / d_{k+1})²``; never to a node on a part it is not joined to;
- :func:`geodesic_neighbors`: each node's graph edges to its geodesically nearest nodes on the same part
  (fewer where the part has fewer nodes; the row is padded with the node itself, an edge ARAP ignores).

:func:`geodesic_graph` does all four; :func:`refine_geodesic_graph` adds nodes to a graph it built, by the
same farthest-point sampling continued from the existing nodes but restricted to chosen vertices (where a
fit's residual stays high). Arrays are numpy; positions ``[V,3]``, faces ``[F,3]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from motion4d.gaussians.vertex_offsets import weld_vertices

WELD_TOL = 1e-6
"""Vertices closer than this × the bounding-box diagonal are one vertex (seam duplicates)."""


@dataclass
class SurfaceGraph:
    """The welded vertex graph of a mesh (see :func:`surface_graph`)."""

    weld: np.ndarray
    """[V] welded vertex id of each vertex, in 0..U-1."""
    positions: np.ndarray
    """[U,3] welded vertex positions."""
    edges: csr_matrix
    """[U,U] symmetric edge lengths (triangle sides and bridges)."""
    component: np.ndarray
    """[U] connected component of each welded vertex (after bridging)."""

    @property
    def diagonal(self) -> float:
        """The bounding-box diagonal of the vertices."""
        return float(np.linalg.norm(self.positions.max(0) - self.positions.min(0))) or 1.0


def _graph(n: int, pairs: np.ndarray, positions: np.ndarray, floor: float) -> csr_matrix:
    lengths = np.maximum(np.linalg.norm(positions[pairs[:, 0]] - positions[pairs[:, 1]], axis=1), floor)  # no zero-length edges
    g = coo_matrix((np.concatenate([lengths, lengths]), (np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]]))), shape=(n, n))
    g = g.tocsr()
    g.sum_duplicates()
    g.data = np.maximum(g.data, floor)
    return g


def surface_graph(vertices: np.ndarray, faces: np.ndarray, *, gap: float = 1e-3) -> SurfaceGraph:
    """The welded vertex graph of the mesh ``vertices [V,3]``, ``faces [F,3]``, separate components bridged
    where they come within ``gap`` × the bounding-box diagonal (see the module docstring)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0 or f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"vertices [V,3] (V >= 1) and faces [F,3] expected, got {list(v.shape)}, {list(f.shape)}")
    weld = weld_vertices(torch.from_numpy(v), tol=WELD_TOL)[0].numpy()
    n = int(weld.max()) + 1
    pos = np.zeros((n, 3))
    pos[weld] = v
    diag = float(np.linalg.norm(v.max(0) - v.min(0))) or 1.0
    e = weld[f][:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    e = np.unique(np.sort(e[e[:, 0] != e[:, 1]], axis=1), axis=0)
    floor = 1e-9 * diag
    g = _graph(n, e, pos, floor)
    _, comp = connected_components(g, directed=False)
    if gap > 0:
        pairs = cKDTree(pos).query_pairs(gap * diag, output_type="ndarray")
        pairs = pairs[comp[pairs[:, 0]] != comp[pairs[:, 1]]] if len(pairs) else pairs
        if len(pairs):
            g = _graph(n, np.concatenate([e, pairs]), pos, floor)
            _, comp = connected_components(g, directed=False)
    return SurfaceGraph(weld, pos, g, comp)


def _bridge_nodeless(sg: SurfaceGraph, nodes: list[int]) -> SurfaceGraph:
    """``sg`` with every component that holds no node joined to its nearest vertex of another component."""
    comp = sg.component.copy()
    extra = []
    for _ in range(int(comp.max()) + 1):  # each pass joins every node-less component to a neighbour
        has = np.zeros(int(comp.max()) + 1, dtype=bool)
        has[comp[nodes]] = True
        lonely = np.nonzero(~has[comp])[0]
        if len(lonely) == 0:
            break
        for c in np.unique(comp[lonely]):
            inside = np.nonzero(comp == c)[0]
            outside = np.nonzero(comp != c)[0]
            d, j = cKDTree(sg.positions[outside]).query(sg.positions[inside])
            i = int(np.argmin(d))
            extra.append((inside[i], outside[j[i]]))
        rows, cols = sg.edges.nonzero()
        pairs = np.concatenate([np.stack([rows, cols], 1), np.asarray(extra)])
        g = _graph(len(comp), pairs, sg.positions, 1e-9 * sg.diagonal)
        _, comp = connected_components(g, directed=False)
        sg = SurfaceGraph(sg.weld, sg.positions, g, comp)
    return sg


def _farthest_among(sg: SurfaceGraph, dist: np.ndarray, candidates: np.ndarray, k: int) -> list[int]:
    """Up to ``k`` welded ids among ``candidates`` [U] bool, each the candidate geodesically farthest from
    the nodes so far (``dist`` [U]: distance to the nearest existing node, updated in place)."""
    picks: list[int] = []
    for _ in range(k):
        far = np.where(candidates, dist, -np.inf)
        pick = int(np.argmax(far))
        if not far[pick] > 0:
            break
        picks.append(pick)
        dist[:] = np.minimum(dist, dijkstra(sg.edges, directed=False, indices=pick))
    return picks


def geodesic_nodes(sg: SurfaceGraph, k: int) -> tuple[np.ndarray, SurfaceGraph]:
    """``k`` welded vertex ids spread by geodesic farthest-point sampling, and the graph with node-less
    components bridged to their nearest neighbours (see the module docstring)."""
    n = len(sg.positions)
    k = min(int(k), n)
    if k < 1:
        raise ValueError("k must be >= 1")
    n_comp = int(sg.component.max()) + 1
    size = np.zeros(n_comp)
    for c in range(n_comp):
        p = sg.positions[sg.component == c]
        size[c] = np.linalg.norm(p.max(0) - p.min(0))
    dist = np.full(n, np.inf)
    reached = np.zeros(n_comp, dtype=bool)
    nodes: list[int] = []
    for _ in range(k):
        # far = geodesic distance to the nearest node; a component without nodes counts as its size away
        far = np.where(reached[sg.component], dist, size[sg.component])
        if nodes and far.max() <= 0:
            break
        if not nodes or not reached[sg.component].any():
            c = int(np.argmax(size))
            members = np.nonzero(sg.component == c)[0]
            pick = int(members[np.argmax(np.linalg.norm(sg.positions[members] - sg.positions[members].mean(0), axis=1))])
        else:
            pick = int(np.argmax(far))
            if not reached[sg.component[pick]]:  # a new part: start at its point farthest from its centre
                members = np.nonzero(sg.component == sg.component[pick])[0]
                pick = int(members[np.argmax(np.linalg.norm(sg.positions[members] - sg.positions[members].mean(0), axis=1))])
        nodes.append(pick)
        reached[sg.component[pick]] = True
        dist = np.minimum(dist, dijkstra(sg.edges, directed=False, indices=pick))
    return np.asarray(nodes, dtype=np.int64), _bridge_nodeless(sg, nodes)


def geodesic_skin(distances: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Bind every vertex to its ``k`` geodesically nearest nodes.

    Args:
        distances: [J,U] geodesic distance from each node to each vertex (inf: not on the same part).

    Returns:
        ``(indices [U,k], weights [U,k])``: weights ``(1 − d_i / d_{k+1})²`` normalised (d_{k+1}: the next
        node's distance, or 1.5 × the farthest bound one where the part has at most k nodes); slots beyond a
        part's nodes repeat its nearest node with weight 0.
    """
    d = np.asarray(distances, dtype=np.float64).T  # [U,J]
    j = d.shape[1]
    kk = min(k + 1, j)
    order = np.argsort(d, axis=1, kind="stable")[:, :kk]
    dk = np.take_along_axis(d, order, axis=1)
    if not np.isfinite(dk[:, 0]).all():
        raise ValueError("a vertex has no node on its part (bridge the graph first: geodesic_nodes does)")
    idx, di = order[:, :k], dk[:, :k]
    finite = np.isfinite(di)
    last = np.where(finite, di, -np.inf).max(1)
    cut = dk[:, k] if kk > k else np.full(len(d), np.inf)
    cut = np.where(np.isfinite(cut), cut, 1.5 * last + 1e-12)
    w = np.where(finite, np.clip(1.0 - np.where(finite, di, 0.0) / np.maximum(cut, 1e-12)[:, None], 0.0, None) ** 2, 0.0)
    w = np.where(w.sum(1, keepdims=True) > 1e-12, w, finite.astype(np.float64))
    idx = np.where(finite, idx, idx[:, :1])
    if idx.shape[1] < k:  # fewer nodes than k in all
        pad = k - idx.shape[1]
        idx, w = np.concatenate([idx, np.repeat(idx[:, :1], pad, 1)], 1), np.concatenate([w, np.zeros((len(w), pad))], 1)
    return idx, w / w.sum(1, keepdims=True)


def geodesic_neighbors(distances: np.ndarray, node_vertices: np.ndarray, k: int) -> np.ndarray:
    """[J,k] each node's ``k`` geodesically nearest other nodes on its part (``distances [J,U]``, nodes at
    welded vertices ``node_vertices [J]``), padded with the node itself where the part has fewer."""
    d = np.asarray(distances, dtype=np.float64)[:, node_vertices].copy()  # [J,J]
    j = d.shape[0]
    np.fill_diagonal(d, np.inf)
    kk = min(k, max(j - 1, 0))
    out = np.tile(np.arange(j)[:, None], (1, k))
    if kk == 0:
        return out
    order = np.argsort(d, axis=1, kind="stable")[:, :kk]
    ok = np.isfinite(np.take_along_axis(d, order, axis=1))
    out[:, :kk] = np.where(ok, order, np.arange(j)[:, None])
    return out


@dataclass
class GeodesicGraph:
    """What :func:`geodesic_graph` returns (indices into the *unwelded* vertices)."""

    node_vertices: np.ndarray
    """[J] a vertex at each node (its rest position)."""
    neighbors: np.ndarray
    """[J,n] graph edges per node (padded with the node itself)."""
    skin_indices: np.ndarray
    """[V,k] nodes of each vertex."""
    skin_weights: np.ndarray
    """[V,k] their weights (rows sum to 1; welded duplicates get the same)."""
    n_components: int
    """Parts of the mesh after bridging gaps."""


def geodesic_graph(vertices: np.ndarray, faces: np.ndarray, n_nodes: int, n_neighbors: int = 6, skin_k: int = 4, *, gap: float = 1e-3) -> GeodesicGraph:
    """Nodes, edges and skin of a deformation graph on the mesh, by geodesic distance (see the module docstring)."""
    sg = surface_graph(vertices, faces, gap=gap)
    nodes, sg = geodesic_nodes(sg, n_nodes)
    return _bind(sg, nodes, n_neighbors, skin_k)


def refine_geodesic_graph(vertices: np.ndarray, faces: np.ndarray, node_vertices: np.ndarray, candidates: np.ndarray, n_new: int,
                          n_neighbors: int = 6, skin_k: int = 4, *, gap: float = 1e-3) -> GeodesicGraph:  # fmt: skip
    """The graph of :func:`geodesic_graph` with up to ``n_new`` more nodes among the ``candidates`` [V] bool vertices.

    The existing nodes (``node_vertices`` [J], vertex indices) keep their order and come first; each new
    node is the candidate geodesically farthest from all nodes so far, so new nodes spread over the chosen
    region instead of piling up. Skin and edges are recomputed over all nodes (a vertex near a new node is
    bound to it). Fewer nodes are added where the candidates run out (every candidate is a node).
    """
    sg = surface_graph(vertices, faces, gap=gap)
    old = sg.weld[np.asarray(node_vertices, dtype=np.int64)]
    sg = _bridge_nodeless(sg, old.tolist())
    dist = dijkstra(sg.edges, directed=False, indices=old).min(0)
    want = np.zeros(len(sg.positions), dtype=bool)
    want[sg.weld[np.asarray(candidates, dtype=bool)]] = True
    new = _farthest_among(sg, dist, want, int(n_new))
    return _bind(sg, np.concatenate([old, np.asarray(new, dtype=np.int64)]), n_neighbors, skin_k)


def _bind(sg: SurfaceGraph, nodes: np.ndarray, n_neighbors: int, skin_k: int) -> GeodesicGraph:
    """Skin and edges of the nodes ``nodes`` [J] (welded ids) on the bridged graph ``sg``."""
    dist = dijkstra(sg.edges, directed=False, indices=nodes)  # [J,U]
    idx, w = geodesic_skin(dist, skin_k)
    first = np.full(len(sg.positions), -1)
    first[sg.weld[::-1]] = np.arange(len(sg.weld))[::-1]  # the first vertex of each welded id
    return GeodesicGraph(first[nodes], geodesic_neighbors(dist, nodes, n_neighbors), idx[sg.weld], w[sg.weld], int(sg.component.max()) + 1)
