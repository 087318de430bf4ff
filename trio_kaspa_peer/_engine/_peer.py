"""The Trio engine: :func:`open_peer` and :class:`Peer`.

The engine names no protocol.  It owns the stream and three tasks in a
nursery that ``open_peer`` opens -- the reader, the writer and the timers --
and does what the peer's sans-IO core (:class:`~trio_kaspa_peer._sansio.PeerCore`)
decides: it feeds the core the bytes it reads and applies the events that
come out, writes what the core has to send, sleeps until the core's next
deadline, and runs the application's listeners.  Closing the peer cancels
the tasks; every waiter is released with :class:`~trio_kaspa_peer.PeerClosed`.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import trio

from .._errors import (
    ConfigError,
    HandshakeError,
    LocalClose,
    PeerClosed,
    UsageError,
    WriteTimeout,
)
from .._sansio._config import PeerConfig
from .._sansio._context import PeerContext
from .._sansio._interface import (
    Close,
    Event,
    HandshakeComplete,
    Notify,
    Offload,
    PeerCore,
    ReaderState,
    ReadFailed,
    RequestFailed,
    Reserve,
    Response,
    Send,
    SendPolicy,
    Unknown,
    Yield,
)
from ._groups import is_passthrough, raise_as_is, reraise_group
from ._inbox import MessageStream
from ._outbox import DROPPED, QUEUED, WRITTEN, Outbox, Outgoing
from ._shared import BULK_READ, shared_state

if TYPE_CHECKING:
    from .._sansio._stats import PeerStats

__all__ = ["MakePeer", "Peer", "SendHandle", "check_config", "run_peer"]

logger: Final = logging.getLogger("trio_kaspa_peer.peer")

MakePeer: TypeAlias = Callable[..., "Peer"]
"""Makes the protocol's peer: ``make_peer(stream, config, context, *, inbound,
remote_address, now, now_wall)`` (see :func:`run_peer`)."""

_WAITING: Final = ReaderState.WAITING
_BUSY: Final = ReaderState.BUSY
_HELD: Final = ReaderState.HELD
WRITE_CHUNK: Final = 256 * 1024
"""The most bytes handed to the stream under one write-timeout deadline."""
LAST_WORDS_TIME: Final = 0.05
"""How long the parting words the tasks left unwritten (cancelled from outside: a timeout,
a server shutting down) may take to write as the peer closes: what a stream with room takes
at once, not a wait on a remote that reads no more."""
USAGE_HALF_LIFE: Final = 10.0
"""How fast a peer's use of the receive budget is forgotten (seconds to halve): a peer
that had many large messages decoded lately waits behind one that had few."""
_DECAY: Final = math.log(2) / USAGE_HALF_LIFE
_HANDED_OVER: Final = frozenset({Notify, Response})
"""Events whose message goes to the listeners or to its requester, not to a stream."""
_GATHER_BELOW: Final = 4096
"""Reads smaller than this, coming one after another, make the reader gather: a reader
that finds more at each read is behind the remote already, and waiting would slow it."""


class SendHandle:
    """What :meth:`Peer.send_nowait` returns: await it to know the message was written.

    This is the reference's "done channel": it fires when the message has
    been handed to the stream, or raises :class:`~trio_kaspa_peer.PeerClosed`
    if the peer closed before that.  ``await handle`` and
    ``await handle.wait()`` are the same.
    """

    __slots__ = ("_item", "_peer")

    def __init__(self, peer: Peer, item: Outgoing) -> None:
        self._peer = peer
        self._item = item

    @property
    def written(self) -> bool:
        """True once the message has been written to the stream."""
        return self._item.state == WRITTEN

    def __await__(self) -> Generator[Any, None, None]:
        """``await handle`` is ``await handle.wait()``."""
        return self.wait().__await__()

    async def wait(self) -> None:
        """Wait until the message is written; raise :class:`PeerClosed` if it never will be."""
        item = self._item
        if item.state == QUEUED:
            assert item.done is not None
            await item.done.wait()
        if item.state != WRITTEN:
            raise self._peer._closed_error()


class Peer(trio.abc.AsyncResource):
    """A connected, handshaken kaspa peer.  Get one from :func:`open_peer`,
    :func:`~trio_kaspa_peer.open_tcp_peer` or :func:`~trio_kaspa_peer.serve_tcp_peers`.

    All methods are for use from Trio tasks in the same run; the peer's own
    tasks live in the nursery that ``open_peer`` opened.  Leaving the
    ``async with`` block, or :meth:`aclose`, closes it.
    """

    __slots__ = (
        "_body_scope",
        "_carry",
        "_close_reason",
        "_closed",
        "_core",
        "_debug",
        "_deliver",
        "_drop_types",
        "_finished",
        "_gather_wake",
        "_handshake_done",
        "_inbox",
        "_linger_deadline",
        "_listeners",
        "_outbox",
        "_requests",
        "_reserved",
        "_routes",
        "_shared",
        "_stream",
        "_task_error",
        "_task_scope",
        "_timer_target",
        "_timer_wake",
        "_usage",
        "_usage_at",
        "_write_scope",
        "_write_since",
        "_write_timed_out",
        "_writer_took",
        "_writer_wake",
        "_writes",
        "config",
        "context",
    )

    def __init__(
        self, stream: trio.abc.Stream, config: PeerConfig, core: PeerCore, context: PeerContext
    ) -> None:
        self.config: PeerConfig = config
        """The peer's configuration."""
        self.context: PeerContext = context
        """What the peer shares with the application's other peers."""
        self._stream = stream
        self._core = core
        self._writer_wake = trio.Event()
        self._writer_took: trio.Event | None = None  # set when the writer takes bytes
        self._timer_wake = trio.Event()
        self._timer_target = math.inf
        self._outbox = Outbox(
            config.outbound_queue_size, config.outbound_queue_bytes, self._wake_writer
        )
        self._shared = shared_state(context)
        self._inbox = MessageStream(
            config.message_queue_size,
            config.message_queue_bytes,
            give_back=self._shared.receive_budget.release_held,
        )
        self._drop_types = core.inbox_drop_types
        self._routes: dict[type, MessageStream] = {}
        """The message types :meth:`subscribe` routes away from ``messages()``."""
        self._requests: dict[int, tuple[trio.Event, list[Any]]] = {}
        self._reserved = 0
        """Room in the receive budget for the large message being received."""
        self._carry = 0
        """Room in the receive budget held by the large message just decoded, until it is
        in a stream (which gives it back when the application takes it) or gone."""
        self._usage = 0.0
        self._usage_at = 0.0
        """The bytes of large messages this peer had decoded lately (halving every
        :data:`USAGE_HALF_LIFE` seconds), as of ``_usage_at``: its place in the budget's
        line."""
        self._close_reason: BaseException | None = None
        self._closed = trio.Event()
        self._finished = trio.Event()
        self._handshake_done = trio.Event()
        self._task_scope = trio.CancelScope()
        self._write_scope: trio.CancelScope | None = None
        self._write_since = math.inf
        """When the write under way began its current chunk (``inf``: no write)."""
        self._writes = 0
        """Writes begun so far (the reader's sign that the remote may be waiting for us)."""
        self._gather_wake: trio.Event | None = None
        """Set by the writer: the reader, letting small writes gather, reads at once."""
        self._write_timed_out = False
        self._linger_deadline = math.inf
        self._body_scope: trio.CancelScope | None = None
        self._task_error: BaseException | None = None
        self._listeners = config.listeners
        self._deliver = config.deliver_messages
        self._debug = logger.isEnabledFor(logging.DEBUG)

    # -- public state -----------------------------------------------------------------------

    @property
    def inbound(self) -> bool:
        """Whether the remote dialled us."""
        return self._core.inbound

    @property
    def address(self) -> str:
        """The remote's ``host:port`` (``<unknown>`` for streams that have none)."""
        return self._core.address

    @property
    def remote_version(self) -> Any:
        """The version message the remote sent in the handshake
        (:class:`~trio_kaspa_peer.wire.MsgVersion` or
        :class:`~trio_kaspa_peer.protowire.VersionMessage`)."""
        version = self._core.remote_version
        if version is None:
            raise HandshakeError("the handshake has not received the remote's version")
        return version

    @property
    def protocol_version(self) -> int:
        """The negotiated protocol version (the lower of ours and theirs)."""
        return self._core.protocol_version

    @property
    def id(self) -> int:
        """The peer's ID within its :class:`~trio_kaspa_peer.PeerContext`."""
        return self._core.id

    @property
    def close_reason(self) -> BaseException | None:
        """Why the peer closed (``None`` while it is open).

        A reason the protocol decided (the remote's misbehaviour, a timeout)
        carries no traceback: it would keep the closed peer's frames alive.
        """
        return self._close_reason

    @property
    def closed(self) -> bool:
        """Whether the peer is closed (or closing)."""
        return self._closed.is_set()

    def stats(self) -> PeerStats:
        """A frozen snapshot of the peer's statistics."""
        stats: PeerStats = self._core.stats()
        return stats

    def __repr__(self) -> str:
        direction = "inbound" if self.inbound else "outbound"
        return f"<{type(self).__name__} {self.id} {direction} {self.address}>"

    # -- sending ----------------------------------------------------------------------------

    def _closed_error(self) -> PeerClosed:
        reason = self._close_reason
        error = PeerClosed(f"peer {self.address} is closed: {reason}", reason)
        error.__cause__ = reason
        return error

    def _prepare(self, msg: Any, with_event: bool) -> Outgoing:
        if self._closed.is_set():
            raise self._closed_error()
        data = self._core.encode(msg)
        return Outgoing(msg, data, trio.Event() if with_event else None)

    async def send(self, msg: Any) -> None:
        """Send ``msg``; return once it has been written to the stream.

        Waits for room in the bounded outbound queue (backpressure).  A
        message that cannot be encoded, or (modern) that the remote's rules
        would refuse (:class:`~trio_kaspa_peer.protowire.InvalidPayloadError`),
        raises a :class:`~trio_kaspa_peer.LocalProtocolError` here, before
        anything is queued; :class:`~trio_kaspa_peer.PeerClosed` if the peer
        closes before the message is written.
        """
        item = self._prepare(msg, True)
        if not await self._outgoing(item):
            raise self._closed_error()
        done = item.done
        assert done is not None
        await done.wait()
        if item.state != WRITTEN:
            raise self._closed_error()

    def send_nowait(self, msg: Any) -> SendHandle:
        """Queue ``msg`` without waiting; the handle tells when it is really written.

        Raises :class:`~trio_kaspa_peer.OutboundQueueFull` when the bounded
        queue has no room.
        """
        item = self._prepare(msg, True)
        try:
            queued = self._outbox.put_nowait(item, SendPolicy.RAISE)
        except BaseException:
            self._core.withdraw(msg)  # not queued: what encode counted for it comes back
            raise
        if not queued:
            self._core.withdraw(msg)
            raise self._closed_error()
        return SendHandle(self, item)

    async def _queue(self, msg: Any) -> None:
        """Queue ``msg``, waiting for room but not for the write."""
        if not await self._outgoing(self._prepare(msg, False)):
            raise self._closed_error()

    def _queue_nowait(self, msg: Any) -> None:
        """Queue ``msg`` now: :class:`OutboundQueueFull` if there is no room."""
        if not self._outgoing_nowait(self._prepare(msg, False)):
            raise self._closed_error()

    async def _outgoing(self, item: Outgoing) -> bool:
        """Queue an application message, waiting for room; one not queued (the peer
        closed, the wait cancelled) is withdrawn from the core."""
        try:
            queued = await self._outbox.put(item)
        except BaseException:
            if not self._outbox.holds(item):  # cancelled while it waited for room
                self._core.withdraw(item.msg)
            raise
        if not queued:
            self._core.withdraw(item.msg)
        return queued

    def _outgoing_nowait(self, item: Outgoing) -> bool:
        """Queue an application message now (:class:`OutboundQueueFull` if there is no
        room); one not queued is withdrawn from the core."""
        try:
            queued = self._outbox.put_nowait(item, SendPolicy.RAISE)
        except BaseException:
            self._core.withdraw(item.msg)
            raise
        if not queued:
            self._core.withdraw(item.msg)
        return queued

    async def ping(self) -> float:
        """Ping the remote and wait for its pong; the round trip in seconds.

        The pong, matched by its nonce, comes back here, not to
        :meth:`messages` (listeners hear it).  This waits at most
        ``request_timeout`` (:class:`~trio_kaspa_peer.RequestTimeout`; the
        peer stays open, and a pong that comes later goes to
        :meth:`messages`).  Both protocols' keepalive pings go on meanwhile:
        a modern node that answers none is closed after ``ping_timeout``;
        protocol 1's stall watchdog, as the reference's, waits for no pong.
        """
        start = trio.current_time()
        await self._request(self._core.ping_message())
        return trio.current_time() - start

    async def _request(self, msg: Any) -> Any:
        """Send a request and wait for the answer the core matches to it."""
        return (await self._exchange(msg))[0]

    async def _exchange(self, msg: Any, follows: int = 0) -> tuple[Any, int]:
        """Send a request (or one asking for the next part of request ``follows``'s
        answer) and wait for the answer the core matches to it; the answer and the
        request's id."""
        if self._closed.is_set():
            raise self._closed_error()
        core = self._core
        request_id, data = core.start_request(msg, trio.current_time(), follows)
        waiter = trio.Event()
        outcome: list[Any] = []
        self._requests[request_id] = (waiter, outcome)
        self._shared.receive_budget.poke()  # our reader, if it waits for room, is urgent now
        try:
            if not await self._outbox.put(Outgoing(msg, data, None)):
                raise self._closed_error()
            self._check_deadline()
            await waiter.wait()
        finally:
            del self._requests[request_id]
            if not outcome:
                core.cancel_request(request_id)
        if not outcome:
            raise self._closed_error()
        event = outcome[0]
        if isinstance(event, RequestFailed):
            raise event.error
        return event.message, request_id

    def _wake_writer(self) -> None:
        self._writer_wake.set()

    def _check_deadline(self) -> None:
        """Wake the timers task when the core's next deadline moved earlier."""
        if self._core.next_deadline() < self._timer_target:
            self._timer_wake.set()

    # -- receiving --------------------------------------------------------------------------

    def messages(self) -> MessageStream:
        """The received messages, in order, as an async iterator (bounded: backpressure).

        Iteration ends when the peer closes.  Enabled by
        ``PeerConfig.deliver_messages`` (otherwise a
        :class:`~trio_kaspa_peer.UsageError`: nothing would ever come); when
        nobody reads, the reader stops once ``message_queue_size`` messages
        (or ``message_queue_bytes``) wait.  The types a :meth:`subscribe`
        block routes are not here.
        """
        if not self._deliver:
            raise UsageError(
                "messages() gets nothing with PeerConfig(deliver_messages=False): use "
                "listeners, or subscribe() to the types you want"
            )
        return self._inbox

    @contextmanager
    def subscribe(
        self,
        *message_types: type,
        max_count: int = 256,
        max_bytes: int | None = None,
        drop_when_full: bool = False,
    ) -> Iterator[MessageStream]:
        """Route the received messages of ``message_types`` to a stream of their own.

        For the ``with`` block, messages of these types go to the stream it
        gives (in the order they arrived) instead of :meth:`messages`; the
        peer's listeners still see them first.  This is the references'
        per-flow route: one task can follow, say, block announcements while
        another reads everything else, each queue bounded on its own.

        A message delivered wrapped (the modern protocol's
        :class:`~trio_kaspa_peer.protowire.Envelope`, for a request carrying an
        id) is routed by its payload's type, and given as it was delivered.

        ``max_count`` messages (rusty-kaspa's route size, 256, by default) and
        ``max_bytes`` (``message_queue_bytes`` by default) wait at most; when
        the stream is full the reader waits for room (backpressure on the
        remote) -- unless the protocol drops the type instead (the modern
        relay announcements) or ``drop_when_full`` is set, and then the
        message is counted in the stream's ``dropped``.  A subscription is
        routed whether or not ``deliver_messages`` is set.

        Leaving the block ends the subscription: messages of these types go to
        :meth:`messages` again.  The stream keeps what it holds (read it after
        the block if you want it); its iteration ends once that is read, and
        also when the peer closes and what was received is read.

        Raises:
            UsageError: no type, something that is not a class, a type another
                subscription already routes, or a bound below one.
        """
        if not message_types:
            raise UsageError("subscribe() needs at least one message type")
        for message_type in message_types:
            if not isinstance(message_type, type):
                raise UsageError(f"subscribe() takes message classes, got {message_type!r:.60}")
            if message_type in self._routes:
                raise UsageError(
                    f"{message_type.__qualname__} is already routed by another subscription"
                )
        if max_bytes is None:
            max_bytes = self.config.message_queue_bytes
        if type(max_count) is not int or max_count < 1:
            raise UsageError(f"max_count must be a positive int, got {max_count!r:.60}")
        if type(max_bytes) is not int or max_bytes < 1:
            raise UsageError(f"max_bytes must be a positive int, got {max_bytes!r:.60}")
        stream = MessageStream(
            max_count,
            max_bytes,
            drop_when_full=drop_when_full,
            give_back=self._shared.receive_budget.release_held,
        )
        if self._closed.is_set():
            stream.close()
        routes = self._routes
        for message_type in message_types:
            routes[message_type] = stream
        try:
            yield stream
        finally:
            for message_type in message_types:
                if routes.get(message_type) is stream:
                    del routes[message_type]
            stream.close("the subscription ended")

    def _close_streams(self) -> None:
        self._inbox.close()
        for stream in set(self._routes.values()):
            stream.close()

    # -- closing ------------------------------------------------------------------------------

    def _close(self, reason: BaseException, linger: float = 0.0) -> None:
        """Close with ``reason`` (the first reason given wins).

        With ``linger``, what the core still has to send (a reject, a goodbye)
        is given that long to be written before the tasks are cancelled.
        """
        if self._close_reason is None:
            self._close_reason = reason
            level = logging.DEBUG if isinstance(reason, LocalClose) else logging.INFO
            logger.log(level, "peer %s closing: %s", self.address, reason)
            self._core.close(reason)
            if not linger and self._core.wants_write():
                linger = self.config.reject_timeout  # a goodbye is polite: give it a moment
        self._closed.set()
        self._handshake_done.set()
        for item in self._outbox.close():
            item.finish(DROPPED)
        self._close_streams()
        for waiter, _ in self._requests.values():
            waiter.set()
        if linger > 0 and self._core.wants_write() and not self._task_scope.cancel_called:
            deadline = trio.current_time() + linger
            if deadline < self._linger_deadline:
                self._linger_deadline = deadline
                if self._write_scope is not None:
                    self._write_scope.deadline = deadline
            self._writer_wake.set()
            self._timer_wake.set()
            return
        if self._linger_deadline < math.inf:
            return  # already lingering: the writer or the timers end it
        self._task_scope.cancel()

    async def aclose(self) -> None:
        """Close the peer and wait until its tasks are done and the stream is closed."""
        self._close(LocalClose("closed locally"))
        await self._finished.wait()

    async def wait_closed(self) -> None:
        """Wait until the peer closes, for whatever reason (see :attr:`close_reason`)."""
        await self._closed.wait()

    async def _finalize(self) -> None:
        """Release every waiter and close the stream; runs once, after the tasks are done."""
        if self._finished.is_set():
            return
        if self._close_reason is None:
            self._close(LocalClose("closed locally"))
        try:
            await self._last_words()
        except Exception:  # the stream's own failure (not trio's): the peer closes anyway
            logger.debug("parting words to %s not written", self.address, exc_info=True)
        for item in self._core.unfinished():
            item.finish(DROPPED)
        for item in self._outbox.close():
            item.finish(DROPPED)
        self._close_streams()
        self._release_reservation()
        await trio.aclose_forcefully(self._stream)
        self._finished.set()

    async def _last_words(self) -> None:
        """Write what the core still has to say (its goodbye, a reject) if the tasks ended
        before the writer did, cancelled from outside, within :data:`LAST_WORDS_TIME`.

        Never after a write cut short: the stream then ends inside a frame, and more
        bytes would read as garbage.  Never with a clock that stands still, where the
        time given would never run out.  The write listeners are not run here (no
        application code in a shielded close): what is written is counted in the
        statistics only.
        """
        core = self._core
        if self._write_since != math.inf or _frozen(trio.lowlevel.current_clock()):
            return
        with trio.move_on_after(LAST_WORDS_TIME):
            while data := core.data_to_send():  # the modern core hands out slices
                self._write_since = trio.current_time()  # a write under way
                try:
                    await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                self._write_since = math.inf
                for item in core.bytes_written(len(data), trio.current_time(), time.time()):
                    item.finish(WRITTEN)

    # -- the tasks ----------------------------------------------------------------------------

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with self._task_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guarded, self._reader)
                    nursery.start_soon(self._guarded, self._writer)
                    nursery.start_soon(self._guarded, self._timers)
                    task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await self._finalize()

    async def _guarded(self, task: Callable[[], Any]) -> None:
        """Run one of the peer's tasks; an exception it raises (a listener's) ends the peer.

        The exception is kept and re-raised by ``open_peer`` as itself once the
        body has been cancelled: no exception group gets in the way.
        """
        try:
            await task()
        except Exception as exc:
            if self._task_error is None:
                self._task_error = exc
            self._close(exc)
            self._task_scope.cancel()
            if self._body_scope is not None:
                self._body_scope.cancel()

    async def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        result = callback(self, *args)
        if inspect.isawaitable(result):
            await result

    async def _run_listeners(self, callbacks: tuple[Callable[..., Any], ...], msg: Any) -> None:
        """Run a message's listeners; the core knows the reader is held meanwhile."""
        core = self._core
        core.reader_state(_HELD, trio.current_time())
        try:
            for callback in callbacks:
                await self._call(callback, msg)
        finally:
            core.reader_state(_BUSY, trio.current_time())

    def _hold(self, held: bool) -> None:
        self._core.reader_state(_HELD if held else _BUSY, trio.current_time())

    async def _reader(self) -> None:
        core = self._core
        next_event = core.next_event
        receive_data = core.receive_data
        reader_state = core.reader_state
        stream = self._stream
        size = self.config.receive_size
        closed = self._closed
        inbox = self._inbox
        put_nowait = inbox.put_nowait
        routes = self._routes
        listeners = self._listeners
        read_listeners = listeners.read
        by_type = listeners.by_type
        deliver = self._deliver
        drop_types = self._drop_types
        wrappers = core.wrapper_types
        debug = self._debug
        gate = self._shared.bulk_gate
        bulk_read = min(size, BULK_READ)
        task = trio.lowlevel.current_task()
        # Segments are a socket's: other streams (in memory, say) are always read at once.
        gather = self.config.gather_reads if isinstance(stream, trio.SocketStream) else 0.0
        gathering = False  # the last read says: a remote streaming small writes
        writes = -1
        clock = trio.lowlevel.current_clock()
        while True:
            while True:
                event = next_event()
                if event is None:
                    break
                if isinstance(event, Event):
                    msg = None  # not kept alive while the event waits (for room, say)
                    await self._apply(event)
                    if self._carry and type(event) in _HANDED_OVER:
                        self._drop_carry()  # the message went to the listeners, or its requester
                else:
                    msg = event[0]
                    kind = None  # its type for the routing, found when it is needed
                    if debug:
                        logger.debug("received %s from %s", core.describe(msg), self.address)
                    for callback in read_listeners:
                        await self._call(callback, event[1], msg, None)
                    if by_type:
                        kind = _routing_type(msg, wrappers)
                        callbacks = by_type.get(kind)
                        if callbacks:
                            await self._run_listeners(callbacks, msg)
                    carry = self._carry  # the message was large: it holds room in the budget
                    if routes:
                        if kind is None:
                            kind = _routing_type(msg, wrappers)
                        route = routes.get(kind)
                        if route is not None:
                            if route.put_nowait(event, carry):
                                self._carry = 0
                                continue
                            if route.drop_when_full or kind in drop_types:
                                route.dropped += 1
                                if carry:
                                    self._drop_carry()
                                continue
                            if await self._put(route, event, carry):
                                continue
                            # The subscription ended while we waited: messages() takes it.
                    if deliver:
                        if put_nowait(event, carry):
                            self._carry = 0
                            continue
                        if (kind or _routing_type(msg, wrappers)) in drop_types:
                            inbox.dropped += 1
                        elif await self._put(inbox, event, carry):
                            continue
                    if carry:
                        self._drop_carry()
                    continue
                if closed.is_set():
                    self._drop_carry()
                    return
            if self._carry:
                self._drop_carry()  # the core kept the large message to itself
            if closed.is_set():
                return  # closed by a listener, or from outside, while messages were handled
            if core.wants_write():
                self._writer_wake.set()
            if core.next_deadline() < self._timer_target:
                self._timer_wake.set()  # a deadline moved earlier (a message half-received)
            # Hold no message while waiting, nor the last read (up to receive_size bytes):
            # either would stay alive until the next.
            event = msg = None
            data: bytes | bytearray = b""
            asked = trio.current_time()
            reader_state(_WAITING, asked)
            if core.reading_paused():
                await self._answers_taken()
                if closed.is_set():
                    return
            # While peers with a backlog take turns, everyone reads less at a time.
            want = bulk_read if gate.contended else size
            try:
                if (
                    gathering
                    and self._writes == writes
                    and not core.wants_write()
                    and not _frozen(clock)
                ):
                    # Small writes keep coming and nobody waits for us: let them gather,
                    # unless we answer meanwhile.
                    self._gather_wake = trio.Event()
                    with trio.move_on_after(gather):
                        await self._gather_wake.wait()
                    self._gather_wake = None
                    asked = trio.current_time()
                writes = self._writes
                data = await stream.receive_some(want)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                await self._apply(core.connection_lost(exc))
                return
            if len(data) >= want and not gate.try_turn(task):
                # The buffer filled: the remote is ahead of us, and others are too.
                reader_state(_HELD, trio.current_time())  # our wait, not the remote's
                await gate.turn(task)
            now = trio.current_time()
            gathering = now - asked < gather and len(data) < min(want, _GATHER_BELOW)
            reader_state(_BUSY, now)
            receive_data(data, now, time.time())
            if not data and closed.is_set():
                return

    async def _apply(self, event: Event) -> None:
        """Do what a core event says (the reader's and the timers' events)."""
        kind = type(event)
        listeners = self._listeners
        if kind is Send:
            assert isinstance(event, Send)
            for msg in event.messages:
                item = self._prepare_own(msg)
                if item is None:
                    return
                if event.policy is SendPolicy.WAIT:
                    if not self._outbox.put_nowait(item, SendPolicy.DROP):
                        # Waiting for room here is waiting for the remote to read: the
                        # idle timer runs meanwhile (a remote that neither reads nor
                        # sends is closed after idle_timeout, not waited on forever).
                        self._core.reader_state(_WAITING, trio.current_time())
                        try:
                            await self._outbox.put(item)
                        finally:
                            self._core.reader_state(_BUSY, trio.current_time())
                elif not self._outbox.put_nowait(item, SendPolicy.DROP):
                    logger.debug("outbound queue full: %s to %s dropped", msg, self.address)
        elif kind is Notify:
            assert isinstance(event, Notify)
            if self._debug:
                logger.debug(
                    "received %s from %s", self._core.describe(event.message), self.address
                )
            for callback in listeners.read:
                await self._call(callback, event.size, event.message, None)
            if event.dispatch:
                callbacks = listeners.by_type.get(type(event.message))
                if callbacks:
                    await self._run_listeners(callbacks, event.message)
        elif kind is Close:
            assert isinstance(event, Close)
            self._close(event.reason, event.linger)
        elif kind is HandshakeComplete:
            self._handshake_done.set()
        elif kind is Unknown:
            assert isinstance(event, Unknown)
            msg = event.message
            for callback in listeners.read:
                await self._call(callback, event.size, msg, None)
            for on_unknown in listeners.unknown:
                await self._call(on_unknown, msg)
            pair = (msg, event.size)
            carry = self._carry
            if event.deliver and self._deliver:
                if self._inbox.put_nowait(pair, carry):
                    self._carry = 0
                else:
                    await self._put(self._inbox, pair, carry)
            self._drop_carry()
        elif kind is ReadFailed:
            assert isinstance(event, ReadFailed)
            for callback in listeners.read:
                await self._call(callback, 0, None, event.error)
        elif kind is Reserve:
            assert isinstance(event, Reserve)
            await self._reserve(event.nbytes)
        elif kind is Offload:
            assert isinstance(event, Offload)
            await self._offload(event)
        elif kind is Response or kind is RequestFailed:
            assert isinstance(event, (Response, RequestFailed))
            if kind is Response:
                # An answer goes to its requester, not to messages(); the listeners hear it
                # as they hear everything read.
                assert isinstance(event, Response)
                msg = event.message
                if self._debug:
                    logger.debug("received %s from %s", self._core.describe(msg), self.address)
                for callback in listeners.read:
                    await self._call(callback, event.size, msg, None)
                callbacks = listeners.by_type.get(type(msg))
                if callbacks:
                    await self._run_listeners(callbacks, msg)
            waiter = self._requests.get(event.request_id)
            if waiter is not None:
                waiter[1].append(event)
                waiter[0].set()
        elif kind is Yield:
            # Between slices of a long read: what it owes goes out meanwhile.
            core = self._core
            if core.wants_write():
                self._writer_wake.set()
            if core.reading_paused():
                await self._answers_taken()
            else:
                await trio.lowlevel.checkpoint()
        else:  # pragma: no cover - a core produced an event this engine does not know
            raise TypeError(f"unknown core event {event!r}")

    async def _answers_taken(self) -> None:
        """The remote asks faster than it takes our answers: wait until the writer has
        taken them (the write timeout ends a remote that never reads)."""
        core = self._core
        while core.reading_paused() and not self._closed.is_set():
            took = self._writer_took = trio.Event()
            self._writer_wake.set()
            await took.wait()

    async def _reserve(self, nbytes: int) -> None:
        """Take room for a large message in the shared receive budget before reading on.

        Large messages left unread in the streams keep the room from us only
        while the application waits neither on one of our streams nor for an
        answer from us, and one of ours waits unread too (:meth:`_urgent`; see
        :class:`~trio_kaspa_peer._engine._shared.ByteBudget`).
        """
        budget = self._shared.receive_budget
        self._release_reservation()
        urgent = self._urgent
        if not budget.try_acquire(nbytes, urgent):
            # Waiting on our own limit, not on the remote: the reader is held.
            self._hold(True)
            try:
                await budget.acquire(nbytes, urgent, self._usage_key())
            finally:
                self._hold(False)
        self._reserved = nbytes

    def _recent_usage(self, now: float) -> float:
        if not self._usage:
            return 0.0
        return self._usage * math.exp(min(0.0, self._usage_at - now) * _DECAY)

    def _usage_key(self) -> float:
        """Our place in the budget's line: peers compare by the bytes they had decoded
        lately, and since all of them decay alike, ``log(usage) + decay * when`` orders
        them the same at any time (a key taken earlier compares right with a later one)."""
        if not self._usage:
            return -math.inf
        return math.log(self._usage) + _DECAY * self._usage_at

    def _charge(self, nbytes: int) -> None:
        """Count a large message decoded for us: its size (inflated)."""
        now = trio.current_time()
        self._usage = self._recent_usage(now) + nbytes
        self._usage_at = now

    def _urgent(self) -> bool:
        """Whether our next large message goes before what the streams hold unread: the
        application waits on one of our streams or for an answer from us, or our
        streams hold nothing unread (it is ready for more)."""
        inbox = self._inbox
        streams = self._routes.values()
        if self._requests or inbox.waiting or any(stream.waiting for stream in streams):
            return True
        if self._carry or inbox.carrying:
            return False
        return not any(stream.carrying for stream in streams)

    def _release_reservation(self) -> None:
        """Give back the room of the large message being received and of one decoded."""
        if self._reserved:
            self._shared.receive_budget.release(self._reserved)
            self._reserved = 0
        self._drop_carry()

    def _drop_carry(self) -> None:
        """The large message just decoded went elsewhere than a stream: its room is free."""
        if self._carry:
            carry, self._carry = self._carry, 0
            self._shared.receive_budget.release_held(carry)

    async def _put(self, stream: MessageStream, pair: tuple[Any, int], carry: int) -> bool:
        """Put ``pair`` in ``stream``, waiting for room (the reader held); the room in
        the budget it carries goes with it.  ``False``: the stream closed meanwhile."""
        self._carry = 0
        try:
            placed = await stream.put(pair, self._hold, carry)
        except BaseException:
            self._carry = carry  # not placed: the close gives it back
            raise
        if not placed:
            self._carry = carry
        return placed

    async def _offload(self, event: Offload) -> None:
        """Run a core's work in a worker thread; hand the outcome back to the core."""
        try:
            result = await trio.to_thread.run_sync(
                self._shared.offload_work(event.work), limiter=self._shared.offload_limiter
            )
        except Exception as exc:
            self._release_reservation()
            self._core.offload_done(None, exc)
        else:
            # The decoded message keeps room for its size (inflated) until it is in a
            # stream and taken from there, or goes elsewhere: the room is carried.
            self._drop_carry()
            size = self._core.offload_done(result, None)
            self._charge(size)
            reserved, self._reserved = self._reserved, 0
            carry = min(size, reserved)
            self._carry = carry
            self._shared.receive_budget.hold(reserved, carry)

    def _prepare_own(self, msg: Any) -> Outgoing | None:
        """An outgoing item for a message of the core's own (``None`` once closed)."""
        if self._closed.is_set():
            return None
        return Outgoing(msg, self._core.encode(msg, own=True), None)

    async def _writer(self) -> None:
        core = self._core
        stream = self._stream
        outbox = self._outbox
        write_listeners = self._listeners.write
        closed = self._closed
        current_time = trio.current_time
        with trio.CancelScope(deadline=self._linger_deadline) as scope:
            self._write_scope = scope
            while True:
                data = core.data_to_send()
                took = self._writer_took
                if took is not None and data:
                    took.set()
                    self._writer_took = None
                if not data:
                    if closed.is_set():
                        break  # lingering: what the core had to say is written
                    # Nothing to write may also mean the remote's window is shut with
                    # bytes still buffered: take more only if the core has room.
                    item = outbox.get_nowait() if core.can_queue() else None
                    if item is None:
                        wake = self._writer_wake
                        if wake.is_set():
                            self._writer_wake = trio.Event()  # look again, then sleep
                        else:
                            # Bytes the core may hold back (the remote's flow control)
                            # are its rule: it may start a deadline now.
                            if core.writer_idle(current_time()):
                                self._timer_wake.set()
                            await wake.wait()
                        continue
                    core.queue(item)
                    while core.can_queue():
                        item = outbox.get_nowait()
                        if item is None:
                            break
                        core.queue(item)
                    continue
                # The write timeout is a progress deadline, kept by the timers task: each
                # chunk of at most WRITE_CHUNK bytes must be taken by the remote within
                # write_timeout (two stores per write here; no deadline to move).
                try:
                    self._writes += 1
                    if self._gather_wake is not None:
                        self._gather_wake.set()
                    if len(data) <= WRITE_CHUNK:
                        self._write_since = current_time()
                        await stream.send_all(data)
                    else:
                        view = memoryview(data)
                        for start in range(0, len(data), WRITE_CHUNK):
                            self._write_since = current_time()
                            await stream.send_all(view[start : start + WRITE_CHUNK])
                        del view  # held while asleep, it would keep the encoding alive
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._write_since = math.inf
                    for item in core.unfinished():
                        for callback in write_listeners:
                            await self._call(callback, 0, item.msg, exc)
                    await self._apply(core.connection_lost(exc))
                    # Nothing more can be written: no goodbye to linger for.
                    self._task_scope.cancel()
                    return
                self._write_since = math.inf
                done = core.bytes_written(len(data), current_time(), time.time())
                if self._debug:
                    for item in done:
                        logger.debug("sent %s to %s", core.describe(item.msg), self.address)
                for item in done:
                    item.finish(WRITTEN)
                if write_listeners:
                    for item, size in zip(done, core.sent_sizes(done), strict=True):
                        for callback in write_listeners:
                            await self._call(callback, size, item.msg, None)
                # Hold nothing written while asleep, until the next write.
                done.clear()
                item = None
        self._write_scope = None
        if self._write_timed_out and not closed.is_set():
            timeout = self.config.write_timeout
            error = WriteTimeout(
                f"a write to {self.address} made no progress for {timeout:g} seconds"
            )
            for item in core.unfinished():
                for callback in write_listeners:
                    await self._call(callback, 0, item.msg, error)
            await self._apply(core.connection_lost(error))
        # Closing: the parting words are written, or their time ran out.
        self._task_scope.cancel()

    async def _timers(self) -> None:
        """One task for every timer: it sleeps until the core's next deadline.

        It never waits for room in the outbound queue: a remote that stops
        reading must not stop the idle timer and the stall watchdog.
        """
        core = self._core
        write_timeout = self.config.write_timeout
        while True:
            # The write timeout: when a write is under way, at its deadline; otherwise a
            # look every write_timeout (a write that starts meanwhile is caught in time).
            since = self._write_since
            if since == math.inf:
                since = trio.current_time()
            deadline = min(core.next_deadline(), self._linger_deadline, since + write_timeout)
            self._timer_target = deadline
            wake = self._timer_wake = trio.Event()
            with trio.move_on_at(deadline):
                await wake.wait()
            now = trio.current_time()
            if now >= self._linger_deadline:
                self._task_scope.cancel()
                return
            if now - self._write_since >= write_timeout and self._write_scope is not None:
                # The writer is stuck in that write (it is suspended nowhere else while
                # _write_since is set): end it; the writer closes the peer.
                self._write_timed_out = True
                self._write_scope.cancel()
                continue
            if now < core.next_deadline():
                continue
            for event in core.on_timer(now, self._outbox.room()):
                await self._apply(event)
            if core.wants_write():
                self._writer_wake.set()


