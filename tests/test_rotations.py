"""Quaternion ↔ matrix conversions: round trips, half-turns, orthonormality."""

import math

import pytest
import torch

from motion4d.gaussians.rotations import quat_to_rotmat, rotmat_to_quat


def test_round_trip_random_quaternions():
    q = torch.nn.functional.normalize(torch.randn(2000, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), dim=-1)
    q = torch.where(q[:, :1] < 0, -q, q)
    assert torch.allclose(rotmat_to_quat(quat_to_rotmat(q)), q, atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_half_turns_and_identity(axis):
    c, s = math.cos(math.pi), math.sin(math.pi)
    R = torch.eye(3, dtype=torch.float64)
    i, j = [k for k in range(3) if k != axis]
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    assert torch.allclose(quat_to_rotmat(rotmat_to_quat(R)), R, atol=1e-12)
    assert torch.allclose(rotmat_to_quat(torch.eye(3)), torch.tensor([1.0, 0, 0, 0]))


def test_matrices_orthonormal_and_batched_shapes():
    q = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
    R = quat_to_rotmat(q)
    assert R.shape == (3, 5, 3, 3)
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand(3, 5, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(3, 5), atol=1e-5)
    assert rotmat_to_quat(R).shape == (3, 5, 4)
    with pytest.raises(ValueError, match="R must have shape"):
        rotmat_to_quat(torch.eye(4))
