"""Blocks: the block header, ``block`` and ``merkleblock``.

A header is ``version (i32) | parent count (u8) | parents | hash merkle root
| accepted-ID merkle root | UTXO commitment | timestamp (i64 seconds) | bits
(u32) | nonce (u64)``; the block hash is the double SHA-256 of those bytes.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self, overload

from ._base import PROTOCOL_VERSION, Message, PackedSequence, builtin_message, checked_fields
from ._errors import CountOverLimitError, EncodeError, FieldValueError, TruncatedPayloadError
from ._messages import hashes_sequence
from ._primitives import (
    MAX_MESSAGE_PAYLOAD,
    Reader,
    as_bytes,
    as_hash,
    check_int,
    put_var_bytes,
    put_varint,
    varint_size,
)
from ._tx import MsgTx, decode_tx_at, tx_end
from ._types import Hash

__all__ = [
    "BASE_BLOCK_HEADER_PAYLOAD",
    "MAX_BLOCK_HEADER_PAYLOAD",
    "MAX_FLAGS_PER_MERKLE_BLOCK",
    "MAX_NUM_PARENT_BLOCKS",
    "MAX_TX_PER_BLOCK",
    "BlockHeader",
    "MsgBlock",
    "MsgMerkleBlock",
    "TxSequence",
    "block_hash_of_payload",
]

MAX_NUM_PARENT_BLOCKS: Final = 255
BASE_BLOCK_HEADER_PAYLOAD: Final = 25 + 3 * 32
MAX_BLOCK_HEADER_PAYLOAD: Final = BASE_BLOCK_HEADER_PAYLOAD + MAX_NUM_PARENT_BLOCKS * 32
MAX_MASS_PER_BLOCK: Final = 10_000_000
MAX_TX_PER_BLOCK: Final = MAX_MASS_PER_BLOCK // 10 + 1
"""The most transactions a block may claim (the reference's maxTxPerBlock)."""
MAX_FLAGS_PER_MERKLE_BLOCK: Final = MAX_TX_PER_BLOCK // 8

_new = object.__new__
_set = object.__setattr__
_new_bytes = bytes.__new__
_sha256 = hashlib.sha256
_HEAD = struct.Struct("<iB")
_HEAD_ELEMENTS: Final = (4, 1)  # version, parent count
_TAIL = struct.Struct("<32s32s32sqIQ")
_TAIL_ELEMENTS: Final = (32, 32, 32, 8, 4, 8)  # three roots, timestamp, bits, nonce
_INTS = struct.Struct("<qIQ")  # timestamp (seconds), bits, nonce


def _double_sha256(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """A block header.  ``timestamp`` is unix seconds; ``parent_hashes`` holds at most 255.

    The wire bytes and the block hash are computed once and cached (a
    decoded header keeps the bytes it was read from).
    """

    version: int = 1
    parent_hashes: Sequence[Hash] = ()
    hash_merkle_root: Hash = Hash.ZERO
    accepted_id_merkle_root: Hash = Hash.ZERO
    utxo_commitment: Hash = Hash.ZERO
    timestamp: int = 0
    bits: int = 0
    nonce: int = 0
    _raw: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _hash: Hash | None = field(default=None, init=False, repr=False, compare=False)

    @checked_fields
    def __post_init__(self) -> None:
        check_int(self.version, -(1 << 31), (1 << 31) - 1, "version")
        parents = self.parent_hashes
        if not isinstance(parents, PackedSequence):
            parents = tuple([as_hash(h, "parent hash") for h in parents])
        if len(parents) > MAX_NUM_PARENT_BLOCKS:
            raise FieldValueError(
                f"too many parent hashes [count {len(parents)}, max {MAX_NUM_PARENT_BLOCKS}]"
            )
        _set(self, "parent_hashes", parents)
        for name in ("hash_merkle_root", "accepted_id_merkle_root", "utxo_commitment"):
            _set(self, name, as_hash(getattr(self, name), name))
        check_int(self.timestamp, -(1 << 63), (1 << 63) - 1, "timestamp")
        check_int(self.bits, 0, 0xFFFFFFFF, "bits")
        check_int(self.nonce, 0, (1 << 64) - 1, "nonce")

    def serialize(self) -> bytes:
        """The header's wire bytes (cached)."""
        raw = self._raw
        if raw is None:
            parents = self.parent_hashes
            if len(parents) > MAX_NUM_PARENT_BLOCKS:
                raise EncodeError(
                    f"too many parent hashes [count {len(parents)}, max {MAX_NUM_PARENT_BLOCKS}]"
                )
            joined = parents.raw if isinstance(parents, PackedSequence) else b"".join(parents)
            raw = (
                _HEAD.pack(self.version, len(parents))
                + joined
                + _TAIL.pack(
                    self.hash_merkle_root,
                    self.accepted_id_merkle_root,
                    self.utxo_commitment,
                    self.timestamp,
                    self.bits,
                    self.nonce,
                )
            )
            _set(self, "_raw", raw)
        return raw

    def block_hash(self) -> Hash:
        """The block hash: double SHA-256 of the serialized header (cached)."""
        digest = self._hash
        if digest is None:
            digest = _new_bytes(Hash, _double_sha256(self.serialize()))
            _set(self, "_hash", digest)
        return digest

    def serialize_size(self) -> int:
        """The size of the encoded header in bytes."""
        return BASE_BLOCK_HEADER_PAYLOAD + 32 * len(self.parent_hashes)

    @property
    def is_genesis(self) -> bool:
        """True for a header without parents (the reference's IsGenesis)."""
        return len(self.parent_hashes) == 0


class _BlockHeaderFill:
    """A mutable twin of :class:`BlockHeader` (same slots), used only while decoding.

    See ``_MsgTxFill`` in ``_tx.py``: plain stores, then the class is set to
    :class:`BlockHeader`.
    """

    __slots__ = BlockHeader.__slots__

    version: int
    parent_hashes: Sequence[Hash]
    hash_merkle_root: Hash
    accepted_id_merkle_root: Hash
    utxo_commitment: Hash
    timestamp: int
    bits: int
    nonce: int
    _raw: bytes | None
    _hash: Hash | None


def read_header(data: bytes, pos: int, command: str) -> tuple[BlockHeader, int]:
    """Decode a block header at ``pos``; return it and the offset after it.

    The parent count is one byte, so it can never exceed 255: no limit check
    is needed (nor does the reference make one).
    """
    end = len(data)
    # Cut short: the reference reads a header one element at a time (Reader.truncated).
    if pos + 5 > end:
        raise Reader(data, command, pos).truncated(_HEAD_ELEMENTS)
    version, count = _HEAD.unpack_from(data, pos)
    start = pos
    pos += 5
    roots = pos + 32 * count
    tail_end = roots + _TAIL.size
    if tail_end > end:
        if roots > end:
            raise Reader(data, command, pos).truncated((32,))
        raise Reader(data, command, roots).truncated(_TAIL_ELEMENTS)
    header = _new(_BlockHeaderFill)
    header.version = version
    header.parent_hashes = hashes_sequence(data[pos:roots], count)
    header.hash_merkle_root = _new_bytes(Hash, data[roots : roots + 32])
    header.accepted_id_merkle_root = _new_bytes(Hash, data[roots + 32 : roots + 64])
    header.utxo_commitment = _new_bytes(Hash, data[roots + 64 : roots + 96])
    header.timestamp, header.bits, header.nonce = _INTS.unpack_from(data, roots + 96)
    header._raw = data if (start == 0 and tail_end == end) else data[start:tail_end]
    header._hash = None
    header.__class__ = BlockHeader  # type: ignore[assignment]
    return header, tail_end  # type: ignore[return-value]


def block_hash_of_payload(payload: bytes) -> Hash:
    """The block hash of a raw ``block`` (or ``merkleblock``) payload, decoding only the header.

    Useful with :class:`~trio_kaspa_peer.wire.RawMessage`: relay a block and
    learn its hash without decoding its transactions.  Only the header's
    length is checked (its parent count says how long it is).
    """
    if len(payload) < 5:
        raise TruncatedPayloadError("payload ended early: unexpected EOF", command="block")
    end = 5 + 32 * payload[4] + _TAIL.size
    if end > len(payload):
        raise TruncatedPayloadError("payload ended early: unexpected EOF", command="block")
    return _new_bytes(Hash, _double_sha256(payload[:end]))


def _as_header(value: BlockHeader) -> BlockHeader:
    if not isinstance(value, BlockHeader):
        raise FieldValueError(f"header must be a BlockHeader, got {type(value).__name__}")
    return value


class TxSequence(Sequence[MsgTx]):
    """A decoded block's transactions, kept as the block's bytes.

    Decoding a block walks every transaction and checks it (so a bad block
    is refused at once, with the reference's error), but builds none: a
    transaction is built the first time it is read, then kept.  A block of
    300,000 small transactions decodes to its payload and an offset per
    transaction, not to a million objects (which would also slow every
    garbage collection of the process).  It compares equal to any sequence
    of the same transactions; re-encoding reuses the bytes.
    """

    __slots__ = ("_built", "_data", "_offsets", "encodable")

    def __init__(self, data: bytes, offsets: Sequence[int], encodable: bool = True) -> None:
        self._data = data
        self._offsets = offsets
        self._built: list[MsgTx | None] | None = None
        #: False when a transaction is one the reference decodes but will not encode (a
        #: built-in one with gas): encoding the block then raises, as the reference does.
        self.encodable: bool = encodable

    @property
    def raw(self) -> bytes:
        """The transactions' encoding, as received."""
        offsets = self._offsets
        return self._data[offsets[0] : offsets[-1]]

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _build(self, index: int) -> MsgTx:
        built = self._built
        if built is None:
            built = self._built = [None] * len(self)
        tx = built[index]
        if tx is None:
            tx = built[index] = decode_tx_at(self._data, self._offsets[index], "block")[0]
        return tx

    @overload
    def __getitem__(self, index: int) -> MsgTx: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[MsgTx]: ...
    def __getitem__(self, index: int | slice) -> MsgTx | Sequence[MsgTx]:
        n = len(self)
        if isinstance(index, slice):
            return tuple([self._build(i) for i in range(*index.indices(n))])
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("TxSequence index out of range")
        return self._build(index)

    def __iter__(self) -> Iterator[MsgTx]:
        build = self._build
        for index in range(len(self)):
            yield build(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TxSequence):
            return self.raw == other.raw
        if isinstance(other, (tuple, list)):
            return len(other) == len(self) and all(
                a == b for a, b in zip(self, other, strict=True)
            )
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"<{len(self)} transactions>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (TxSequence, (self._data, self._offsets, self.encodable))


@builtin_message
@dataclass(frozen=True, slots=True, repr=False)
class MsgBlock(Message):
    """``block``: a block header and its transactions."""

    command: ClassVar[str] = "block"
    header: BlockHeader = field(default_factory=BlockHeader)
    transactions: Sequence[MsgTx] = ()

    def summary(self) -> str:
        """A short description for the debug log."""
        return (
            f"hash {self.block_hash()}, {len(self.transactions)} tx, time {self.header.timestamp}"
        )

    def __post_init__(self) -> None:
        _as_header(self.header)
        if type(self.transactions) is TxSequence:
            return  # already checked when decoded
        txs = tuple(self.transactions)
        for tx in txs:
            if not isinstance(tx, MsgTx):
                raise FieldValueError(f"transactions must be MsgTx, got {type(tx).__name__}")
        _set(self, "transactions", txs)

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return MAX_MESSAGE_PAYLOAD

    def block_hash(self) -> Hash:
        """The hash of the block's header."""
        return self.header.block_hash()

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        parts = [self.header.serialize()]
        count = bytearray()
        put_varint(count, len(self.transactions))
        parts.append(bytes(count))
        txs = self.transactions
        if type(txs) is TxSequence and txs.encodable:
            parts.append(txs.raw)
        else:
            parts.extend([tx.encode_payload(pver) for tx in txs])
        return b"".join(parts)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        if type(payload) is not bytes:
            payload = bytes(payload)
        header, pos = read_header(payload, 0, cls.command)
        reader = Reader(payload, cls.command, pos)
        count = reader.varint()
        if count > MAX_TX_PER_BLOCK:
            raise CountOverLimitError(
                "too many transactions to fit into a block "
                f"[count {count}, max {MAX_TX_PER_BLOCK}]",
                count=count,
                limit=MAX_TX_PER_BLOCK,
                command=cls.command,
            )
        pos = reader.pos
        offsets = array("Q", [pos])
        append = offsets.append
        command = cls.command
        unencodable: list[int] = []
        for _ in range(count):
            pos = tx_end(payload, pos, command, unencodable)
            append(pos)
        obj = _new(cls)
        _set(obj, "header", header)
        _set(obj, "transactions", TxSequence(payload, offsets, not unencodable))
        return obj

    def serialize_size(self) -> int:
        txs = self.transactions
        n = self.header.serialize_size() + varint_size(len(txs))
        if type(txs) is TxSequence:
            return n + len(txs.raw)
        return n + sum(tx.serialize_size() for tx in txs)

    def __repr__(self) -> str:
        return (
            f"MsgBlock(hash={str(self.block_hash())!r}, header={self.header!r}, "
            f"<{len(self.transactions)} transactions>)"
        )


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgMerkleBlock(Message):
    """``merkleblock``: a header with the merkle proof of the transactions matching a filter."""

    command: ClassVar[str] = "merkleblock"
    header: BlockHeader = field(default_factory=BlockHeader)
    transactions: int = 0
    hashes: Sequence[Hash] = ()
    flags: bytes = b""

    def __post_init__(self) -> None:
        _as_header(self.header)
        check_int(self.transactions, 0, 0xFFFFFFFF, "transactions")
        if not isinstance(self.hashes, PackedSequence):
            _set(self, "hashes", tuple([as_hash(h, "hash") for h in self.hashes]))
        _set(self, "flags", as_bytes(self.flags, "flags"))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return MAX_MESSAGE_PAYLOAD

    def block_hash(self) -> Hash:
        """The hash of the block's header."""
        return self.header.block_hash()

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        count = len(self.hashes)
        if count > MAX_TX_PER_BLOCK:
            raise EncodeError(
                f"too many transaction hashes for message [count {count}, max {MAX_TX_PER_BLOCK}]",
                command=self.command,
            )
        if len(self.flags) > MAX_FLAGS_PER_MERKLE_BLOCK:
            raise EncodeError(
                f"too many flag bytes for message [count {len(self.flags)}, "
                f"max {MAX_FLAGS_PER_MERKLE_BLOCK}]",
                command=self.command,
            )
        out = bytearray(self.header.serialize())
        out += struct.pack("<I", self.transactions)
        put_varint(out, count)
        hashes = self.hashes
        out += hashes.raw if isinstance(hashes, PackedSequence) else b"".join(hashes)
        put_var_bytes(out, self.flags)
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        header, pos = read_header(payload, 0, cls.command)
        reader = Reader(payload, cls.command, pos)
        transactions = reader.u32()
        count = reader.count(MAX_TX_PER_BLOCK, "too many transaction hashes for message")
        raw = reader.take(32 * count, (32,))
        flags = reader.var_bytes(MAX_FLAGS_PER_MERKLE_BLOCK, "merkle block flags size")
        obj = _new(cls)
        _set(obj, "header", header)
        _set(obj, "transactions", transactions)
        _set(obj, "hashes", hashes_sequence(raw, count))
        _set(obj, "flags", flags)
        return obj
