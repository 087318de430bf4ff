"""TCP: :func:`open_tcp_peer` dials a node, :func:`serve_tcp_peers` accepts them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, NoReturn

import trio

from ._config import PeerConfig
from ._engine import Peer, check_config, open_peer
from ._errors import (
    ConnectError,
    HandshakeError,
    KaspaPeerError,
    ListenError,
    LocalProtocolError,
    PeerClosed,
    RemoteProtocolError,
    UsageError,
)
from ._sansio import PeerContext

__all__ = ["open_tcp_peer", "serve_tcp_peers"]

logger: Final = logging.getLogger("trio_kaspa_peer.net")


def check_port(port: object) -> None:
    """Raise :class:`UsageError` unless ``port`` is a TCP port number (0..65535)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 0xFFFF:
        raise UsageError(f"port must be an int in 0..65535, got {port!r}")


def _check_context(context: object) -> None:
    if context is not None and not isinstance(context, PeerContext):
        raise UsageError(f"context must be a PeerContext, got {type(context).__name__}")


@asynccontextmanager
async def open_tcp_peer(
    host: str,
    port: int,
    config: PeerConfig,
    *,
    context: PeerContext | None = None,
    connect_timeout: float | None = None,
) -> AsyncIterator[Peer]:
    """Dial ``host:port`` and run an outbound peer over the connection.

    ``async with open_tcp_peer(...) as peer:`` -- the handshake is done inside
    the block; leaving it closes the peer and the connection.  A connection
    that cannot be made raises :class:`~trio_kaspa_peer.ConnectError` (also an
    :class:`OSError`), within ``connect_timeout`` seconds when given.
    """
    check_config(config)
    if not isinstance(host, str):
        raise UsageError(f"host must be a str, got {type(host).__name__}")
    check_port(port)
    _check_context(context)
    try:
        with trio.fail_after(_timeout_or_inf(connect_timeout)):
            stream = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError:
        raise ConnectError(
            f"could not connect to {host}:{port}: no answer within {connect_timeout:g} s"
        ) from None
    except OSError as exc:
        raise ConnectError(f"could not connect to {host}:{port}: {exc}") from exc
    async with open_peer(
        stream, config, inbound=False, remote_address=(host, port), context=context
    ) as peer:
        yield peer


def _timeout_or_inf(timeout: float | None) -> float:
    if timeout is None:
        return float("inf")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise UsageError(f"connect_timeout must be a positive number or None, got {timeout!r}")
    return float(timeout)


def _log_failure(address: str, exc: BaseException) -> None:
    """Log a failed inbound peer by the failure's true origin."""
    if isinstance(exc, (HandshakeError, RemoteProtocolError, PeerClosed)):
        logger.info("inbound peer %s failed: %s", address, exc)
    elif isinstance(exc, LocalProtocolError):
        logger.error("inbound peer %s: the handler's own protocol error", address, exc_info=exc)
    elif isinstance(exc, KaspaPeerError):
        logger.info("inbound peer %s failed: %s", address, exc)
    else:
        logger.error("inbound peer %s: the handler raised", address, exc_info=exc)


async def serve_tcp_peers(
    handler: Callable[[Peer], Awaitable[Any]],
    port: int,
    config: PeerConfig,
    *,
    host: str | None = None,
    context: PeerContext | None = None,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Accept kaspa peers on ``port`` and run ``await handler(peer)`` for each one.

    ``host`` is the address to listen on (``None``: every interface, as
    :func:`trio.serve_tcp`).  Each connection gets an inbound peer; the
    handler runs inside its ``open_peer`` block and the peer closes when the
    handler returns.  A peer that fails (handshake, protocol error, an
    exception in the handler) is logged by its origin and closed: it never
    stops the server.  All accepted peers share ``context`` (one is made
    when not given).  Use ``port=0`` and ``await nursery.start(serve_tcp_peers,
    ...)``, which returns the listeners, to learn the port.  Handlers run in
    ``handler_nursery`` when given.  A port that cannot be listened on raises
    :class:`~trio_kaspa_peer.ListenError` (also an :class:`OSError`).
    """
    check_config(config)
    if not callable(handler):
        raise UsageError(f"handler must be an async callable, got {type(handler).__name__}")
    if host is not None and not isinstance(host, str):
        raise UsageError(f"host must be a str or None, got {type(host).__name__}")
    check_port(port)
    _check_context(context)
    shared = context if context is not None else PeerContext()
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ListenError(f"could not listen on {host or '*'}:{port}: {exc}") from exc

    async def handle(stream: trio.SocketStream) -> None:
        try:
            address = "{}:{}".format(*stream.socket.getpeername()[:2])
        except OSError:
            address = "<unknown>"
        try:
            async with open_peer(stream, config, inbound=True, context=shared) as peer:
                await handler(peer)
        except Exception as exc:
            _log_failure(address, exc)

    await trio.serve_listeners(
        handle, listeners, handler_nursery=handler_nursery, task_status=task_status
    )
