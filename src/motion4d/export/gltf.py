"""glTF 2.0 binary (GLB) out: a static mesh with its materials, or a mesh skinned to a deformation graph
and animated by it.

Skinned export (:func:`write_skinned_glb`): the graph's J nodes become joints, children of one root node
whose matrix maps the fit's world back into the asset's coordinates (the inverse of ``asset_to_world``), so
the file keeps the asset's own coordinates. Joint j rests at translation ``g_j`` (its node position, world)
with no rotation; at keyframe f it has translation ``g_j + d_fj`` and rotation ``R_fj``. Its inverse bind
matrix is ``T(−g_j) · asset_to_world``, so a vertex v (asset coordinates) skinned to it lands at
``world→asset(R_fj (A v − g_j) + g_j + d_fj)`` — the deformation graph's linear blend skinning, exactly.
Keyframes use LINEAR interpolation (quaternions made sign-continuous, so slerp takes the short way).

Optional morph targets (``morph_offsets [T,V,3]``, the fit's per-keyframe vertex offsets in asset
coordinates): the offsets' truncated SVD, ``offsets[f] ≈ Σ_k W[f,k] · B_k``, with the fewest targets B_k
that keep every vertex within ``morph_tolerance`` of its offset (a morph asset's motion is often a few
shapes blended: AnimatedMorphSphere's is two), and the weights W animated LINEAR over the keyframes, so
between keyframes the offsets blend exactly as the fit interpolated them. glTF morphs the bind-space positions
before skinning them — the order the fit applies offsets and graph in — so the file plays what was
fitted. NORMAL targets carry the change of the area-weighted vertex normals, for shading.

All primitives (one per material) share one set of vertex attributes; every accessor is tightly packed and
4-byte aligned; POSITION and the animation input carry min/max as the specification requires.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pygltflib
import torch

from motion4d.atomic import atomic_path
from motion4d.data.mesh import Mesh
from motion4d.gaussians.rotations import rotmat_to_quat

log = logging.getLogger(__name__)

_FLOAT, _UBYTE, _USHORT, _UINT = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_CARRIED = ("doubleSided", "alphaMode", "alphaCutoff")


class _Builder:
    """Accumulates one binary buffer, its views and accessors, and the glTF JSON around them."""

    def __init__(self):
        self.g = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0", generator="motion4d"))
        self.blob = bytearray()

    def view(self, data: bytes, target: int | None = None) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        self.g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target))
        self.blob.extend(data)
        return len(self.g.bufferViews) - 1

    def accessor(self, array: np.ndarray, component: int, *, target: int | None = None, minmax: bool = False, normalized: bool = False) -> int:
        dtype = {_FLOAT: np.float32, _UBYTE: np.uint8, _USHORT: np.uint16, _UINT: np.uint32}[component]
        a = np.ascontiguousarray(array, dtype=dtype)
        width = 1 if a.ndim == 1 else int(np.prod(a.shape[1:]))
        flat = a.reshape(a.shape[0], width)
        acc = pygltflib.Accessor(bufferView=self.view(flat.tobytes(), target), componentType=component, count=a.shape[0],
                                 type=_TYPES[width], normalized=normalized or None)  # fmt: skip
        if minmax:
            acc.min = flat.min(axis=0).astype(float).tolist()
            acc.max = flat.max(axis=0).astype(float).tolist()
        self.g.accessors.append(acc)
        return len(self.g.accessors) - 1

    def finish(self, path: Path) -> Path:
        while len(self.blob) % 4:
            self.blob.append(0)
        self.g.buffers.append(pygltflib.Buffer(byteLength=len(self.blob)))
        self.g.set_binary_blob(bytes(self.blob))
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            self.g.save_binary(str(tmp))
        return path


def _image_bytes(material) -> tuple[bytes, str]:
    raw, mime = material.extras.get("image_bytes"), material.extras.get("mime_type")
    if raw and mime in ("image/png", "image/jpeg"):
        return bytes(raw), mime
    import imageio.v3 as iio

    buf = io.BytesIO()
    iio.imwrite(buf, material.texture, extension=".png")
    return buf.getvalue(), "image/png"


def _add_materials(b: _Builder, mesh: Mesh) -> None:
    for m in mesh.materials:
        src = m.extras.get("gltf", {}) if isinstance(m.extras.get("gltf"), dict) else {}
        src_pbr = src.get("pbrMetallicRoughness") or {}
        pbr = pygltflib.PbrMetallicRoughness(
            baseColorFactor=[float(c) for c in m.base_color],
            metallicFactor=float(src_pbr.get("metallicFactor", 0.0 if not src_pbr else 1.0)),
            roughnessFactor=float(src_pbr.get("roughnessFactor", 1.0)),
        )
        if m.texture is not None and mesh.uvs is not None:
            data, mime = _image_bytes(m)
            b.g.images.append(pygltflib.Image(bufferView=b.view(data), mimeType=mime))
            if not b.g.samplers:
                b.g.samplers.append(pygltflib.Sampler(magFilter=9729, minFilter=9987, wrapS=10497, wrapT=10497))
            b.g.textures.append(pygltflib.Texture(sampler=0, source=len(b.g.images) - 1))
            pbr.baseColorTexture = pygltflib.TextureInfo(index=len(b.g.textures) - 1)
        mat = pygltflib.Material(name=m.name, pbrMetallicRoughness=pbr)
        for key in _CARRIED:
            if key in src:
                setattr(mat, key, src[key])
        b.g.materials.append(mat)


def _add_mesh(b: _Builder, mesh: Mesh, skin: tuple[np.ndarray, np.ndarray] | None, morph: np.ndarray | None = None) -> int:
    """One glTF mesh with a primitive per used material sharing the vertex attributes (and the morph
    targets ``morph [W,V,3]`` of POSITION deltas, if given); returns its index."""
    attrs = pygltflib.Attributes(
        POSITION=b.accessor(mesh.vertices, _FLOAT, target=_ARRAY_BUFFER, minmax=True),
        NORMAL=b.accessor(mesh.normals if mesh.normals is not None else mesh.vertex_normals(), _FLOAT, target=_ARRAY_BUFFER),
    )
    if mesh.uvs is not None:
        attrs.TEXCOORD_0 = b.accessor(mesh.uvs, _FLOAT, target=_ARRAY_BUFFER)
    if mesh.vertex_colors is not None:
        attrs.COLOR_0 = b.accessor(mesh.vertex_colors, _FLOAT, target=_ARRAY_BUFFER)
    if skin is not None:
        joints, weights = skin
        attrs.JOINTS_0 = b.accessor(joints, _UBYTE if joints.max() < 256 else _USHORT, target=_ARRAY_BUFFER)
        attrs.WEIGHTS_0 = b.accessor(weights, _FLOAT, target=_ARRAY_BUFFER)
    targets = []
    if morph is not None:
        base_n = mesh.vertex_normals()
        for delta in morph:
            dn = mesh.vertex_normals(mesh.vertices + delta) - base_n
            targets.append(pygltflib.Attributes(POSITION=b.accessor(delta, _FLOAT, target=_ARRAY_BUFFER, minmax=True),
                                                NORMAL=b.accessor(dn, _FLOAT, target=_ARRAY_BUFFER)))  # fmt: skip
    _add_materials(b, mesh)
    index_type = _USHORT if mesh.num_vertices < 65536 else _UINT
    prims = []
    for mi in range(len(mesh.materials)):
        faces = mesh.faces[mesh.face_materials == mi]
        if len(faces):
            idx = b.accessor(faces.reshape(-1), index_type, target=_ELEMENT_ARRAY_BUFFER)
            prims.append(pygltflib.Primitive(attributes=attrs, indices=idx, material=mi, mode=4, targets=targets or None))
    weights = [0.0] * len(targets) if targets else None
    b.g.meshes.append(pygltflib.Mesh(name=mesh.name, primitives=prims, weights=weights))
    return len(b.g.meshes) - 1


def write_static_glb(path: str | Path, mesh: Mesh) -> Path:
    """Write ``mesh`` (materials and textures kept) as a GLB file, atomically."""
    b = _Builder()
    m = _add_mesh(b, mesh, None)
    b.g.nodes.append(pygltflib.Node(name=mesh.name, mesh=m))
    b.g.scenes.append(pygltflib.Scene(nodes=[0]))
    b.g.scene = 0
    return b.finish(Path(path))


def morph_basis(offsets: np.ndarray, tolerance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The fewest morph targets for per-keyframe ``offsets [T,V,3]``: ``(targets [K,V,3], weights [T,K])``
    with ``weights @ targets`` within ``tolerance`` of ``offsets`` at every vertex (truncated SVD); the
    identity (one target per keyframe, exact) when no K < T is close enough."""
    t, v = offsets.shape[0], offsets.shape[1]
    flat = offsets.reshape(t, -1)
    u, sing, vt = np.linalg.svd(flat, full_matrices=False)
    for k in range(1, t):
        approx = (u[:, :k] * sing[:k]) @ vt[:k]
        if np.linalg.norm((approx - flat).reshape(t, v, 3), axis=-1).max() <= tolerance:
            return vt[:k].reshape(k, v, 3), u[:, :k] * sing[:k]
    return offsets.copy(), np.eye(t)


