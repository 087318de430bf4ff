"""Helpers for testing code built on trio-kaspa-peer, without a network.

:func:`open_peer_pair` gives two peers over memory streams;
:func:`open_simulated_network` runs a whole simulated network of responder
nodes on loopback (what ``kaspa-peer demo`` crawls).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

from .._engine import Peer
from .._engine._groups import is_passthrough, raise_as_is, reraise_group
from .._errors import HandshakeClosedError, HandshakeRejectedError, PeerClosed
from .._protocols import open_peer
from .._sansio import PeerContext
from .._sansio._config import PeerConfig
from ._network import (
    NodeKind,
    SimulatedNetwork,
    SimulatedNode,
    default_mix,
    open_simulated_network,
)

__all__ = [
    "NodeKind",
    "SimulatedNetwork",
    "SimulatedNode",
    "default_mix",
    "open_peer_pair",
    "open_simulated_network",
]


@asynccontextmanager
async def open_peer_pair(
    outbound_config: PeerConfig,
    inbound_config: PeerConfig | None = None,
    *,
    outbound_context: PeerContext | None = None,
    inbound_context: PeerContext | None = None,
) -> AsyncIterator[tuple[Peer, Peer]]:
    """Two handshaken peers talking over in-memory streams: ``(outbound, inbound)``.

    Each end has its own :class:`~trio_kaspa_peer.PeerContext` unless given
    one, as two nodes would: self-connection detection stays on.  Both run
    in the caller's Trio run (use :class:`trio.testing.MockClock` to drive
    their timers); leaving the block closes both.  A handshake failure on
    either side raises its :class:`~trio_kaspa_peer.HandshakeError`; an
    exception a listener raises, on either side, is raised as itself (over
    the :class:`~trio_kaspa_peer.PeerClosed` the body meets as the
    connection closes under it).
    """
    inbound_config = inbound_config or outbound_config
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
                right, inbound_config, inbound=True, context=inbound_context
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
                    left, outbound_config, inbound=False, context=outbound_context
                ) as outbound:
                    inbound = await receive_inbound.receive()
                    try:
                        yield outbound, inbound
                    except BaseException as exc:
                        if is_passthrough(exc):
                            raise
                        body_error = exc
            except BaseException as exc:
                if is_passthrough(exc) or exc is body_error:
                    raise
                outbound_error = exc
                nursery.cancel_scope.cancel()  # the inbound side would wait for us forever
            finally:
                release.set()
    except BaseExceptionGroup as group:
        raise reraise_group(group) from None
    # When one side's handshake fails, the other only sees the connection close (or the
    # Reject it was sent): the failing side's error says why, so it wins.
    errors = [e for e in (inbound_error, outbound_error) if e is not None]
    errors.sort(key=lambda e: isinstance(e, (HandshakeClosedError, HandshakeRejectedError)))
    error = body_error if body_error is not None else (errors[0] if errors else None)
    if isinstance(body_error, PeerClosed) and inbound_error is not None:
        # The body found its peer closed because the inbound side failed: a listener
        # there raised (the application's bug, which open_peer lets out as itself).
        # That is the error to see, not its consequence.
        inbound_error.__context__ = body_error
        error = inbound_error
    # The error is raised from this frame: kept in its variables (and in the cells the
    # tasks above share), it would tie the frame and itself into a reference cycle.
    body_error = inbound_error = outbound_error = None
    del errors
    if error is not None:
        try:
            raise_as_is(error)
        finally:
            del error
