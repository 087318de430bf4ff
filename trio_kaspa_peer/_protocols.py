"""Which core and which :class:`Peer` class serve ``config.protocol``.

The engine asks here; the protocol packages are imported only when a peer
of theirs is made, so the engine itself names no protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import KaspaProtocol, PeerConfig

if TYPE_CHECKING:
    import trio

    from ._engine import Peer
    from ._sansio._context import PeerContext

__all__ = ["make_peer"]


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
