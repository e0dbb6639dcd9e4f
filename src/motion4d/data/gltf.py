"""glTF 2.0 / GLB assets in: meshes with their materials, and animation evaluated to vertex positions.

:func:`load_gltf` parses the file with pygltflib and decodes what an animated triangle mesh needs: every
triangle primitive of every mesh node in the default scene, merged into one :class:`~motion4d.data.mesh.Mesh`
(a :class:`~motion4d.data.mesh.Material` per glTF material, base-colour textures decoded), plus the scene
graph, skins, morph targets and animations. :meth:`GltfAsset.vertices_at` evaluates the mesh's vertex
positions at any time, in scene coordinates, following the specification:

- node animation: translation / rotation / scale channels with STEP, LINEAR (quaternions by slerp) and
  CUBICSPLINE (Hermite with the stored tangents, quaternions renormalised) interpolation, times clamped to
  each sampler's keyframes; **all animations play together** (older exports split one motion into many
  single-channel animations);
- morph targets: POSITION deltas weighted by the node's (animated) weights, else the mesh's default weights;
- skinning: ``Σ_k w_k · world(joint_k) · inverseBind_k · p`` over JOINTS_0 / WEIGHTS_0; the skinned mesh
  node's own transform is ignored, as the specification requires; non-skinned primitives use their node's
  world matrix.

The *rest pose* (``GltfAsset.mesh``) is the scene evaluated with every node at its own, non-animated
transform and morph weights at their defaults: what a viewer shows when no animation plays, which for the
skinned assets here is the bind pose.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygltflib

from motion4d.data.errors import DataError
from motion4d.data.mesh import GREY, Material, Mesh

log = logging.getLogger(__name__)

_COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_NORM_DIV = {np.int8: 127.0, np.uint8: 255.0, np.int16: 32767.0, np.uint16: 65535.0}


# ---- small math ------------------------------------------------------------------------------
def quat_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    """[...,3,3] rotation matrices of glTF quaternions ``q [...,4]`` (x, y, z, w; normalised here)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))  # fmt: skip


def trs_matrix(t: np.ndarray, r: np.ndarray, s: np.ndarray) -> np.ndarray:
    """4×4 matrix T·R·S of a translation [3], an xyzw quaternion [4] and a scale [3]."""
    m = np.eye(4)
    m[:3, :3] = quat_xyzw_to_matrix(r) * np.asarray(s, dtype=np.float64)[None, :]
    m[:3, 3] = t
    return m


def _slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    q0, q1 = q0 / np.linalg.norm(q0), q1 / np.linalg.norm(q1)
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + a * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(min(d, 1.0))
    return (np.sin((1 - a) * theta) * q0 + np.sin(a * theta) * q1) / np.sin(theta)


def sample_channel(times: np.ndarray, values: np.ndarray, interpolation: str, t: float, *, rotation: bool = False) -> np.ndarray:
    """Value of an animation sampler at time ``t`` (clamped to its keyframes).

    Args:
        times: [K] increasing keyframe times (seconds).
        values: [K,C] keyframe values, or [K,3,C] (in-tangent, value, out-tangent) for CUBICSPLINE.
        interpolation: "STEP", "LINEAR" or "CUBICSPLINE".
        rotation: values are xyzw quaternions (LINEAR uses slerp; results are normalised).
    """
    k = len(times)
    cubic = interpolation == "CUBICSPLINE"
    val = (lambda i: values[i, 1]) if cubic else (lambda i: values[i])
    if k == 1 or t <= times[0]:
        out = val(0)
    elif t >= times[-1]:
        out = val(k - 1)
    else:
        i = int(np.searchsorted(times, t, side="right")) - 1
        dt = float(times[i + 1] - times[i])
        a = (t - float(times[i])) / dt if dt > 0 else 0.0
        if interpolation == "STEP":
            out = values[i]
        elif cubic:
            p0, m0 = values[i, 1], values[i, 2] * dt
            p1, m1 = values[i + 1, 1], values[i + 1, 0] * dt
            a2, a3 = a * a, a * a * a
            out = (2 * a3 - 3 * a2 + 1) * p0 + (a3 - 2 * a2 + a) * m0 + (-2 * a3 + 3 * a2) * p1 + (a3 - a2) * m1
        elif rotation:
            out = _slerp(values[i], values[i + 1], a)
        else:
            out = values[i] * (1 - a) + values[i + 1] * a
    out = np.asarray(out, dtype=np.float64)
    return out / max(np.linalg.norm(out), 1e-12) if rotation else out


