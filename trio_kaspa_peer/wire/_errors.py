"""The exception hierarchy of the wire codec.

Every error the codec raises for bad input is a :class:`ProtocolError`.  Each
subclass names one kind of failure, so callers can catch exactly what they
care about, and every instance carries the wire command when it is known.
:class:`KaspaPeerError` is the root of *all* the library's exceptions (the
peer layer's errors derive from it too); it lives here because the wire
package is the bottom layer and must not import anything above it.
"""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "CountOverLimitError",
    "EncodeError",
    "FieldTypeError",
    "FieldValueError",
    "IncompleteFrameError",
    "InvalidCommandError",
    "KaspaPeerError",
    "MalformedPayloadError",
    "NonCanonicalVarIntError",
    "PayloadTooLargeError",
    "ProtocolError",
    "TruncatedPayloadError",
    "UnknownCommandError",
    "WrongNetworkError",
]


class KaspaPeerError(Exception):
    """Root of every exception raised by trio-kaspa-peer."""


class ProtocolError(KaspaPeerError):
    """Bytes that are not a valid kaspa wire message, or a message that cannot be encoded.

    ``command`` is the wire command the failure concerns, or ``None`` when it
    is not known (for example when the header itself is bad).
    """

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command

    def __str__(self) -> str:
        text = super().__str__()
        if self.command is not None:
            return f"[{self.command}] {text}"
        return text


class IncompleteFrameError(ProtocolError):
    """The input ended before a whole frame (header and payload) was read."""


class WrongNetworkError(ProtocolError):
    """The frame's magic is not the one of the network we speak.

    ``magic`` is the 32-bit value found in the header.
    """

    def __init__(self, message: str, *, magic: int, command: str | None = None) -> None:
        super().__init__(message, command=command)
        self.magic = magic


class ChecksumError(ProtocolError):
    """The payload's double SHA-256 does not start with the header's checksum."""


class PayloadTooLargeError(ProtocolError):
    """A payload is larger than MaxMessagePayload or than its message type allows.

    ``length`` is the offending size and ``limit`` the maximum that applied.
    """

    def __init__(
        self, message: str, *, length: int, limit: int, command: str | None = None
    ) -> None:
        super().__init__(message, command=command)
        self.length = length
        self.limit = limit


class UnknownCommandError(ProtocolError):
    """The header names a command that no registered message type handles.

    Only :func:`~trio_kaspa_peer.wire.decode_frame` raises this; the streaming
    :class:`~trio_kaspa_peer.wire.FrameDecoder` reports unknown commands as a
    skippable :class:`~trio_kaspa_peer.wire.UnknownMessage` instead.
    """


class InvalidCommandError(UnknownCommandError):
    """The header's command field is not valid UTF-8 (or too long to encode)."""


class MalformedPayloadError(ProtocolError):
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


class FieldValueError(ProtocolError, ValueError):
    """A value given for a wire field cannot be represented (wrong size, out of range)."""


class FieldTypeError(FieldValueError, TypeError):
    """A value given for a wire field has the wrong type or shape (``None`` for bytes, say)."""


class EncodeError(FieldValueError):
    """A message holds values the wire format (or the reference) refuses to encode."""
