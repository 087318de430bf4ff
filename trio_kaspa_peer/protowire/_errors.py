"""The exception hierarchy of the protobuf codec.

As in :mod:`trio_kaspa_peer.wire`, errors are split as h11 splits them: bytes
or values the remote sent that are not acceptable raise a
``RemoteProtocolError`` subclass; values the caller
gave that cannot be encoded (or an argument that is not acceptable) raise a
``LocalProtocolError`` subclass.  Every instance
carries the payload name as ``command`` when it is known.
"""

from __future__ import annotations

from .._errors import KaspaPeerError, LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = [
    "EmptyPayloadError",
    "EncodeError",
    "EncodeTypeError",
    "FieldLengthError",
    "FieldRangeError",
    "FootprintError",
    "HashingError",
    "InvalidParentsError",
    "InvalidPayloadError",
    "KaspaPeerError",
    "LocalProtocolError",
    "MalformedMessageError",
    "MessageTooLargeError",
    "MissingFieldError",
    "PayloadTooNewError",
    "ProtocolError",
    "RemoteProtocolError",
    "RpcPayloadError",
    "TooManyItemsError",
    "UnknownPayloadError",
    "UnsupportedPayloadError",
    "UsageError",
    "ValidationError",
]


# -- decoding: the remote's bytes -------------------------------------------------------------


class MalformedMessageError(RemoteProtocolError):
    """The bytes are not a valid protobuf ``KaspadMessage`` (the protobuf runtime refused them)."""


class FootprintError(RemoteProtocolError):
    """The message would take too much memory parsed, for its size: it is made of many
    tiny sub-messages (an empty ``TransactionMessage`` is 2 bytes on the wire and about
    100 parsed).  Refused before parsing.

    ``size`` is the message's length and ``estimate`` what parsing it would take, as
    counted when the walk stopped (a lower bound of the whole).
    """

    def __init__(self, message: str, *, size: int, estimate: int, command: str | None = None):
        super().__init__(message, command=command)
        self.size = size
        self.estimate = estimate


class EmptyPayloadError(RemoteProtocolError):
    """The message parsed but no payload member is set (rusty-kaspa's "empty payload")."""


class UnknownPayloadError(EmptyPayloadError):
    """No payload member is set, but the message holds an unknown length-delimited field.

    ``number`` is that field's number: a member this schema does not know (a
    future payload, or the unused 62).
    """

    def __init__(self, message: str, *, number: int, command: str | None = None) -> None:
        super().__init__(message, command=command)
        self.number = number


class RpcPayloadError(UnknownPayloadError):
    """The payload is one of kaspad's RPC members (field numbers 1001 and up).

    kaspad's schema puts its RPC messages in the same ``KaspadMessage``; they
    are never valid on the P2P stream.
    """


class UnsupportedPayloadError(RemoteProtocolError):
    """The payload member appeared in a later protocol version than the negotiated one.

    ``since`` is the version that introduced it, ``protocol_version`` the one
    in force.
    """

    def __init__(
        self, message: str, *, since: int, protocol_version: int, command: str | None = None
    ) -> None:
        super().__init__(message, command=command)
        self.since = since
        self.protocol_version = protocol_version


# -- validation: the reference's conversion rules ------------------------------------------


class ValidationError(RemoteProtocolError, ValueError):
    """The payload parsed, but the reference's conversion rules refuse it.

    ``path`` locates the offending value inside the payload, for example
    ``"transactions[3].inputs[0].previous_outpoint.transaction_id"`` (empty
    when the payload itself is at fault).
    """

    def __init__(self, message: str, *, path: str = "", command: str | None = None) -> None:
        super().__init__(message, command=command)
        self.path = path


class MissingFieldError(ValidationError):
    """A sub-message the reference requires is absent."""


class FieldLengthError(ValidationError):
    """A bytes value has the wrong length (a 31-byte hash, a 15-byte Version id, a 5-byte ip)."""


class FieldRangeError(ValidationError):
    """A number is outside the range the reference accepts (a port above 65535, ...)."""


class TooManyItemsError(ValidationError):
    """A list holds more items than the reference accepts.

    ``count`` is the number found and ``limit`` the maximum.
    """

    def __init__(
        self,
        message: str,
        *,
        count: int,
        limit: int,
        path: str = "",
        command: str | None = None,
    ) -> None:
        super().__init__(message, path=path, command=command)
        self.count = count
        self.limit = limit


class InvalidParentsError(ValidationError):
    """Run-length compressed header parents (protocol 9 and up) break their rules."""


# -- encoding and arguments: the caller's values ---------------------------------------------


class EncodeError(LocalProtocolError, ValueError):
    """A value given to the encoder cannot be encoded (an id outside uint32, ...)."""


class MessageTooLargeError(EncodeError):
    """A message encodes to more bytes than the connection's maximum message size."""


class EncodeTypeError(EncodeError, TypeError):
    """The object given is not a P2P payload (or not the class its member name needs)."""


class PayloadTooNewError(EncodeError):
    """The payload member appeared in a later protocol version than the one given.

    ``since`` is the version that introduced it, ``protocol_version`` the one
    given.
    """

    def __init__(
        self, message: str, *, since: int, protocol_version: int, command: str | None = None
    ) -> None:
        super().__init__(message, command=command)
        self.since = since
        self.protocol_version = protocol_version


class InvalidPayloadError(EncodeError):
    """A payload to send breaks the reference's conversion rules: the remote would refuse
    it and disconnect (a 31-byte hash, a 5-byte ip, a port above 65535, ...).

    The :class:`ValidationError` that found it is the ``__cause__``; ``path``
    locates the offending value, as there.
    """

    def __init__(self, message: str, *, path: str = "", command: str | None = None) -> None:
        super().__init__(message, command=command)
        self.path = path


class UsageError(LocalProtocolError, TypeError, ValueError):
    """An argument is not acceptable: input that is not bytes, an unknown payload name,
    a protocol version that is not a positive integer."""


class HashingError(LocalProtocolError, ValueError):
    """A header or transaction cannot be hashed: a value the reference's conversion
    would have refused (a missing hash, a version above 65535).  Validate the
    payload first (:func:`~trio_kaspa_peer.protowire.validate`)."""
