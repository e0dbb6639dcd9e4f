"""Meshes of procedural characters: tubes branching off tubes (one connected, skinned surface) and boxes.

A :class:`Tube` is a surface of revolution about a smooth centre line (a Catmull–Rom spline through its
control points, radius interpolated between theirs), ``sides`` vertices per ring, a rounded cap at its tip
and, unless it branches off another tube, at its start. A branch (a leg off the body, a wing) emerges from
a hole in its parent: the parent's 2×2 quads nearest the branch's first control point are removed and the
branch's first ring is the hole's 8-vertex rim, so the surface stays connected. Each tube has its own UV
band of the texture (u around, v along), so the rim and every ring's u = 1 column are seam duplicates:
vertices at the same position, as glTF files split them, with the same skin weights (the surface cannot tear).

Skin weights follow the centre line: segment i (control point i to i+1) moves with joint ``owners[i]``;
around each interior control point the two owners blend (smoothstep over about a radius either side), and a
branch blends from its parent's weights at the rim to its own over its first radius. A :class:`Box` (a
machine's rigid part) is bound to one joint with weight 1. :func:`build_parts` returns the
:class:`~motion4d.data.mesh.Mesh` and the skin (at most 4 joints per vertex).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from motion4d.data.mesh import Material, Mesh

MAX_INFLUENCES = 4
"""Joints per vertex of the skin (glTF's JOINTS_0 / WEIGHTS_0)."""


@dataclass
class Tube:
    """A tube along a centre line, skinned along joints (see the module docstring)."""

    points: np.ndarray
    """[n,3] control points of the centre line, start to tip (a branch's first one: where it leaves its parent)."""
    radii: np.ndarray
    """[n] radius at each control point."""
    owners: list[int]
    """[n-1] joint moving each segment (control point i to i+1)."""
    parent: int | None = None
    """Index of the tube this one branches off (it must come earlier; None: a trunk with a start cap)."""
    sides: int = 8
    """Vertices per ring (a branch's rings have 8, its rim's)."""
    flat_axis: tuple[float, float, float] | None = None
    """Direction in which the cross-section is squashed (a wing's thickness), or None (round)."""
    flat_ratio: float = 1.0
    """Thickness along ``flat_axis`` relative to the radius."""
    cap: float = 0.6
    """Cap height at the tip (and start) in radii (0: flat)."""
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    """Where a trunk's ring seam (u = 0) faces."""


@dataclass
class Box:
    """An axis-aligned box, subdivided, moved rigidly by one joint."""

    center: tuple[float, float, float]
    """Centre (rest pose)."""
    size: tuple[float, float, float]
    """Edge lengths along x, y, z."""
    joint: int
    """The joint that moves it."""
    cells: int = 3
    """Quads per face edge."""


class _Surface:
    """Vertices with UVs, skin and the centre-line point inside them; faces oriented at the end."""

    def __init__(self):
        self.pos, self.uv, self.inner, self.skin = [], [], [], []
        self.faces: list[tuple[int, int, int]] = []

    def add(self, p, uv, inner, skin: dict[int, float]) -> int:
        self.pos.append(np.asarray(p, dtype=np.float64))
        self.uv.append(uv)
        self.inner.append(np.asarray(inner, dtype=np.float64))
        self.skin.append(skin)
        return len(self.pos) - 1

    def quad(self, a, b, c, d) -> None:
        self.faces += [(a, b, c), (a, c, d)]


def _catmull_rom(points: np.ndarray, samples: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Dense samples ``[M,3]`` of the spline through ``points`` and each sample's parameter (i + u) [M]."""
    p = np.concatenate([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    out, par = [], []
    for i in range(len(points) - 1):
        p0, p1, p2, p3 = p[i], p[i + 1], p[i + 2], p[i + 3]
        u = np.linspace(0, 1, samples, endpoint=False)[:, None]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * u**3))
        par.append(i + u[:, 0])
    out.append(points[-1:])
    par.append(np.array([len(points) - 1.0]))
    return np.concatenate(out), np.concatenate(par)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _centre_line(tube: Tube, spacing: float):
    """Ring centres [R,3], tangents [R,3], radii [R], arc lengths [R] and the control points' arc lengths [n]."""
    dense, par = _catmull_rom(np.asarray(tube.points, dtype=np.float64))
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    ctrl_arc = np.interp(np.arange(len(tube.points)), par, arc)
    n_rings = max(2, int(np.ceil(arc[-1] / spacing)) + 1)
    s = np.linspace(0.0, arc[-1], n_rings)
    centres = np.stack([np.interp(s, arc, dense[:, k]) for k in range(3)], axis=1)
    tang = np.gradient(centres, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    t = np.interp(s, arc, par)
    i = np.minimum(np.floor(t).astype(int), len(tube.radii) - 2)
    r = np.asarray(tube.radii, dtype=np.float64)
    radii = r[i] + (r[i + 1] - r[i]) * _smoothstep(t - i)
    return centres, tang, radii, s, ctrl_arc


def _owner_changes(tube: Tube, ctrl_arc: np.ndarray) -> list[tuple[float, int, int, float]]:
    """``(arc, owner before, owner after, blend half-width)`` at each control point where the owner changes:
    about a radius, at most 0.4 of the distance to the next change (or end) either side."""
    at = [j for j in range(1, len(tube.owners)) if tube.owners[j - 1] != tube.owners[j]]
    bounds = [0.0] + [float(ctrl_arc[j]) for j in at] + [float(ctrl_arc[-1])]
    return [(bounds[i + 1], tube.owners[j - 1], tube.owners[j], min(float(tube.radii[j]), 0.4 * (bounds[i + 1] - bounds[i]), 0.4 * (bounds[i + 2] - bounds[i + 1])))
            for i, j in enumerate(at)]  # fmt: skip


def _chain_weights(tube: Tube, s: float, ctrl_arc: np.ndarray, changes) -> dict[int, float]:
    """Skin weights of a ring at arc length ``s`` from its tube's segment owners (see the module docstring)."""
    for c, before, after, half in changes:
        if abs(s - c) < half:
            a = float(_smoothstep((s - c + half) / (2 * half)))
            return {before: 1.0 - a, after: a}
    seg = int(np.clip(np.searchsorted(ctrl_arc, s, side="right") - 1, 0, len(tube.owners) - 1))
    return {tube.owners[seg]: 1.0}


def _blend(a: dict[int, float], b: dict[int, float], t: float) -> dict[int, float]:
    out = {k: (1 - t) * v for k, v in a.items()}
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + t * v
    return {k: v for k, v in out.items() if v > 1e-9}


def _add_tube(surf: _Surface, tube: Tube, spacing: float, band: tuple[float, float], rims: dict, used: dict, ti: int) -> None:
    """Append ``tube``'s rings, quads and caps; record its ring vertex ids for branches (``rims[ti]``)."""
    if tube.parent is not None:  # the hole first: the branch starts at its rim's centre
        rim = _cut_hole(surf, rims[tube.parent], used.setdefault(tube.parent, set()), np.asarray(tube.points[0], dtype=np.float64))
        rim_c = np.mean([surf.pos[i] for i in rim], axis=0)
        tube = replace(tube, points=np.concatenate([rim_c[None], np.asarray(tube.points, dtype=np.float64)[1:]]))
    centres, tang, radii, s, ctrl_arc = _centre_line(tube, spacing)
    changes = _owner_changes(tube, ctrl_arc)
    v0, v1 = band
    n_r, S = len(centres), tube.sides
    if tube.parent is None:
        up = np.asarray(tube.up, dtype=np.float64)
        a = up - (up @ tang[0]) * tang[0]
        if np.linalg.norm(a) < 1e-6:
            a = np.cross(tang[0], [1.0, 0.0, 0.0])
        dirs0 = [np.cos(2 * np.pi * k / S) * a / np.linalg.norm(a) + np.sin(2 * np.pi * k / S) * np.cross(tang[0], a / np.linalg.norm(a)) for k in range(S)]
        rim, rim_skin, first = None, None, 0
    else:
        dirs0 = [surf.pos[i] - rim_c for i in rim]
        rim_skin = [surf.skin[i] for i in rim]
        first = 1
    ring_ids = []
    for k in range(n_r):
        ids = []
        for m in range(S + 1):
            d = dirs0[m % S]
            if rim is not None and k == 0:
                p, skin = surf.pos[rim[m % S]], rim_skin[m % S]
            else:
                d = d - (d @ tang[k]) * tang[k]
                d = d / np.linalg.norm(d)
                if tube.flat_axis is not None:
                    n = np.asarray(tube.flat_axis, dtype=np.float64)
                    n = n - (n @ tang[k]) * tang[k]
                    n /= max(np.linalg.norm(n), 1e-12)
                    d = d - (1.0 - tube.flat_ratio) * (d @ n) * n
                p = centres[k] + radii[k] * d
                skin = _chain_weights(tube, s[k], ctrl_arc, changes)
                if rim is not None and s[k] < radii[0]:  # out of the parent
                    skin = _blend(rim_skin[m % S], skin, float(_smoothstep(s[k] / radii[0])))
            ids.append(surf.add(p, (m / S, v0 + (v1 - v0) * k / (n_r - 1)), centres[k], skin))
        ring_ids.append(ids)
    for k in range(n_r - 1):
        for m in range(S):
            surf.quad(ring_ids[k][m], ring_ids[k][m + 1], ring_ids[k + 1][m + 1], ring_ids[k + 1][m])
    ends = [(n_r - 1, 1.0)] + ([(0, -1.0)] if first == 0 else [])
    for k, sign in ends:
        inside = centres[k] - sign * radii[k] * tang[k]  # so that even a flat cap's faces know their outside
        tip = surf.add(centres[k] + sign * tube.cap * radii[k] * tang[k], (0.5, v1 if sign > 0 else v0), inside, surf.skin[ring_ids[k][0]])
        for m in range(S):
            surf.faces.append((ring_ids[k][m], ring_ids[k][m + 1], tip))
    rims[ti] = ring_ids


def _cut_hole(surf: _Surface, rings: list[list[int]], used: set, target: np.ndarray) -> list[int]:
    """Remove the parent's 2×2 quads (not at its ends, not used by another branch) whose centre is nearest
    ``target``; return the hole's rim, 8 vertex ids in order around it."""
    n_r, S = len(rings), len(rings[0]) - 1
    best = None
    for k in range(1, n_r - 3):
        for m in range(S - 1):
            if any((k + a, m + b) in used for a in (-1, 0, 1, 2) for b in (-1, 0, 1, 2)):
                continue
            d = np.linalg.norm(surf.pos[rings[k + 1][m + 1]] - target)
            if best is None or d < best[0]:
                best = (d, k, m)
    if best is None:
        raise ValueError("no room on the parent tube for another branch (make it longer or finer)")
    _, k, m = best
    used.update((k + a, m + b) for a in (0, 1) for b in (0, 1))
    quads = {frozenset((rings[k + a][m + b], rings[k + a][m + b + 1], rings[k + a + 1][m + b + 1], rings[k + a + 1][m + b])) for a in (0, 1) for b in (0, 1)}
    surf.faces = [f for f in surf.faces if not any(set(f) <= q for q in quads)]
    r = rings
    return [r[k][m], r[k][m + 1], r[k][m + 2], r[k + 1][m + 2], r[k + 2][m + 2], r[k + 2][m + 1], r[k + 2][m], r[k + 1][m]]


def _add_box(surf: _Surface, box: Box, band: tuple[float, float]) -> None:
    c, h = np.asarray(box.center, dtype=np.float64), np.asarray(box.size, dtype=np.float64) / 2
    n = box.cells
    for face in range(6):
        axis, sign = face // 2, 1.0 if face % 2 == 0 else -1.0
        u_ax, v_ax = [a for a in range(3) if a != axis]
        ids = np.empty((n + 1, n + 1), dtype=np.int64)
        for i in range(n + 1):
            for j in range(n + 1):
                p = c.copy()
                p[axis] += sign * h[axis]
                p[u_ax] += h[u_ax] * (2 * i / n - 1)
                p[v_ax] += h[v_ax] * (2 * j / n - 1)
                uv = ((face + i / n) / 6, band[0] + (band[1] - band[0]) * j / n)
                ids[i, j] = surf.add(p, uv, c, {box.joint: 1.0})
        for i in range(n):
            for j in range(n):
                surf.quad(ids[i, j], ids[i + 1, j], ids[i + 1, j + 1], ids[i, j + 1])


def build_parts(parts: list[Tube | Box], spacing: float, texture: np.ndarray, name: str = "character") -> tuple[Mesh, np.ndarray, np.ndarray]:
    """The surface of ``parts`` as a textured :class:`Mesh` and its skin ``(joints [V,4], weights [V,4])``.

    Args:
        parts: tubes (a branch after its parent) and boxes; part i textures with the i-th of len(parts)
            horizontal bands of ``texture``.
        spacing: ring spacing along the tubes (about the edge length).
        texture: [H,W,3] uint8 base-colour image.
        name: the mesh's name.
    """
    surf, rims, used = _Surface(), {}, {}
    n = len(parts)
    for i, part in enumerate(parts):
        band = ((i + 0.02) / n, (i + 0.98) / n)
        if isinstance(part, Box):
            _add_box(surf, part, band)
        else:
            if part.parent is not None and (part.parent >= i or not isinstance(parts[part.parent], Tube) or part.sides != 8):
                raise ValueError(f"part {i}: a branch needs 8 sides and an earlier tube as its parent")
            _add_tube(surf, part, spacing, band, rims, used, i)
    pos, inner = np.stack(surf.pos), np.stack(surf.inner)
    faces = np.asarray(surf.faces, dtype=np.int64)
    normal = np.cross(pos[faces[:, 1]] - pos[faces[:, 0]], pos[faces[:, 2]] - pos[faces[:, 0]])
    outward = ((pos[faces].mean(1) - inner[faces].mean(1)) * normal).sum(1)
    faces[outward < 0] = faces[outward < 0][:, [0, 2, 1]]
    keep = np.unique(faces)  # hole centres are left unreferenced
    remap = np.full(len(pos), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    joints = np.zeros((len(keep), MAX_INFLUENCES), dtype=np.int64)
    weights = np.zeros((len(keep), MAX_INFLUENCES))
    for row, i in enumerate(keep):
        top = sorted(surf.skin[i].items(), key=lambda kv: -kv[1])[:MAX_INFLUENCES]
        joints[row, : len(top)] = [k for k, _ in top]
        weights[row, : len(top)] = [v for _, v in top]
    weights /= weights.sum(1, keepdims=True)
    mesh = Mesh(pos[keep].astype(np.float32), remap[faces], uvs=np.asarray(surf.uv, dtype=np.float32)[keep],
                materials=[Material(base_color=(1.0, 1.0, 1.0, 1.0), texture=texture, name=f"{name}_skin")], name=name)  # fmt: skip
    return mesh, joints, weights
