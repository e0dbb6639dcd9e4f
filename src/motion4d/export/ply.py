"""The standard 3D Gaussian Splatting PLY, as written by the original 3DGS ``save_ply`` and opened by
splat viewers (SuperSplat, antimatter15/splat, gsplat's viewers).

One ``vertex`` element, binary little-endian, float32 properties in this order::

    x y z  nx ny nz  f_dc_0 f_dc_1 f_dc_2  f_rest_0 ... f_rest_{3(K-1)-1}  opacity
    scale_0 scale_1 scale_2  rot_0 rot_1 rot_2 rot_3

``f_dc`` are the degree-0 SH coefficients (RGB); ``f_rest`` the higher bands channel-major (all K−1 red
coefficients, then green, then blue: 3DGS transposes ``[N,K-1,3]`` to ``[N,3,K-1]`` and flattens);
``opacity`` is the logit, ``scale_*`` the log standard deviations, ``rot`` the wxyz quaternion. Normals are 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement
from torch import Tensor

from motion4d.atomic import atomic_path
from motion4d.data.splat_ply import load_ply, ply_property_names
from motion4d.gaussians.activations import (  # noqa: F401 - rgb_to_sh0 / sh0_to_rgb re-exported for PLY users
    opacity_inverse,
    rgb_to_sh0,
    scale_inverse,
    sh0_to_rgb,
)

__all__ = ["load_ply", "ply_property_names", "rgb_to_sh0", "save_ply", "sh0_to_rgb"]

_MIN_SCALE = 1e-12


def _check(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: Tensor) -> int:
    N = means.shape[0] if means.dim() == 2 else -1
    expected = {"means": (means, (N, 3)), "quats": (quats, (N, 4)), "scales": (scales, (N, 3)), "opacities": (opacities, (N,))}
    for name, (t, shape) in expected.items():
        if tuple(t.shape) != shape:
            want = "[" + ",".join("N" if s == N else str(s) for s in shape) + "]"
            raise ValueError(f"{name} must have shape {want}, got {list(t.shape)}")
    if sh.dim() != 3 or sh.shape[0] != N or sh.shape[2] != 3 or math.isqrt(sh.shape[1]) ** 2 != sh.shape[1]:
        raise ValueError(f"sh must have shape [N,K,3] with K a square (1, 4, 9, 16), got {list(sh.shape)}")
    return N


@torch.no_grad()
def save_ply(path: str | Path, means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: Tensor) -> None:
    """Write Gaussians as a standard 3DGS PLY at ``path`` (atomically).

    Args:
        means: [N,3] centres.
        quats: [N,4] rotations, wxyz (need not be normalised).
        scales: [N,3] standard deviations (activated; written as logs, clamped to ≥ 1e-12).
        opacities: [N] in (0,1) (activated; written as logits, clamped to [1e-6, 1−1e-6]).
        sh: [N,K,3] SH coefficients, K = (degree+1)².
    """
    N = _check(means, quats, scales, opacities, sh)
    K = sh.shape[1]
    cpu = lambda t: t.detach().to("cpu", torch.float32)  # noqa: E731
    means, quats, scales, opacities, sh = map(cpu, (means, quats, scales, opacities, sh))
    if not (torch.isfinite(means).all() and torch.isfinite(quats).all() and torch.isfinite(sh).all()):
        raise ValueError("means, quats and sh must be finite")
    columns = [
        means,
        torch.zeros(N, 3),
        sh[:, 0, :],
        sh[:, 1:, :].transpose(1, 2).reshape(N, 3 * (K - 1)),  # channel-major f_rest
        opacity_inverse(opacities)[:, None],
        scale_inverse(scales.clamp_min(_MIN_SCALE)),
        quats,
    ]
    values = torch.cat(columns, dim=1).numpy()
    names = ply_property_names(K)
    records = np.empty(N, dtype=[(n, "<f4") for n in names])
    for i, n in enumerate(names):
        records[n] = values[:, i]
    ply = PlyData([PlyElement.describe(records, "vertex")], text=False, byte_order="<")
    with atomic_path(path) as tmp:
        ply.write(str(tmp))
