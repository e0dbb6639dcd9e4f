"""Models → ``.splatv`` records: 4D-Rotor Gaussians exactly, static Gaussians as they are, anything else baked.

**4D-Rotor Gaussians** map onto a splaTV record exactly: the slice at t has mean μ_xyz + v·(t − μ_t) (linear
in t), a covariance that does not depend on t, and opacity × exp(−½ (t − μ_t)²/Σ_tt). In record time τ =
(t − t0)/D (D = t1 − t0): motion m[0:3] = v·D, temporal centre c = (μ_t − t0)/D and scale s = √(2Σ_tt)/D,
since exp(−((τ − c)/s)²) = exp(−½ (t − μ_t)²/Σ_tt). The centre is stored as f16, so the position is given
at the rounded centre (μ_xyz + v·D·(c₁₆ − c)) and the trajectory stays exact.

**Other models** (deformation fields, skinned and mesh Gaussians: anything with ``at_time``) are baked per
time segment: τ ∈ [0, 1] is cut into equal segments, and each Gaussian gets one record per segment, at its
centre c: position, rotation, scales and opacity of ``at_time`` there, a cubic in dτ fitted (least squares,
through the centre) to its positions at ``samples`` times across the segment, and a quaternion velocity
fitted the same way to its rotations (for models that give covariances, the rotations are their eigenvector
frames, matched column by column to the centre's). Scales, opacity and colour are held for the segment.
:func:`baking_psnr` measures what that costs, rendering both with our rasterizer.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import replace

import torch
from torch import Tensor

from motion4d.export.splatv import F16_MAX, SplatvRecords, splatv_frame
from motion4d.gaussians.rotations import covars_to_quats_scales, quat_to_rotmat, rotmat_to_quat
from motion4d.gaussians.rotor_math import conditional_terms, covariance_factor
from motion4d.render.frame import render_frame
from motion4d.render.projection import ALPHA_THRESHOLD

log = logging.getLogger(__name__)

DEFAULT_SEGMENTS = 8
"""Segments of models that do not say how their motion is keyed (deformation fields)."""


def _duration(time_range: tuple[float, float]) -> float:
    t0, t1 = time_range
    return t1 - t0 if t1 > t0 else 1.0


def rotor4d_records(model, time_range: tuple[float, float]) -> SplatvRecords:
    """The exact records of a :class:`~motion4d.gaussians.rotor4d.Gaussians4DRotor` (see the module docstring)."""
    with torch.no_grad():
        p = {k: v.detach().double() for k, v in model.params.items()}
        velocity, cov3, s_tt = conditional_terms(covariance_factor(p["rotors"], p["log_scales"].exp()))
        D = _duration(time_range)
        center = (p["means"][:, 3] - time_range[0]) / D
        center16 = center.clamp(-F16_MAX, F16_MAX).half().double()
        quats, scales = covars_to_quats_scales(cov3)
        n = len(model)
        zeros = torch.zeros(n, 6, dtype=torch.float64)
        return SplatvRecords(
            means=p["means"][:, :3] + velocity * D * (center16 - center)[:, None], quats=quats, scales=scales,
            opacities=torch.sigmoid(p["opacity_logits"]), motion=torch.cat([velocity * D, zeros], 1),
            omega=torch.zeros(n, 4, dtype=torch.float64), trbf_center=center16, trbf_scale=(2 * s_tt).sqrt() / D,
            sh=torch.cat([p["sh0"], p["shN"]], 1),
        )  # fmt: skip


def static_records(frame) -> SplatvRecords:
    """Records of one :class:`~motion4d.gaussians.GaussianFrame`, unchanging in time."""
    quats, scales = _quats_scales(frame)
    n = len(frame)
    d = torch.float64
    return SplatvRecords(
        means=frame.means.detach().double(), quats=quats, scales=scales, opacities=frame.opacities.detach().double(),
        motion=torch.zeros(n, 9, dtype=d), omega=torch.zeros(n, 4, dtype=d), trbf_center=torch.zeros(n, dtype=d),
        trbf_scale=torch.full((n,), F16_MAX, dtype=d), sh=frame.sh.detach().double(),
    )  # fmt: skip


def _quats_scales(frame) -> tuple[Tensor, Tensor]:
    if frame.quats is not None and frame.scales is not None:
        return torch.nn.functional.normalize(frame.quats.detach().double(), dim=-1), frame.scales.detach().double()
    return covars_to_quats_scales(frame.covars.detach().double())


_PERMUTATIONS = torch.tensor(list(itertools.permutations(range(3))))  # [6,3]


def _tracked_rotations(covars: Tensor, reference: Tensor) -> Tensor:
    """Rotations [N,3,3] whose columns are eigenvectors of ``covars [N,3,3]``, ordered and signed to be
    closest to ``reference [N,3,3]``'s columns (the eigen-frame followed through time)."""
    _, vecs = torch.linalg.eigh(0.5 * (covars + covars.transpose(1, 2)))
    dots = reference.transpose(1, 2) @ vecs  # [N,3,3]: reference column i · eigenvector j
    score = dots.abs()[:, torch.arange(3)[None], _PERMUTATIONS].sum(-1)  # [N,6]
    perm = _PERMUTATIONS[score.argmax(1)]  # [N,3]
    picked = torch.gather(vecs, 2, perm[:, None, :].expand(-1, 3, -1))
    signs = torch.sign((reference * picked).sum(1))
    picked = picked * torch.where(signs == 0, torch.ones_like(signs), signs)[:, None, :]
    flip = torch.linalg.det(picked) < 0
    if flip.any():  # an improper frame: flip the column least aligned with the reference
        worst = (reference * picked).sum(1).abs().argmin(1)
        sign = torch.ones_like(picked[:, 0])
        sign[flip, worst[flip]] = -1.0
        picked = picked * sign[:, None, :]
    return picked


