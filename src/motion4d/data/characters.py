"""Rigged, skinned, animated test characters, deterministic per seed: any number of them.

Five kinds (:data:`KINDS`; seed s makes kind ``KINDS[s % 5]``), each with its clips (:data:`CLIPS`):

- ``quadruped`` (walk, run): a body with neck, head and a long tail in one tube, four thin legs branching
  off it that swing past each other;
- ``biped`` (walk, wave): a torso with head, legs side by side and arms hanging close along the torso
  (they nearly touch it in the rest pose; the wave lifts one away);
- ``snake`` (slither): one long tube lying in a hairpin, its two halves side by side, bent by a wave
  travelling along its spine;
- ``bird`` (flap): a body with flat, wide wings;
- ``machine`` (work): rigid boxes and a cylinder on joints (a turret arm with a two-finger gripper whose
  fingers touch in the rest pose) — separate parts, each moved by one joint.

Proportions, textures (:mod:`motion4d.data.char_textures`) and motion amplitudes vary with the seed. The
surface is built by :mod:`motion4d.data.part_mesh`, the rig is :mod:`motion4d.data.rig`'s; coordinates
are glTF's (Y up, the character facing +X, standing on y = 0, about 1–2 units long). Clips last about a
second, keyed 24 times a second, and loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motion4d.data.char_textures import character_texture
from motion4d.data.mesh import Mesh
from motion4d.data.part_mesh import Box, Tube, build_parts
from motion4d.data.rig import Clip, Skeleton, axis_angle_quat, quat_multiply

KINDS = ("quadruped", "biped", "snake", "bird", "machine")
"""The character kinds, in the order seeds cycle through them."""
CLIPS = {"quadruped": ("walk", "run"), "biped": ("walk", "wave"), "snake": ("slither",), "bird": ("flap",), "machine": ("work",)}
"""Each kind's animations."""
KEYS_PER_SECOND = 24
"""Keyframe rate of the clips."""
X, Y, Z = np.eye(3)


@dataclass
class Character:
    """A skinned mesh, its skeleton and its animations."""

    name: str
    """``<kind><seed>``, e.g. ``quadruped1000``."""
    kind: str
    """One of :data:`KINDS`."""
    seed: int
    """The seed that made it."""
    mesh: Mesh
    """The textured surface in its rest (bind) pose."""
    skeleton: Skeleton
    """The joints."""
    joints: np.ndarray
    """[V,4] joint indices per vertex."""
    weights: np.ndarray
    """[V,4] skin weights (rows sum to 1)."""
    clips: list[Clip]
    """The animations (see :data:`CLIPS`)."""


class _Rig:
    """Joints added by world position; :meth:`skeleton` turns them into parent offsets."""

    def __init__(self):
        self.names: list[str] = []
        self.parents: list[int] = []
        self.pos: list[np.ndarray] = []

    def add(self, name: str, parent: str | None, pos) -> int:
        self.names.append(name)
        self.parents.append(-1 if parent is None else self.names.index(parent))
        self.pos.append(np.asarray(pos, dtype=np.float64))
        return len(self.names) - 1

    def __getitem__(self, name: str) -> int:
        return self.names.index(name)

    def skeleton(self) -> Skeleton:
        pos = np.stack(self.pos)
        offsets = np.array([pos[j] - (pos[p] if p >= 0 else 0.0) for j, p in enumerate(self.parents)])
        return Skeleton(list(self.names), np.asarray(self.parents), offsets)


def _clip(name: str, rig: _Rig, duration: float, rotations: dict[str, np.ndarray], bob: np.ndarray | None = None) -> Clip:
    """A clip of ``KEYS_PER_SECOND`` keys over ``duration``; ``rotations`` maps joint names to ``[K,4]`` quaternions
    (others stay at rest) and ``bob [K,3]`` is the root's translation."""
    k = int(round(duration * KEYS_PER_SECOND)) + 1
    q = np.zeros((k, len(rig.names), 4))
    q[..., 3] = 1.0
    for joint, value in rotations.items():
        q[:, rig[joint]] = value
    return Clip(name, np.linspace(0.0, duration, k), q, np.zeros((k, 3)) if bob is None else bob)


