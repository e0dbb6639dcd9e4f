"""``DataError`` lives in :mod:`motion4d.errors` (below every layer); importable from here too."""

from motion4d.errors import DataError

__all__ = ["DataError"]
