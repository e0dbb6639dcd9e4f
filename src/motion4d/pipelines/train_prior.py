"""Train the multi-view video diffusion prior on a packed dataset: ``train_prior(DATA, RUN, config)``.

Built on accelerate: the same code runs on the CPU, one GPU, or several GPUs / nodes under
``accelerate launch`` (each process draws its own batches; gradients are averaged). The run folder ``RUN``:

- ``config.json``: the resolved :class:`PriorTrainConfig` and the dataset path (a resumed run reads it);
- ``checkpoint.safetensors``: the one intermediate checkpoint (model, EMA, optimizer; overwritten);
- ``losses.jsonl``: ``{"step", "loss", "lr", "s_per_step"}`` every ``log_every`` steps;
- ``samples/step_NNNNNN.png``: sample grids of the EMA model (rows: views of each prompt, columns: frames);
- ``model/``: the final EMA model, ``save_pretrained`` (``config.json`` + safetensors), loadable with
  :func:`motion4d.priors.load_denoiser`.

Every random draw of step k comes from a generator seeded by (seed, k, process): a resumed run continues with
the batches and noise it would have drawn.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

import imageio.v3 as iio
import torch
from diffusers import DDPMScheduler
from tqdm.auto import tqdm

from motion4d.progress import bar_disabled
from motion4d.atomic import atomic_path
from motion4d.config_dict import from_config_dict
from motion4d.data.synth_packed import SynthShards
from motion4d.pipelines.run import RunFolder
from motion4d.errors import DataError
from motion4d.priors.checkpoint import load_training_state, save_training_state
from motion4d.priors.conditioning import Conditioning, reference_mask
from motion4d.priors.grid import contact_sheet, grid_to_rgba, rgba_to_grid
from motion4d.priors.mvvideo import MultiViewVideoTransformer
from motion4d.priors.sampling import GuidanceScales, sample_grid
from motion4d.priors.text_encoder import BUNDLED, TextEncoder
from motion4d.priors.training import EMA, BatchRecipe, diffusion_loss, frame_indices, make_batch

logger = logging.getLogger(__name__)

PIPELINE = "train-prior"
"""The pipeline name in ``RUN/config.json``."""
CHECKPOINT_FILE = "checkpoint.safetensors"
MODEL_FOLDER = "model"
LOSS_FILE = "losses.jsonl"
SAMPLES_FOLDER = "samples"
BOOKKEEPING = ("steps", "checkpoint_every", "sample_every", "log_every", "sample_steps", "sample_prompts")
"""Fields a resumed run may change (the rest must match the saved config)."""
CURRICULUM = ("high_noise_fraction", "high_noise_span", "ray_embedding", "lr", "lr_final_fraction", "ema_decay")
"""Training fields a resumed run may change besides :data:`BOOKKEEPING`: where its timesteps are drawn,
switching the ray embedding on (grafted onto the trained model, see :func:`_restore`), the learning rate's
peak and end (the schedule of :func:`learning_rate` is then read with the new values at the resumed step)
and the EMA decay: a short fine-tune on new data raises the rate again and shortens the EMA's memory."""


