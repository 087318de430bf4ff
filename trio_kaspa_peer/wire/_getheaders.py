"""``getheaders`` and ``headers`` in their kaspad v0.1.0 layout.

kaspad v0.5.0 dropped these two commands; v0.1.0 defined them, with the same
block header layout as v0.5.0.  They are in the default registry so that a
peer can ask for and read headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from ._base import PROTOCOL_VERSION, Message, builtin_message
from ._block import MAX_BLOCK_HEADER_PAYLOAD, BlockHeader, read_header
from ._errors import EncodeError, FieldValueError, MalformedPayloadError
from ._messages import HashPairMessage
from ._primitives import MAX_VAR_INT_PAYLOAD, Reader, put_varint
from ._types import Hash

__all__ = ["MAX_BLOCK_HEADERS_PER_MSG", "MsgGetHeaders", "MsgHeaders"]

MAX_BLOCK_HEADERS_PER_MSG: Final = 2000

_new = object.__new__
_set = object.__setattr__


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgGetHeaders(HashPairMessage):
    """``getheaders``: ask for the headers from ``start_hash`` up to ``stop_hash``."""

    command: ClassVar[str] = "getheaders"
    hash_fields: ClassVar[tuple[str, str]] = ("start_hash", "stop_hash")
    start_hash: Hash = Hash.ZERO
    stop_hash: Hash = Hash.ZERO


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgHeaders(Message):
    """``headers``: up to 2000 block headers, each followed by a zero transaction count."""

    command: ClassVar[str] = "headers"
    headers: Sequence[BlockHeader] = ()

    def summary(self) -> str:
        """A short description for the debug log."""
        return f"{len(self.headers)} headers"

    def __post_init__(self) -> None:
        headers = tuple(self.headers)
        for header in headers:
            if not isinstance(header, BlockHeader):
                raise FieldValueError(f"headers must be BlockHeader, got {type(header).__name__}")
        _set(self, "headers", headers)

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return MAX_VAR_INT_PAYLOAD + (MAX_BLOCK_HEADER_PAYLOAD + 1) * MAX_BLOCK_HEADERS_PER_MSG

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        count = len(self.headers)
        if count > MAX_BLOCK_HEADERS_PER_MSG:
            raise EncodeError(
                f"too many block headers for message [count {count}, "
                f"max {MAX_BLOCK_HEADERS_PER_MSG}]",
                command=self.command,
            )
        out = bytearray()
        put_varint(out, count)
        for header in self.headers:
            out += header.serialize()
            out.append(0)
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        count = reader.count(MAX_BLOCK_HEADERS_PER_MSG, "too many block headers for message")
        headers = []
        for _ in range(count):
            header, reader.pos = read_header(payload, reader.pos, cls.command)
            tx_count = reader.varint()
            if tx_count > 0:
                raise MalformedPayloadError(
                    f"block headers may not contain transactions [count {tx_count}]",
                    command=cls.command,
                )
            headers.append(header)
        obj = _new(cls)
        _set(obj, "headers", tuple(headers))
        return obj
