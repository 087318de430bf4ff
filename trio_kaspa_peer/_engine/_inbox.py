"""The received messages waiting for the application: :class:`MessageStream`."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Final

import trio

from .._errors import PeerClosed

__all__ = ["MessageStream"]

_reschedule: Final = trio.lowlevel.reschedule
_current_task: Final = trio.lowlevel.current_task
_wait: Final = trio.lowlevel.wait_task_rescheduled
_checkpoint_if_cancelled: Final = trio.lowlevel.checkpoint_if_cancelled
_ABORTED: Final = trio.lowlevel.Abort.SUCCEEDED


class MessageStream:
    """Received messages of one peer: ``async for msg in peer.messages()``.

    :meth:`~trio_kaspa_peer.Peer.messages` gives the peer's main stream,
    :meth:`~trio_kaspa_peer.Peer.subscribe` one for chosen message types.
    Each is bounded in messages and in bytes (their size on the wire): when
    it is full, the peer's reader waits (backpressure on the remote), except
    for the message types the protocol drops instead (the modern protocol's
    relay announcements, as rusty-kaspa does) and for a subscription made
    with ``drop_when_full``; what is dropped is counted in ``dropped``.
    A message larger than the byte bound is still taken when the stream is
    empty.  A large message (one decoded off the event loop) counts here at
    the room it holds in the context's receive budget, its size (a
    compressed one: inflated, not its size on the wire), and keeps that
    room until it is taken from here or the stream closes.

    Messages already waiting are handed out without a trip through the
    scheduler (cancellation is still checked on every call, and every 64th
    message yields), so a burst costs one wake-up, not one per message.
    Iteration ends when the peer closes and what was received is read;
    :meth:`receive` then raises :class:`~trio_kaspa_peer.PeerClosed`.
    """

    __slots__ = (
        "_bytes",
        "_carried",
        "_closed",
        "_consumers",
        "_give_back",
        "_items",
        "_producers",
        "_since_yield",
        "_why",
        "drop_when_full",
        "dropped",
        "max_bytes",
        "max_count",
    )

    def __init__(
        self,
        max_count: int,
        max_bytes: int,
        *,
        drop_when_full: bool = False,
        give_back: Callable[[int], None] | None = None,
    ) -> None:
        # give_back(room): a message that held room in the receive budget was taken
        # (or the stream closed); give_back(0): a task begins to wait here.
        self.max_count: int = max_count
        self.max_bytes: int = max_bytes
        self.drop_when_full: bool = drop_when_full
        """Whether the peer drops (and counts) what does not fit, rather than wait."""
        self._items: deque[tuple[Any, int]] = deque()
        self._bytes = 0
        self._closed = False
        self._why = ""
        # Tasks parked here, woken first come, first served.
        # Lists, not deques: a task or two wait here at most, and an empty deque costs
        # 760 bytes against 56, on every peer and every subscription.
        self._consumers: list[trio.lowlevel.Task] = []
        self._producers: list[trio.lowlevel.Task] = []
        self._since_yield = 0
        # The messages that hold room in the receive budget, in order, and the
        # room each holds: given back (give_back) when the message is taken.
        self._carried: deque[tuple[tuple[Any, int], int]] | None = None
        self._give_back = give_back
        self.dropped: int = 0
        """How many messages were dropped because the stream was full."""

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """The wire size of the messages waiting (for a large one, the room it holds)."""
        return self._bytes

    @property
    def carrying(self) -> bool:
        """Whether a message waiting here holds room in the receive budget."""
        return bool(self._carried)

    @property
    def waiting(self) -> bool:
        """Whether a task waits here for a message."""
        return bool(self._consumers)

    def _carry(self, pair: tuple[Any, int], room: int) -> None:
        assert self._give_back is not None
        if self._closed:
            # Left to be read after the close, not waited for: its room is free now.
            self._bytes -= room - pair[1]
            self._give_back(room)
            return
        if self._carried is None:
            self._carried = deque()
        self._carried.append((pair, room))

    # -- the peer's side ------------------------------------------------------------------------

    def put_nowait(self, pair: tuple[Any, int], carry: int = 0) -> bool:
        """Queue a ``(message, wire_size)`` pair if it fits; ``False`` if it does not.

        ``carry``: the room in the receive budget the message holds (not less
        than its size), given back when it is taken or the stream closes; the
        message counts that much here.
        """
        items = self._items
        size = carry or pair[1]
        if items and (len(items) >= self.max_count or self._bytes + size > self.max_bytes):
            return False
        items.append(pair)
        self._bytes += size
        if carry:
            self._carry(pair, carry)
        if self._consumers:
            _reschedule(self._consumers.pop(0))
        return True

    async def put(
        self, pair: tuple[Any, int], on_wait: Callable[[bool], None], carry: int = 0
    ) -> bool:
        """Queue ``pair``, waiting for room; ``on_wait(True/False)`` brackets the wait.

        ``False`` when the stream was closed first and did not take it (nor ``carry``).
        """
        # Raised means not taken: cancellation is checked before, not after.
        await _checkpoint_if_cancelled()
        if self.put_nowait(pair, carry):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return True
        on_wait(True)
        try:
            while not self._closed:
                if self.put_nowait(pair, carry):
                    return True
                await self._park(self._producers)
            return False
        finally:
            on_wait(False)

    def close(self, why: str = "peer is closed") -> None:
        """No more messages will come: iteration ends once the rest is read.

        ``why`` begins the :class:`~trio_kaspa_peer.PeerClosed` message that
        :meth:`receive` raises then (the first reason given stays).
        """
        if not self._closed:
            self._why = why
        self._closed = True
        carried = self._carried
        if carried:
            # What is left may still be read, but nothing waits for its room any more:
            # the room goes back now.
            give_back = self._give_back
            assert give_back is not None
            while carried:
                pair, room = carried.popleft()
                self._bytes -= room - pair[1]
                give_back(room)
        for waiters in (self._consumers, self._producers):
            while waiters:
                _reschedule(waiters.pop(0))

    @staticmethod
    async def _park(
        waiters: list[trio.lowlevel.Task], then: Callable[[int], None] | None = None
    ) -> None:
        """Wait in ``waiters`` until rescheduled; ``then(0)`` once we are in line."""
        task = _current_task()
        waiters.append(task)
        if then is not None:
            then(0)

        def abort(_: Any) -> trio.lowlevel.Abort:
            waiters.remove(task)
            return _ABORTED

        await _wait(abort)

    # -- the application's side ----------------------------------------------------------------

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> Any:
        # The common case, a message waiting, without the coroutine of _next().
        await _checkpoint_if_cancelled()
        items = self._items
        if items and self._since_yield < 63:
            pair = items.popleft()
            msg, size = pair
            self._bytes -= size
            if self._carried:
                self._taken(pair)
            if self._producers:
                _reschedule(self._producers.pop(0))
            self._since_yield += 1
            return msg
        msg = await self._next(checked=True)
        if msg is _END:
            raise StopAsyncIteration
        return msg

    async def receive(self) -> Any:
        """The next message; :class:`PeerClosed` once the peer is closed and drained."""
        msg = await self._next()
        if msg is _END:
            raise PeerClosed(f"{self._why}: no more messages")
        return msg

    def receive_nowait(self) -> Any:
        """The next message if one is waiting, else :class:`trio.WouldBlock`."""
        if self._items:
            return self._pop()
        if self._closed:
            raise PeerClosed(f"{self._why}: no more messages")
        raise trio.WouldBlock

    def _pop(self) -> Any:
        pair = self._items.popleft()
        msg, size = pair
        self._bytes -= size
        if self._carried:
            self._taken(pair)
        if self._producers:
            _reschedule(self._producers.pop(0))
        return msg

    def _taken(self, pair: tuple[Any, int]) -> None:
        """``pair`` left the stream: if it holds room in the receive budget, give it back."""
        carried = self._carried
        assert carried
        assert self._give_back is not None
        if carried[0][0] is pair:
            room = carried.popleft()[1]
            self._bytes -= room - pair[1]
            self._give_back(room)

    async def _next(self, checked: bool = False) -> Any:
        if not checked:
            await _checkpoint_if_cancelled()
        items = self._items
        if items:
            pair = items.popleft()
            msg, size = pair
            self._bytes -= size
            if self._carried:
                self._taken(pair)
            if self._producers:
                _reschedule(self._producers.pop(0))
            self._since_yield += 1
            if self._since_yield >= 64:
                self._since_yield = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            return msg
        self._since_yield = 0
        while not items:
            if self._closed:
                return _END
            # Waiting here, the application is ready for more from this peer: the budget
            # looks again at who may go (give_back(0) gives nothing back).
            await self._park(self._consumers, self._give_back)
        return self._pop()


_END: Any = object()
