"""Per-keyframe vertex offsets: the non-rigid part of a mesh's motion that a sparse graph cannot carry.

A deformation graph of ~100 nodes moves a mesh by blending rigid transforms; it cannot bend a sphere into
spikes (AnimatedMorphSphere's morph targets move 80 % of its vertices by more than 2 % of its size, up to
36 %). This field adds an offset ``o[f,u]`` to every (welded) vertex u at keyframe f, applied to the rest
positions *before* the graph's skinning:

    p'(f) = LBS_f(p + o[f])

which is exactly how a glTF viewer plays morph targets on a skinned mesh (morph first, then skin), so the
offsets export as morph targets (:func:`motion4d.export.gltf.morph_basis`) and the file plays back what
was fitted.

Vertices at the same position (seams of UVs or normals) are welded first and share one offset, so the
surface cannot tear. Offsets start at zero (the graph alone), and three regularisers keep them honest:

- ``"offset_laplacian"``: mean squared uniform-Laplacian of the offsets over the welded mesh,
  ``|o_u − mean_{v∈N(u)} o_v|²``, in units of the mean edge length. Smooth offset fields (a bulge, a
  stretch) are cheap; a vertex moving against its neighbours is not. This is Laplacian mesh editing's
  energy: the rest mesh's local detail is kept while its large-scale shape follows the images.
- ``"offset_smoothness"``: mean squared second difference over keyframes (same units).
- ``"offset_magnitude"``: mean squared offset (same units), so that what the graph can explain it does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


def weld_vertices(vertices: Tensor, *, tol: float = 1e-6) -> tuple[Tensor, int]:
    """Map vertices at the same position (within ``tol`` × the bounding-box diagonal) to one id.

    Args:
        vertices: [V,3].

    Returns:
        ``(weld [V] long, U)``: ``weld[i]`` is vertex i's welded id in ``0..U-1``, ids in first-seen order.
    """
    if vertices.dim() != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape [V,3], got {list(vertices.shape)}")
    v = vertices.detach().double().cpu().numpy()
    if v.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=vertices.device), 0
    diag = float(np.linalg.norm(v.max(0) - v.min(0))) or 1.0
    keys = np.round(v / (tol * diag)).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # renumber by first occurrence
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    weld = rank[inverse.reshape(-1)]
    return torch.from_numpy(weld).to(vertices.device), int(order.size)


def mesh_edges(faces: Tensor, weld: Tensor) -> Tensor:
    """[E,2] unique undirected edges (i < j) of the welded mesh ``weld[faces]``, degenerate ones dropped."""
    if faces.dim() != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape [F,3], got {list(faces.shape)}")
    f = weld[faces.long()]
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], dim=0)
    e = e[e[:, 0] != e[:, 1]]
    e = torch.sort(e, dim=1).values
    return torch.unique(e, dim=0)


class VertexOffsets(nn.Module):
    """Offsets ``[T,U,3]`` of a mesh's welded vertices at T keyframes (see the module docstring).

    Args:
        vertices: [V,3] rest positions (to weld and to measure edge lengths).
        faces: [F,3] long.
        num_frames: T keyframes.
    """

    def __init__(self, vertices: Tensor, faces: Tensor, num_frames: int):
        super().__init__()
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        weld, n_unique = weld_vertices(vertices)
        edges = mesh_edges(faces, weld)
        self.register_buffer("weld", weld)
        self.register_buffer("edges", edges)
        unique = torch.zeros(n_unique, 3, dtype=vertices.dtype, device=vertices.device).index_copy_(0, weld, vertices.detach())
        length = (unique[edges[:, 0]] - unique[edges[:, 1]]).norm(dim=-1).mean() if edges.shape[0] else torch.ones((), dtype=vertices.dtype)
        self.register_buffer("edge_length", length.clamp_min(1e-12).reshape(()).to(vertices.dtype))
        self.offsets = nn.Parameter(torch.zeros(num_frames, n_unique, 3, dtype=vertices.dtype, device=vertices.device))
        """[T,U,3] offsets of the welded vertices, in the rest pose's coordinates (before skinning)."""

    @property
    def num_unique(self) -> int:
        """U welded vertices."""
        return self.offsets.shape[1]

    def at(self, f0: int, f1: int, a: float) -> Tensor:
        """[V,3] per-vertex offsets between keyframes ``f0`` and ``f1`` at blend ``a`` (linear, as glTF morph weights)."""
        o = self.offsets[f0] if f0 == f1 or a == 0.0 else self.offsets[f0] * (1 - a) + self.offsets[f1] * a
        return o[self.weld]

    def vertex_offsets(self) -> Tensor:
        """[T,V,3] every keyframe's offsets per (unwelded) vertex."""
        return self.offsets[:, self.weld]

    def laplacian(self) -> Tensor:
        """[T,U,3] uniform Laplacian ``o_u − mean_{v∈N(u)} o_v`` (0 for vertices without neighbours)."""
        o, e = self.offsets, self.edges
        if e.shape[0] == 0:
            return torch.zeros_like(o)
        deg = torch.zeros(self.num_unique, dtype=o.dtype, device=o.device)
        deg.index_add_(0, e[:, 0], torch.ones_like(e[:, 0], dtype=o.dtype)).index_add_(0, e[:, 1], torch.ones_like(e[:, 1], dtype=o.dtype))
        total = torch.zeros_like(o).index_add_(1, e[:, 0], o[:, e[:, 1]]).index_add_(1, e[:, 1], o[:, e[:, 0]])
        has = deg > 0
        return torch.where(has[None, :, None], o - total / deg.clamp_min(1)[None, :, None], torch.zeros_like(o))

    def regularizers(self) -> dict[str, Tensor]:
        """``"offset_laplacian"``, ``"offset_smoothness"`` and ``"offset_magnitude"`` (see the module docstring)."""
        s2 = self.edge_length.square()
        o = self.offsets
        smooth = (o[2:] - 2 * o[1:-1] + o[:-2]).square().sum(-1).mean() / s2 if o.shape[0] >= 3 else o.sum() * 0.0
        return {
            "offset_laplacian": self.laplacian().square().sum(-1).mean() / s2,
            "offset_smoothness": smooth,
            "offset_magnitude": o.square().sum(-1).mean() / s2,
        }

    def to_tensors(self, prefix: str = "offsets.") -> dict[str, Tensor]:
        """Everything that defines the field, as named tensors."""
        return {prefix + k: getattr(self, k).detach() for k in ("weld", "edges", "edge_length", "offsets")}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], prefix: str = "offsets.") -> "VertexOffsets":
        """Inverse of :meth:`to_tensors`."""
        field = cls.__new__(cls)
        nn.Module.__init__(field)
        for k in ("weld", "edges", "edge_length"):
            field.register_buffer(k, tensors[prefix + k])
        field.offsets = nn.Parameter(tensors[prefix + "offsets"].clone())
        return field
