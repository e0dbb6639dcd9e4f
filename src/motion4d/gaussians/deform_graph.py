"""A sparse deformation graph (embedded deformation, Sumner et al. 2007) with per-frame rigid transforms.

J control nodes at rest positions ``g [J,3]``; at keyframe f node j carries a rotation ``R[f,j]`` and a
translation ``d[f,j]``. A point p bound to nodes j_1..j_k with weights w_1..w_k (rows sum to 1) moves to

    p'(f) = Σ_i w_i · (R[f,j_i] (p − g_{j_i}) + g_{j_i} + d[f,j_i])

which is linear blend skinning with the nodes as joints (so it exports as a glTF skin exactly). Between
keyframes translations are interpolated linearly and rotations by normalised quaternion lerp.

Regularisers (Animate3D / embedded deformation):

- ``"arap"``: for each node j and each of its graph neighbours k, the squared distance between where j's
  transform sends k's rest position and where k actually goes, ``|R_j (g_k − g_j) + g_j + d_j − (g_k + d_k)|²``,
  averaged and divided by the squared mean neighbour distance (scale-free). Zero for any rigid motion.
- ``"arap_l1"``: the same residuals under the Charbonnier norm ``√(r² + ε²) − ε`` (ε = 1 % of the mean
  neighbour distance), nearly L1. Squared ARAP lets every edge bend a little for free, so a whole body can
  drift (shrink, sag) to explain shading; the L1 form charges small bends like large ones per unit, so the
  non-rigidity gathers where the images demand it (at joints) and the rest stays rigid.
- ``"motion_smoothness"``: mean squared second difference over keyframes of node positions (÷ same scale)
  and of rotation quaternions. Zero for constant-velocity motion.
- ``"rest"``: mean over keyframes and nodes of the Charbonnier norm ``√(x² + ε²) − ε`` of each node's
  motion ``x² = |d|² / s² + (2 sin(θ/2))²`` (translation in mean neighbour distances s, rotation angle θ).
  Close to L1: it costs about the same per unit of motion however large, so motion the images ask for
  stays, while motion they cannot see (a textureless sphere turning, a static body drifting to explain
  shading) is pulled back to the rest pose — among equally good fits, the one that moves least.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from motion4d.gaussians.rotations import quat_to_rotmat


def farthest_point_sampling(points: Tensor, k: int, *, start: int = 0) -> Tensor:
    """Indices [k] of ``k`` points of ``points [P,3]`` spread out by farthest-point sampling from ``start``."""
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape [P,3], got {list(points.shape)}")
    k = min(int(k), points.shape[0])
    if k < 1:
        raise ValueError("k must be >= 1 and points non-empty")
    chosen = torch.empty(k, dtype=torch.long)
    dist = torch.full((points.shape[0],), float("inf"), dtype=points.dtype, device=points.device)
    idx = int(start)
    for i in range(k):
        chosen[i] = idx
        dist = torch.minimum(dist, (points - points[idx]).square().sum(-1))
        idx = int(dist.argmax())
    return chosen.to(points.device)


def skinning_weights(points: Tensor, nodes: Tensor, k: int = 4) -> tuple[Tensor, Tensor]:
    """Bind ``points [P,3]`` to their ``k`` nearest ``nodes [J,3]``.

    Weights as embedded deformation: ``w_i ∝ (1 − d_i / d_{k+1})²`` with ``d_{k+1}`` the distance to the
    (k+1)-th nearest node (uniform when that is degenerate), normalised to sum to 1.

    Returns ``(indices [P,k] long, weights [P,k])``; with fewer than k+1 nodes all nodes are used.
    """
    if nodes.dim() != 2 or nodes.shape[1] != 3 or nodes.shape[0] < 1:
        raise ValueError(f"nodes must have shape [J,3] with J >= 1, got {list(nodes.shape)}")
    kk = min(k + 1, nodes.shape[0])
    d, idx = torch.cdist(points, nodes).topk(kk, dim=1, largest=False)
    if kk <= k:  # too few nodes for a cut-off distance: inverse-distance weights
        w = 1.0 / (d + 1e-9)
    else:
        w = (1.0 - d[:, :k] / d[:, k : k + 1].clamp_min(1e-12)).clamp_min(0).square()
        idx = idx[:, :k]
    w = torch.where(w.sum(1, keepdim=True) > 1e-12, w, torch.ones_like(w))
    return idx, w / w.sum(1, keepdim=True)


def _nlerp(q0: Tensor, q1: Tensor, a: Tensor) -> Tensor:
    q1 = torch.where((q0 * q1).sum(-1, keepdim=True) < 0, -q1, q1)
    return torch.nn.functional.normalize(q0 * (1 - a) + q1 * a, dim=-1)


class DeformationGraph(nn.Module):
    """Control nodes with per-keyframe rotations and translations.

    Args:
        nodes: [J,3] rest positions.
        frame_times: [T] increasing keyframe times (e.g. the driving video's frame times in [0,1]).
        n_neighbors: graph neighbours per node for the ARAP term (the k nearest in space, unless given).
        neighbors: [J,n] the graph's edges instead (e.g. geodesic, :mod:`motion4d.gaussians.geodesic`); an entry
            equal to its own row (a node with fewer neighbours, padded) is no edge.
    """

    def __init__(self, nodes: Tensor, frame_times: Tensor, *, n_neighbors: int = 6, neighbors: Tensor | None = None):
        super().__init__()
        if nodes.dim() != 2 or nodes.shape[1] != 3 or nodes.shape[0] < 1:
            raise ValueError(f"nodes must have shape [J,3], got {list(nodes.shape)}")
        frame_times = torch.as_tensor(frame_times, dtype=nodes.dtype).reshape(-1).to(nodes.device)
        if frame_times.numel() < 1 or (frame_times.numel() > 1 and not bool((frame_times[1:] > frame_times[:-1]).all())):
            raise ValueError("frame_times must be non-empty and strictly increasing")
        j, t = nodes.shape[0], frame_times.numel()
        self.register_buffer("nodes", nodes.detach().clone())
        self.register_buffer("frame_times", frame_times.clone())
        kk = min(n_neighbors, j - 1)
        if neighbors is not None:
            nbrs = torch.as_tensor(neighbors, dtype=torch.long, device=nodes.device)
            if nbrs.dim() != 2 or nbrs.shape[0] != j or (nbrs.numel() and (nbrs.min() < 0 or nbrs.max() >= j)):
                raise ValueError(f"neighbors must have shape [{j},n] and index the nodes, got {list(nbrs.shape)}")
        elif kk > 0:
            nbrs = torch.cdist(nodes, nodes).topk(kk + 1, dim=1, largest=False).indices[:, 1:]
        else:
            nbrs = torch.zeros(j, 0, dtype=torch.long, device=nodes.device)
        self.register_buffer("neighbors", nbrs)
        quats = torch.zeros(t, j, 4, dtype=nodes.dtype, device=nodes.device)
        quats[..., 0] = 1.0
        self.quats = nn.Parameter(quats)
        """[T,J,4] raw rotation quaternions (wxyz, normalised when used)."""
        self.translations = nn.Parameter(torch.zeros(t, j, 3, dtype=nodes.dtype, device=nodes.device))
        """[T,J,3] translations."""

    @property
    def num_nodes(self) -> int:
        """J."""
        return self.nodes.shape[0]

    @property
    def num_frames(self) -> int:
        """T."""
        return self.frame_times.shape[0]

    def frame_index(self, t: float) -> tuple[int, int, float]:
        """Bracketing keyframes ``(f0, f1)`` of time ``t`` and the blend ``a`` in [0,1] (clamped at the ends)."""
        ft = self.frame_times
        if t <= float(ft[0]) or self.num_frames == 1:
            return 0, 0, 0.0
        if t >= float(ft[-1]):
            return self.num_frames - 1, self.num_frames - 1, 0.0
        f1 = int(torch.searchsorted(ft, torch.tensor([t], dtype=ft.dtype, device=ft.device))[0])
        f0 = f1 - 1
        return f0, f1, (t - float(ft[f0])) / float(ft[f1] - ft[f0])

    def quats_at(self, t: float) -> tuple[Tensor, Tensor]:
        """Node rotations as unit quaternions ``[J,4]`` (wxyz) and translations ``[J,3]`` at time ``t``
        (interpolated between keyframes)."""
        f0, f1, a = self.frame_index(float(t))
        q0 = torch.nn.functional.normalize(self.quats[f0], dim=-1)
        if f0 == f1 or a == 0.0:
            return q0, self.translations[f0]
        q1 = torch.nn.functional.normalize(self.quats[f1], dim=-1)
        at = torch.tensor(a, dtype=q0.dtype, device=q0.device)
        return _nlerp(q0, q1, at), self.translations[f0] * (1 - at) + self.translations[f1] * at

    def transforms_at(self, t: float) -> tuple[Tensor, Tensor]:
        """Node rotations ``[J,3,3]`` and translations ``[J,3]`` at time ``t`` (interpolated between keyframes)."""
        q, d = self.quats_at(t)
        return quat_to_rotmat(q), d

    def keyframe_transforms(self) -> tuple[Tensor, Tensor]:
        """All keyframes' rotations ``[T,J,3,3]`` and translations ``[T,J,3]``."""
        return quat_to_rotmat(self.quats), self.translations

    def deform(self, points: Tensor, indices: Tensor, weights: Tensor, t: float) -> Tensor:
        """Move ``points [P,3]`` bound by ``indices [P,k]``, ``weights [P,k]`` (see :func:`skinning_weights`) to time ``t``."""
        R, d = self.transforms_at(t)
        g = self.nodes[indices]  # [P,k,3]
        moved = torch.einsum("pkab,pkb->pka", R[indices], points[:, None, :] - g) + g + d[indices]
        return (weights[..., None] * moved).sum(1)

    def to_tensors(self, prefix: str = "graph.") -> dict[str, Tensor]:
        """Everything that defines the graph, as named tensors (for a model's safetensors file)."""
        names = ("nodes", "frame_times", "neighbors", "quats", "translations")
        return {prefix + k: getattr(self, k).detach() for k in names}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], prefix: str = "graph.") -> "DeformationGraph":
        """Inverse of :meth:`to_tensors`."""
        graph = cls(tensors[prefix + "nodes"], tensors[prefix + "frame_times"])
        graph.neighbors = tensors[prefix + "neighbors"]
        with torch.no_grad():
            graph.quats.copy_(tensors[prefix + "quats"])
            graph.translations.copy_(tensors[prefix + "translations"])
        return graph

    def grown(self, new_nodes: Tensor, neighbors: Tensor, indices: Tensor, weights: Tensor) -> "DeformationGraph":
        """A graph with ``new_nodes [K,3]`` appended, each new node starting from the motion the graph gives
        its position now (bound by ``indices [K,k]``, ``weights [K,k]``): its translation carries it where the
        blend takes it, its rotation is the blend of its nodes' (sign-aligned, normalised). The pose of
        every point near a new node is therefore (nearly) unchanged. ``neighbors [J+K,n]``: the new edges."""
        graph = DeformationGraph(torch.cat([self.nodes, new_nodes.to(self.nodes)]), self.frame_times, neighbors=neighbors)
        with torch.no_grad():
            q = torch.nn.functional.normalize(self.quats, dim=-1)[:, indices]  # [T,K,k,4]
            q = torch.where((q * q[:, :, :1]).sum(-1, keepdim=True) < 0, -q, q)
            q_new = torch.nn.functional.normalize((weights[None, :, :, None] * q).sum(2), dim=-1)
            R, d = self.keyframe_transforms()
            g = self.nodes[indices]  # [K,k,3]
            p = new_nodes.to(self.nodes)
            moved = torch.einsum("tkcab,kcb->tkca", R[:, indices], p[:, None, :] - g) + g + d[:, indices]
            d_new = (weights[None, :, :, None] * moved).sum(2) - p
            graph.quats.copy_(torch.cat([self.quats.detach(), q_new], 1))
            graph.translations.copy_(torch.cat([self.translations.detach(), d_new], 1))
        return graph

    def copy_frame(self, src: int, dst: int) -> None:
        """Set keyframe ``dst``'s transforms to keyframe ``src``'s (to start a new frame from its neighbour)."""
        with torch.no_grad():
            self.quats[dst] = self.quats[src]
            self.translations[dst] = self.translations[src]

    def _edges(self) -> Tensor:
        """[J,n] bool: which neighbour entries are edges (not a node's padding with itself)."""
        return self.neighbors != torch.arange(self.num_nodes, device=self.neighbors.device)[:, None]

    def _neighbor_scale(self) -> Tensor:
        edges = self._edges()
        if not bool(edges.any()):
            return torch.ones((), dtype=self.nodes.dtype, device=self.nodes.device)
        return (self.nodes[self.neighbors] - self.nodes[:, None]).norm(dim=-1)[edges].mean().clamp_min(1e-12)

    def arap_residuals(self, frames: Tensor | None = None) -> Tensor:
        """[F,E] squared ARAP residuals over keyframes ``frames`` (indices; default all) and the graph's E
        edges, in squared mean neighbour distances: how far j's transform sends neighbour k's rest position
        from where k goes."""
        edges = self._edges()
        if not bool(edges.any()):
            return self.translations.new_zeros(self.num_frames if frames is None else len(frames), 0)
        q = self.quats if frames is None else self.quats[frames]
        d = self.translations if frames is None else self.translations[frames]
        R = quat_to_rotmat(q)  # [F,J,3,3]
        g, nb = self.nodes, self.neighbors
        rel = g[nb] - g[:, None]  # [J,k,3]
        pred = torch.einsum("fjab,jkb->fjka", R, rel) + g[None, :, None] + d[:, :, None]
        actual = g[nb][None] + d[:, nb]
        return (pred - actual).square().sum(-1)[:, edges] / self._neighbor_scale().square()

    def arap(self, frames: Tensor | None = None, *, residuals: Tensor | None = None) -> Tensor:
        """The "arap" term over keyframes ``frames`` (indices; default all), or of given ``residuals``
        (from :meth:`arap_residuals`); see the module docstring."""
        r2 = self.arap_residuals(frames) if residuals is None else residuals
        return r2.mean() if r2.numel() else self.translations.sum() * 0.0

    def arap_l1(self, frames: Tensor | None = None, eps: float = 0.01, *, residuals: Tensor | None = None) -> Tensor:
        """The "arap_l1" term: the Charbonnier norm ``√(r² + ε²) − ε`` of the ARAP residuals (see the module docstring)."""
        r2 = self.arap_residuals(frames) if residuals is None else residuals
        return ((r2 + eps * eps).sqrt() - eps).mean() if r2.numel() else self.translations.sum() * 0.0

    def regularizers(self) -> dict[str, Tensor]:
        """``"arap"``, ``"arap_l1"``, ``"motion_smoothness"`` and ``"rest"`` (see the module docstring)."""
        r2 = self.arap_residuals()  # once for both ARAP terms
        return {"arap": self.arap(residuals=r2), "arap_l1": self.arap_l1(residuals=r2), "motion_smoothness": self.motion_smoothness(),
                "rest": self.rest_deviation()}  # fmt: skip

    def rest_deviation(self, eps: float = 0.01) -> Tensor:
        """The "rest" term (see the module docstring): 0 at the rest pose."""
        q = torch.nn.functional.normalize(self.quats, dim=-1)
        sin_half = q[..., 1:].norm(dim=-1)  # |sin(θ/2)|, whichever sign the quaternion has
        x2 = (self.translations / self._neighbor_scale()).square().sum(-1) + (2 * sin_half).square()
        return ((x2 + eps * eps).sqrt() - eps).mean()

    def motion_smoothness(self) -> Tensor:
        """The "motion_smoothness" term: second differences over keyframes (0 with fewer than 3)."""
        if self.num_frames < 3:
            return self.translations.sum() * 0.0
        pos = self.translations / self._neighbor_scale()
        q = torch.nn.functional.normalize(self.quats, dim=-1)
        acc_p = pos[2:] - 2 * pos[1:-1] + pos[:-2]
        acc_q = q[2:] - 2 * q[1:-1] + q[:-2]
        return acc_p.square().sum(-1).mean() + acc_q.square().sum(-1).mean()
