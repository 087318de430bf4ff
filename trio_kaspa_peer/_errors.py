"""Exceptions of the peer layer.  All derive from :class:`~trio_kaspa_peer.wire.KaspaPeerError`."""

from __future__ import annotations

from .wire import KaspaPeerError

__all__ = [
    "ConfigError",
    "ConnectError",
    "DuplicateVersionError",
    "HandshakeError",
    "HandshakeTimeout",
    "IdleTimeout",
    "IncompatibleSubnetworkError",
    "LocalClose",
    "MisbehaviorError",
    "OutboundQueueFull",
    "PeerClosed",
    "PeerError",
    "ProtocolVersionTooLow",
    "RemoteClosed",
    "SelfConnectionError",
    "StallError",
    "UsageError",
    "VersionNotFirstError",
]


class PeerError(KaspaPeerError):
    """Base of the peer layer's errors."""


class ConfigError(PeerError, ValueError):
    """A :class:`~trio_kaspa_peer.PeerConfig` value is not acceptable."""


class UsageError(PeerError, TypeError, ValueError):
    """An argument to the peer API is not acceptable: a port that is not a port number,
    a stream that is not a Trio stream, a handler that is not callable."""


class ConnectError(PeerError, OSError):
    """:func:`~trio_kaspa_peer.connect` could not open the TCP connection.

    The operating system's error is the ``__cause__``; as an :class:`OSError`
    this is caught wherever connection failures already are.
    """


class HandshakeError(PeerError):
    """The version handshake failed; raised by ``open_peer`` before its body runs."""


class HandshakeTimeout(HandshakeError):
    """The handshake did not finish within ``negotiate_timeout``."""


class VersionNotFirstError(HandshakeError):
    """The remote's first message was not ``version``."""


class ProtocolVersionTooLow(HandshakeError):
    """The remote speaks a protocol version below the minimum we accept."""


class SelfConnectionError(HandshakeError):
    """The remote's version nonce is one we sent: we are talking to ourselves."""


class IncompatibleSubnetworkError(HandshakeError):
    """The remote's subnetwork is not acceptable to us (the reference's subnetwork rules)."""


class PeerClosed(PeerError):
    """The peer is closed; the operation could not complete.

    ``reason`` is what closed it (also the exception's ``__cause__``).
    """

    def __init__(self, message: str = "peer is closed", reason: BaseException | None = None):
        super().__init__(message)
        self.reason = reason


class OutboundQueueFull(PeerError):
    """``send_nowait`` found the bounded outbound queue full."""


# -- close reasons: what ``Peer.close_reason`` holds -------------------------------------------


class RemoteClosed(PeerError):
    """The remote closed the connection (``mid_frame`` when it stopped inside a frame)."""

    def __init__(self, message: str = "remote closed the connection", mid_frame: bool = False):
        super().__init__(message)
        self.mid_frame = mid_frame


class LocalClose(PeerError):
    """We closed the peer (``aclose()`` or leaving the ``async with`` block)."""


class IdleTimeout(PeerError):
    """Nothing was received for ``idle_timeout`` seconds."""


class StallError(PeerError):
    """An expected response (``command``) did not arrive in time."""

    def __init__(self, message: str, command: str):
        super().__init__(message)
        self.command = command


class MisbehaviorError(PeerError):
    """The remote broke a protocol rule (bloom command without NODE_BLOOM, ...)."""


class DuplicateVersionError(MisbehaviorError):
    """A second ``version`` after the handshake (only recorded; the peer stays open)."""