def _phase(duration: float) -> np.ndarray:
    return np.linspace(0.0, 2 * np.pi, int(round(duration * KEYS_PER_SECOND)) + 1)


def _chain(points: list, joints: list[str | None], rig: _Rig) -> list[int]:
    """Segment owners of a centre line through ``points`` whose entries are at ``joints`` (None: a tip):
    between two joints, whichever is the other's parent; between a tip and a joint, the joint."""
    owners = []
    for a, b in zip(joints[:-1], joints[1:]):
        if a is None or b is None:
            owners.append(rig[a if b is None else b])
        else:
            ia, ib = rig[a], rig[b]
            owners.append(ia if rig.parents[ib] == ia else ib)
    return owners


def _quadruped(rng: np.random.Generator, rig: _Rig):
    L, rb = rng.uniform(0.9, 1.3), rng.uniform(0.15, 0.21)
    ll, rl = rng.uniform(0.5, 0.75), rng.uniform(0.032, 0.05)
    tail_len, n_tail = rng.uniform(0.5, 0.9), int(rng.integers(4, 7))
    h = ll + rb * 0.6
    rig.add("hips", None, (-L * 0.3, h, 0))
    rig.add("spine", "hips", (0.0, h + 0.02, 0))
    rig.add("chest", "spine", (L * 0.3, h + 0.03, 0))
    rig.add("neck", "chest", (L * 0.5, h + rb * 0.6, 0))
    rig.add("head", "neck", (L * 0.5 + rb * 1.1, h + rb * 1.9, 0))
    tail = []
    for i in range(n_tail):
        a = (i + 1) / n_tail
        tail.append(rig.add(f"tail{i}", "hips" if i == 0 else f"tail{i - 1}", (-L * 0.5 - tail_len * a, h + 0.1 * rb - 0.4 * tail_len * a * a, 0)))
    nose = rig.pos[rig["head"]] + (rb * 1.0, -rb * 0.35, 0)
    tip = rig.pos[tail[-1]] + (rig.pos[tail[-1]] - rig.pos[tail[-2]]) * 0.5
    names = [None] + [f"tail{i}" for i in reversed(range(n_tail))] + ["hips", "spine", "chest", "neck", "head", None]
    pts = [tip] + [rig.pos[t] for t in reversed(tail)] + [rig.pos[rig[n]] for n in ("hips", "spine", "chest", "neck", "head")] + [nose]
    tail_r = list(np.linspace(rl * 0.35, rl * 1.2, n_tail + 1))
    radii = tail_r + [rb * 0.95, rb, rb * 1.05, rb * 0.5, rb * 0.62, rb * 0.25]
    parts = [Tube(np.array(pts), np.array(radii), _chain(pts, names, rig), sides=16)]
    spread = rng.uniform(0.45, 0.65) * rb
    for side, sz in (("L", 1.0), ("R", -1.0)):
        for end, x, parent in (("h", -L * 0.3, "hips"), ("f", L * 0.3, "chest")):
            up, lo, ft = f"{end}leg_up{side}", f"{end}leg_lo{side}", f"{end}foot{side}"
            rig.add(up, parent, (x, h - rb * 0.3, sz * spread))
            knee = rig.add(lo, up, (x + (0.04 if end == "f" else -0.04), h - rb - ll * 0.4, sz * spread))
            ankle = rig.add(ft, lo, (x, h - rb - ll * 0.85, sz * spread))
            toe = rig.pos[ankle] + (rl * 2.5, -(h - rb - ll * 0.85) + rl, 0)
            start = (x, h - rb * 0.75, sz * spread * 1.1)
            lpts = [np.array(start), rig.pos[knee], rig.pos[ankle], toe]
            parts.append(Tube(np.array(lpts), np.array([rb * 0.38, rl * 1.05, rl * 0.8, rl * 0.9]), _chain(lpts, [up, lo, ft, None], rig), parent=0))
    return parts, 0.035 * (L + tail_len) / 1.8


