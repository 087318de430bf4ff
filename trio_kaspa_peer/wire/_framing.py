"""Framing: the 24-byte header, whole-frame encode/decode, and the incremental decoder.

A frame is ``magic (u32 LE) | command (12 bytes, NUL-padded) | length (u32 LE)
| checksum (first 4 bytes of double SHA-256 of the payload) | payload``.

Header checks run in the reference's order: payload length against
MaxMessagePayload, then the magic, then the command (valid UTF-8, known),
then the length against the message type's own limit -- all before a single
payload byte is buffered.  When the magic or command is wrong (but the length
is within MaxMessagePayload), the payload is skipped, as the reference
discards it, so a stream stays in step after the error.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

from ._base import (
    COMMAND_SIZE,
    DEFAULT_REGISTRY,
    MESSAGE_HEADER_SIZE,
    PROTOCOL_VERSION,
    Message,
    MessageRegistry,
)
from ._errors import (
    ChecksumError,
    CommandTooLongError,
    FieldTypeError,
    IncompleteFrameError,
    InvalidCommandError,
    MessageTooLargeError,
    PayloadTooLargeError,
    ProtocolError,
    UnknownCommandError,
    WrongNetworkError,
)
from ._primitives import MAX_MESSAGE_PAYLOAD
from ._types import KaspaNet

__all__ = [
    "DeferredPayload",
    "Frame",
    "FrameDecoder",
    "RawMessage",
    "TrailingDataError",
    "UnknownMessage",
    "checksum",
    "decode_frame",
    "encode_frame",
]

_HEADER: Final = struct.Struct("<I12sI4s")
_sha256 = hashlib.sha256


class TrailingDataError(ProtocolError):
    """:func:`decode_frame` was given bytes beyond the end of the one frame."""


def checksum(payload: bytes | bytearray | memoryview) -> bytes:
    """The frame checksum: the first four bytes of double SHA-256 of ``payload``."""
    return _sha256(_sha256(payload).digest()).digest()[:4]


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A frame whose command no registered message type handles.

    The streaming decoder skips its payload without buffering it (and so
    without checking its checksum) and reports it as this value; what to do
    about it is the caller's choice.
    """

    command: str
    payload_length: int

    def summary(self) -> str:
        """A short description for the debug log."""
        return f"unknown command, {self.payload_length} bytes skipped"


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A checksum-verified frame whose payload was kept as bytes, not decoded.

    The :class:`FrameDecoder` yields these for the commands named in its
    ``raw_commands`` (typically ``{"block"}``), so large messages can be
    relayed or stored without the cost of decoding them.
    :meth:`~trio_kaspa_peer.wire.RawMessage.decode` gives the full message;
    :func:`encode_frame` re-frames the payload as is.
    """

    command: str
    payload: bytes

    def decode(
        self, pver: int = PROTOCOL_VERSION, registry: MessageRegistry = DEFAULT_REGISTRY
    ) -> Message:
        """The message the payload holds, decoded with ``registry``'s class for the command."""
        cls = registry.get(self.command)
        if cls is None:
            raise UnknownCommandError(f"unhandled command [{self.command}]", command=self.command)
        return cls.decode_payload(self.payload, pver)

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        return self.payload

    def summary(self) -> str:
        """A short description for the debug log."""
        return f"{len(self.payload)} bytes, not decoded"

    def __repr__(self) -> str:
        return f"RawMessage(command={self.command!r}, payload=<{len(self.payload)} bytes>)"


