"""Accepting kaspa peers: :func:`serve_tcp_peers`, its accept line and its limits."""

from __future__ import annotations

import errno
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

import trio

from ._admission import AcceptLine, Standing, address_key
from ._engine import Peer, check_config
from ._errors import (
    HandshakeError,
    IdleTimeout,
    KaspaPeerError,
    ListenError,
    LocalProtocolError,
    MessageTimeout,
    PeerClosed,
    PingTimeout,
    RemoteProtocolError,
    StallError,
    UsageError,
    WriteTimeout,
)
from ._protocols import open_peer
from ._sansio import PeerContext
from ._sansio._config import PeerConfig
from ._tcp import _check_context, check_port

__all__ = ["serve_tcp_peers"]

logger: Final = logging.getLogger("trio_kaspa_peer.net")


ACCEPTS_PER_PASS: Final = 64
"""The most connections ``serve_tcp_peers`` takes from the kernel per listening socket
and pass of the scheduler."""

_CAPACITY_ERRNOS: Final = frozenset(
    getattr(errno, name)
    for name in ("EMFILE", "ENFILE", "ENOMEM", "ENOBUFS")
    if hasattr(errno, name)
)
_CAPACITY_WAIT: Final = 0.1
# A connection that was gone before it was accepted, or refused by a firewall: the next.
_IGNORED_ACCEPT_ERRNOS: Final = frozenset(
    getattr(errno, name)
    for name in (
        "EPERM",
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ENOSR",
        "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT",
        "ETIMEDOUT",
        "ECONNRESET",
    )
    if hasattr(errno, name)
)
# Close reasons that count against an address's standing (besides a failed handshake):
# the remote broke a rule, or stopped doing its part.
_REMOTE_FAULTS: Final = (
    RemoteProtocolError,
    IdleTimeout,
    MessageTimeout,
    PingTimeout,
    StallError,
    WriteTimeout,
)


_Accepted = socket.socket | trio.SocketStream
"""An accepted connection: a plain socket until it is served, or trio's stream when trio
accepted it (no descriptor could be spared for the server's own accepting)."""


SLOW_HANDSHAKE: Final = 1.0
"""Seconds after which a handshake dropped to make room counts against its address even
when other addresses filled ``max_handshakes``: an honest one takes milliseconds."""


class _Handshakes:
    """The accepted connections still in their handshake, oldest first, with the limits
    on them: over a limit, the oldest handshake (of the same address, or of all) is dropped
    to make room.  An honest handshake takes milliseconds; what lingers is the slow one."""

    __slots__ = ("_by_host", "_pending", "_spared", "limit", "per_address")

    def __init__(self, limit: int, per_address: int) -> None:
        self.limit = limit
        self.per_address = per_address
        # key -> (address key, host:port, its cancel scope, when it came); oldest first
        self._pending: dict[object, tuple[str, str, trio.CancelScope, float]] = {}
        self._by_host: dict[str, int] = {}
        # Handshakes dropped for a crowd that was not theirs: not held against them.
        self._spared: set[object] = set()

    def admit(self, key: object, host: str, address: str, scope: trio.CancelScope) -> None:
        """``key``'s handshake begins: ``host`` is its address key (the limit per address
        counts by it), ``address`` names it in the log."""
        now = trio.current_time()
        if self._by_host.get(host, 0) >= self.per_address:
            oldest = next(k for k, (h, *_) in self._pending.items() if h == host)
            self._evict(oldest, f"{self.per_address} handshakes from its address (the limit)")
        if len(self._pending) >= self.limit:
            oldest = next(iter(self._pending))
            theirs, _, _, since = self._pending[oldest]
            if theirs != host and now - since < SLOW_HANDSHAKE:
                self._spared.add(oldest)
            self._evict(oldest, f"{self.limit} handshakes (the limit)")
        self._pending[key] = (host, address, scope, now)
        self._by_host[host] = self._by_host.get(host, 0) + 1

    def _evict(self, key: object, why: str) -> None:
        _, address, scope, _ = self._pending[key]
        self.done(key)
        scope.cancel()
        # One line per failure, as for the others: the oldest handshake makes room.
        logger.info("inbound peer %s dropped, the oldest of %s", address, why)

    def done(self, key: object) -> None:
        entry = self._pending.pop(key, None)
        if entry is not None:
            host = entry[0]
            left = self._by_host[host] - 1
            if left:
                self._by_host[host] = left
            else:
                del self._by_host[host]

    def spared(self, key: object) -> bool:
        """Whether ``key``'s handshake was dropped for a crowd of other addresses while it
        was still young (not held against its address); ``key`` is forgotten."""
        if key in self._spared:
            self._spared.discard(key)
            return True
        return False

    def __len__(self) -> int:
        return len(self._pending)