# ---- the asset --------------------------------------------------------------------------------
@dataclass
class _Primitive:
    node: int
    mesh: int
    first_vertex: int
    positions: np.ndarray  # [n,3] float64, the primitive's own (bind-space) positions
    targets: list[np.ndarray]  # [n,3] POSITION deltas per morph target
    joints: np.ndarray | None  # [n,4] int (indices into the skin's joints)
    weights: np.ndarray | None  # [n,4] float64
    skin: int | None


@dataclass
class _Channel:
    node: int
    path: str  # translation | rotation | scale | weights
    times: np.ndarray
    values: np.ndarray
    interpolation: str


@dataclass
class GltfAsset:
    """A glTF file's triangle meshes (merged, rest pose) and what it takes to animate them."""

    path: Path
    """The file."""
    mesh: Mesh
    """Every triangle primitive of the default scene in the rest pose, scene coordinates."""
    duration: float
    """Seconds: the latest keyframe time over all animations (0 without animation)."""
    num_animations: int
    """Animations in the file (all play together)."""
    bind_positions: np.ndarray = field(repr=False, default=None)
    """[V,3] the primitives' stored POSITION values (bind space for skinned ones), before any transform."""
    _nodes: list = field(repr=False, default_factory=list)
    _parents: np.ndarray = field(repr=False, default=None)
    _order: list = field(repr=False, default_factory=list)
    _prims: list = field(repr=False, default_factory=list)
    _skins: list = field(repr=False, default_factory=list)
    _channels: list = field(repr=False, default_factory=list)
    _mesh_weights: dict = field(repr=False, default_factory=dict)

    def _local(self, time_s: float | None) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
        trs = [list(n) for n in self._nodes]  # [matrix or None, t, r, s, weights]
        for ch in self._channels if time_s is not None else ():
            v = sample_channel(ch.times, ch.values, ch.interpolation, time_s, rotation=ch.path == "rotation")
            slot = {"translation": 1, "rotation": 2, "scale": 3, "weights": 4}[ch.path]
            trs[ch.node][slot] = v
            if slot < 4:
                trs[ch.node][0] = None  # an animated node uses TRS
        mats = [m if m is not None else trs_matrix(t, r, s) for m, t, r, s, _ in trs]
        weights = {i: np.asarray(n[4], dtype=np.float64) for i, n in enumerate(trs) if n[4] is not None}
        return mats, weights

    def _world(self, local: list[np.ndarray]) -> list[np.ndarray]:
        world: list[np.ndarray | None] = [None] * len(local)
        for i in self._order:
            p = self._parents[i]
            world[i] = local[i] if p < 0 else world[p] @ local[i]
        return world

    def node_world_matrices(self, time_s: float | None) -> list[np.ndarray]:
        """4×4 world matrix of every node at ``time_s`` seconds (None: no animation)."""
        return self._world(self._local(time_s)[0])

    def _evaluate(self, time_s: float | None) -> np.ndarray:
        local, weights = self._local(time_s)
        world = self._world(local)
        out = np.empty((self.mesh.num_vertices, 3), dtype=np.float64)
        for pr in self._prims:
            p = pr.positions
            if pr.targets:
                w = weights.get(pr.node, self._mesh_weights.get(pr.mesh))
                if w is not None:
                    p = p + sum(float(wk) * tk for wk, tk in zip(w, pr.targets))
            n = p.shape[0]
            ph = np.concatenate([p, np.ones((n, 1))], axis=1)
            if pr.skin is not None:
                joints, ibm = self._skins[pr.skin]
                skin_m = np.stack([world[j] @ ibm[k] for k, j in enumerate(joints)])  # [J,4,4]
                blended = np.einsum("nk,nkab->nab", pr.weights, skin_m[pr.joints])
                q = np.einsum("nab,nb->na", blended, ph)[:, :3]
            else:
                q = ph @ world[pr.node].T
                q = q[:, :3]
            out[pr.first_vertex : pr.first_vertex + n] = q
        return out

    def vertices_at(self, time_s: float | np.ndarray) -> np.ndarray:
        """Vertex positions of :attr:`mesh` at ``time_s`` seconds: [V,3], or [T,V,3] for an array of T times."""
        ts = np.asarray(time_s, dtype=np.float64)
        if ts.ndim == 0:
            return self._evaluate(float(ts)).astype(np.float32)
        return np.stack([self._evaluate(float(t)) for t in ts.reshape(-1)]).astype(np.float32)


