"""The events a :class:`~trio_kaspa_peer._grpc.GrpcChannel` reports.

Every event is a :class:`~typing.NamedTuple` (cheap to build: one
:class:`MessageReceived` per message received).  Dispatch on ``type(event)``.

The four ending events each name one way the conversation can end:

* :class:`StreamEnded`: the remote ended its side of the stream politely
  (END_STREAM; a server's trailers with ``grpc-status``).
* :class:`StreamReset`: the remote reset the stream (RST_STREAM).
* :class:`ConnectionTerminated`: the remote sent GOAWAY.
* :class:`ConnectionClosed`: the byte stream ended (EOF).

Each has a ``reason`` property, a sentence for logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple

from h2.errors import ErrorCodes

if TYPE_CHECKING:
    from ._framing import Compressed

__all__ = [
    "GRPC_STATUS_NAMES",
    "CompressedMessageReceived",
    "ConnectionClosed",
    "ConnectionTerminated",
    "Event",
    "HeadersReceived",
    "MessageReceived",
    "StreamEnded",
    "StreamReset",
    "grpc_status_name",
    "http2_error_name",
]

#: The gRPC status codes by number (the gRPC spec's ``statuscodes.md``).
GRPC_STATUS_NAMES: Final[dict[int, str]] = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


def grpc_status_name(status: int) -> str:
    """``"UNIMPLEMENTED"`` for 12; ``"status 99"`` for a code the gRPC spec does not name."""
    return GRPC_STATUS_NAMES.get(status, f"status {status}")


def http2_error_name(code: int) -> str:
    """``"NO_ERROR"``, ``"REFUSED_STREAM"``, ...; ``"0x1f"`` for a code HTTP/2 does not name."""
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"{code:#x}"


class HeadersReceived(NamedTuple):
    """The stream is open: the remote's initial HEADERS arrived and were accepted.

    On a server these are the client's request headers (the response HEADERS
    are already queued); on a client, the server's response headers.  Names
    and values are the bytes decoded as Latin-1.  ``remote_encoding`` is the
    remote's ``grpc-encoding`` (``None`` for identity or absent);
    ``send_encoding`` is what our messages will be compressed with (``"gzip"``
    or ``None``).
    """

    headers: tuple[tuple[str, str], ...]
    remote_encoding: str | None
    send_encoding: str | None


class MessageReceived(NamedTuple):
    """One whole gRPC message, decompressed when it was sent with flag 1.

    ``wire_size`` is its size on the wire: the 5-byte prefix plus the bytes
    as sent (compressed, for flag 1).  It is also the number of
    flow-controlled bytes the message occupied, which a channel created with
    ``auto_acknowledge=False`` wants back in
    :meth:`~trio_kaspa_peer._grpc.GrpcChannel.acknowledge`.
    """

    data: bytes | memoryview
    """The message; a large one put together from several reads is a read-only view of
    the reader's buffer rather than a copy (anything that takes bytes-like data, the
    protobuf runtime included, takes it)."""
    wire_size: int


class StreamEnded(NamedTuple):
    """The remote ended its side of the stream politely (END_STREAM).

    A client sees the server's trailers: ``grpc_status`` (0 is OK) and
    ``grpc_message``, or ``grpc_status`` ``None`` when the server ended the
    stream without a ``grpc-status`` (a broken server; grpc-go reports it as
    INTERNAL).  A server sees the client's half-close: ``grpc_status`` is
    ``None`` there, which is normal.  ``trailers`` are all the trailing
    headers (empty for a client's half-close).
    """

    grpc_status: int | None
    grpc_message: str
    trailers: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        """True when nothing went wrong: status 0, or a client's half-close (no status)."""
        return not self.grpc_status

    @property
    def reason(self) -> str:
        if self.grpc_status is None:
            if self.trailers:
                return "the remote ended the stream without a grpc-status"
            return "the remote ended its side of the stream (END_STREAM)"
        text = f"the remote ended the stream with grpc-status {self.grpc_status}"
        text += f" ({grpc_status_name(self.grpc_status)})"
        if self.grpc_message:
            text += f": {self.grpc_message}"
        return text


class StreamReset(NamedTuple):
    """The stream was reset: RST_STREAM with an HTTP/2 ``error_code``.

    ``remote`` is True when the remote sent it; False when h2 reset the
    stream itself because of a stream-level error of the remote's.
    """

    error_code: int
    remote: bool

    @property
    def reason(self) -> str:
        who = "the remote reset the stream" if self.remote else "the stream was reset"
        return f"{who} (RST_STREAM {http2_error_name(self.error_code)})"


class ConnectionTerminated(NamedTuple):
    """The remote sent GOAWAY.

    ``graceful`` is True for NO_ERROR with our stream still covered (a client's
    GOAWAY always covers the stream it opened itself; a server's covers it when
    ``last_stream_id`` reaches it): then the stream may still finish, and the
    channel keeps delivering what arrives for it.  Otherwise the stream is over.
    ``additional_data`` is the debug data (grpc-go: ``too_many_pings``,
    ``client transport shutdown``, ...).
    """

    error_code: int
    last_stream_id: int
    additional_data: bytes
    graceful: bool

    @property
    def reason(self) -> str:
        text = f"the remote sent GOAWAY ({http2_error_name(self.error_code)}"
        text += f", last stream {self.last_stream_id})"
        if self.additional_data:
            text += f": {self.additional_data.decode('utf-8', 'replace')}"
        return text


class ConnectionClosed(NamedTuple):
    """The byte stream ended (``receive_data(b"")``).

    ``clean`` is True when the remote had ended the stream or the connection
    first (END_STREAM, trailers, GOAWAY, or our own GOAWAY) and left nothing
    half received; ``partial_message`` tells whether the data stopped inside
    a gRPC message or an HTTP/2 frame (that part is lost).
    """

    clean: bool
    partial_message: bool

    @property
    def reason(self) -> str:
        if self.partial_message:
            return "the connection closed in the middle of a gRPC message"
        if self.clean:
            return "the connection closed after the stream ended"
        return "the connection closed while the stream was open"


class CompressedMessageReceived(NamedTuple):
    """One whole gRPC message left compressed: it inflates to more than the channel's
    ``inline_limit``.  ``data.inflate()`` gives the message (best called off the event
    loop); ``wire_size`` is as for :class:`MessageReceived`.
    """

    data: Compressed
    wire_size: int


#: Any of the events above.
Event = (
    HeadersReceived
    | MessageReceived
    | CompressedMessageReceived
    | StreamEnded
    | StreamReset
    | ConnectionTerminated
    | ConnectionClosed
)
