"""The outbound queue: bounded in messages and in bytes, one ``put`` with an explicit policy."""

from __future__ import annotations

from collections import deque
from typing import Any, Final

import trio

from .._errors import OutboundQueueFull
from .._sansio._interface import SendPolicy

__all__ = ["DROPPED", "QUEUED", "WRITTEN", "Outbox", "Outgoing"]

QUEUED: Final = 0
WRITTEN: Final = 1
DROPPED: Final = 2


class Outgoing:
    """One message on its way out: what the core encoded, and who waits for it."""

    __slots__ = ("data", "done", "msg", "state")

    def __init__(self, msg: Any, data: bytes, done: trio.Event | None) -> None:
        self.msg: Any = msg
        self.data: bytes = data
        self.done: trio.Event | None = done
        self.state: int = QUEUED

    def finish(self, state: int) -> None:
        if self.state == QUEUED:
            self.state = state
            if self.done is not None:
                self.done.set()


def _nothing() -> None:
    return None


class Outbox:
    """Messages waiting for the writer, at most ``max_count`` and ``max_bytes`` of them.

    A message larger than ``max_bytes`` is still taken when the queue is
    empty (it could never be sent otherwise).  What happens when it is full
    is the caller's :class:`~trio_kaspa_peer._sansio.SendPolicy`: wait for
    room, drop the message quietly, or raise :class:`OutboundQueueFull`.
    Waiters are served first come, first served.
    """

    __slots__ = ("_bytes", "_closed", "_items", "_room", "_writer_wake", "max_bytes", "max_count")

    def __init__(self, max_count: int, max_bytes: int, writer_wake: Any) -> None:
        self.max_count: int = max_count
        self.max_bytes: int = max_bytes
        self._items: deque[Outgoing] = deque()
        self._bytes = 0
        self._closed = False
        self._room = trio.lowlevel.ParkingLot()
        self._writer_wake = writer_wake

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def nbytes(self) -> int:
        return self._bytes

    def room(self) -> int:
        """How many more messages fit by count."""
        return self.max_count - len(self._items)

    def _fits(self, size: int) -> bool:
        items = self._items
        return not items or (len(items) < self.max_count and self._bytes + size <= self.max_bytes)

    def _append(self, item: Outgoing) -> None:
        self._items.append(item)
        self._bytes += len(item.data)
        self._writer_wake()

    def put_nowait(self, item: Outgoing, policy: SendPolicy) -> bool:
        """Queue ``item`` if it fits; else drop it (``False``) or raise, per ``policy``.

        ``SendPolicy.WAIT`` is not for this method: use :meth:`put`.
        """
        if self._closed:
            return False
        if self._fits(len(item.data)) and not len(self._room):
            self._append(item)
            return True
        if policy is SendPolicy.RAISE:
            raise OutboundQueueFull(
                f"outbound queue is full ({len(self._items)} messages, {self._bytes} bytes)"
            )
        return False

    async def put(self, item: Outgoing) -> bool:
        """Queue ``item``, waiting for room; ``False`` if the outbox closed meanwhile."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return False
        size = len(item.data)
        if self._fits(size) and not len(self._room):
            self._append(item)
            await trio.lowlevel.checkpoint()
            return True
        while True:
            await self._room.park()
            if self.closed:
                return False
            if self._fits(size):
                self._append(item)
                if self._fits(0):
                    self._room.unpark()
                return True

    def holds(self, item: Outgoing) -> bool:
        """Whether ``item`` waits in the queue (a bounded scan: for failure paths)."""
        return any(queued is item for queued in self._items)

    def get_nowait(self) -> Outgoing | None:
        """The next message for the writer, or ``None``."""
        items = self._items
        if not items:
            return None
        item = items.popleft()
        self._bytes -= len(item.data)
        if self._room:
            self._room.unpark()
        return item

    def close(self) -> list[Outgoing]:
        """No more puts; waiters are released.  Returns what was still queued.

        The writer's wake-up is dropped: it refers back to the peer, and a
        closed peer must be freed by reference counting, not left to the
        cyclic garbage collector (whose full passes stall the event loop
        for as long as the process holds objects).
        """
        self._closed = True
        self._writer_wake = _nothing
        self._room.unpark_all()
        left = list(self._items)
        self._items.clear()
        self._bytes = 0
        return left
