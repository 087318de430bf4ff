"""Dialling a kaspa node: :func:`open_tcp_peer` (:mod:`._serve` accepts them)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import trio

from ._engine import Peer, check_config
from ._errors import (
    ConnectError,
    UsageError,
)
from ._protocols import open_peer
from ._sansio import PeerContext
from ._sansio._config import PeerConfig

__all__ = ["check_port", "open_tcp_peer"]

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
        failure = ConnectError(f"could not connect to {host}:{port}: {_why(exc)}")
        # Refused, unreachable, ...: the system's number (not strerror, which would make
        # str() print "[Errno N] ..." in place of the message).
        failure.errno = _errno(exc)
        raise failure from exc
    async with open_peer(
        stream, config, inbound=False, remote_address=(host, port), context=context
    ) as peer:
        yield peer


def _why(exc: OSError) -> str:
    """What went wrong, in the operating system's words: trio's "all attempts to connect
    ... failed" keeps the error of each attempt in its cause."""
    cause = exc.__cause__
    errors = cause.exceptions if isinstance(cause, BaseExceptionGroup) else (exc,)
    reasons = dict.fromkeys(
        os.strerror(e.errno) if e.errno and e.errno > 0 else (e.strerror or str(e))
        for e in errors
        if isinstance(e, OSError)
    )
    return "; ".join(reasons) or str(exc)


def _errno(exc: OSError) -> int | None:
    """The system's error number, when every attempt failed with the same one."""
    cause = exc.__cause__
    errors = cause.exceptions if isinstance(cause, BaseExceptionGroup) else (exc,)
    numbers = {e.errno for e in errors if isinstance(e, OSError) and e.errno}
    return numbers.pop() if len(numbers) == 1 else None


def _timeout_or_inf(timeout: float | None) -> float:
    if timeout is None:
        return float("inf")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise UsageError(f"connect_timeout must be a positive number or None, got {timeout!r}")
    return float(timeout)
