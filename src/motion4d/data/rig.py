"""Skeletons, their animation clips and linear blend skinning: the rig of a procedural character.

A :class:`Skeleton` is a tree of joints, each at a rest offset from its parent (no rest rotation: the rest
pose is the bind pose, every joint's world rotation the identity). A :class:`Clip` gives each joint a local
rotation per keyframe and the root a translation (added to its rest offset). Joint j's world matrix at a
keyframe is ``M_parent · T(offset_j + translation_j) · R(q_j)`` and its inverse bind matrix ``T(−p_j)`` with
``p_j`` its rest world position, so a vertex v skinned to joints j_i with weights w_i lands at

    v' = Σ_i w_i · M_{j_i} · T(−p_{j_i}) · v

— what a glTF viewer computes for a skin whose joint nodes carry these transforms
(:func:`motion4d.export.gltf.write_rigged_glb` writes them). :func:`pose_vertices` is that formula at the
keyframes, the reference the file's evaluation is checked against.

Arrays: quaternions are glTF's ``[x, y, z, w]``; positions in the character's own coordinates (glTF's Y up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motion4d.data.gltf_anim import quat_xyzw_to_matrix


@dataclass
class Skeleton:
    """A tree of joints in their rest (bind) pose."""

    names: list[str]
    """[J] joint names (unique)."""
    parents: np.ndarray
    """[J] int parent index of each joint, -1 for the root (exactly one); a parent comes before its children."""
    offsets: np.ndarray
    """[J,3] float rest translation of each joint from its parent (the root's: from the origin)."""

    def __post_init__(self) -> None:
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        j = len(self.names)
        if self.parents.shape != (j,) or self.offsets.shape != (j, 3):
            raise ValueError(f"parents [{j}] and offsets [{j},3] expected, got {list(self.parents.shape)}, {list(self.offsets.shape)}")
        if len(set(self.names)) != j or j < 1:
            raise ValueError("joint names must be unique and non-empty")
        if (self.parents < 0).sum() != 1 or self.parents[0] != -1 or any(p >= i for i, p in enumerate(self.parents) if p >= 0):
            raise ValueError("joint 0 must be the only root and every parent must come before its children")

    @property
    def num_joints(self) -> int:
        """J."""
        return len(self.names)

    def index(self, name: str) -> int:
        """The index of the joint called ``name``."""
        return self.names.index(name)

    def rest_positions(self) -> np.ndarray:
        """[J,3] each joint's rest position (world)."""
        p = np.zeros_like(self.offsets)
        for j, parent in enumerate(self.parents):
            p[j] = self.offsets[j] + (p[parent] if parent >= 0 else 0.0)
        return p

    def children(self, j: int) -> list[int]:
        """The joints whose parent is ``j``."""
        return [int(c) for c in np.nonzero(self.parents == j)[0]]


@dataclass
class Clip:
    """One animation of a skeleton: local joint rotations and a root translation at keyframes."""

    name: str
    """The animation's name (e.g. "walk")."""
    times: np.ndarray
    """[K] strictly increasing keyframe times in seconds."""
    rotations: np.ndarray
    """[K,J,4] unit local rotations (xyzw) of every joint."""
    root_translation: np.ndarray
    """[K,3] translation of the root added to its rest offset."""

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64)
        self.rotations = np.asarray(self.rotations, dtype=np.float64)
        self.root_translation = np.asarray(self.root_translation, dtype=np.float64)
        k = self.times.shape[0]
        if self.times.ndim != 1 or k < 2 or not (np.diff(self.times) > 0).all():
            raise ValueError("times must hold at least two strictly increasing keyframe times")
        if self.rotations.ndim != 3 or self.rotations.shape[0] != k or self.rotations.shape[2] != 4 or self.root_translation.shape != (k, 3):
            raise ValueError(f"rotations [{k},J,4] and root_translation [{k},3] expected, got {list(self.rotations.shape)}, {list(self.root_translation.shape)}")
        self.rotations = self.rotations / np.linalg.norm(self.rotations, axis=-1, keepdims=True)
        for f in range(1, k):  # sign-continuous, so that LINEAR (slerp) interpolation takes the short way
            flip = (self.rotations[f] * self.rotations[f - 1]).sum(-1) < 0
            self.rotations[f, flip] *= -1

    @property
    def duration(self) -> float:
        """Seconds from the first keyframe to the last."""
        return float(self.times[-1] - self.times[0])


def axis_angle_quat(axis, angle) -> np.ndarray:
    """[...,4] xyzw quaternions of rotations by ``angle [...]`` radians about the unit ``axis [3]`` (or [...,3])."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = np.asarray(angle, dtype=np.float64)[..., None] / 2
    return np.concatenate([np.sin(half) * axis, np.cos(half)], axis=-1)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[...,4] the xyzw quaternion product ``a · b`` (rotate by b, then by a)."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz], axis=-1)  # fmt: skip


def joint_matrices(skeleton: Skeleton, clip: Clip) -> np.ndarray:
    """[K,J,4,4] every joint's world matrix at each keyframe of ``clip``."""
    k, j = clip.times.shape[0], skeleton.num_joints
    if clip.rotations.shape[1] != j:
        raise ValueError(f"clip {clip.name!r} animates {clip.rotations.shape[1]} joints, the skeleton has {j}")
    local = np.tile(np.eye(4), (k, j, 1, 1))
    local[..., :3, :3] = quat_xyzw_to_matrix(clip.rotations.reshape(-1, 4)).reshape(k, j, 3, 3)
    local[..., :3, 3] = skeleton.offsets[None]
    local[:, 0, :3, 3] += clip.root_translation
    world = np.empty_like(local)
    for i, parent in enumerate(skeleton.parents):
        world[:, i] = local[:, i] if parent < 0 else world[:, parent] @ local[:, i]
    return world


def pose_vertices(vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray, skeleton: Skeleton, clip: Clip) -> np.ndarray:
    """[K,V,3] ``vertices [V,3]`` (rest pose) skinned to ``joints [V,k]`` with ``weights [V,k]`` (rows sum
    to 1) at each keyframe of ``clip`` (see the module docstring)."""
    skin = joint_matrices(skeleton, clip).copy()  # M_j · T(−p_j)
    rest = skeleton.rest_positions()
    skin[..., :3, 3] -= np.einsum("kjab,jb->kja", skin[..., :3, :3], rest)
    v = np.asarray(vertices, dtype=np.float64)
    m = skin[:, np.asarray(joints)]  # [K,V,k,4,4]
    moved = np.einsum("kvnab,vb->kvna", m[..., :3, :3], v) + m[..., :3, 3]  # [K,V,k,3]
    return (np.asarray(weights, dtype=np.float64)[None, ..., None] * moved).sum(2)
