"""glTF 2.0 / GLB assets in: meshes with their materials, and animation evaluated to vertex positions.

:func:`load_gltf` parses the file with pygltflib and decodes what an animated triangle mesh needs: every
triangle primitive of every mesh node in the default scene, merged into one :class:`~motion4d.data.mesh.Mesh`
(a :class:`~motion4d.data.mesh.Material` per glTF material used, base-colour textures decoded), plus the
scene graph, skins, morph targets and animations. :meth:`GltfAsset.vertices_at` evaluates the mesh's vertex
positions at any time, in scene coordinates, following the specification:

- node animation: translation / rotation / scale channels with STEP, LINEAR (quaternions by slerp) and
  CUBICSPLINE (Hermite with the stored tangents) interpolation, times clamped to each sampler's keyframes
  (:func:`~motion4d.data.gltf_anim.sample_channel`); **all animations play together** by default (older
  exports split one motion into many single-channel animations) — except those that drive a property an
  earlier animation already drives (alternative clips, as MorphStressTest's three takes on the same
  weights: played together they would fight; Blender plays one, three.js averages them) — or a chosen subset;
- morph targets: POSITION deltas weighted by the node's (animated) weights, else the node's / mesh's default
  weights;
- skinning: ``Σ_k w_k · world(joint_k) · inverseBind_k · p`` over JOINTS_0 / WEIGHTS_0 (weights renormalised
  to sum 1); the skinned mesh node's own transform is ignored, as the specification requires; non-skinned
  primitives use their node's world matrix.

**Rest pose** (``GltfAsset.mesh``): the scene with every node at its own, non-animated transform and morph
weights at their defaults, skins evaluated with those joint matrices. This is what a viewer shows when no
animation plays and what the animation's nodes are authored against; for a skin whose joints' rest
transforms equal its inverse bind matrices it is the bind pose. Evaluating the skin (rather than taking the
raw bind-space positions) keeps skinned and non-skinned primitives in the same scene coordinates even when
the skeleton sits under a transformed node. The raw stored POSITION values are kept in
``GltfAsset.bind_positions``.
"""

from __future__ import annotations

import base64
import json
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pygltflib

from motion4d.errors import DataError, naming
from motion4d.data.gltf_anim import quat_xyzw_to_matrix, sample_channel, trs_matrices
from motion4d.data.mesh import GREY, Material, Mesh

__all__ = ["GltfAsset", "load_gltf", "quat_xyzw_to_matrix", "sample_channel"]

log = logging.getLogger(__name__)

_COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_NORM_DIV = {np.int8: 127.0, np.uint8: 255.0, np.int16: 32767.0, np.uint16: 65535.0}
_SLOT = {"translation": 0, "rotation": 1, "scale": 2}


@dataclass
class _Node:
    matrix: np.ndarray | None  # [4,4] when the node stores a matrix instead of TRS
    trs: tuple[np.ndarray, np.ndarray, np.ndarray]  # translation [3], rotation xyzw [4], scale [3]
    weights: np.ndarray | None  # [W] default morph weights (node's, else its mesh's), or None


@dataclass
class _Primitive:
    node: int
    first_vertex: int
    positions: np.ndarray  # [n,3] float64, the primitive's own (bind-space) positions
    targets: np.ndarray | None  # [W,n,3] POSITION deltas per morph target
    joints: np.ndarray | None  # [n,k] int (indices into the skin's joints)
    weights: np.ndarray | None  # [n,k] float64, rows summing to 1
    skin: int | None


@dataclass
class _Channel:
    animation: int
    node: int
    path: str  # translation | rotation | scale | weights
    times: np.ndarray  # [K]
    values: np.ndarray  # [K,C] or [K,3,C] (CUBICSPLINE)
    interpolation: str


