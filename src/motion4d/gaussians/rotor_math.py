"""4D rotations from rotors of Cl(4,0) and the slicing of 4D Gaussians at a time (Duan et al. 2024).

A rotor has 8 components, in this order: scalar ``a``, bivectors ``e12, e13, e14, e23, e24, e34`` and
pseudoscalar ``e1234``, with axes 1..4 = x, y, z, t. It rotates a vector by the sandwich x ↦ R x R̃
(R̃ the reverse). A general even multivector is a rotor only if R R̃ = 1, i.e. its norm is 1 *and* the
pseudoscalar part of R R̃, 2(a·p − b12·b34 + b13·b24 − b14·b23), vanishes (the simple-rotor constraint).

How we normalise. With I = e1234 (I² = 1, central in the even algebra) the even algebra splits into two
quaternion algebras by the idempotents (1 ± I)/2 (SO(4) = S³ × S³ / ±1, left and right isoclinic
rotations). A rotor's halves are the quaternions

    l = (a + p, b12 − b34, b13 + b24, b14 − b23),   r = (a − p, b12 + b34, b13 − b24, b14 + b23),

|l|² + |r|² = 2|R|², and R R̃ = 1 exactly when |l| = |r| = 1. We normalise each half to unit length
(:func:`normalize_rotor`). For an R that already satisfies the constraint this is exactly the paper's
division by the norm; for any other R it is the nearest unit rotor (in the Euclidean metric of the 8
coefficients, since the split is orthogonal), so every 8-vector gives a proper rotation — orthonormal
with det +1 — and the pseudoscalar is a free parameter rather than a violated constraint. (A half of
zero length, measure zero, is taken as the identity quaternion.) The rotation then factors into
commuting left and right isoclinic rotations, each linear in its quaternion:
``rotor_to_matrix = L(l̂) · Rr(r̂)``. The tests check this against the sandwich computed with a
generic Cl(4,0) geometric product.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12
"""Halves of a rotor shorter than this are replaced by the identity quaternion."""


def _check(name: str, x: Tensor, last: tuple[int, ...]) -> None:
    if not isinstance(x, Tensor) or x.dim() != 1 + len(last) or tuple(x.shape[1:]) != last:
        shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape [N,{','.join(map(str, last))}], got {shape}")


def rotor_halves(rotors: Tensor) -> tuple[Tensor, Tensor]:
    """The left and right isoclinic quaternions ``l [N,4]``, ``r [N,4]`` of ``rotors [N,8]`` (unnormalised)."""
    _check("rotors", rotors, (8,))
    a, b12, b13, b14, b23, b24, b34, p = rotors.unbind(-1)
    left = torch.stack([a + p, b12 - b34, b13 + b24, b14 - b23], dim=-1)
    right = torch.stack([a - p, b12 + b34, b13 - b24, b14 + b23], dim=-1)
    return left, right


def _unit(q: Tensor) -> Tensor:
    norm = q.norm(dim=-1, keepdim=True)
    ok = norm > EPS
    identity = torch.zeros_like(q)
    identity[..., 0] = 1.0
    return torch.where(ok, q / torch.where(ok, norm, torch.ones_like(norm)), identity)


def normalize_rotor(rotors: Tensor) -> Tensor:
    """The nearest unit simple rotor [N,8] (R R̃ = 1) to each of ``rotors [N,8]`` (see module docstring)."""
    left, right = rotor_halves(rotors)
    l, r = _unit(left), _unit(right)
    return torch.stack(
        [
            (l[:, 0] + r[:, 0]) / 2, (l[:, 1] + r[:, 1]) / 2, (l[:, 2] + r[:, 2]) / 2, (l[:, 3] + r[:, 3]) / 2,
            (r[:, 3] - l[:, 3]) / 2, (l[:, 2] - r[:, 2]) / 2, (r[:, 1] - l[:, 1]) / 2, (l[:, 0] - r[:, 0]) / 2,
        ],
        dim=-1,
    )  # fmt: skip


def rotor_to_matrix(rotors: Tensor) -> Tensor:
    """Rotation matrices [N,4,4] of R⁴ (axes x,y,z,t) performed by ``rotors [N,8]`` (normalised here).

    Column i is the image R eᵢ R̃ of basis vector eᵢ; every matrix is orthonormal with det +1.
    """
    left, right = rotor_halves(rotors)
    l0, l1, l2, l3 = _unit(left).unbind(-1)
    r0, r1, r2, r3 = _unit(right).unbind(-1)
    n = rotors.shape[0]
    L = torch.stack(
        [
            l0, l1, l2, l3,
            -l1, l0, -l3, l2,
            -l2, l3, l0, -l1,
            -l3, -l2, l1, l0,
        ],
        dim=-1,
    ).reshape(n, 4, 4)  # fmt: skip
    R = torch.stack(
        [
            r0, r1, r2, r3,
            -r1, r0, r3, -r2,
            -r2, -r3, r0, r1,
            -r3, r2, -r1, r0,
        ],
        dim=-1,
    ).reshape(n, 4, 4)  # fmt: skip
    return L @ R


def rotor_from_quaternion(quats: Tensor) -> Tensor:
    """Rotors [N,8] of the 3D rotations ``quats [N,4]`` (wxyz, normalised here); the t axis stays fixed.

    q = w + x·i + y·j + z·k corresponds to R = w − x·e23 + y·e13 − z·e12, so that
    ``rotor_to_matrix(R)[:, :3, :3]`` is ``quat_to_rotmat(q)``.
    """
    _check("quats", quats, (4,))
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    zero = torch.zeros_like(w)
    return torch.stack([w, -z, y, zero, -x, zero, zero, zero], dim=-1)


def identity_rotors(n: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """``n`` identity rotors [n,8] (scalar 1, all else 0)."""
    rotors = torch.zeros(n, 8, dtype=dtype, device=device)
    rotors[:, 0] = 1.0
    return rotors


def covariance_factor(rotors: Tensor, scales: Tensor) -> Tensor:
    """A = R·diag(scales) [N,4,4], so that the 4D covariance is Σ = A·Aᵀ, from ``rotors [N,8]``, ``scales [N,4]``."""
    _check("scales", scales, (4,))
    if rotors.shape[0] != scales.shape[0]:
        raise ValueError(f"rotors and scales must have the same N, got {rotors.shape[0]} and {scales.shape[0]}")
    return rotor_to_matrix(rotors) * scales[:, None, :]


def covariance_4d(rotors: Tensor, scales: Tensor) -> Tensor:
    """4D covariances Σ = R·diag(scales²)·Rᵀ [N,4,4] from ``rotors [N,8]`` and ``scales [N,4]`` (std devs)."""
    A = covariance_factor(rotors, scales)
    return A @ A.transpose(-1, -2)


def conditional_terms(factor: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Velocities [N,3], conditional covariances [N,3,3] and Σ_tt [N] from covariance factors A [N,4,4].

    With Σ = A·Aᵀ, rows A_xyz [N,3,4] and a_t [N,4]: Σ_xyz,t = A_xyz·a_t, Σ_tt = |a_t|², velocity
    Σ_xyz,t/Σ_tt, and the Schur complement Σ_xyz − Σ_xyz,t Σ_t,xyz/Σ_tt = B·Bᵀ with
    B = A_xyz·(I − a_t a_tᵀ/|a_t|²) (a projector), which keeps it symmetric positive semi-definite in
    floating point. Neither depends on the time the Gaussian is sliced at.
    """
    if factor.dim() != 3 or factor.shape[1:] != (4, 4):
        raise ValueError(f"factor must have shape [N,4,4], got {list(factor.shape)}")
    a_x, a_t = factor[:, :3, :], factor[:, 3, :]
    s_tt = (a_t * a_t).sum(dim=-1)
    velocity = (a_x @ a_t[:, :, None])[..., 0] / s_tt[:, None]
    B = a_x - velocity[:, :, None] * a_t[:, None, :]
    return velocity, B @ B.transpose(-1, -2), s_tt


