"""The control and inventory messages of kaspad v0.5.0 (everything but tx, block, merkleblock).

Each message is an immutable value (a frozen, slotted dataclass).  Decoding
checks every count and size against the reference's limit before reading
what it announces; bytes after a complete payload are ignored, as the
reference ignores them.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from ._base import PROTOCOL_VERSION, Message, PackedSequence, builtin_message, printable
from ._errors import CountOverLimitError, EncodeError, FieldValueError
from ._primitives import (
    MAX_MESSAGE_PAYLOAD,
    MAX_VAR_INT_PAYLOAD,
    Reader,
    as_bytes,
    as_hash,
    check_int,
    check_str,
    put_var_bytes,
    put_var_string,
    put_varint,
    require,
    varint_size,
)
from ._types import (
    BloomUpdateType,
    Hash,
    InvType,
    InvVect,
    NetAddress,
    RejectCode,
    ServiceFlag,
    Services,
    SubnetworkID,
    inv_type,
)

__all__ = [
    "MAX_ADDR_PER_MSG",
    "MAX_BLOCK_LOCATORS_PER_MSG",
    "MAX_FILTER_ADD_DATA_SIZE",
    "MAX_FILTER_LOAD_FILTER_SIZE",
    "MAX_FILTER_LOAD_HASH_FUNCS",
    "MAX_INV_PER_MSG",
    "MAX_USER_AGENT_LEN",
    "MsgAddr",
    "MsgBlockLocator",
    "MsgFeeFilter",
    "MsgFilterAdd",
    "MsgFilterClear",
    "MsgFilterLoad",
    "MsgGetAddr",
    "MsgGetBlockInvs",
    "MsgGetBlockLocator",
    "MsgGetData",
    "MsgGetSelectedTip",
    "MsgInv",
    "MsgNotFound",
    "MsgPing",
    "MsgPong",
    "MsgReject",
    "MsgSelectedTip",
    "MsgVerAck",
    "MsgVersion",
    "hashes_sequence",
]

MAX_USER_AGENT_LEN: Final = 256
MAX_ADDR_PER_MSG: Final = 1000
MAX_INV_PER_MSG: Final = 1 << 17
MAX_BLOCK_LOCATORS_PER_MSG: Final = 500
MAX_FILTER_ADD_DATA_SIZE: Final = 520
MAX_FILTER_LOAD_FILTER_SIZE: Final = 36000
MAX_FILTER_LOAD_HASH_FUNCS: Final = 50

_HASH_SIZE: Final = 32
_SUBNETWORK_ID_SIZE: Final = 20
_NET_ADDRESS_MAX: Final = 34  # maxNetAddressPayload: timestamp 8 + services 8 + ip 16 + port 2

_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")
_new = object.__new__
_set = object.__setattr__
_new_bytes = bytes.__new__
_tuple_new = tuple.__new__


def _as_subnetwork(value: bytes | None, name: str = "subnetwork_id") -> SubnetworkID | None:
    if value is None or type(value) is SubnetworkID:
        return value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise FieldValueError(f"{name} must be 20 bytes or None, got {type(value).__name__}")
    return SubnetworkID(value)


# -- inventory vectors ---------------------------------------------------------

_INV_RECORD: Final = struct.Struct("<I32s")


def inventory_summary(items: Sequence[InvVect]) -> str:
    """``<item>`` for one, else ``<n> items (<count> <type>, ...)``."""
    if len(items) == 1:
        return str(items[0])
    counts = Counter(
        item.type.name if isinstance(item.type, InvType) else str(item.type) for item in items
    )
    return f"{len(items)} items (" + ", ".join(f"{n} {t}" for t, n in counts.items()) + ")"


def _inv_one(record: tuple[int, bytes]) -> InvVect:
    return _tuple_new(InvVect, (inv_type(record[0]), _new_bytes(Hash, record[1])))


def _inv_all(raw: bytes) -> list[InvVect]:
    get = inv_type
    return [
        _tuple_new(InvVect, (get(t), _new_bytes(Hash, h))) for t, h in _INV_RECORD.iter_unpack(raw)
    ]


def _normalize_inv_list(items: Sequence[InvVect]) -> Sequence[InvVect]:
    if isinstance(items, PackedSequence):
        return items
    out = []
    for item in items:
        if type(item) is not InvVect:
            kind, digest = item
            item = InvVect(kind, as_hash(digest, "inventory hash"))
        elif type(item.hash) is not Hash:
            item = InvVect(item.type, as_hash(item.hash, "inventory hash"))
        check_int(item.type, 0, 0xFFFFFFFF, "inventory type")
        out.append(item)
    return tuple(out)


class _InvListMessage(Message):
    """Shared layout of inv, getdata and notfound: a count, then (type u32, hash) records."""

    __slots__ = ()
    inv_list: Sequence[InvVect]

    def summary(self) -> str:
        """A short description for the debug log."""
        return inventory_summary(self.inv_list)

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return MAX_VAR_INT_PAYLOAD + MAX_INV_PER_MSG * (4 + _HASH_SIZE)

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        items = self.inv_list
        count = len(items)
        if count > MAX_INV_PER_MSG:
            raise EncodeError(f"too many invvect in message [{count}]", command=self.command)
        out = bytearray()
        put_varint(out, count)
        if isinstance(items, PackedSequence):
            out += items.raw
        else:
            pack = _INV_RECORD.pack
            out += b"".join([pack(t, h) for t, h in items])
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        count = reader.varint()
        if count > MAX_INV_PER_MSG:
            raise CountOverLimitError(
                f"too many invvect in message [{count}]",
                count=count,
                limit=MAX_INV_PER_MSG,
                command=cls.command,
            )
        if count * 36 > reader.remaining:
            # The reference reads item by item, type then hash: running out exactly
            # where one of them starts is a clean "EOF", inside one "unexpected EOF".
            reader.pos += reader.remaining - reader.remaining % 36
            reader.pos += 4 if reader.remaining >= 4 else 0
            raise reader.truncated()
        raw = reader.take(count * 36)
        obj = _new(cls)
        _set(obj, "inv_list", PackedSequence(raw, count, _INV_RECORD, _inv_one, _inv_all))
        return obj

    def __repr__(self) -> str:
        items = self.inv_list
        if len(items) > 8:
            shown = ", ".join(str(i) for i in items[:8])
            return f"{type(self).__name__}(<{len(items)} items: {shown}, ...>)"
        return f"{type(self).__name__}(inv_list={list(items)!r})"


@builtin_message
@dataclass(frozen=True, slots=True, repr=False)
class MsgInv(_InvListMessage):
    """``inv``: announce known objects (transactions, blocks) by type and hash."""

    command: ClassVar[str] = "inv"
    inv_list: Sequence[InvVect] = ()

    def __post_init__(self) -> None:
        _set(self, "inv_list", _normalize_inv_list(self.inv_list))


@builtin_message
@dataclass(frozen=True, slots=True, repr=False)
class MsgGetData(_InvListMessage):
    """``getdata``: request the objects named by inventory vectors."""

    command: ClassVar[str] = "getdata"
    inv_list: Sequence[InvVect] = ()

    def __post_init__(self) -> None:
        _set(self, "inv_list", _normalize_inv_list(self.inv_list))


@builtin_message
@dataclass(frozen=True, slots=True, repr=False)
class MsgNotFound(_InvListMessage):
    """``notfound``: the requested objects that the peer does not have."""

    command: ClassVar[str] = "notfound"
    inv_list: Sequence[InvVect] = ()

    def __post_init__(self) -> None:
        _set(self, "inv_list", _normalize_inv_list(self.inv_list))


# -- lists of hashes -------------------------------------------------------------

_HASH_RECORD: Final = struct.Struct("32s")
_HASH_ELEMENTS: Final = (32,)


def _hash_one(record: tuple[bytes]) -> Hash:
    return _new_bytes(Hash, record[0])


def _hash_all(raw: bytes) -> list[Hash]:
    return [_new_bytes(Hash, raw[i : i + 32]) for i in range(0, len(raw), 32)]


def hashes_sequence(raw: bytes, count: int) -> PackedSequence[Hash]:
    """A lazily decoded sequence of ``count`` hashes stored back to back in ``raw``."""
    return PackedSequence(raw, count, _HASH_RECORD, _hash_one, _hash_all)


def _normalize_hashes(items: Sequence[Hash], name: str) -> Sequence[Hash]:
    if isinstance(items, PackedSequence):
        return items
    return tuple([as_hash(h, name) for h in items])


def _put_hashes(out: bytearray, items: Sequence[Hash]) -> None:
    put_varint(out, len(items))
    if isinstance(items, PackedSequence):
        out += items.raw
    else:
        out += b"".join(items)


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgBlockLocator(Message):
    """``locator``: block hashes from high to low, answering a ``getlocator``."""

    command: ClassVar[str] = "locator"
    block_locator_hashes: Sequence[Hash] = ()

    def summary(self) -> str:
        """A short description for the debug log."""
        hashes = self.block_locator_hashes
        return f"{len(hashes)} hashes" + (
            f", first {hashes[0]}, last {hashes[-1]}" if hashes else ""
        )

    def __post_init__(self) -> None:
        _set(
            self,
            "block_locator_hashes",
            _normalize_hashes(self.block_locator_hashes, "block locator hash"),
        )

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return MAX_VAR_INT_PAYLOAD + MAX_BLOCK_LOCATORS_PER_MSG * _HASH_SIZE

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        count = len(self.block_locator_hashes)
        require(
            count <= MAX_BLOCK_LOCATORS_PER_MSG,
            f"too many block locator hashes for message "
            f"[count {count}, max {MAX_BLOCK_LOCATORS_PER_MSG}]",
            self.command,
        )
        out = bytearray()
        _put_hashes(out, self.block_locator_hashes)
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        count = reader.count(
            MAX_BLOCK_LOCATORS_PER_MSG, "too many block locator hashes for message"
        )
        raw = reader.take(count * 32, _HASH_ELEMENTS)
        obj = _new(cls)
        _set(obj, "block_locator_hashes", hashes_sequence(raw, count))
        return obj


# -- two hashes ---------------------------------------------------------------------


class HashPairMessage(Message):
    """Shared layout of messages that carry two hashes, in the order of ``hash_fields``."""

    __slots__ = ()
    hash_fields: ClassVar[tuple[str, str]]

    def summary(self) -> str:
        """A short description for the debug log: ``low <hash>, high <hash>`` and the like."""
        return ", ".join(
            f"{name.removesuffix('_hash')} {getattr(self, name)}" for name in self.hash_fields
        )

    def __post_init__(self) -> None:
        for name in self.hash_fields:
            _set(self, name, as_hash(getattr(self, name), name))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return 2 * _HASH_SIZE

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        first, second = self.hash_fields
        return bytes(getattr(self, first)) + bytes(getattr(self, second))

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        obj = _new(cls)
        for name in cls.hash_fields:
            _set(obj, name, reader.hash())
        return obj


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgGetBlockInvs(HashPairMessage):
    """``getblockinvs``: ask for inventory of the blocks between two hashes."""

    command: ClassVar[str] = "getblockinvs"
    hash_fields: ClassVar[tuple[str, str]] = ("low_hash", "high_hash")
    low_hash: Hash = Hash.ZERO
    high_hash: Hash = Hash.ZERO


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgGetBlockLocator(HashPairMessage):
    """``getlocator``: ask for a block locator between two hashes (high first on the wire)."""

    command: ClassVar[str] = "getlocator"
    hash_fields: ClassVar[tuple[str, str]] = ("high_hash", "low_hash")
    high_hash: Hash = Hash.ZERO
    low_hash: Hash = Hash.ZERO


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgSelectedTip(Message):
    """``selectedtip``: the hash of the sender's selected tip."""

    command: ClassVar[str] = "selectedtip"
    selected_tip_hash: Hash = Hash.ZERO

    def __post_init__(self) -> None:
        _set(self, "selected_tip_hash", as_hash(self.selected_tip_hash, "selected_tip_hash"))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return _HASH_SIZE

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        return bytes(self.selected_tip_hash)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        obj = _new(cls)
        _set(obj, "selected_tip_hash", reader.hash())
        return obj