# ---- reading ----------------------------------------------------------------------------------
class _Reader:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.g = pygltflib.GLTF2().load(str(path))
        except Exception as e:  # pygltflib raises many kinds on malformed files
            raise DataError(f"{path}: not a readable glTF/GLB file ({type(e).__name__}: {e})") from None
        if self.g is None:
            raise DataError(f"{path}: not a readable glTF/GLB file")
        self._buffers: dict[int, bytes] = {}

    def fail(self, msg: str) -> DataError:
        return DataError(f"{self.path}: {msg}")

    def _uri_bytes(self, uri: str) -> bytes:
        if uri.startswith("data:"):
            try:
                return base64.b64decode(uri.split(",", 1)[1])
            except (IndexError, ValueError) as e:
                raise self.fail(f"bad data URI ({e})") from None
        root = self.path.parent.resolve()
        target = (root / uri).resolve()
        if root != target and root not in target.parents:
            raise self.fail(f"buffer/image URI {uri!r} points outside the asset's folder")
        try:
            return target.read_bytes()
        except OSError as e:
            raise self.fail(f"cannot read {uri!r} ({e})") from None

    def buffer(self, i: int) -> bytes:
        if i not in self._buffers:
            b = self.g.buffers[i]
            if b.uri is None:
                blob = self.g.binary_blob()
                if blob is None:
                    raise self.fail(f"buffer {i} has no data")
                self._buffers[i] = bytes(blob)
            else:
                self._buffers[i] = self._uri_bytes(b.uri)
        return self._buffers[i]

    def view_bytes(self, i: int) -> tuple[bytes, int, int | None]:
        v = self.g.bufferViews[i]
        data = self.buffer(v.buffer)
        start = v.byteOffset or 0
        if start + v.byteLength > len(data):
            raise self.fail(f"bufferView {i} runs past the end of its buffer")
        return data, start, v.byteStride

    def accessor(self, i: int) -> np.ndarray:
        """[count, width] float64 (normalised integer types scaled) or integer array of accessor ``i``."""
        try:
            a = self.g.accessors[i]
        except (IndexError, TypeError):
            raise self.fail(f"accessor {i} does not exist") from None
        dtype, width = _COMPONENT.get(a.componentType), _WIDTH.get(a.type)
        if dtype is None or width is None:
            raise self.fail(f"accessor {i} has an unknown type ({a.componentType}, {a.type})")
        item = np.dtype(dtype).itemsize
        if a.bufferView is None:
            out = np.zeros((a.count, width), dtype=dtype)
        else:
            data, start, stride = self.view_bytes(a.bufferView)
            start += a.byteOffset or 0
            stride = stride or item * width
            end = start + stride * (a.count - 1) + item * width if a.count else start
            if end > len(data):
                raise self.fail(f"accessor {i} runs past the end of its buffer")
            raw = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
            if stride == item * width:
                out = raw.view(dtype).reshape(a.count, width).copy()
            else:
                rows = np.lib.stride_tricks.as_strided(raw, shape=(a.count, item * width), strides=(stride, 1))
                out = np.ascontiguousarray(rows).view(dtype).reshape(a.count, width)
        if a.sparse is not None and a.sparse.count:
            sp = a.sparse
            idx_dtype = _COMPONENT[sp.indices.componentType]
            d, s, _ = self.view_bytes(sp.indices.bufferView)
            idx = np.frombuffer(d, dtype=idx_dtype, count=sp.count, offset=s + (sp.indices.byteOffset or 0))
            d, s, _ = self.view_bytes(sp.values.bufferView)
            vals = np.frombuffer(d, dtype=dtype, count=sp.count * width, offset=s + (sp.values.byteOffset or 0)).reshape(sp.count, width)
            out = out.copy()
            out[idx.astype(np.int64)] = vals
        if dtype == np.float32:
            return out.astype(np.float64)
        if a.normalized:
            return out.astype(np.float64) / _NORM_DIV[dtype]
        return out

    def image(self, index: int) -> tuple[np.ndarray, bytes, str] | None:
        import imageio.v3 as iio

        img = self.g.images[index]
        try:
            if img.bufferView is not None:
                data, start, _ = self.view_bytes(img.bufferView)
                raw = data[start : start + self.g.bufferViews[img.bufferView].byteLength]
            elif img.uri:
                raw = self._uri_bytes(img.uri)
            else:
                return None
            pixels = np.asarray(iio.imread(raw))
        except DataError as e:
            log.warning("%s; using a grey material", e)
            return None
        except Exception as e:  # undecodable image
            log.warning("%s: image %d cannot be decoded (%s); using a grey material", self.path, index, e)
            return None
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        if pixels.dtype != np.uint8:
            pixels = (pixels.astype(np.float64) / np.iinfo(pixels.dtype).max * 255).round().astype(np.uint8) if pixels.dtype.kind == "u" else pixels.astype(np.uint8)
        return pixels[..., :4], bytes(raw), img.mimeType or ("image/png" if raw[:4] == b"\x89PNG" else "image/jpeg")

    def material(self, index: int | None) -> Material:
        if index is None:
            return Material(GREY, None, "default")
        m = self.g.materials[index]
        pbr = m.pbrMetallicRoughness
        color = tuple(pbr.baseColorFactor) if pbr is not None and pbr.baseColorFactor else (1.0, 1.0, 1.0, 1.0)
        extras: dict = {"gltf": {k: v for k, v in m.to_dict().items() if v not in (None, {}, [])}}
        texture = None
        if pbr is not None and pbr.baseColorTexture is not None:
            tex = self.g.textures[pbr.baseColorTexture.index]
            decoded = self.image(tex.source) if tex.source is not None else None
            if decoded is None:
                log.warning("%s: material %r has no usable base-colour texture; using its colour factor (grey if none)", self.path, m.name)
                if not (pbr.baseColorFactor and list(pbr.baseColorFactor) != [1.0, 1.0, 1.0, 1.0]):
                    color = GREY
            else:
                texture, raw, mime = decoded
                extras.update({"image_bytes": raw, "mime_type": mime})
        return Material(color, texture, m.name or f"material{index}", extras)