@dataclass(frozen=True)
class PriorTrainConfig:
    """Everything a prior training run depends on (saved as ``RUN/config.json``)."""

    patch_size: int = 8
    """Side of the square patches each image is cut into (tokens per image: (resolution / patch_size)²)."""
    width: int = 96
    """Transformer width D."""
    depth: int = 8
    """Transformer layers; their self-attention kinds cycle spatial, frame, view, Klotski."""
    heads: int = 4
    """Attention heads (width / heads per head)."""
    mlp_ratio: float = 4.0
    """MLP hidden width / D."""
    klotski_windows: tuple[tuple[int, int], ...] = ((2, 2), (2, 4))
    """Klotski windows (views, frames) in cells, used in turn by the Klotski layers."""
    motion_tokens: int = 4
    """Motion tokens in the motion-enhancement cross-attention."""
    prediction_type: Literal["sample", "v_prediction", "epsilon"] = "sample"
    """What the model predicts: "sample" (the clean grid, x0), "v_prediction" or "epsilon"."""
    snr_gamma: float = 5.0
    """Clamp of the x0 loss weight ``min(SNR, snr_gamma) + 1`` (for prediction_type "sample")."""
    ray_embedding: bool = False
    """Give every token the embedding of its patch's camera ray (Plücker coordinates); a resumed run may switch
    it on, which grafts the embedding, zero-initialised, onto the trained model."""
    high_noise_fraction: float = 0.0
    """Share of the training timesteps drawn from the noisiest ``high_noise_span`` of the schedule rather than
    uniformly (see :func:`~motion4d.priors.training.draw_timesteps`); may change on resume."""
    high_noise_span: float = 0.25
    """The noisiest part of the schedule that ``high_noise_fraction`` draws from, as a fraction of it."""
    recipe: BatchRecipe = field(default_factory=BatchRecipe)
    """Views, frames, resolution, reference masks and condition dropout of the training grids."""
    steps: int = 5000
    """Optimisation steps in all (a resumed run may raise it)."""
    batch_size: int = 8
    """Grids per step and process."""
    lr: float = 3e-4
    """AdamW peak learning rate (linear warm-up, then cosine decay to ``lr_final_fraction`` × lr)."""
    lr_final_fraction: float = 0.1
    """Learning rate at the last step, as a fraction of ``lr``."""
    warmup_steps: int = 200
    """Linear learning-rate warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient norm clip."""
    ema_decay: float = 0.999
    """EMA decay of the weights that are sampled and saved."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "bf16"
    """accelerate's mixed precision: "no", "bf16" or "fp16" (bf16 matmuls use AMX on recent Xeon CPUs: 2.2 vs
    3.2 s a step here)."""
    seed: int = 0
    """Seed of every random draw (batches, noise, initial weights)."""
    checkpoint_every: int = 250
    """Steps between writes of the (overwritten) checkpoint."""
    checkpoint_dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    """dtype of the checkpoint's model and EMA weights ("float16" or "float32")."""
    sample_every: int = 1000
    """Steps between sample sheets (0: only at the end)."""
    sample_steps: int = 20
    """DPM-Solver++ steps of the sample sheets."""
    sample_prompts: int = 2
    """Prompts in each sample sheet (training captions, then held-out ones)."""
    log_every: int = 10
    """Steps between lines of ``losses.jsonl``."""
    export_dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    """dtype of the final ``model/`` weights."""
    text_encoder: str = BUNDLED
    """Text encoder: the bundled all-MiniLM-L6-v2, a folder or a (cached) hub id."""

    def to_dict(self) -> dict:
        """JSON-ready dict (the ``config`` of ``RUN/config.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PriorTrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys and mistyped values are a ValueError naming the key."""
        return from_config_dict(cls, d)


@dataclass(frozen=True)
class PriorTrainInputs:
    """What a prior training run reads (the ``inputs`` of ``RUN/config.json``)."""

    data: str
    """Packed dataset folder (``motion4d dataset synth`` or your own renders in its layout)."""


PRESETS: dict[str, PriorTrainConfig] = {
    "default": PriorTrainConfig(),
    "tiny": PriorTrainConfig(
        patch_size=4, width=32, depth=4, heads=2, motion_tokens=2, steps=2, batch_size=2, warmup_steps=1,
        recipe=BatchRecipe(views=2, frames=4, resolution=16), checkpoint_every=1, sample_every=0,
        sample_steps=2, sample_prompts=1, log_every=1, mixed_precision="no",
    ),
}  # fmt: skip
"""Named configs: "default" (the shipped model) and "tiny" (tests: seconds on a CPU)."""


@dataclass
class PriorTrainResult:
    """What a training run produced."""

    run: Path
    """The run folder."""
    model_dir: Path
    """``RUN/model``: the EMA model, ``save_pretrained``."""
    steps: int
    """Steps done in all (over resumed runs too)."""
    loss: float
    """Mean loss over the last ``log_every`` steps."""
    seconds: float
    """Wall time of this call."""


def build_model(config: PriorTrainConfig, text_dim: int, geometry: dict | None = None) -> MultiViewVideoTransformer:
    """The untrained transformer of ``config``; ``geometry``: the training images' ``fov_deg`` and
    ``camera_radius`` (see :func:`data_geometry`), recorded in the model's config."""
    return MultiViewVideoTransformer(
        sample_size=config.recipe.resolution, **(geometry or {}),
        in_channels=4, patch_size=config.patch_size, width=config.width, depth=config.depth, heads=config.heads,
        mlp_ratio=config.mlp_ratio, klotski_windows=[list(w) for w in config.klotski_windows], text_dim=text_dim,
        motion_tokens=config.motion_tokens, text_encoder=config.text_encoder, prediction_type=config.prediction_type,
        ray_embedding=config.ray_embedding,
    )  # fmt: skip