# -- empty messages -------------------------------------------------------------------


class _EmptyMessage(Message):
    __slots__ = ()

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return 0

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        return b""

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        return cls()


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgVerAck(_EmptyMessage):
    """``verack``: acknowledges the peer's ``version``."""

    command: ClassVar[str] = "verack"


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgFilterClear(_EmptyMessage):
    """``filterclear``: remove the bloom filter loaded on this connection."""

    command: ClassVar[str] = "filterclear"


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgGetSelectedTip(_EmptyMessage):
    """``getseltip``: ask for the peer's selected tip (answered with ``selectedtip``)."""

    command: ClassVar[str] = "getseltip"


# -- one 64-bit number -----------------------------------------------------------------


class _NonceMessage(Message):
    __slots__ = ()
    nonce: int

    def summary(self) -> str:
        """A short description for the debug log."""
        return f"nonce {self.nonce}"

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return 8

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        return _U64.pack(self.nonce)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        if len(payload) < 8:
            raise Reader(payload, cls.command).truncated()
        obj = _new(cls)
        _set(obj, "nonce", _U64.unpack_from(payload)[0])
        return obj


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgPing(_NonceMessage):
    """``ping``: a keep-alive; the peer answers with a ``pong`` carrying the same nonce."""

    command: ClassVar[str] = "ping"
    nonce: int = 0

    def __post_init__(self) -> None:
        check_int(self.nonce, 0, 0xFFFFFFFFFFFFFFFF, "nonce")


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgPong(_NonceMessage):
    """``pong``: the answer to a ``ping``, with its nonce."""

    command: ClassVar[str] = "pong"
    nonce: int = 0

    def __post_init__(self) -> None:
        check_int(self.nonce, 0, 0xFFFFFFFFFFFFFFFF, "nonce")


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgFeeFilter(Message):
    """``feefilter``: do not announce transactions paying less than ``min_fee`` per KB."""

    command: ClassVar[str] = "feefilter"
    min_fee: int = 0

    def __post_init__(self) -> None:
        check_int(self.min_fee, -(1 << 63), (1 << 63) - 1, "min_fee")

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return 8

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        return _I64.pack(self.min_fee)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        obj = _new(cls)
        _set(obj, "min_fee", reader.i64())
        return obj


