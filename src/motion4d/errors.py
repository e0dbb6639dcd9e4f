"""The one exception type for problems with user-supplied data."""

from __future__ import annotations


class DataError(ValueError):
    """A user-facing problem with input data: a missing, unreadable or inconsistent file or argument.

    The message is a single line that starts with the offending file (or argument) so the command line
    can print ``error: <message>`` without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).strip().splitlines()))


class MissingFileError(DataError, FileNotFoundError):
    """A file the user named (or a run folder should hold) is not there: a :class:`DataError` that is also
    a :class:`FileNotFoundError`."""


def naming(path: object, e: Exception) -> DataError:
    """``e`` as a :class:`DataError` whose message starts with ``path`` (``e`` itself when it already does).

    A message that starts with the file's stem instead (as a mesh named after its file reports) loses the stem.
    """
    msg, where = first_line(e), str(path)
    if msg.startswith(where) and isinstance(e, DataError):
        return e
    stem = getattr(path, "stem", None)
    if stem and msg.startswith(f"{stem}: "):
        msg = msg[len(stem) + 2 :]
    return DataError(f"{where}: {msg}")


def first_line(e: BaseException) -> str:
    """The first line of ``e``'s message (its type name when the message is empty), for ``DataError(f"{path}: ... ({first_line(e)})")``."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
