"""One gRPC bidirectional stream on one HTTP/2 connection, sans-IO, over h2.

A kaspa peer connection is one TCP connection carrying one HTTP/2 stream that
is a bidirectional gRPC call of ``/protowire.P2P/MessageStream``.  The dialer
is the gRPC client, the listener the gRPC server; once the stream is open both
sides just exchange messages.  :class:`GrpcChannel` is that connection for
either role.  It moves opaque message bytes and knows nothing of kaspa.

Driving it (no sockets, no clock; bytes in, bytes and events out)::

    channel = GrpcChannel(client=True, authority="127.0.0.1:16611")
    channel.start()                       # preface, SETTINGS, request HEADERS
    seq = channel.send_message(b"...")    # queued; returns its sequence number
    await stream.send_all(channel.data_to_send())
    ...
    for event in channel.receive_data(await stream.receive_some()):
        ...                               # MessageReceived, StreamEnded, ...
    await stream.send_all(channel.data_to_send())   # after every receive_data too

* :meth:`GrpcChannel.receive_data` takes what the socket gave (``b""`` for EOF)
  and returns events (:mod:`._events`).  Call :meth:`GrpcChannel.data_to_send`
  after it: receiving queues frames of its own (SETTINGS and PING ACKs,
  WINDOW_UPDATEs, response headers) and may open the send window.
* :meth:`GrpcChannel.send_message` only queues.  :meth:`GrpcChannel.data_to_send`
  moves queued messages into DATA frames as far as the remote's flow-control
  window allows (at most ``limit`` bytes of message data per call), several
  small messages sharing one DATA frame, and returns the bytes to write.
  Loop on it until it returns ``b""``; an empty result with
  :attr:`GrpcChannel.pending_bytes` > 0 means the window is shut and the next
  ``receive_data`` may open it.
* **Send completion:** ``send_message`` returns the message's sequence number
  (1, 2, 3, ...).  The message has been handed to the byte stream, whole,
  once :attr:`GrpcChannel.messages_sent` reaches that number, which happens
  in the ``data_to_send()`` call that returned its last byte.  Messages still
  queued when the stream ends abnormally are dropped
  (:attr:`GrpcChannel.messages_dropped`); they will never be sent.
* **Flow control:** received DATA is acknowledged (WINDOW_UPDATE, stream and
  connection) as the message reader takes it in (``auto_acknowledge=True``).
  With ``auto_acknowledge=False`` the caller acknowledges messages as its
  application takes them, with :meth:`GrpcChannel.acknowledge`, so the remote
  can run ahead of the application by no more than our window; bytes of a
  message still arriving are acknowledged as soon as every earlier message was,
  so a message larger than the window cannot stall.  Our windows and maximum
  frame size are parameters (see :class:`GrpcChannel`).  We never send PING
  (grpc-go servers answer frequent PINGs with GOAWAY ``too_many_pings``); h2
  answers the remote's PINGs.
* **Leaving politely:** :meth:`GrpcChannel.close` ends our side after the
  queued messages (client: END_STREAM; server: trailers ``grpc-status: 0``),
  then sends GOAWAY(NO_ERROR).  Once our GOAWAY is out, whatever the remote
  still sends is ignored (grpc-go can send a PING after it).  The remote's
  END_STREAM or trailers, RST_STREAM, GOAWAY and EOF are events.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any, Final, Literal, NoReturn

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from hyperframe.frame import RstStreamFrame

from ._errors import (
    BadResponseError,
    ChannelArgumentError,
    ChannelStateError,
    CompressionNotNegotiatedError,
    GrpcRemoteError,
    Http2Error,
    InboundMessageTooLargeError,
    NotGrpcRequestError,
    OutboundMessageTooLargeError,
    StreamClosedError,
    StreamNotOpenError,
    TruncatedMessageError,
    UnimplementedPathError,
    UnsupportedEncodingError,
)
from ._events import (
    ConnectionClosed,
    ConnectionTerminated,
    Event,
    HeadersReceived,
    StreamEnded,
    StreamReset,
    http2_error_name,
)
from ._framing import (
    DEFAULT_COMPRESSION_LEVEL,
    DEFAULT_MAX_MESSAGE_SIZE,
    MessageReader,
    _check_max_message_size,
    _pack_prefix,
    encode_message,
)

__all__ = [
    "DEFAULT_CONNECTION_WINDOW_SIZE",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_STREAM_WINDOW_SIZE",
    "DEFAULT_WRITE_LIMIT",
    "MAX_HEADER_BLOCK",
    "MAX_REFUSED_STREAMS",
    "P2P_PATH",
    "GrpcChannel",
    "ReplyCompression",
    "decode_grpc_message",
    "encode_grpc_message",
]

#: The kaspa P2P service's one method.
P2P_PATH: Final = "/protowire.P2P/MessageStream"

#: Our stream window (SETTINGS_INITIAL_WINDOW_SIZE) unless told otherwise.  grpc-go
#: starts from HTTP/2's 65,535 (hyper, under rusty-kaspa, from 1 MiB or more); a larger
#: window lets large messages flow without waiting a round trip per 64 KiB.
DEFAULT_STREAM_WINDOW_SIZE: Final = 1 << 20
#: Our connection window unless told otherwise (raised from 65,535 by a
#: WINDOW_UPDATE on stream 0 right after our SETTINGS).
DEFAULT_CONNECTION_WINDOW_SIZE: Final = 1 << 20
#: More streams than this refused on one connection (a kaspa connection carries one; no
#: node's client opens another) end it with GOAWAY(ENHANCE_YOUR_CALM), as the "rapid
#: reset" attack (CVE-2023-44487) would otherwise cost our work without end: each stream
#: refused costs about 80 us of h2 (HPACK, its checks).  A rapid-reset connection costs
#: about 1.1 ms of CPU with 4 (a handshake 0.9 ms), 2.0 ms with 16, 8 ms with 100.
MAX_REFUSED_STREAMS: Final = 4

#: The largest header block (HEADERS or PUSH_PROMISE and their CONTINUATIONs) taken:
#: h2 refuses more than 64 CONTINUATION frames, but of our largest frame size each
#: (CVE-2024-27316); a larger one ends the connection with GOAWAY(ENHANCE_YOUR_CALM)
#: before it is buffered.  gRPC's headers take well under 1 KiB; h2's limit on the
#: decoded list is 64 KiB.
MAX_HEADER_BLOCK: Final = 128 * 1024

_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_HEADERS_PER_SLICE: Final = 2
"""With ``max_frames``, a slice ends after this many HEADERS frames (a gRPC call takes one
or two; each further stream costs about 80 us of h2), so that streams past
MAX_REFUSED_STREAMS end the connection before h2 has worked through many more."""

_PING_ACK_HEAD: Final = b"\x00\x00\x08\x06\x01\x00\x00\x00\x00"
_SETTINGS_ACK: Final = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
_ANSWERED_SETTINGS_MAX: Final = 16_384
"""The largest SETTINGS frame answered without h2 (every endpoint accepts frames this
large; a larger one goes to h2, which checks it against our frame size)."""

#: The largest DATA frame we accept (SETTINGS_MAX_FRAME_SIZE); HTTP/2's default.
DEFAULT_MAX_FRAME_SIZE: Final = 16_384
#: Bytes of message data one ``data_to_send()`` call moves into DATA frames at most.
DEFAULT_WRITE_LIMIT: Final = 256 * 1024

_HTTP2_DEFAULT_WINDOW: Final = 65_535
_MAX_WINDOW: Final = 2**31 - 1
_CLIENT_STREAM_ID: Final = 1
_GRPC_CONTENT_TYPE: Final = b"application/grpc"
_GZIP: Final = "gzip"

#: How a server chooses to compress its messages:
#: ``"mirror"`` -- with the client's own ``grpc-encoding`` when that is gzip (grpc-go);
#: ``"accept"`` -- when the client's ``grpc-accept-encoding`` lists gzip (tonic);
#: ``None`` -- never.
ReplyCompression = Literal["mirror", "accept"] | None

_UNSAFE_GRPC_MESSAGE_BYTES: Final = (
    frozenset(b"%") | frozenset(range(0x20)) | frozenset(range(0x7F, 0x100))
)


def encode_grpc_message(text: str) -> str:
    """``grpc-message`` as the gRPC spec writes it: UTF-8, with bytes outside
    printable ASCII and ``%`` percent-encoded."""
    raw = text.encode("utf-8")
    if not any(b in _UNSAFE_GRPC_MESSAGE_BYTES for b in raw):
        return text
    return "".join(f"%{b:02X}" if b in _UNSAFE_GRPC_MESSAGE_BYTES else chr(b) for b in raw)


def decode_grpc_message(value: str) -> str:
    """The text of a ``grpc-message`` header: percent-decoding, then UTF-8
    (invalid sequences replaced; a lone ``%`` kept as is, as grpc-go keeps it)."""
    if "%" not in value:
        return value
    raw = value.encode("latin-1")
    out = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == 0x25 and i + 2 < len(raw) and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


def _latin1(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers)


def _is_grpc_content_type(value: bytes | None) -> bool:
    # "application/grpc", "application/grpc+proto", "application/grpc;charset=..."
    if value is None:
        return False
    value = value.lower()
    return value == _GRPC_CONTENT_TYPE or (
        value.startswith(_GRPC_CONTENT_TYPE) and value[len(_GRPC_CONTENT_TYPE)] in b"+;"
    )


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _encoding_name(value: bytes | None) -> str | None:
    """A ``grpc-encoding`` value as a name; identity (or none) is ``None``."""
    if value is None:
        return None
    name = value.decode("latin-1").strip()
    return None if name in ("", "identity") else name


def _accept_list(value: bytes | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    return frozenset(part.strip() for part in value.decode("latin-1").split(","))


def _forgiving_transitions() -> dict[Any, Any]:
    closed = h2.connection.ConnectionState.CLOSED
    inputs = h2.connection.ConnectionInputs
    kept_out = (inputs.SEND_PING, inputs.SEND_PUSH_PROMISE, inputs.RECV_PUSH_PROMISE)
    table = dict(h2.connection.H2ConnectionStateMachine._transitions)
    for item in inputs:
        if item not in kept_out:
            table.setdefault((closed, item), (None, closed))
    return table


class _ForgivingStateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that a GOAWAY does not end all input.

    h2 moves to CLOSED on a GOAWAY and then rejects every frame -- including,
    in the same ``receive_data`` call, the ones a graceful GOAWAY still allows
    (the rest of our stream, a PING) -- throwing away the events already
    parsed.  Here CLOSED keeps accepting frames, and the sending the stream
    still needs (never PING or PUSH_PROMISE).  The channel itself stops
    feeding h2 once *our* GOAWAY is queued, and h2 raises for real protocol
    errors as before.
    """

    _transitions = _forgiving_transitions()


