"""Quaternion ↔ rotation-matrix conversions (wxyz, as gsplat), defined once for every layer above."""

from __future__ import annotations

import torch
from torch import Tensor


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] from quaternions [..., 4] (wxyz, normalised here)."""
    w, x, y, z = torch.unbind(torch.nn.functional.normalize(quats, dim=-1), dim=-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))  # fmt: skip


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Unit quaternions [..., 4] (wxyz, w ≥ 0) of rotation matrices ``R [..., 3, 3]``.

    Uses the largest of the four candidate denominators per matrix (Shepperd's method), so it is
    accurate for every rotation, including half-turns.
    """
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"R must have shape [...,3,3], got {list(R.shape)}")
    m = R.reshape(-1, 3, 3)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    cands = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
    best = cands.argmax(dim=-1)
    s = cands.gather(-1, best[:, None])[:, 0].clamp_min(1e-12).sqrt() * 2  # 4·|component|
    q = torch.empty(m.shape[0], 4, dtype=R.dtype, device=R.device)
    sel = best == 0
    q[sel] = torch.stack([s[sel] / 4, (m[sel, 2, 1] - m[sel, 1, 2]) / s[sel], (m[sel, 0, 2] - m[sel, 2, 0]) / s[sel], (m[sel, 1, 0] - m[sel, 0, 1]) / s[sel]], -1)
    sel = best == 1
    q[sel] = torch.stack([(m[sel, 2, 1] - m[sel, 1, 2]) / s[sel], s[sel] / 4, (m[sel, 0, 1] + m[sel, 1, 0]) / s[sel], (m[sel, 0, 2] + m[sel, 2, 0]) / s[sel]], -1)
    sel = best == 2
    q[sel] = torch.stack([(m[sel, 0, 2] - m[sel, 2, 0]) / s[sel], (m[sel, 0, 1] + m[sel, 1, 0]) / s[sel], s[sel] / 4, (m[sel, 1, 2] + m[sel, 2, 1]) / s[sel]], -1)
    sel = best == 3
    q[sel] = torch.stack([(m[sel, 1, 0] - m[sel, 0, 1]) / s[sel], (m[sel, 0, 2] + m[sel, 2, 0]) / s[sel], (m[sel, 1, 2] + m[sel, 2, 1]) / s[sel], s[sel] / 4], -1)
    q = torch.nn.functional.normalize(q, dim=-1)
    q = torch.where(q[:, :1] < 0, -q, q)
    return q.reshape(R.shape[:-2] + (4,))


def covars_to_quats_scales(covars: Tensor) -> tuple[Tensor, Tensor]:
    """Rotations ``quats [N,4]`` (wxyz) and ``scales [N,3]`` with ``R diag(scales²) Rᵀ = covars [N,3,3]``.

    By eigendecomposition: ``R``'s columns are the eigenvectors (one flipped when needed so that det R = +1,
    a proper rotation), ``scales`` the square roots of the eigenvalues (ascending).
    """
    if covars.dim() != 3 or covars.shape[1:] != (3, 3):
        raise ValueError(f"covars must have shape [N,3,3], got {list(covars.shape)}")
    sym = 0.5 * (covars + covars.transpose(1, 2)).double()
    vals, vecs = torch.linalg.eigh(sym)
    flip = torch.linalg.det(vecs) < 0
    vecs = vecs.clone()
    vecs[flip, :, 2] = -vecs[flip, :, 2]
    scales = vals.clamp_min(1e-20).sqrt()
    return rotmat_to_quat(vecs).to(covars.dtype), scales.to(covars.dtype)