def slice_4d(means4d: Tensor, rotors: Tensor, scales: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The 3D Gaussians that 4D Gaussians induce at time ``t`` (conditioning on the t coordinate).

    Args:
        means4d: [N,4] centres (x,y,z,t). rotors: [N,8] (normalised here). scales: [N,4] std devs.
        t: the time, a float or 0-dim tensor.

    Returns:
        means [N,3] = μ_xyz + Σ_xyz,t/Σ_tt·(t−μ_t); covars [N,3,3] = Σ_xyz − Σ_xyz,t Σ_t,xyz/Σ_tt;
        weights [N] = exp(−½(t−μ_t)²/Σ_tt), the marginal density in t relative to its peak, which
        multiplies the opacity.
    """
    _check("means4d", means4d, (4,))
    if means4d.shape[0] != rotors.shape[0]:
        raise ValueError(f"means4d and rotors must have the same N, got {means4d.shape[0]} and {rotors.shape[0]}")
    if isinstance(t, Tensor) and t.dim() != 0:
        raise ValueError(f"t must be a float or a 0-dim tensor, got shape {list(t.shape)}")
    velocity, cov3, s_tt = conditional_terms(covariance_factor(rotors, scales))
    dt = t - means4d[:, 3]
    means = means4d[:, :3] + velocity * dt[:, None]
    weights = torch.exp(-0.5 * dt * dt / s_tt)
    return means, cov3, weights
