"""What every protocol core does the same way: accounting, output, timers, bans, closing.

:class:`BaseCore` implements the parts of :class:`~._interface.PeerCore`
that do not depend on the protocol: byte and message accounting (decided
once, here), the outgoing byte buffer and its completion tracking, the
handshake deadline, the idle timer and the keepalive ticker, the reader
state, the ban score and the close decision.  A protocol core subclasses it
and adds its codec, its handshake machine and its rules.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar, Final

from .._errors import (
    HandshakeClosedError,
    HandshakeError,
    HandshakeRejectedError,
    HandshakeTimeout,
    IdleTimeout,
    KaspaPeerError,
    MessageTimeout,
    MisbehaviorError,
    RejectedError,
    RemoteClosed,
    RemoteProtocolError,
    drop_tracebacks,
)
from ..wire import Hash, Services
from ._banscore import BanScore
from ._interface import (
    Close,
    Event,
    OwnMessage,
    PeerCore,
    ReaderState,
    Send,
    Sendable,
    SendPolicy,
)
from ._stats import PeerStats

if TYPE_CHECKING:
    from ._config import PeerConfig
    from ._context import PeerContext

__all__ = ["RNG", "BaseCore", "next_tick"]

logger: Final = logging.getLogger("trio_kaspa_peer.peer")

RNG: Final = random.SystemRandom()
"""Nonces and sampling: no state of its own, independent of ``random.seed``."""

_WAITING: Final = ReaderState.WAITING
_HELD: Final = ReaderState.HELD
COALESCE_LIMIT: Final = 256 * 1024
"""The most bytes :meth:`BaseCore.data_to_send` joins into one write."""


def next_tick(start: float, interval: float, now: float) -> float:
    """The first tick of a ticker started at ``start`` strictly after ``now``."""
    tick = start + interval * (math.floor((now - start) / interval) + 1)
    return tick if tick > now else tick + interval


class BaseCore(PeerCore):
    """The protocol-independent half of a peer core.  Subclasses implement the codec."""

    protocol_name: ClassVar[str]
    other_protocol: ClassVar[str] = ""
    """The other protocol's name, for a handshake lost before the remote said anything:
    a node of the other protocol ends such a connection."""

    __slots__ = (
        "_closed",
        "_events",
        "_handled",
        "_handshake_complete",
        "_handshake_deadline",
        "_id",
        "_idle_postponed",
        "_inflight",
        "_last_recv_clock",
        "_message_deadline",
        "_message_mark",
        "_next_ping",
        "_now",
        "_now_wall",
        "_out",
        "_out_size",
        "_protocol_version",
        "_queued_total",
        "_reader",
        "_remote_version",
        "_timers_origin",
        "_written_total",
        "address",
        "advertised_protocol_version",
        "ban",
        "bytes_received",
        "bytes_sent",
        "config",
        "context",
        "inbound",
        "last_ping_clock",
        "last_ping_micros",
        "last_ping_nonce",
        "last_ping_time",
        "last_recv",
        "last_send",
        "messages_received",
        "messages_sent",
        "selected_tip",
        "services",
        "time_connected",
        "time_offset",
        "user_agent",
        "verack_received",
        "version_known",
    )

    def __init__(
        self,
        config: PeerConfig,
        context: PeerContext,
        *,
        inbound: bool,
        address: str,
        now: float,
        now_wall: float,
    ) -> None:
        self.config = config
        self.context = context
        self.inbound = inbound
        self.address = address
        self._id = 0
        self.time_connected = now_wall
        self._remote_version: Any = None
        assert config.protocol_version is not None
        self._protocol_version = config.protocol_version
        self.advertised_protocol_version = 0
        self.version_known = False
        self.verack_received = False
        self._handshake_complete = False
        self.user_agent = ""
        self.services = Services(0)
        self.selected_tip: Hash | None = None
        self.time_offset = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.last_send = 0.0
        self.last_recv = 0.0
        self.last_ping_nonce = 0
        self.last_ping_time = 0.0
        self.last_ping_clock = 0.0
        self.last_ping_micros = 0
        self.ban = BanScore()
        self._events: deque[Event] = deque()
        self._closed = False
        self._out: list[bytes] = []
        self._out_size = 0
        self._queued_total = 0
        self._written_total = 0
        self._inflight: deque[tuple[int, Sendable]] = deque()
        self._now = now
        self._now_wall = now_wall
        self._handshake_deadline = now + config.handshake_timeout
        self._timers_origin: float | None = None
        self._next_ping = math.inf
        self._reader = _WAITING
        self._last_recv_clock = now
        self._idle_postponed = -math.inf
        self._handled = False
        self._message_deadline = math.inf
        self._message_mark = -1

    # -- public state ---------------------------------------------------------------------

    @property
    def handshake_complete(self) -> bool:
        return self._handshake_complete

    @property
    def remote_version(self) -> Any:
        return self._remote_version

    @property
    def protocol_version(self) -> int:
        return self._protocol_version

    @property
    def id(self) -> int:
        return self._id

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> PeerStats:
        return PeerStats(
            id=self._id,
            address=self.address,
            inbound=self.inbound,
            protocol=self.protocol_name,
            services=Services(self.services),
            user_agent=self.user_agent,
            protocol_version=self.advertised_protocol_version,
            version_known=self.version_known,
            verack_received=self.verack_received,
            selected_tip=self.selected_tip,
            time_connected=self.time_connected,
            time_offset=self.time_offset,
            last_send=self.last_send,
            last_recv=self.last_recv,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            messages_sent=self.messages_sent,
            messages_received=self.messages_received,
            last_ping_nonce=self.last_ping_nonce,
            last_ping_time=self.last_ping_time,
            last_ping_micros=self.last_ping_micros,
            ban_score=self.ban.value(self._now_wall),
        )

    # -- helpers for subclasses -----------------------------------------------------------

    def _accept_identity(
        self, *, version: Any, advertised: int, services: int, user_agent: str, timestamp: float
    ) -> None:
        """Record what the remote's accepted version message says about it."""
        self._remote_version = version
        self.advertised_protocol_version = advertised
        self._protocol_version = min(self._protocol_version, advertised)
        self.version_known = True
        self._id = self.context.next_peer_id()
        self.services = Services(services)
        self.user_agent = user_agent
        self.time_offset = int(timestamp - int(self._now_wall))

    def _start_timers(self, now: float) -> None:
        """The periodic timers (keepalive, and the subclass's) count from ``now``."""
        self._timers_origin = now
        self._next_ping = now + self.config.ping_interval

    def _complete_handshake(self) -> None:
        self._handshake_complete = True
        self._handshake_deadline = math.inf

    def offload_done(self, result: Any, error: BaseException | None) -> int:
        """The large message's off-loop work is done: the next event handles its result."""
        self._offload_finished()
        if error is None:
            return self._offload_succeeded(result)
        if isinstance(error, RemoteProtocolError):
            self._events.appendleft(self._offload_failed(error))
            return 0
        raise error  # not the remote's doing: a bug, raised as itself

    def _offload_finished(self) -> None:
        """The receive budget's room for the message is about to be released."""

    def _offload_succeeded(self, result: Any) -> int:
        """Keep the decoded message for the next event; its size (inflated)."""
        raise TypeError(f"{type(self).__name__} hands out no Offload work")

    def _offload_failed(self, error: RemoteProtocolError) -> Event:
        return self._fail(error)

    def _partial_message(self) -> bool:
        """Whether part of a message (not all of it) has been received (the subclass knows)."""
        return False

    def _out_of_data(self) -> None:
        """The subclass used up what was received: start the message timeout if a message
        is half-received, a fresh one for each message; stop it otherwise."""
        if self._partial_message():
            if self._message_mark != self.messages_received or self._message_deadline == math.inf:
                self._message_mark = self.messages_received
                self._message_deadline = self._now + self.config.message_timeout
        elif self._message_deadline != math.inf:
            self._message_deadline = math.inf

    def _count_received(self, nbytes: int) -> None:
        self.bytes_received += nbytes
        self.messages_received += 1
        self.last_recv = self._now_wall

    def _fail(self, reason: BaseException, linger: float = 0.0) -> Close:
        """Decide to close with ``reason``; the returned event is the last one.

        Events still waiting are dropped: nothing is delivered after a close.

        Before the handshake completed, a reason that is not already a
        :class:`HandshakeError` is wrapped in one (its ``__cause__``): the remote's
        Reject in a :class:`HandshakeRejectedError`, which is a :class:`RejectedError`
        too, and its close in a :class:`HandshakeClosedError`, a :class:`RemoteClosed`.
        """
        if not self._handshake_complete and not isinstance(reason, HandshakeError):
            text = f"the handshake with {self.address} failed: {reason}"
            wrapped: HandshakeError
            if isinstance(reason, RejectedError):
                wrapped = HandshakeRejectedError(text, reason.reason)
            elif isinstance(reason, RemoteClosed):
                wrapped = HandshakeClosedError(text, reason.mid_frame)
            else:
                wrapped = HandshakeError(text)
            wrapped.__cause__ = reason
            reason = wrapped
        self._closed = True
        self._events.clear()
        drop_tracebacks(reason)
        return Close(reason, linger)

    def connection_lost(self, error: BaseException) -> Close:
        if isinstance(error, KaspaPeerError):
            # The engine's own verdict (a write timeout): it is the reason.
            return self._fail(error)
        if not self._handshake_complete:
            hint = ""
            if self.remote_version is None and self.other_protocol:
                hint = (
                    f" (nothing came from the remote first: a {self.other_protocol} node ends"
                    " the connection so; see PeerConfig.protocol)"
                )
            reason: BaseException = HandshakeClosedError(
                f"connection lost during the handshake: {error}{hint}"
            )
            reason.__cause__ = error
            return self._fail(reason)
        return self._fail(RemoteClosed(f"connection lost: {error}"))

    def _then(self, first: Event, *rest: Event | tuple[Any, int]) -> Event:
        """Return ``first`` now and queue ``rest`` (events, message pairs) to follow it."""
        self._events.extend(rest)  # type: ignore[arg-type]  # pairs are events too
        return first

    def _misbehaved(self, persistent: int, transient: int, reason: str) -> bool:
        """Score the remote's misbehaviour; ``True`` when it must be disconnected.

        The reference's rule: a score over ``ban_threshold`` disconnects (and
        a node would ban); the ``ban_score`` callback records it and may veto
        by returning ``False``.
        """
        config = self.config
        score = self.ban.increase(persistent, transient, self._now_wall)
        logger.info(
            "ban score +%d/%d for %s: %s (now %d)", persistent, transient, self.address, reason,
            score,
        )  # fmt: skip
        verdict = config.ban_score(persistent, transient, reason) if config.ban_score else None
        threshold = config.ban_threshold
        return threshold is not None and score > threshold and verdict is not False

    def _ban_close(self, reason: str, linger: float = 0.0) -> Close:
        score = self.ban.value(self._now_wall)
        return self._fail(
            MisbehaviorError(f"ban score {score} is over the threshold; last: {reason}"), linger
        )

    # -- output -----------------------------------------------------------------------------

    def _emit(self, msg: Any, data: bytes) -> None:
        """Queue a message of the core's own (a version, a reject), ahead of the outbox."""
        self.queue(OwnMessage(msg, data))

    def wants_write(self) -> bool:
        return bool(self._out)

    def unfinished(self) -> list[Any]:
        return [item for _, item in self._inflight]

    def can_queue(self) -> bool:
        return self._out_size < COALESCE_LIMIT and not self._closed

    def queue(self, item: Sendable) -> None:
        data = item.data
        self._out.append(data)
        self._out_size += len(data)
        self._queued_total += len(data)
        self._inflight.append((self._queued_total, item))

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_size = 0
        return data

    def bytes_written(self, count: int, now: float, now_wall: float) -> list[Any]:
        self._written_total += count
        inflight = self._inflight
        done: list[Any] = []
        total = self._written_total
        while inflight and inflight[0][0] <= total:
            done.append(inflight.popleft()[1])
        self._now = now
        self._now_wall = now_wall
        if done:
            for item in done:
                self._account_sent(item.msg, len(item.data), now, now_wall)
        return done

    def _account_sent(self, msg: Any, nbytes: int, now: float, now_wall: float) -> None:
        """Account for one message written (the subclass adds its own bookkeeping)."""
        self.bytes_sent += nbytes
        self.messages_sent += 1
        self.last_send = now_wall

    # -- time and the reader --------------------------------------------------------------

    def reader_state(self, state: ReaderState, now: float) -> None:
        previous = self._reader
        if state is previous:
            return
        self._reader = state
        if previous is _HELD:
            self._on_release(now)
        if state is _HELD:
            self._on_hold(now)
        elif state is _WAITING and self._handled:
            # The idle timer counts from the end of processing, as the reference's does.
            self._handled = False
            self._last_recv_clock = now

    def _on_hold(self, now: float) -> None:
        """The application started holding the reader."""

    def _on_release(self, now: float) -> None:
        """The application stopped holding the reader."""

    def _idle_deadline(self) -> float:
        if self._timers_origin is None:
            return math.inf
        # Only ever moves later, so the engine's timer task never needs waking for it.
        return max(self._last_recv_clock + self.config.idle_timeout, self._idle_postponed)

    def next_deadline(self) -> float:
        if self._closed:
            return math.inf
        return min(
            self._handshake_deadline,
            self._idle_deadline(),
            self._next_ping,
            self._message_deadline,
        )

    def on_timer(self, now: float, room: int) -> list[Event]:
        self._now = now
        if self._closed:
            return []
        events: list[Event] = []
        if now >= self._handshake_deadline:
            timeout = self.config.handshake_timeout
            return [
                self._fail(
                    HandshakeTimeout(
                        f"handshake with {self.address} took longer than {timeout:g} s"
                    )
                )
            ]
        if now >= self._message_deadline:
            timeout = self.config.message_timeout
            if self._reader is _WAITING:
                return [
                    self._fail(
                        MessageTimeout(
                            f"a message from {self.address} was not complete "
                            f"{timeout:g} seconds after it began"
                        )
                    )
                ]
            # Held up, the reader is not reading: the remote is not slow, we are.
            self._message_deadline = now + timeout
        if now >= self._idle_deadline():
            timeout = self.config.idle_timeout
            if self._reader is _WAITING:
                return [self._fail(IdleTimeout(f"no message received for {timeout:g} seconds"))]
            # The reader is held up (listeners, a full messages()): the idle timer does
            # not run meanwhile.  Look again later.
            self._idle_postponed = now + timeout
        if now >= self._next_ping and self._timers_origin is not None:
            self._next_ping = next_tick(self._timers_origin, self.config.ping_interval, now)
            ping = self._keepalive_ping(now)
            if ping is not None:
                events.append(Send([ping], SendPolicy.DROP))
        return events

    def _keepalive_ping(self, now: float) -> Any:
        """The ping to send at a keepalive tick (``None``: none)."""
        return None
