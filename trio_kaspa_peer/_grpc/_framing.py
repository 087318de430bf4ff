"""gRPC message framing: the 5-byte prefix, an incremental reader, and the encoder.

Every gRPC message on a stream is ``flag (u8) | length (u32 big-endian) |
bytes``.  Flag 0 means the bytes are the message as is (identity); flag 1
means they are compressed with the stream's ``grpc-encoding`` (only gzip is
supported, as by both kaspa references).  Any other flag is an error, and so is
flag 1 on a stream without an encoding.  HTTP/2 DATA frames do not line up
with messages: :class:`MessageReader` takes the stream's bytes in any chunking
and gives back whole messages.

Limits and what bounds each buffer:

* The maximum message size (default :data:`DEFAULT_MAX_MESSAGE_SIZE`, 1 GiB
  as in both references) is checked on the prefix, before a byte of the
  message is buffered.  The reader's buffer therefore never holds more than
  one partial message: at most ``5 + max_message_size`` bytes (plus the rest
  of the chunk being parsed).
* A compressed message is inflated with :func:`zlib.decompressobj` and a
  ``max_length`` of the remaining allowance, so the output is bounded by the
  same maximum: a gzip bomb fails as soon as it passes the limit, having cost
  at most ``max_message_size + 1`` bytes of output.  Concatenated gzip members
  are accepted, as Go's ``gzip.Reader`` accepts them, within the same bound.
* A reader given an ``inline_limit`` inflates no more than that many bytes
  itself: a message that inflates to more comes out as :class:`Compressed`,
  for its owner to inflate where a long computation does no harm (a worker
  thread).  A 32 KiB gzip member can hold 32 MiB of zeros, about a tenth of
  a second of inflating.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from typing import Final, NoReturn, cast

from ._errors import (
    ChannelArgumentError,
    CompressedWithoutEncodingError,
    DecompressionError,
    InboundMessageTooLargeError,
    InvalidMessageFlagError,
    OutboundMessageTooLargeError,
    UnsupportedEncodingError,
)
from ._events import CompressedMessageReceived, MessageReceived

__all__ = [
    "DEFAULT_COMPRESSION_LEVEL",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PREFIX_SIZE",
    "SUPPORTED_ENCODINGS",
    "Compressed",
    "MessageReader",
    "encode_message",
    "gzip_decompress",
]

#: Size of the gRPC message prefix: flag (1 byte) and length (4 bytes).
PREFIX_SIZE: Final = 5

#: Both kaspa references allow messages of 1 GiB, sent and received.
DEFAULT_MAX_MESSAGE_SIZE: Final = 1 << 30

#: The largest length the prefix can carry.
_MAX_PREFIX_LENGTH: Final = 0xFFFF_FFFF

#: The only ``grpc-encoding`` this transport compresses or decompresses.
SUPPORTED_ENCODINGS: Final = frozenset({"gzip"})

#: zlib's default level, which grpc-go's gzip compressor and tonic's use.
DEFAULT_COMPRESSION_LEVEL: Final = 6

_PREFIX: Final = struct.Struct(">BI")
_tuple_new = tuple.__new__
_pack_prefix = _PREFIX.pack
_unpack_prefix = _PREFIX.unpack_from
_GZIP_WBITS: Final = 31  # gzip header and trailer, 32 KiB window


def _check_max_message_size(max_message_size: int) -> int:
    if (
        not isinstance(max_message_size, int)
        or isinstance(max_message_size, bool)
        or not 0 <= max_message_size <= _MAX_PREFIX_LENGTH
    ):
        raise ChannelArgumentError(
            f"max_message_size must be an int from 0 to {_MAX_PREFIX_LENGTH}, "
            f"got {max_message_size!r}"
        )
    return max_message_size


def _check_inline_limit(inline_limit: int | None) -> int | None:
    if inline_limit is not None and (
        not isinstance(inline_limit, int) or isinstance(inline_limit, bool) or inline_limit < 0
    ):
        raise ChannelArgumentError(
            f"inline_limit must be None or an int >= 0, got {inline_limit!r}"
        )
    return inline_limit


def gzip_decompress(data: bytes, limit: int) -> bytes | memoryview:
    """Inflate the gzip ``data`` of one message, refusing output over ``limit`` bytes.

    Raises :class:`InboundMessageTooLargeError` as soon as the output passes
    ``limit`` (never holding more than ``limit + 1`` bytes of it), and
    :class:`DecompressionError` for data that is not gzip, is truncated, or is
    empty.  Output over a MiB is put together a MiB at a time, and comes as a
    read-only view of it: no step holds the interpreter's lock long (one call
    inflating 32 MiB held it 22 ms, joining its blocks).
    """
    out = _inflate(data, limit, limit)
    assert out is not None
    return out


_INFLATE_STEP: Final = 1 << 20
"""The most one call inflates."""
_INFLATE_INPUT: Final = 1 << 18
"""The most input one call takes: what zlib has not used it copies (its unconsumed tail),
so fed the whole of 32 MiB it copied nearly all of it on every call."""


def _inflate(data: bytes, limit: int, stop: int) -> bytes | memoryview | None:
    """:func:`gzip_decompress`, but ``None`` once the output passes ``stop`` (<= ``limit``)."""
    if not data:
        raise DecompressionError("compressed message is empty (no gzip header)")
    view = memoryview(data)
    first = b""
    whole: mmap.mmap | None = None  # past the first call's output: everything so far
    size = 0  # how much of ``whole`` is written
    start = 0  # where the gzip member being inflated began
    while True:  # one member a turn (a message may hold several)
        inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
        pos = start  # the input fed so far ends here
        tail = b""  # what the last call left of its input
        while True:
            if not tail:
                feed: bytes | memoryview = view[pos : pos + _INFLATE_INPUT]
                pos += len(feed)
            else:
                feed = tail
            total = len(first) if whole is None else size
            try:
                out = inflater.decompress(feed, min(stop - total + 1, _INFLATE_STEP))
            except zlib.error as exc:
                raise DecompressionError(f"compressed message is not valid gzip: {exc}") from exc
            if total + len(out) > stop:
                if stop < limit:
                    return None
                raise InboundMessageTooLargeError(
                    f"decompressed message is larger than the maximum of {limit} bytes",
                    length=total + len(out),
                    limit=limit,
                    decompressed=True,
                )
            if whole is None and not first:
                first = out
            elif out:
                if whole is None:
                    # An anonymous mapping of the most it can hold: its pages are
                    # taken as written (grown instead, a bytearray was copied at each
                    # reallocation, 16 ms at a time for 32 MiB).
                    whole = mmap.mmap(-1, min(stop + 1, len(data) * _MAX_DEFLATE_RATIO + 1024))
                    whole[: len(first)] = first
                    size = len(first)
                whole[size : size + len(out)] = out
                size += len(out)
            tail = inflater.unconsumed_tail
            if inflater.eof or (not out and not tail and pos >= len(view)):
                break  # the member's end, or the input's (truncated)
        if not inflater.eof:
            raise DecompressionError("compressed message is truncated (gzip stream unfinished)")
        start = pos - len(inflater.unused_data)  # what follows the member, fed already
        if start >= len(view):
            break
    return first if whole is None else memoryview(whole)[:size].toreadonly()


_MAX_DEFLATE_RATIO: Final = 1032
"""Deflate's best case: 258 bytes out of every 2 bits in (zlib's technical notes)."""

_VIEW_FROM: Final = 256 * 1024
"""A message this large that was put together in the reader's buffer is handed out as a
read-only view of it, not copied out (32 MiB take 16 ms to copy on a slow machine, all
that time on the event loop); the reader starts a new buffer with what follows it."""


class Compressed:
    """A gzip message its reader left compressed: it inflates to more than the reader's
    ``inline_limit``.  :meth:`inflate` does it (with the same errors as
    :func:`gzip_decompress`); it holds no state, so any thread may call it.
    """

    __slots__ = ("data", "limit")

    def __init__(self, data: bytes, limit: int) -> None:
        self.data: bytes = data
        """The message as received (gzip)."""
        self.limit: int = limit
        """The most bytes it may inflate to (the reader's ``max_message_size``)."""

    @property
    def bound(self) -> int:
        """The most bytes inflating it can take: deflate's best ratio, within ``limit``."""
        return min(self.limit, len(self.data) * _MAX_DEFLATE_RATIO + 1024)

    def inflate(self) -> bytes | memoryview:
        """The message, inflated (see :func:`gzip_decompress`)."""
        return gzip_decompress(self.data, self.limit)

    def __repr__(self) -> str:
        return f"<Compressed {len(self.data)} bytes, inflating to at most {self.bound}>"


def encode_message(
    data: bytes,
    *,
    compress: bool = False,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    compression_level: int = DEFAULT_COMPRESSION_LEVEL,
) -> bytes:
    """One gRPC message on the wire: the 5-byte prefix and ``data``, gzip-compressed
    with flag 1 when ``compress`` is true.

    Raises :class:`OutboundMessageTooLargeError` when ``data`` is over
    ``max_message_size`` (checked before compressing, as grpc-go checks).
    """
    length = len(data)
    if length > max_message_size:
        raise OutboundMessageTooLargeError(
            f"message of {length} bytes is larger than the maximum of {max_message_size} bytes",
            length=length,
            limit=max_message_size,
        )
    if compress:
        body = zlib.compress(data, compression_level, _GZIP_WBITS)
        if len(body) > _MAX_PREFIX_LENGTH:  # pragma: no cover - needs a 4 GiB message
            raise OutboundMessageTooLargeError(
                f"compressed message of {len(body)} bytes does not fit the gRPC prefix",
                length=len(body),
                limit=_MAX_PREFIX_LENGTH,
            )
        return _pack_prefix(1, len(body)) + body
    return _pack_prefix(0, length) + data


class MessageReader:
    """Reassembles gRPC messages from one direction of a stream's DATA.

    Feed it bytes in any chunking with :meth:`feed`; it returns the messages
    completed by that chunk as :class:`MessageReceived` values, in order
    (:class:`CompressedMessageReceived` for one left compressed).
    ``encoding`` is the stream's ``grpc-encoding`` (``None`` or
    ``"identity"``: a flag-1 message is an error); set it when the headers
    arrive, before feeding the first message.  With ``inline_limit``, a
    gzip message that inflates to more than that many bytes is handed out
    still compressed (a :class:`CompressedMessageReceived`).

    What it holds: at most one partial message, whose size the prefix has
    already checked against ``max_message_size``.  After an error the reader
    is broken: the stream cannot be resynchronised.
    """

    __slots__ = (
        "_buf",
        "_exported",
        "_fed",
        "_want",
        "encoding",
        "inline_limit",
        "max_message_size",
    )

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        encoding: str | None = None,
        inline_limit: int | None = None,
    ) -> None:
        self.max_message_size = _check_max_message_size(max_message_size)
        self.encoding = encoding
        self.inline_limit = _check_inline_limit(inline_limit)
        self._buf = bytearray()
        # Bytes the buffered partial message needs before it can be parsed further:
        # the prefix (5) until it is known, then prefix + length.
        self._want = PREFIX_SIZE
        self._fed = 0
        self._exported = False  # a message handed out is a view of _buf: _buf is theirs

    @property
    def buffered(self) -> int:
        """Bytes held for a message not yet complete (0 at a message boundary)."""
        return len(self._buf)

    @property
    def pending_length(self) -> int:
        """The announced size (prefix included) of the partial message held, once its
        prefix is in; 0 otherwise."""
        return self._want if self._buf and self._want > PREFIX_SIZE else 0

    @property
    def bytes_fed(self) -> int:
        """All bytes fed so far."""
        return self._fed

    @property
    def bytes_completed(self) -> int:
        """Bytes fed that belong to whole messages returned so far."""
        return self._fed - len(self._buf)

    def feed(self, data: bytes) -> list[MessageReceived | CompressedMessageReceived]:
        """Add ``data``; return the messages it completes.

        Raises a :class:`~trio_kaspa_peer._grpc.GrpcRemoteError` subclass for a
        bad flag, a flag-1 message without a usable encoding, a message over
        the limit, or bad gzip.
        """
        self._fed += len(data)
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._want:
                return []
            view = memoryview(buf)
            messages, pos = self._parse(view, len(buf))
            if self._exported:
                # A large message is a view of buf: buf stays as it is, theirs now.
                self._exported = False
                self._buf = buf[pos:]
            else:
                view.release()
                del buf[:pos]
            return messages
        messages, pos = self._parse(data, len(data))
        if pos < len(data):
            buf += data[pos:]
        return messages

    def _parse(
        self, src: bytes | memoryview, end: int
    ) -> tuple[list[MessageReceived | CompressedMessageReceived], int]:
        messages: list[MessageReceived | CompressedMessageReceived] = []
        append = messages.append
        limit = self.max_message_size
        view_from = _VIEW_FROM
        unpack = _unpack_prefix
        new = _tuple_new
        event = MessageReceived
        pos = 0
        while end - pos >= PREFIX_SIZE:
            flag, length = unpack(src, pos)
            if length > limit or flag > 1:
                self._refuse(flag, length)
            stop = pos + PREFIX_SIZE + length
            if stop > end:
                self._want = PREFIX_SIZE + length
                return messages, pos
            body = src[pos + PREFIX_SIZE : stop]
            payload: bytes | memoryview
            if type(body) is bytes:
                payload = body
            elif length < view_from or flag:
                payload = bytes(body)
            else:
                payload = cast(memoryview, body).toreadonly()
                self._exported = True
            if flag:
                assert isinstance(payload, bytes)
                inflated = self._decompress(payload)
                if isinstance(inflated, Compressed):
                    append(CompressedMessageReceived(inflated, PREFIX_SIZE + length))
                    pos = stop
                    continue
                payload = inflated
            append(new(event, (payload, PREFIX_SIZE + length)))
            pos = stop
        self._want = PREFIX_SIZE
        return messages, pos

    def _refuse(self, flag: int, length: int) -> NoReturn:
        if flag > 1:
            raise InvalidMessageFlagError(
                f"gRPC message flag is {flag}: only 0 (identity) and 1 (compressed) exist",
                flag=flag,
            )
        limit = self.max_message_size
        raise InboundMessageTooLargeError(
            f"gRPC message of {length} bytes is larger than the maximum of {limit} bytes",
            length=length,
            limit=limit,
            decompressed=False,
        )

    def _decompress(self, payload: bytes) -> bytes | memoryview | Compressed:
        encoding = self.encoding
        if encoding == "gzip":
            limit = self.max_message_size
            stop = self.inline_limit
            if stop is None or stop >= limit:
                return gzip_decompress(payload, limit)
            out = _inflate(payload, limit, stop)
            return Compressed(payload, limit) if out is None else out
        if encoding is None or encoding == "identity":
            raise CompressedWithoutEncodingError(
                "gRPC message has flag 1 (compressed) but the stream has no grpc-encoding"
            )
        raise UnsupportedEncodingError(
            f"gRPC message is compressed with {encoding!r}, which is not supported (only gzip is)",
            encoding=encoding,
        )