def _check_skin_args(mesh: Mesh, nodes, rotations, translations, joints, weights, times_s, a2w):
    nodes = np.asarray(nodes, dtype=np.float64)
    R = np.asarray(rotations, dtype=np.float64)
    d = np.asarray(translations, dtype=np.float64)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    j, t, v = nodes.shape[0] if nodes.ndim == 2 else -1, times.shape[0], mesh.num_vertices
    if nodes.ndim != 2 or nodes.shape[1] != 3 or j < 1:
        raise ValueError(f"node_positions must have shape [J,3], got {list(nodes.shape)}")
    if R.shape != (t, j, 3, 3):
        raise ValueError(f"rotations must have shape [{t},{j},3,3], got {list(R.shape)}")
    if d.shape != (t, j, 3):
        raise ValueError(f"translations must have shape [{t},{j},3], got {list(d.shape)}")
    if t < 1 or (t > 1 and not (np.diff(times) > 0).all()):
        raise ValueError("times_s must be non-empty and strictly increasing")
    if a2w.shape != (4, 4) or abs(np.linalg.det(a2w[:3, :3])) < 1e-12:
        raise ValueError("asset_to_world must be an invertible 4x4 matrix")
    # project slightly-off rotations onto SO(3)
    u, _, vt = np.linalg.svd(R)
    fix = np.linalg.det(u @ vt) < 0
    u[fix, :, -1] *= -1
    R = u @ vt
    return (nodes, R, d, *_skin_arrays(joints, weights, v, j), times)