# -- bloom filters ----------------------------------------------------------------------


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgFilterAdd(Message):
    """``filteradd``: add data (at most 520 bytes) to the loaded bloom filter."""

    command: ClassVar[str] = "filteradd"
    data: bytes = b""

    def __post_init__(self) -> None:
        _set(self, "data", as_bytes(self.data, "data"))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return varint_size(MAX_FILTER_ADD_DATA_SIZE) + MAX_FILTER_ADD_DATA_SIZE

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        size = len(self.data)
        require(
            size <= MAX_FILTER_ADD_DATA_SIZE,
            f"filteradd size too large for message [size {size}, max {MAX_FILTER_ADD_DATA_SIZE}]",
            self.command,
        )
        out = bytearray()
        put_var_bytes(out, self.data)
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        obj = _new(cls)
        _set(obj, "data", reader.var_bytes(MAX_FILTER_ADD_DATA_SIZE, "filteradd data"))
        return obj


_FILTER_LOAD_TAIL: Final = struct.Struct("<IIB")
_FILTER_LOAD_ELEMENTS: Final = (4, 4, 1)


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgFilterLoad(Message):
    """``filterload``: load a bloom filter (at most 36,000 bytes and 50 hash functions)."""

    command: ClassVar[str] = "filterload"
    filter: bytes = b""
    hash_funcs: int = 0
    tweak: int = 0
    flags: BloomUpdateType | int = BloomUpdateType.NONE

    def __post_init__(self) -> None:
        _set(self, "filter", as_bytes(self.filter, "filter"))
        check_int(self.hash_funcs, 0, 0xFFFFFFFF, "hash_funcs")
        check_int(self.tweak, 0, 0xFFFFFFFF, "tweak")
        check_int(self.flags, 0, 0xFF, "flags")

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return varint_size(MAX_FILTER_LOAD_FILTER_SIZE) + MAX_FILTER_LOAD_FILTER_SIZE + 9

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        size = len(self.filter)
        require(
            size <= MAX_FILTER_LOAD_FILTER_SIZE,
            f"filterload filter size too large for message "
            f"[size {size}, max {MAX_FILTER_LOAD_FILTER_SIZE}]",
            self.command,
        )
        require(
            self.hash_funcs <= MAX_FILTER_LOAD_HASH_FUNCS,
            f"too many filter hash functions for message "
            f"[count {self.hash_funcs}, max {MAX_FILTER_LOAD_HASH_FUNCS}]",
            self.command,
        )
        out = bytearray()
        put_var_bytes(out, self.filter)
        out += _FILTER_LOAD_TAIL.pack(self.hash_funcs, self.tweak, self.flags)
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        data = reader.var_bytes(MAX_FILTER_LOAD_FILTER_SIZE, "filterload filter size")
        hash_funcs, tweak, flags = reader.unpack(_FILTER_LOAD_TAIL, _FILTER_LOAD_ELEMENTS)
        if hash_funcs > MAX_FILTER_LOAD_HASH_FUNCS:
            raise reader.over_limit(
                "too many filter hash functions for message",
                hash_funcs,
                MAX_FILTER_LOAD_HASH_FUNCS,
            )
        obj = _new(cls)
        _set(obj, "filter", data)
        _set(obj, "hash_funcs", hash_funcs)
        _set(obj, "tweak", tweak)
        _set(obj, "flags", _BLOOM_FLAGS.get(flags, flags))
        return obj