def _quadruped_clips(rng: np.random.Generator, rig: _Rig) -> list[Clip]:
    clips = []
    tail = [n for n in rig.names if n.startswith("tail")]
    for name, amp, phases in (("walk", rng.uniform(0.35, 0.5), {"hlegL": 0.0, "flegL": 0.5, "hlegR": 1.0, "flegR": 1.5}),
                              ("run", rng.uniform(0.6, 0.8), {"hlegL": 0.0, "hlegR": 0.15, "flegL": 1.0, "flegR": 1.15})):  # fmt: skip
        dur = float(rng.uniform(0.9, 1.1))
        ph = _phase(dur)
        rot = {}
        for leg, off in phases.items():
            side, end = leg[-1], leg[0]
            a = ph + np.pi * off
            rot[f"{end}leg_up{side}"] = axis_angle_quat(Z, amp * np.sin(a))
            bend = (1 if end == "f" else -1) * amp * 1.2 * np.maximum(0.0, np.sin(a + np.pi / 2))
            rot[f"{end}leg_lo{side}"] = axis_angle_quat(Z, bend)
            rot[f"{end}foot{side}"] = axis_angle_quat(Z, -0.5 * bend)
        for i, t in enumerate(tail):
            rot[t] = quat_multiply(axis_angle_quat(Y, 0.25 * np.sin(ph - 0.8 * i)), axis_angle_quat(Z, 0.08 * np.cos(ph - 0.5 * i)))
        rot["head"] = axis_angle_quat(Z, 0.12 * np.sin(2 * ph))
        flex = 0.15 if name == "run" else 0.03
        rot["spine"] = axis_angle_quat(Z, flex * np.sin(ph))
        rot["chest"] = axis_angle_quat(Z, flex * np.sin(ph))
        bob = np.zeros((len(ph), 3))
        bob[:, 1] = (0.05 if name == "run" else 0.015) * np.sin(2 * ph)
        clips.append(_clip(name, rig, dur, rot, bob))
    return clips


def _biped(rng: np.random.Generator, rig: _Rig):
    ll, rl = rng.uniform(0.75, 0.95), rng.uniform(0.055, 0.075)
    torso, rt = rng.uniform(0.55, 0.7), rng.uniform(0.15, 0.19)
    al, ra = rng.uniform(0.55, 0.7), rng.uniform(0.04, 0.055)
    y0 = ll + rl
    rig.add("hips", None, (0, y0, 0))
    rig.add("spine", "hips", (0, y0 + torso * 0.45, 0))
    rig.add("chest", "spine", (0, y0 + torso * 0.85, 0))
    rig.add("neck", "chest", (0, y0 + torso * 1.05, 0))
    rig.add("head", "neck", (0.02, y0 + torso * 1.05 + rt * 0.9, 0))
    top = rig.pos[rig["head"]] + (0, rt * 1.1, 0)
    pts = [np.array((0, y0 - rl * 1.5, 0))] + [rig.pos[rig[n]] for n in ("hips", "spine", "chest", "neck", "head")] + [top]
    names = [None, "hips", "spine", "chest", "neck", "head", None]
    radii = [rt * 0.7, rt * 0.95, rt * 0.9, rt * 1.05, rt * 0.4, rt * 0.7, rt * 0.3]
    parts = [Tube(np.array(pts), np.array(radii), _chain(pts, names, rig), sides=16, flat_axis=(1, 0, 0), flat_ratio=0.7)]
    legz = rl * rng.uniform(1.12, 1.3)  # the legs nearly touch
    for side, sz in (("L", 1.0), ("R", -1.0)):
        up = rig.add(f"thigh{side}", "hips", (0, y0 - rl * 0.4, sz * legz))
        kn = rig.add(f"shin{side}", f"thigh{side}", (0.02, y0 * 0.5, sz * legz))
        an = rig.add(f"foot{side}", f"shin{side}", (0, rl * 1.2, sz * legz))
        lpts = [np.array((0, y0 - rl * 0.9, sz * rt * 0.55)), rig.pos[up] - (0, rl * 1.2, 0), rig.pos[kn], rig.pos[an], rig.pos[an] + (rl * 3, -rl * 0.6, 0)]
        parts.append(Tube(np.array(lpts), np.array([rt * 0.4, rl * 1.1, rl * 0.85, rl * 0.7, rl * 0.6]),
                          _chain(lpts, [f"thigh{side}", f"thigh{side}", f"shin{side}", f"foot{side}", None], rig), parent=0))  # fmt: skip
    armz = rt * 1.05 + ra * rng.uniform(1.15, 1.4)  # hanging close along the torso
    ys = y0 + torso * 0.82
    for side, sz in (("L", 1.0), ("R", -1.0)):
        sh = rig.add(f"arm{side}", "chest", (0, ys, sz * armz))
        el = rig.add(f"forearm{side}", f"arm{side}", (0, ys - al * 0.5, sz * armz))
        wr = rig.add(f"hand{side}", f"forearm{side}", (0.01, ys - al * 0.95, sz * armz))
        apts = [np.array((0, ys + 0.02, sz * rt * 0.7)), rig.pos[sh] + (0, -ra, 0), rig.pos[el], rig.pos[wr], rig.pos[wr] + (0, -ra * 2.5, 0)]
        parts.append(Tube(np.array(apts), np.array([rt * 0.3, ra * 1.1, ra * 0.9, ra * 0.75, ra * 0.8]),
                          _chain(apts, [f"arm{side}", f"arm{side}", f"forearm{side}", f"hand{side}", None], rig), parent=0))  # fmt: skip
    return parts, 0.03 * (ll + torso) / 1.5


