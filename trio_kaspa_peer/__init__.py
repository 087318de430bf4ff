"""trio-kaspa-peer: the kaspa peer-to-peer protocols for Trio programs.

:mod:`trio_kaspa_peer.wire` is the sans-IO codec of protocol 1 and imports
nothing from Trio; importing it alone does not import Trio either.  The peer
itself (:func:`open_peer`, :func:`open_tcp_peer`, :func:`serve_tcp_peers`,
...) is loaded on first use of one of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import banscores, protowire, wire
from ._errors import (
    ConfigError,
    ConfigWarning,
    ConnectError,
    DuplicateVersionError,
    HandshakeClosedError,
    HandshakeError,
    HandshakeRejectedError,
    HandshakeTimeout,
    IdleTimeout,
    IncompatibleSubnetworkError,
    KaspaPeerError,
    ListenError,
    LocalClose,
    LocalProtocolError,
    MessageTimeout,
    MisbehaviorError,
    NetworkMismatchError,
    OutboundQueueFull,
    PeerClosed,
    PeerError,
    PingTimeout,
    ProtocolError,
    ProtocolVersionTooLow,
    RejectedError,
    RemoteClosed,
    RemoteProtocolError,
    RequestTimeout,
    SelfConnectionError,
    StallError,
    TooManyRequests,
    UsageError,
    VersionNotFirstError,
    WriteTimeout,
)
from ._fixup import fixup_module_metadata
from ._sansio import PeerContext, PeerStats
from ._sansio._config import (
    BanScoreCallback,
    IOListener,
    KaspaProtocol,
    Listener,
    MessageListeners,
    PeerConfig,
    build_user_agent,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._engine import MessageStream, Peer, SendHandle
    from ._modernpeer import ModernPeer
    from ._protocols import open_peer
    from ._serve import serve_tcp_peers
    from ._tcp import open_tcp_peer
    from ._v1peer import V1Peer

__all__ = [
    "BanScoreCallback",
    "ConfigError",
    "ConfigWarning",
    "ConnectError",
    "DuplicateVersionError",
    "HandshakeClosedError",
    "HandshakeError",
    "HandshakeRejectedError",
    "HandshakeTimeout",
    "IOListener",
    "IdleTimeout",
    "IncompatibleSubnetworkError",
    "KaspaPeerError",
    "KaspaProtocol",
    "ListenError",
    "Listener",
    "LocalClose",
    "LocalProtocolError",
    "MessageListeners",
    "MessageStream",
    "MessageTimeout",
    "MisbehaviorError",
    "ModernPeer",
    "NetworkMismatchError",
    "OutboundQueueFull",
    "Peer",
    "PeerClosed",
    "PeerConfig",
    "PeerContext",
    "PeerError",
    "PeerStats",
    "PingTimeout",
    "ProtocolError",
    "ProtocolVersionTooLow",
    "RejectedError",
    "RemoteClosed",
    "RemoteProtocolError",
    "RequestTimeout",
    "SelfConnectionError",
    "SendHandle",
    "StallError",
    "TooManyRequests",
    "UsageError",
    "V1Peer",
    "VersionNotFirstError",
    "WriteTimeout",
    "__version__",
    "banscores",
    "build_user_agent",
    "open_peer",
    "open_tcp_peer",
    "protowire",
    "serve_tcp_peers",
    "wire",
]

_LAZY = {
    "MessageStream": "._engine",
    "Peer": "._engine",
    "SendHandle": "._engine",
    "open_peer": "._protocols",
    "open_tcp_peer": "._tcp",
    "serve_tcp_peers": "._serve",
    "V1Peer": "._v1peer",
    "ModernPeer": "._modernpeer",
}
"""Names whose modules import Trio: loaded on first use."""

fixup_module_metadata(__name__, globals(), __all__)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'trio_kaspa_peer' has no attribute {name!r}")
    import importlib

    # Load them all at once: they import each other's types, and every one of them
    # must show its public module wherever it appears.
    loaded = {
        lazy: getattr(importlib.import_module(module_name, __name__), lazy)
        for lazy, module_name in _LAZY.items()
    }
    fixup_module_metadata(__name__, loaded, list(loaded))
    globals().update(loaded)
    return loaded[name]


def __dir__() -> list[str]:
    return sorted(__all__)