_BLOOM_FLAGS: Final = {int(f): f for f in BloomUpdateType}


# -- reject ---------------------------------------------------------------------------------

_REJECT_CODES: Final = {int(c): c for c in RejectCode}
_HASHED_REJECTS: Final = frozenset({"block", "tx"})


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgReject(Message):
    """``reject``: a message was refused, with a code, a reason and (for tx/block) its hash.

    The hash is on the wire exactly when ``cmd`` is ``"block"`` or ``"tx"``;
    encoding such a reject without a hash is an :class:`EncodeError` (the
    reference crashes on it).  A hash given for any other command is not sent.
    """

    command: ClassVar[str] = "reject"
    cmd: str = ""
    code: RejectCode | int = RejectCode.MALFORMED
    reason: str = ""
    hash: Hash | None = None

    def summary(self) -> str:
        """A short description for the debug log."""
        text = (
            f"cmd {printable(self.cmd, 12)}, code {self.code!s}, reason {printable(self.reason)}"
        )
        return text + (f", hash {self.hash}" if self.hash is not None else "")

    def __post_init__(self) -> None:
        check_str(self.cmd, "cmd")
        check_int(self.code, 0, 0xFF, "reject code")
        check_str(self.reason, "reason")
        if self.hash is not None:
            _set(self, "hash", as_hash(self.hash, "hash"))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return MAX_MESSAGE_PAYLOAD

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        out = bytearray()
        put_var_string(out, self.cmd)
        out.append(self.code)
        put_var_string(out, self.reason)
        if self.cmd in _HASHED_REJECTS:
            if self.hash is None:
                raise EncodeError(
                    f"a reject of a {self.cmd} must carry the {self.cmd}'s hash",
                    command=self.command,
                )
            out += self.hash
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        cmd = reader.var_string()
        code = reader.u8()
        reason = reader.var_string()
        digest = reader.hash() if cmd in _HASHED_REJECTS else None
        obj = _new(cls)
        _set(obj, "cmd", cmd)
        _set(obj, "code", _REJECT_CODES.get(code, code))
        _set(obj, "reason", reason)
        _set(obj, "hash", digest)
        return obj


