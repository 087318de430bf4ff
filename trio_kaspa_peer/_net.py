"""TCP conveniences: :func:`connect` (outbound) and :func:`serve` (inbound)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._core import PeerConfig
from ._errors import ConnectError, KaspaPeerError, UsageError
from ._peer import Peer, check_config, logger, open_peer

__all__ = ["connect", "serve"]


@asynccontextmanager
async def connect(host: str, port: int, config: PeerConfig) -> AsyncIterator[Peer]:
    """Open a TCP connection to ``host:port`` and run an outbound peer over it.

    ``async with connect(...) as peer:`` -- the handshake is done inside the
    block; leaving it closes the peer and the connection.
    """
    check_config(config)
    if not isinstance(host, str):
        raise UsageError(f"host must be a str, got {type(host).__name__}")
    check_port(port)
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise ConnectError(f"could not connect to {host}:{port}: {exc}") from exc
    async with open_peer(stream, config, inbound=False, remote_address=(host, port)) as peer:
        yield peer


def check_port(port: object) -> None:
    """Raise :class:`UsageError` unless ``port`` is a TCP port number (0..65535)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 0xFFFF:
        raise UsageError(f"port must be an int in 0..65535, got {port!r}")


async def serve(
    handler: Callable[[Peer], Awaitable[Any]],
    port: int,
    config: PeerConfig,
    *,
    host: str | None = "127.0.0.1",
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept kaspa peers on ``host:port`` and run ``await handler(peer)`` for each one.

    Each connection gets an inbound peer; the handler runs inside its
    ``open_peer`` block and the peer closes when the handler returns.  A peer
    that fails (handshake, protocol error, an exception in the handler) is
    logged and closed: it never stops the server.  Use ``port=0`` and
    ``await nursery.start(serve, ...)``, which returns the listeners, to learn
    the port.  Handlers run in ``handler_nursery`` when given.
    """
    check_config(config)
    if not callable(handler):
        raise UsageError(f"handler must be an async callable, got {type(handler).__name__}")
    if host is not None and not isinstance(host, str):
        raise UsageError(f"host must be a str or None, got {type(host).__name__}")
    check_port(port)
    listeners = await trio.open_tcp_listeners(port, host=host)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            async with open_peer(stream, config, inbound=True) as peer:
                await handler(peer)
        except KaspaPeerError as exc:
            logger.info("inbound peer failed: %s", exc)
        except Exception:
            logger.exception("inbound peer handler raised")

    await trio.serve_listeners(
        handle, listeners, handler_nursery=handler_nursery, task_status=task_status
    )
