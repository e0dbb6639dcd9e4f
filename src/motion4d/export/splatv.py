"""The ``.splatv`` file: animated Gaussians for the web player, in splaTV's container.

Layout (little-endian), as antimatter15/splaTV reads it:

- ``u32`` magic ``0x674b``, ``u32`` length L of the JSON that follows, L bytes of UTF-8 JSON: a list of
  chunk descriptors, each ``{"type", "size", ...}``; then each chunk's ``size`` bytes, in list order.
- Chunk ``"splat"`` (first): ``texwidth`` 4096 × ``texheight`` texels of RGBA32UI, 1024 records per
  texture row, 64 bytes (16 ``u32``) per record: ``[0:3]`` position f32 · ``[3:5]`` quaternion wxyz f16
  · ``[5:7]`` scales f16 (x, y | z, 0) · ``[7]`` RGBA8 (DC colour, opacity) · ``[8:13]`` nine f16 motion
  coefficients (position += m[0:3]·dτ + m[3:6]·dτ² + m[6:9]·dτ³) · ``[13:15]`` f16 quaternion velocity
  (quat += ω·dτ, then normalised) · ``[15]`` f16 temporal centre c and scale s: dτ = τ − c, opacity ×
  exp(−(dτ/s)²). Its ``cameras`` are splaTV's (camera→world ``rotation`` rows, centre ``position``,
  ``fx``, ``fy``, ``width``, ``height``).
- Our header, ``"motion4d"`` in the splat descriptor (splaTV ignores it): ``version``, ``kind``,
  ``time_range`` [t0, t1] (record time τ = (t − t0)/(t1 − t0), so τ ∈ [0, 1], splaTV's own clock), ``fps``,
  ``count`` (records; the texture is padded), ``sh_degree``, ``rasterize_mode``, ``background``,
  ``cameras`` (ours: ``viewmat`` world→camera OpenCV rows, ``K``, ``width``, ``height``), ``segments``
  and whatever the writer adds (``baking``).
- Chunk ``"motion4d.sh"``: the SH coefficients [K,3] of each record as f16, ``texels_per_record`` RGBA32UI
  texels each (8 halves a texel), record i from texel i·P of a ``texwidth``-wide texture.
- ``segments`` (baked models): a list of ``{"tau0", "tau1", "start", "count"}``; records are grouped by
  segment and at τ only the segment holding τ is drawn, with temporal weight 1 (the f16 temporal scale is
  set for splaTV readers, which blend neighbouring segments). Without segments every record is drawn
  with its Gaussian temporal weight (4D-Rotor Gaussians map onto that exactly).

:func:`splatv_frame` is the player's evaluation in PyTorch, the reference twin of the WebGL shader.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from motion4d.atomic import atomic_write_bytes
from motion4d.errors import DataError
from motion4d.gaussians import GaussianFrame
from motion4d.gaussians.activations import SH_C0

log = logging.getLogger(__name__)

MAGIC = 0x674B
VERSION = 1
TEXWIDTH = 4096
"""Texels per texture row (splaTV's: 1024 records of 4 texels)."""
F16_MAX = 65504.0
MAX_TEXTURE_ROWS = 4096
"""Texture rows every WebGL2 implementation supports (MAX_TEXTURE_SIZE ≥ 4096 in practice): 4M records."""


@dataclass
class SplatvRecords:
    """M records (a Gaussian, or a Gaussian in one time segment) in the file's fields, at full precision."""

    means: Tensor
    """[M,3] positions at the temporal centre."""
    quats: Tensor
    """[M,4] rotations, wxyz, at the temporal centre (need not be normalised)."""
    scales: Tensor
    """[M,3] standard deviations."""
    opacities: Tensor
    """[M] opacities in [0,1] (at the temporal centre)."""
    motion: Tensor
    """[M,9] position coefficients of dτ (x,y,z), dτ² (x,y,z), dτ³ (x,y,z)."""
    omega: Tensor
    """[M,4] quaternion velocity (per unit τ)."""
    trbf_center: Tensor
    """[M] temporal centres c (record time τ)."""
    trbf_scale: Tensor
    """[M] temporal scales s > 0: opacity × exp(−((τ − c)/s)²) when the file has no segments."""
    sh: Tensor
    """[M,K,3] SH colour coefficients."""

    def __len__(self) -> int:
        return self.means.shape[0]

    def __post_init__(self):
        m = self.means.shape[0]
        widths = {"means": (3,), "quats": (4,), "scales": (3,), "opacities": (), "motion": (9,), "omega": (4,),
                  "trbf_center": (), "trbf_scale": ()}  # fmt: skip
        for name, last in widths.items():
            x = getattr(self, name)
            if tuple(x.shape) != (m, *last):
                raise ValueError(f"{name} must have shape {[m, *last]}, got {list(x.shape)}")
        if self.sh.dim() != 3 or self.sh.shape[0] != m or self.sh.shape[2] != 3 or self.sh.shape[1] not in (1, 4, 9, 16):
            raise ValueError(f"sh must have shape [M,K,3] with K in 1,4,9,16, got {list(self.sh.shape)}")

    def select(self, rows: Tensor) -> "SplatvRecords":
        """The records at ``rows`` (bool mask [M] or indices)."""
        return SplatvRecords(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @staticmethod
    def cat(parts: list["SplatvRecords"]) -> "SplatvRecords":
        """All records of ``parts``, in order."""
        return SplatvRecords(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(SplatvRecords)})


def record_time(t: float, time_range: tuple[float, float]) -> float:
    """τ of model time ``t``: (t − t0)/(t1 − t0); 0 for a static model (t1 = t0)."""
    t0, t1 = time_range
    return (float(t) - t0) / (t1 - t0) if t1 > t0 else 0.0


def _halves(x: np.ndarray) -> np.ndarray:
    """[M,2k] floats → [M,k] u32, each two f16 (the first in the low bits, as GLSL unpackHalf2x16)."""
    h = np.clip(np.nan_to_num(x.astype(np.float64)), -F16_MAX, F16_MAX).astype("<f2")
    return np.ascontiguousarray(h).view("<u4")


def _unhalves(u: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_halves`: [M,k] u32 → [M,2k] float32."""
    return np.ascontiguousarray(u.astype("<u4")).view("<f2").astype(np.float32)


def _padded(rows: np.ndarray, per_row: int) -> tuple[np.ndarray, int]:
    """``rows [M,per_row]`` u32 laid out in a TEXWIDTH-texel-wide RGBA32UI texture: (flat u32 data, height)."""
    total = rows.size // 4  # texels
    height = max(1, math.ceil(total / TEXWIDTH))
    flat = np.zeros(height * TEXWIDTH * 4, dtype="<u4")
    flat[: rows.size] = rows.reshape(-1)
    return flat, height


def pack_records(r: SplatvRecords) -> np.ndarray:
    """[M,16] u32: the 64-byte splaTV record of each of ``r``."""
    m = len(r)
    out = np.zeros((m, 16), dtype="<u4")
    out[:, 0:3] = r.means.detach().cpu().numpy().astype("<f4").view("<u4")
    q = torch.nn.functional.normalize(r.quats.detach().double(), dim=-1).cpu().numpy()
    out[:, 3:5] = _halves(q)
    s = r.scales.detach().double().cpu().numpy()
    out[:, 5:7] = _halves(np.concatenate([s, np.zeros((m, 1))], 1))
    rgb = (r.sh[:, 0].detach().double() * SH_C0 + 0.5).cpu().numpy()
    rgba = np.concatenate([rgb, r.opacities.detach().double().cpu().numpy()[:, None]], 1)
    out[:, 7] = np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8).view("<u4")[:, 0]
    out[:, 8:13] = _halves(np.concatenate([r.motion.detach().double().cpu().numpy(), np.zeros((m, 1))], 1))
    out[:, 13:15] = _halves(r.omega.detach().double().cpu().numpy())
    trbf = torch.stack([r.trbf_center, r.trbf_scale.clamp(min=6.2e-5)], 1)
    out[:, 15] = _halves(trbf.detach().double().cpu().numpy())[:, 0]
    return out


def unpack_records(words: np.ndarray, sh: np.ndarray) -> SplatvRecords:
    """Records (float32 tensors) of ``words [M,16]`` u32 and ``sh [M,K,3]``: what the player reads."""
    rgba = words[:, 7:8].copy().view(np.uint8).astype(np.float32) / 255.0
    motion = _unhalves(words[:, 8:13])[:, :9]
    trbf = _unhalves(words[:, 15:16])
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return SplatvRecords(
        means=t(words[:, 0:3].copy().view("<f4")), quats=t(_unhalves(words[:, 3:5])), scales=t(_unhalves(words[:, 5:7])[:, :3]),
        opacities=t(rgba[:, 3]), motion=t(motion), omega=t(_unhalves(words[:, 13:15])), trbf_center=t(trbf[:, 0]),
        trbf_scale=t(trbf[:, 1]), sh=t(sh),
    )  # fmt: skip


def splatv_cameras(cameras: list[dict]) -> list[dict]:
    """splaTV's camera entries of ours (``viewmat`` [4][4] world→camera OpenCV, ``K``, ``width``, ``height``)."""
    out = []
    for i, c in enumerate(cameras):
        V = np.asarray(c["viewmat"], dtype=np.float64)
        R = V[:3, :3].T  # camera→world
        out.append({"id": i, "img_name": c.get("name", f"view{i}"), "width": int(c["width"]), "height": int(c["height"]),
                    "position": (-R @ V[:3, 3]).tolist(), "rotation": R.tolist(), "fx": float(c["K"][0][0]), "fy": float(c["K"][1][1])})  # fmt: skip
    return out


def encode_splatv(records: SplatvRecords, header: dict) -> bytes:
    """The ``.splatv`` bytes of ``records`` with our ``header`` (see the module docstring; ``count``,
    ``sh_degree`` and ``version`` are filled in here)."""
    words = pack_records(records)
    splat, height = _padded(words, 16)
    if height > MAX_TEXTURE_ROWS:
        log.warning("%d records need a %d-row texture; WebGL guarantees %d (the player may not open it)", len(records), height, MAX_TEXTURE_ROWS)
    k = records.sh.shape[1]
    per = math.ceil(3 * k / 8)
    halves = np.zeros((len(records), 8 * per), dtype=np.float64)
    halves[:, : 3 * k] = records.sh.detach().double().reshape(len(records), -1).cpu().numpy()
    sh, sh_height = _padded(_halves(halves), 4 * per)
    meta = {"version": VERSION, **header, "count": len(records), "sh_degree": math.isqrt(k) - 1}
    chunks = [
        {"type": "splat", "size": splat.nbytes, "texwidth": TEXWIDTH, "texheight": height,
         "cameras": splatv_cameras(meta.get("cameras", [])), "motion4d": meta},
        {"type": "motion4d.sh", "size": sh.nbytes, "texwidth": TEXWIDTH, "texheight": sh_height, "texels_per_record": per},
    ]  # fmt: skip
    text = json.dumps(chunks, separators=(",", ":")).encode("utf-8")
    return b"".join([struct.pack("<II", MAGIC, len(text)), text, splat.tobytes(), sh.tobytes()])


def write_splatv(path: str | Path, records: SplatvRecords, header: dict) -> int:
    """Write ``records`` and ``header`` to ``path`` (atomically); returns the file size in bytes."""
    data = encode_splatv(records, header)
    atomic_write_bytes(path, data)
    return len(data)


def decode_splatv(data: bytes, where: str = "splatv") -> tuple[SplatvRecords, dict]:
    """``(records, our header)`` of ``.splatv`` bytes; a DataError starting with ``where`` if they are not one."""
    if len(data) < 8 or struct.unpack_from("<I", data, 0)[0] != MAGIC:
        raise DataError(f"{where}: not a .splatv file (no 0x674b magic)")
    n = struct.unpack_from("<I", data, 4)[0]
    try:
        chunks = json.loads(data[8 : 8 + n].decode("utf-8"))
        offset, body = 8 + n, {}
        for c in chunks:
            body[c["type"]] = (c, data[offset : offset + int(c["size"])])
            offset += int(c["size"])
        desc, splat = body["splat"]
        meta = desc.get("motion4d")
        if meta is None:
            raise ValueError("no motion4d header (a splaTV file from elsewhere)")
        count = int(meta["count"])
        if offset > len(data) or len(splat) < count * 64:
            raise ValueError(f"{len(data)} bytes, truncated")
        words = np.frombuffer(splat, dtype="<u4")[: count * 16].reshape(count, 16)
        sh_desc, sh_bytes = body["motion4d.sh"]
        per, k = int(sh_desc["texels_per_record"]), (int(meta["sh_degree"]) + 1) ** 2
        sh_words = np.frombuffer(sh_bytes, dtype="<u4")[: count * 4 * per].reshape(count, 4 * per)
        sh = _unhalves(sh_words)[:, : 3 * k].reshape(count, k, 3)
        for seg in meta.get("segments") or []:
            if not (0 <= int(seg["start"]) and int(seg["start"]) + int(seg["count"]) <= count and seg["tau0"] <= seg["tau1"]):
                raise ValueError(f"segment {seg} outside the {count} records")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise DataError(f"{where}: damaged .splatv file ({e})") from None
    return unpack_records(words, sh), meta


def read_splatv(path: str | Path) -> tuple[SplatvRecords, dict]:
    """``(records, header)`` of a ``.splatv`` file written by :func:`write_splatv`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return decode_splatv(path.read_bytes(), str(path))


def segment_rows(header: dict, tau: float, n: int) -> tuple[int, int, bool]:
    """``(start, count, segmented)``: the records drawn at record time ``tau`` (of ``n``)."""
    segments = header.get("segments") or []
    if not segments:
        return 0, n, False
    k = 0
    while k + 1 < len(segments) and tau >= segments[k]["tau1"]:
        k += 1
    return int(segments[k]["start"]), int(segments[k]["count"]), True


def splatv_frame(records: SplatvRecords, header: dict, t: float) -> GaussianFrame:
    """The Gaussians the player draws at model time ``t`` (the reference twin of its vertex shader)."""
    tau = record_time(t, tuple(header.get("time_range", (0.0, 0.0))))
    start, count, segmented = segment_rows(header, tau, len(records))
    r = records.select(torch.arange(start, start + count))
    dt = (tau - r.trbf_center)[:, None]
    m = r.motion
    means = r.means + m[:, 0:3] * dt + m[:, 3:6] * dt**2 + m[:, 6:9] * dt**3
    quats = torch.nn.functional.normalize(r.quats + r.omega * dt, dim=-1)
    weight = torch.ones_like(r.opacities) if segmented else torch.exp(-((dt[:, 0] / r.trbf_scale) ** 2))
    degree = math.isqrt(r.sh.shape[1]) - 1
    return GaussianFrame(means, quats, r.scales, r.opacities * weight, r.sh, degree,
                         rasterize_mode=header.get("rasterize_mode", "classic"))  # fmt: skip