# -- addresses ------------------------------------------------------------------------------

_ADDR_RECORD: Final = struct.Struct("<qQ16s2s")
_ADDR_ELEMENTS: Final = (8, 8, 16, 2)  # timestamp, services, ip, port
_services: Final = Services


def _addr_one(record: tuple[int, int, bytes, bytes]) -> NetAddress:
    ts, services, ip, port = record
    return _tuple_new(NetAddress, (ip, int.from_bytes(port, "big"), _services(services), ts))


def _addr_all(raw: bytes) -> list[NetAddress]:
    from_bytes = int.from_bytes
    return [
        _tuple_new(NetAddress, (ip, from_bytes(port, "big"), _services(services), ts))
        for ts, services, ip, port in _ADDR_RECORD.iter_unpack(raw)
    ]


def _normalize_addresses(items: Sequence[NetAddress]) -> Sequence[NetAddress]:
    if isinstance(items, PackedSequence):
        return items
    out = []
    for item in items:
        if type(item) is not NetAddress:
            raise FieldValueError(f"addr_list items must be NetAddress, got {type(item).__name__}")
        out.append(item)
    return tuple(out)


def _put_subnetwork_choice(
    out: bytearray, include_all: bool, subnetwork_id: SubnetworkID | None
) -> None:
    out.append(1 if include_all else 0)
    if not include_all:
        out.append(1 if subnetwork_id is None else 0)
        if subnetwork_id is not None:
            out += subnetwork_id


