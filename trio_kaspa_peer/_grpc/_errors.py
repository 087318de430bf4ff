"""The errors of the gRPC-over-HTTP/2 transport.

Split as the rest of the library splits them (see :mod:`trio_kaspa_peer._errors`):

* :class:`GrpcRemoteError` and below are :class:`RemoteProtocolError`: what the
  remote sent breaks gRPC or HTTP/2.  Raised by
  :meth:`GrpcChannel.receive_data <trio_kaspa_peer._grpc.GrpcChannel.receive_data>`
  and by :class:`~trio_kaspa_peer._grpc.MessageReader.feed`.  When the channel
  raises one, it has already queued its parting frames (trailers, RST_STREAM
  and/or GOAWAY): send ``data_to_send()`` and close the connection.  The events
  that the same ``receive_data`` call produced before the failure are in
  ``error.events``, in order.
* :class:`GrpcLocalError` and below are :class:`LocalProtocolError`: the caller
  used the channel wrongly (a message over the size limit, sending on an ended
  stream, a bad argument).  Nothing is queued and the channel is unchanged.

Each class names one failure.
"""

from __future__ import annotations

from typing import Any

from .._errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "BadResponseError",
    "ChannelArgumentError",
    "ChannelStateError",
    "CompressedWithoutEncodingError",
    "CompressionNotNegotiatedError",
    "DecompressionError",
    "GrpcLocalError",
    "GrpcRemoteError",
    "Http2Error",
    "InboundMessageTooLargeError",
    "InvalidMessageFlagError",
    "NotGrpcRequestError",
    "OutboundMessageTooLargeError",
    "StreamClosedError",
    "StreamNotOpenError",
    "TruncatedMessageError",
    "UnimplementedPathError",
    "UnsupportedEncodingError",
]


class GrpcRemoteError(RemoteProtocolError):
    """The remote broke gRPC or HTTP/2.

    ``events`` holds the events that the failing ``receive_data`` call had
    produced before the failure (messages received whole, for instance); it
    is empty when the framing reader is used on its own.
    """

    events: list[Any]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.events = []


# -- gRPC message framing ----------------------------------------------------------------------


class InvalidMessageFlagError(GrpcRemoteError):
    """A message prefix's compressed-flag byte is neither 0 (identity) nor 1 (compressed)."""

    def __init__(self, message: str, *, flag: int) -> None:
        super().__init__(message)
        self.flag = flag


class CompressedWithoutEncodingError(GrpcRemoteError):
    """A message has flag 1 (compressed) but the stream negotiated no ``grpc-encoding``."""


class UnsupportedEncodingError(GrpcRemoteError):
    """The remote uses a ``grpc-encoding`` this transport cannot decompress (only gzip is known).

    ``encoding`` is the name the remote gave.
    """

    def __init__(self, message: str, *, encoding: str) -> None:
        super().__init__(message)
        self.encoding = encoding


class InboundMessageTooLargeError(GrpcRemoteError):
    """A received message exceeds the maximum message size.

    Raised on the 5-byte prefix, before any of the message is buffered, or
    while decompressing, as soon as the output passes the limit (so a gzip
    bomb costs no more memory than the limit).  ``length`` is the size found
    (for decompression: the size reached when decoding stopped, ``limit + 1``
    at most) and ``limit`` the maximum; ``decompressed`` tells which case.
    """

    def __init__(self, message: str, *, length: int, limit: int, decompressed: bool) -> None:
        super().__init__(message)
        self.length = length
        self.limit = limit
        self.decompressed = decompressed


class DecompressionError(GrpcRemoteError):
    """A flag-1 message is not valid gzip: corrupt, truncated, or empty."""


class TruncatedMessageError(GrpcRemoteError):
    """The remote ended its stream (END_STREAM) in the middle of a gRPC message."""


# -- HTTP/2 and the gRPC call --------------------------------------------------------------------


class Http2Error(GrpcRemoteError):
    """The remote broke HTTP/2 (a bad preface or frame, a flow-control violation, ...).

    ``error_code`` is the HTTP/2 error code of the GOAWAY the channel queued in
    answer.  The h2 exception is the ``__cause__``.
    """

    def __init__(self, message: str, *, error_code: int) -> None:
        super().__init__(message)
        self.error_code = error_code


class NotGrpcRequestError(GrpcRemoteError):
    """The client's request is not a gRPC call (method not POST, content-type not gRPC).

    The server answered as grpc-go does (RST_STREAM PROTOCOL_ERROR for a wrong
    method, HTTP 415 for a wrong content-type) and queued a GOAWAY.
    """


class UnimplementedPathError(GrpcRemoteError):
    """The client called a ``:path`` this server does not serve.

    The server answered grpc-status 12 (UNIMPLEMENTED) in a Trailers-Only
    response and queued a GOAWAY.  ``path`` is the path the client asked for.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class BadResponseError(GrpcRemoteError):
    """The server's response headers are not a gRPC response (``:status`` not 200,
    content-type not gRPC).

    ``http_status`` is the ``:status`` received (``None`` when absent).
    """

    def __init__(self, message: str, *, http_status: int | None) -> None:
        super().__init__(message)
        self.http_status = http_status


# -- the caller's mistakes ------------------------------------------------------------------


class GrpcLocalError(LocalProtocolError):
    """The caller used the transport wrongly; nothing was sent or changed."""


class ChannelArgumentError(GrpcLocalError, ValueError):
    """An argument to the channel or the framing functions is not acceptable."""


class OutboundMessageTooLargeError(GrpcLocalError):
    """A message given to send is larger than the maximum message size.

    ``length`` is its size and ``limit`` the maximum.
    """

    def __init__(self, message: str, *, length: int, limit: int) -> None:
        super().__init__(message)
        self.length = length
        self.limit = limit


class CompressionNotNegotiatedError(GrpcLocalError):
    """A message was to be sent compressed, but the stream announced no ``grpc-encoding``."""


class ChannelStateError(GrpcLocalError):
    """The channel is not in a state that allows the call (``start()`` twice, data after EOF)."""


class StreamNotOpenError(ChannelStateError):
    """A message was given before the stream exists (``start()`` not called on a client,
    or no request received yet on a server)."""


class StreamClosedError(ChannelStateError):
    """The stream no longer accepts messages: our side was ended or the stream is gone.

    ``reason`` says what closed it (our ``end_stream()``/``close()``, the remote's
    trailers, RST_STREAM, GOAWAY, the connection's end, an error).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
