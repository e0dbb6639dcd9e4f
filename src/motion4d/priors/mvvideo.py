"""Our multi-view video diffusion transformer (Motion4D's T24D 4D diffusion), a diffusers model.

Input and output are grids ``[B, V, T, C, H, W]``; each image is cut into ``p × p`` patches, so a sample is
``V · T · (H/p) · (W/p)`` tokens ``[B, V, T, N, D]``. Every layer is

1. self-attention within windows of cells of the view × frame grid, the layer's kind fixing the windows:
   spatial (each image), frame (one view's frames), view (one frame's views) or Klotski (small blocks of the
   grid, several sizes, shifted from one Klotski layer to the next with wrap-around);
2. motion-enhancement cross-attention to the text tokens and to motion tokens (from the pooled text, their
   amplitude multiplied by ``motion_scale``) plus one always-present null token;
3. an MLP;

with adaLN-Zero modulation per *cell* from the timestep, pooled text, motion scale, the view's camera and the
frame's time (so every view can have any azimuth / elevation); with ``ray_embedding``, every token also gets
the embedding of its patch's camera ray (Plücker coordinates), so where it looks in the world is an input.
Reference conditioning: the clean reference cells and their mask are extra input channels (``2C + 1`` per pixel). The output, for every cell, is what
``prediction_type`` in the config says: by default the clean grid x0 ("sample"), which a token can carry
when its patch (4 · p² numbers) is wider than the model, where noise or v cannot (JiT, Li & He 2025).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import Tensor, nn

from motion4d.errors import DataError
from motion4d.priors.attention import FULL, CrossAttention, GridWindowAttention
from motion4d.priors.conditioning import Conditioning
from motion4d.priors.embeddings import CameraEmbedding, FourierEmbedding, RayEmbedding, TimestepEmbedding, patch_positions

logger = logging.getLogger(__name__)

LAYER_KINDS = ("spatial", "frame", "view", "klotski")
"""The self-attention kinds of a layer; the default depth cycles through them in this order."""


def layer_windows(kinds: list[str], klotski_windows: list[tuple[int, int]]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``(window, shift)`` in cells for each layer kind: Klotski layers take the windows in turn, the k-th
    shifted by k half-windows along each axis (so the blocks slide across the grid from layer to layer)."""
    out, k = [], 0
    for kind in kinds:
        if kind == "spatial":
            out.append(((1, 1), (0, 0)))
        elif kind == "frame":
            out.append(((1, FULL), (0, 0)))
        elif kind == "view":
            out.append(((FULL, 1), (0, 0)))
        elif kind == "klotski":
            wv, wt = klotski_windows[k % len(klotski_windows)]
            out.append(((wv, wt), (k * max(wv // 2, 1), k * max(wt // 2, 1))))
            k += 1
        else:
            raise ValueError(f"layer kind must be one of {', '.join(LAYER_KINDS)}, got {kind!r}")
    return out


def patchify(x: Tensor, p: int) -> Tensor:
    """``[B, V, T, C, H, W]`` → ``[B, V, T, (H/p)(W/p), C p p]`` (patches row-major)."""
    b, v, t, c, h, w = x.shape
    x = x.reshape(b, v, t, c, h // p, p, w // p, p).permute(0, 1, 2, 4, 6, 3, 5, 7)
    return x.reshape(b, v, t, (h // p) * (w // p), c * p * p)


def unpatchify(x: Tensor, p: int, c: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`patchify`."""
    b, v, t = x.shape[:3]
    x = x.reshape(b, v, t, h // p, w // p, c, p, p).permute(0, 1, 2, 5, 3, 6, 4, 7)
    return x.reshape(b, v, t, c, h, w)


class GridBlock(nn.Module):
    """One layer: grid-window self-attention, cross-attention to the context, MLP; adaLN-Zero per cell."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, window: tuple[int, int], shift: tuple[int, int]) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = GridWindowAttention(dim, heads, window, shift)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.cross = CrossAttention(dim, heads)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.ada = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, h: Tensor, cond: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        """``h [B, V, T, N, D]``, ``cond [B, V, T, D]`` (activated), ``context [B, K, D]``, ``context_mask [B, K]``."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond).unsqueeze(3).chunk(6, dim=-1)
        h = torch.addcmul(h, gate1, self.attn(torch.addcmul(shift1, self.norm1(h), 1 + scale1)))
        h = h + self.cross(self.norm2(h), context, context_mask)
        return torch.addcmul(h, gate2, self.mlp(torch.addcmul(shift2, self.norm3(h), 1 + scale2)))


class MultiViewVideoTransformer(ModelMixin, ConfigMixin):
    """The denoiser ``(x_t [B,V,T,C,H,W], timesteps [B], Conditioning) → prediction [B,V,T,C,H,W]``.

    Works for any V, T and any H, W divisible by ``patch_size`` (windows are fitted to the grid).
    ``sample_size``, ``fov_deg`` and ``camera_radius`` record the images it was trained on (side in pixels,
    field of view, camera distance): a pipeline generates with them unless told otherwise.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        patch_size: int = 8,
        width: int = 128,
        depth: int = 8,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        layer_kinds: list[str] | None = None,
        klotski_windows: list[list[int]] | None = None,
        text_dim: int = 384,
        motion_tokens: int = 4,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        prediction_type: str = "sample",
        clip_sample: bool = True,
        text_encoder: str = "bundled:all-MiniLM-L6-v2",
        sample_size: int = 64,
        fov_deg: float = 40.0,
        camera_radius: float = 3.0,
        ray_embedding: bool = False,
    ) -> None:
        super().__init__()
        kinds = list(layer_kinds) if layer_kinds is not None else [LAYER_KINDS[i % 4] for i in range(depth)]
        if len(kinds) != depth:
            raise ValueError(f"layer_kinds lists {len(kinds)} layers but depth is {depth}")
        windows = [tuple(w) for w in (klotski_windows or [[2, 2], [2, 4]])]
        c, p = in_channels, patch_size
        self.patch_in = nn.Linear((2 * c + 1) * p * p, width)
        self.t_embed = TimestepEmbedding(width)
        self.text_pooled = nn.Sequential(nn.Linear(text_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.text_tokens = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, width))
        self.motion_embed = FourierEmbedding(1, width)
        self.motion_base = nn.Parameter(torch.randn(motion_tokens, width) * 0.02)
        self.motion_from_text = nn.Linear(text_dim, motion_tokens * width)
        self.null_token = nn.Parameter(torch.randn(1, width) * 0.02)
        self.camera_embed = CameraEmbedding(width)
        self.time_embed = FourierEmbedding(1, width)
        self.blocks = nn.ModuleList(
            GridBlock(width, heads, mlp_ratio, w, s) for w, s in layer_windows(kinds, windows)
        )
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(width, 2 * width)
        self.patch_out = nn.Linear(width, c * p * p)
        for layer in (self.ada_out, self.patch_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # Registered last, so that its parameters come after every other one (a run that gains it resumes the
        # optimizer state of the others unchanged).
        self.ray_embed = RayEmbedding(width, reference_radius=camera_radius) if ray_embedding else None

    @property
    def prediction_type(self) -> str:
        return self.config.prediction_type

    @property
    def scheduler_config(self) -> dict:
        """The training noise schedule, as a diffusers scheduler config (DDPM / DDIM / DPM-Solver++ read it)."""
        return {
            "num_train_timesteps": self.config.num_train_timesteps,
            "beta_schedule": self.config.beta_schedule,
            "prediction_type": self.config.prediction_type,
            "clip_sample": self.config.clip_sample,
        }

    def _context(self, cond: Conditioning) -> tuple[Tensor, Tensor]:
        b = cond.batch_size
        text = self.text_tokens(cond.text_tokens.to(self.dtype))
        motion = self.motion_base + self.motion_from_text(cond.text_pooled.to(self.dtype)).view(b, *self.motion_base.shape)
        motion = motion * cond.motion_scale.to(self.dtype)[:, None, None]
        context = torch.cat([text, motion, self.null_token.expand(b, 1, -1)], dim=1)
        always = torch.ones(b, motion.shape[1] + 1, dtype=torch.bool, device=text.device)
        return context, torch.cat([cond.text_mask.to(text.device).bool(), always], dim=1)

    def forward(self, x_t: Tensor, timesteps: Tensor, cond: Conditioning) -> Tensor:
        """``x_t [B,V,T,C,H,W]``, ``timesteps [B]`` (or a scalar), ``cond`` → prediction ``[B,V,T,C,H,W]``."""
        cond.check(x_t)
        b, nv, nt, c, h, w = x_t.shape
        p = self.config.patch_size
        if c != self.config.in_channels or h % p or w % p:
            raise ValueError(f"grid has {c} channels of {h}x{w}; this model takes {self.config.in_channels} channels, sides divisible by {p}")
        timesteps = torch.as_tensor(timesteps, device=x_t.device).expand(b)
        given = cond.given(x_t)
        mask = given[..., None, None, None].to(x_t.dtype)
        reference = torch.zeros_like(x_t) if cond.reference is None else cond.reference.to(x_t) * mask
        inp = torch.cat([x_t, reference, mask.expand(b, nv, nt, 1, h, w)], dim=3)
        tokens = self.patch_in(patchify(inp, p).to(self.dtype))
        tokens = tokens + patch_positions(h // p, w // p, tokens.shape[-1]).to(tokens)

        cam = self.camera_embed(cond.azimuth_deg, cond.elevation_deg, cond.radius)  # [B, V, D]
        frame = self.time_embed(cond.times[..., None].float() * torch.pi)  # [B, T, D]
        cell = cam[:, :, None] + frame[:, None, :]
        glob = self.t_embed(timesteps) + self.text_pooled(cond.text_pooled.to(self.dtype))
        glob = glob + self.motion_embed(cond.motion_scale[:, None].float())
        tokens = tokens + cell[:, :, :, None]
        if self.ray_embed is not None:
            rays = self.ray_embed(cond.azimuth_deg, cond.elevation_deg, cond.radius, self.config.fov_deg, h, w, p)
            tokens = tokens + rays[:, :, None].to(tokens)
        cond_vec = F.silu(cell + glob[:, None, None])
        context, context_mask = self._context(cond)

        for block in self.blocks:
            tokens = block(tokens, cond_vec, context, context_mask)
        shift, scale = self.ada_out(cond_vec).unsqueeze(3).chunk(2, dim=-1)
        out = self.patch_out(torch.addcmul(shift, self.norm_out(tokens), 1 + scale))
        return unpatchify(out, p, c, h, w).to(x_t.dtype)


SHIPPED = "shipped"
"""The name of the prior that ships inside the package (trained with ``motion4d train-prior``; see the README)."""


def shipped_prior_path() -> Path:
    """The folder of the shipped prior (``motion4d/weights/prior``: ``config.json`` + safetensors)."""
    return Path(__file__).resolve().parent.parent / "weights" / "prior"


def load_denoiser(folder: str | Path = SHIPPED, **kwargs) -> MultiViewVideoTransformer:
    """``MultiViewVideoTransformer.from_pretrained``: of the shipped prior (:data:`SHIPPED`, the default), a
    folder written by ``save_pretrained``, a ``motion4d train-prior`` run folder (its ``model/``), or a hub id already in
    the local cache (never downloaded). A :class:`DataError` names the folder when it is not such a model (no
    or foreign ``config.json``, missing or damaged weights)."""
    if str(folder) == SHIPPED:
        folder = shipped_prior_path()
        if not (folder / MultiViewVideoTransformer.config_name).is_file():
            raise DataError(f"{folder}: the shipped prior is not in this install (train one with motion4d train-prior and pass --prior)")
    elif not Path(folder).exists() and str(folder).count("/") == 1 and not str(folder).startswith((".", "/", "~")):
        return _from_hub_cache(str(folder), **kwargs)
    folder = Path(folder)
    config = folder / MultiViewVideoTransformer.config_name
    if (folder / "model" / config.name).is_file() and (folder / "checkpoint.safetensors").is_file():
        folder, config = folder / "model", folder / "model" / config.name  # a train-prior run folder: its final model
    if not config.is_file():
        raise DataError(f"{folder}: not a prior model folder (no {config.name}; save one with save_pretrained)")
    try:
        name = json.loads(config.read_text()).get("_class_name")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise DataError(f"{config}: not a valid model config ({exc})") from exc
    if name != MultiViewVideoTransformer.__name__:
        raise DataError(f"{folder}: holds a {name!r} model, not a {MultiViewVideoTransformer.__name__}")
    try:
        return MultiViewVideoTransformer.from_pretrained(str(folder), **{"torch_dtype": torch.float32, **kwargs})
    except Exception as exc:  # diffusers raises OSError / ValueError / safetensors errors / RuntimeError
        raise DataError(f"{folder}: cannot load the model ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from exc


def _from_hub_cache(repo_id: str, **kwargs) -> MultiViewVideoTransformer:
    """A hub id from the local Hugging Face cache only (``local_files_only``); a DataError when it is not there."""
    try:
        return MultiViewVideoTransformer.from_pretrained(repo_id, local_files_only=True, **{"torch_dtype": torch.float32, **kwargs})
    except Exception as exc:
        raise DataError(f"{repo_id}: no such prior folder, and not a model in the local hub cache ({type(exc).__name__})") from exc
