"""Safetensors files, read and written in one place: named tensors plus string metadata.

Every model file (whose ``"format"`` metadata names the model class that wrote it), ``.m4d`` file and
training checkpoint goes through :func:`write_safetensors` / :func:`read_safetensors`. Reading checks the
file, so that damage reaches the user as one :class:`~motion4d.errors.DataError` line naming the file
rather than a ``SafetensorError`` traceback: a missing file, an empty, truncated or random-bytes file, and
floating-point tensors holding NaN or infinity. :func:`model_loader` does the same for what a model's
``load`` does with the tensors (a missing tensor, a wrong shape).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from motion4d.atomic import atomic_path
from motion4d.errors import DataError, MissingFileError, first_line

F = TypeVar("F", bound=Callable)


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Tensor], metadata: dict[str, str]) -> Path:
    """Write ``tensors`` (detached, on the CPU) with string ``metadata`` to ``path``, atomically."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def _check_readable(path: Path, what: str) -> None:
    if not path.is_file():
        raise MissingFileError(f"{path}: no such {what} file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (not a {what} file)")


def read_metadata(path: str | os.PathLike, what: str = "safetensors") -> dict[str, str]:
    """The string metadata of safetensors file ``path`` (header only); ``what`` names the kind of file in errors.

    Raises :class:`~motion4d.errors.MissingFileError` for a missing file and :class:`DataError` naming the
    file for one that is not a complete safetensors file.
    """
    path = Path(path)
    _check_readable(path, what)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # noqa: BLE001 - SafetensorError, OSError: the file is damaged
        raise DataError(f"{path}: not a readable {what} file, damaged or truncated ({first_line(e)})") from None


def read_safetensors(path: str | os.PathLike, what: str = "safetensors", *, finite: bool | tuple[str, ...] = True) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``(tensors on the CPU, metadata)`` of safetensors file ``path``, checked as :func:`read_metadata`
    does and for floating-point tensors that are not finite (a :class:`DataError` naming the tensor): all of
    them (``finite=True``) or those whose names start with one of the prefixes ``finite``."""
    path = Path(path)
    metadata = read_metadata(path, what)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: not a readable {what} file, damaged or truncated ({first_line(e)})") from None
    for name, t in tensors.items():
        checked = finite is True or (bool(finite) and name.startswith(finite))
        if checked and t.is_floating_point() and not bool(t.isfinite().all()):
            raise DataError(f"{path}: tensor {name!r} holds NaN or infinite values (a damaged {what} file)")
    return tensors, metadata


def save_tensors(path: str | os.PathLike, tensors: dict[str, Tensor], format: str, *, sh_degree: int, **metadata: str) -> Path:
    """Write a model file: ``tensors`` with metadata ``format``, ``sh_degree`` and ``metadata``, atomically."""
    return write_safetensors(path, tensors, {"format": format, "sh_degree": json.dumps(int(sh_degree)), **metadata})


def load_tensors(path: str | os.PathLike, format: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``(tensors on the CPU, metadata)`` of a model file :func:`save_tensors` wrote with ``format``.

    Raises :class:`~motion4d.errors.MissingFileError` (a FileNotFoundError) for a missing file and
    :class:`DataError` naming the file for a damaged one (see :func:`read_safetensors`) or another format.
    """
    path = Path(path)
    metadata = read_metadata(path, "model")
    if metadata.get("format") != format:
        raise DataError(f"{path}: not a {format} file (format {metadata.get('format')!r})")
    return read_safetensors(path, "model")[0], metadata


def model_loader(format: str) -> Callable[[F], F]:
    """Decorate a model's ``load(cls, path, ...)``: what the tensors of a readable file cannot build (a missing
    tensor, a wrong shape, bad metadata: KeyError, IndexError, TypeError, ValueError, RuntimeError) becomes a
    :class:`DataError` naming the file and ``format``."""

    def wrap(load: F) -> F:
        @functools.wraps(load)
        def checked(cls, path, *args, **kwargs):
            try:
                return load(cls, path, *args, **kwargs)
            except (DataError, OSError):
                raise
            except KeyError as e:
                raise DataError(f"{path}: not a valid {format} file (tensor or metadata {first_line(e)} missing)") from None
            except (IndexError, TypeError, ValueError, RuntimeError) as e:
                raise DataError(f"{path}: not a valid {format} file ({first_line(e)})") from None

        return checked  # type: ignore[return-value]

    return wrap
