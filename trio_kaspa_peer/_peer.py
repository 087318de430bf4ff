"""The Trio layer: :func:`open_peer` and :class:`Peer`.

A thin shell around :class:`~trio_kaspa_peer._core.PeerProtocol`: it moves
bytes between a Trio stream and the sans-IO codec and rules, and runs the
peer's tasks -- reader, writer, trickle, keepalive, stall watchdog and idle
timer -- as children of a nursery that ``open_peer`` owns.  Closing the peer
cancels that nursery; every waiter is released with :class:`PeerClosed`.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Final, NoReturn

import trio

from ._core import PeerConfig, PeerProtocol, PeerStats
from ._core import banscores as scores
from ._core._protocol import PASS, as_list, inv_key
from ._core._summary import summarize
from ._errors import (
    ConfigError,
    HandshakeError,
    HandshakeTimeout,
    IdleTimeout,
    LocalClose,
    OutboundQueueFull,
    PeerClosed,
    RemoteClosed,
    StallError,
    UsageError,
    VersionNotFirstError,
)
from .wire import (
    FrameDecoder,
    Hash,
    InvVect,
    Message,
    MsgBlockLocator,
    MsgGetBlockLocator,
    MsgPing,
    MsgPong,
    MsgReject,
    MsgVerAck,
    MsgVersion,
    NetAddress,
    ProtocolError,
    RawMessage,
    RejectCode,
    SubnetworkID,
    UnknownCommandError,
    UnknownMessage,
    encode_frame,
)

__all__ = ["MessageStream", "Peer", "SendHandle", "open_peer"]

logger: Final = logging.getLogger("trio_kaspa_peer")

_QUEUED: Final = 0
_WRITTEN: Final = 1
_DROPPED: Final = 2
_COALESCE_LIMIT: Final = 256 * 1024
_RNG: Final = random.SystemRandom()
"""Nonces and address sampling: shared (no per-peer state), independent of ``random.seed``."""

AnyMessage = Message | RawMessage
Received = Message | RawMessage | UnknownMessage


class _Outgoing:
    """One frame on its way out."""

    __slots__ = ("done", "frame", "msg", "state")

    def __init__(self, frame: bytes, msg: AnyMessage, done: trio.Event | None) -> None:
        self.frame = frame
        self.msg = msg
        self.done = done
        self.state = _QUEUED

    def finish(self, state: int) -> None:
        if self.state == _QUEUED:
            self.state = state
            if self.done is not None:
                self.done.set()


class SendHandle:
    """What :meth:`Peer.send_nowait` returns: await :meth:`wait` to know the frame was written.

    This is the reference's "done channel": it fires when the frame has been
    handed to the stream, or raises :class:`PeerClosed` if the peer closed
    before that.  ``await handle`` and ``await handle.wait()`` are the same.
    """

    __slots__ = ("_item", "_peer")

    def __init__(self, peer: Peer, item: _Outgoing) -> None:
        self._peer = peer
        self._item = item

    @property
    def written(self) -> bool:
        """True once the frame has been written to the stream."""
        return self._item.state == _WRITTEN

    def __await__(self) -> Generator[Any, None, None]:
        """``await handle`` is ``await handle.wait()``."""
        return self.wait().__await__()

    async def wait(self) -> None:
        """Wait until the frame is written; raise :class:`PeerClosed` if it never will be."""
        item = self._item
        if item.state == _QUEUED:
            assert item.done is not None
            await item.done.wait()
        if item.state != _WRITTEN:
            raise self._peer._closed_error()


class MessageStream:
    """The received messages of one peer: ``async for msg in peer.messages()``.

    Messages already waiting are handed out without a trip through the
    scheduler (cancellation is still checked on every call, and every 64th
    message yields), so a burst costs one wake-up, not one per message.
    Iteration ends when the peer closes; :meth:`receive` then raises
    :class:`PeerClosed`.
    """

    __slots__ = ("_channel", "_since_yield")

    def __init__(self, channel: trio.MemoryReceiveChannel[Received]) -> None:
        self._channel = channel
        self._since_yield = 0

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> Received:
        try:
            return await self._next()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def receive(self) -> Received:
        """The next message; :class:`PeerClosed` once the peer is closed and drained."""
        try:
            return await self._next()
        except trio.EndOfChannel:
            raise PeerClosed("peer is closed: no more messages") from None

    def receive_nowait(self) -> Received:
        """The next message if one is waiting, else :class:`trio.WouldBlock`."""
        try:
            return self._channel.receive_nowait()
        except trio.EndOfChannel:
            raise PeerClosed("peer is closed: no more messages") from None

    async def _next(self) -> Received:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            msg = self._channel.receive_nowait()
        except trio.WouldBlock:
            self._since_yield = 0
            return await self._channel.receive()
        except trio.ClosedResourceError:
            raise trio.EndOfChannel from None
        self._since_yield += 1
        if self._since_yield >= 64:
            self._since_yield = 0
            await trio.lowlevel.cancel_shielded_checkpoint()
        return msg


def _remote_net_address(
    stream: trio.abc.Stream, remote_address: tuple[str, int] | None, services: int
) -> tuple[str, NetAddress | None]:
    if remote_address is None and isinstance(stream, trio.SocketStream):
        try:
            peername = stream.socket.getpeername()
            remote_address = (str(peername[0]), int(peername[1]))
        except OSError:
            remote_address = None
    if remote_address is None:
        return "<unknown>", None
    host, port = remote_address
    try:
        na: NetAddress | None = NetAddress(host, port, services)
    except ProtocolError:
        na = None
    label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return label, na


class Peer:
    """A connected, handshaken kaspa peer.  Get one from :func:`open_peer`.

    All methods are for use from Trio tasks in the same run; the peer's own
    tasks live in the nursery that ``open_peer`` opened.
    """

    __slots__ = (
        "_body_scope",
        "_close_reason",
        "_closed",
        "_debug",
        "_decoder",
        "_deliver_messages",
        "_finished",
        "_handshake_done",
        "_inflight",
        "_last_recv_clock",
        "_listeners",
        "_messages",
        "_msg_send",
        "_out_recv",
        "_out_send",
        "_proto",
        "_reader_waiting",
        "_stream",
        "_task_error",
        "_task_scope",
        "_timer_wake",
        "config",
        "inbound",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        config: PeerConfig,
        *,
        inbound: bool,
        remote_address: tuple[str, int] | None = None,
    ) -> None:
        self.config = config
        self.inbound = inbound
        self._stream = stream
        address, na = _remote_net_address(stream, remote_address, int(config.services))
        self._proto = PeerProtocol(
            config,
            inbound=inbound,
            address=address,
            remote_net_address=na,
            now_wall=time.time(),
        )
        self._decoder = FrameDecoder(config.net, raw_commands=config.raw_commands)
        self._out_send, self._out_recv = trio.open_memory_channel[_Outgoing](
            config.outbound_queue_size
        )
        self._msg_send, msg_recv = trio.open_memory_channel[Received](config.message_queue_size)
        self._messages = MessageStream(msg_recv)
        self._inflight: list[_Outgoing] = []
        self._close_reason: BaseException | None = None
        self._closed = trio.Event()
        self._finished = trio.Event()
        self._handshake_done = trio.Event()
        self._timer_wake = trio.Event()
        self._task_scope = trio.CancelScope()
        self._body_scope: trio.CancelScope | None = None
        self._task_error: BaseException | None = None
        self._last_recv_clock = 0.0
        self._reader_waiting = False
        self._listeners = config.listeners
        self._deliver_messages = config.deliver_messages
        self._debug = logger.isEnabledFor(logging.DEBUG)

    # -- public state -----------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The remote's ``host:port`` (``<unknown>`` for streams that have none)."""
        return self._proto.address

    @property
    def remote_version(self) -> MsgVersion:
        """The ``version`` message the remote sent in the handshake."""
        version = self._proto.remote_version
        if version is None:
            raise HandshakeError("the handshake has not received the remote's version")
        return version

    @property
    def protocol_version(self) -> int:
        """The negotiated protocol version: the lower of ours and theirs."""
        return self._proto.protocol_version

    @property
    def id(self) -> int:
        """A process-wide peer ID, given when the remote's version is accepted."""
        return self._proto.id

    @property
    def close_reason(self) -> BaseException | None:
        """Why the peer closed (``None`` while it is open)."""
        return self._close_reason

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def stats(self) -> PeerStats:
        """A frozen snapshot of the peer's statistics."""
        return self._proto.stats()

    def __repr__(self) -> str:
        direction = "inbound" if self.inbound else "outbound"
        return f"<Peer {self._proto.id} {direction} {self.address}>"

    # -- sending ----------------------------------------------------------------------------

    def _closed_error(self) -> PeerClosed:
        reason = self._close_reason
        error = PeerClosed(f"peer {self.address} is closed: {reason}", reason)
        error.__cause__ = reason
        return error

    def _prepare(self, msg: AnyMessage, with_event: bool) -> _Outgoing:
        if self._closed.is_set():
            raise self._closed_error()
        frame = encode_frame(msg, self.config.net, self._proto.protocol_version)
        return _Outgoing(frame, msg, trio.Event() if with_event else None)

    async def _put(self, item: _Outgoing) -> None:
        try:
            await self._out_send.send(item)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._closed_error() from None

    def _put_nowait(self, item: _Outgoing) -> None:
        try:
            self._out_send.send_nowait(item)
        except trio.WouldBlock:
            raise OutboundQueueFull(
                f"outbound queue of {self.config.outbound_queue_size} frames is full"
            ) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._closed_error() from None

    async def send(self, msg: AnyMessage) -> None:
        """Send ``msg``; return once its frame has been written to the stream.

        Waits for room in the bounded outbound queue (backpressure).  Raises
        a :class:`~trio_kaspa_peer.wire.ProtocolError` subclass if the
        message cannot be encoded, and :class:`PeerClosed` if the peer closes
        before the frame is written.
        """
        item = self._prepare(msg, True)
        await self._put(item)
        done = item.done
        assert done is not None
        await done.wait()
        if item.state != _WRITTEN:
            raise self._closed_error()

    def send_nowait(self, msg: AnyMessage) -> SendHandle:
        """Queue ``msg`` without waiting; the handle tells when it is really written.

        Raises :class:`OutboundQueueFull` when the bounded queue has no room.
        """
        item = self._prepare(msg, True)
        self._put_nowait(item)
        return SendHandle(self, item)

    async def _queue(self, msg: AnyMessage) -> None:
        await self._put(self._prepare(msg, False))

    def _outbound_room(self) -> int:
        stats = self._out_send.statistics()
        return self.config.outbound_queue_size - stats.current_buffer_used

    def _queue_own(self, msg: AnyMessage) -> bool:
        """Queue a message of the peer's own without waiting; ``False`` if it was dropped."""
        try:
            self._put_nowait(self._prepare(msg, False))
        except (OutboundQueueFull, PeerClosed):
            logger.debug("outbound queue full or closed: %s to %s not sent", msg.command, self)
            return False
        return True

    async def _reply(self, msg: AnyMessage) -> None:
        """Queue the reader's answer (pong, reject, selectedtip); moot once closed.

        Waiting for room here is waiting for the remote to read: the idle timer
        runs meanwhile, so a remote that neither reads nor sends is still closed
        after ``idle_timeout`` (the reader does not hang on it forever).
        """
        try:
            item = self._prepare(msg, False)
            try:
                self._out_send.send_nowait(item)
                return
            except trio.WouldBlock:
                pass
            self._reader_waiting = True
            try:
                await self._put(item)
            finally:
                self._reader_waiting = False
        except (PeerClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    # -- inventory ----------------------------------------------------------------------------

    def queue_inventory(self, inv: InvVect) -> None:
        """Announce ``inv`` to the remote, unless it already knows it.

        Transactions are batched and sent every ``trickle_interval``; a block
        goes out at once (queued without waiting: :class:`OutboundQueueFull`
        if the queue is full).  Nothing is announced before the remote's
        version is known.
        """
        if self._closed.is_set():
            return
        proto = self._proto
        was_empty = not proto.trickle_queue
        msg = proto.queue_inventory(inv)
        if msg is not None:
            self._put_nowait(self._prepare(msg, False))
        elif was_empty and proto.trickle_queue:
            self._timer_wake.set()  # the timers task sleeps through trickle ticks when idle

    def add_known_inventory(self, inv: InvVect) -> None:
        """Record that the remote knows ``inv`` (it will not be announced to it)."""
        self._proto.known_inventory.add(inv_key(inv))

    def is_known_inventory(self, inv: InvVect) -> bool:
        return inv_key(inv) in self._proto.known_inventory

    # -- helpers ------------------------------------------------------------------------------

    async def push_addr(
        self, addresses: Iterable[NetAddress], subnetwork_id: SubnetworkID | None = None
    ) -> list[NetAddress]:
        """Queue an ``addr`` of at most 1000 addresses (a random subset if given more).

        Returns the addresses that were sent; nothing is sent for none.
        """
        msg = self._proto.addr_message(as_list(addresses, "addresses"), subnetwork_id, _RNG)
        if msg.addr_list:
            await self._queue(msg)
        return list(msg.addr_list)

    async def push_get_block_invs(self, low_hash: Hash, high_hash: Hash) -> bool:
        """Queue a ``getblockinvs``; ``False`` when it repeats the previous one (not sent)."""
        msg = self._proto.get_block_invs(Hash(low_hash), Hash(high_hash))
        if msg is None:
            logger.debug("filtering duplicate getblockinvs to %s", self.address)
            return False
        await self._queue(msg)
        return True

    async def push_get_headers(self, start_hash: Hash, stop_hash: Hash) -> bool:
        """Queue a ``getheaders``; ``False`` when it repeats the previous one (not sent)."""
        msg = self._proto.get_headers(Hash(start_hash), Hash(stop_hash))
        if msg is None:
            logger.debug("filtering duplicate getheaders to %s", self.address)
            return False
        await self._queue(msg)
        return True

    async def push_get_block_locator(self, high_hash: Hash, low_hash: Hash) -> None:
        """Queue a ``getlocator`` and remember that a locator was requested."""
        msg = MsgGetBlockLocator(high_hash, low_hash)
        self._proto.was_block_locator_requested = True
        await self._queue(msg)

    async def push_block_locator(self, hashes: Iterable[Hash]) -> None:
        """Queue a ``locator``: at most 500 hashes, else :class:`~.wire.EncodeError`."""
        await self._queue(MsgBlockLocator(as_list(hashes, "hashes")))

    async def push_reject(
        self,
        command: str,
        code: RejectCode | int,
        reason: str,
        hash: Hash | None = None,
        *,
        wait: bool = False,
    ) -> None:
        """Queue a ``reject``; with ``wait=True``, return only once it is written.

        A reject of a ``tx`` or ``block`` must carry its hash
        (:class:`~trio_kaspa_peer.wire.EncodeError` otherwise).
        """
        msg = MsgReject(command, code, reason, hash)
        if wait:
            await self.send(msg)
        else:
            await self._queue(msg)

    # -- receiving ----------------------------------------------------------------------------

    def messages(self) -> MessageStream:
        """The received messages, in order, as an async iterator (bounded: backpressure).

        Iteration ends when the peer closes.  Enabled by
        ``PeerConfig.deliver_messages``; when nobody reads, the reader stops
        once ``message_queue_size`` messages wait.
        """
        return self._messages

    # -- closing ------------------------------------------------------------------------------

    def _close(self, reason: BaseException) -> None:
        if self._close_reason is None:
            self._close_reason = reason
            level = logging.DEBUG if isinstance(reason, LocalClose) else logging.INFO
            logger.log(level, "peer %s closing: %s", self.address, reason)
        self._closed.set()
        self._handshake_done.set()
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
        for item in self._inflight:
            item.finish(_DROPPED)
        self._inflight = []
        while True:
            try:
                item = self._out_recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            item.finish(_DROPPED)
        self._out_recv.close()
        self._msg_send.close()
        await trio.aclose_forcefully(self._stream)
        self._finished.set()

    # -- I/O helpers ----------------------------------------------------------------------------

    def _ban(self, persistent: int, transient: int, reason: str) -> None:
        logger.info("ban score +%d/%d for %s: %s", persistent, transient, self.address, reason)
        callback = self.config.ban_score
        if callback is not None:
            callback(persistent, transient, reason)

    async def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        result = callback(self, *args)
        if inspect.isawaitable(result):
            await result

    async def _write_direct(self, msg: AnyMessage) -> None:
        frame = encode_frame(msg, self.config.net, self._proto.protocol_version)
        try:
            await self._stream.send_all(frame)
        except Exception as exc:
            for callback in self._listeners.write:
                await self._call(callback, 0, msg, exc)
            raise
        self._proto.sent(msg, len(frame), now=trio.current_time(), now_wall=time.time())
        for callback in self._listeners.write:
            await self._call(callback, len(frame), msg, None)
        if self._debug:
            logger.debug("sent %s (%s) to %s", msg.command, summarize(msg), self.address)

    async def _next_frame(self) -> tuple[Received, int] | None:
        """The next frame during the handshake (``None`` on EOF)."""
        decoder = self._decoder
        while True:
            frame = decoder.next_frame()
            if frame is not None:
                return frame
            data = await self._stream.receive_some(self.config.receive_size)
            if not data:
                return None
            decoder.feed(data)

    # -- handshake --------------------------------------------------------------------------------

    async def _handshake(self, nursery: trio.Nursery) -> None:
        """Version both ways, start the tasks in ``nursery``, verack both ways; in time."""
        timeout = self.config.negotiate_timeout
        try:
            with trio.fail_after(timeout):
                await self._negotiate()
                await nursery.start(self._run)
                await self._queue(MsgVerAck())
                await self._handshake_done.wait()
        except trio.TooSlowError:
            raise HandshakeTimeout(
                f"handshake with {self.address} took longer than {timeout:g} seconds"
            ) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise HandshakeError(f"connection lost during the handshake: {exc}") from exc
        except PeerClosed as exc:
            if self._task_error is not None:
                raise self._task_error from None
            raise HandshakeError(f"peer closed during the handshake: {self.close_reason}") from exc
        if self._task_error is not None:
            # A listener failed (perhaps right after the verack woke us): not entered.
            raise self._task_error
        if not self._proto.verack_received:
            raise HandshakeError(
                f"peer closed during the handshake: {self.close_reason}"
            ) from self.close_reason

    async def _negotiate(self) -> None:
        proto = self._proto
        if not self.inbound:
            await self._write_local_version()
        try:
            frame = await self._next_frame()
        except ProtocolError as exc:
            # As the reference: a read error while negotiating fails the handshake
            # (no reject, no ban score; those are for errors once the peer runs).
            for callback in self._listeners.read:
                await self._call(callback, 0, None, exc)
            raise HandshakeError(f"malformed handshake message: {exc}") from exc
        if frame is None:
            raise HandshakeError("the remote closed the connection during the handshake")
        msg, nbytes = frame
        self._last_recv_clock = trio.current_time()
        proto.bytes_received += nbytes
        proto.messages_received += 1
        proto.last_recv = time.time()
        for callback in self._listeners.read:
            await self._call(callback, nbytes, msg, None)
        if not isinstance(msg, MsgVersion):
            reject, ban = proto.version_not_first(msg)
            self._ban(*ban)
            with trio.move_on_after(self.config.reject_timeout):
                try:
                    await self._write_direct(reject)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the remote is gone already: nothing to tell it
            raise VersionNotFirstError(ban[2])
        proto.accept_remote_version(msg, now_wall=time.time())
        for on_version in self._listeners.by_type.get(MsgVersion, ()):
            await self._call(on_version, msg)
        if self.inbound:
            await self._write_local_version()

    async def _write_local_version(self) -> None:
        nonce = _RNG.getrandbits(63)
        await self._write_direct(self._proto.local_version(nonce=nonce, now_wall=time.time()))

    # -- tasks ------------------------------------------------------------------------------------

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

    async def _guarded(self, task: Callable[[], Awaitable[None]]) -> None:
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
            if self._body_scope is not None:
                self._body_scope.cancel()

    async def _reader(self) -> None:
        decoder = self._decoder
        next_frame = decoder.next_frame
        stream = self._stream
        size = self.config.receive_size
        handle = self._handle
        closed = self._closed
        while True:
            handled = False
            while True:
                # Only the decoder's errors are the remote's fault: one raised by a
                # listener (an EncodeError, say) is a local bug and propagates.
                try:
                    frame = next_frame()
                except ProtocolError as exc:
                    await self._malformed(exc)
                    return
                if frame is None:
                    break
                handled = True
                await handle(frame)
                if closed.is_set():
                    return
            if handled:
                # The idle timer counts from the end of processing, as the reference's
                # does (it is stopped while messages are being handled).
                self._last_recv_clock = trio.current_time()
            self._reader_waiting = True
            try:
                data = await stream.receive_some(size)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._close(RemoteClosed(f"connection lost: {exc}"))
                return
            finally:
                self._reader_waiting = False
            if not data:
                mid = decoder.in_frame
                text = "remote closed the connection"
                if mid:
                    text += " in the middle of a frame"
                self._close(RemoteClosed(text, mid_frame=mid))
                return
            decoder.feed(data)

    async def _malformed(self, exc: ProtocolError) -> None:
        for callback in self._listeners.read:
            await self._call(callback, 0, None, exc)
        reject, ban = self._proto.malformed(exc)
        await self._reject_and_close(reject, ban, exc)

    async def _reject_and_close(
        self, reject: MsgReject, ban: tuple[int, int, str], reason: BaseException
    ) -> None:
        try:
            item = self._prepare(reject, True)
            self._put_nowait(item)
            with trio.move_on_after(self.config.reject_timeout):
                assert item.done is not None
                await item.done.wait()
        except (PeerClosed, OutboundQueueFull):
            pass
        self._ban(*ban)
        self._close(reason)

    async def _handle(self, frame: tuple[Received, int]) -> None:
        msg, nbytes = frame
        now = trio.current_time()
        self._last_recv_clock = now
        listeners = self._listeners
        proto = self._proto
        if isinstance(msg, UnknownMessage):
            proto.bytes_received += nbytes
            proto.messages_received += 1
            proto.last_recv = time.time()
            for callback in listeners.read:
                await self._call(callback, nbytes, msg, None)
            if self.config.close_on_unknown_command:
                error = UnknownCommandError(
                    f"unhandled command [{msg.command}]", command=msg.command
                )
                reject, ban = proto.malformed(error)
                await self._reject_and_close(reject, ban, error)
                return
            logger.debug("skipping unknown command %r from %s", msg.command, self.address)
            for on_unknown in listeners.unknown:
                await self._call(on_unknown, msg)
            if self.config.deliver_messages:
                await self._deliver(msg)
            return
        decision = proto.received(msg, nbytes, now_wall=time.time())
        if type(msg) is MsgPong:
            proto.pong_received(msg.nonce, now)
        if self._debug:
            logger.debug("received %s (%s) from %s", msg.command, summarize(msg), self.address)
        for callback in listeners.read:
            await self._call(callback, nbytes, msg, None)
        if decision is PASS:
            # The common case: no replies, bans or closing; listeners, then delivery.
            callbacks = listeners.by_type.get(type(msg))
            if callbacks:
                await self._run_listeners(callbacks, msg, now)
            if self._deliver_messages:
                try:
                    self._msg_send.send_nowait(msg)
                except trio.WouldBlock:
                    await self._deliver_blocking(msg)
            return
        if decision.close is not None:
            if decision.ban is not None:
                self._ban(*decision.ban)
            self._close(decision.close)
            return
        for reply in decision.replies:
            await self._reply(reply)
        if decision.ban is not None:
            self._ban(*decision.ban)
        if type(msg) is MsgVerAck and proto.verack_received:
            self._handshake_done.set()
        if not decision.dispatch:
            return
        callbacks = listeners.by_type.get(type(msg))
        if callbacks:
            await self._run_listeners(callbacks, msg, now)
        if decision.deliver and self._deliver_messages:
            await self._deliver(msg)

    async def _run_listeners(
        self, callbacks: tuple[Callable[..., Any], ...], msg: Received, now: float
    ) -> None:
        """Run a message's listeners; the time they take extends the stall deadlines."""
        stall = self._proto.stall
        stall.handler_started(now)
        for on_message in callbacks:
            await self._call(on_message, msg)
        stall.handler_done(trio.current_time())

    async def _deliver(self, msg: Received) -> None:
        """Queue ``msg`` for ``messages()``; wait only when the bounded queue is full.

        Not yielding per message lets a burst of frames reach the consumer
        in one wake-up: the reader yields when it next waits for bytes.
        """
        try:
            self._msg_send.send_nowait(msg)
        except trio.WouldBlock:
            await self._deliver_blocking(msg)

    async def _deliver_blocking(self, msg: Received) -> None:
        """Wait for room in the ``messages()`` queue; the wait counts as listener time.

        Like a slow listener, a slow consumer holds the reader: the stall
        deadlines are extended by the wait, so the remote is not blamed.
        """
        stall = self._proto.stall
        stall.handler_started(trio.current_time())
        try:
            await self._msg_send.send(msg)
        finally:
            stall.handler_done(trio.current_time())

    async def _writer(self) -> None:
        receive = self._out_recv
        stream = self._stream
        proto = self._proto
        write_listeners = self._listeners.write
        while True:
            item = await receive.receive()
            batch = [item]
            size = len(item.frame)
            while size < _COALESCE_LIMIT:
                try:
                    nxt = receive.receive_nowait()
                except trio.WouldBlock:
                    break
                batch.append(nxt)
                size += len(nxt.frame)
            self._inflight = batch
            data = item.frame if len(batch) == 1 else b"".join([i.frame for i in batch])
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                for it in batch:
                    for callback in write_listeners:
                        await self._call(callback, 0, it.msg, exc)
                self._close(RemoteClosed(f"connection lost while writing: {exc}"))
                return
            now = trio.current_time()
            now_wall = time.time()
            debug = self._debug
            for it in batch:
                proto.sent(it.msg, len(it.frame), now=now, now_wall=now_wall)
                it.finish(_WRITTEN)
                if debug:
                    logger.debug(
                        "sent %s (%s) to %s", it.msg.command, summarize(it.msg), self.address
                    )
            self._inflight = []
            if write_listeners:
                for it in batch:
                    for callback in write_listeners:
                        await self._call(callback, len(it.frame), it.msg, None)

    async def _timers(self) -> None:
        """One task for every periodic duty: trickle, keepalive ping, stall checks, idleness.

        Ticks keep the reference's phases (every ``trickle_interval`` from the
        start, and so on), but an idle peer does not wake for trickle ticks
        while it has no inventory queued: thousands of idle peers cost no CPU.
        """
        config = self.config
        proto = self._proto
        stall = proto.stall
        start = trio.current_time()
        trickle = config.trickle_interval
        ping = config.ping_interval
        next_ping = start + ping
        tick = config.stall_tick_interval
        next_stall = start + tick if config.stall_detection else math.inf
        wake = self._timer_wake
        next_trickle = math.inf
        while True:
            now = trio.current_time()
            idle_deadline = self._last_recv_clock + config.idle_timeout
            if now >= idle_deadline:
                if self._reader_waiting:
                    self._close(
                        IdleTimeout(f"no message received for {config.idle_timeout:g} seconds")
                    )
                    return
                # The reader is busy with a message (listeners, a full messages() queue):
                # the idle timer does not run meanwhile.  Look again later.
                idle_deadline = now + config.idle_timeout
            if now >= next_stall:
                command = stall.check(now)
                if command is not None:
                    reason = f"got timeout for command {command}"
                    self._ban(scores.STALL_TIMEOUT, 0, reason)
                    self._close(StallError(reason, command))
                    return
                next_stall += tick * max(1, math.floor((now - next_stall) / tick) + 1)
            # This task never waits for room in the outbound queue: a remote that
            # stops reading must not stop the idle timer and the stall watchdog.
            if now >= next_ping:
                next_ping = _next_tick(start, ping, now)
                self._queue_own(MsgPing(_RNG.getrandbits(64)))
            if not proto.trickle_queue:
                next_trickle = math.inf
            elif next_trickle == math.inf:
                # The next tick of the trickle ticker, counted from the start.
                next_trickle = start + trickle * math.ceil((now - start) / trickle)
            if now >= next_trickle:
                # As many inv messages as the queue has room for; the rest waits for
                # a later tick (still unannounced, so not yet marked known).
                for inv in proto.trickle(self._outbound_room()):
                    self._queue_own(inv)
                next_trickle = _next_tick(start, trickle, now) if proto.trickle_queue else math.inf
                continue
            deadline = min(idle_deadline, next_stall, next_ping, next_trickle)
            if self._timer_wake.is_set():
                wake = self._timer_wake = trio.Event()
            with trio.move_on_at(deadline):
                await wake.wait()


def _next_tick(start: float, interval: float, now: float) -> float:
    """The first tick of a ticker started at ``start`` strictly after ``now``."""
    tick = start + interval * (math.floor((now - start) / interval) + 1)
    return tick if tick > now else tick + interval


def _reraise_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
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


def _raise_as_is(exc: BaseException) -> NoReturn:
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


def _is_passthrough(exc: BaseException) -> bool:
    """Exceptions that must travel through the nursery untouched."""
    return isinstance(exc, (trio.Cancelled, GeneratorExit))


_STREAM_METHODS: Final = ("send_all", "receive_some", "aclose")


def check_config(config: object) -> None:
    """Raise :class:`ConfigError` unless ``config`` is a :class:`PeerConfig`."""
    if not isinstance(config, PeerConfig):
        raise ConfigError(f"config must be a PeerConfig, got {type(config).__name__}")


@asynccontextmanager
async def open_peer(
    stream: trio.abc.Stream,
    config: PeerConfig,
    *,
    inbound: bool,
    remote_address: tuple[str, int] | None = None,
) -> AsyncIterator[Peer]:
    """Run a kaspa peer over ``stream`` for the duration of an ``async with`` block.

    The caller owns how ``stream`` was made (TCP, a proxy, memory streams);
    the peer owns it from here on and closes it on exit.  The handshake is
    complete when the block is entered: version exchanged both ways
    (outbound writes first, inbound reads first) and both veracks, all
    within ``config.negotiate_timeout``; a failure raises a
    :class:`HandshakeError` subclass.  Leaving the block closes the peer.

    Exceptions from the body propagate as themselves (the very object, even
    an exception group of your own).  An exception raised by one of the
    peer's tasks -- in practice, by one of your listeners -- cancels the body
    and propagates as itself too.  The remote closing the connection does
    not cancel the body: :meth:`Peer.send` raises :class:`PeerClosed` and
    :meth:`Peer.messages` ends.

    ``remote_address`` is the remote's ``(host, port)`` for the version
    message and statistics; for a TCP stream it is read from the socket.
    """
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
    peer = Peer(stream, config, inbound=inbound, remote_address=remote_address)
    outcome: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            peer._body_scope = nursery.cancel_scope
            try:
                await peer._handshake(nursery)
            except BaseException as exc:
                peer._close(exc)
                with trio.CancelScope(shield=True):
                    await peer._finalize()
                if _is_passthrough(exc):
                    raise
                outcome = exc
            else:
                try:
                    yield peer
                except BaseException as exc:
                    if _is_passthrough(exc):
                        raise
                    outcome = exc
                finally:
                    peer._close(LocalClose("closed locally"))
    except BaseExceptionGroup as group:
        raise _reraise_group(group) from None
    if outcome is not None:
        _raise_as_is(outcome)
    if peer._task_error is not None:
        _raise_as_is(peer._task_error)
