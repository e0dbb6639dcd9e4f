"""Watching a training loop from outside it: step observers, registered for the duration of a ``with`` block.

A pipeline builds its trainer deep inside; a caller that wants to see every step (the live viewer of
``--viewer``) registers an observer around the call instead of threading it through every signature:

    with observing(viewer):
        reconstruct(data, out)          # viewer(trainer, step, loss) after every step of every trainer inside

Observers are kept in a context variable (per thread / task), so nested and concurrent runs do not see
each other's. An observer should be cheap (throttle itself) and must not change the trainer's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

StepObserver = Callable[[Any, int, float], None]
"""``observer(trainer, step, loss)``: called after each optimisation step (``step`` counts completed steps)."""

_OBSERVERS: ContextVar[tuple[StepObserver, ...]] = ContextVar("motion4d_step_observers", default=())


@contextmanager
def observing(*observers: StepObserver) -> Iterator[None]:
    """Call ``observers`` after every training step run inside the block."""
    token = _OBSERVERS.set(_OBSERVERS.get() + observers)
    try:
        yield
    finally:
        _OBSERVERS.reset(token)


def notify(trainer: Any, step: int, loss: float) -> None:
    """Call the registered observers (the training loop's side)."""
    for observer in _OBSERVERS.get():
        observer(trainer, step, loss)