class DeferredPayload:
    """A large frame received whole but not yet checked or decoded (``defer_size``).

    :meth:`decode` verifies the checksum and decodes the payload: the work
    of a large message, meant to run off the event loop (a worker thread:
    it touches nothing but this object, and hashing releases the GIL).  It
    returns what :meth:`FrameDecoder.next_frame` would have: the message, or
    a :class:`RawMessage` for a raw command; bad bytes raise the same
    :class:`~trio_kaspa_peer.wire.RemoteProtocolError` as they would have.
    """

    __slots__ = ("_check", "_cls", "_pver", "_raw", "command", "payload")

    def __init__(
        self,
        command: str,
        cls: type[Message],
        payload: bytes,
        check: bytes,
        raw: bool,
        pver: int,
    ) -> None:
        self.command: str = command
        self.payload: bytes = payload
        self._cls = cls
        self._check = check
        self._raw = raw
        self._pver = pver

    def decode(self) -> Message | RawMessage:
        """Check and decode the payload."""
        payload = self.payload
        _verify(_Header(self.command, len(payload), self._check, self._cls), payload)
        if self._raw:
            return RawMessage(self.command, payload)
        return self._cls.decode_payload(payload, self._pver)

    def summary(self) -> str:
        """A short description for the debug log."""
        return f"{len(self.payload)} bytes, not yet decoded"

    def __repr__(self) -> str:
        return f"DeferredPayload(command={self.command!r}, <{len(self.payload)} bytes>)"


class Frame(NamedTuple):
    """One decoded frame: the message and the frame's size on the wire (header included)."""

    message: Message | RawMessage | UnknownMessage | DeferredPayload
    wire_size: int


_tuple_new = tuple.__new__
_command_fields: dict[str, bytes] = {}


def _command_field(command: str) -> bytes:
    field = _command_fields.get(command)
    if field is None:
        raw = command.encode("utf-8")
        if len(raw) > COMMAND_SIZE:
            raise CommandTooLongError(
                f"command [{command}] is too long [max {COMMAND_SIZE}]", command=command
            )
        field = raw.ljust(COMMAND_SIZE, b"\x00")
        if len(_command_fields) < 1024:
            _command_fields[command] = field
    return field


def _not_a_message(value: object) -> str:
    """Why ``value`` cannot be framed, naming the modern protocol's messages as such."""
    hint = ""
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "SerializeToString"):
        hint = (
            " (a protobuf message, the modern protocol's: this is protocol 1's codec, "
            "whose messages are trio_kaspa_peer.wire's)"
        )
    return f"a Message or RawMessage is needed, got {type(value).__name__}{hint}"


def encode_frame(
    msg: Message | RawMessage, net: KaspaNet | int, pver: int = PROTOCOL_VERSION
) -> bytes:
    """The whole frame (header and payload) for ``msg`` on network ``net``.

    Raises :class:`~trio_kaspa_peer.wire.EncodeError` for values the wire
    cannot carry and :class:`MessageTooLargeError` when the payload exceeds
    MaxMessagePayload or the message type's own limit.
    """
    if not isinstance(msg, (Message, RawMessage)):
        raise FieldTypeError(_not_a_message(msg))
    command = msg.command
    field = _command_field(command)
    payload = msg.encode_payload(pver)
    length = len(payload)
    if length > MAX_MESSAGE_PAYLOAD:
        raise MessageTooLargeError(
            f"message payload is too large - encoded {length} bytes, but maximum "
            f"message payload is {MAX_MESSAGE_PAYLOAD} bytes",
            length=length,
            limit=MAX_MESSAGE_PAYLOAD,
            command=command,
        )
    if not isinstance(msg, RawMessage):
        limit = msg.max_payload_length(pver)
        if length > limit:
            raise MessageTooLargeError(
                f"message payload is too large - encoded {length} bytes, but maximum "
                f"message payload size for messages of type [{command}] is {limit}.",
                length=length,
                limit=limit,
                command=command,
            )
    digest = _sha256(_sha256(payload).digest()).digest()
    return _HEADER.pack(net, field, length, digest[:4]) + payload


class _Header(NamedTuple):
    command: str
    length: int
    checksum: bytes
    cls: type[Message] | None


