"""The received messages waiting for the application: :class:`MessageStream`."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from .._errors import PeerClosed

__all__ = ["MessageStream"]


class MessageStream:
    """The received messages of one peer: ``async for msg in peer.messages()``.

    Bounded in messages and in bytes (their size on the wire): when it is
    full, the peer's reader waits (backpressure on the remote), except for
    the message types the protocol drops instead (the modern protocol's relay
    announcements, as rusty-kaspa does), which are counted in ``dropped``.
    A message larger than the byte bound is still taken when the stream is
    empty.

    Messages already waiting are handed out without a trip through the
    scheduler (cancellation is still checked on every call, and every 64th
    message yields), so a burst costs one wake-up, not one per message.
    Iteration ends when the peer closes and what was received is read;
    :meth:`receive` then raises :class:`~trio_kaspa_peer.PeerClosed`.
    """

    __slots__ = (
        "_bytes",
        "_closed",
        "_consumer",
        "_items",
        "_room",
        "_since_yield",
        "dropped",
        "max_bytes",
        "max_count",
    )

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._items: deque[tuple[Any, int]] = deque()
        self._bytes = 0
        self._closed = False
        self._consumer = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()
        self._since_yield = 0
        self.dropped = 0
        """How many messages were dropped because the stream was full."""

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """The wire size of the messages waiting."""
        return self._bytes

    # -- the peer's side ------------------------------------------------------------------------

    def _fits(self, size: int) -> bool:
        items = self._items
        return not items or (len(items) < self.max_count and self._bytes + size <= self.max_bytes)

    def put_nowait(self, msg: Any, size: int) -> bool:
        """Queue ``msg`` if it fits (``False`` if it does not: wait with :meth:`put`)."""
        if not self._fits(size):
            return False
        self._items.append((msg, size))
        self._bytes += size
        if self._consumer:
            self._consumer.unpark()
        return True

    async def put(self, msg: Any, size: int, on_wait: Callable[[bool], None]) -> None:
        """Queue ``msg``, waiting for room; ``on_wait(True/False)`` brackets the wait."""
        if self.put_nowait(msg, size):
            return
        on_wait(True)
        try:
            while not self._closed and not self._fits(size):
                await self._room.park()
        finally:
            on_wait(False)
        if not self._closed:
            self.put_nowait(msg, size)

    def close(self) -> None:
        """No more messages will come: iteration ends once the rest is read."""
        self._closed = True
        self._consumer.unpark_all()
        self._room.unpark_all()

    # -- the application's side ----------------------------------------------------------------

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> Any:
        msg = await self._next()
        if msg is _END:
            raise StopAsyncIteration
        return msg

    async def receive(self) -> Any:
        """The next message; :class:`PeerClosed` once the peer is closed and drained."""
        msg = await self._next()
        if msg is _END:
            raise PeerClosed("peer is closed: no more messages")
        return msg

    def receive_nowait(self) -> Any:
        """The next message if one is waiting, else :class:`trio.WouldBlock`."""
        if self._items:
            return self._pop()
        if self._closed:
            raise PeerClosed("peer is closed: no more messages")
        raise trio.WouldBlock

    def _pop(self) -> Any:
        msg, size = self._items.popleft()
        self._bytes -= size
        if self._room:
            self._room.unpark()
        return msg

    async def _next(self) -> Any:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._items:
            msg = self._pop()
            self._since_yield += 1
            if self._since_yield >= 64:
                self._since_yield = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            return msg
        self._since_yield = 0
        while not self._items:
            if self._closed:
                return _END
            await self._consumer.park()
        return self._pop()


_END: Any = object()