def data_geometry(data: SynthShards) -> dict:
    """``{"fov_deg", "camera_radius"}`` of a packed dataset's images (its header; the evaluation views' radius)."""
    out = {"fov_deg": float(data.meta["fov_deg"])} if "fov_deg" in data.meta else {}
    if data.meta.get("eval_views"):
        out["camera_radius"] = float(data.meta["eval_views"][0]["radius"])
    elif len(data):
        out["camera_radius"] = float(data[0].radius.median())
    return out


def _resolve_config(run: Path, config: PriorTrainConfig | None, resume: bool) -> PriorTrainConfig:
    saved_path = RunFolder(run).config_file
    if not resume:
        if (run / CHECKPOINT_FILE).exists():
            raise DataError(f"{run}: already holds a training run (pass resume=True to continue it)")
        return config or PRESETS["default"]
    if not saved_path.is_file():
        return config or PRESETS["default"]
    saved = load_run_config(run)
    if config is None:
        return saved
    may_change = BOOKKEEPING + CURRICULUM
    changed = [f.name for f in fields(PriorTrainConfig) if f.name not in may_change and getattr(config, f.name) != getattr(saved, f.name)]
    if changed:
        raise ValueError(f"config: {', '.join(changed)} differ from the run's {saved_path} (only {', '.join(may_change)} may change on resume)")
    return config


def load_run_config(run: str | Path) -> PriorTrainConfig:
    """The resolved config saved in ``run/config.json`` (:class:`DataError` naming it if missing or damaged)."""
    folder = RunFolder(run)
    if not folder.has_config():
        raise DataError(f"{folder.config_file}: no such file (is {run} a train-prior run folder?)")
    return folder.load_config(PriorTrainConfig, PriorTrainInputs, pipeline=PIPELINE)[0]


def checkpoint_model(run: str | Path) -> MultiViewVideoTransformer:
    """The EMA model of a run's current checkpoint (to look at a run while it trains), float32, eval mode."""
    run = Path(run)
    config = load_run_config(run)
    state = load_training_state(run / CHECKPOINT_FILE)
    model = build_model(config, text_dim=state.ema["text_pooled.0.weight"].shape[1], geometry=state.extra.get("geometry"))
    try:
        model.load_state_dict(state.ema)
    except RuntimeError as exc:
        raise DataError(f"{run / CHECKPOINT_FILE}: does not fit {RunFolder(run).config_file} ({' '.join(str(exc).split())[:200]})") from None
    return model.eval()


TRAINING_FILE = "training.json"
"""What an exported model folder says about its training: ``{"step", "steps", "data", "loss"}``."""