def _fit(dts: Tensor, values: Tensor, powers: int) -> Tensor:
    """Least-squares coefficients [powers, ...] of Σ_p c_p·dtᵖ⁺¹ fitted to ``values [S, ...]`` at ``dts [S]``."""
    basis = torch.stack([dts ** (p + 1) for p in range(powers)], 1)  # [S,P]
    flat = values.reshape(values.shape[0], -1)
    coeffs = torch.linalg.lstsq(basis, flat).solution  # [P, X]
    return coeffs.reshape((powers,) + values.shape[1:])


@torch.no_grad()
def bake_segment(model, time_range: tuple[float, float], tau0: float, tau1: float, *, samples: int = 4) -> SplatvRecords:
    """One record per Gaussian of ``model`` for record times [``tau0``, ``tau1``] (see the module docstring);
    Gaussians below 1/255 opacity at every sample are left out."""
    D = _duration(time_range)
    center, half = 0.5 * (tau0 + tau1), 0.5 * (tau1 - tau0)
    at = lambda tau: model.at_time(time_range[0] + tau * D)  # noqa: E731
    frame = at(center)
    quats, scales = _quats_scales(frame)
    means = frame.means.detach().double()
    dts = torch.linspace(-half, half, samples + 1, dtype=torch.float64)
    dts = dts[dts.abs() > 1e-12 * max(half, 1e-30)] if half > 0 else dts[:0]
    peak = frame.opacities.detach().double()
    motion, omega = torch.zeros(len(frame), 9, dtype=torch.float64), torch.zeros(len(frame), 4, dtype=torch.float64)
    if len(dts):
        frames = [at(center + float(dt)) for dt in dts]
        offsets = torch.stack([f.means.detach().double() - means for f in frames])  # [S,N,3]
        motion = _fit(dts, offsets, 3).permute(1, 0, 2).reshape(len(frame), 9)
        if frame.quats is not None:
            qs = torch.stack([torch.nn.functional.normalize(f.quats.detach().double(), dim=-1) for f in frames])
        else:
            ref = quat_to_rotmat(quats)
            qs = torch.stack([rotmat_to_quat(_tracked_rotations(f.covars.detach().double(), ref)) for f in frames])
        qs = torch.where(((qs * quats).sum(-1, keepdim=True) < 0), -qs, qs)
        omega = _fit(dts, qs - quats, 1)[0]
        peak = torch.stack([peak, *(f.opacities.detach().double() for f in frames)]).max(0).values
    records = SplatvRecords(
        means=means, quats=quats, scales=scales, opacities=frame.opacities.detach().double(), motion=motion, omega=omega,
        trbf_center=torch.full((len(frame),), center, dtype=torch.float64),
        trbf_scale=torch.full((len(frame),), max(1.2 * half, 6.2e-5), dtype=torch.float64), sh=frame.sh.detach().double(),
    )  # fmt: skip
    return records.select(peak >= ALPHA_THRESHOLD)


