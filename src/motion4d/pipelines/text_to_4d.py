"""Text → 4D: sample a multi-view video grid with the prior, then fit 4D-Rotor Gaussians to it.

    pipe = TextTo4DPipeline.from_pretrained()                 # the shipped prior (or a folder)
    out = pipe("a red cube bouncing", seed=0, motion_scale=1.5, out="runs/cube")
    out.grid        # [V, T, H, W, 4] straight RGBA of the sampled views
    out.model       # the fitted 4D Gaussians (out.run/model.m4d)

The run folder (``out``):

- ``config.json``: ``{"pipeline": "text-to-4d", "config": TextTo4DConfig, "inputs": TextTo4DInputs}``;
- ``grid/``: the sampled grid as a multi-view video dataset (``transforms_train.json`` with ``time`` and
  ``view``, ``train/vNN_fNN.png`` straight RGBA) and ``grid.png``, a contact sheet (rows views, columns frames);
- ``checkpoints/``, ``model.m4d``, ``video.mp4``: the 4D fit, through the reconstruct path
  (:func:`motion4d.pipelines.reconstruct.fit_dynamic`);
- ``report.json``: :class:`TextTo4DReport` (prompt, seed, steps, guidance, motion_amplitude, seconds per stage).

``evaluate``, ``render`` and ``export`` read it like a reconstruct run (the model's dataset is ``grid/``).
``resume`` reuses a complete ``grid/`` of the same prompt and config and resumes the fit from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from motion4d.atomic import atomic_path
from motion4d.data.transforms import load_transforms
from motion4d.data.video_writer import write_video_split
from motion4d.errors import DataError
from motion4d.optim.trainer4d import Reconstruct4DConfig
from motion4d.optim.trainer4d import PRESETS as FIT_PRESETS
from motion4d.pipelines.reconstruct import ReconstructReport, fit_dynamic
from motion4d.pipelines.run import RunFolder, RunReport
from motion4d.priors.conditioning import Conditioning
from motion4d.priors.grid import contact_sheet, grid_to_rgba, rgba_to_grid
from motion4d.priors.mvvideo import SHIPPED, MultiViewVideoTransformer, load_denoiser
from motion4d.priors.sampling import SCHEDULERS, GuidanceScales, sample_grid
from motion4d.priors.text_encoder import TextEncoder
from motion4d.render.cameras import intrinsics_from_fov, spherical_viewmats

log = logging.getLogger(__name__)

PIPELINE = "text-to-4d"
"""The pipeline name in ``config.json``."""
GRID_FOLDER = "grid"
"""The sampled grid's dataset folder in a run folder."""
SHEET_FILE = "grid.png"
"""The sampled grid's contact sheet in ``grid/``."""


@dataclass(frozen=True)
class TextTo4DConfig(Reconstruct4DConfig):
    """Sampling settings, then every setting of the 4D fit (the fields of :class:`Reconstruct4DConfig`)."""

    steps: int = 25
    """Sampler steps of the prior."""
    scheduler: Literal["dpm++", "ddim", "ddpm"] = "dpm++"
    """Sampler: DPM-Solver++ (2nd order), DDIM or DDPM."""
    guidance: float = 4.0
    """Classifier-free guidance scale of the prompt."""
    guidance_motion: float = 1.5
    """Guidance scale of the motion condition (multiplied by ``motion_scale``)."""
    motion_scale: float = 1.0
    """Motion amplitude asked for (Motion4D's motion-amplitude enhancement): 1 = the training data's, 0 = none,
    2 = more. Scales the motion tokens and the motion guidance."""
    views: int = 4
    """Views V of the sampled grid, evenly spaced in azimuth from the front (view 0, azimuth 0)."""
    frames: int = 8
    """Frames T of the sampled grid (times evenly spaced in [0, 1])."""
    elevation_deg: float = 20.0
    """Elevation of the sampled views."""

    def __post_init__(self):
        super().__post_init__()
        for name in ("steps", "views"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.frames < 2:
            raise ValueError(f"frames must be >= 2 (a 4D asset moves over time), got {self.frames}")
        if self.motion_scale < 0:
            raise ValueError(f"motion_scale must be >= 0, got {self.motion_scale}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")

    @property
    def guidance_scales(self) -> GuidanceScales:
        """The sampler's guidance scales."""
        return GuidanceScales(text=self.guidance, motion=self.guidance_motion)

    def fit_config(self) -> Reconstruct4DConfig:
        """The 4D fit's part of the config."""
        return Reconstruct4DConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Reconstruct4DConfig)})


