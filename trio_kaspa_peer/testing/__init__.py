"""Helpers for testing code built on trio-kaspa-peer, without a network."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import trio
import trio.testing

from .._core import PeerConfig
from .._errors import HandshakeError
from .._peer import Peer, _is_passthrough, _raise_as_is, _reraise_group, open_peer

__all__ = ["open_peer_pair"]


@asynccontextmanager
async def open_peer_pair(
    outbound_config: PeerConfig, inbound_config: PeerConfig | None = None
) -> AsyncIterator[tuple[Peer, Peer]]:
    """Two handshaken peers talking over in-memory streams: ``(outbound, inbound)``.

    Self-connection detection is turned off for the pair (both ends share
    this process's nonce cache).  Both run in the caller's Trio run (use
    ``trio.testing.MockClock`` to drive their timers); leaving the block
    closes both.  A handshake failure
    on either side raises its :class:`~trio_kaspa_peer.HandshakeError`.
    """
    inbound_config = inbound_config or outbound_config
    # Both ends live in this process, so each would see the other's nonce as its own.
    outbound_config = replace(outbound_config, allow_self_connection=True)
    inbound_config = replace(inbound_config, allow_self_connection=True)
    left, right = trio.testing.memory_stream_pair()
    send_inbound, receive_inbound = trio.open_memory_channel[Peer](1)
    release = trio.Event()
    body_error: BaseException | None = None
    inbound_error: BaseException | None = None
    outbound_error: BaseException | None = None

    async def run_inbound(cancel_pair: trio.CancelScope) -> None:
        nonlocal inbound_error
        try:
            async with open_peer(
                right, inbound_config, inbound=True, remote_address=("127.0.0.1", 16111)
            ) as peer:
                await send_inbound.send(peer)
                await release.wait()
        except Exception as exc:
            # Kept aside and raised as itself: no exception group around it.
            inbound_error = exc
            cancel_pair.cancel()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_inbound, nursery.cancel_scope)
            try:
                async with open_peer(
                    left, outbound_config, inbound=False, remote_address=("127.0.0.1", 16111)
                ) as outbound:
                    inbound = await receive_inbound.receive()
                    try:
                        yield outbound, inbound
                    except BaseException as exc:
                        if _is_passthrough(exc):
                            raise
                        body_error = exc
            except BaseException as exc:
                if _is_passthrough(exc) or exc is body_error:
                    raise
                outbound_error = exc
            finally:
                release.set()
    except BaseExceptionGroup as group:
        raise _reraise_group(group) from None
    if body_error is not None:
        _raise_as_is(body_error)
    # When one side's handshake fails, the other only sees the connection close (a
    # plain HandshakeError): the failing side's error says why, so it wins.
    errors = [e for e in (inbound_error, outbound_error) if e is not None]
    errors.sort(key=lambda e: type(e) is HandshakeError)
    if errors:
        _raise_as_is(errors[0])
