"""A tiny glTF writer for tests: accessors in one buffer, saved as .glb or as .gltf + .bin (pygltflib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib


class GltfBuilder:
    """Collects buffer data, accessors, meshes, nodes and animations; :meth:`save` writes the file."""

    def __init__(self) -> None:
        self.g = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0"))
        self.blob = bytearray()

    def view(self, data: bytes) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        self.g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data)))
        self.blob.extend(data)
        return len(self.g.bufferViews) - 1

    def accessor(self, array, type_: str, component: int = 5126) -> int:
        """Accessor of ``array`` ([count] or [count,width]); component 5126 float32, 5123 uint16, 5121 uint8."""
        dtype = {5126: np.float32, 5123: np.uint16, 5121: np.uint8, 5125: np.uint32}[component]
        a = np.ascontiguousarray(array, dtype=dtype)
        count = a.shape[0]
        acc = pygltflib.Accessor(bufferView=self.view(a.tobytes()), componentType=component, count=count, type=type_)
        if type_ in ("VEC3", "SCALAR") and component == 5126:
            flat = a.reshape(count, -1)
            acc.min, acc.max = flat.min(0).tolist(), flat.max(0).tolist()
        self.g.accessors.append(acc)
        return len(self.g.accessors) - 1

    def mesh(self, positions, indices=None, mode: int = 4, **extra) -> int:
        """A one-primitive mesh; ``extra`` may hold attributes (TEXCOORD_0=..., accessor ids), targets, material, weights."""
        attrs = pygltflib.Attributes(POSITION=self.accessor(positions, "VEC3"))
        for k in ("TEXCOORD_0", "COLOR_0", "JOINTS_0", "WEIGHTS_0"):
            if k in extra:
                setattr(attrs, k, extra.pop(k))
        prim = pygltflib.Primitive(attributes=attrs, mode=mode, material=extra.pop("material", None), targets=extra.pop("targets", None))
        if indices is not None:
            prim.indices = self.accessor(np.asarray(indices).reshape(-1), "SCALAR", 5123)
        self.g.meshes.append(pygltflib.Mesh(primitives=[prim], weights=extra.pop("weights", None)))
        return len(self.g.meshes) - 1

    def node(self, **kw) -> int:
        self.g.nodes.append(pygltflib.Node(**kw))
        return len(self.g.nodes) - 1

    def animation(self, channels: list[tuple[int, str, np.ndarray, np.ndarray, str]]) -> None:
        """One animation of (node, path, times [K], values [K,C] or [K,3,C], interpolation) channels."""
        anim = pygltflib.Animation(samplers=[], channels=[])
        types = {"translation": "VEC3", "rotation": "VEC4", "scale": "VEC3", "weights": "SCALAR"}
        for node, path, times, values, interp in channels:
            values = np.asarray(values, dtype=np.float64)
            out = values.reshape(-1) if path == "weights" else values.reshape(-1, values.shape[-1])
            anim.samplers.append(pygltflib.AnimationSampler(input=self.accessor(np.asarray(times), "SCALAR"),
                                                            output=self.accessor(out, types[path]), interpolation=interp))  # fmt: skip
            target = pygltflib.AnimationChannelTarget(node=node, path=path)
            anim.channels.append(pygltflib.AnimationChannel(sampler=len(anim.samplers) - 1, target=target))
        self.g.animations.append(anim)

    def save(self, path: Path, roots: list[int]) -> Path:
        """Write as .glb (embedded buffer) or, for a .gltf path, JSON + ``<stem>.bin`` beside it."""
        self.g.scenes = [pygltflib.Scene(nodes=roots)]
        self.g.scene = 0
        while len(self.blob) % 4:
            self.blob.append(0)
        if path.suffix == ".gltf":
            (path.parent / f"{path.stem}.bin").write_bytes(bytes(self.blob))
            self.g.buffers = [pygltflib.Buffer(byteLength=len(self.blob), uri=f"{path.stem}.bin")]
            self.g.save_json(str(path))
        else:
            self.g.buffers = [pygltflib.Buffer(byteLength=len(self.blob))]
            self.g.set_binary_blob(bytes(self.blob))
            self.g.save_binary(str(path))
        return path