def _triangles(mode: int, idx: np.ndarray) -> np.ndarray | None:
    if mode == 4:
        return idx[: len(idx) // 3 * 3].reshape(-1, 3)
    if mode == 5:  # strip
        tris = [(idx[i], idx[i + 1], idx[i + 2]) if i % 2 == 0 else (idx[i + 1], idx[i], idx[i + 2]) for i in range(len(idx) - 2)]
        return np.asarray(tris, dtype=np.int64).reshape(-1, 3)
    if mode == 6:  # fan
        return np.asarray([(idx[0], idx[i], idx[i + 1]) for i in range(1, len(idx) - 1)], dtype=np.int64).reshape(-1, 3)
    return None


def load_gltf(path: str | Path) -> GltfAsset:
    """Read a .glb / .gltf file (see the module docstring); problems raise a one-line DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    r = _Reader(path)
    g = r.g
    try:
        return _build(r, g, path)
    except DataError:
        raise
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{path}: malformed glTF ({type(e).__name__}: {e})") from None


def _build(r: _Reader, g: pygltflib.GLTF2, path: Path) -> GltfAsset:
    n = len(g.nodes)
    parents = np.full(n, -1, dtype=np.int64)
    for i, node in enumerate(g.nodes):
        for c in node.children or []:
            parents[c] = i
    scene = g.scenes[g.scene or 0].nodes if g.scenes else [i for i in range(n) if parents[i] < 0]
    order: list[int] = []
    stack = list(reversed(scene))
    while stack:  # depth-first, parents before children
        i = stack.pop()
        order.append(i)
        stack.extend(reversed(g.nodes[i].children or []))
    nodes = []
    for node in g.nodes:
        matrix = np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T if node.matrix else None
        t = np.asarray(node.translation or (0, 0, 0), dtype=np.float64)
        q = np.asarray(node.rotation or (0, 0, 0, 1), dtype=np.float64)
        s = np.asarray(node.scale or (1, 1, 1), dtype=np.float64)
        nodes.append((matrix, t, q, s, getattr(node, "weights", None)))
    skins = []
    for sk in g.skins:
        ibm = r.accessor(sk.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1) if sk.inverseBindMatrices is not None else np.tile(np.eye(4), (len(sk.joints), 1, 1))
        skins.append((list(sk.joints), ibm))

    materials: list[Material] = []
    mat_slot: dict = {}
    prims, faces, face_mats, uvs, colors = [], [], [], [], []
    count = 0
    any_uv = any_color = False
    for i in order:
        node = g.nodes[i]
        if node.mesh is None:
            continue
        for prim in g.meshes[node.mesh].primitives:
            mode = 4 if prim.mode is None else prim.mode
            if prim.attributes.POSITION is None:
                continue
            pos = r.accessor(prim.attributes.POSITION)[:, :3]
            idx = r.accessor(prim.indices)[:, 0].astype(np.int64) if prim.indices is not None else np.arange(len(pos))
            tri = _triangles(mode, idx)
            if tri is None:
                log.warning("%s: skipping a primitive of mode %d (points/lines)", path, mode)
                continue
            if len(tri) and (tri.max() >= len(pos) or tri.min() < 0):
                raise r.fail("triangle indices out of range")
            used, tri = np.unique(tri, return_inverse=True)  # keep the vertices this primitive uses
            tri = tri.reshape(-1, 3)
            pos = pos[used]
            targets = [r.accessor(t["POSITION"])[used, :3] for t in (prim.targets or []) if t.get("POSITION") is not None]
            skinned = node.skin is not None and prim.attributes.JOINTS_0 is not None and prim.attributes.WEIGHTS_0 is not None
            joints = r.accessor(prim.attributes.JOINTS_0)[used].astype(np.int64) if skinned else None
            weights = r.accessor(prim.attributes.WEIGHTS_0)[used].astype(np.float64) if skinned else None
            if weights is not None:
                weights = weights / np.maximum(weights.sum(1, keepdims=True), 1e-12)
            prims.append(_Primitive(i, node.mesh, count, pos, targets, joints, weights, node.skin if skinned else None))
            if prim.material not in mat_slot:
                mat_slot[prim.material] = len(materials)
                materials.append(r.material(prim.material))
            faces.append(tri + count)
            face_mats.append(np.full(len(tri), mat_slot[prim.material], dtype=np.int64))
            uv = r.accessor(prim.attributes.TEXCOORD_0)[used, :2] if prim.attributes.TEXCOORD_0 is not None else None
            col = r.accessor(prim.attributes.COLOR_0)[used, :3] if prim.attributes.COLOR_0 is not None else None
            any_uv |= uv is not None
            any_color |= col is not None
            uvs.append(uv if uv is not None else np.zeros((len(pos), 2)))
            colors.append(col if col is not None else np.ones((len(pos), 3)))
            count += len(pos)
    if not prims or sum(len(f) for f in faces) == 0:
        raise r.fail("no triangles in the default scene")
    channels, duration = [], 0.0
    for anim in g.animations:
        for ch in anim.channels:
            if ch.target.node is None or ch.target.path not in ("translation", "rotation", "scale", "weights"):
                continue
            s = anim.samplers[ch.sampler]
            times = r.accessor(s.input)[:, 0]
            values = r.accessor(s.output)
            interp = s.interpolation or "LINEAR"
            k = len(times)
            if ch.target.path == "weights":
                values = values.reshape(k * (3 if interp == "CUBICSPLINE" else 1), -1)
            if interp == "CUBICSPLINE":
                values = values.reshape(k, 3, -1)
            elif len(values) != k:
                raise r.fail(f"animation sampler has {k} times but {len(values)} values")
            channels.append(_Channel(ch.target.node, ch.target.path, times, values, interp))
            duration = max(duration, float(times[-1]) if k else 0.0)
    mesh_weights = {i: np.asarray(m.weights, dtype=np.float64) for i, m in enumerate(g.meshes) if getattr(m, "weights", None)}
    bind = np.concatenate([p.positions for p in prims])
    asset = GltfAsset(path, Mesh(bind, np.concatenate(faces), name=path.stem), duration, len(g.animations), bind, nodes, parents, order,
                      prims, skins, channels, mesh_weights)  # fmt: skip
    rest = asset._evaluate(None)
    asset.mesh = Mesh(
        rest, np.concatenate(faces), uvs=np.concatenate(uvs) if any_uv else None, vertex_colors=np.concatenate(colors) if any_color else None,
        materials=materials, face_materials=np.concatenate(face_mats), name=path.stem,
    )  # fmt: skip
    return asset