def export_checkpoint(run: str | Path, folder: str | Path, *, dtype: str = "float16") -> Path:
    """Write the EMA model of a run's current checkpoint to ``folder`` (``save_pretrained``, weights in
    ``dtype``, and ``training.json``: the step it is at) — how a run that is still training is shipped or
    tried with ``text-to-4d --prior``. The folder is replaced as a whole (written beside it, then renamed)."""
    import shutil

    run, folder = Path(run), Path(folder)
    model = checkpoint_model(run)
    state_step = load_training_state(run / CHECKPOINT_FILE).step
    config = load_run_config(run)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.nn.Module.to(model, getattr(torch, dtype)).save_pretrained(str(tmp))
    losses = (run / LOSS_FILE).read_text().splitlines() if (run / LOSS_FILE).is_file() else []
    info = {"step": state_step, "steps": config.steps, "data": RunFolder(run).read_config().inputs.get("data"),
            "loss": json.loads(losses[-1])["loss"] if losses else None}  # fmt: skip
    (tmp / TRAINING_FILE).write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def learning_rate(config: PriorTrainConfig, step: int) -> float:
    """Warm-up then cosine decay (``step`` counts from 0)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(config.steps - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    floor = config.lr_final_fraction
    return config.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _sheet_conditioning(train: SynthShards, held_out: SynthShards | None, text: TextEncoder, config: PriorTrainConfig) -> tuple[torch.Tensor, Conditioning]:
    """Fixed prompts and views for sample sheets: ``sample_prompts`` captions (training ones, then held-out),
    the dataset's first views, each prompt twice: from text alone and with view 0 of every frame given."""
    r = config.recipe
    picks = [train[i] for i in range(min(config.sample_prompts, len(train)))]
    if held_out is not None and len(held_out):
        picks[len(picks) // 2 :] = [held_out[i] for i in range(min(len(picks) - len(picks) // 2, len(held_out)))]
    ti = frame_indices(picks[0].images.shape[1], r.frames)
    grids = torch.stack([rgba_to_grid(s.images[: r.views][:, ti]) for s in picks])
    if grids.shape[-1] != r.resolution:
        grids = torch.nn.functional.interpolate(grids.flatten(0, 2), size=r.resolution, mode="area").unflatten(0, grids.shape[:3])
    emb = text.encode([s.record["caption"] for s in picks])
    cam = lambda key: torch.stack([getattr(s, key)[: r.views] for s in picks])  # noqa: E731
    cond = Conditioning.create(emb, cam("azimuth_deg"), cam("elevation_deg"), cam("radius"), picks[0].times[ti],
                               reference=grids, reference_mask=reference_mask("none", r.views, r.frames))  # fmt: skip
    video = replace(cond, reference_mask=reference_mask("video", r.views, r.frames).expand(len(picks), -1, -1))
    return torch.cat([grids, grids]), Conditioning.cat([cond, video])


def _restore(checkpoint: Path, model: MultiViewVideoTransformer, optimizer: torch.optim.Optimizer, ema: EMA) -> int:
    """Load ``checkpoint`` into the model, optimizer and EMA; the step to continue from. A checkpoint without the
    ray embedding the model has (a run that switched ``ray_embedding`` on) is grafted: the embedding keeps its
    zero initialisation (EMA too) and starts with fresh AdamW moments, everything else resumes as saved."""
    state = load_training_state(checkpoint)
    names = [k for k, _ in model.named_parameters()]
    grafted = [k for k in names if k not in state.model and k.startswith("ray_embed.")]
    if grafted and names[-len(grafted):] != grafted:
        raise DataError(f"{checkpoint}: cannot graft the ray embedding (its parameters are not the model's last)")
    try:
        missing, unexpected = model.load_state_dict(state.model, strict=False)
        if set(missing) != set(grafted) or unexpected:
            raise RuntimeError(f"missing {sorted(set(missing) - set(grafted))[:4]}, unexpected {unexpected[:4]}")
        optim = state.optim
        if grafted:
            if len(optim["param_groups"]) != 1:
                raise ValueError("a graft needs the optimizer's single parameter group")
            groups = [{**optim["param_groups"][0], "params": list(range(len(names)))}]
            optim = {"state": optim["state"], "param_groups": groups}
        optimizer.load_state_dict(optim)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise DataError(f"{checkpoint}: does not fit this config's model ({' '.join(str(exc).split())[:200]})") from None
    shadow = {**state.ema, **{k: p.detach().float().clone() for k, p in model.named_parameters() if k in grafted}}
    if shadow.keys() != ema.shadow.keys():
        raise DataError(f"{checkpoint}: its EMA weights do not fit this config's model")
    ema.shadow = shadow
    if grafted:
        logger.info("grafted the ray embedding (%d tensors, zero-initialised) onto the checkpoint", len(grafted))
    logger.info("resuming from %s at step %d", checkpoint, state.step)
    return state.step


def _write_sheet(path: Path, model, truth: torch.Tensor, cond: Conditioning, config: PriorTrainConfig, device) -> None:
    r = config.recipe
    grid = sample_grid(model, cond, (r.views, r.frames, 4, r.resolution, r.resolution), steps=config.sample_steps,
                       guidance=GuidanceScales(), seed=config.seed, device=device, progress=False)  # fmt: skip
    rgba = grid_to_rgba(torch.stack([truth.to(grid), grid], dim=1).flatten(0, 1).cpu())  # truth row-block, then sample
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, contact_sheet(rgba).numpy(), extension=".png")


