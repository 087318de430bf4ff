"""The library's exception hierarchy.

:class:`KaspaPeerError` is the root of every exception trio-kaspa-peer raises.
Protocol errors are split as h11 splits them: :class:`LocalProtocolError` is
the caller's mistake (a value that cannot be encoded, a message that cannot be
sent), :class:`RemoteProtocolError` is the remote's (bytes that are not a valid
message, a broken protocol rule).  ``except RemoteProtocolError`` never
swallows a bug of the caller's.  This module imports nothing: every layer,
sans-IO codecs included, builds on it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigWarning",
    "ConnectError",
    "DuplicateVersionError",
    "HandshakeClosedError",
    "HandshakeError",
    "HandshakeRejectedError",
    "HandshakeTimeout",
    "IdleTimeout",
    "IncompatibleSubnetworkError",
    "KaspaPeerError",
    "ListenError",
    "LocalClose",
    "LocalProtocolError",
    "MessageTimeout",
    "MisbehaviorError",
    "NetworkMismatchError",
    "OutboundQueueFull",
    "PeerClosed",
    "PeerError",
    "PingTimeout",
    "ProtocolError",
    "ProtocolVersionTooLow",
    "RejectedError",
    "RemoteClosed",
    "RemoteProtocolError",
    "RequestTimeout",
    "SelfConnectionError",
    "StallError",
    "TooManyRequests",
    "UsageError",
    "VersionNotFirstError",
    "WriteTimeout",
]


class KaspaPeerError(Exception):
    """Root of every exception raised by trio-kaspa-peer."""


class ProtocolError(KaspaPeerError):
    """A message that cannot be decoded, encoded or accepted under the protocol's rules.

    ``command`` names the message the failure concerns (the wire command, or
    the payload name of the modern protocol), or is ``None`` when it is not
    known (for example when a frame header itself is bad).
    """

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command

    def __str__(self) -> str:
        text = super().__str__()
        if self.command is not None:
            return f"[{self.command}] {text}"
        return text


class LocalProtocolError(ProtocolError):
    """Our side got the protocol wrong: a value the caller gave cannot be encoded or sent.

    This is a bug in the calling code, never the remote's doing.
    """


class RemoteProtocolError(ProtocolError):
    """The remote broke the protocol: bytes that are not a valid message, or a broken rule."""


class PeerError(KaspaPeerError):
    """Base of the peer layer's errors."""


class ConfigError(PeerError, ValueError):
    """A :class:`~trio_kaspa_peer.PeerConfig` value is not acceptable."""


class ConfigWarning(UserWarning):
    """A :class:`~trio_kaspa_peer.PeerConfig` sets a field that its protocol ignores (a
    field of the other protocol's): the setting has no effect."""


class UsageError(PeerError, TypeError, ValueError):
    """An argument to the peer API is not acceptable: a port that is not a port number,
    a stream that is not a Trio stream, a handler that is not callable."""


class ConnectError(PeerError, OSError):
    """:func:`~trio_kaspa_peer.open_tcp_peer` could not open the TCP connection.

    The operating system's error is the ``__cause__``; as an :class:`OSError`
    this is caught wherever connection failures already are, and its
    ``errno`` is the system's (``errno.ECONNREFUSED``, ...) when every
    attempt failed alike (else ``None``).
    """


class ListenError(PeerError, OSError):
    """:func:`~trio_kaspa_peer.serve_tcp_peers` could not listen (the port is taken, say).

    The operating system's error is the ``__cause__``.
    """


class HandshakeError(PeerError):
    """The version handshake failed; raised by ``open_peer`` before its body runs."""


class HandshakeTimeout(HandshakeError):
    """The handshake did not finish within ``handshake_timeout``."""


class VersionNotFirstError(HandshakeError):
    """The remote's first message was not ``version``."""


class ProtocolVersionTooLow(HandshakeError):
    """The remote speaks a protocol version below the minimum we accept."""


class NetworkMismatchError(HandshakeError):
    """The remote is on another network: its Version names another network (modern), or
    its first frame carries another network's magic (protocol 1)."""


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


class HandshakeClosedError(HandshakeError, RemoteClosed):
    """The remote closed the connection, or it was lost, before the handshake was done.
    Nodes hang up so, without a word, when they refuse us (another network, a protocol
    version they do not take, ...): the message lists the likely reasons.  Both an
    ``except HandshakeError`` and an ``except RemoteClosed`` catch it."""


class LocalClose(PeerError):
    """We closed the peer (``aclose()`` or leaving the ``async with`` block)."""


class RejectedError(PeerError):
    """The remote sent a Reject: it is ending the connection, and ``reason`` says why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class HandshakeRejectedError(HandshakeError, RejectedError):
    """The remote sent a Reject during the handshake: it refused us (another network, a
    protocol version it does not take, a duplicate connection, ...), and ``reason`` is its
    own text.  Both an ``except HandshakeError`` and an ``except RejectedError`` catch it."""


class PingTimeout(PeerError):
    """Our keepalive ping got no matching pong in time (the modern protocol's rule)."""


class RequestTimeout(PeerError, TimeoutError):
    """A request got no answer within its timeout; the peer stays open."""


class TooManyRequests(PeerError):
    """``max_pending_requests`` requests already wait for their answers."""


class IdleTimeout(PeerError):
    """Nothing was received for ``idle_timeout`` seconds."""


class WriteTimeout(PeerError):
    """A write to the remote made no progress for ``write_timeout`` seconds: the remote
    stopped reading (or reads too slowly to be served)."""


class MessageTimeout(PeerError):
    """A message that had begun to arrive was not complete ``message_timeout`` seconds later
    (a remote trickling a frame byte by byte: slowloris)."""


class StallError(PeerError):
    """An expected response (``command``) did not arrive in time."""

    def __init__(self, message: str, command: str):
        super().__init__(message)
        self.command = command


class MisbehaviorError(PeerError, RemoteProtocolError):
    """The remote broke a protocol rule (bloom command without NODE_BLOOM, ...)."""


class DuplicateVersionError(MisbehaviorError):
    """A second ``version`` after the handshake (only recorded; the peer stays open)."""


def drop_tracebacks(error: BaseException) -> None:
    """Forget where ``error`` (and what caused it) was raised.

    A close reason outlives the peer's frames; kept, its traceback would tie
    them (and through them the peer) into reference cycles that only the
    cyclic garbage collector frees -- and a server that churns through
    connections then pays with full collections that stall its event loop.
    The message says what happened; where in the library it was noticed is
    of no use to the application.  (And what those frames held -- a message
    inflated to 32 MiB -- is freed at once, in the thread that drops them.)
    """
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        current.__traceback__ = None
        seen += 1
        current = current.__cause__ or current.__context__
