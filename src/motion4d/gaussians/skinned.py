"""An existing 3D Gaussian splat set moved by a deformation graph (the 3DGS input of ``animate``).

Each Gaussian's centre is bound to its k nearest graph nodes (:func:`~motion4d.gaussians.deform_graph.skinning_weights`)
and moves by linear blend skinning; its covariance turns with the blended rotation: the normalised weighted
sum of the nodes' quaternions (signs aligned to the first), so a rigidly moving region keeps its Gaussians'
shapes. (A polar decomposition of Σ w_k R_k would do too, but the SVD's gradient is undefined at the
identity, where every fit starts.)
Scales, opacities and SH colours stay the input's own; ``params`` holds them (``sh0``, ``shN``,
``opacity_logits``, plus the fixed ``means``, ``quats``, ``log_scales``) and the graph's keyframes are the
field parameters, as in :class:`~motion4d.gaussians.animated_mesh.MeshGaussians`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from motion4d.gaussians.activations import opacity_activation, scale_activation
from motion4d.gaussians.deform_graph import DeformationGraph, farthest_point_sampling, skinning_weights
from motion4d.gaussians.files import load_tensors, model_loader, save_tensors
from motion4d.gaussians.gaussians3d import PARAM_NAMES, GaussianFrame, Gaussians3D
from motion4d.gaussians.rotations import quat_to_rotmat

FORMAT = "motion4d.SkinnedGaussians"


def blend_quaternions(quats: Tensor, weights: Tensor) -> Tensor:
    """[P,4] unit quaternion blends of ``quats [P,k,4]`` with ``weights [P,k]`` (signs aligned to the first)."""
    sign = torch.where((quats * quats[:, :1]).sum(-1, keepdim=True) < 0, -1.0, 1.0)
    return torch.nn.functional.normalize((weights[..., None] * sign * quats).sum(1), dim=-1)


class SkinnedGaussians(nn.Module):
    """Static 3D Gaussians (raw tensors as :class:`Gaussians3D`) animated by a deformation graph."""

    def __init__(self, gaussians: Gaussians3D, graph: DeformationGraph, *, skin_k: int = 4):
        super().__init__()
        self.params = nn.ParameterDict({k: nn.Parameter(v.detach().clone()) for k, v in gaussians.params.items()})
        self._sh_degree = gaussians.sh_degree
        self.graph = graph
        idx, w = skinning_weights(self.params["means"].detach(), graph.nodes, skin_k)
        self.register_buffer("skin_indices", idx)
        self.register_buffer("skin_weights", w)

    @classmethod
    def build(cls, gaussians: Gaussians3D, frame_times: Tensor, *, n_nodes: int = 96, n_neighbors: int = 6, skin_k: int = 4) -> "SkinnedGaussians":
        """Graph nodes by farthest-point sampling of the (reasonably opaque) Gaussian centres."""
        means = gaussians.params["means"].detach()
        solid = means[gaussians.opacities.detach() > 0.1]
        pool = solid if solid.shape[0] >= n_nodes else means
        nodes = pool[farthest_point_sampling(pool, n_nodes)]
        return cls(gaussians, DeformationGraph(nodes, frame_times, n_neighbors=n_neighbors), skin_k=skin_k)

    def __len__(self) -> int:
        return self.params["means"].shape[0]

    @property
    def num_gaussians(self) -> int:
        """N."""
        return len(self)

    @property
    def sh_degree(self) -> int:
        """Largest SH degree stored."""
        return self._sh_degree

    @property
    def opacities(self) -> Tensor:
        """[N] opacities."""
        return opacity_activation(self.params["opacity_logits"])

    def field_parameters(self) -> dict[str, nn.Parameter]:
        """The graph's keyframe rotations (``quats``) and ``translations``."""
        return {"quats": self.graph.quats, "translations": self.graph.translations}

    def at_time(self, t: float | None = None) -> GaussianFrame:
        """The Gaussians posed at ``t`` (None: as given)."""
        p = self.params
        sh = torch.cat([p["sh0"], p["shN"]], dim=1)
        if t is None:
            return GaussianFrame(p["means"], p["quats"], scale_activation(p["log_scales"]), self.opacities, sh, self._sh_degree)
        means = self.graph.deform(p["means"], self.skin_indices, self.skin_weights, float(t))
        q_nodes, _ = self.graph.quats_at(float(t))
        R = quat_to_rotmat(blend_quaternions(q_nodes[self.skin_indices], self.skin_weights))  # [N,3,3]
        M = R @ quat_to_rotmat(p["quats"]) * scale_activation(p["log_scales"])[:, None, :]
        return GaussianFrame(means, None, None, self.opacities, sh, self._sh_degree, covars=M @ M.transpose(-1, -2))

    def motion_displacement(self, t0: float, t1: float) -> Tensor:
        """[N] distance each centre travels from ``t0`` to ``t1``."""
        return (self.at_time(t1).means - self.at_time(t0).means).norm(dim=-1)

    def copy_frame(self, src: int, dst: int) -> None:
        """Start keyframe ``dst`` from keyframe ``src``'s graph transforms."""
        self.graph.copy_frame(src, dst)

    def regularizers(self, t: float | None = None) -> dict[str, Tensor]:
        """The graph's regularisers (:meth:`motion4d.gaussians.deform_graph.DeformationGraph.regularizers`)."""
        return self.graph.regularizers()

    def save(self, path: str | os.PathLike) -> Path:
        """Write Gaussians, skin and graph to one safetensors file (atomically)."""
        tensors = {f"params.{k}": v for k, v in self.params.items()}
        tensors.update({"skin_indices": self.skin_indices, "skin_weights": self.skin_weights, **self.graph.to_tensors()})
        return save_tensors(path, tensors, FORMAT, sh_degree=self._sh_degree)

    @classmethod
    @model_loader(FORMAT)
    def load(cls, path: str | os.PathLike) -> "SkinnedGaussians":
        """Read a file written by :meth:`save`."""
        t, _ = load_tensors(path, FORMAT)
        graph = DeformationGraph.from_tensors(t)
        g3d = Gaussians3D(*(t[f"params.{k}"] for k in PARAM_NAMES))
        model = cls(g3d, graph, skin_k=t["skin_indices"].shape[1])
        model.skin_indices, model.skin_weights = t["skin_indices"], t["skin_weights"]
        return model
