"""What the Trio engine drives: the sans-IO peer core interface and its events.

A *core* holds one connection's protocol: its codec and framing, its
handshake machine, its rules and its timer schedule.  It does no I/O and
reads no clock.  The engine (:mod:`trio_kaspa_peer._engine`) owns the stream
and the tasks and only does what the core decides:

* bytes in: ``receive_data(data, now, now_wall)`` (``b""`` at end of stream), then
  ``next_event()`` until it returns ``None``;
* bytes out: ``data_to_send()`` gives what may be written now;
  ``bytes_written(n, now)`` reports it written and returns the queued
  messages that are now completely on the wire;
* messages out: ``encode(msg)`` in the sender's task (a bad value raises a
  :class:`~trio_kaspa_peer.LocalProtocolError` there), then
  ``queue(item)`` from the writer once ``can_queue()`` says there is room;
* time: ``next_deadline()`` and ``on_timer(now, room)`` at that deadline;
* large messages: :class:`Reserve` (room in the shared receive budget before
  buffering one) and :class:`Offload` (its decoding, in a worker thread, the
  result handed back with ``offload_done``);
* the reader's state (``reader_state``), which pauses and extends timers
  while the application holds the reader.

What ``next_event()`` returns is either a ``(message, wire_size)`` pair --
an ordinary received message: run the listeners, deliver it to
``messages()`` -- or one of the :class:`Event` classes below.  The pair needs
no allocation of its own in the common case: framing decoders already yield
such tuples.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

__all__ = [
    "Close",
    "Event",
    "HandshakeComplete",
    "Notify",
    "Offload",
    "OwnMessage",
    "PeerCore",
    "ReadFailed",
    "ReaderState",
    "RequestFailed",
    "Reserve",
    "Response",
    "Send",
    "SendPolicy",
    "Sendable",
    "Unknown",
    "Yield",
]


class SendPolicy(enum.Enum):
    """What the outbox does with a message when it is full (count or bytes)."""

    WAIT = "wait"
    """Wait for room (backpressure on whoever sends)."""
    DROP = "drop"
    """Drop it quietly.  For the peer's own periodic messages (pings, trickled inventory)."""
    RAISE = "raise"
    """Raise :class:`~trio_kaspa_peer.OutboundQueueFull` (``send_nowait``)."""


class ReaderState(enum.Enum):
    """Where the engine's reader task is; the core's timers depend on it."""

    WAITING = "waiting"
    """Waiting on the remote, for bytes or for outbound room to answer it.  Idle time runs."""
    BUSY = "busy"
    """Decoding and applying rules.  Idle time does not run."""
    HELD = "held"
    """Held by the application (a listener runs, or ``messages()`` is full).
    Idle time does not run, and response deadlines move by the time held."""


class Sendable(Protocol):
    """A message on its way out, as the core sees it (the engine's queue item)."""

    msg: Any
    data: bytes
    """What :meth:`PeerCore.encode` made of ``msg``."""


class OwnMessage:
    """A message the core sent on its own (a version, a reply): completed like the
    engine's queue items, so that it is accounted and the write listeners see it."""

    __slots__ = ("data", "msg")

    def __init__(self, msg: Any, data: bytes) -> None:
        self.msg = msg
        self.data = data

    def finish(self, state: int) -> None:
        """Nobody waits for it."""


class Event:
    """Base of the events a core hands to the engine (besides message pairs)."""

    __slots__ = ()


class Notify(Event):
    """Run the read listeners for ``message``, and its type's listeners when ``dispatch``;
    do not deliver it (handshake messages)."""

    __slots__ = ("dispatch", "message", "size")

    def __init__(self, message: Any, size: int, dispatch: bool = True) -> None:
        self.message = message
        self.size = size
        self.dispatch = dispatch


class Yield(Event):
    """Let the other tasks run before the next event: the core works through a long read
    in slices, so that no read holds the event loop for long."""

    __slots__ = ()


class Unknown(Event):
    """A message the codec does not know: run the read and unknown-message listeners;
    deliver it when ``deliver`` is true."""

    __slots__ = ("deliver", "message", "size")

    def __init__(self, message: Any, size: int, deliver: bool) -> None:
        self.message = message
        self.size = size
        self.deliver = deliver