@dataclass
class GltfAsset:
    """A glTF file's triangle meshes (merged, rest pose) and what it takes to animate them."""

    path: Path
    """The file."""
    mesh: Mesh
    """Every triangle primitive of the default scene in the rest pose (module docstring), scene coordinates."""
    duration: float
    """Seconds: the latest keyframe time over the animations that play by default (0 without animation)."""
    num_animations: int
    """Animations in the file (by default all play together, see :attr:`default_animations`)."""
    bind_positions: np.ndarray
    """[V,3] the primitives' stored POSITION values (bind space for skinned ones), before any transform."""
    animation_names: list[str] = field(default_factory=list)
    """Name of each animation (``animation<i>`` where the file has none)."""
    default_animations: list[int] = field(default_factory=list)
    """The animations that play when none are chosen: each in file order unless it drives a (node,
    property) that an earlier one in the list already drives."""
    _nodes: list[_Node] = field(repr=False, default_factory=list)
    _parents: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64))
    _order: list[int] = field(repr=False, default_factory=list)
    _prims: list[_Primitive] = field(repr=False, default_factory=list)
    _skins: list[tuple[np.ndarray, np.ndarray]] = field(repr=False, default_factory=list)
    _channels: list[_Channel] = field(repr=False, default_factory=list)

    def _pose(self, ts: np.ndarray | None, animations: Sequence[int] | None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """World matrices [T,N,4,4] and morph weights {node: [T,W]} at times ``ts [T]`` (None: rest, T=1)."""
        n_t = 1 if ts is None else len(ts)
        playing = self.default_animations if animations is None else animations
        chosen = [] if ts is None else [c for c in self._channels if c.animation in playing]
        animated: dict[int, list[np.ndarray]] = {}
        weights = {i: np.broadcast_to(n.weights, (n_t, len(n.weights))) for i, n in enumerate(self._nodes) if n.weights is not None}
        for c in chosen:
            v = sample_channel(c.times, c.values, c.interpolation, ts, c.path)
            if c.path == "weights":
                weights[c.node] = v
            else:
                trs = animated.setdefault(c.node, [np.broadcast_to(a, (n_t, len(a))) for a in self._nodes[c.node].trs])
                trs[_SLOT[c.path]] = v
        local = np.empty((n_t, len(self._nodes), 4, 4))
        for i, node in enumerate(self._nodes):
            if i in animated:  # an animated node uses TRS (the spec forbids a matrix there)
                local[:, i] = trs_matrices(*animated[i])
            else:
                local[:, i] = node.matrix if node.matrix is not None else trs_matrices(*node.trs)
        world = local.copy()
        for i in self._order:
            p = self._parents[i]
            if p >= 0:
                world[:, i] = world[:, p] @ local[:, i]
        return world, weights

    def node_world_matrices(self, time_s: float | np.ndarray | None = None, animations: Sequence[int] | None = None) -> np.ndarray:
        """World matrix of every node: [N,4,4] for a time in seconds or None (rest pose), [T,N,4,4] for [T] times.

        ``animations``: indices of the animations to play (None: :attr:`default_animations`)."""
        if time_s is None:
            return self._pose(None, None)[0][0]
        ts = np.asarray(time_s, dtype=np.float64)
        world = self._pose(ts.reshape(-1), animations)[0]
        return world[0] if ts.ndim == 0 else world

    def _evaluate(self, ts: np.ndarray | None, animations: Sequence[int] | None) -> np.ndarray:
        world, weights = self._pose(ts, animations)
        n_t = world.shape[0]
        out = np.empty((n_t, self.bind_positions.shape[0], 3))
        for pr in self._prims:
            n = len(pr.positions)
            p = np.broadcast_to(pr.positions, (n_t, n, 3))
            w = weights.get(pr.node)
            if pr.targets is not None and w is not None:
                k = min(w.shape[1], len(pr.targets))
                p = p + np.einsum("tw,wnc->tnc", w[:, :k], pr.targets[:k])
            ph = np.concatenate([p, np.ones((n_t, n, 1))], axis=2)  # [T,n,4]
            sl = slice(pr.first_vertex, pr.first_vertex + n)
            if pr.skin is None:
                out[:, sl] = np.einsum("tab,tnb->tna", world[:, pr.node, :3], ph)
                continue
            joints, ibm = self._skins[pr.skin]
            skin_m = world[:, joints] @ ibm  # [T,J,4,4]
            for f in range(n_t):  # per time, vectorised over vertices and influences
                acc = np.zeros((n, 3))
                for k in range(pr.joints.shape[1]):
                    acc += pr.weights[:, k, None] * np.einsum("nab,nb->na", skin_m[f, pr.joints[:, k], :3], ph[f])
                out[f, sl] = acc
        return out

    def vertices_at(self, time_s: float | np.ndarray, animations: Sequence[int] | None = None) -> np.ndarray:
        """Scene-coordinate positions of :attr:`mesh`'s vertices at ``time_s`` seconds (float32).

        Args:
            time_s: a time, or [T] times; each is clamped per sampler to its keyframes.
            animations: indices of the animations to play (None: :attr:`default_animations`, all that do not conflict).

        Returns:
            [V,3] for a scalar time, [T,V,3] for an array.
        """
        ts = np.asarray(time_s, dtype=np.float64)
        if not np.isfinite(ts).all():
            raise ValueError("time_s must be finite")
        out = self._evaluate(ts.reshape(-1), animations).astype(np.float32)
        return out[0] if ts.ndim == 0 else out


# ---- reading ----------------------------------------------------------------------------------
class _Reader:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.g = pygltflib.GLTF2().load(str(path))
        except Exception as e:  # noqa: BLE001 - pygltflib raises many kinds on malformed files
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
        target = (root / unquote(uri)).resolve()
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
            if not np.isfinite(out).all():
                raise self.fail(f"accessor {i} holds NaN or infinite values")
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
        except Exception as e:  # noqa: BLE001 - imageio raises many kinds on undecodable images
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


def _node_weights(path: Path) -> dict[int, list[float]]:
    """``{node: weights}`` from the file's JSON: pygltflib drops ``node.weights`` (per-node morph defaults)."""
    try:
        data = path.read_bytes()
        if data[:4] == b"glTF":
            length = struct.unpack_from("<I", data, 12)[0]
            data = data[20 : 20 + length]
        nodes = json.loads(data).get("nodes", [])
        return {i: n["weights"] for i, n in enumerate(nodes) if isinstance(n, dict) and n.get("weights")}
    except (OSError, ValueError, struct.error, AttributeError):
        return {}


def _triangles(mode: int, idx: np.ndarray) -> np.ndarray | None:
    """[F,3] triangles of a primitive's index list ``idx [n]`` for mode 4 / 5 (strip) / 6 (fan); None otherwise."""
    if mode == 4:
        return idx[: len(idx) // 3 * 3].reshape(-1, 3)
    if mode not in (5, 6):
        return None
    i = np.arange(max(len(idx) - 2, 0))
    if mode == 5:  # strip: every other triangle flipped to keep the winding
        odd = i % 2 == 1
        tri = np.stack([np.where(odd, idx[i + 1], idx[i]), np.where(odd, idx[i], idx[i + 1]), idx[i + 2]], axis=1)
    else:  # fan around the first index
        tri = np.stack([np.full(len(i), idx[0] if len(idx) else 0), idx[i + 1], idx[i + 2]], axis=1)
    keep = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])  # restarts / degenerate
    return tri[keep]


