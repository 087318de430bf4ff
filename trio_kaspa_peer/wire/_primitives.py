"""Primitive readers and writers: fixed-width integers, varints, var bytes and strings.

Decoding works on an immutable ``bytes`` payload with a moving offset
(:class:`Reader`); encoding appends to a ``bytearray``.  Every length read
from the wire is checked against its limit *before* anything is allocated
for it, and running off the end of the payload raises
:class:`~trio_kaspa_peer.wire.TruncatedPayloadError`.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from ._errors import (
    CountOverLimitError,
    EncodeError,
    FieldTypeError,
    FieldValueError,
    MalformedPayloadError,
    NonCanonicalVarIntError,
    TruncatedPayloadError,
)
from ._types import Hash, SubnetworkID, TxID

__all__ = [
    "MAX_MESSAGE_PAYLOAD",
    "MAX_VAR_INT_PAYLOAD",
    "Reader",
    "decode_varint",
    "encode_varint",
    "varint_size",
]

MAX_MESSAGE_PAYLOAD: Final = 32 * 1024 * 1024
"""The largest payload any message may have (the reference's MaxMessagePayload)."""

MAX_VAR_INT_PAYLOAD: Final = 9
"""The largest size of a varint on the wire."""

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_new_bytes = bytes.__new__

U16: Final = _U16
U32: Final = _U32
I32: Final = _I32
U64: Final = _U64
I64: Final = _I64


def ends_between(left: int, elements: tuple[int, ...]) -> bool:
    """Whether ``left`` bytes end exactly where one of ``elements`` (sizes, in order,
    repeating) starts: where the reference, reading one element at a time, finds nothing
    (``EOF``) rather than a part (``unexpected EOF``)."""
    left %= sum(elements)
    for size in elements:
        if left < size:
            return left == 0
        left -= size
    return True  # pragma: no cover - left is below the sum


class Reader:
    """A cursor over one message payload.

    ``command`` is attached to every error raised, so callers learn which
    message was malformed.
    """

    __slots__ = ("command", "data", "end", "pos")

    def __init__(self, data: bytes, command: str | None = None, pos: int = 0) -> None:
        self.data: bytes = data
        self.pos: int = pos
        self.end: int = len(data)
        self.command: str | None = command

    # -- errors -------------------------------------------------------------

    def truncated(self, elements: tuple[int, ...] = ()) -> TruncatedPayloadError:
        """The error for reading past the end (``EOF`` at the end, else ``unexpected EOF``).

        ``elements``: the sizes of the elements the read at ``pos`` was for, in order and
        repeating (a run of records), which the reference reads one at a time: running
        out where one of them starts is ``EOF`` there too.
        """
        left = self.end - self.pos
        clean = left <= 0 or (bool(elements) and ends_between(left, elements))
        text = "EOF" if clean else "unexpected EOF"
        return TruncatedPayloadError(f"payload ended early: {text}", command=self.command)

    def over_limit(self, what: str, count: int, limit: int) -> CountOverLimitError:
        return CountOverLimitError(
            f"{what} [count {count}, max {limit}]", count=count, limit=limit, command=self.command
        )

    # -- raw ----------------------------------------------------------------

    def take(self, n: int, elements: tuple[int, ...] = ()) -> bytes:
        """The next ``n`` bytes (a copy); ``elements`` as for :meth:`truncated`."""
        pos = self.pos
        new = pos + n
        if new > self.end:
            raise self.truncated(elements)
        self.pos = new
        return self.data[pos:new]

    def skip(self, n: int) -> None:
        new = self.pos + n
        if new > self.end:
            raise self.truncated()
        self.pos = new

    def unpack(self, st: struct.Struct, elements: tuple[int, ...] = ()) -> tuple[Any, ...]:
        pos = self.pos
        new = pos + st.size
        if new > self.end:
            raise self.truncated(elements)
        self.pos = new
        return st.unpack_from(self.data, pos)

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    # -- fixed width --------------------------------------------------------

    def u8(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self.truncated()
        self.pos = pos + 1
        return self.data[pos]

    def bool(self) -> bool:
        """A one-byte bool: any non-zero byte is true, as in the reference."""
        return self.u8() != 0

    def u16(self) -> int:
        return self._fixed(_U16)

    def u32(self) -> int:
        return self._fixed(_U32)

    def i32(self) -> int:
        return self._fixed(_I32)

    def u64(self) -> int:
        return self._fixed(_U64)

    def i64(self) -> int:
        return self._fixed(_I64)

    def _fixed(self, st: struct.Struct) -> int:
        pos = self.pos
        new = pos + st.size
        if new > self.end:
            raise self.truncated()
        self.pos = new
        return st.unpack_from(self.data, pos)[0]  # type: ignore[no-any-return]

    def hash(self) -> Hash:
        pos = self.pos
        new = pos + 32
        if new > self.end:
            raise self.truncated()
        self.pos = new
        return _new_bytes(Hash, self.data[pos:new])

    def txid(self) -> TxID:
        pos = self.pos
        new = pos + 32
        if new > self.end:
            raise self.truncated()
        self.pos = new
        return _new_bytes(TxID, self.data[pos:new])

    def subnetwork_id(self) -> SubnetworkID:
        pos = self.pos
        new = pos + 20
        if new > self.end:
            raise self.truncated()
        self.pos = new
        return _new_bytes(SubnetworkID, self.data[pos:new])

    # -- variable length ----------------------------------------------------

    def varint(self) -> int:
        """A canonical varint; a longer encoding than needed is refused, as the reference does."""
        data = self.data
        pos = self.pos
        if pos >= self.end:
            raise self.truncated()
        first = data[pos]
        if first < 0xFD:
            self.pos = pos + 1
            return first
        self.pos = pos + 1
        if first == 0xFD:
            value = self._fixed(_U16)
            minimum = 0xFD
        elif first == 0xFE:
            value = self._fixed(_U32)
            minimum = 0x10000
        else:
            value = self._fixed(_U64)
            minimum = 0x100000000
        if value < minimum:
            raise NonCanonicalVarIntError(
                f"non-canonical varint {value:x} - discriminant {first:x} must encode "
                f"a value greater than {minimum:x}",
                command=self.command,
            )
        return value

    def count(self, limit: int, what: str) -> int:
        """A varint count, refused when over ``limit`` (checked before any allocation)."""
        value = self.varint()
        if value > limit:
            raise self.over_limit(what, value, limit)
        return value

    def var_bytes(self, limit: int, what: str) -> bytes:
        """Length-prefixed bytes of at most ``limit`` bytes."""
        n = self.varint()
        if n > limit:
            raise self.over_limit(f"{what} is larger than the max allowed size", n, limit)
        return self.take(n)

    def var_string(self, limit: int = MAX_MESSAGE_PAYLOAD) -> str:
        """A length-prefixed string.

        The reference keeps arbitrary bytes in a Go string; here invalid UTF-8
        is decoded with ``surrogateescape`` so that re-encoding gives back the
        same bytes.
        """
        n = self.varint()
        if n > limit:
            raise self.over_limit("variable length string is too long", n, limit)
        return self.take(n).decode("utf-8", "surrogateescape")

    def done(self) -> None:
        """Hook for the end of a payload: trailing bytes are ignored, as the reference does."""


# -- writers -----------------------------------------------------------------

_u16_pack = _U16.pack
_u32_pack = _U32.pack
_u64_pack = _U64.pack


def put_varint(out: bytearray, value: int) -> None:
    """Append ``value`` as a canonical varint."""
    if value < 0xFD:
        if value < 0:
            raise EncodeError(f"varint cannot encode negative value {value}")
        out.append(value)
    elif value <= 0xFFFF:
        out.append(0xFD)
        out += _u16_pack(value)
    elif value <= 0xFFFFFFFF:
        out.append(0xFE)
        out += _u32_pack(value)
    elif value <= 0xFFFFFFFFFFFFFFFF:
        out.append(0xFF)
        out += _u64_pack(value)
    else:
        raise EncodeError(f"varint cannot encode {value}: more than 64 bits")


def encode_varint(value: int) -> bytes:
    """``value`` as a canonical varint."""
    out = bytearray()
    put_varint(out, value)
    return bytes(out)


def decode_varint(data: bytes) -> tuple[int, int]:
    """Decode one varint at the start of ``data``: ``(value, size)``."""
    reader = Reader(bytes(data))
    value = reader.varint()
    return value, reader.pos


def varint_size(value: int) -> int:
    """How many bytes the canonical varint for ``value`` takes."""
    if value < 0xFD:
        return 1
    if value <= 0xFFFF:
        return 3
    if value <= 0xFFFFFFFF:
        return 5
    return 9


def put_var_bytes(out: bytearray, data: bytes) -> None:
    put_varint(out, len(data))
    out += data


def put_var_string(out: bytearray, text: str) -> None:
    raw = text.encode("utf-8", "surrogateescape")
    put_varint(out, len(raw))
    out += raw


def require(condition: bool, message: str, command: str | None) -> None:
    """Raise :class:`EncodeError` unless ``condition``."""
    if not condition:
        raise EncodeError(message, command=command)


def malformed(message: str, command: str | None) -> MalformedPayloadError:
    return MalformedPayloadError(message, command=command)


def check_int(value: int, lo: int, hi: int, name: str) -> None:
    """Raise :class:`FieldValueError` unless ``value`` is an int in ``lo..hi``."""
    if not isinstance(value, int) or not lo <= value <= hi:
        raise FieldValueError(f"{name} {value!r} is out of range {lo}..{hi}")


def as_bytes(value: Any, name: str) -> bytes:
    """``value`` as bytes: any bytes-like value or iterable of byte values, not a str or an int.

    ``bytes(5)`` would be five zero bytes and ``bytes("ab")`` an error about
    encodings; both are refused here with a :class:`FieldTypeError`.
    """
    if type(value) is bytes:
        return value
    if isinstance(value, (str, int)) or value is None:
        raise FieldTypeError(f"{name} must be bytes, got {type(value).__name__}")
    try:
        return bytes(value)
    except (TypeError, ValueError) as exc:
        raise FieldTypeError(f"{name} must be bytes: {exc}") from exc


def check_str(value: str, name: str) -> None:
    """Raise :class:`FieldTypeError` unless ``value`` is a str."""
    if not isinstance(value, str):
        raise FieldTypeError(f"{name} must be a str, got {type(value).__name__}")


def as_hash(value: bytes, name: str) -> Hash:
    """``value`` as a :class:`Hash` (any 32 bytes-like value is accepted)."""
    if type(value) is Hash:
        return value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise FieldTypeError(f"{name} must be a 32-byte hash, got {type(value).__name__}")
    return Hash(value)