class ReadFailed(Event):
    """The bytes read could not be decoded; the read listeners hear of ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Send(Event):
    """Queue ``messages`` through the outbox with ``policy`` (replies wait; own messages drop)."""

    __slots__ = ("messages", "policy")

    def __init__(self, messages: Sequence[Any], policy: SendPolicy) -> None:
        self.messages = messages
        self.policy = policy


class Reserve(Event):
    """The core is about to buffer a large message of ``nbytes``: before reading on, take that
    much of the receive budget the peers of the context share (wait for it, reader held).

    The reservation lasts until the next :class:`Offload` is done, the next
    ``Reserve``, or the close; if the work succeeded, room for the decoded
    message's size (what :meth:`PeerCore.offload_done` returns) goes on with
    the message until the application takes it.  It bounds the memory of
    large messages in flight and waiting across all peers, not just per peer.
    """

    __slots__ = ("nbytes",)

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


class Offload(Event):
    """Run ``work()`` off the event loop (a worker thread, bounded in number), then give what
    it returned, or the exception it raised, to :meth:`PeerCore.offload_done` before asking
    for the next event: events stay in order.

    The work of a large message (its checksum and its decoding) goes here, so
    that no single message holds up the event loop; it must touch nothing
    but its own objects.
    """

    __slots__ = ("work",)

    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work


class HandshakeComplete(Event):
    """The handshake is done: the ``async with`` body may run."""

    __slots__ = ()


HANDSHAKE_COMPLETE: Final = HandshakeComplete()


class Close(Event):
    """Close the connection with ``reason``.

    When ``linger`` is positive, what the core has queued for sending (a
    reject, a goodbye) is given that many seconds to be written first.
    """

    __slots__ = ("linger", "reason")

    def __init__(self, reason: BaseException, linger: float = 0.0) -> None:
        self.reason: BaseException = reason
        self.linger: float = linger


class Response(Event):
    """The answer to the request ``request_id`` arrived."""

    __slots__ = ("message", "request_id", "size")

    def __init__(self, request_id: int, message: Any, size: int) -> None:
        self.request_id = request_id
        self.message = message
        self.size = size


class RequestFailed(Event):
    """The request ``request_id`` will get no answer (timed out, refused)."""

    __slots__ = ("error", "request_id")

    def __init__(self, request_id: int, error: BaseException) -> None:
        self.request_id = request_id
        self.error = error


class PeerCore(ABC):
    """The interface every protocol core implements; the engine needs nothing else.

    Everything here is synchronous and free of I/O: ``now`` is the engine's
    monotonic clock (``trio.current_time()``), ``now_wall`` unix time where a
    rule needs it.  Errors a core raises from ``encode`` or ``queue`` are the
    caller's (:class:`~trio_kaspa_peer.LocalProtocolError`); what the remote
    does wrong becomes events, never exceptions.
    """

    __slots__ = ()

    # -- identity and state, for the Peer's public properties ------------------------------

    address: str
    """The remote's ``host:port`` (``<unknown>`` when the stream has none)."""
    inbound: bool

    @property
    @abstractmethod
    def handshake_complete(self) -> bool: ...

    @property
    @abstractmethod
    def remote_version(self) -> Any:
        """The remote's version message (``None`` until it arrived)."""

    @property
    @abstractmethod
    def protocol_version(self) -> int:
        """The negotiated (applied) protocol version."""

    @property
    @abstractmethod
    def id(self) -> int:
        """The peer's ID in its context, given when the remote's version is accepted."""

    @abstractmethod
    def stats(self) -> Any:
        """A frozen snapshot of the peer's statistics."""

    @property
    def inbox_drop_types(self) -> frozenset[type]:
        """Message types dropped, not waited for, when ``messages()`` is full."""
        return frozenset()

    @property
    def wrapper_types(self) -> frozenset[type]:
        """Delivered types that wrap a message in their ``payload`` attribute: listeners,
        subscriptions and the drop rule take one by its payload's type."""
        return frozenset()

    # -- lifecycle ------------------------------------------------------------------------

    @abstractmethod
    def start(self, now: float, now_wall: float) -> None:
        """Begin: queue whatever opens the connection (a preface, a version)."""

    @abstractmethod
    def close(self, reason: BaseException) -> None:
        """We are closing: queue any goodbye and stop producing events."""

    # -- bytes in -----------------------------------------------------------------------------

    @abstractmethod
    def receive_data(self, data: bytes | bytearray, now: float, now_wall: float) -> None:
        """Bytes read from the stream; ``b""`` is the end of the stream."""

    @abstractmethod
    def next_event(self) -> tuple[Any, int] | Event | None:
        """The next thing to do about what was received; ``None``: read more."""

    @abstractmethod
    def connection_lost(self, error: BaseException) -> Close:
        """Reading or writing the stream failed with ``error``: why the peer closes.

        An error of the library's own (the engine's
        :class:`~trio_kaspa_peer.WriteTimeout`) is the reason itself.
        """

    def offload_done(self, result: Any, error: BaseException | None) -> int:
        """The :class:`Offload` work returned ``result`` (or raised ``error``).

        Returns the size of the message it decoded (inflated, if it came
        compressed; 0 when it failed): the room in the receive budget the
        message keeps until the application takes it.
        """
        raise TypeError(f"{type(self).__name__} hands out no Offload work")

    def unfinished(self) -> list[Any]:
        """The queued items not yet completely written (their write failed, say)."""
        return []

    def start_request(self, msg: Any, now: float, follows: int = 0) -> tuple[int, bytes]:
        """Check and encode a request; its id, which a :class:`Response` or
        :class:`RequestFailed` event will carry.  ``follows``: the id of an earlier
        request whose answer, given in parts, this one asks the next part of (the part
        comes under that id).  Protocols without request routing refuse."""
        from .._errors import UsageError

        raise UsageError(f"{type(self).__name__} has no requests with answers to wait for")

    def cancel_request(self, request_id: int) -> None:  # noqa: B027 - optional to override
        """The requester stopped waiting: forget the request."""

    def ping_message(self) -> Any:
        """The protocol's ping with a fresh random nonce, a request whose answer is its
        pong (for :meth:`Peer.ping <trio_kaspa_peer.Peer.ping>`).  Protocols without one
        refuse."""
        from .._errors import UsageError

        raise UsageError(f"{type(self).__name__} has no ping to wait for")

    # -- bytes and messages out -----------------------------------------------------------

    @abstractmethod
    def encode(self, msg: Any, *, own: bool = False) -> bytes:
        """Check and encode ``msg`` for sending (in the sender's task).  ``own``: a
        message of the core's own (a :class:`Send` event's); otherwise the
        application's, and a kind only the core may send is refused here."""

    def withdraw(self, msg: Any) -> None:  # noqa: B027 - optional to override
        """An application message :meth:`encode` took was not queued after all (the
        queue was full, the send was cancelled, the peer closed): what ``encode``
        counted for it is given back."""

    @abstractmethod
    def describe(self, msg: Any) -> str:
        """A one-line description of ``msg`` for the debug log."""

    @abstractmethod
    def wants_write(self) -> bool:
        """Whether bytes are waiting to be written (the engine wakes its writer)."""

    @abstractmethod
    def can_queue(self) -> bool:
        """Whether :meth:`queue` may take another message now."""

    @abstractmethod
    def queue(self, item: Sendable) -> None:
        """Take ``item`` for sending: its bytes come out of :meth:`data_to_send`."""

    @abstractmethod
    def data_to_send(self) -> bytes:
        """The bytes that may be written now (empty: nothing, or the remote's window is shut)."""

    @abstractmethod
    def bytes_written(self, count: int, now: float, now_wall: float) -> list[Any]:
        """``count`` bytes of :meth:`data_to_send` were written; the items now fully sent."""

    def sent_sizes(self, done: list[Any]) -> list[int]:
        """The size on the wire of each item the last :meth:`bytes_written` returned (what
        the ``on_write`` listeners are told, as ``on_read`` ones are of what is read)."""
        return [len(item.data) for item in done]

    # -- time and the reader --------------------------------------------------------------

    @abstractmethod
    def next_deadline(self) -> float:
        """When :meth:`on_timer` must next run (``math.inf``: never, until something changes)."""

    @abstractmethod
    def on_timer(self, now: float, room: int) -> list[Event]:
        """What is due at ``now``; ``room`` is how many more messages the outbox takes."""

    @abstractmethod
    def reader_state(self, state: ReaderState, now: float) -> None:
        """The engine's reader moved to ``state``."""

    def writer_idle(self, now: float) -> bool:
        """The writer found nothing it may write and waits.  The core may still hold
        bytes that the remote's flow control keeps back, and start a deadline for them:
        then it returns true (the engine's timers look again)."""
        return False

    def reading_paused(self) -> bool:
        """Whether the reader must wait for the writer to take bytes before reading on:
        the core owes the remote more answers than its bound (a remote asking without
        reading them).  The engine waits for its writer's next write, then asks again."""
        return False
