"""Exceptions out of a peer's nursery: let the body's and the tasks' errors out as themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

import trio

__all__ = ["is_passthrough", "open_block_nursery", "raise_as_is", "reraise_group"]


def reraise_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """What to raise for a group that came out of a peer's nursery.

    Only ``Cancelled`` (for an enclosing scope, which Trio handles in groups)
    and non-``Exception`` errors such as ``KeyboardInterrupt`` get this far:
    the body's and the tasks' exceptions are kept aside and re-raised as
    themselves.  A lone non-``Cancelled`` exception is returned bare.
    """
    _, rest = group.split(trio.Cancelled)
    if rest is None:
        return group
    leaves: list[BaseException] = []
    pending: list[BaseException] = [rest]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else group


def raise_as_is(exc: BaseException) -> NoReturn:
    """Raise ``exc`` keeping its own ``__context__``.

    Raised from a context manager's exit, an exception would otherwise get
    the ``Cancelled`` that unwound the body as its context: noise in the
    traceback that has nothing to do with it.
    """
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        # Kept in this frame, the error would be in a cycle with its own traceback.
        del exc, context


def is_passthrough(exc: BaseException) -> bool:
    """Exceptions that must travel through the nursery untouched: ``Cancelled`` (alone, or
    in a group holding nothing else, as a nursery raises it) and ``GeneratorExit``."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, (trio.Cancelled, GeneratorExit))


@asynccontextmanager
async def open_block_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery for the background tasks of an ``open_*`` block (a crawl, a store's
    writer): cancelled when the block ends, and what the block raises, or a single error
    of those tasks, comes out as itself, never in an exception group.

    When both fail, the block's error is raised with a note naming the task's (a
    ``KeyboardInterrupt`` or the like in a task is raised instead, with a note naming
    the block's).
    """
    outcome: BaseException | None = None
    failure: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                if is_passthrough(exc):
                    raise
                outcome = exc  # the block's own error: raised below, as itself
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Raised below, outside this handler: raised here, the error would get the group
        # (which holds it) as its context.  (A task's error still takes the collector to
        # free: Trio's frames that handled it hold it, and the block's Cancelled them.)
        failure = reraise_group(group)
    if outcome is not None and failure is not None and not is_passthrough(failure):
        if isinstance(failure, Exception):
            outcome.add_note(f"and a task of the block failed meanwhile: {failure!r}")
            failure = None
        else:
            failure.add_note(f"while the block raised {outcome!r}")
            outcome = None
    error = outcome if outcome is not None else failure
    del outcome, failure, nursery  # the nursery keeps the tasks' errors
    if error is not None:
        try:
            raise_as_is(error)
        finally:
            del error  # nor may this frame keep the error it raises