BAN_LIMIT: Final = 10_000
"""The most addresses ``serve_tcp_peers(ban_duration=...)`` keeps banned at once."""


class _Bans:
    """The addresses whose peers broke the protocol, each refused at accept until its ban
    ends (kaspad's ``--enablebanning`` and ``--banduration``); past ``limit`` bans, the
    oldest goes first (a remote with many addresses cannot grow this without bound)."""

    __slots__ = ("_until", "duration", "limit")

    def __init__(self, duration: float, limit: int = BAN_LIMIT) -> None:
        self.duration = duration
        self.limit = limit
        self._until: dict[str, float] = {}  # insertion order: the oldest ban first

    def holds(self, host: str, now: float) -> bool:
        until = self._until.get(host)
        if until is None:
            return False
        if now < until:
            return True
        del self._until[host]
        return False

    def add(self, host: str, now: float) -> None:
        self._until.pop(host, None)
        if len(self._until) >= self.limit:
            del self._until[next(iter(self._until))]
        self._until[host] = now + self.duration

    def __len__(self) -> int:
        return len(self._until)


def _positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{name} must be a positive int, got {value!r}")
    return value


def _log_failure(address: str, exc: BaseException) -> None:
    """Log a failed inbound peer by the failure's true origin.

    Every such record carries the error as its ``peer_error`` attribute and the
    remote's ``host:port`` as ``peer_address`` (a ``logging.Filter`` on the
    ``trio_kaspa_peer.net`` logger can count failed handshakes so).
    """
    extra = {"peer_error": exc, "peer_address": address}
    if isinstance(exc, (HandshakeError, RemoteProtocolError, PeerClosed)):
        logger.info("inbound peer %s failed: %s", address, exc, extra=extra)
    elif isinstance(exc, LocalProtocolError):
        logger.error(
            "inbound peer %s: the handler's own protocol error", address, exc_info=exc, extra=extra
        )
    elif isinstance(exc, KaspaPeerError):
        logger.info("inbound peer %s failed: %s", address, exc, extra=extra)
    else:
        logger.error(
            "inbound peer %s: the handler or a listener raised", address, exc_info=exc, extra=extra
        )


