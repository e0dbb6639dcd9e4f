"""The one exception type for problems with user-supplied data."""

from __future__ import annotations


class DataError(ValueError):
    """A user-facing problem with input data: a missing, unreadable or inconsistent file or argument.

    The message is a single line that starts with the offending file (or argument) so the command line
    can print ``error: <message>`` without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).strip().splitlines()))