def _check_header(
    header: bytes | bytearray,
    offset: int,
    net: int,
    registry: MessageRegistry,
    pver: int,
) -> _Header:
    """Validate a header as the reference does; return what follows from it.

    Raises with the payload length recorded in ``skip`` (an attribute on the
    error) when the payload must be discarded to stay in step.
    """
    magic, raw_command, length, check = _HEADER.unpack_from(header, offset)
    if length > MAX_MESSAGE_PAYLOAD:
        raise PayloadTooLargeError(
            f"message payload is too large - header indicates {length} bytes, but max "
            f"message payload is {MAX_MESSAGE_PAYLOAD} bytes.",
            length=length,
            limit=MAX_MESSAGE_PAYLOAD,
        )
    raw_command = raw_command.rstrip(b"\x00")
    if magic != net:
        try:
            named: str | None = raw_command.decode("utf-8")
        except UnicodeDecodeError:
            named = None
        err: ProtocolError = WrongNetworkError(
            f"message from other network [{KaspaNet.describe(magic)}]", magic=magic, command=named
        )
        err.skip = length  # type: ignore[attr-defined]
        raise err
    try:
        command = raw_command.decode("utf-8")
    except UnicodeDecodeError:
        # Go prints a []byte with %d as "[255 254 120]".
        err = InvalidCommandError(f"invalid command [{' '.join(map(str, raw_command))}]")
        err.skip = length  # type: ignore[attr-defined]
        raise err from None
    cls = registry.get(command)
    if cls is not None:
        limit = cls.max_payload_length(pver)
        if length > limit:
            err = PayloadTooLargeError(
                f"payload exceeds max length - header indicates {length} bytes, but max "
                f"payload size for messages of type [{command}] is {limit}.",
                length=length,
                limit=limit,
                command=command,
            )
            err.skip = length  # type: ignore[attr-defined]
            raise err
    return _Header(command, length, check, cls)


def _verify(header: _Header, payload: bytes) -> None:
    actual = _sha256(_sha256(payload).digest()).digest()[:4]
    if actual != header.checksum:
        raise ChecksumError(
            f"payload checksum failed - header indicates {header.checksum.hex()}, but actual "
            f"checksum is {actual.hex()}.",
            command=header.command,
        )


def decode_frame(
    data: bytes | bytearray | memoryview,
    net: KaspaNet | int,
    pver: int = PROTOCOL_VERSION,
    *,
    registry: MessageRegistry = DEFAULT_REGISTRY,
) -> Message:
    """Decode exactly one whole frame.

    Raises :class:`IncompleteFrameError` if ``data`` ends early,
    :class:`UnknownCommandError` for a command no message type handles,
    :class:`TrailingDataError` if bytes follow the frame, and the other
    :class:`ProtocolError` subclasses for everything the reference refuses.
    """
    data = bytes(data)
    if len(data) < MESSAGE_HEADER_SIZE:
        what = "EOF" if not data else "unexpected EOF"
        raise IncompleteFrameError(f"frame header incomplete: {what}")
    header = _check_header(data, 0, net, registry, pver)
    end = MESSAGE_HEADER_SIZE + header.length
    if header.cls is None:
        raise UnknownCommandError(f"unhandled command [{header.command}]", command=header.command)
    if len(data) < end:
        raise IncompleteFrameError(
            "payload incomplete: unexpected EOF"
            if len(data) > MESSAGE_HEADER_SIZE
            else "payload incomplete: EOF",
            command=header.command,
        )
    payload = data[MESSAGE_HEADER_SIZE:end]
    _verify(header, payload)
    msg = header.cls.decode_payload(payload, pver)
    if len(data) > end:
        raise TrailingDataError(
            f"{len(data) - end} bytes follow the frame", command=header.command
        )
    return msg