def load_gltf(path: str | Path) -> GltfAsset:
    """Read a .glb / .gltf file (see the module docstring); problems raise a one-line DataError naming it.

    External buffers and images are read relative to the file and must stay inside its folder; ``data:``
    URIs are decoded. A missing or undecodable base-colour image gives a grey material (or the material's
    colour factor) and a warning; points / lines primitives are skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    r = _Reader(path)
    try:
        return _build(r, r.g, path)
    except DataError as e:
        raise naming(path, e) from None
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{path}: malformed glTF ({type(e).__name__}: {e})") from None


def _compatible_animations(channels: list[_Channel], n_animations: int) -> list[int]:
    """Animations in file order, each kept unless it drives a (node, path) an earlier kept one drives."""
    claimed: set[tuple[int, str]] = set()
    kept = []
    for a in range(n_animations):
        targets = {(c.node, c.path) for c in channels if c.animation == a}
        if targets and not targets & claimed:
            kept.append(a)
            claimed |= targets
    return kept


def _scene_graph(g: pygltflib.GLTF2) -> tuple[np.ndarray, list[int], set[int]]:
    """Parents [N] (-1: root), every node parents-first, and the default scene's nodes."""
    n = len(g.nodes)
    parents = np.full(n, -1, dtype=np.int64)
    for i, node in enumerate(g.nodes):
        for c in node.children or []:
            parents[c] = i

    def walk(roots: list[int]) -> list[int]:
        out, stack = [], list(reversed(roots))
        while stack:
            i = stack.pop()
            out.append(i)
            stack.extend(reversed(g.nodes[i].children or []))
        return out

    in_scene = set(walk(list(g.scenes[g.scene or 0].nodes or []) if g.scenes else [i for i in range(n) if parents[i] < 0]))
    order = walk([i for i in range(n) if parents[i] < 0])
    if len(order) != n:
        raise DataError("the node hierarchy has a cycle or a node with two parents")
    return parents, order, in_scene