_STREAM_METHODS: Final = ("send_all", "receive_some", "aclose")


def _frozen(clock: trio.abc.Clock) -> bool:
    """Whether time stands still until a test moves it (``MockClock()`` as it comes): the
    reader then never waits for writes to gather, which only wall-clock time would end."""
    rate = getattr(clock, "rate", None)
    return rate == 0 and getattr(clock, "autojump_threshold", 0) == math.inf


def _routing_type(msg: Any, wrappers: frozenset[type]) -> type:
    """The type listeners and subscriptions take ``msg`` by: a wrapper's payload's."""
    kind = type(msg)
    return type(msg.payload) if kind in wrappers else kind


def check_config(config: object) -> None:
    """Raise :class:`ConfigError` unless ``config`` is a :class:`PeerConfig`."""
    if not isinstance(config, PeerConfig):
        raise ConfigError(f"config must be a PeerConfig, got {type(config).__name__}")


def _stream_address(
    stream: trio.abc.Stream, remote_address: tuple[str, int] | None
) -> tuple[str, int] | None:
    if remote_address is None and isinstance(stream, trio.SocketStream):
        try:
            peername = stream.socket.getpeername()
        except OSError:
            return None
        if isinstance(peername, tuple) and len(peername) >= 2:
            return (str(peername[0]), int(peername[1]))
        return None  # a Unix socket: no host and port
    return remote_address