class FrameDecoder:
    """Sans-IO incremental frame decoder.

    Feed it bytes in any chunking with :meth:`feed`; take whole frames with
    :meth:`next_frame` (``None`` means "feed me more") or by iterating over
    it.  What it buffers is bounded by the frame in progress: a header (24
    bytes) plus a payload that already passed its type's length limit;
    unknown commands' payloads are skipped as they arrive, never buffered.

    After a :class:`ProtocolError` the decoder skips the bad frame and stays
    usable, except after a header announcing more than MaxMessagePayload,
    which leaves the stream with no trustworthy frame boundary: every later
    call raises that error again.

    ``raw_commands`` names commands whose payload is checksum-verified but
    not decoded: they come out as :class:`RawMessage` (lazy decoding).

    ``defer_size`` (bytes; ``None``: never) is for large frames: a known
    command whose payload is at least that long is written into a buffer of
    its own as it is fed (one copy of each chunk, none at the end: no copy
    of the whole payload holds the GIL) and comes out as a
    :class:`DeferredPayload` whose :meth:`~DeferredPayload.decode` does the
    checksum and the decoding, where the caller chooses (off the event loop).
    :attr:`pending_length` tells, as soon as the header is read, how large the
    frame in progress will be.
    """

    __slots__ = (
        "_buf",
        "_defer_size",
        "_deferred",
        "_failed",
        "_header",
        "_known",
        "_need",
        "_net",
        "_pos",
        "_pver",
        "_raw_commands",
        "_registry",
        "_sink",
        "_skip",
    )

    def __init__(
        self,
        net: KaspaNet | int,
        pver: int = PROTOCOL_VERSION,
        *,
        registry: MessageRegistry = DEFAULT_REGISTRY,
        raw_commands: frozenset[str] | set[str] | tuple[str, ...] = (),
        defer_size: int | None = None,
    ) -> None:
        self._net = int(net)
        self._defer_size = MAX_MESSAGE_PAYLOAD + 1 if defer_size is None else defer_size
        self._deferred: _Header | None = None
        self._sink: io.BytesIO | None = None
        self._need = 0
        self._pver = pver
        self._registry = registry
        self._raw_commands = frozenset(raw_commands)
        self._buf = bytearray()
        self._pos = 0
        self._header: _Header | None = None
        self._skip = 0
        self._failed: ProtocolError | None = None
        # Raw 12-byte command field -> (command, class, fast-path payload limit, decoded
        # here?), for known commands.
        self._known: dict[bytes, tuple[str, type[Message], int, bool]] = {}

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames (what an EOF now would cut off)."""
        held = len(self._buf) - self._pos + (MESSAGE_HEADER_SIZE if self._header else 0)
        if self._deferred is not None:
            held += MESSAGE_HEADER_SIZE + self._deferred.length - self._need
        return held

    @property
    def in_frame(self) -> bool:
        """True when the bytes seen so far stop in the middle of a frame."""
        return (
            self._header is not None
            or self._skip > 0
            or len(self._buf) > self._pos
            or self._deferred is not None
        )

    @property
    def pending_length(self) -> int:
        """The payload length of the frame in progress once its header is read (else 0)."""
        if self._deferred is not None:
            return self._deferred.length
        header = self._header
        return header.length if header is not None else 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes."""
        need = self._need
        if need:
            # A deferred frame's payload goes to its own buffer.
            sink = self._sink
            assert sink is not None
            n = len(data)
            if n <= need:
                sink.write(data)
                self._need = need - n
                return
            view = memoryview(data)
            sink.write(view[:need])
            self._need = 0
            data = view[need:]
        skip = self._skip
        if skip:
            n = len(data)
            if n <= skip:
                self._skip = skip - n
                return
            self._skip = 0
            data = memoryview(data)[skip:]
        self._buf += data

    def __iter__(self) -> FrameDecoder:
        return self

    def __next__(self) -> Frame:
        frame = self.next_frame()
        if frame is None:
            raise StopIteration
        return frame

    def next_frame(self) -> Frame | None:
        """The next whole frame, or ``None`` when more bytes are needed."""
        if self._failed is not None:
            raise self._failed
        if self._deferred is not None:
            if self._need:
                return None
            return self._deferred_frame()
        buf = self._buf
        pos = self._pos
        header = self._header
        if header is None:
            if len(buf) - pos < MESSAGE_HEADER_SIZE:
                self._compact(pos)
                return None
            magic, raw_command, length, check = _HEADER.unpack_from(buf, pos)
            known = self._known.get(raw_command)
            if known is not None and magic == self._net and length <= known[2]:
                # Fast path: a known command whose length is within its type's limit.
                start = pos + MESSAGE_HEADER_SIZE
                end = start + length
                if len(buf) >= end and known[3]:
                    # The whole frame is here and decodes to a message: no header kept.
                    payload = bytes(buf[start:end])
                    self._pos = end
                    if _sha256(_sha256(payload).digest()).digest()[:4] != check:
                        _verify(_Header(known[0], length, check, known[1]), payload)
                    return _tuple_new(
                        Frame,
                        (
                            known[1].decode_payload(payload, self._pver),
                            MESSAGE_HEADER_SIZE + length,
                        ),
                    )
                header = _Header(known[0], length, check, known[1])
            else:
                try:
                    header = _check_header(buf, pos, self._net, self._registry, self._pver)
                except ProtocolError as exc:
                    skip: int | None = getattr(exc, "skip", None)
                    if skip is None:
                        self._failed = exc
                        raise
                    self._discard(pos + MESSAGE_HEADER_SIZE, skip)
                    raise
                if header.cls is not None and len(self._known) < 64:
                    # The fast path takes what is within the type's limit and not deferred.
                    self._known[raw_command] = (
                        header.command,
                        header.cls,
                        min(header.cls.max_payload_length(self._pver), self._defer_size - 1),
                        header.command not in self._raw_commands,
                    )
            pos += MESSAGE_HEADER_SIZE
            if header.cls is None:
                self._discard(pos, header.length)
                return Frame(
                    UnknownMessage(header.command, header.length),
                    MESSAGE_HEADER_SIZE + header.length,
                )
            if header.length >= self._defer_size:
                return self._defer(header, pos)
            self._header = header
        end = pos + header.length
        if len(buf) < end:
            self._compact(pos)
            return None
        payload = bytes(buf[pos:end])
        self._header = None
        self._pos = end
        if _sha256(_sha256(payload).digest()).digest()[:4] != header.checksum:
            _verify(header, payload)
        size = MESSAGE_HEADER_SIZE + header.length
        if header.command in self._raw_commands:
            return Frame(RawMessage(header.command, payload), size)
        assert header.cls is not None
        return Frame(header.cls.decode_payload(payload, self._pver), size)

    def _defer(self, header: _Header, pos: int) -> Frame | None:
        """Collect a large frame's payload as chunks, starting with what is buffered."""
        buf = self._buf
        take = min(len(buf) - pos, header.length)
        sink = self._sink = io.BytesIO()
        if take:
            with memoryview(buf) as view:
                sink.write(view[pos : pos + take])
        self._need = header.length - take
        self._deferred = header
        self._compact(pos + take)
        if self._need:
            return None
        return self._deferred_frame()

    def _deferred_frame(self) -> Frame:
        header = self._deferred
        assert header is not None
        assert header.cls is not None
        self._deferred = None
        sink = self._sink
        assert sink is not None
        self._sink = None
        deferred = DeferredPayload(
            header.command,
            header.cls,
            sink.getvalue(),  # the buffer itself, trimmed: no copy
            header.checksum,
            header.command in self._raw_commands,
            self._pver,
        )
        return Frame(deferred, MESSAGE_HEADER_SIZE + header.length)

    def _discard(self, pos: int, length: int) -> None:
        available = len(self._buf) - pos
        if available >= length:
            self._pos = pos + length
        else:
            self._skip = length - available
            self._pos = len(self._buf)
        self._compact(self._pos)

    def _compact(self, pos: int) -> None:
        buf = self._buf
        if pos >= len(buf):
            buf.clear()
            pos = 0
        elif pos > 65536 or pos * 2 > len(buf):
            del buf[:pos]
            pos = 0
        self._pos = pos