async def serve_tcp_peers(
    handler: Callable[[Peer], Awaitable[Any]],
    port: int,
    config: PeerConfig,
    *,
    host: str | None = None,
    context: PeerContext | None = None,
    handler_nursery: trio.Nursery | None = None,
    max_handshakes: int = 256,
    max_handshakes_per_address: int = 64,
    max_peers: int | None = None,
    accept_batch: int = 1,
    max_waiting: int = 256,
    ban_duration: float | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Accept kaspa peers on ``port`` and run ``await handler(peer)`` for each one.

    ``host`` is the address to listen on (``None``: every interface, as
    :func:`trio.serve_tcp`).  Each connection gets an inbound peer; the
    handler runs inside its ``open_peer`` block and the peer closes when the
    handler returns.  A peer that fails (handshake, protocol error, an
    exception in the handler) is logged by its origin and closed: it never
    stops the server.  (The log records, on the ``trio_kaspa_peer.net``
    logger, carry the error as ``peer_error`` and the remote's ``host:port``
    as ``peer_address``: a ``logging.Filter`` there can count them.)
    All accepted peers share ``context`` (one is made
    when not given).  Use ``port=0`` and ``await nursery.start(serve_tcp_peers,
    ...)``, which returns the listeners, to learn the port.  Handlers run in
    ``handler_nursery`` when given.  A port that cannot be listened on raises
    :class:`~trio_kaspa_peer.ListenError` (also an :class:`OSError`).

    Limits, so that connections that never finish their handshake cannot
    crowd out the ones that do: at most ``max_handshakes`` accepted
    connections in their handshake at once (256), at most
    ``max_handshakes_per_address`` of them from one address (64); a new
    connection over either limit drops the oldest handshake in its way (of
    its own address first).  ``max_peers`` (``None``: no limit) bounds every
    accepted connection, handshaken or not, with those waiting to be served;
    over it, the worst-placed waiting connection (the new one, unless it
    outranks one) is closed as it is taken.

    ``ban_duration`` (``None``, the default: no bans, as kaspad without
    ``--enablebanning``): once a handshaken peer from an address breaks the
    protocol (its own close reason is a
    :class:`~trio_kaspa_peer.RemoteProtocolError`; a failed handshake, a
    timeout, or an error the handler raised is not), new connections from
    that address are closed on accept, before any byte is read or written,
    for that many seconds (kaspad's ``--banduration``: 24 hours).  At most
    10,000 addresses are banned at once; past that, the oldest ban ends.

    Accepting: the connections the kernel holds are taken at once (up to 64
    per listening socket and pass of the scheduler) into a line of at most
    ``max_waiting`` (256), and ``accept_batch`` of them (1) start being
    served per pass.  The line serves first the connections from addresses
    whose recent connections went well: a connection that failed its
    handshake, or whose peer broke the protocol or timed out, counts against
    its address (the count halves every minute); first come, first served
    within a rank.  A handshake dropped to make room under
    ``max_handshakes`` does not count when other addresses made the crowd
    and it had waited less than a second.  An address is an IPv4 address,
    or an IPv6 address's /64 (as for ``max_handshakes_per_address``; one
    carrying an IPv4 address counts as that address).  So under a flood of
    attackers that reconnect as soon as they are closed, an honest peer
    waits behind few of them, not behind the kernel's whole first-come
    queue.  When the line is full, a new connection that outranks one
    waiting takes its place (the newest of the worst-placed is closed
    unserved); one that does not is closed unserved; and while it is full of
    connections from addresses with a clean record, new connections wait in
    the kernel's queue.  The line ranks and never refuses a clean address:
    attackers with a fresh address each time, or that leave cleanly, rank
    as honest peers do, and hosts behind one NAT, or sharing a /64, share
    their standing.  A larger ``accept_batch`` serves the line sooner, and the peers already in
    pay for it (:doc:`security` has the figures).  Out of descriptors at the
    start, the server accepts through trio, one connection per pass, and a
    new connection that finds the line full may then be closed rather than
    left to the kernel.

    Cancelling the server closes every peer; each still writes its parting
    words if its stream takes them at once (:doc:`timeouts`).  A server
    holding a thousand peers holds about 200,000 objects the interpreter's
    cyclic collector walks, and a full collection stops every peer for tens
    of milliseconds; under a flood of connections they come every second or
    so.  The library leaves no cycles for them to find, so an application
    may make them rare with ``gc.set_threshold(700, 10, 1000)`` (the
    library does not touch the process's collector; :doc:`security` has the
    figures).
    """
    check_config(config)
    if not callable(handler):
        raise UsageError(f"handler must be an async callable, got {type(handler).__name__}")
    if host is not None and not isinstance(host, str):
        raise UsageError(f"host must be a str or None, got {type(host).__name__}")
    check_port(port)
    _check_context(context)
    handshakes = _Handshakes(
        _positive("max_handshakes", max_handshakes),
        _positive("max_handshakes_per_address", max_handshakes_per_address),
    )
    if max_peers is not None:
        _positive("max_peers", max_peers)
    batch = _positive("accept_batch", accept_batch)
    waiting_limit = _positive("max_waiting", max_waiting)
    bans: _Bans | None = None
    if ban_duration is not None:
        if (
            isinstance(ban_duration, bool)
            or not isinstance(ban_duration, (int, float))
            or not 0 < ban_duration < math.inf
        ):
            raise UsageError(
                f"ban_duration must be a positive number of seconds or None, got {ban_duration!r}"
            )
        bans = _Bans(ban_duration)
    shared = context if context is not None else PeerContext()
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ListenError(f"could not listen on {host or '*'}:{port}: {exc}") from exc
    server = _Server(
        handler,
        config,
        shared,
        handshakes=handshakes,
        bans=bans,
        max_peers=max_peers,
        batch=batch,
        waiting_limit=waiting_limit,
    )
    # A copy of each listening socket to accept from without a pass of the scheduler
    # for each connection (none when out of descriptors: then through trio).
    copies: list[socket.socket | None] = []
    try:
        for listener in listeners:
            try:
                copies.append(_nonblocking_copy(listener))
            except OSError as exc:
                logger.debug("accepting one connection per pass on %s: %s", _where(listener), exc)
                copies.append(None)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                server.admit, handler_nursery if handler_nursery is not None else nursery
            )
            for listener, copy in zip(listeners, copies, strict=True):
                nursery.start_soon(server.drain, listener, copy)
            task_status.started(listeners)
    finally:
        server.close_waiting()
        for copy in copies:
            if copy is not None:
                copy.close()
        for listener in listeners:
            listener.socket.close()
    raise AssertionError("the accepting tasks returned")  # pragma: no cover


class _Server:
    """What one :func:`serve_tcp_peers` call keeps: the accept line, the addresses'
    standing, the handshake limits and bans, and its count of peers.

    Per listener, :meth:`drain` takes the connections the kernel holds into the line
    (:meth:`take`); :meth:`admit` starts ``batch`` of them per pass of the scheduler,
    each in :meth:`handle`, which runs the peer and records how it ended.
    """

    __slots__ = (
        "_bans",
        "_batch",
        "_config",
        "_handler",
        "_handshakes",
        "_line",
        "_max_peers",
        "_roomy",
        "_shared",
        "_standing",
        "_waiting",
        "live",
        "starting",
    )

    def __init__(
        self,
        handler: Callable[[Peer], Awaitable[Any]],
        config: PeerConfig,
        shared: PeerContext,
        *,
        handshakes: _Handshakes,
        bans: _Bans | None,
        max_peers: int | None,
        batch: int,
        waiting_limit: int,
    ) -> None:
        self._handler = handler
        self._config = config
        self._shared = shared
        self._handshakes = handshakes
        self._bans = bans
        self._max_peers = max_peers
        self._batch = batch
        # A connection is a plain socket until it is served (closing one unserved costs
        # half as much), or trio's stream when trio accepted it.
        self._line: AcceptLine[tuple[_Accepted, str, str]] = AcceptLine(waiting_limit)
        self._standing = Standing()
        self._waiting = trio.lowlevel.ParkingLot()  # admit, while the line is empty
        self._roomy = trio.lowlevel.ParkingLot()  # drain, while it is full of clean ones
        self.live = 0  # connections being served
        self.starting = 0  # taken from the line, their handler not yet running

    def take(self, conn: _Accepted, name: object) -> None:
        """Put a connection just accepted in line, or close it unserved."""
        host, address = _names(name)
        now = trio.current_time()
        bans = self._bans
        if bans is not None and host != "<unknown>" and bans.holds(host, now):
            logger.debug("inbound peer %s refused: its address is banned", address)
            _close(conn)
            return
        # Within max_peers: the peers, those on their way and the line never come to more.
        room = None if self._max_peers is None else self._max_peers - self.live - self.starting
        line = self._line
        for gone, _, gone_address in line.push(
            (conn, host, address), self._standing.rank(address_key(host), now), room
        ):
            logger.debug(
                "inbound peer %s closed unserved: %d waiting to be served, %d peers",
                gone_address,
                len(line),
                self.live,
            )
            _close(gone)
        if line:
            self._waiting.unpark()

    async def handle(self, conn: _Accepted, remote_host: str, address: str) -> None:
        """Run the peer of one connection, then record how it ended."""
        self.starting -= 1
        stream = (
            conn
            if isinstance(conn, trio.SocketStream)
            else trio.SocketStream(trio.socket.from_stdlib_socket(conn))
        )
        self.live += 1
        handshakes = self._handshakes
        key = object()
        scope = trio.CancelScope()
        judged = address_key(remote_host)  # an IPv6 address by its /64
        handshakes.admit(key, judged, address, scope)
        served: Peer | None = None
        try:
            with scope:
                async with open_peer(
                    stream, self._config, inbound=True, context=self._shared
                ) as peer:
                    served = peer
                    handshakes.done(key)
                    await self._handler(peer)
        except Exception as exc:
            _log_failure(address, exc)
        finally:
            self.live -= 1
            handshakes.done(key)
            spared = handshakes.spared(key)
        reason = served.close_reason if served is not None else None
        if remote_host == "<unknown>":
            return
        # The address's standing: a failed handshake (not one dropped, young, for
        # other addresses' crowd), or a peer closed for its remote's fault.
        if (served is None and not spared) or isinstance(reason, _REMOTE_FAULTS):
            self._standing.failed(judged, trio.current_time())
        # A ban: the peer's own close reason decides, not what the handler raised
        # (another peer's error, the application's), nor a failed handshake (another
        # network, another protocol: a misconfigured node is no attacker).
        bans = self._bans
        if bans is not None and isinstance(reason, RemoteProtocolError):
            bans.add(remote_host, trio.current_time())
            logger.info(
                "inbound peers from %s banned for %g s: %s", remote_host, bans.duration, reason
            )

    async def admit(self, nursery: trio.Nursery) -> None:
        """Serve ``batch`` connections of the line per pass of the scheduler."""
        line = self._line
        while True:
            if not line:
                await self._waiting.park()
            for _ in range(self._batch):
                entry = line.pop()
                if entry is None:
                    break
                try:
                    nursery.start_soon(self.handle, *entry)
                except BaseException:
                    _close(entry[0])  # a handler nursery that is closed
                    raise
                self.starting += 1
            self._roomy.unpark_all()
            await trio.lowlevel.checkpoint()

    async def drain(self, listener: trio.SocketListener, copy: socket.socket | None) -> None:
        """Take the connections the kernel holds for ``listener`` into the line, all at
        once; while the line is full of connections with a clean record, the kernel keeps
        the rest, first come, first served."""
        where = _where(listener)
        line = self._line
        while True:
            while not line.has_room_for(0):
                await self._roomy.park()
            if copy is None:  # no descriptor to spare: one connection a pass, through trio
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    await _out_of_capacity(where, exc)
                    continue
                self.take(stream, _peername(stream))
                continue
            if listener.socket.fileno() == -1:
                raise trio.ClosedResourceError(f"the listener on {where} was closed")
            # Wait on the caller's descriptor (the same socket as the copy's): closing the
            # listener ends the wait, as it ends trio's own accept.
            await trio.lowlevel.wait_readable(listener.socket)
            for _ in range(ACCEPTS_PER_PASS):
                if not line.has_room_for(0):
                    break
                try:
                    sock, name = copy.accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in _IGNORED_ACCEPT_ERRNOS:
                        continue
                    await _out_of_capacity(where, exc)
                    break
                self.take(sock, name)

    def close_waiting(self) -> None:
        """Close every connection still waiting in line."""
        for conn, _, _ in self._line.clear():
            _close(conn)


def _where(listener: trio.SocketListener) -> str:
    """``host:port`` of a listener (its socket may have been closed since)."""
    try:
        return "{}:{}".format(*listener.socket.getsockname()[:2])
    except (OSError, TypeError):
        return "a closed listener"


async def _out_of_capacity(where: str, exc: OSError) -> None:
    """Out of descriptors or memory: wait a moment and accept again, as
    :func:`trio.serve_listeners` does; any other failure is raised."""
    if exc.errno not in _CAPACITY_ERRNOS:
        raise exc
    logger.error(
        "accepting on %s: %s; accepting again in %g s",
        where,
        os.strerror(exc.errno or 0),
        _CAPACITY_WAIT,
    )
    await trio.sleep(_CAPACITY_WAIT)


def _names(name: object) -> tuple[str, str]:
    """The host, and ``host:port``, of a remote socket address."""
    if isinstance(name, tuple) and len(name) >= 2:
        host = str(name[0])
        return host, f"[{host}]:{name[1]}" if ":" in host else f"{host}:{name[1]}"
    return "<unknown>", "<unknown>"


def _close(conn: _Accepted) -> None:
    """Close an accepted connection at once (nothing is owed to it)."""
    (conn.socket if isinstance(conn, trio.SocketStream) else conn).close()


def _peername(stream: trio.SocketStream) -> object:
    try:
        return stream.socket.getpeername()
    except OSError:
        return None


def _nonblocking_copy(listener: trio.SocketListener) -> socket.socket:
    """A standard socket on another descriptor of ``listener``'s listening socket, to
    accept from without a pass of the scheduler for each connection."""
    fd = listener.socket.dup().detach()
    try:
        sock = socket.socket(fileno=fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