def _biped_clips(rng: np.random.Generator, rig: _Rig) -> list[Clip]:
    dur = float(rng.uniform(0.9, 1.1))
    ph, amp = _phase(dur), rng.uniform(0.4, 0.55)
    walk = {}
    for side, off in (("L", 0.0), ("R", np.pi)):
        a = ph + off
        walk[f"thigh{side}"] = axis_angle_quat(Z, amp * np.sin(a))
        walk[f"shin{side}"] = axis_angle_quat(Z, -amp * 1.3 * np.maximum(0.0, np.sin(a - np.pi / 2)))
        walk[f"arm{side}"] = axis_angle_quat(Z, -0.7 * amp * np.sin(a))
        walk[f"forearm{side}"] = axis_angle_quat(Z, 0.3 + 0.2 * np.sin(a))
    walk["spine"] = axis_angle_quat(Y, 0.08 * np.sin(ph))
    bob = np.zeros((len(ph), 3))
    bob[:, 1] = 0.02 * np.cos(2 * ph)
    dur2 = float(rng.uniform(1.0, 1.3))
    ph2 = _phase(dur2)
    lift = np.sin(ph2 / 2) ** 2  # 0 → 1 → 0 over the clip
    raise_to = rng.uniform(2.2, 2.7)
    wave = {"armR": axis_angle_quat(X, raise_to * lift),
            "forearmR": axis_angle_quat(X, lift * (0.5 + 0.45 * np.sin(3 * ph2))),
            "handR": axis_angle_quat(X, 0.3 * lift * np.sin(3 * ph2 - 0.8)),
            "armL": axis_angle_quat(X, -0.15 * lift), "head": axis_angle_quat(X, -0.15 * lift)}  # fmt: skip
    return [_clip("walk", rig, dur, walk, bob), _clip("wave", rig, dur2, wave)]


