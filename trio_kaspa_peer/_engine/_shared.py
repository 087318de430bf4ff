"""What the peers of one :class:`~trio_kaspa_peer.PeerContext` share in the engine:
the receive budget for large messages and the worker threads that decode them."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .._sansio._context import PeerContext

__all__ = ["ByteBudget", "EngineShared", "shared_state"]


class ByteBudget:
    """Bytes handed out first come, first served, at most ``total`` at once.

    One request larger than the whole budget is still granted when nothing
    else is held (it could never be otherwise).
    """

    __slots__ = ("_waiters", "total", "used")

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiters: deque[tuple[int, trio.Event]] = deque()

    def _fits(self, nbytes: int) -> bool:
        return self.used == 0 or self.used + nbytes <= self.total

    def try_acquire(self, nbytes: int) -> bool:
        """Take ``nbytes`` now if they fit and nobody waits before us."""
        if self._waiters or not self._fits(nbytes):
            return False
        self.used += nbytes
        return True

    async def acquire(self, nbytes: int) -> None:
        """Take ``nbytes``, waiting in line for them."""
        if self.try_acquire(nbytes):
            await trio.lowlevel.checkpoint()
            return
        entry = (nbytes, trio.Event())
        self._waiters.append(entry)
        try:
            await entry[1].wait()
        except BaseException:
            if entry[1].is_set():
                self.release(nbytes)  # granted as we were cancelled: give it back
            else:
                self._waiters.remove(entry)
                self._grant()  # the head of the line may have changed
            raise

    def release(self, nbytes: int) -> None:
        self.used -= nbytes
        self._grant()

    def _grant(self) -> None:
        waiters = self._waiters
        while waiters and self._fits(waiters[0][0]):
            nbytes, event = waiters.popleft()
            self.used += nbytes
            event.set()


class EngineShared:
    """The Trio objects behind a context's shared limits (made on first use)."""

    __slots__ = ("offload_limiter", "receive_budget")

    def __init__(self, context: PeerContext) -> None:
        self.receive_budget = ByteBudget(context.receive_budget)
        self.offload_limiter = trio.CapacityLimiter(context.offload_threads)


def shared_state(context: PeerContext) -> EngineShared:
    """The engine's shared objects for ``context``."""
    state = context.engine_state
    if not isinstance(state, EngineShared):
        state = context.engine_state = EngineShared(context)
    return state
