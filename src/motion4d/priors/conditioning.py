"""The one denoiser interface of the priors layer: a noisy grid, timesteps and a :class:`Conditioning`.

A *grid* is a batch of multi-view videos ``x [B, V, T, C, H, W]``: B samples, V views, T frames, C channels
(premultiplied RGBA in [-1, 1] for pixel-space models, see :mod:`motion4d.priors.grid`). Every sampler and
every guidance calls a :class:`Denoiser` the same way, whatever model is behind it (our own transformer, or
later an adapter to a large pretrained video / multi-view model):

    prediction = denoiser(x_t, timesteps, cond)   # [B, V, T, C, H, W], in denoiser.prediction_type

The conditions a sampler can drop for classifier-free guidance are the text, the reference cells and the
motion (``motion_scale`` 0 is "no motion condition"); :meth:`Conditioning.dropped` is the one place that
says what dropping means, for training and sampling alike.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

REFERENCE_KINDS = ("none", "image", "video", "static")
"""The reference masks later commands use: nothing given (text → 4D), view 0 of frame 0 (image → 4D), view 0
of every frame (video → 4D), every view of frame 0 (static asset → 4D)."""


def reference_mask(kind: str, views: int, frames: int) -> Tensor:
    """The ``[V, T]`` bool mask of the cells given clean for a reference ``kind`` of :data:`REFERENCE_KINDS`."""
    mask = torch.zeros(views, frames, dtype=torch.bool)
    if kind == "image":
        mask[0, 0] = True
    elif kind == "video":
        mask[0, :] = True
    elif kind == "static":
        mask[:, 0] = True
    elif kind != "none":
        raise ValueError(f"reference kind must be one of {', '.join(REFERENCE_KINDS)}, got {kind!r}")
    return mask


@dataclass
class Conditioning:
    """Everything a denoiser is conditioned on, batched like the grid ``[B, V, T, C, H, W]`` it goes with."""

    text_tokens: Tensor
    """[B, L, Dt] text token embeddings for cross-attention (zero at padding)."""
    text_mask: Tensor
    """[B, L] bool, True at real tokens; all False = no text (the unconditional prompt)."""
    text_pooled: Tensor
    """[B, Dt] pooled text embedding for global conditioning; zero = no text."""
    azimuth_deg: Tensor
    """[B, V] camera azimuth of each view (0 = front camera on −y, 90 on +x; see ``spherical_viewmats``)."""
    elevation_deg: Tensor
    """[B, V] camera elevation above the xy-plane."""
    radius: Tensor
    """[B, V] camera distance from the origin."""
    times: Tensor
    """[B, T] time of each frame in [0, 1]."""
    motion_scale: Tensor
    """[B] motion amplitude asked for (1 = the data's typical amplitude); 0 = no motion condition."""
    reference: Tensor | None = None
    """[B, V, T, C, H, W] clean cells, read where ``reference_mask`` is True (None: nothing given)."""
    reference_mask: Tensor | None = None
    """[B, V, T] bool, True where the cell is given clean (None: nothing given)."""

    @classmethod
    def create(
        cls, text, azimuth_deg: Tensor, elevation_deg: Tensor, radius: Tensor | float, times: Tensor, *,
        motion_scale: Tensor | float = 1.0, reference: Tensor | None = None, reference_mask: Tensor | None = None,
    ) -> Conditioning:  # fmt: skip
        """Conditioning of B prompts from ``text`` (a :class:`~motion4d.priors.text_encoder.TextEmbeddings`),
        cameras ``[V]`` (the same for every sample) or ``[B, V]``, ``radius`` also a float, frame ``times`` ``[T]``
        or ``[B, T]``, ``motion_scale`` a float or ``[B]``, ``reference_mask`` ``[V, T]`` or ``[B, V, T]``."""
        b = text.pooled.shape[0]
        az = _batched(azimuth_deg, b)
        mask = None if reference_mask is None else reference_mask.bool().expand(b, *reference_mask.shape[-2:]).clone()
        return cls(
            text_tokens=text.tokens, text_mask=text.mask, text_pooled=text.pooled, azimuth_deg=az,
            elevation_deg=_batched(elevation_deg, b).expand_as(az).clone(), radius=_batched(radius, b).expand_as(az).clone(),
            times=_batched(times, b), motion_scale=torch.as_tensor(motion_scale, dtype=torch.float32).expand(b).clone(),
            reference=reference, reference_mask=mask,
        )  # fmt: skip

    @property
    def batch_size(self) -> int:
        return int(self.motion_scale.shape[0])

    def check(self, x: Tensor) -> None:
        """Raise ValueError unless every field matches the grid ``x [B, V, T, C, H, W]``."""
        if x.dim() != 6:
            raise ValueError(f"grid must have shape [B,V,T,C,H,W], got {list(x.shape)}")
        b, v, t = x.shape[:3]
        want = {
            "text_tokens": (b, None, None), "text_mask": (b, None), "text_pooled": (b, None),
            "azimuth_deg": (b, v), "elevation_deg": (b, v), "radius": (b, v), "times": (b, t),
            "motion_scale": (b,), "reference": tuple(x.shape), "reference_mask": (b, v, t),
        }
        for name, shape in want.items():
            value = getattr(self, name)
            if value is None:
                continue
            ok = value.dim() == len(shape) and all(w is None or w == s for w, s in zip(shape, value.shape))
            if not ok:
                raise ValueError(f"conditioning {name} must have shape {list(shape)} (None: any), got {list(value.shape)}")
        if self.text_tokens.shape[1] != self.text_mask.shape[1]:
            raise ValueError("conditioning text_tokens and text_mask disagree on the token count")
        if (self.reference is None) != (self.reference_mask is None):
            raise ValueError("conditioning reference and reference_mask come together (both or neither)")

    def given(self, x: Tensor) -> Tensor:
        """``[B, V, T]`` bool mask of the cells given clean (all False without a reference)."""
        if self.reference_mask is None:
            return torch.zeros(x.shape[:3], dtype=torch.bool, device=x.device)
        return self.reference_mask.to(x.device)

    def apply_reference(self, x: Tensor) -> Tensor:
        """``x`` with the given cells replaced by their clean reference (what a sampler keeps fixed)."""
        if self.reference is None:
            return x
        keep = self.reference_mask[..., None, None, None].to(x.device)
        return torch.where(keep, self.reference.to(x), x)

    def to(self, device: torch.device | str) -> Conditioning:
        return replace(self, **{f.name: _to(getattr(self, f.name), device) for f in fields(self)})

    def dropped(self, text: Tensor | bool = False, reference: Tensor | bool = False, motion: Tensor | bool = False) -> Conditioning:
        """A copy with the text / reference / motion condition removed where the ``[B]`` bool masks (or
        scalars) are True: no text tokens and zero pooled text; no given cell; ``motion_scale`` 0."""
        b = self.batch_size
        dev = self.motion_scale.device
        as_mask = lambda m: torch.as_tensor(m, dtype=torch.bool, device=dev).expand(b)  # noqa: E731
        text, reference, motion = as_mask(text), as_mask(reference), as_mask(motion)
        out = replace(
            self,
            text_tokens=torch.where(text[:, None, None], 0.0, self.text_tokens),
            text_mask=self.text_mask & ~text[:, None],
            text_pooled=torch.where(text[:, None], 0.0, self.text_pooled),
            motion_scale=torch.where(motion, 0.0, self.motion_scale),
        )
        if self.reference_mask is not None:
            out.reference_mask = self.reference_mask & ~reference[:, None, None]
        return out

    @staticmethod
    def cat(items: list[Conditioning]) -> Conditioning:
        """Concatenate along the batch (text tokens zero-padded to the longest); all with or all without reference."""
        length = max(c.text_tokens.shape[1] for c in items)
        pad = lambda t, v: torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, length - t.shape[1]), value=v)  # noqa: E731
        out = {
            "text_tokens": torch.cat([pad(c.text_tokens, 0.0) for c in items]),
            "text_mask": torch.cat([pad(c.text_mask, False) for c in items]),
        }
        for f in fields(Conditioning):
            if f.name not in out:
                values = [getattr(c, f.name) for c in items]
                if any(v is None for v in values) and not all(v is None for v in values):
                    raise ValueError(f"conditioning {f.name}: some batches have it and some do not")
                out[f.name] = None if values[0] is None else torch.cat(values)
        return Conditioning(**out)


def _batched(x: Tensor | float, b: int) -> Tensor:
    """``[N]`` (or a float) → ``[B, N]`` (or ``[B, 1]``) float32; ``[B, N]`` passes through (copied)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return (x.reshape(1, -1).expand(b, -1) if x.dim() < 2 else x).clone()


def _to(value: Tensor | None, device: torch.device | str) -> Tensor | None:
    return None if value is None else value.to(device)


@runtime_checkable
class Denoiser(Protocol):
    """What samplers and guidance call: ``denoiser(x_t [B,V,T,C,H,W], timesteps [B], cond) → [B,V,T,C,H,W]``."""

    @property
    def prediction_type(self) -> str:
        """What the output is: ``"epsilon"`` (the noise), ``"v_prediction"`` or ``"sample"`` (the clean grid)."""
        ...

    @property
    def scheduler_config(self) -> dict:
        """The diffusers scheduler config of the noise schedule it was trained with (``num_train_timesteps``,
        ``beta_schedule``, ``prediction_type``, ...): any diffusers scheduler ``from_config`` of it samples it."""
        ...

    def __call__(self, x_t: Tensor, timesteps: Tensor, cond: Conditioning) -> Tensor: ...