def train_prior(data: str | Path, out: str | Path, config: PriorTrainConfig | None = None, *, resume: bool = False,
                progress: bool = True) -> PriorTrainResult:  # fmt: skip
    """Train the prior on the packed dataset ``data`` (:class:`~motion4d.data.synth_packed.SynthShards`, its
    training split) into the run folder ``out`` (module docstring). ``resume`` continues from
    ``out/checkpoint.safetensors`` with the saved config (``config``, if given, may change only the
    fields :data:`BOOKKEEPING` and :data:`CURRICULUM`, e.g. raise ``steps``)."""
    from accelerate import Accelerator

    t_start = time.perf_counter()
    run = Path(out)
    config = _resolve_config(run, config, resume)
    train = SynthShards(data, split="train")
    if not len(train):
        raise DataError(f"{data}: no training samples")
    held_out = SynthShards(data, split="held_out")
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    device = accelerator.device
    main = accelerator.is_main_process
    text = TextEncoder.from_pretrained(config.text_encoder)

    geometry = data_geometry(train)
    torch.manual_seed(config.seed)
    model = build_model(config, text.dim, geometry)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    ema = EMA(model, config.ema_decay)
    checkpoint = run / CHECKPOINT_FILE
    start = _restore(checkpoint, model, optimizer, ema) if resume and checkpoint.exists() else 0
    if main:
        RunFolder(run).write_config(PIPELINE, config, PriorTrainInputs(str(Path(data).resolve())))
        logger.info("prior: %.2f M parameters, %d training samples", sum(p.numel() for p in model.parameters()) / 1e6, len(train))
    model, optimizer = accelerator.prepare(model, optimizer)
    bare = accelerator.unwrap_model(model)
    ema.shadow = {k: v.to(device) for k, v in ema.shadow.items()}
    scheduler = DDPMScheduler.from_config(bare.scheduler_config)
    sheet_truth, sheet_cond = _sheet_conditioning(train, held_out, text, config) if main else (None, None)

    def save() -> None:
        if main:
            dtype = getattr(torch, config.checkpoint_dtype)
            save_training_state(checkpoint, step + 1, bare, ema.shadow, optimizer, {"config": config.to_dict(), "geometry": geometry}, dtype=dtype)

    def ema_model() -> MultiViewVideoTransformer:
        copy = build_model(config, text.dim, geometry).to(device)
        ema.copy_to(copy)
        return copy.eval()

    losses: list[float] = []
    last = float("nan")
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="train-prior", disable=bar_disabled(main and progress))
    t_log = time.perf_counter()
    step = start - 1
    for step in bar:
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step * 101 + accelerator.process_index)
        idx = torch.randint(len(train), (config.batch_size,), generator=gen)
        x0, cond = make_batch([train[int(i)] for i in idx], text, config.recipe, gen)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        with accelerator.autocast():
            loss = diffusion_loss(model, scheduler, x0.to(device), cond.to(device), gen, snr_gamma=config.snr_gamma,
                                  high_noise_fraction=config.high_noise_fraction, high_noise_span=config.high_noise_span)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(bare, step)
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            last = sum(losses) / len(losses)
            if main:
                now = time.perf_counter()
                line = {"step": step + 1, "loss": last, "lr": learning_rate(config, step), "s_per_step": (now - t_log) / len(losses)}
                with open(run / LOSS_FILE, "a") as f:
                    f.write(json.dumps(line) + "\n")
                t_log = now
            losses = []
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            save()
        if main and config.sample_every and (step + 1) % config.sample_every == 0:
            _write_sheet(run / SAMPLES_FOLDER / f"step_{step + 1:06d}.png", ema_model(), sheet_truth, sheet_cond, config, device)
    accelerator.wait_for_everyone()
    model_dir = run / MODEL_FOLDER
    if main:
        final = ema_model()
        _write_sheet(run / SAMPLES_FOLDER / f"step_{config.steps:06d}.png", final, sheet_truth, sheet_cond, config, device)
        # nn.Module.to: diffusers' ModelMixin.to warns of fp32-kept modules even when there are none.
        torch.nn.Module.to(final, getattr(torch, config.export_dtype)).save_pretrained(str(model_dir))
    return PriorTrainResult(run, model_dir, config.steps, last, time.perf_counter() - t_start)
