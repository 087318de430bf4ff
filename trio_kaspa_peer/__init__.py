"""trio-kaspa-peer: the kaspa peer-to-peer protocol for Trio programs.

:mod:`trio_kaspa_peer.wire` is the sans-IO wire codec and imports nothing
from Trio; importing it alone does not import Trio either.  The peer itself
(:func:`open_peer`, :func:`connect`, :func:`serve`, ...) is loaded on first
use of one of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import wire
from ._core import MessageListeners, PeerConfig, PeerStats, build_user_agent
from ._core import banscores as banscores
from ._errors import (
    ConfigError,
    ConnectError,
    DuplicateVersionError,
    HandshakeError,
    HandshakeTimeout,
    IdleTimeout,
    IncompatibleSubnetworkError,
    KaspaPeerError,
    LocalClose,
    LocalProtocolError,
    MisbehaviorError,
    OutboundQueueFull,
    PeerClosed,
    PeerError,
    ProtocolError,
    ProtocolVersionTooLow,
    RemoteClosed,
    RemoteProtocolError,
    SelfConnectionError,
    StallError,
    UsageError,
    VersionNotFirstError,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._net import connect, serve
    from ._peer import Peer, SendHandle, open_peer

__all__ = [
    "ConfigError",
    "ConnectError",
    "DuplicateVersionError",
    "HandshakeError",
    "HandshakeTimeout",
    "IdleTimeout",
    "IncompatibleSubnetworkError",
    "KaspaPeerError",
    "LocalClose",
    "LocalProtocolError",
    "MessageListeners",
    "MisbehaviorError",
    "OutboundQueueFull",
    "Peer",
    "PeerClosed",
    "PeerConfig",
    "PeerError",
    "PeerStats",
    "ProtocolError",
    "ProtocolVersionTooLow",
    "RemoteClosed",
    "RemoteProtocolError",
    "SelfConnectionError",
    "SendHandle",
    "StallError",
    "UsageError",
    "VersionNotFirstError",
    "__version__",
    "banscores",
    "build_user_agent",
    "connect",
    "open_peer",
    "serve",
    "wire",
]

_LAZY = {
    "connect": "_net",
    "serve": "_net",
    "Peer": "_peer",
    "SendHandle": "_peer",
    "open_peer": "_peer",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'trio_kaspa_peer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