def _generated(base: Reconstruct4DConfig, **sampling) -> TextTo4DConfig:
    fit = {f.name: getattr(base, f.name) for f in dataclasses.fields(Reconstruct4DConfig)}
    return TextTo4DConfig(**fit, **sampling)


PRESETS: dict[str, TextTo4DConfig] = {
    "default": _generated(FIT_PRESETS["generated"]),
    "tiny": _generated(FIT_PRESETS["tiny"], steps=2, frames=4, views=2),
}
"""Named configs: "default" (minutes on a CPU) and "tiny" (tests)."""


@dataclass(frozen=True)
class TextTo4DInputs:
    """What a text-to-4d run is asked for (saved in ``config.json`` as its ``inputs``)."""

    prompt: str | None = None
    """The prompt (in the shipped prior's vocabulary: see the README)."""
    prompts: str | None = None
    """A file of prompts, one asset per line into RUN/<n>/ (n from 0; split across ``accelerate launch`` processes)."""
    prior: str = SHIPPED
    """The prior: "shipped" (the model inside the package), a folder saved by train-prior (its model/) or
    save_pretrained, or a hub id in the local cache."""
    video_frames: int = 48
    """Frames of the run's orbit video (0: none)."""

    def __post_init__(self):
        if (self.prompt is None) == (self.prompts is None):
            raise ValueError("text-to-4d needs a PROMPT or --prompts FILE (one of them)")
        if self.prompt is not None and not self.prompt.strip():
            raise ValueError("prompt is empty")
        if self.video_frames < 0:
            raise ValueError(f"video_frames must be >= 0, got {self.video_frames}")


@dataclass
class TextTo4DReport(ReconstructReport):
    """``report.json`` of a text-to-4d run: the reconstruct report of the fit (its PSNR is on the sampled
    grid itself) and the generation's settings and times."""

    prompt: str
    """The prompt."""
    seed: int
    """Seed of the sampler's noise and of the fit."""
    steps: int
    """Sampler steps."""
    guidance: float
    """Text guidance scale."""
    guidance_motion: float
    """Motion guidance scale."""
    motion_scale: float
    """Motion amplitude asked for."""
    views: int
    """Views of the sampled grid."""
    frames: int
    """Frames of the sampled grid."""
    prior: str
    """The prior used."""
    seconds_per_stage: dict[str, float]
    """Wall seconds of "load" (prior and text encoder), "sample", "fit" (with evaluation and video) and "total"."""


@dataclass
class PromptsReport(RunReport):
    """``report.json`` of a ``--prompts`` run (RUN/<n>/report.json hold each asset's)."""

    prompts: int
    """Lines of the prompts file."""
    runs: list[str]
    """The asset folders this process made."""