def _skin_arrays(joints, weights, v: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """``joints [V,k]``, ``weights [V,k]`` (k ≤ 4) checked against V vertices and J joints, padded to 4
    slots (unused slots at joint 0, as the specification wants) and normalised."""
    joints = np.asarray(joints)
    weights = np.asarray(weights, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[0] != v or joints.shape[1] > 4 or weights.shape != joints.shape:
        raise ValueError(f"joints and weights must have shape [{v},k] with k <= 4, got {list(joints.shape)}, {list(weights.shape)}")
    if joints.min() < 0 or joints.max() >= j or j > 65535:
        raise ValueError(f"joints must index the {j} nodes (at most 65535)")
    if (weights < 0).any() or (weights.sum(1) <= 1e-12).any():
        raise ValueError("weights must be >= 0 with every row summing to more than 0")
    pad = 4 - joints.shape[1]
    joints = np.concatenate([joints, np.zeros((v, pad), dtype=joints.dtype)], 1).astype(np.int64)
    weights = np.concatenate([weights, np.zeros((v, pad))], 1)
    joints[weights == 0] = 0  # the Khronos validator warns otherwise
    return joints, weights / weights.sum(1, keepdims=True)


def write_skinned_glb(
    path: str | Path,
    mesh: Mesh,
    node_positions: np.ndarray,
    rotations: np.ndarray,
    translations: np.ndarray,
    joints: np.ndarray,
    weights: np.ndarray,
    times_s: np.ndarray,
    *,
    asset_to_world: np.ndarray | None = None,
    morph_offsets: np.ndarray | None = None,
    morph_tolerance: float = 0.0,
    name: str = "motion4d",
) -> Path:
    """Write ``mesh`` skinned to a deformation graph and animated by its keyframes (see the module docstring).

    Args:
        path: the .glb file (written atomically).
        mesh: the mesh in the asset's own coordinates, with its materials.
        node_positions: [J,3] graph node rest positions (world).
        rotations: [T,J,3,3] and translations: [T,J,3] keyframe transforms (world).
        joints: [V,k] node indices and weights: [V,k] skin weights per vertex (k ≤ 4, rows normalised here).
        times_s: [T] keyframe times in seconds, strictly increasing.
        asset_to_world: [4,4] similarity from the asset's coordinates to the world (None: identity).
        morph_offsets: [T,V,3] per-keyframe vertex offsets in the asset's coordinates, applied before
            skinning, written as morph targets (None: none).
        morph_tolerance: largest error allowed per vertex when the offsets are written as fewer targets
            than keyframes (0: exact, T targets at most).
        name: name of the animation and the root node.
    """
    a2w = np.eye(4) if asset_to_world is None else np.asarray(asset_to_world, dtype=np.float64)
    nodes, R, d, joints, weights, times = _check_skin_args(mesh, node_positions, rotations, translations, joints, weights, times_s, a2w)
    n_joints = nodes.shape[0]
    if morph_offsets is not None:
        morph_offsets = np.asarray(morph_offsets, dtype=np.float64)
        if morph_offsets.shape != (times.shape[0], mesh.num_vertices, 3) or not np.isfinite(morph_offsets).all():
            raise ValueError(f"morph_offsets must be finite with shape [{times.shape[0]},{mesh.num_vertices},3], got {list(morph_offsets.shape)}")
    morph = None if morph_offsets is None else morph_basis(morph_offsets, morph_tolerance)
    b = _Builder()
    m = _add_mesh(b, mesh, (joints, weights), None if morph is None else morph[0])
    # node 0: the skinned mesh; node 1: the root (world → asset); nodes 2..: the joints
    b.g.nodes.append(pygltflib.Node(name=mesh.name, mesh=m, skin=0))
    w2a = np.linalg.inv(a2w)
    b.g.nodes.append(pygltflib.Node(name=name, matrix=w2a.T.reshape(-1).tolist(), children=list(range(2, 2 + n_joints))))
    for j in range(n_joints):
        b.g.nodes.append(pygltflib.Node(name=f"node{j}", translation=nodes[j].tolist(), rotation=[0.0, 0.0, 0.0, 1.0]))
    ibm = np.tile(np.eye(4), (n_joints, 1, 1))
    ibm[:, :3, 3] = -nodes
    ibm = ibm @ a2w  # T(−g_j) · A
    ibm_acc = b.accessor(ibm.transpose(0, 2, 1).reshape(n_joints, 16), _FLOAT)
    b.g.skins.append(pygltflib.Skin(joints=list(range(2, 2 + n_joints)), inverseBindMatrices=ibm_acc, skeleton=1))
    b.g.scenes.append(pygltflib.Scene(nodes=[0, 1]))
    b.g.scene = 0

    quats = rotmat_to_quat(torch.from_numpy(R)).numpy()[..., [1, 2, 3, 0]]  # [T,J,4], glTF's order: x, y, z, w
    for f in range(1, quats.shape[0]):  # sign-continuous keyframes
        flip = (quats[f] * quats[f - 1]).sum(-1) < 0
        quats[f, flip] *= -1
    t_acc = b.accessor(times, _FLOAT, minmax=True)
    samplers, channels = [], []
    for j in range(n_joints):
        for path_name, values in (("translation", nodes[j] + d[:, j]), ("rotation", quats[:, j])):
            samplers.append(pygltflib.AnimationSampler(input=t_acc, output=b.accessor(values, _FLOAT), interpolation="LINEAR"))
            channels.append(pygltflib.AnimationChannel(sampler=len(samplers) - 1, target=pygltflib.AnimationChannelTarget(node=2 + j, path=path_name)))
    if morph is not None:  # one row of target weights per keyframe
        samplers.append(pygltflib.AnimationSampler(input=t_acc, output=b.accessor(morph[1].reshape(-1), _FLOAT), interpolation="LINEAR"))
        channels.append(pygltflib.AnimationChannel(sampler=len(samplers) - 1, target=pygltflib.AnimationChannelTarget(node=0, path="weights")))
    b.g.animations.append(pygltflib.Animation(name=name, samplers=samplers, channels=channels))
    b.g.extras = {"motion4d": json.dumps({"keyframes": int(times.shape[0]), "joints": n_joints, "morph_targets": 0 if morph is None else int(morph[0].shape[0])})}
    return b.finish(Path(path))


def write_rigged_glb(
    path: str | Path,
    mesh: Mesh,
    parents: np.ndarray,
    offsets: np.ndarray,
    joints: np.ndarray,
    weights: np.ndarray,
    times_s: np.ndarray,
    rotations: np.ndarray,
    root_translation: np.ndarray,
    *,
    joint_names: list[str] | None = None,
    name: str = "animation",
) -> Path:
    """Write ``mesh`` skinned to a joint hierarchy with one animation (a rigged character, e.g.
    :mod:`motion4d.data.characters`'), atomically.

    Joint j is a node at translation ``offsets[j]`` from its parent (no rest rotation: the rest pose is the
    bind pose, inverse bind matrix ``T(−p_j)`` with ``p_j`` its rest world position); the animation keys every
    joint's rotation and the root's translation (``offsets[0] + root_translation``), LINEAR.

    Args:
        mesh: the mesh in its rest (bind) pose.
        parents: [J] parent index per joint, -1 for the root (joint 0); parents before children.
        offsets: [J,3] rest translation of each joint from its parent.
        joints: [V,k] and weights: [V,k] the skin (k ≤ 4; rows normalised here).
        times_s: [K] strictly increasing keyframe times in seconds.
        rotations: [K,J,4] local joint rotations (xyzw) per keyframe.
        root_translation: [K,3] the root's translation per keyframe, added to ``offsets[0]``.
        joint_names: [J] node names (default joint0, joint1, …).
        name: the animation's name.
    """
    parents = np.asarray(parents, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.float64)
    n_joints = parents.shape[0]
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    rotations = np.asarray(rotations, dtype=np.float64)
    root_translation = np.asarray(root_translation, dtype=np.float64)
    if offsets.shape != (n_joints, 3) or parents[0] != -1 or any(p >= j or (p < 0 and j > 0) for j, p in enumerate(parents)):
        raise ValueError("parents [J] (joint 0 the only root, parents first) and offsets [J,3] expected")
    if rotations.shape != (times.shape[0], n_joints, 4) or root_translation.shape != (times.shape[0], 3):
        raise ValueError(f"rotations [{times.shape[0]},{n_joints},4] and root_translation [{times.shape[0]},3] expected")
    if times.shape[0] < 1 or (times.shape[0] > 1 and not (np.diff(times) > 0).all()):
        raise ValueError("times_s must be non-empty and strictly increasing")
    joints, weights = _skin_arrays(joints, weights, mesh.num_vertices, n_joints)
    rest = np.zeros((n_joints, 3))
    for j, p in enumerate(parents):
        rest[j] = offsets[j] + (rest[p] if p >= 0 else 0.0)
    names = joint_names if joint_names is not None else [f"joint{j}" for j in range(n_joints)]
    b = _Builder()
    m = _add_mesh(b, mesh, (joints, weights))
    # node 0: the skinned mesh; nodes 1..J: the joints (node 1 the root)
    b.g.nodes.append(pygltflib.Node(name=mesh.name, mesh=m, skin=0))
    for j in range(n_joints):
        kids = [1 + int(c) for c in np.nonzero(parents == j)[0]]
        b.g.nodes.append(pygltflib.Node(name=names[j], translation=offsets[j].tolist(), rotation=[0.0, 0.0, 0.0, 1.0], children=kids or None))
    ibm = np.tile(np.eye(4), (n_joints, 1, 1))
    ibm[:, :3, 3] = -rest
    ibm_acc = b.accessor(ibm.transpose(0, 2, 1).reshape(n_joints, 16), _FLOAT)
    b.g.skins.append(pygltflib.Skin(joints=list(range(1, 1 + n_joints)), inverseBindMatrices=ibm_acc, skeleton=1))
    b.g.scenes.append(pygltflib.Scene(nodes=[0, 1]))
    b.g.scene = 0
    quats = rotations / np.linalg.norm(rotations, axis=-1, keepdims=True)
    for f in range(1, quats.shape[0]):  # sign-continuous keyframes
        quats[f, (quats[f] * quats[f - 1]).sum(-1) < 0] *= -1
    t_acc = b.accessor(times, _FLOAT, minmax=True)
    samplers, channels = [], []
    tracks = [(1 + j, "rotation", quats[:, j]) for j in range(n_joints)] + [(1, "translation", offsets[0] + root_translation)]
    for node, path_name, values in tracks:
        samplers.append(pygltflib.AnimationSampler(input=t_acc, output=b.accessor(values, _FLOAT), interpolation="LINEAR"))
        channels.append(pygltflib.AnimationChannel(sampler=len(samplers) - 1, target=pygltflib.AnimationChannelTarget(node=node, path=path_name)))
    b.g.animations.append(pygltflib.Animation(name=name, samplers=samplers, channels=channels))
    return b.finish(Path(path))
