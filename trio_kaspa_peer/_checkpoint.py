"""A pause that long sans-IO work takes now and then, if its thread was given one.

The parsed-size walk and the piecewise parse of a large modern message are loops of
pure Python in a worker thread; while they run, the event loop's thread waits for the
interpreter's lock after every system call it makes.  They call :func:`checkpoint`
between steps.  It does nothing unless the thread running them was given a pause
(:func:`pausing`): the engine gives its worker threads one that lets go of the lock
when the worker finds itself waiting for it, so a busy event loop keeps it.
Nothing here knows of Trio or of any clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["checkpoint", "current_pause", "pausing"]

_LOCAL = threading.local()


def current_pause() -> Callable[[], None] | None:
    """This thread's pause, if it was given one (for a loop to look it up once)."""
    pause: Callable[[], None] | None = getattr(_LOCAL, "pause", None)
    return pause


def checkpoint() -> None:
    """Take this thread's pause, if it was given one."""
    pause = getattr(_LOCAL, "pause", None)
    if pause is not None:
        pause()


@contextmanager
def pausing(pause: Callable[[], None]) -> Iterator[None]:
    """Give this thread ``pause`` for the duration."""
    saved = getattr(_LOCAL, "pause", None)
    _LOCAL.pause = pause
    try:
        yield
    finally:
        _LOCAL.pause = saved
