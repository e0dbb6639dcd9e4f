"""``motion4d export --format splatv | html`` and the page ``motion4d view`` serves: a run's model for the web.

The ``.splatv`` holds the model's records (:mod:`motion4d.export.splatv`; exact for 4D-Rotor Gaussians, baked
per time segment for other models, :mod:`motion4d.export.splatv_bake`) and the run's test cameras, framed
as ``motion4d render RUN --view I`` frames them (:func:`motion4d.pipelines.render_video.dataset_cameras`).
Every export renders the records and the model with our rasterizer at a few times from two of those
cameras (at most 256 px) and reports the PSNR between them (``baking_psnr_db``) with the file size; a
deformation field exported without ``--segments`` takes the fewest segments (1, 2, 4, 8, 16) whose worst
check image reaches 40 dB.
The HTML page (:mod:`motion4d.export.html`) holds the ``.splatv`` and, for animate runs, the animated GLB.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from motion4d import __version__
from motion4d.atomic import atomic_write_bytes, atomic_write_text
from motion4d.data.gltf import load_gltf
from motion4d.export.html import player_html
from motion4d.export.m4d import ModelInfo
from motion4d.export.splatv import SplatvRecords, encode_splatv
from motion4d.export.splatv_bake import baking_psnr, model_records
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.render_video import dataset_cameras
from motion4d.render.cameras import OrbitRig, intrinsics_from_fov, orbit_viewmats

log = logging.getLogger(__name__)

FORMATS = ("splatv", "html")
ANIMATION_FILE = "animation.glb"
"""The animated mesh an animate run writes (see :mod:`motion4d.pipelines.animate`)."""
FPS = 24.0
"""Playback rate of runs whose time range spans frames of a dataset: one frame time a frame."""
MIN_DURATION_S = 2.0
"""The shortest a clip plays at speed 1 (a dataset of a few frames would flash past at 24 fps)."""
CHECK_SIZE = 256
"""Largest image side of the baking check's renders."""
ADAPTIVE_SEGMENTS = (1, 2, 4, 8, 16)
"""Segment counts tried, in order, for a deformation field exported without ``--segments``."""
BAKE_TARGET_DB = 40.0
"""The baking check's worst image must reach this PSNR for fewer segments to do."""


@dataclass
class WebScene:
    """A run's model as the web player shows it."""

    records: SplatvRecords
    """The ``.splatv`` records."""
    header: dict
    """Our ``.splatv`` header (without ``count``, ``sh_degree``, ``version``: the writer adds them)."""
    glb: Path | None
    """The run's animated GLB (animate runs of a mesh), else None."""
    n_gaussians: int
    """Gaussians in the model."""


def _camera(viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, name: str) -> dict:
    return {"name": name, "viewmat": viewmat.double().tolist(), "K": K.double().tolist(), "width": int(width), "height": int(height)}


def run_cameras(info: ModelInfo, model, data: str | Path | None = None) -> tuple[list[dict], list[float], int]:
    """``(cameras, centre [3], distinct frame times)`` of a run: its dataset's test views (the cameras of
    ``render --view I``), else its orbit rig (8 views), else 8 views around the model."""
    root = data or info.extra.get("data_root")
    downscale = int(info.extra.get("downscale") or 1)
    with torch.no_grad():
        means = model.at_time(info.time_range[0]).means.detach().double()
    center = means.median(0).values if len(means) else torch.zeros(3, dtype=torch.float64)
    if root is not None and Path(root).is_dir():
        viewmats, Ks, W, H, times = dataset_cameras(root, "test", downscale=downscale)
        cams = [_camera(v, k, W, H, f"test view {i}") for i, (v, k) in enumerate(zip(viewmats, Ks))]
        orbit = info.extra.get("orbit")
        return cams, list(orbit["center"]) if orbit else center.tolist(), len(times)
    if "orbit" in info.extra:
        rig = OrbitRig(**info.extra["orbit"])
        cams = [_camera(v, rig.intrinsics(), rig.width, rig.height, f"orbit {i}") for i, v in enumerate(rig.viewmats(8))]
        return cams, list(rig.center), 0
    radius = float((means - center).norm(dim=-1).quantile(0.95)) if len(means) > 1 else 1.0
    K = intrinsics_from_fov(50.0, 512, 512)
    vms = orbit_viewmats(8, 2.5 * max(radius, 1e-3), elevation_deg=20.0, target=tuple(center.tolist()))
    return [_camera(v, K, 512, 512, f"orbit {i}") for i, v in enumerate(vms)], center.tolist(), 0


