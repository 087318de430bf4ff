"""Which core and which :class:`Peer` class serve ``config.protocol``, and
:func:`open_peer`, which asks here and runs the peer in the engine.

The engine is handed the protocol's peer (:func:`make_peer`): it names no
protocol.  The protocol packages are imported only when a peer of theirs is
made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ._engine import Peer, run_peer
from ._sansio._config import KaspaProtocol, PeerConfig
from ._sansio._context import PeerContext

__all__ = ["make_peer", "open_peer"]


@asynccontextmanager
async def open_peer(
    stream: trio.abc.Stream,
    config: PeerConfig,
    *,
    inbound: bool,
    remote_address: tuple[str, int] | None = None,
    context: PeerContext | None = None,
) -> AsyncIterator[Peer]:
    """Run a kaspa peer over ``stream`` for the duration of an ``async with`` block.

    The caller owns how ``stream`` was made (TCP, a proxy, memory streams);
    the peer owns it from here on and closes it on exit.  ``config.protocol``
    chooses the protocol.  The handshake is complete when the block is
    entered, within ``config.handshake_timeout``; a failure raises a
    :class:`~trio_kaspa_peer.HandshakeError` subclass that says why.
    Leaving the block closes the peer.

    Exceptions from the body propagate as themselves (the very object, even
    an exception group of your own).  An exception raised by one of the
    peer's tasks -- in practice, by one of your listeners -- cancels the body
    and propagates as itself too.  The remote closing the connection does
    not cancel the body: :meth:`Peer.send` raises
    :class:`~trio_kaspa_peer.PeerClosed` and :meth:`Peer.messages` ends.

    ``remote_address`` is the remote's ``(host, port)`` for the version
    message and statistics; for a TCP stream it is read from the socket.
    ``context`` is what this peer shares with the application's other peers
    (self-connection detection, peer IDs); a fresh one when not given.
    """
    async with run_peer(
        stream,
        config,
        make_peer,
        inbound=inbound,
        remote_address=remote_address,
        context=context,
    ) as peer:
        try:
            yield peer
        finally:
            # An error raised through this frame must not find the peer here: the
            # peer's close reason is that error, and the two would make a cycle.
            del peer


def _label(address: tuple[str, int] | None) -> str:
    if address is None:
        return "<unknown>"
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def make_peer(
    stream: trio.abc.Stream,
    config: PeerConfig,
    context: PeerContext,
    *,
    inbound: bool,
    remote_address: tuple[str, int] | None,
    now: float,
    now_wall: float,
) -> Peer:
    """A new, not yet started peer of ``config.protocol`` over ``stream``."""
    label = _label(remote_address)
    if config.protocol is KaspaProtocol.V1:
        from ._v1 import V1Core, remote_net_address
        from ._v1peer import V1Peer

        core = V1Core(
            config,
            context,
            inbound=inbound,
            address=label,
            remote_net_address=remote_net_address(remote_address, config.services),
            now=now,
            now_wall=now_wall,
        )
        return V1Peer(stream, config, core, context)
    from ._modern import ModernCore
    from ._modernpeer import ModernPeer

    modern = ModernCore(
        config,
        context,
        inbound=inbound,
        address=label,
        authority=label if remote_address is not None else "localhost",
        now=now,
        now_wall=now_wall,
    )
    return ModernPeer(stream, config, modern, context)
