"""An animated mesh as Gaussians: a static mesh, Gaussians bound to its surface, and a deformation graph.

The graph (:mod:`motion4d.gaussians.deform_graph`) moves the mesh's vertices by linear blend skinning,
after per-keyframe vertex offsets (:mod:`motion4d.gaussians.vertex_offsets`, zero unless trained) have
bent the rest shape where the graph's blended rigid motions cannot reach; the surface Gaussians (:mod:`motion4d.gaussians.surface`) follow their faces. Rendering the Gaussians at a
time t therefore shows the mesh posed at t, and a photometric loss on the renders fits the graph — the
mesh motion — directly; the same graph then exports as a glTF skin.

Stored (raw) per-Gaussian parameters in ``params``: ``sh0 [N,1,3]`` colours (initialised from the mesh's
material; trainable, so lighting in the driving images need not be explained by motion),
``shN [N,0,3]``, ``opacity_logits [N]`` (the activated ``opacities`` and ``sh`` are
:class:`~motion4d.gaussians.base.GaussianParams`'; there are no per-Gaussian means or scales: the
surface decides them). The graph's keyframe transforms and the vertex offsets are the field parameters.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from scipy.spatial import cKDTree
from torch import Tensor, nn

from motion4d.gaussians.activations import opacity_inverse, rgb_to_sh0
from motion4d.gaussians.base import GaussianParams, make_params
from motion4d.gaussians.deform_graph import DeformationGraph, farthest_point_sampling, skinning_weights
from motion4d.gaussians.files import load_tensors, model_loader, save_tensors
from motion4d.gaussians.gaussians3d import GaussianFrame
from motion4d.gaussians.geodesic import geodesic_graph, refine_geodesic_graph
from motion4d.gaussians.surface import deformed_covariances, face_frames, rest_covariances, surface_points
from motion4d.gaussians.vertex_offsets import VertexOffsets

FORMAT = "motion4d.MeshGaussians"
_BUFFERS = ("rest_vertices", "faces", "face_ids", "barycentrics", "skin_indices", "skin_weights", "rest_covars", "rest_frames_inv")
_SETTINGS = ("inset", "max_stretch")
"""Scalar rendering settings saved with the model (0 in files from before they existed: off)."""


class MeshGaussians(GaussianParams):
    """Surface Gaussians on a mesh moved by a deformation graph (colours only: SH degree 0).

    Args:
        vertices: [V,3] rest positions (world coordinates of the fit).
        faces: [F,3] long.
        face_ids: [N] face of each Gaussian. barycentrics: [N,3] its position on the face.
        colors: [N,3] RGB in [0,1].
        graph: the deformation graph (nodes in the same coordinates as ``vertices``).
        skin_k: nodes per vertex.
        opacity: initial opacity of every Gaussian.
        scale_factor, normal_ratio, edge_ratio: see :func:`motion4d.gaussians.surface.rest_covariances`.
        covars: [N,3,3] rest covariances to use instead (e.g. from :func:`motion4d.gaussians.surface.surface_gaussians`);
            then scale_factor, normal_ratio and edge_ratio are not used.
        skin: per-vertex ``(node indices [V,k], weights [V,k])`` (e.g. geodesic, see :meth:`build`); default:
            the ``skin_k`` nearest nodes in space (:func:`~motion4d.gaussians.deform_graph.skinning_weights`).
        inset: how far each Gaussian sits behind its face, in units of its own size (√(tr Σ / 2), as posed),
            along the face's normal (the side its winding makes the back). A flat Gaussian on a curved
            surface sticks out past the outline where the surface turns away; seen edge-on, an inset of
            about one size takes that spill back (AnimatedMorphSphere's rest pose after the coverage fit:
            alpha 4.8 % over its images' at 0, 0.7 % at 1). Rendering only: the mesh, and so the export,
            do not move.
        max_stretch: the most the Gaussians of a stretching face grow, in linear size (0: no limit; see
            :func:`motion4d.gaussians.surface.deformed_covariances`). A Gaussian that stretches with its face
            far past a pixel spills past the outline by much more than the mesh covers: on
            AnimatedMorphSphere's peak, whose faces stretch up to 9× (a quarter fold over), the Gaussians on
            the true shape render 37 % more alpha than the shape covers with no limit, 4 % less at 1.5.
            Rendering only.
    """

    def __init__(
        self,
        vertices: Tensor,
        faces: Tensor,
        face_ids: Tensor,
        barycentrics: Tensor,
        colors: Tensor,
        graph: DeformationGraph,
        *,
        skin_k: int = 4,
        opacity: float = 0.98,
        scale_factor: float = 0.7,
        normal_ratio: float = 0.1,
        edge_ratio: float = 0.0,
        covars: Tensor | None = None,
        skin: tuple[Tensor, Tensor] | None = None,
        inset: float = 0.0,
        max_stretch: float = 0.0,
    ):
        super().__init__()
        n = face_ids.shape[0]
        if barycentrics.shape != (n, 3) or colors.shape != (n, 3):
            raise ValueError(f"barycentrics and colors must have shape [{n},3], got {list(barycentrics.shape)}, {list(colors.shape)}")
        vertices = vertices.detach()
        self.graph = graph
        idx, w = skinning_weights(vertices, graph.nodes, skin_k) if skin is None else skin
        if idx.shape != w.shape or idx.shape[0] != vertices.shape[0]:
            raise ValueError(f"skin indices and weights must have shape [{vertices.shape[0]},k], got {list(idx.shape)}, {list(w.shape)}")
        self.register_buffer("rest_vertices", vertices.clone())
        self.register_buffer("faces", faces.long().clone())
        self.register_buffer("face_ids", face_ids.long().clone())
        self.register_buffer("barycentrics", barycentrics.detach().clone())
        self.register_buffer("skin_indices", idx)
        self.register_buffer("skin_weights", w)
        if covars is None:
            covars = rest_covariances(vertices, self.faces, self.face_ids, self.barycentrics, scale_factor=scale_factor, normal_ratio=normal_ratio, edge_ratio=edge_ratio)
        elif covars.shape != (n, 3, 3):
            raise ValueError(f"covars must have shape [{n},3,3], got {list(covars.shape)}")
        self.register_buffer("rest_covars", covars.detach().to(vertices.dtype).clone())
        self.register_buffer("rest_frames_inv", torch.linalg.pinv(face_frames(vertices.double(), self.faces)).to(vertices.dtype))
        self.register_buffer("inset", torch.tensor(float(inset), dtype=vertices.dtype, device=vertices.device))
        if max_stretch < 0 or (0 < max_stretch < 1):
            raise ValueError(f"max_stretch must be 0 (no limit) or >= 1, got {max_stretch}")
        self.register_buffer("max_stretch", torch.tensor(float(max_stretch), dtype=vertices.dtype, device=vertices.device))
        self.offsets = VertexOffsets(vertices, self.faces, graph.num_frames)
        self.params = make_params({
            "sh0": rgb_to_sh0(colors.detach().clamp(0, 1))[:, None, :],
            "shN": torch.zeros(n, 0, 3, dtype=vertices.dtype, device=vertices.device),
            "opacity_logits": opacity_inverse(torch.full((n,), opacity, dtype=vertices.dtype, device=vertices.device)),
        })

    @classmethod
    def build(
        cls,
        vertices: Tensor,
        faces: Tensor,
        face_ids: Tensor,
        barycentrics: Tensor,
        colors: Tensor,
        frame_times: Tensor,
        *,
        n_nodes: int = 128,
        n_neighbors: int = 6,
        metric: str = "geodesic",
        gap: float = 1e-3,
        **kwargs,
    ) -> "MeshGaussians":
        """Pick ``n_nodes`` graph nodes among the vertices and bind everything.

        ``metric`` "geodesic": node placement, skin and graph edges by distance over the mesh surface, parts
        closer than ``gap`` × the diagonal joined (:func:`motion4d.gaussians.geodesic.geodesic_graph`);
        "euclidean": farthest-point sampling in space, each vertex bound to its nearest nodes in space.
        """
        if metric == "euclidean":
            nodes = vertices[farthest_point_sampling(vertices, n_nodes)]
            return cls(vertices, faces, face_ids, barycentrics, colors, DeformationGraph(nodes, frame_times, n_neighbors=n_neighbors), **kwargs)
        if metric != "geodesic":
            raise ValueError(f"metric must be geodesic or euclidean, got {metric!r}")
        g = geodesic_graph(vertices.detach().double().cpu().numpy(), faces.cpu().numpy(), n_nodes, n_neighbors, kwargs.get("skin_k", 4), gap=gap)
        to = dict(device=vertices.device)
        graph = DeformationGraph(vertices[torch.from_numpy(g.node_vertices).to(**to)], frame_times, neighbors=torch.from_numpy(g.neighbors).to(**to))
        skin = (torch.from_numpy(g.skin_indices).to(**to), torch.from_numpy(g.skin_weights).to(dtype=vertices.dtype, **to))
        return cls(vertices, faces, face_ids, barycentrics, colors, graph, skin=skin, **kwargs)

    def refine_graph(self, candidates: Tensor, n_new: int, *, n_neighbors: int = 6, gap: float = 1e-3) -> int:
        """Add up to ``n_new`` graph nodes among the ``candidates [V]`` (bool) vertices, by geodesic distance
        (:func:`motion4d.gaussians.geodesic.refine_geodesic_graph`), and rebind every vertex: more nodes
        where the motion needs them. Each new node starts from the motion the graph gives its vertex now
        (:meth:`DeformationGraph.grown`), so the pose changes little. Returns the number of nodes added.
        The graph's parameters are new tensors: an optimizer holding the old ones must be rebuilt."""
        if candidates.shape != (self.rest_vertices.shape[0],):
            raise ValueError(f"candidates must have shape [{self.rest_vertices.shape[0]}], got {list(candidates.shape)}")
        verts = self.rest_vertices.detach().double().cpu().numpy()
        node_vertices = cKDTree(verts).query(self.graph.nodes.detach().double().cpu().numpy())[1]
        g = refine_geodesic_graph(verts, self.faces.cpu().numpy(), node_vertices, candidates.cpu().numpy(), n_new, n_neighbors,
                                  self.skin_indices.shape[1], gap=gap)  # fmt: skip
        added = len(g.node_vertices) - self.graph.num_nodes
        if added <= 0:
            return 0
        to = dict(device=self.rest_vertices.device)
        new_vertices = torch.from_numpy(g.node_vertices[self.graph.num_nodes :]).to(**to)
        self.graph = self.graph.grown(self.rest_vertices[new_vertices], torch.from_numpy(g.neighbors).to(**to),
                                      self.skin_indices[new_vertices], self.skin_weights[new_vertices])  # fmt: skip
        self.skin_indices = torch.from_numpy(g.skin_indices).to(**to)
        self.skin_weights = torch.from_numpy(g.skin_weights).to(dtype=self.skin_weights.dtype, **to)
        return added

    def resize_graph(self, nodes: Tensor, neighbors: Tensor, skin_indices: Tensor, skin_weights: Tensor) -> None:
        """Take a graph of another size (a refined one, e.g. from a checkpoint): ``nodes [J,3]``, ``neighbors [J,n]``
        and the vertices' skin; the keyframe transforms start at the identity (to be loaded)."""
        if skin_indices.shape[0] != self.rest_vertices.shape[0] or skin_indices.shape != skin_weights.shape:
            raise ValueError("skin indices and weights must have one row per vertex and the same shape")
        self.graph = DeformationGraph(nodes.to(self.rest_vertices), self.graph.frame_times, neighbors=neighbors.to(self.skin_indices.device))
        self.skin_indices = skin_indices.to(self.skin_indices)
        self.skin_weights = skin_weights.to(self.skin_weights)

    # ---- state ----------------------------------------------------------------------------
    _sh_degree = 0
    """Colours only."""

    def __len__(self) -> int:
        return self.face_ids.shape[0]

    def field_parameters(self) -> dict[str, nn.Parameter]:
        """The graph's keyframe rotations (``quats``) and ``translations``, and the vertex ``offsets``."""
        return {"quats": self.graph.quats, "translations": self.graph.translations, "offsets": self.offsets.offsets}

    # ---- motion ---------------------------------------------------------------------------
    def vertices_at(self, t: float) -> Tensor:
        """[V,3] mesh vertices at time ``t``: the rest vertices plus the offsets at t, skinned by the graph."""
        f0, f1, a = self.graph.frame_index(float(t))
        return self.graph.deform(self.rest_vertices + self.offsets.at(f0, f1, a), self.skin_indices, self.skin_weights, t)

    def at_time(self, t: float | None = None) -> GaussianFrame:
        """The Gaussians on the mesh posed at ``t`` (None: the rest pose)."""
        verts = self.rest_vertices if t is None else self.vertices_at(float(t))
        means = surface_points(verts, self.faces, self.face_ids, self.barycentrics)
        covars = deformed_covariances(self.rest_frames_inv, verts, self.faces, self.face_ids, self.rest_covars, max_stretch=float(self.max_stretch))
        if float(self.inset) != 0.0:
            f = verts[self.faces[self.face_ids]]
            normal = torch.nn.functional.normalize(torch.linalg.cross(f[:, 1] - f[:, 0], f[:, 2] - f[:, 0]), dim=-1)
            size = (covars.diagonal(dim1=-2, dim2=-1).sum(-1) / 2).clamp_min(0).sqrt().detach()
            means = means - (self.inset * size)[:, None] * normal
        # antialiased: many sub-pixel Gaussians at full opacity would otherwise each grow to the 0.3 px² filter's
        # size, fattening thin parts (RiggedFigure's rest pose rendered 35 % larger than its true silhouette)
        return GaussianFrame(means, None, None, self.opacities, self.sh, 0, covars=covars, rasterize_mode="antialiased")

    def copy_frame(self, src: int, dst: int) -> None:
        """Start keyframe ``dst`` from keyframe ``src``'s pose (graph transforms and offsets)."""
        self.graph.copy_frame(src, dst)
        with torch.no_grad():
            self.offsets.offsets[dst] = self.offsets.offsets[src]

    def motion_displacement(self, t0: float, t1: float) -> Tensor:
        """[N] distance each Gaussian travels from ``t0`` to ``t1``."""
        p0 = surface_points(self.vertices_at(t0), self.faces, self.face_ids, self.barycentrics)
        p1 = surface_points(self.vertices_at(t1), self.faces, self.face_ids, self.barycentrics)
        return (p1 - p0).norm(dim=-1)

    def regularizers(self, t: float | None = None, *, offsets: bool = True) -> dict[str, Tensor]:
        """The graph's regularisers (:meth:`motion4d.gaussians.deform_graph.DeformationGraph.regularizers`) and,
        unless ``offsets`` is False (they do not train: on a 27k-vertex mesh their Laplacian took 15 % of a
        step), the offsets' (:meth:`motion4d.gaussians.vertex_offsets.VertexOffsets.regularizers`)."""
        return {**self.graph.regularizers(), **(self.offsets.regularizers() if offsets else {})}

    def skin(self) -> tuple[Tensor, Tensor]:
        """Per-vertex ``(node indices [V,k], weights [V,k])`` — the skin an exporter writes."""
        return self.skin_indices, self.skin_weights

    # ---- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write buffers, parameters and graph to a safetensors file (atomically)."""
        tensors = {k: getattr(self, k) for k in (*_BUFFERS, *_SETTINGS)}
        tensors.update({f"params.{k}": v for k, v in self.params.items()})
        tensors.update(self.graph.to_tensors())
        tensors.update(self.offsets.to_tensors())
        return save_tensors(path, tensors, FORMAT, sh_degree=0)

    @classmethod
    @model_loader(FORMAT)
    def load(cls, path: str | os.PathLike) -> "MeshGaussians":
        """Read a file written by :meth:`save`."""
        t, _ = load_tensors(path, FORMAT)
        graph = DeformationGraph.from_tensors(t)
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model.graph = graph
        for k in _BUFFERS:
            model.register_buffer(k, t[k])
        for k in _SETTINGS:  # files from before a setting existed: 0, i.e. off
            model.register_buffer(k, t.get(k, torch.zeros((), dtype=t["rest_vertices"].dtype)))
        model.params = nn.ParameterDict({k.split(".", 1)[1]: nn.Parameter(v) for k, v in t.items() if k.startswith("params.")})
        # files from before the offsets existed: a zero field
        model.offsets = VertexOffsets.from_tensors(t) if "offsets.offsets" in t else VertexOffsets(model.rest_vertices, model.faces, graph.num_frames)
        return model
