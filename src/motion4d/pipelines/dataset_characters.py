"""``motion4d dataset characters``: rigged test characters as animated GLB files and multi-view video datasets.

Characters ``seed … seed + n − 1`` (:func:`motion4d.data.characters.make_character`; seed s is kind
``KINDS[s % 5]``), one GLB file per clip, each holding one animation (so Blender's importer, which plays only
a file's first animation, plays all of it), rendered by ``dataset from-gltf``
(:func:`motion4d.pipelines.dataset_gltf.dataset_from_gltf`). The folder has the benchmark data's layout::

    OUT/gltf/<kind><seed>_<clip>.glb         e.g. quadruped1000_walk.glb (rest pose = bind pose)
    OUT/multiview/<kind><seed>_<clip>/       transforms_{train,test}.json, PNGs, gt_vertices.npz
    OUT/characters.json                      one entry per clip: name, kind, seed, clip, split, sizes

**Split by seed**: seeds below :data:`HELD_OUT_FROM` are the *tuning* set (choose defaults on them), seeds
from it on the *held-out* set — no default may be chosen on those; the benchmark reports them.
Datasets already in OUT are kept (the command resumes where it stopped).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from motion4d.atomic import atomic_path
from motion4d.data.characters import Character, make_character
from motion4d.data.rig import Clip
from motion4d.export.gltf import write_rigged_glb
from motion4d.pipelines.dataset_gltf import DatasetConfig, dataset_from_gltf

log = logging.getLogger(__name__)

HELD_OUT_FROM = 1000
"""Seeds from here on are held out: no default is chosen on them."""
MANIFEST = "characters.json"


def split_of(seed: int) -> str:
    """``"tuning"`` or ``"held_out"`` (see :data:`HELD_OUT_FROM`)."""
    return "held_out" if seed >= HELD_OUT_FROM else "tuning"


def write_character_glb(character: Character, clip: Clip, path: str | Path) -> Path:
    """``character`` skinned to its skeleton with the one animation ``clip``, as a GLB file."""
    s = character.skeleton
    return write_rigged_glb(path, character.mesh, s.parents, s.offsets, character.joints, character.weights, clip.times, clip.rotations,
                            clip.root_translation, joint_names=s.names, name=clip.name)  # fmt: skip


def dataset_characters(out: str | Path, n: int = 5, seed: int = HELD_OUT_FROM, config: DatasetConfig = DatasetConfig(), render: bool = True,
                       progress: bool = True, subdivide: int = 0) -> dict:  # fmt: skip
    """Write characters ``seed … seed + n − 1`` into ``out`` (see the module docstring); returns the manifest.

    Args:
        out: the folder (created; what it already holds is kept).
        n: number of characters (each gives one dataset per clip).
        seed: the first character's seed.
        config: how the datasets are rendered (the benchmark data's settings by default).
        render: render the multi-view datasets (False: the GLB files only).
        progress: progress bars.
        subdivide: times each character's surface is split into 4 (dense assets of the same shape and motion,
            about 4^subdivide × the faces; see :func:`motion4d.data.characters.subdivided`).
    """
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if subdivide < 0:
        raise ValueError(f"--subdivide must be >= 0, got {subdivide}")
    out = Path(out)
    (out / "gltf").mkdir(parents=True, exist_ok=True)
    entries = []
    for s in range(seed, seed + n):
        c = make_character(s, subdivide=subdivide)
        for clip in c.clips:
            name = f"{c.name}_{clip.name}"
            glb = out / "gltf" / f"{name}.glb"
            write_character_glb(c, clip, glb)
            data = out / "multiview" / name
            if render and not data.exists():
                dataset_from_gltf(glb, data, config, progress=progress)
            entries.append({"name": name, "kind": c.kind, "seed": s, "clip": clip.name, "split": split_of(s), "vertices": c.mesh.num_vertices,
                            "faces": int(c.mesh.faces.shape[0]), "joints": c.skeleton.num_joints, "duration_s": clip.duration, "rendered": data.is_dir()})  # fmt: skip
            log.info("%s: %s, %d vertices, %d joints, %.2f s%s", name, split_of(s), c.mesh.num_vertices, c.skeleton.num_joints, clip.duration,
                     " (rendered)" if data.is_dir() else "")  # fmt: skip
    manifest = {"held_out_from": HELD_OUT_FROM, "datasets": entries}
    old = out / MANIFEST
    if old.is_file():  # keep the entries of other seeds written before
        mine = {e["name"] for e in entries}
        manifest["datasets"] = [e for e in json.loads(old.read_text()).get("datasets", []) if e["name"] not in mine] + entries
    with atomic_path(old) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
