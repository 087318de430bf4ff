"""The exception hierarchy of the protocol-1 wire codec.

Every error the codec raises is a :class:`ProtocolError`, split as h11 splits
its errors: bytes the remote sent that are not a valid message raise a
:class:`RemoteProtocolError` subclass; values the caller gave that cannot be
encoded raise a :class:`LocalProtocolError` subclass (:class:`FieldValueError`
and below).  So ``except RemoteProtocolError`` never swallows a caller's bug.
Each subclass names one kind of failure, and every instance carries the wire
command when it is known.
"""

from __future__ import annotations

from .._errors import KaspaPeerError, LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = [
    "ChecksumError",
    "CommandTooLongError",
    "CountOverLimitError",
    "EncodeError",
    "FieldTypeError",
    "FieldValueError",
    "IncompleteFrameError",
    "InvalidCommandError",
    "KaspaPeerError",
    "LocalProtocolError",
    "MalformedPayloadError",
    "MessageTooLargeError",
    "NonCanonicalVarIntError",
    "PayloadTooLargeError",
    "ProtocolError",
    "RemoteProtocolError",
    "TruncatedPayloadError",
    "UnknownCommandError",
    "WrongNetworkError",
]


class IncompleteFrameError(RemoteProtocolError):
    """The input ended before a whole frame (header and payload) was read."""


class WrongNetworkError(RemoteProtocolError):
    """The frame's magic is not the one of the network we speak.

    ``magic`` is the 32-bit value found in the header.
    """

    def __init__(self, message: str, *, magic: int, command: str | None = None) -> None:
        super().__init__(message, command=command)
        self.magic = magic


class ChecksumError(RemoteProtocolError):
    """The payload's double SHA-256 does not start with the header's checksum."""


class PayloadTooLargeError(RemoteProtocolError):
    """A payload is larger than MaxMessagePayload or than its message type allows.

    ``length`` is the offending size and ``limit`` the maximum that applied.
    """

    def __init__(
        self, message: str, *, length: int, limit: int, command: str | None = None
    ) -> None:
        super().__init__(message, command=command)
        self.length = length
        self.limit = limit


class UnknownCommandError(RemoteProtocolError):
    """The header names a command that no registered message type handles.

    Only :func:`~trio_kaspa_peer.wire.decode_frame` raises this; the streaming
    :class:`~trio_kaspa_peer.wire.FrameDecoder` reports unknown commands as a
    skippable :class:`~trio_kaspa_peer.wire.UnknownMessage` instead.
    """


class InvalidCommandError(UnknownCommandError):
    """The header's command field is not valid UTF-8 (or too long to encode)."""


class MalformedPayloadError(RemoteProtocolError):
    """The payload does not decode as the message its command names."""


class TruncatedPayloadError(MalformedPayloadError):
    """The payload ended before the message it holds was complete."""


class NonCanonicalVarIntError(MalformedPayloadError):
    """A variable-length integer was not written in its shortest form."""


class CountOverLimitError(MalformedPayloadError):
    """A count or length in the payload exceeds the limit the protocol sets.

    Raised before anything is allocated for the oversized item.  ``count`` is
    the value found and ``limit`` the maximum allowed.
    """

    def __init__(
        self, message: str, *, count: int, limit: int, command: str | None = None
    ) -> None:
        super().__init__(message, command=command)
        self.count = count
        self.limit = limit


class FieldValueError(LocalProtocolError, ValueError):
    """A value given for a wire field cannot be represented (wrong size, out of range)."""


class FieldTypeError(FieldValueError, TypeError):
    """A value given for a wire field has the wrong type or shape (``None`` for bytes, say)."""


class EncodeError(FieldValueError):
    """A message holds values the wire format (or the reference) refuses to encode."""


class MessageTooLargeError(EncodeError):
    """A message encodes to a payload larger than MaxMessagePayload or its type's own limit.

    ``length`` is the encoded size and ``limit`` the maximum that applied.
    """

    def __init__(
        self, message: str, *, length: int, limit: int, command: str | None = None
    ) -> None:
        super().__init__(message, command=command)
        self.length = length
        self.limit = limit


class CommandTooLongError(EncodeError):
    """A message's command does not fit the header's 12-byte command field."""
