"""Range checks for config dataclasses, called from their ``__post_init__``.

Each raises a ValueError whose message starts with the field's name (``"iters must be >= 0, got -1"``),
so that a command line can put the option's name in its place.
"""

from __future__ import annotations

import dataclasses


def field_names(config: object, prefix: str) -> list[str]:
    """Names of ``config``'s dataclass fields that start with ``prefix`` (e.g. every ``lr_`` / ``lambda_``)."""
    return [f.name for f in dataclasses.fields(config) if f.name.startswith(prefix)]


def at_least(config: object, minimum: float, *names: str) -> None:
    """Each field in ``names`` must be ``>= minimum``."""
    for name in names:
        value = getattr(config, name)
        if not value >= minimum:  # also catches NaN
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def positive(config: object, *names: str) -> None:
    """Each field in ``names`` must be ``> 0``."""
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def within(config: object, name: str, low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> None:
    """Field ``name`` must lie in the interval from ``low`` to ``high`` (closed unless ``open_low``/``open_high``)."""
    value = getattr(config, name)
    ok = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