def _dispatch_table() -> dict[type, Callable[..., Any]]:
    """h2's own frame handlers, as functions of the class (taken from a connection's table
    of bound methods, whatever the h2 version)."""
    bound = h2.connection.H2Connection()._frame_dispatch_table
    return {kind: getattr(h2.connection.H2Connection, m.__name__) for kind, m in bound.items()}


class _Connection(h2.connection.H2Connection):
    """h2's connection, without the cost of its trace log on every frame received,
    and without the reference cycle of its frame handlers.

    h2 4.x formats ``repr(frame)`` for a trace message before handling each
    frame, whether or not anything logs it: for a 16 KiB DATA frame that
    repr hexlifies the payload, about 18 us, more than the rest of the frame's
    handling.  This is h2's ``_receive_frame`` (4.1 to 4.x) without that call.
    Its frame handlers are the class's functions rather than the bound methods h2
    keeps (each refers back to the connection): a closed connection is then freed
    at once, not left, some 56 objects of it, for the cyclic garbage collector.
    """

    _handlers: Final = _dispatch_table()

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        del self._frame_dispatch_table  # bound methods: a cycle through the connection

    def _receive_frame(self, frame: Any) -> list[Any]:
        events: list[Any]
        try:
            frames, events = self._handlers[frame.__class__](self, frame)
        except h2.exceptions.StreamClosedError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                reset = RstStreamFrame(e.stream_id)
                reset.error_code = e.error_code
                self._prepare_for_sending([reset])
                events = e._events
            else:
                raise
        except h2.exceptions.StreamIDTooLowError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                reset = RstStreamFrame(e.stream_id)
                reset.error_code = ErrorCodes.STREAM_CLOSED
                self._prepare_for_sending([reset])
                events = []
            elif self._stream_is_closed_by_end(e.stream_id):
                raise h2.exceptions.StreamClosedError(e.stream_id) from e
            else:
                raise
        else:
            self._prepare_for_sending(frames)
        return events


def _h2_holds_partial_frame(conn: h2.connection.H2Connection) -> bool:
    """Whether h2's input buffer holds the start of a frame (its attribute is private
    and was renamed from ``data`` to ``_data``: look for either)."""
    buffer = conn.incoming_buffer
    held = getattr(buffer, "_data", None)
    if held is None:
        held = getattr(buffer, "data", b"")
    return bool(held)


def _check_window(name: str, value: int, minimum: int) -> int:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not minimum <= value <= _MAX_WINDOW
    ):
        raise ChannelArgumentError(f"{name} must be an int from {minimum} to {_MAX_WINDOW}")
    return value