def _snake(rng: np.random.Generator, rig: _Rig):
    r, n = rng.uniform(0.045, 0.06), int(rng.integers(12, 17))
    arm_len, gap = rng.uniform(0.8, 1.1), r * rng.uniform(0.5, 0.9)
    R = r + gap / 2  # the two halves of the hairpin lie side by side, ``gap`` apart

    def at(si: float) -> np.ndarray:
        if si <= arm_len:
            return np.array((arm_len - si, r, R))
        if si <= arm_len + np.pi * R:
            a = (si - arm_len) / R
            return np.array((-R * np.sin(a), r, R * np.cos(a)))
        return np.array((si - arm_len - np.pi * R, r, -R))

    total = 2 * arm_len + np.pi * R
    s_joint = np.linspace(0, total, n + 2)[1:-1]  # body1 … bodyn; the root in the middle
    mid = (n + 1) // 2
    rig.add(f"body{mid}", None, at(s_joint[mid - 1]))
    for i in range(mid - 1, 0, -1):
        rig.add(f"body{i}", f"body{i + 1}", at(s_joint[i - 1]))
    for i in range(mid + 1, n + 1):
        rig.add(f"body{i}", f"body{i - 1}", at(s_joint[i - 1]))
    s = np.linspace(0, total, int(np.ceil(total / (0.3 * R))) + 1)  # dense control points: the bend stays round
    owners = []
    for m in (s[:-1] + s[1:]) / 2:
        i = int(np.searchsorted(s_joint, m))  # between body i and body i+1 (0: before body1, n: after bodyn)
        nearer_root = i + 1 if i < mid else i  # it moves the segment
        owners.append(rig[f"body{min(max(nearer_root, 1), n)}"])
    radii = r * np.interp(s, [0, s_joint[0], s_joint[1], s_joint[-2], total], [0.5, 1.15, 1.0, 0.8, 0.2])
    return [Tube(np.array([at(x) for x in s]), radii, owners, sides=10, cap=0.9)], 0.4 * r


def _snake_clips(rng: np.random.Generator, rig: _Rig) -> list[Clip]:
    dur = float(rng.uniform(1.0, 1.3))
    ph, amp, k = _phase(dur), rng.uniform(0.12, 0.2), rng.uniform(0.5, 0.8)
    rot = {}
    for name in rig.names:
        i = int(name[4:])
        rot[name] = axis_angle_quat(Y, amp * np.sin(ph - k * i))
    return [_clip("slither", rig, dur, rot)]


def _bird(rng: np.random.Generator, rig: _Rig):
    L, rb, span = rng.uniform(0.55, 0.75), rng.uniform(0.12, 0.16), rng.uniform(0.6, 0.9)
    h = rng.uniform(0.5, 0.8)
    rig.add("body", None, (0, h, 0))
    rig.add("chest", "body", (L * 0.3, h + 0.02, 0))
    rig.add("neck", "chest", (L * 0.5, h + rb * 0.7, 0))
    rig.add("head", "neck", (L * 0.55 + rb * 0.4, h + rb * 1.4, 0))
    rig.add("tail", "body", (-L * 0.4, h, 0))
    tip = np.array((-L * 0.4 - rng.uniform(0.2, 0.35), h + 0.03, 0))
    beak = rig.pos[rig["head"]] + (rb * 1.2, -rb * 0.2, 0)
    pts = [tip] + [rig.pos[rig[n]] for n in ("tail", "body", "chest", "neck", "head")] + [beak]
    names = [None, "tail", "body", "chest", "neck", "head", None]
    parts = [Tube(np.array(pts), np.array([rb * 0.25, rb * 0.5, rb, rb * 0.95, rb * 0.5, rb * 0.6, rb * 0.1]), _chain(pts, names, rig), sides=16)]
    chord = rng.uniform(0.5, 0.7) * L / 2
    for side, sz in (("L", 1.0), ("R", -1.0)):
        rig.add(f"wing{side}", "chest", (L * 0.1, h + rb * 0.3, sz * rb * 0.6))
        el = rig.add(f"wingmid{side}", f"wing{side}", (L * 0.08, h + rb * 0.4, sz * (rb + span * 0.45)))
        wr = rig.add(f"wingtip{side}", f"wingmid{side}", (L * 0.04, h + rb * 0.4, sz * (rb + span * 0.8)))
        wpts = [np.array((L * 0.1, h + rb * 0.45, sz * rb * 0.85)), rig.pos[el], rig.pos[wr], np.array((-L * 0.05, h + rb * 0.4, sz * (rb + span)))]
        parts.append(Tube(np.array(wpts), np.array([rb * 0.38, chord, chord * 0.8, chord * 0.3]), _chain(wpts, [f"wing{side}", f"wingmid{side}", f"wingtip{side}", None], rig),
                          parent=0, flat_axis=(0, 1, 0), flat_ratio=0.15, cap=0.3))  # fmt: skip
    return parts, 0.03 * (L + 2 * span) / 2


