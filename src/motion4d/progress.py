"""Progress bars: one rule for whether a tqdm bar shows.

A bar shows when its caller asks for one, stderr is a terminal (tqdm's ``disable=None``), and the command
is not run with ``--quiet`` / ``--json`` (which set ``MOTION4D_NO_PROGRESS``; set it yourself to silence
every bar of a script).
"""

from __future__ import annotations

import os

NO_PROGRESS = "MOTION4D_NO_PROGRESS"
"""The environment variable that turns every progress bar off."""


def bar_disabled(wanted: bool = True) -> bool | None:
    """tqdm's ``disable`` argument for a bar the caller ``wanted``."""
    if not wanted or os.environ.get(NO_PROGRESS, "") not in ("", "0"):
        return True
    return None