class GrpcChannel:
    """The HTTP/2 connection of one kaspa peer: one bidirectional gRPC stream, either role.

    :param client: True for the dialer (gRPC client), False for the listener.
    :param authority: client only, required: the ``:authority`` header, ``host:port``.
    :param path: the gRPC method; a server answers any other path with
        grpc-status 12 (UNIMPLEMENTED).  Default :data:`P2P_PATH`.
    :param max_message_size: largest message sent or received, before and
        after decompression; default 1 GiB as in both references.
    :param send_compression: client only: ``"gzip"`` to compress every
        message (and send ``grpc-encoding: gzip``), as both reference clients
        do; default ``None`` (identity).
    :param reply_compression: server only: ``"mirror"`` (default; grpc-go's
        rule: gzip when the client's ``grpc-encoding`` is gzip), ``"accept"``
        (tonic's rule: gzip when the client's ``grpc-accept-encoding`` lists
        it) or ``None`` (never).
    :param accept_gzip: client: list gzip in ``grpc-accept-encoding`` (default
        True; a tonic server then compresses its replies).  A server always
        accepts gzip messages and says so in its response headers.  Flag-1
        messages are decompressed whenever the remote announced gzip.
    :param compression_level: zlib level for the messages we compress (default 6).
    :param stream_window_size: our SETTINGS_INITIAL_WINDOW_SIZE (default 1 MiB;
        HTTP/2's own default is 65,535).
    :param connection_window_size: our connection window (default 1 MiB; at
        least 65,535, HTTP/2's starting value).
    :param max_frame_size: our SETTINGS_MAX_FRAME_SIZE, the largest DATA frame
        we accept (default 16,384; up to 16,777,215).  What we send is bounded
        by the remote's setting.
    :param auto_acknowledge: acknowledge received data as it is parsed
        (default); False: see :meth:`acknowledge`.
    :param inline_limit: inflate no more than this many bytes of a compressed
        message here; one that inflates to more is handed out as
        :class:`Compressed` (default ``None``: inflate everything here).
    """

    __slots__ = (
        "_accept_gzip",
        "_accepting",
        "_acked",
        "_answers",
        "_authority",
        "_auto_ack",
        "_client",
        "_closed_reason",
        "_compress",
        "_compression_level",
        "_conn_window",
        "_end_message",
        "_end_requested",
        "_end_status",
        "_ends",
        "_ends_first",
        "_eof",
        "_first_bytes",
        "_frame_head",
        "_frame_skip",
        "_goaway_requested",
        "_goaway_sent",
        "_h2",
        "_header_block",
        "_held",
        "_held_at",
        "_held_eof",
        "_last_settings",
        "_local_ended",
        "_max_message_size",
        "_messages_dropped",
        "_messages_queued",
        "_messages_sent",
        "_out",
        "_out_base",
        "_path",
        "_reader",
        "_received",
        "_released",
        "_remote_ended",
        "_remote_goaway",
        "_reply_compression",
        "_send_encoding",
        "_sent_end",
        "_started",
        "_stream_id",
        "_stream_open",
        "_stream_window",
        "_trailers",
        "refused_streams",
    )

    def __init__(
        self,
        client: bool,
        *,
        authority: str | None = None,
        path: str = P2P_PATH,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        send_compression: Literal["gzip"] | None = None,
        reply_compression: ReplyCompression = "mirror",
        accept_gzip: bool = True,
        compression_level: int = DEFAULT_COMPRESSION_LEVEL,
        stream_window_size: int = DEFAULT_STREAM_WINDOW_SIZE,
        connection_window_size: int = DEFAULT_CONNECTION_WINDOW_SIZE,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        auto_acknowledge: bool = True,
        inline_limit: int | None = None,
    ) -> None:
        self._client = bool(client)
        if self._client:
            if not isinstance(authority, str) or not authority:
                raise ChannelArgumentError("a client needs authority='host:port'")
            if reply_compression != "mirror":
                raise ChannelArgumentError("reply_compression is a server setting")
        else:
            if authority is not None:
                raise ChannelArgumentError("authority is a client setting")
            if send_compression is not None:
                raise ChannelArgumentError(
                    "send_compression is a client setting; a server uses reply_compression"
                )
        if send_compression not in (None, _GZIP):
            raise ChannelArgumentError(
                f"send_compression must be 'gzip' or None, got {send_compression!r}"
            )
        if reply_compression not in ("mirror", "accept", None):
            raise ChannelArgumentError(
                f"reply_compression must be 'mirror', 'accept' or None, got {reply_compression!r}"
            )
        if not isinstance(path, str) or not path.startswith("/"):
            raise ChannelArgumentError(f"path must be a str starting with '/', got {path!r}")
        if compression_level not in range(-1, 10):
            raise ChannelArgumentError("compression_level must be from -1 to 9")
        self._stream_window = _check_window("stream_window_size", stream_window_size, 1)
        self._conn_window = _check_window(
            "connection_window_size", connection_window_size, _HTTP2_DEFAULT_WINDOW
        )
        if (
            not isinstance(max_frame_size, int)
            or isinstance(max_frame_size, bool)
            or not 16_384 <= max_frame_size <= 16_777_215
        ):
            raise ChannelArgumentError("max_frame_size must be an int from 16384 to 16777215")
        self._authority = authority
        self._path = path
        self._max_message_size = _check_max_message_size(max_message_size)
        self._send_encoding: str | None = send_compression if self._client else None
        self._compress = self._send_encoding is not None
        self._reply_compression: ReplyCompression = reply_compression
        self._accept_gzip = bool(accept_gzip)
        self._compression_level = compression_level
        self._auto_ack = bool(auto_acknowledge)

        config = h2.config.H2Configuration(client_side=self._client, header_encoding=None)
        conn = _Connection(config)
        conn.state_machine = _ForgivingStateMachine()
        conn.local_settings = h2.settings.Settings(
            client=self._client,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: conn.DEFAULT_MAX_HEADER_LIST_SIZE,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self._stream_window,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: max_frame_size,
            },
        )
        # The SETTINGS frame carries these from the start; h2 takes its own
        # limits from local_settings only when a later change is acknowledged.
        conn.max_inbound_frame_size = max_frame_size
        self._h2 = conn

        self._reader = MessageReader(
            max_message_size=self._max_message_size, inline_limit=inline_limit
        )
        self._stream_id = _CLIENT_STREAM_ID if self._client else 0
        self._started = False
        self._stream_open = False
        self._local_ended = False
        self._remote_ended = False
        self._end_requested = False
        self._end_status = 0
        self._end_message = ""
        self._goaway_requested = False
        self._goaway_sent = False
        self._remote_goaway = False
        self._eof = False
        self._closed_reason: str | None = None
        self._trailers: list[tuple[bytes, bytes]] | None = None

        # The send queue: framed messages not yet handed to h2, back to back.
        # _ends[_ends_first:] are the queued messages' end offsets in the whole
        # outbound message byte stream; _out_base is that stream's offset of _out[0].
        self._out = bytearray()
        self._out_base = 0
        self._ends: list[int] = []
        self._ends_first = 0
        self._sent_end = 0  # where the last message wholly handed out ended
        self._accepting = False
        self._messages_queued = 0
        self._messages_sent = 0
        self._messages_dropped = 0

        self._received = 0  # flow-controlled message bytes received on our stream
        self._acked = 0  # ... of which acknowledged to h2
        self._released = 0  # ... of which the caller acknowledged (auto_acknowledge=False)
        self.refused_streams = 0
        # Frames h2 queued while receiving (PING and SETTINGS acknowledgements,
        # WINDOW_UPDATEs, RST_STREAMs), not yet handed out: what the remote is owed.
        self._answers = bytearray()
        # A client's first 9 bytes from the server, until they are checked.
        self._first_bytes: bytearray | None = bytearray() if self._client else None
        # The frame boundaries in what is received, followed ahead of h2 (_walk): bytes
        # to the next frame header (a server first skips the client's 24-byte preface),
        # a header begun in an earlier read, the header block in progress (-1: none).
        self._frame_skip = 0 if self._client else len(_PREFACE)
        self._frame_head = b""
        self._header_block = -1
        # PINGs, and SETTINGS that repeat the last ones h2 applied, are answered here
        # without h2 (about 1 us against its 8 and 14 us a frame); these are the last
        # settings h2 was handed (None: none known, as when a SETTINGS frame went to h2
        # unseen, split across reads).
        self._last_settings: bytes | None = None
        # Input held back by receive_data(max_frames=...), from _held_at; EOF after it.
        self._held = b""
        self._held_at = 0
        self._held_eof = False

    # -- introspection -------------------------------------------------------------------------

    @property
    def client(self) -> bool:
        return self._client

    @property
    def stream_open(self) -> bool:
        """True once messages can be queued (client: after ``start()``; server:
        after the request was accepted) and until our side ends or the stream dies."""
        return self._stream_open and self._closed_reason is None

    @property
    def send_encoding(self) -> str | None:
        """``"gzip"`` when our messages are compressed, else ``None`` (server: known
        once the request arrived)."""
        return self._send_encoding

    @property
    def pending_bytes(self) -> int:
        """Bytes of queued messages not yet handed out by ``data_to_send()``.

        This is what the channel buffers for sending: bound it by checking this
        before queuing more.
        """
        return len(self._out)

    @property
    def bytes_handed_out(self) -> int:
        """Bytes of queued messages handed out by ``data_to_send()`` so far (only
        grows): while it stands still with :attr:`pending_bytes` left, the remote's
        flow-control window holds our messages back."""
        return self._out_base

    @property
    def owed_bytes(self) -> int:
        """Bytes of frames queued in answer to what was received (PING and SETTINGS
        acknowledgements, WINDOW_UPDATEs, refusals) and not yet handed out by
        ``data_to_send()``.

        A remote that keeps asking (a PING flood, say) without reading makes
        this grow: bound it by not calling ``receive_data()`` while it is large.
        """
        return len(self._answers)

    @property
    def pending_messages(self) -> int:
        """Messages queued whose last byte has not been handed out yet."""
        return self._messages_queued - self._messages_sent - self._messages_dropped

    @property
    def messages_queued(self) -> int:
        """Messages accepted by ``send_message()`` so far (the last sequence number)."""
        return self._messages_queued

    @property
    def messages_sent(self) -> int:
        """Messages whose last byte has left through ``data_to_send()``.

        Messages leave in order, so message number ``n`` is sent once this is
        at least ``n``.
        """
        return self._messages_sent

    @property
    def messages_dropped(self) -> int:
        """Messages queued that will never be sent: the stream ended, was reset or
        the connection went away (or ``close(discard_queued=True)``) before them.
        They are the numbers after ``messages_sent``."""
        return self._messages_dropped

    @property
    def _mid_message(self) -> bool:
        """Part of a message is out and the rest is not."""
        return self._out_base > self._sent_end

    @property
    def send_window(self) -> int:
        """What the remote's flow control lets us send now (0 when the stream is gone)."""
        try:
            return self._h2.local_flow_control_window(self._stream_id)
        except h2.exceptions.H2Error:
            return 0

    @property
    def unacknowledged_bytes(self) -> int:
        """Received message bytes not yet acknowledged to the remote."""
        return self._received - self._acked

    @property
    def buffered_bytes(self) -> int:
        """Bytes of a partly received message held by the reader."""
        return self._reader.buffered

    @property
    def partial_input(self) -> bool:
        """Whether part of a frame or of a gRPC message has arrived but not all of it."""
        return self._reader.buffered > 0 or _h2_holds_partial_frame(self._h2)

    @property
    def pending_message_length(self) -> int:
        """The announced wire size of the partly received message, once its prefix
        arrived (0 otherwise): what the reader will hold before the message is whole."""
        return self._reader.pending_length

    @property
    def closed_reason(self) -> str | None:
        """Why the stream no longer takes messages (``None`` while it does)."""
        return self._closed_reason

    @property
    def goaway_sent(self) -> bool:
        """True once our GOAWAY has been handed out: the connection may be closed."""
        return self._goaway_sent

    @property
    def remote_ended(self) -> bool:
        """True once the remote ended its side (END_STREAM, trailers)."""
        return self._remote_ended

    # -- starting ------------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the connection's opening: the client preface and SETTINGS, our
        connection window, and (client) the request HEADERS on stream 1."""
        if self._started:
            raise ChannelStateError("start() was already called")
        self._started = True
        conn = self._h2
        conn.initiate_connection()
        if self._conn_window > _HTTP2_DEFAULT_WINDOW:
            conn.increment_flow_control_window(self._conn_window - _HTTP2_DEFAULT_WINDOW)
        if self._client:
            assert self._authority is not None
            headers = [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", self._path),
                (":authority", self._authority),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ]
            if self._send_encoding is not None:
                headers.append(("grpc-encoding", self._send_encoding))
            if self._accept_gzip:
                headers.append(("grpc-accept-encoding", _GZIP))
            conn.send_headers(self._stream_id, headers)
            self._stream_open = True
            self._update_accepting()

    # -- sending -------------------------------------------------------------------------------

    def send_message(
        self, data: bytes | bytearray | memoryview, *, compress: bool | None = None
    ) -> int:
        """Queue one message; return its sequence number (see :attr:`messages_sent`).

        ``compress`` overrides the stream's choice for this message: False sends
        it identity (always allowed); True needs a stream that announced gzip.
        Raises :class:`StreamNotOpenError` before the stream exists,
        :class:`StreamClosedError` after it stopped taking messages, and
        :class:`OutboundMessageTooLargeError` for a message over the maximum.
        """
        if not self._accepting:
            self._refuse_message()
        if type(data) is not bytes and not isinstance(data, (bytes, bytearray, memoryview)):
            raise ChannelArgumentError(f"a message is bytes, got {type(data).__name__}")
        out = self._out
        if compress is None:
            compress = self._compress
        elif compress and self._send_encoding is None:
            raise CompressionNotNegotiatedError(
                "cannot compress: the stream announced no grpc-encoding"
            )
        if compress:
            out += encode_message(
                data if type(data) is bytes else bytes(data),
                compress=True,
                max_message_size=self._max_message_size,
                compression_level=self._compression_level,
            )
        else:
            length = len(data)
            if length > self._max_message_size:
                raise OutboundMessageTooLargeError(
                    f"message of {length} bytes is larger than the maximum of "
                    f"{self._max_message_size} bytes",
                    length=length,
                    limit=self._max_message_size,
                )
            out += _pack_prefix(0, length)
            out += data
        self._ends.append(self._out_base + len(out))
        self._messages_queued += 1
        return self._messages_queued

    def _refuse_message(self) -> NoReturn:
        if not self._stream_open:
            raise StreamNotOpenError(
                "the stream is not open yet: "
                + ("call start() first" if self._client else "no request received yet")
            )
        reason = self._closed_reason or "our side of the stream was ended"
        raise StreamClosedError(f"the stream takes no more messages: {reason}", reason=reason)

    def _update_accepting(self) -> None:
        self._accepting = (
            self._stream_open and self._closed_reason is None and not self._end_requested
        )

    def data_to_send(self, limit: int = DEFAULT_WRITE_LIMIT) -> bytes:
        """The bytes to write to the connection now (``b""``: nothing for now).

        Moves up to ``limit`` bytes of queued messages into DATA frames, within
        the remote's flow-control window and frame size; then, when the queue
        is empty and it was asked for, ends our side of the stream and sends our
        GOAWAY.  Call it after ``start()``, ``send_message()``, ``close()`` and
        every ``receive_data()``, and keep calling while it returns bytes.
        """
        conn = self._h2
        if self._out and self._closed_reason is None:
            self._push(limit)
        if not self._out:
            if self._end_requested and not self._local_ended and self._closed_reason is None:
                self._send_end()
            if self._goaway_requested and not self._goaway_sent and not self._eof:
                conn.close_connection(ErrorCodes.NO_ERROR)
                self._goaway_sent = True
        answers = self._answers
        if answers:
            # They were queued first: they go first.
            data = bytes(answers) + conn.data_to_send()
            answers.clear()
            return data
        return conn.data_to_send()

    def _push(self, limit: int) -> None:
        conn = self._h2
        sid = self._stream_id
        out = self._out
        try:
            budget = min(conn.local_flow_control_window(sid), limit, len(out))
        except h2.exceptions.H2Error:  # pragma: no cover - the stream is gone; handled elsewhere
            return
        if budget <= 0:
            return
        frame_max = conn.max_outbound_frame_size
        send_data = conn.send_data
        pos = 0
        with memoryview(out) as view:
            while pos < budget:
                stop = min(pos + frame_max, budget)
                send_data(sid, view[pos:stop].tobytes())
                pos = stop
        del out[:pos]
        self._out_base += pos
        # Everything pushed leaves in this data_to_send() call: count the messages
        # whose last byte is now out.
        ends = self._ends
        first = self._ends_first
        done = bisect_right(ends, self._out_base, first)
        if done != first:
            self._messages_sent += done - first
            self._sent_end = ends[done - 1]
            if done > 1024 and done * 2 > len(ends):
                del ends[:done]
                done = 0
            self._ends_first = done

    def _send_end(self) -> None:
        conn = self._h2
        self._local_ended = True
        if self._client:
            conn.end_stream(self._stream_id)
            return
        trailers = [("grpc-status", str(self._end_status))]
        if self._end_message:
            trailers.append(("grpc-message", encode_grpc_message(self._end_message)))
        conn.send_headers(self._stream_id, trailers, end_stream=True)

    def end_stream(self, grpc_status: int = 0, grpc_message: str = "") -> None:
        """End our side of the stream once the queued messages are out.

        Client: END_STREAM.  Server: trailers with ``grpc_status`` (0, OK, by
        default) and ``grpc_message``.  No message can be queued after this.
        The remote may go on sending; see :meth:`close` to leave the connection.
        """
        if self._client and (grpc_status != 0 or grpc_message):
            raise ChannelArgumentError("only a server ends the stream with a grpc-status")
        if not isinstance(grpc_status, int) or not 0 <= grpc_status <= 0xFFFF_FFFF:
            raise ChannelArgumentError(
                f"grpc_status must be a non-negative int, got {grpc_status!r}"
            )
        if not self._stream_open:
            raise StreamNotOpenError("the stream is not open: there is nothing to end")
        if self._end_requested:
            return
        self._end_requested = True
        self._accepting = False
        self._end_status = grpc_status
        self._end_message = grpc_message

    def close(
        self, *, discard_queued: bool = False, grpc_status: int = 0, grpc_message: str = ""
    ) -> None:
        """Leave politely: end our side (as :meth:`end_stream`) after the queued
        messages, then GOAWAY(NO_ERROR).  ``data_to_send()`` hands both out.

        With ``discard_queued``, messages not yet handed out are dropped first
        (:attr:`messages_dropped`); if one was half sent, the stream is reset
        (RST_STREAM CANCEL) instead of ended, so the remote never sees a
        truncated message.  Calling it again does nothing.
        """
        if self._goaway_requested:
            return
        if self._stream_open and not self._end_requested and self._closed_reason is None:
            self.end_stream(grpc_status, grpc_message)
        self._goaway_requested = True
        if discard_queued and self._out:
            if self._mid_message and self._closed_reason is None:
                self._h2.reset_stream(self._stream_id, ErrorCodes.CANCEL)
                self._local_ended = True
            self._drop_queue("our close() discarded the queued messages")
        if not self._started or self._eof:
            self._goaway_sent = True  # no connection to say goodbye on

    def acknowledge(self, nbytes: int) -> None:
        """With ``auto_acknowledge=False``: the application took messages of
        ``nbytes`` wire bytes in all (the sum of their ``wire_size``).

        The remote's window reopens by what was taken, and, once every message
        delivered has been taken, by the bytes of the next message as they
        arrive.  Does nothing in ``auto_acknowledge`` mode.
        """
        if self._auto_ack:
            return
        if not isinstance(nbytes, int) or nbytes < 0:
            raise ChannelArgumentError(f"nbytes must be a non-negative int, got {nbytes!r}")
        delivered = self._reader.bytes_completed
        if self._released + nbytes > delivered:
            raise ChannelArgumentError(
                f"acknowledging {nbytes} bytes, but only {delivered - self._released} "
                "bytes of delivered messages are unacknowledged"
            )
        self._released += nbytes
        self._update_acks()

    def _update_acks(self) -> None:
        if self._auto_ack or self._released == self._reader.bytes_completed:
            target = self._received
        else:
            target = max(self._acked, self._released)
        increment = target - self._acked
        if increment > 0:
            self._acked = target
            if not self._goaway_sent and not self._eof:
                self._h2.acknowledge_received_data(increment, self._stream_id)

    # -- receiving -----------------------------------------------------------------------------

    def receive_data(self, data: bytes, max_frames: int = 0) -> list[Event]:
        """Process bytes from the connection; ``b""`` means the remote closed it (EOF).

        Returns the events, in order.  Raises a
        :class:`~trio_kaspa_peer._grpc.GrpcRemoteError` subclass when the remote
        broke gRPC or HTTP/2 (parting frames are then queued and the events
        already produced are on the error).  After our GOAWAY everything
        received is ignored.

        ``max_frames``: hand h2 at most this many frames (and a few HEADERS
        frames) now and hold the rest back (:attr:`input_held`) for
        :meth:`receive_held`, so that one call's work stays small whatever the
        frames (``0``: everything now).  Bytes given while input is held go
        after it.
        """
        if self._eof:
            raise ChannelStateError("receive_data() after EOF")
        if self._held:
            if data:
                self._held = self._held[self._held_at :] + data
                self._held_at = 0
            else:
                self._held_eof = True
            return []
        if not data:
            return self._on_eof()
        return self._receive(data, 0, max_frames)

    @property
    def input_held(self) -> bool:
        """Whether received bytes wait for :meth:`receive_held` (see ``max_frames``)."""
        return bool(self._held) or self._held_eof

    def receive_held(self, max_frames: int = 0) -> list[Event]:
        """Hand h2 the next part of the input held back, as :meth:`receive_data` does
        (then the end of the stream, if it came after it)."""
        data, at = self._held, self._held_at
        self._held, self._held_at = b"", 0
        events = self._receive(data, at, max_frames) if at < len(data) else []
        if self._held_eof and not self._held:
            self._held_eof = False
            if not self._eof:
                events += self._on_eof()
        return events

    def _walk(self, data: bytes, start: int, max_frames: int) -> tuple[int, list[int] | None]:
        """Follow the frames in ``data`` from ``start``; where to stop handing them over,
        and where the PING and SETTINGS frames that lie whole in ``data`` begin (``None``:
        there are none), which :meth:`_receive_around` may answer without h2 (``~begin``
        for a SETTINGS frame that must go to h2 unseen: split across reads, too large, or
        on a stream).

        Stops after ``max_frames`` whole frames (``0``: never) or after the
        ``_HEADERS_PER_SLICE``-th HEADERS frame, or before a frame that would
        take the header block in progress past
        :data:`MAX_HEADER_BLOCK` (then :attr:`_header_block` says so).  h2 would
        buffer up to 64 CONTINUATION frames of our largest frame size, 1 MiB,
        before refusing; this refuses at 128 KiB of header block.
        """
        pos, end = start, len(data)
        skip, head, block = self._frame_skip, self._frame_head, self._header_block
        frames = headers = 0
        own: list[int] | None = None
        while pos < end:
            if skip:
                step = min(skip, end - pos)
                pos += step
                skip -= step
                if skip == 0 and max_frames:
                    frames += 1
                    if frames >= max_frames:
                        break
                continue
            begin = pos
            take = 9 - len(head)
            head += data[pos : pos + take]
            pos += take
            if len(head) < 9:
                break  # the header goes on in the next read
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            if (kind == 0x6 or kind == 0x4) and not flags & 0x1:  # PING or SETTINGS, no ACK
                if (
                    take == 9
                    and block < 0
                    and pos + length <= end
                    and not (head[5] & 0x7F or head[6] or head[7] or head[8])  # stream 0
                    and (length == 8 if kind == 0x6 else length <= _ANSWERED_SETTINGS_MAX)
                ):
                    if own is None:
                        own = []
                    own.append(begin)
                elif kind == 0x4:
                    # A SETTINGS frame h2 takes unseen: from it on, what h2 holds is unknown.
                    if own is None:
                        own = []
                    own.append(~begin)
            head = b""
            if kind == 0x1 and max_frames:
                # HEADERS cost HPACK work (about 80 us a stream refused): a slice ends
                # after two, so that a flood of new streams is judged (and refused,
                # past MAX_REFUSED_STREAMS) before h2 has worked through many of them.
                headers += 1
                if headers >= _HEADERS_PER_SLICE:
                    frames = max(frames, max_frames - 1)
            if kind == 0x1 or kind == 0x5 or (kind == 0x9 and block >= 0):
                # HEADERS or PUSH_PROMISE begin a header block, CONTINUATIONs add to it.
                block = (block if kind == 0x9 else 0) + length
                if block > MAX_HEADER_BLOCK:
                    self._header_block = block
                    self._frame_skip, self._frame_head = 0, b""
                    return begin, own
                if flags & 0x4:  # END_HEADERS
                    block = -1
            skip = length
            if skip == 0 and max_frames:
                frames += 1
                if frames >= max_frames:
                    break
        self._frame_skip, self._frame_head, self._header_block = skip, head, block
        return pos, own

    def _receive(self, whole: bytes, start: int, max_frames: int) -> list[Event]:
        if self._goaway_sent:
            return []
        if not self._started:
            raise ChannelStateError("call start() before receive_data()")
        stop, own = self._walk(whole, start, max_frames)
        too_large = self._header_block > MAX_HEADER_BLOCK
        if stop < len(whole) and not too_large:
            self._held, self._held_at = whole, stop
        events: list[Event] = []
        if own is not None:
            events = self._receive_around(whole, start, stop, own)
        elif stop > start:
            data = whole if start == 0 and stop == len(whole) else whole[start:stop]
            events = self._receive_frames(data)
        if too_large:
            self._h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
            self._answers += self._h2.data_to_send()
            self._fail("a header block too large", send_goaway=False)
            exc = Http2Error(
                f"the remote sent a header block of more than {MAX_HEADER_BLOCK} bytes",
                error_code=int(ErrorCodes.ENHANCE_YOUR_CALM),
            )
            exc.events = events
            raise exc
        return events

    def _receive_around(self, whole: bytes, start: int, stop: int, own: list[int]) -> list[Event]:
        """Hand h2 ``whole[start:stop]``, except the PINGs, and the SETTINGS frames that
        repeat the last ones h2 applied (changing nothing), among the frames beginning at
        ``own``: those are acknowledged here, each once h2 has taken every frame before it,
        its answer after theirs.  Not before a client has checked the server's first frame,
        nor once the connection is closed."""
        events: list[Event] = []
        at = start
        try:
            for begin in own:
                if begin < 0:
                    self._last_settings = None  # judged before any later frame
                    continue
                if begin >= stop:
                    break
                end = begin + 9 + int.from_bytes(whole[begin : begin + 3], "big")
                ping = whole[begin + 3] == 0x6
                if not ping:
                    payload = whole[begin + 9 : end]
                    if payload != self._last_settings:
                        self._last_settings = payload  # h2 applies these (or fails)
                        continue
                if begin > at:
                    events += self._receive_frames(whole[at:begin])
                    at = begin
                if (
                    self._first_bytes is None
                    and self._h2.state_machine.state is not ConnectionState.CLOSED
                ):
                    self._answers += (
                        _PING_ACK_HEAD + whole[begin + 9 : end] if ping else _SETTINGS_ACK
                    )
                    at = end
            if stop > at:
                events += self._receive_frames(whole[at:stop])
        except GrpcRemoteError as exc:
            exc.events = [*events, *exc.events]
            raise
        return events

    def _receive_frames(self, data: bytes) -> list[Event]:
        if self._first_bytes is not None:
            self._check_server_preface(data)
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.H2Error as exc:
            code = getattr(exc, "error_code", None) or ErrorCodes.PROTOCOL_ERROR
            # h2 queues its own GOAWAY for errors in frames, but not for a bad preface.
            conn = self._h2
            if conn.state_machine.state is not h2.connection.ConnectionState.CLOSED:
                conn.close_connection(code)
            self._fail(f"HTTP/2 protocol error: {exc}", send_goaway=False)
            raise Http2Error(f"the remote broke HTTP/2: {exc}", error_code=int(code)) from exc
        events: list[Event] = []
        try:
            self._handle(h2_events, events)
        except GrpcRemoteError as exc:
            exc.events = events
            raise
        finally:
            # What h2 queued in answer is counted (owed_bytes) until handed out.
            self._answers += self._h2.data_to_send()
        return events

    def _check_server_preface(self, data: bytes) -> None:
        """A client's first frame from the server must be SETTINGS (RFC 9113 3.4).

        h2 would take whatever a non-HTTP/2 server answers as the start of a
        huge frame and wait for the rest; this says at once what it is.
        """
        assert self._first_bytes is not None
        self._first_bytes += data[: 9 - len(self._first_bytes)]
        if len(self._first_bytes) < 9:
            return
        head, self._first_bytes = self._first_bytes, None
        if head[3] != 0x04:  # not a SETTINGS frame
            self._fail("the server did not start with HTTP/2 SETTINGS", send_goaway=False)
            raise Http2Error(
                f"the server does not speak HTTP/2: it began with {bytes(head[:9]).hex()}",
                error_code=int(ErrorCodes.PROTOCOL_ERROR),
            )

    def _handle(self, h2_events: list[h2.events.Event], events: list[Event]) -> None:
        sid = self._stream_id
        got_data = False
        for ev in h2_events:
            kind = type(ev)
            if kind is h2.events.DataReceived:
                assert isinstance(ev, h2.events.DataReceived)
                data = ev.data
                if ev.stream_id != sid or self._closed_reason is not None:
                    # A refused stream's data, or data after our stream died: only
                    # the connection window is owed.
                    self._h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    continue
                padding = ev.flow_controlled_length - len(data)
                if padding:
                    self._h2.acknowledge_received_data(padding, sid)
                self._received += len(data)
                got_data = True
                try:
                    events.extend(self._reader.feed(data))
                except GrpcRemoteError as exc:
                    self._fail_stream(exc)
                    raise
            elif kind is h2.events.RequestReceived:
                assert isinstance(ev, h2.events.RequestReceived)
                self._on_request(ev, events)
                sid = self._stream_id
            elif kind is h2.events.ResponseReceived:
                assert isinstance(ev, h2.events.ResponseReceived)
                self._on_response(ev, events)
            elif kind is h2.events.TrailersReceived:
                assert isinstance(ev, h2.events.TrailersReceived)
                if ev.stream_id == sid:
                    self._trailers = list(ev.headers)
            elif kind is h2.events.StreamEnded:
                assert isinstance(ev, h2.events.StreamEnded)
                if ev.stream_id == sid:
                    self._on_stream_ended(events)
            elif kind is h2.events.StreamReset:
                assert isinstance(ev, h2.events.StreamReset)
                if ev.stream_id == sid and self._stream_open:
                    remote = bool(ev.remote_reset)
                    code = int(ev.error_code)
                    self._remote_ended = True
                    self._local_ended = True
                    self._stream_gone(
                        f"the stream was reset (RST_STREAM {http2_error_name(code)})"
                    )
                    events.append(StreamReset(code, remote))
            elif kind is h2.events.ConnectionTerminated:
                assert isinstance(ev, h2.events.ConnectionTerminated)
                self._on_goaway(ev, events)
            # Everything else (SETTINGS and their ACKs, WINDOW_UPDATE, PING and
            # PING ACK, PRIORITY, unknown frames, 1xx) needs nothing from us:
            # h2 answers what must be answered.
        if got_data:
            self._update_acks()

    def _on_request(self, ev: h2.events.RequestReceived, events: list[Event]) -> None:
        conn = self._h2
        if self._stream_id or self._goaway_requested:
            # One stream per connection: refuse any other, politely (the remote may retry).
            self._quietly(conn.reset_stream, ev.stream_id, ErrorCodes.REFUSED_STREAM)
            self.refused_streams += 1
            if self.refused_streams > MAX_REFUSED_STREAMS:
                # Streams opened only to be refused (or reset at once, the "rapid reset"
                # attack): the remote wastes our work, as no gRPC client does.
                conn.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
                self._fail("too many streams refused", send_goaway=False)
                raise Http2Error(
                    f"the remote opened {self.refused_streams} more streams after ours; a "
                    "kaspa connection carries one",
                    error_code=int(ErrorCodes.ENHANCE_YOUR_CALM),
                )
            return
        sid = self._stream_id = ev.stream_id
        headers = list(ev.headers)
        method = _header(headers, b":method")
        if method != b"POST":
            self._quietly(conn.reset_stream, sid, ErrorCodes.PROTOCOL_ERROR)
            self._fail("the request was not a gRPC call")
            raise NotGrpcRequestError(
                f"request method is {method!r}, not POST: this is not a gRPC call"
            )
        content_type = _header(headers, b"content-type")
        if not _is_grpc_content_type(content_type):
            ctype = encode_grpc_message(repr(content_type))
            self._quietly(
                conn.send_headers,
                sid,
                [
                    (":status", "415"),
                    ("content-type", "application/grpc"),
                    ("grpc-status", "13"),
                    ("grpc-message", f"invalid gRPC request content-type {ctype}"),
                ],
                end_stream=True,
            )
            self._fail("the request was not a gRPC call")
            raise NotGrpcRequestError(
                f"request content-type is {content_type!r}, not application/grpc"
            )
        path = (_header(headers, b":path") or b"").decode("latin-1")
        if path != self._path:
            self._trailers_only(sid, 12, f"unknown method {path}")
            self._fail(f"the client called {path!r}")
            raise UnimplementedPathError(
                f"the client called {path!r}; this server serves only {self._path!r}", path=path
            )
        encoding = _encoding_name(_header(headers, b"grpc-encoding"))
        if encoding is not None and encoding != _GZIP:
            self._trailers_only(
                sid, 12, f'grpc: Decompressor is not installed for grpc-encoding "{encoding}"'
            )
            self._fail(f"the client compresses with {encoding!r}")
            raise UnsupportedEncodingError(
                f"the client's grpc-encoding is {encoding!r}; only gzip is supported",
                encoding=encoding,
            )
        self._reader.encoding = encoding
        policy = self._reply_compression
        if policy == "mirror":
            compress = encoding == _GZIP
        elif policy == "accept":
            compress = _GZIP in _accept_list(_header(headers, b"grpc-accept-encoding"))
        else:
            compress = False
        response = [(":status", "200"), ("content-type", "application/grpc")]
        if compress:
            response.append(("grpc-encoding", _GZIP))
            self._send_encoding = _GZIP
            self._compress = True
        response.append(("grpc-accept-encoding", _GZIP))
        self._quietly(conn.send_headers, sid, response)
        self._stream_open = True
        self._update_accepting()
        events.append(HeadersReceived(_latin1(headers), encoding, self._send_encoding))

    def _trailers_only(self, sid: int, status: int, message: str) -> None:
        self._quietly(
            self._h2.send_headers,
            sid,
            [
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", str(status)),
                ("grpc-message", encode_grpc_message(message)),
            ],
            end_stream=True,
        )

    def _on_response(self, ev: h2.events.ResponseReceived, events: list[Event]) -> None:
        if ev.stream_id != self._stream_id:  # pragma: no cover - h2 allows no other stream
            return
        headers = list(ev.headers)
        raw_status = _header(headers, b":status")
        try:
            http_status: int | None = int(raw_status) if raw_status is not None else None
        except ValueError:
            http_status = None
        grpc_status = _header(headers, b"grpc-status")
        if http_status != 200:
            detail = ""
            if grpc_status is not None:
                message = decode_grpc_message(
                    (_header(headers, b"grpc-message") or b"").decode("latin-1")
                )
                detail = f" (grpc-status {grpc_status.decode('latin-1')}: {message})"
            self._fail_stream_local()
            raise BadResponseError(
                f"the server answered HTTP status {raw_status!r}, not 200{detail}",
                http_status=http_status,
            )
        if ev.stream_ended is not None and grpc_status is not None:
            # Trailers-Only: the call ended before it began; StreamEnded follows.
            self._trailers = headers
            return
        content_type = _header(headers, b"content-type")
        if not _is_grpc_content_type(content_type):
            self._fail_stream_local()
            raise BadResponseError(
                f"the server's content-type is {content_type!r}, not application/grpc",
                http_status=http_status,
            )
        encoding = _encoding_name(_header(headers, b"grpc-encoding"))
        self._reader.encoding = encoding
        events.append(HeadersReceived(_latin1(headers), encoding, self._send_encoding))

    def _on_stream_ended(self, events: list[Event]) -> None:
        self._remote_ended = True
        if self._reader.buffered:
            exc = TruncatedMessageError(
                f"the remote ended the stream inside a gRPC message "
                f"({self._reader.buffered} bytes of it received)"
            )
            self._fail_stream(exc)
            raise exc
        trailers = self._trailers or []
        status: int | None = None
        message = ""
        if self._client:
            raw = _header(trailers, b"grpc-status")
            if raw is not None:
                try:
                    status = int(raw)
                except ValueError:
                    status = 2  # UNKNOWN, as grpc-go maps an unparsable status
            message = decode_grpc_message(
                (_header(trailers, b"grpc-message") or b"").decode("latin-1")
            )
            if not self._local_ended and self._closed_reason is None:
                # The call is over: release the stream as grpc-go does (unless the
                # server already reset it, in the same read as its trailers).
                try:
                    self._h2.reset_stream(self._stream_id, ErrorCodes.NO_ERROR)
                except h2.exceptions.StreamClosedError:
                    pass
                self._local_ended = True
            self._stream_gone("the server ended the call")
        events.append(StreamEnded(status, message, _latin1(trailers)))

    def _on_goaway(self, ev: h2.events.ConnectionTerminated, events: list[Event]) -> None:
        self._remote_goaway = True
        code = int(ev.error_code) if ev.error_code is not None else 0
        last = ev.last_stream_id or 0
        graceful = code == ErrorCodes.NO_ERROR and (not self._client or last >= self._stream_id)
        if not graceful and not (self._remote_ended and self._local_ended):
            self._stream_gone("the remote sent GOAWAY")
        events.append(ConnectionTerminated(code, last, ev.additional_data or b"", graceful))

    def _on_eof(self) -> list[Event]:
        self._eof = True
        # Part of a gRPC message in the reader, or part of a frame inside h2.
        partial = self._reader.buffered > 0 or _h2_holds_partial_frame(self._h2)
        clean = not partial and (self._remote_ended or self._remote_goaway or self._goaway_sent)
        self._stream_gone("the connection closed")
        return [ConnectionClosed(clean, partial)]

    # -- failure paths ---------------------------------------------------------------------------

    def _drop_queue(self, reason: str) -> None:
        if self._out:
            self._messages_dropped += len(self._ends) - self._ends_first
            self._out_base += len(self._out)
            self._out.clear()
            self._ends.clear()
            self._ends_first = 0
            self._sent_end = self._out_base

    def _stream_gone(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
            self._accepting = False
        self._drop_queue(reason)

    def _fail(self, reason: str, *, send_goaway: bool = True) -> None:
        """Stop everything: drop the queue, queue our GOAWAY, ignore what follows."""
        self._held, self._held_at, self._held_eof = b"", 0, False
        self._stream_gone(reason)
        self._goaway_requested = True
        if not self._goaway_sent:
            if send_goaway:
                self._h2.close_connection(ErrorCodes.NO_ERROR)
            self._goaway_sent = True

    @staticmethod
    def _quietly(send: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Send on a stream that a later frame of the same read may have closed already
        (an RST_STREAM right after the frame we answer): then nothing more can be said
        on it, and h2's StreamClosedError must not escape ``receive_data``."""
        try:
            send(*args, **kwargs)
        except h2.exceptions.StreamClosedError:
            pass

    def _fail_stream(self, exc: GrpcRemoteError) -> None:
        """The remote broke gRPC on our stream: say so on the stream, then leave."""
        conn = self._h2
        if self._closed_reason is None and self._stream_open:
            if self._client:
                self._quietly(conn.reset_stream, self._stream_id, ErrorCodes.CANCEL)
            elif not self._local_ended:
                status = 8 if isinstance(exc, InboundMessageTooLargeError) else 13
                if self._mid_message:
                    self._quietly(conn.reset_stream, self._stream_id, ErrorCodes.INTERNAL_ERROR)
                else:
                    trailers = [
                        ("grpc-status", str(status)),
                        ("grpc-message", encode_grpc_message(str(exc))),
                    ]
                    self._quietly(conn.send_headers, self._stream_id, trailers, end_stream=True)
            self._local_ended = True
        self._fail(str(exc))

    def _fail_stream_local(self) -> None:
        if self._closed_reason is None:
            self._quietly(self._h2.reset_stream, self._stream_id, ErrorCodes.CANCEL)
            self._local_ended = True
        self._fail("the server's response was not gRPC")