@asynccontextmanager
async def run_peer(
    stream: trio.abc.Stream,
    config: PeerConfig,
    make_peer: MakePeer,
    *,
    inbound: bool,
    remote_address: tuple[str, int] | None = None,
    context: PeerContext | None = None,
) -> AsyncIterator[Peer]:
    """:func:`~trio_kaspa_peer.open_peer`, with the protocol's peer made by ``make_peer``
    (the engine names no protocol: the caller chooses)."""

    check_config(config)
    if not all(callable(getattr(stream, name, None)) for name in _STREAM_METHODS):
        raise UsageError(f"stream must be a trio.abc.Stream, got {type(stream).__name__}")
    if remote_address is not None and not (
        isinstance(remote_address, tuple)
        and len(remote_address) == 2
        and isinstance(remote_address[0], str)
        and isinstance(remote_address[1], int)
    ):
        raise UsageError(f"remote_address must be a (host, port) tuple, got {remote_address!r}")
    if context is None:
        context = PeerContext()
    elif not isinstance(context, PeerContext):
        raise UsageError(f"context must be a PeerContext, got {type(context).__name__}")
    peer = make_peer(
        stream,
        config,
        context,
        inbound=bool(inbound),
        remote_address=_stream_address(stream, remote_address),
        now=trio.current_time(),
        now_wall=time.time(),
    )
    outcome: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            peer._body_scope = nursery.cancel_scope
            peer._core.start(trio.current_time(), time.time())
            await nursery.start(peer._run)
            peer._wake_writer()
            await peer._handshake_done.wait()
            if not peer._core.handshake_complete or peer._task_error is not None:
                await peer._finished.wait()
                outcome = peer._task_error or peer._close_reason
                if outcome is None:  # pragma: no cover - closed without a reason
                    outcome = HandshakeError("the handshake did not complete")
            else:
                try:
                    yield peer
                except BaseException as exc:
                    if is_passthrough(exc):
                        raise
                    outcome = exc
                finally:
                    peer._close(LocalClose("closed locally"))
    except BaseExceptionGroup as group:
        raise reraise_group(group) from None
    if outcome is None:
        outcome = peer._task_error
    # The error is raised from this frame: with the peer among its locals, the error (the
    # peer's close reason) would tie them into a cycle for the garbage collector.
    del peer, nursery
    if outcome is not None:
        try:
            raise_as_is(outcome)
        finally:
            del outcome  # nor may this frame keep the error it raises
