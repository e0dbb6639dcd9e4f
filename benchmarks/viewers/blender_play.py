"""Play a GLB in Blender (the ``bpy`` module) and write every mesh vertex at given times to an .npz.

Runs under a Python that has ``bpy`` (``pip install bpy`` in a venv of its own: Blender 4+/5 wheels for
CPython 3.11), not motion4d's environment; ``benchmarks/gltf_viewers.py --blender-python PY`` calls it:

    PY benchmarks/viewers/blender_play.py FILE.glb OUT.npz T1 T2 ...

Blender's glTF importer turns the file's Y-up into Blender's Z-up; the vertices are written back in the
file's axes (x, y, z) = (x_b, z_b, −y_b), world coordinates, ``vertices [T,V,3]`` with ``times [T]``.
Times are seconds, played at the scene's frame rate (the importer keys frames at t × fps) with subframes.
"""

import sys

import bpy
import numpy as np


def main() -> int:
    path, out, *times = sys.argv[1:]
    times = [float(t) for t in times]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=path)
    scene = bpy.context.scene
    fps = scene.render.fps / scene.render.fps_base
    # the importer also makes a hidden icosphere as the bones' display shape: visible meshes only
    meshes = [o for o in scene.objects if o.type == "MESH" and o.visible_get()]
    frames = []
    for t in times:
        f = t * fps
        scene.frame_set(int(np.floor(f)), subframe=float(f - np.floor(f)))
        depsgraph = bpy.context.evaluated_depsgraph_get()
        pts = []
        for o in meshes:
            ev = o.evaluated_get(depsgraph)
            mesh = ev.to_mesh()
            co = np.empty(len(mesh.vertices) * 3)
            mesh.vertices.foreach_get("co", co)
            co = co.reshape(-1, 3)
            m = np.array(ev.matrix_world)
            pts.append(co @ m[:3, :3].T + m[:3, 3])
            ev.to_mesh_clear()
        p = np.concatenate(pts) if pts else np.zeros((0, 3))
        frames.append(np.stack([p[:, 0], p[:, 2], -p[:, 1]], axis=1))
    np.savez(out, vertices=np.stack(frames), times=np.asarray(times), fps=fps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
