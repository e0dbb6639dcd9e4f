"""The table a command prints when it is done: what it wrote (paths and sizes) and its numbers.

Printed on stderr (stdout carries the JSON result for scripts); ``--quiet`` and ``--json`` leave it out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

NUMBERS = ("psnr", "ssim", "motion_amplitude", "n_gaussians", "iters", "seconds", "loss", "steps", "n_images", "vertex_error_pct",
           "chamfer_pct", "prompts")  # fmt: skip
"""Result keys shown first, in this order, when present (other numbers follow)."""
SKIP = {"run", "stopped_by_budget"}
"""Result keys not shown."""
LISTED_FILES = 12
"""Files listed at most per folder."""


def human_size(n: int) -> str:
    """``1234567`` → ``"1.2 MB"``."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _number(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"{value}"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return None


def written(result: dict, run: Path | None) -> list[tuple[str, str]]:
    """(path, size) of what a command wrote: the run folder's entries (checkpoints folded into one line), or
    the paths its result names."""
    rows = []
    if run is not None and run.is_dir():
        entries = sorted(run.iterdir(), key=lambda p: (p.is_dir(), p.name))
        for p in entries[:LISTED_FILES]:
            rows.append((str(p) + ("/" if p.is_dir() else ""), human_size(_size(p))))
        if len(entries) > LISTED_FILES:
            rows.append((f"… {len(entries) - LISTED_FILES} more in {run}", ""))
        return rows
    for key in ("out", "video", "dataset", "root", "model_dir"):
        value = result.get(key)
        if isinstance(value, str) and Path(value).exists():
            rows.append((value, human_size(_size(Path(value)))))
    return rows


def summary_table(name: str, result: dict, run: Path | None = None) -> str:
    """The summary of ``motion4d NAME``'s ``result`` (and its run folder ``run``) as aligned text lines."""
    numbers = [(k, _number(result[k])) for k in NUMBERS if k in result]
    numbers += [(k, _number(v)) for k, v in result.items() if k not in NUMBERS and k not in SKIP]
    numbers = [(k, v) for k, v in numbers if v is not None]
    files = written(result, run)
    width = max([len(k) for k, _ in numbers] + [len(p) for p, _ in files] + [10])
    lines = [f"motion4d {name}: done"]
    if files:
        lines.append("  wrote")
        lines += [f"    {p:<{width}}  {s:>9}" for p, s in files]
    if numbers:
        lines.append("  numbers")
        lines += [f"    {k:<{width}}  {v:>9}" for k, v in numbers]
    return "\n".join(lines)