def _bird_clips(rng: np.random.Generator, rig: _Rig) -> list[Clip]:
    dur = float(rng.uniform(0.8, 1.1))
    ph, amp = _phase(dur), rng.uniform(0.7, 1.0)
    rot = {"tail": axis_angle_quat(Z, 0.15 * np.sin(ph + 1.0)), "head": axis_angle_quat(Z, 0.1 * np.sin(ph - 0.5))}
    for side, sx in (("L", -1.0), ("R", 1.0)):
        rot[f"wing{side}"] = axis_angle_quat(X, sx * amp * np.sin(ph))
        rot[f"wingmid{side}"] = axis_angle_quat(X, sx * 0.45 * amp * np.sin(ph - 0.7))
        rot[f"wingtip{side}"] = axis_angle_quat(X, sx * 0.35 * amp * np.sin(ph - 1.4))
    bob = np.zeros((len(ph), 3))
    bob[:, 1] = -0.04 * np.sin(ph)
    return [_clip("flap", rig, dur, rot, bob)]


def _machine(rng: np.random.Generator, rig: _Rig):
    bw, bh = rng.uniform(0.5, 0.7), rng.uniform(0.12, 0.2)
    tr, th = rng.uniform(0.12, 0.17), rng.uniform(0.15, 0.25)
    a1, a2, aw = rng.uniform(0.45, 0.65), rng.uniform(0.4, 0.55), rng.uniform(0.07, 0.1)
    y_sh = bh + th + aw * 0.8
    rig.add("base", None, (0, 0, 0))
    rig.add("turret", "base", (0, bh, 0))
    rig.add("shoulder", "turret", (0, y_sh, 0))
    rig.add("elbow", "shoulder", (a1, y_sh, 0))
    rig.add("wrist", "elbow", (a1 + a2, y_sh, 0))
    fl = rng.uniform(0.1, 0.16)
    fw = aw * 0.45
    gap = 0.004 * (a1 + a2)
    rig.add("fingerL", "wrist", (a1 + a2 + aw, y_sh, fw / 2 + gap / 2))
    rig.add("fingerR", "wrist", (a1 + a2 + aw, y_sh, -fw / 2 - gap / 2))
    parts: list = [Box((0, bh / 2, 0), (bw, bh, bw * rng.uniform(0.8, 1.0)), rig["base"], cells=4),
                   Tube(np.array([(0, bh, 0), (0, bh + th / 2, 0), (0, bh + th, 0)]), np.full(3, tr), [rig["turret"]] * 2, sides=16, cap=0.0),
                   Box((0, y_sh, 0), (aw * 1.6, aw * 1.6, aw * 1.9), rig["shoulder"]),
                   Box((a1 / 2 + aw * 0.4, y_sh, 0), (a1 - aw * 0.8, aw, aw), rig["shoulder"], cells=5),
                   Box((a1, y_sh, 0), (aw * 1.3, aw * 1.3, aw * 1.4), rig["elbow"]),
                   Box((a1 + a2 / 2 + aw * 0.35, y_sh, 0), (a2 - aw * 0.7, aw * 0.85, aw * 0.85), rig["elbow"], cells=5),
                   Box((a1 + a2 + aw * 0.5, y_sh, 0), (aw, aw * 1.2, aw * 1.4), rig["wrist"])]  # fmt: skip
    for side, sz in (("L", 1.0), ("R", -1.0)):
        parts.append(Box((a1 + a2 + aw + fl / 2, y_sh, sz * (fw / 2 + gap / 2)), (fl, aw * 0.6, fw), rig[f"finger{side}"]))
    return parts, 0.03