def _read_subnetwork_choice(reader: Reader) -> tuple[bool, SubnetworkID | None]:
    include_all = reader.bool()
    if include_all:
        return True, None
    if reader.bool():
        return False, None
    return False, reader.subnetwork_id()


@builtin_message
@dataclass(frozen=True, slots=True, repr=False)
class MsgAddr(Message):
    """``addr``: known peer addresses (at most 1000), with their last-seen time.

    ``subnetwork_id`` is ``None`` for full nodes' addresses; it is not on
    the wire when ``include_all_subnetworks`` is true.
    """

    command: ClassVar[str] = "addr"
    addr_list: Sequence[NetAddress] = ()
    include_all_subnetworks: bool = False
    subnetwork_id: SubnetworkID | None = None

    def summary(self) -> str:
        """A short description for the debug log."""
        return f"{len(self.addr_list)} addr"

    def __post_init__(self) -> None:
        _set(self, "addr_list", _normalize_addresses(self.addr_list))
        _set(self, "include_all_subnetworks", bool(self.include_all_subnetworks))
        _set(self, "subnetwork_id", _as_subnetwork(self.subnetwork_id))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return 2 + _SUBNETWORK_ID_SIZE + MAX_VAR_INT_PAYLOAD + MAX_ADDR_PER_MSG * _NET_ADDRESS_MAX

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        items = self.addr_list
        count = len(items)
        require(
            count <= MAX_ADDR_PER_MSG,
            f"too many addresses for message [count {count}, max {MAX_ADDR_PER_MSG}]",
            self.command,
        )
        out = bytearray()
        _put_subnetwork_choice(out, self.include_all_subnetworks, self.subnetwork_id)
        put_varint(out, count)
        if isinstance(items, PackedSequence):
            out += items.raw
            return bytes(out)
        pack = _ADDR_RECORD.pack
        for ip, port, services, timestamp in items:
            if timestamp is None:
                raise EncodeError(
                    "addresses in an addr message need a timestamp", command=self.command
                )
            out += pack(timestamp, services, ip, port.to_bytes(2, "big"))
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        include_all, subnetwork_id = _read_subnetwork_choice(reader)
        count = reader.count(MAX_ADDR_PER_MSG, "too many addresses for message")
        raw = reader.take(count * 34, _ADDR_ELEMENTS)
        obj = _new(cls)
        _set(obj, "addr_list", PackedSequence(raw, count, _ADDR_RECORD, _addr_one, _addr_all))
        _set(obj, "include_all_subnetworks", include_all)
        _set(obj, "subnetwork_id", subnetwork_id)
        return obj

    def __repr__(self) -> str:
        items = self.addr_list
        shown = ": " + ", ".join(str(a) for a in items[:4]) if items else ""
        more = ", ..." if len(items) > 4 else ""
        return (
            f"MsgAddr(<{len(items)} addresses{shown}{more}>, "
            f"include_all_subnetworks={self.include_all_subnetworks}, "
            f"subnetwork_id={self.subnetwork_id!r})"
        )


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgGetAddr(Message):
    """``getaddr``: ask for known addresses, of one subnetwork or of all."""

    command: ClassVar[str] = "getaddr"
    include_all_subnetworks: bool = False
    subnetwork_id: SubnetworkID | None = None

    def summary(self) -> str:
        """A short description for the debug log."""
        if self.include_all_subnetworks:
            return "all subnetworks and full nodes"
        return "full nodes" if self.subnetwork_id is None else f"subnetwork {self.subnetwork_id}"

    def __post_init__(self) -> None:
        _set(self, "include_all_subnetworks", bool(self.include_all_subnetworks))
        _set(self, "subnetwork_id", _as_subnetwork(self.subnetwork_id))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return _SUBNETWORK_ID_SIZE + 2

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        out = bytearray()
        _put_subnetwork_choice(out, self.include_all_subnetworks, self.subnetwork_id)
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        include_all, subnetwork_id = _read_subnetwork_choice(Reader(payload, cls.command))
        obj = _new(cls)
        _set(obj, "include_all_subnetworks", include_all)
        _set(obj, "subnetwork_id", subnetwork_id)
        return obj


