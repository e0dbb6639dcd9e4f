"""A tiny stand-in 4D model following the 4D protocol (``at_time``, ``regularizers``, row hooks, save/load):
static 3D Gaussians plus a per-Gaussian velocity, ``μ(t) = means + velocities · t``. Tests use it to
exercise the 4D trainer and pipelines independently of the real models."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from motion4d.atomic import atomic_path
from motion4d.gaussians import GaussianFrame, Gaussians3D
from motion4d.gaussians.activations import opacity_activation, scale_activation, scale_inverse


class LinearMotionGaussians(nn.Module):
    """Gaussians moving at constant velocity; ``params``: means, velocities [N,3], quats, log_scales,
    opacity_logits, sh0, shN, and one field parameter (a global time offset) to test field handling."""

    def __init__(self, tensors: dict[str, torch.Tensor], sh_degree: int):
        super().__init__()
        self.params = nn.ParameterDict({k: nn.Parameter(v.detach().clone()) for k, v in tensors.items()})
        self.time_offset = nn.Parameter(torch.zeros(1))
        self.sh_degree = sh_degree

    @classmethod
    def random(cls, n, center, radius, time_range, *, sh_degree, seed, init_opacity):
        g = Gaussians3D.random_in_sphere(n, center, radius, sh_degree=sh_degree, init_opacity=init_opacity, seed=seed)
        tensors = {k: v.detach() for k, v in g.params.items()}
        tensors["velocities"] = torch.zeros(n, 3)
        return cls(tensors, sh_degree)

    def __len__(self):
        return self.params["means"].shape[0]

    def field_parameters(self):
        return [self.time_offset]

    def at_time(self, t: float = 0.0) -> GaussianFrame:
        p = self.params
        means = p["means"] + p["velocities"] * (t + self.time_offset)
        sh = torch.cat([p["sh0"], p["shN"]], 1)
        return GaussianFrame(means, p["quats"], scale_activation(p["log_scales"]), opacity_activation(p["opacity_logits"]), sh, self.sh_degree)

    def regularizers(self, t: float) -> dict[str, torch.Tensor]:
        return {"time_smoothness": self.params["velocities"].pow(2).mean()}

    def max_scale3d(self):
        return scale_activation(self.params["log_scales"]).max(-1).values

    def clone_rows(self, mask):
        return {k: v.data[mask] for k, v in self.params.items()}

    def split_rows(self, mask, n_children=2, factor=1.6, generator=None):
        rows = {k: v.data[mask].repeat(n_children, *([1] * (v.dim() - 1))) for k, v in self.params.items()}
        rows["log_scales"] = scale_inverse(scale_activation(rows["log_scales"]) / factor)
        rows["means"] = rows["means"] + 0.01 * torch.randn(rows["means"].shape, generator=generator)
        return rows

    def motion_displacement(self, t0, t1):
        return (self.params["velocities"] * (t1 - t0)).norm(dim=-1)

    def save(self, path):
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.params.items()}
        tensors["field.time_offset"] = self.time_offset.detach().cpu()
        with atomic_path(Path(path)) as tmp:
            save_file(tensors, str(tmp), metadata={"sh_degree": json.dumps(self.sh_degree)})
        return Path(path)

    @classmethod
    def load(cls, path):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            degree = json.loads(f.metadata()["sh_degree"])
        tensors = load_file(str(path))
        offset = tensors.pop("field.time_offset")
        model = cls(tensors, degree)
        model.time_offset.data.copy_(offset)
        return model
