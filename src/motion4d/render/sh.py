"""Real spherical harmonics up to degree 3, the standard 3DGS basis (Sloan, JCGT 2013 constants)."""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_sh_bases(degree: int) -> int:
    """Number of coefficients K = (degree + 1)² for an SH degree."""
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """SH basis [..., (degree+1)²] at directions dirs [..., 3] (normalised here)."""
    if not 0 <= degree <= 3:
        raise ValueError(f"sh_degree must be in 0..3, got {degree}")
    d = torch.nn.functional.normalize(dirs, dim=-1)
    x, y, z = d.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            _C2[0] * xy,
            _C2[1] * yz,
            _C2[2] * (2 * zz - xx - yy),
            _C2[3] * xz,
            _C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            _C3[0] * y * (3 * xx - yy),
            _C3[1] * xy * z,
            _C3[2] * y * (4 * zz - xx - yy),
            _C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            _C3[4] * x * (4 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Colour [..., 3] = Σ_k basis_k(dirs) · coeffs[..., k, :] using the first (degree+1)² of the K
    coefficients in coeffs [..., K, 3]. (No +0.5 offset or clamp; see :func:`sh_to_rgb`.)"""
    k = num_sh_bases(degree)
    if coeffs.shape[-2] < k:
        raise ValueError(f"sh_degree {degree} needs {k} SH coefficients, colors has {coeffs.shape[-2]}")
    basis = sh_basis(degree, dirs)
    return (basis[..., None] * coeffs[..., :k, :]).sum(dim=-2)


def sh_to_rgb(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """3DGS colour: max(eval_sh + 0.5, 0)."""
    return torch.clamp_min(eval_sh(degree, dirs, coeffs) + 0.5, 0.0)