def bake_records(model, time_range: tuple[float, float], segments: int, *, samples: int = 4) -> tuple[SplatvRecords, list[dict]]:
    """All segments' records of ``model`` over ``time_range`` and the header's ``segments`` list."""
    if segments < 1:
        raise ValueError(f"--segments must be >= 1, got {segments}")
    parts, table, start = [], [], 0
    for k in range(segments):
        tau0, tau1 = k / segments, (k + 1) / segments
        part = bake_segment(model, time_range, tau0, tau1, samples=samples)
        parts.append(part)
        table.append({"tau0": tau0, "tau1": tau1, "start": start, "count": len(part)})
        start += len(part)
    return SplatvRecords.cat(parts), table


def default_segments(model) -> int:
    """Segments for baking ``model``: one per keyframe interval of a deformation graph, else :data:`DEFAULT_SEGMENTS`."""
    graph = getattr(model, "graph", None)
    if graph is not None and getattr(graph, "num_frames", 0) > 1:
        return int(graph.num_frames) - 1
    return DEFAULT_SEGMENTS


def model_records(model, kind: str, time_range: tuple[float, float], segments: int | None = None) -> tuple[SplatvRecords, dict]:
    """``(records, header fields)`` of any model: exact for "rotor4d" and static models, else baked into
    ``segments`` (default :func:`default_segments`). The header fields: ``kind``, ``time_range``,
    ``rasterize_mode``, ``segments`` and ``baked`` (whether the records approximate the model)."""
    t0, t1 = time_range
    with torch.no_grad():
        frame = model.at_time(t0)
    header = {"kind": kind, "time_range": [float(t0), float(t1)], "rasterize_mode": frame.rasterize_mode}
    if kind == "rotor4d":
        records = rotor4d_records(model, time_range)
        return records.select(records.opacities >= ALPHA_THRESHOLD), {**header, "segments": None, "baked": False}
    if kind == "gaussians3d" or not t1 > t0:
        return static_records(frame), {**header, "segments": None, "baked": kind != "gaussians3d"}
    n = segments if segments is not None else default_segments(model)
    records, table = bake_records(model, time_range, n)
    return records, {**header, "segments": table, "baked": True}


def _psnr(a: Tensor, b: Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf


@torch.no_grad()
def baking_psnr(model, records: SplatvRecords, header: dict, viewmats: Tensor, Ks: Tensor, width: int, height: int, times, *,
                background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> dict:  # fmt: skip
    """PSNR (dB) of the records (as :func:`splatv_frame` evaluates them) against ``model`` itself, both
    rendered by our rasterizer into cameras ``viewmats [C,4,4]``, ``Ks [C,3,3]`` at each of ``times``:
    ``{"mean_db", "min_db", "images"}`` (inf where identical)."""
    bg = torch.tensor(background, dtype=torch.float32)
    values = []
    for t in times:
        ours = render_frame(_float(model.at_time(float(t))), viewmats, Ks, width, height, background=bg).rgb.clamp(0, 1)
        baked = render_frame(_float(splatv_frame(records, header, float(t))), viewmats, Ks, width, height, background=bg).rgb.clamp(0, 1)
        values += [_psnr(a, b) for a, b in zip(ours, baked)]
    finite = [v for v in values if math.isfinite(v)]
    mean = -10.0 * math.log10(sum(10 ** (-v / 10) for v in finite) / len(values)) if finite else math.inf
    return {"mean_db": round(mean, 2), "min_db": round(min(values), 2), "images": len(values)}


def _float(frame):
    """``frame`` in float32 (records are float64 before quantisation)."""
    f = lambda x: None if x is None else x.detach().float()  # noqa: E731
    return replace(frame, means=f(frame.means), quats=f(frame.quats), scales=f(frame.scales), opacities=f(frame.opacities), sh=f(frame.sh),
                   covars=f(frame.covars))  # fmt: skip
