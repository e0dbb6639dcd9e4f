"""``motion4d dataset synth``: procedural, captioned multi-view videos for training a text → 4D prior.

Each sample is one shape × colour × motion of :mod:`motion4d.data.synth_vocab` (a two-shade procedural mesh
of :mod:`motion4d.data.synth_shapes` moved by :mod:`motion4d.data.synth_motion`), rendered with the mesh
renderer of ``dataset from-gltf`` (:func:`motion4d.pipelines.dataset_gltf.render_mesh_rgba`: supersampled,
headlight-shaded, straight RGBA) from ``views_per_sample`` cameras (the fixed evaluation views first, then
random ones; :func:`motion4d.render.cameras.spherical_viewmats`) at ``frames`` times from 0 to 1.

Written under ``DATA/``:

* the packed form (:mod:`motion4d.data.synth_packed`): ``dataset.json`` + ``packed/shard_NNNNN.safetensors``
  with every sample, training shards first, then held-out ones;
* ``samples/<id>/`` folders in the multi-view video layout ``reconstruct`` / ``evaluate`` read, for every
  held-out sample and the first ``folders`` training samples: ``transforms_train.json`` (the sample's views,
  the packed images), ``transforms_test.json`` (``folder_test_views`` extra cameras), frames with ``time`` and
  ``view``, ``train/vNN_fNN.png`` RGBA; the JSON files also carry ``id``, ``caption``, ``paraphrase``,
  ``shape``, ``colour``, ``motion``, ``split`` and ``pattern``. Thousands of PNG folders are slow and big, so
  the rest of the samples are only packed.

The folder is written as ``DATA.partial`` and renamed when complete; an existing ``DATA`` is an error.
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from motion4d.progress import bar_disabled
from motion4d.errors import DataError
from motion4d.data.synth_motion import AMPLITUDE_RANGE, animate
from motion4d.data.synth_packed import DATASET_FILE, ShardWriter, write_dataset_json
from motion4d.data.synth_shapes import shape_mesh
from motion4d.data.synth_specs import CameraPlan, SampleSpec, choose_held_out, plan_samples
from motion4d.data.video_writer import write_video_split
from motion4d.data.synth_vocab import COLOURS, HELD_OUT_TEMPLATES, MOTIONS, SHAPES, TRAIN_TEMPLATES, read_captions_file
from motion4d.pipelines.dataset_gltf import render_mesh_rgba
from motion4d.render.cameras import intrinsics_from_fov, spherical_viewmats

log = logging.getLogger(__name__)

SAMPLES_FOLDER = "samples"
"""Where the per-sample folders are, in a dataset folder."""


@dataclass(frozen=True)
class SynthConfig:
    """How ``dataset synth`` renders and lays out its samples."""

    res: int = 64
    """Image width and height in pixels."""
    frames: int = 8
    """Frames per video (t = i/(frames-1), 0 → 1)."""
    views_per_sample: int = 8
    """Cameras per sample, the evaluation views included."""
    eval_azimuths_deg: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    """Azimuths of the fixed evaluation views (the first views of every sample; 0 = front)."""
    eval_elevation_deg: float = 20.0
    """Elevation of the fixed evaluation views."""
    elevation_range_deg: tuple[float, float] = (-5.0, 45.0)
    """Range of the random views' elevations (azimuths are uniform)."""
    radius: float = 3.0
    """Camera distance from the origin (the objects and their motions stay inside the unit sphere)."""
    fov_deg: float = 40.0
    """Horizontal (= vertical) field of view."""
    supersample: int = 2
    """Samples per pixel along each axis."""
    ambient: float = 0.3
    """Ambient share of the headlight shading."""
    shard_size: int = 256
    """Samples per packed shard at most."""
    held_out_fraction: float = 0.1
    """Share of the 384 shape × colour × motion combinations held out (never trained on)."""
    held_out_samples: int | None = None
    """Held-out samples rendered for evaluation (None: one per held-out combination)."""
    held_out_seed: int | None = None
    """Seed of the held-out combinations (None: the dataset's seed), so that a dataset drawn with another seed
    can keep another's split."""
    amplitude_range: tuple[float, float] = AMPLITUDE_RANGE
    """Range of each sample's motion amplitude k (uniform; recorded as its ``amplitude``, which training reads
    as the sample's motion scale)."""
    folders: int = 8
    """Training samples also written as reconstructable folders (every held-out sample always is)."""
    folder_test_views: tuple[tuple[float, float], ...] = ((45.0, 35.0), (225.0, 35.0))
    """(azimuth_deg, elevation_deg) of the extra test cameras of the sample folders."""

    def __post_init__(self):
        for name in ("res", "frames", "views_per_sample", "supersample", "shard_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.folders < 0:
            raise ValueError(f"--folders must be >= 0, got {self.folders}")
        if len(self.amplitude_range) != 2 or not 0 < self.amplitude_range[0] <= self.amplitude_range[1]:
            raise ValueError(f"--amplitude-range must be LOW,HIGH with 0 < LOW <= HIGH, got {self.amplitude_range}")

    @property
    def cameras(self) -> CameraPlan:
        """The camera plan of every sample."""
        views = tuple((float(a), self.eval_elevation_deg, self.radius) for a in self.eval_azimuths_deg)
        return CameraPlan(views, self.views_per_sample, self.elevation_range_deg, self.radius)

    @property
    def times(self) -> np.ndarray:
        """[T] float32 frame times."""
        return np.linspace(0.0, 1.0, self.frames, dtype=np.float32) if self.frames > 1 else np.zeros(1, np.float32)


@dataclass
class SynthResult:
    """What ``dataset synth`` wrote."""

    root: Path
    """The dataset folder."""
    n_train: int
    """Training samples."""
    n_held_out: int
    """Held-out samples."""
    folders: int
    """Samples also written as folders."""
    seconds: float
    """Wall time."""

    @property
    def samples_per_second(self) -> float:
        """Throughput."""
        return (self.n_train + self.n_held_out) / max(self.seconds, 1e-9)


def _viewmats(az: np.ndarray, el: np.ndarray, r: np.ndarray) -> np.ndarray:
    return spherical_viewmats(torch.from_numpy(az), torch.from_numpy(el), torch.from_numpy(r)).numpy().astype(np.float64)


def _test_cameras(config: SynthConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tv = np.asarray(config.folder_test_views, dtype=np.float32).reshape(-1, 2)
    return tv[:, 0], tv[:, 1], np.full(len(tv), config.radius, np.float32)


def render_views(spec: SampleSpec, config: SynthConfig, az: np.ndarray, el: np.ndarray, r: np.ndarray) -> np.ndarray:
    """uint8 [V,T,R,R,4] straight RGBA of sample ``spec`` from the cameras ``az, el, r [V]``."""
    mesh = shape_mesh(spec.shape, spec.colour, spec.pattern)
    vertices = animate(mesh.vertices, spec.motion_spec, config.times)  # [T,V,3]
    K = intrinsics_from_fov(config.fov_deg, config.res, config.res).numpy().astype(np.float64)
    out = np.zeros((len(az), len(vertices), config.res, config.res, 4), np.uint8)
    for v, vm in enumerate(_viewmats(az, el, r)):
        for f, verts in enumerate(vertices):
            rgba = render_mesh_rgba(mesh, verts, vm, K, config.res, supersample=config.supersample, ambient=config.ambient)
            out[v, f] = (rgba * 255).round().astype(np.uint8)
    return out


def _render_job(job: tuple[SampleSpec, SynthConfig, bool]) -> tuple[np.ndarray, np.ndarray | None]:
    spec, config, with_test = job
    images = render_views(spec, config, spec.azimuth_deg, spec.elevation_deg, spec.radius)
    return images, render_views(spec, config, *_test_cameras(config)) if with_test else None


def write_sample_folder(folder: Path, spec: SampleSpec, config: SynthConfig, images: np.ndarray, test_images: np.ndarray) -> None:
    """The sample as a multi-view video dataset folder (module docstring); ``images`` / ``test_images``
    uint8 [V,T,R,R,4] from the sample's cameras / the folder test cameras."""
    cams = {"train": (spec.azimuth_deg, spec.elevation_deg, spec.radius), "test": _test_cameras(config)}
    for split, imgs in (("train", images), ("test", test_images)):
        az, el, r = cams[split]
        per_view = [{"azimuth_deg": float(a), "elevation_deg": float(e)} for a, e in zip(az, el)]
        write_video_split(folder, split, imgs, torch.from_numpy(_viewmats(az, el, r)), config.fov_deg, config.times.tolist(),
                          meta=spec.record(), per_view=per_view)  # fmt: skip


def dataset_synth(
    out: str | Path,
    n: int | None = None,
    *,
    seed: int = 0,
    captions: str | Path | None = None,
    config: SynthConfig | None = None,
    workers: int = 1,
    progress: bool = True,
) -> SynthResult:
    """Render the captioned synthetic dataset into the new folder ``out`` (module docstring).

    Args:
        out: dataset folder to create.
        n: training samples (with ``captions``: samples in all, cycling over the lines; default one per line).
        seed: every random choice (held-out combinations, captions, patterns, poses, cameras) follows it.
        captions: a file of captions, one per line: the samples to make (each must parse with
            :func:`motion4d.data.synth_vocab.parse_caption`; an unknown word is a DataError naming it).
        config: rendering and layout settings (default :class:`SynthConfig`).
        workers: processes rendering samples in parallel (the output does not depend on it).
        progress: show a progress bar.
    """
    config = config if config is not None else SynthConfig()
    out = Path(out)
    if out.exists():
        raise DataError(f"{out}: already exists (choose a new --out folder)")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    parsed = read_captions_file(captions) if captions is not None else None
    split_seed = seed if config.held_out_seed is None else config.held_out_seed
    held_out = choose_held_out(split_seed, config.held_out_fraction)
    specs = plan_samples(n, seed, held_out, config.cameras, held_out_samples=config.held_out_samples, captions=parsed,
                         amplitude_range=tuple(config.amplitude_range))  # fmt: skip
    specs.sort(key=lambda s: s.split != "train")  # training shards first (stable: keeps the order within a split)
    first_train = {s.index for s in specs if s.split == "train"}
    foldered = {s.index for s in specs if s.split == "held_out"} | set(sorted(first_train)[: config.folders])
    jobs = [(s, config, s.index in foldered) for s in specs]

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writer = ShardWriter(tmp, config.shard_size, config.times)
    start = time.perf_counter()
    bar = tqdm(total=len(specs), desc="dataset synth", unit="sample", disable=bar_disabled(progress), dynamic_ncols=True)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    try:
        results = pool.map(_render_job, jobs, chunksize=4) if pool else map(_render_job, jobs)
        for (spec, _, with_test), (images, test_images) in zip(jobs, results):
            writer.add(images, spec.azimuth_deg, spec.elevation_deg, spec.radius, spec.record())
            if with_test:
                write_sample_folder(tmp / SAMPLES_FOLDER / spec.id, spec, config, images, test_images)
            bar.update(1)
        writer.flush()
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)
    header = {
        "n": len(specs), "seed": seed, "held_out_seed": split_seed,
        "amplitude_range": list(config.amplitude_range), "res": config.res, "frames": config.frames, "views_per_sample": config.views_per_sample,
        "fov_deg": config.fov_deg,
        "eval_views": [{"azimuth_deg": a, "elevation_deg": e, "radius": r} for a, e, r in config.cameras.eval_views[: config.views_per_sample]],
        "vocabulary": {"shapes": list(SHAPES), "colours": list(COLOURS), "motions": list(MOTIONS)},
        "templates": {"train": list(TRAIN_TEMPLATES), "held_out": list(HELD_OUT_TEMPLATES)},
        "held_out_combinations": [list(c) for c in held_out],
        "shards": writer.shards,
        "splits": {"train": len(first_train), "held_out": len(specs) - len(first_train)},
        "folders": {s.id: f"{SAMPLES_FOLDER}/{s.id}" for s in specs if s.index in foldered},
        "times": config.times.tolist(),
    }  # fmt: skip
    write_dataset_json(tmp, header)
    tmp.rename(out)
    result = SynthResult(out, len(first_train), len(specs) - len(first_train), len(foldered), time.perf_counter() - start)
    log.info("wrote %s: %d training + %d held-out samples (%d views × %d frames at %d²) in %d shards, %d folders; %.2f samples/s",
             out / DATASET_FILE, result.n_train, result.n_held_out, config.views_per_sample, config.frames, config.res,
             len(writer.shards), result.folders, result.samples_per_second)  # fmt: skip
    return result