def _build(r: _Reader, g: pygltflib.GLTF2, path: Path) -> GltfAsset:
    try:
        parents, order, in_scene = _scene_graph(g)
    except DataError as e:
        raise r.fail(str(e)) from None
    nodes, node_weights = [], _node_weights(path)
    for i, node in enumerate(g.nodes):
        matrix = np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T if node.matrix else None
        trs = (np.asarray(node.translation or (0, 0, 0), dtype=np.float64), np.asarray(node.rotation or (0, 0, 0, 1), dtype=np.float64),
               np.asarray(node.scale or (1, 1, 1), dtype=np.float64))  # fmt: skip
        w = node_weights.get(i) or (getattr(g.meshes[node.mesh], "weights", None) if node.mesh is not None else None)
        nodes.append(_Node(matrix, trs, np.asarray(w, dtype=np.float64) if w else None))
    skins = []
    for sk in g.skins:
        joints = np.asarray(sk.joints, dtype=np.int64)
        ibm = r.accessor(sk.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1) if sk.inverseBindMatrices is not None else np.tile(np.eye(4), (len(joints), 1, 1))
        if len(ibm) != len(joints):
            raise r.fail(f"skin has {len(joints)} joints but {len(ibm)} inverse bind matrices")
        skins.append((joints, ibm))

    materials: list[Material] = []
    mat_slot: dict = {}
    prims, faces, face_mats, uvs, colors = [], [], [], [], []
    count = 0
    any_uv = any_color = False
    for i in order:
        node = g.nodes[i]
        if node.mesh is None or i not in in_scene:
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
            if len(tri) == 0:
                continue
            if tri.max() >= len(pos) or tri.min() < 0:
                raise r.fail("triangle indices out of range")
            used, tri = np.unique(tri, return_inverse=True)  # keep the vertices this primitive uses
            tri = tri.reshape(-1, 3)
            pos = pos[used]
            deltas = [r.accessor(t["POSITION"])[used, :3] for t in (prim.targets or []) if t.get("POSITION") is not None]
            skinned = node.skin is not None and prim.attributes.JOINTS_0 is not None and prim.attributes.WEIGHTS_0 is not None
            joints = weights = None
            if skinned:
                joints = r.accessor(prim.attributes.JOINTS_0)[used].astype(np.int64)
                weights = r.accessor(prim.attributes.WEIGHTS_0)[used].astype(np.float64)
                if joints.max(initial=0) >= len(skins[node.skin][0]):
                    raise r.fail(f"JOINTS_0 indexes beyond the {len(skins[node.skin][0])} joints of skin {node.skin}")
                weights = weights / np.maximum(weights.sum(1, keepdims=True), 1e-12)
            prims.append(_Primitive(i, count, pos, np.stack(deltas) if deltas else None, joints, weights, node.skin if skinned else None))
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
    if not prims:
        raise r.fail("no triangles in the default scene")
    channels, duration = [], 0.0
    for a, anim in enumerate(g.animations):
        for ch in anim.channels:
            s = anim.samplers[ch.sampler]
            times = r.accessor(s.input)[:, 0]
            if len(times):
                duration = max(duration, float(times.max()))
            if ch.target.node is None or ch.target.path not in ("translation", "rotation", "scale", "weights") or not len(times):
                continue
            values = r.accessor(s.output)
            interp = s.interpolation or "LINEAR"
            k = len(times)
            values = values.reshape(k, 3, -1) if interp == "CUBICSPLINE" else values.reshape(k, -1)
            if np.any(np.diff(times) < 0):
                raise r.fail(f"animation {a}: keyframe times decrease")
            channels.append(_Channel(a, ch.target.node, ch.target.path, times, values, interp))
    bind = np.concatenate([p.positions for p in prims])
    names = [anim.name or f"animation{a}" for a, anim in enumerate(g.animations)]
    playing = _compatible_animations(channels, len(g.animations))
    if len(playing) < len({c.animation for c in channels}):
        log.info("%s: animations %s drive what earlier ones drive; by default only %s play", path.name,
                 [names[a] for a in sorted({c.animation for c in channels} - set(playing))], [names[a] for a in playing])  # fmt: skip
    duration = max([float(c.times.max()) for c in channels if c.animation in playing], default=0.0) if channels else duration
    asset = GltfAsset(path, Mesh(bind, np.concatenate(faces), name=path.stem), duration, len(g.animations), bind, names, playing, nodes, parents,
                      order, prims, skins, channels)  # fmt: skip
    rest = asset._evaluate(None, None)[0]
    asset.mesh = Mesh(
        rest, np.concatenate(faces), uvs=np.concatenate(uvs) if any_uv else None, vertex_colors=np.concatenate(colors) if any_color else None,
        materials=materials, face_materials=np.concatenate(face_mats), name=path.stem,
    )  # fmt: skip
    return asset