def _check(model, records: SplatvRecords, header: dict, cameras: list[dict], background) -> dict:
    """The baking check: PSNR of the records against the model, at 5 times, from 2 cameras (≤ 256 px)."""
    picked = cameras[:2]
    W, H = picked[0]["width"], picked[0]["height"]
    s = min(1.0, CHECK_SIZE / max(W, H))
    w, h = max(1, round(W * s)), max(1, round(H * s))
    Ks = torch.tensor([c["K"] for c in picked], dtype=torch.float32)
    Ks[:, 0] *= w / W
    Ks[:, 1] *= h / H
    viewmats = torch.tensor([c["viewmat"] for c in picked], dtype=torch.float32)
    t0, t1 = header["time_range"]
    times = [t0 + (t1 - t0) * f for f in (0.0, 0.3, 0.55, 0.8, 1.0)] if t1 > t0 else [t0]
    return baking_psnr(model, records, header, viewmats, Ks, w, h, times, background=tuple(background))


def _records(model, info: ModelInfo, segments: int | None, cameras: list[dict], background, check: bool) -> tuple[SplatvRecords, dict, dict]:
    """``(records, header fields, check)``: with ``segments`` None, a model baked without keyframes of its own
    (a deformation field) takes the fewest of :data:`ADAPTIVE_SEGMENTS` whose check reaches
    :data:`BAKE_TARGET_DB` (with ``check``; else :func:`default_segments`)."""
    time_range = tuple(info.time_range)
    adaptive = segments is None and check and info.kind not in ("rotor4d", "gaussians3d") and getattr(model, "graph", None) is None
    for k in ADAPTIVE_SEGMENTS if adaptive else (segments,):
        records, fields = model_records(model, info.kind, time_range, k)
        header = {**fields, "cameras": cameras}
        numbers = _check(model, records, header, cameras, background) if check else {"mean_db": math.nan, "min_db": math.nan, "images": 0}
        if numbers["min_db"] >= BAKE_TARGET_DB:
            break
    return records, fields, numbers


def web_scene(run: str | Path, *, segments: int | None = None, data: str | Path | None = None, check: bool = True) -> tuple[WebScene, dict]:
    """The run's :class:`WebScene` and the baking check's numbers (NaN without ``check``)."""
    model, info = load_run_model(run)
    cameras, center, n_times = run_cameras(info, model, data)
    background = list(info.extra.get("background") or (1.0, 1.0, 1.0))
    records, fields, numbers = _records(model, info, segments, cameras, background, check)
    t0, t1 = info.time_range
    glb = Path(run) / ANIMATION_FILE if Path(run).is_dir() and (Path(run) / ANIMATION_FILE).is_file() else None
    duration = max(n_times / FPS, MIN_DURATION_S) if t1 > t0 else 0.0
    header = {**fields, "fps": FPS, "duration_s": duration, "background": background, "cameras": cameras, "center": center,
              "generator": f"motion4d {__version__}"}  # fmt: skip
    if glb is not None and "asset_to_world" in info.extra:
        header["asset_to_world"] = info.extra["asset_to_world"]
    if check:
        header["baking"] = {"psnr_db": numbers["mean_db"], "psnr_min_db": numbers["min_db"], "images": numbers["images"]}
        log.info("%s: %d Gaussians → %d records (%s); PSNR against the model %.2f dB (min %.2f)", run, len(model), len(records),
                 f"{len(fields['segments'])} segments" if fields["segments"] else "exact", numbers["mean_db"], numbers["min_db"])  # fmt: skip
    return WebScene(records, header, glb, len(model)), numbers