@dataclass
class GeneratedGrid:
    """A sampled multi-view video and the cameras it was sampled for."""

    rgba: Tensor
    """[V, T, H, W, 4] straight RGBA in [0, 1]."""
    azimuth_deg: Tensor
    """[V] camera azimuths (0 = front, on −y)."""
    elevation_deg: Tensor
    """[V] camera elevations."""
    radius: float
    """Camera distance from the origin."""
    fov_deg: float
    """Horizontal (= vertical) field of view."""
    times: Tensor
    """[T] frame times in [0, 1]."""

    @property
    def viewmats(self) -> Tensor:
        """[V, 4, 4] world→camera (OpenCV axes)."""
        return spherical_viewmats(self.azimuth_deg, self.elevation_deg, self.radius)

    @property
    def K(self) -> Tensor:
        """[3, 3] intrinsics."""
        return intrinsics_from_fov(self.fov_deg, self.rgba.shape[-2], self.rgba.shape[-3])

    def write(self, folder: Path, meta: dict) -> Path:
        """The grid as the ``train`` split of a dataset ``folder`` (and its contact sheet); returns the folder."""
        images = (self.rgba * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
        with atomic_path(folder / SHEET_FILE) as tmp:
            iio.imwrite(tmp, contact_sheet(self.rgba[None]).numpy(), extension=".png")
        per_view = [{"azimuth_deg": float(a), "elevation_deg": float(e)} for a, e in zip(self.azimuth_deg, self.elevation_deg)]
        write_video_split(folder, "train", images, self.viewmats, self.fov_deg, self.times.tolist(), meta=meta, per_view=per_view)
        return folder


@dataclass
class TextTo4DOutput:
    """What one call of :class:`TextTo4DPipeline` made."""

    grid: GeneratedGrid
    """The sampled multi-view video."""
    model: object
    """The fitted 4D-Rotor Gaussians (CPU, eval mode)."""
    report: TextTo4DReport
    """What ``report.json`` holds."""
    run: Path | None
    """The run folder (None when the call wrote to a temporary one)."""


def ring_azimuths(views: int) -> Tensor:
    """[V] azimuths evenly spaced from the front (0°)."""
    return torch.arange(views, dtype=torch.float32) * (360.0 / views)


class TextTo4DPipeline:
    """A prior and its text encoder, loaded once; each call samples a grid for a prompt and fits it."""

    def __init__(self, denoiser: MultiViewVideoTransformer, text_encoder: TextEncoder, *, name: str = SHIPPED):
        self.denoiser = denoiser.eval().requires_grad_(False)
        self.text_encoder = text_encoder
        self.name = name

    @classmethod
    def from_pretrained(cls, prior: str | Path = SHIPPED, *, device: str | torch.device = "cpu") -> TextTo4DPipeline:
        """The pipeline of a prior (:func:`motion4d.priors.mvvideo.load_denoiser`: "shipped", a folder or a
        cached hub id) with the text encoder its config names."""
        denoiser = load_denoiser(prior).to(device)
        return cls(denoiser, TextEncoder.from_pretrained(denoiser.config.text_encoder), name=str(prior))

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def sample(self, prompts: list[str] | str, config: TextTo4DConfig | None = None, *, seed: int | None = None,
               motion_scale: float | None = None, azimuth_deg: Tensor | None = None, elevation_deg: Tensor | None = None,
               reference: Tensor | None = None, reference_mask: Tensor | None = None, progress: bool = False) -> list[GeneratedGrid]:  # fmt: skip
        """Sample a grid per prompt with ``config``'s views, frames, steps and guidance (``seed`` and
        ``motion_scale`` override the config's; ``azimuth_deg`` / ``elevation_deg`` ``[V]`` the ring of
        views). ``reference`` ``[V, T, H, W, 4]`` straight RGBA (or ``[B, ...]``) is given clean where
        ``reference_mask`` ``[V, T]`` is True (see :data:`motion4d.priors.conditioning.REFERENCE_KINDS`)."""
        config = config or PRESETS["default"]
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or any(not p.strip() for p in prompts):
            raise ValueError("prompt is empty")
        mc = self.denoiser.config
        az = ring_azimuths(config.views) if azimuth_deg is None else torch.as_tensor(azimuth_deg, dtype=torch.float32)
        el = torch.full_like(az, config.elevation_deg) if elevation_deg is None else torch.as_tensor(elevation_deg, dtype=torch.float32)
        n_frames = config.frames if reference is None else reference.shape[-4]
        times = torch.linspace(0.0, 1.0, n_frames)
        scale = config.motion_scale if motion_scale is None else motion_scale
        ref = None if reference is None else rgba_to_grid(reference).expand(len(prompts), *rgba_to_grid(reference).shape[-5:])
        cond = Conditioning.create(self.text_encoder.encode(prompts), az, el, mc.camera_radius, times, motion_scale=scale,
                                   reference=ref, reference_mask=reference_mask)  # fmt: skip
        shape = (len(az), n_frames, mc.in_channels, mc.sample_size, mc.sample_size)
        grids = sample_grid(self.denoiser, cond, shape, steps=config.steps, scheduler=config.scheduler, guidance=config.guidance_scales,
                            seed=config.seed if seed is None else seed, device=self.device, progress=progress)  # fmt: skip
        rgba = grid_to_rgba(grids.cpu())
        return [GeneratedGrid(r, az, el, float(mc.camera_radius), float(mc.fov_deg), times) for r in rgba]

    def __call__(self, prompt: str, *, seed: int | None = None, motion_scale: float | None = None, out: str | Path | None = None,
                 config: TextTo4DConfig | None = None, resume: bool = False, video_frames: int = TextTo4DInputs.video_frames,
                 progress: bool = False) -> TextTo4DOutput:  # fmt: skip
        """Sample a grid for ``prompt`` and fit 4D Gaussians to it in the run folder ``out`` (module docstring;
        a temporary folder, removed after, when None). ``seed`` / ``motion_scale`` override the config's."""
        config = config or PRESETS["default"]
        config = dataclasses.replace(config, **{k: v for k, v in (("seed", seed), ("motion_scale", motion_scale)) if v is not None})
        if out is None:
            with tempfile.TemporaryDirectory(prefix="motion4d-") as tmp:
                result = self._run(prompt, Path(tmp), config, False, video_frames, progress)
            return dataclasses.replace(result, run=None)
        return self._run(prompt, Path(out), config, resume, video_frames, progress)

    def _run(self, prompt: str, out: Path, config: TextTo4DConfig, resume: bool, video_frames: int, progress: bool) -> TextTo4DOutput:
        if not prompt.strip():
            raise ValueError("prompt is empty")
        t0 = time.perf_counter()
        run = RunFolder(out)
        inputs = TextTo4DInputs(prompt=prompt, prior=self.name, video_frames=video_frames)
        grid_dir = run.path / GRID_FOLDER
        stamp = {"prompt": prompt, "prior": self.name, "sampling": _sampling_fields(config)}
        reuse = resume and _grid_matches(grid_dir, stamp)
        if grid_dir.exists() or run.checkpoints.exists():
            if not resume:
                raise DataError(f"{run.path}: already holds a run (pass --resume to continue it, or choose a new --out)")
            if not reuse and run.checkpoint_files():
                raise DataError(f"{grid_dir}: sampled for another prompt or other sampling settings (choose a new --out)")
        run.write_config(PIPELINE, config, inputs)
        if reuse:
            grid = _read_grid(grid_dir, config)
            log.info("text-to-4d: reusing the sampled grid in %s", grid_dir)
        else:
            grid = self.sample(prompt, config, progress=progress)[0]
            grid.write(grid_dir, {"caption": prompt, "motion4d": stamp})
        t_sample = time.perf_counter()
        fit = fit_grid(run, grid_dir, config, prompt=prompt, resume=resume, video_frames=video_frames)
        t_fit = time.perf_counter()
        stages = {"sample": t_sample - t0, "fit": t_fit - t_sample, "total": t_fit - t0}
        report = TextTo4DReport(
            **dataclasses.asdict(fit), prompt=prompt, seed=config.seed, steps=config.steps, guidance=config.guidance,
            guidance_motion=config.guidance_motion, motion_scale=config.motion_scale, views=config.views, frames=config.frames,
            prior=self.name, seconds_per_stage=stages,
        )  # fmt: skip
        run.write_report(report)
        from motion4d.pipelines.models import load_run_model

        model, _ = load_run_model(run.path)
        log.info("text-to-4d %r: sampled in %.0f s, fitted in %.0f s (grid PSNR %.2f dB, motion %.3f)", prompt, stages["sample"], stages["fit"],
                 report.psnr, report.motion_amplitude)  # fmt: skip
        return TextTo4DOutput(grid, model.eval(), report, run.path)


def fit_grid(run: RunFolder, grid_dir: Path, config: TextTo4DConfig, *, prompt: str = "", resume: bool = False,
             video_frames: int = TextTo4DInputs.video_frames) -> ReconstructReport:  # fmt: skip
    """Fit 4D-Rotor Gaussians to the grid written in ``grid_dir`` (:meth:`GeneratedGrid.write`) into ``run``
    through the reconstruct path; the report (on the grid itself) is returned, not written."""
    train = load_transforms(grid_dir, "train", background=config.background)
    extra = {"data_root": str(grid_dir.resolve()), "downscale": 1, "prompt": prompt}
    return fit_dynamic(run, train, train, "train", config.fit_config(), model="rotor4d", extra=extra, resume=resume,
                       video_frames=video_frames, write_report=False)  # fmt: skip


def _sampling_fields(config: TextTo4DConfig) -> dict:
    """The config fields the sampled grid depends on."""
    names = ("steps", "scheduler", "guidance", "guidance_motion", "motion_scale", "views", "frames", "elevation_deg", "seed")
    return {n: getattr(config, n) for n in names}


def _grid_matches(grid_dir: Path, stamp: dict) -> bool:
    """Whether ``grid_dir`` holds a complete grid sampled for ``stamp`` (prompt, prior, sampling settings)."""
    path = grid_dir / "transforms_train.json"
    try:
        return json.loads(path.read_text()).get("motion4d") == stamp
    except (OSError, ValueError):
        return False


def _read_grid(grid_dir: Path, config: TextTo4DConfig) -> GeneratedGrid:
    meta = json.loads((grid_dir / "transforms_train.json").read_text())
    frames = sorted(meta["frames"], key=lambda f: (f["view"], f["time"]))
    rgba = np.stack([iio.imread(grid_dir / f"{f['file_path']}.png") for f in frames]).astype(np.float32) / 255.0
    v, t = config.views, config.frames
    first = [f for f in frames if f["time"] == frames[0]["time"]]
    az = torch.tensor([f["azimuth_deg"] for f in first], dtype=torch.float32)
    el = torch.tensor([f["elevation_deg"] for f in first], dtype=torch.float32)
    c2w = torch.tensor(first[0]["transform_matrix"])
    return GeneratedGrid(torch.from_numpy(rgba).reshape(v, t, *rgba.shape[1:]), az, el, float(c2w[:3, 3].norm()),
                         float(np.degrees(meta["camera_angle_x"])), torch.tensor(sorted({f["time"] for f in frames}), dtype=torch.float32))  # fmt: skip


def read_prompts(path: str | Path) -> list[str]:
    """The non-empty lines of a prompts file (a DataError naming it when it has none or cannot be read)."""
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the prompts file ({exc})") from None
    prompts = [line for line in lines if line]
    if not prompts:
        raise DataError(f"{path}: no prompts (one per line)")
    return prompts


def text_to_4d(prompt: str | None = None, *, prompts: str | None = None, prior: str = SHIPPED, video_frames: int = TextTo4DInputs.video_frames,
               out: str | Path, config: TextTo4DConfig | None = None, resume: bool = False) -> TextTo4DReport | PromptsReport:  # fmt: skip
    """``motion4d text-to-4d``: one prompt into the run folder ``out``, or every line of the file ``prompts``
    into ``out/<n>/`` (lines split across the processes of ``accelerate launch``)."""
    inputs = TextTo4DInputs(prompt, prompts, prior, video_frames)
    config = config or PRESETS["default"]
    lines = read_prompts(prompts) if prompts is not None else None
    pipe = TextTo4DPipeline.from_pretrained(prior, device=config.device)
    if lines is None:
        return pipe(inputs.prompt, out=out, config=config, resume=resume, video_frames=video_frames, progress=config.progress).report
    from accelerate import PartialState

    state = PartialState()
    t0 = time.perf_counter()
    runs, n_gaussians = [], 0
    for n in range(state.process_index, len(lines), state.num_processes):
        result = pipe(lines[n], out=Path(out) / str(n), config=config, resume=resume, video_frames=video_frames, progress=config.progress)
        runs.append(str(result.run))
        n_gaussians += result.report.n_gaussians
    report = PromptsReport(n_gaussians, time.perf_counter() - t0, 0, False, str(out), prompts=len(lines), runs=runs)
    if state.is_main_process:
        RunFolder(out).write_config(PIPELINE, config, inputs)
        RunFolder(out).write_report(report)
    return report