# -- version ---------------------------------------------------------------------------------

_VERSION_HEAD: Final = struct.Struct("<iQq")
_VERSION_HEAD_ELEMENTS: Final = (4, 8, 8)  # the sizes the reference reads one by one
_ADDR_NO_TS: Final = struct.Struct("<Q16s2s")
_ADDR_NO_TS_ELEMENTS: Final = (8, 16, 2)


def _read_address_no_time(reader: Reader) -> NetAddress:
    services, ip, port = reader.unpack(_ADDR_NO_TS, _ADDR_NO_TS_ELEMENTS)
    return _tuple_new(NetAddress, (ip, int.from_bytes(port, "big"), _services(services), None))


def _put_address_no_time(out: bytearray, address: NetAddress) -> None:
    out += _ADDR_NO_TS.pack(address.services, address.ip, address.port.to_bytes(2, "big"))


def _check_user_agent(user_agent: str, command: str) -> None:
    size = len(user_agent.encode("utf-8", "surrogateescape"))
    if size > MAX_USER_AGENT_LEN:
        raise EncodeError(
            f"user agent too long [len {size}, max {MAX_USER_AGENT_LEN}]", command=command
        )


_ZERO_ADDRESS: Final = NetAddress(b"\x00" * 16, 0, 0)


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgVersion(Message):
    """``version``: the first message each side sends, describing itself.

    ``subnetwork_id`` is ``None`` for a full node.  ``disable_relay_tx`` is
    sent inverted (as "relay transactions"), as the reference does.  Any
    non-zero byte in a bool field decodes as true (the reference accepts
    them); re-encoding writes 1.
    """

    command: ClassVar[str] = "version"
    protocol_version: int = PROTOCOL_VERSION
    services: ServiceFlag | int = 0
    timestamp: int = 0
    addr_you: NetAddress = _ZERO_ADDRESS
    addr_me: NetAddress = _ZERO_ADDRESS
    nonce: int = 0
    user_agent: str = ""
    selected_tip_hash: Hash = Hash.ZERO
    disable_relay_tx: bool = False
    subnetwork_id: SubnetworkID | None = None

    def summary(self) -> str:
        """A short description for the debug log."""
        return (
            f"agent {printable(self.user_agent)}, pver {self.protocol_version}, "
            f"selected tip {self.selected_tip_hash}"
        )

    def __post_init__(self) -> None:
        check_int(self.protocol_version, -(1 << 31), (1 << 31) - 1, "protocol_version")
        check_int(self.services, 0, (1 << 64) - 1, "services")
        _set(self, "services", _services(self.services))
        check_int(self.timestamp, -(1 << 63), (1 << 63) - 1, "timestamp")
        check_int(self.nonce, 0, (1 << 64) - 1, "nonce")
        check_str(self.user_agent, "user_agent")
        for name in ("addr_you", "addr_me"):
            if type(getattr(self, name)) is not NetAddress:
                raise FieldValueError(f"{name} must be a NetAddress")
        _set(self, "selected_tip_hash", as_hash(self.selected_tip_hash, "selected_tip_hash"))
        _set(self, "disable_relay_tx", bool(self.disable_relay_tx))
        _set(self, "subnetwork_id", _as_subnetwork(self.subnetwork_id))

    def has_service(self, service: ServiceFlag | int) -> bool:
        """True when every bit of ``service`` is advertised."""
        return self.services & service == service

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return 29 + 2 * _NET_ADDRESS_MAX + MAX_VAR_INT_PAYLOAD + MAX_USER_AGENT_LEN + _HASH_SIZE

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        _check_user_agent(self.user_agent, self.command)
        out = bytearray(_VERSION_HEAD.pack(self.protocol_version, self.services, self.timestamp))
        if self.subnetwork_id is None:
            out.append(1)
        else:
            out.append(0)
            out += self.subnetwork_id
        _put_address_no_time(out, self.addr_you)
        _put_address_no_time(out, self.addr_me)
        out += _U64.pack(self.nonce)
        put_var_string(out, self.user_agent)
        out += self.selected_tip_hash
        out.append(0 if self.disable_relay_tx else 1)
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        reader = Reader(payload, cls.command)
        protocol_version, services, timestamp = reader.unpack(
            _VERSION_HEAD, _VERSION_HEAD_ELEMENTS
        )
        subnetwork_id = None if reader.bool() else reader.subnetwork_id()
        addr_you = _read_address_no_time(reader)
        addr_me = _read_address_no_time(reader)
        nonce = reader.u64()
        user_agent = reader.var_string()
        size = len(user_agent.encode("utf-8", "surrogateescape"))
        if size > MAX_USER_AGENT_LEN:
            raise CountOverLimitError(
                f"user agent too long [len {size}, max {MAX_USER_AGENT_LEN}]",
                count=size,
                limit=MAX_USER_AGENT_LEN,
                command=cls.command,
            )
        selected_tip_hash = reader.hash()
        relay_tx = reader.bool()
        obj = _new(cls)
        _set(obj, "protocol_version", protocol_version)
        _set(obj, "services", _services(services))
        _set(obj, "timestamp", timestamp)
        _set(obj, "addr_you", addr_you)
        _set(obj, "addr_me", addr_me)
        _set(obj, "nonce", nonce)
        _set(obj, "user_agent", user_agent)
        _set(obj, "selected_tip_hash", selected_tip_hash)
        _set(obj, "disable_relay_tx", not relay_tx)
        _set(obj, "subnetwork_id", subnetwork_id)
        return obj