def _machine_clips(rng: np.random.Generator, rig: _Rig) -> list[Clip]:
    dur = float(rng.uniform(1.1, 1.4))
    ph = _phase(dur)
    yaw, lift = rng.uniform(0.6, 1.1), rng.uniform(0.3, 0.5)
    opening = 0.5 - 0.5 * np.cos(2 * ph)
    rot = {"turret": axis_angle_quat(Y, yaw * np.sin(ph)), "shoulder": axis_angle_quat(Z, lift * (0.5 + 0.5 * np.sin(ph + 1.0))),
           "elbow": axis_angle_quat(Z, -0.6 * lift * (0.5 + 0.5 * np.sin(ph + 2.0))), "wrist": axis_angle_quat(X, 0.9 * np.sin(ph)),
           "fingerL": axis_angle_quat(Y, -0.45 * opening), "fingerR": axis_angle_quat(Y, 0.45 * opening)}  # fmt: skip
    return [_clip("work", rig, dur, rot)]


_BUILDERS = {"quadruped": (_quadruped, _quadruped_clips), "biped": (_biped, _biped_clips), "snake": (_snake, _snake_clips),
             "bird": (_bird, _bird_clips), "machine": (_machine, _machine_clips)}  # fmt: skip


def make_character(seed: int, kind: str | None = None, *, subdivide: int = 0) -> Character:
    """The character of ``seed`` (kind ``KINDS[seed % 5]`` unless given); the same seed always gives the
    same character, bit for bit. ``subdivide``: times its surface is split into 4 (:func:`subdivided`; a
    dense asset with the same shape, skeleton and motion; 0: none)."""
    kind = KINDS[seed % len(KINDS)] if kind is None else kind
    if kind not in _BUILDERS:
        raise ValueError(f"unknown character kind {kind!r} (one of {', '.join(KINDS)})")
    rng = np.random.default_rng([int(seed), KINDS.index(kind)])
    rig = _Rig()
    body, clips = _BUILDERS[kind]
    parts, spacing = body(rng, rig)
    name = f"{kind}{seed}"
    texture = character_texture(len(parts), rng, machine=kind == "machine")
    mesh, joints, weights = build_parts(parts, spacing, texture, name=name)
    if subdivide < 0:
        raise ValueError(f"subdivide must be >= 0, got {subdivide}")
    for _ in range(subdivide):
        mesh, joints, weights = subdivided(mesh, joints, weights)
    return Character(name, kind, int(seed), mesh, rig.skeleton(), joints, weights, clips(rng, rig))


def subdivided(mesh: Mesh, joints: np.ndarray, weights: np.ndarray) -> tuple[Mesh, np.ndarray, np.ndarray]:
    """``mesh`` with every triangle split into 4 at its edges' midpoints (``trimesh.remesh.subdivide``; the
    surface does not move), and its skin: a midpoint takes the mean of its edge ends' UVs and skin weights,
    of which the :data:`~motion4d.data.part_mesh.MAX_INFLUENCES` largest are kept and renormalised."""
    import trimesh

    n_joints = int(joints.max()) + 1
    dense = np.zeros((mesh.num_vertices, n_joints))
    np.add.at(dense, (np.arange(mesh.num_vertices)[:, None], joints), weights)
    attrs = {"skin": dense}
    if mesh.uvs is not None:
        attrs["uv"] = mesh.uvs.astype(np.float64)
    vertices, faces, attrs = trimesh.remesh.subdivide(mesh.vertices.astype(np.float64), mesh.faces, vertex_attributes=attrs)
    k = joints.shape[1]
    new_joints = np.argsort(-attrs["skin"], axis=1, kind="stable")[:, :k]
    new_weights = np.take_along_axis(attrs["skin"], new_joints, axis=1)
    new_weights /= new_weights.sum(1, keepdims=True)
    face_materials = None if mesh.face_materials is None else np.repeat(mesh.face_materials, 4)
    out = Mesh(vertices.astype(np.float32), np.asarray(faces, dtype=np.int64), uvs=attrs["uv"].astype(np.float32) if "uv" in attrs else None,
               materials=mesh.materials, face_materials=face_materials, name=mesh.name)  # fmt: skip
    return out, new_joints.astype(joints.dtype), new_weights