def _summary(splatv_bytes: int, scene: WebScene, check: dict) -> dict:
    segs = scene.header["segments"]
    finite = lambda x: x if math.isfinite(x) else None  # noqa: E731  (JSON has no inf / NaN)
    return {"splatv_bytes": splatv_bytes, "gaussians": scene.n_gaussians, "records": len(scene.records), "segments": len(segs) if segs else 0,
            "baked": scene.header["baked"], "baking_psnr_db": finite(check["mean_db"]), "baking_psnr_min_db": finite(check["min_db"])}  # fmt: skip


def page_config(header: dict, glb: Path | None, records: SplatvRecords | None) -> dict:
    """The player's config (see :mod:`motion4d.export.html`) from a ``.splatv`` header and the GLB."""
    config = {key: header[key] for key in ("time_range", "duration_s", "cameras", "center", "background") if key in header}
    config["up"] = header.get("up", [0.0, 0.0, 1.0])
    config["mode"] = "mesh" if glb is not None else "splats"
    if glb is not None:
        asset = load_gltf(glb)
        t1 = header["time_range"][1]
        config["glb"] = {"seconds_per_time": asset.duration / t1 if t1 > 0 and asset.duration > 0 else 1.0,
                         "asset_to_world": header.get("asset_to_world") or [[float(i == j) for j in range(4)] for i in range(4)]}  # fmt: skip
        if asset.duration > 0:
            config["duration_s"] = asset.duration * (header["time_range"][1] - header["time_range"][0]) / max(t1, 1e-12)
    if records is not None and len(records):
        x = records.means[:, 0]
        config["beside_offset"] = [1.2 * float(x.max() - x.min()), 0.0, 0.0]
    return config


def run_page(run: str | Path, *, segments: int | None = None, data: str | Path | None = None, check: bool = True) -> tuple[str, bytes, dict]:
    """``(the player page, the .splatv bytes, the export summary's numbers)`` of a run folder or ``.m4d``."""
    scene, check = web_scene(run, segments=segments, data=data, check=check)
    splatv = encode_splatv(scene.records, scene.header)
    glb = scene.glb.read_bytes() if scene.glb is not None else None
    html = player_html(page_config(scene.header, scene.glb, scene.records), splatv=splatv, glb=glb, title=f"motion4d · {Path(run).name}")
    summary = _summary(len(splatv), scene, check)
    return html, splatv, {**summary, "glb_bytes": len(glb) if glb is not None else 0}


def export_web(run: str | Path, fmt: str, out: str | Path, *, segments: int | None = None, data: str | Path | None = None,
               check: bool = True) -> dict:  # fmt: skip
    """Write ``out``: the run's ``.splatv`` (``fmt`` "splatv") or its self-contained player page ("html");
    returns the export summary (size, records, segments, baking PSNR: None without ``check``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown web format {fmt!r}; choose from {', '.join(FORMATS)}")
    if segments is not None and segments < 1:
        raise ValueError(f"--segments must be >= 1, got {segments}")
    out = Path(out)
    html, splatv, numbers = run_page(run, segments=segments, data=data, check=check)
    if fmt == "splatv":
        atomic_write_bytes(out, splatv)
        summary = {"format": fmt, "out": str(out), "bytes": len(splatv), **numbers}
        summary.pop("glb_bytes")
    else:
        atomic_write_text(out, html)
        summary = {"format": fmt, "out": str(out), "bytes": len(html.encode("utf-8")), **numbers}
    log.info("wrote %s (%.2f MB)", out, summary["bytes"] / 1e6)
    return summary
