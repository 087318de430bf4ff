"""Transactions: ``MsgTx`` and its inputs and outputs, with TxID and TxHash.

A transaction is ``version (i32) | inputs | outputs | lock_time (u64) |
subnetwork_id (20 bytes)``, followed -- only for a non-native subnetwork --
by ``gas (u64) | payload_hash (32 bytes) | payload (var bytes)``.  An input is
``outpoint tx_id (32) | outpoint index (u32) | signature script (var bytes) |
sequence (u64)``; an output is ``value (u64) | script_pub_key (var bytes)``.
For a native transaction nothing is read after the subnetwork ID: bytes that
follow inside a ``tx`` frame are ignored, as the reference ignores them.

Decoding is the hot path.  It walks the layout once, checking every count
and length, and fills the frozen message through a private twin class
instead of ``__init__``; the inputs and outputs are built (with precompiled
structs and ``tuple.__new__``) from the kept wire bytes the first time they
are read, so a transaction that is only relayed, hashed or counted never
builds them.  Re-encoding a decoded transaction costs nothing, its TxHash
(and, when nothing is left out, its TxID) is one double SHA-256 of the kept
bytes, and its TxID cuts the signature scripts out of them directly.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, NamedTuple, Self

from ._base import PROTOCOL_VERSION, Message, builtin_message
from ._errors import (
    CountOverLimitError,
    EncodeError,
    NonCanonicalVarIntError,
    ProtocolError,
    TruncatedPayloadError,
)
from ._primitives import MAX_MESSAGE_PAYLOAD, as_bytes, check_int, put_varint, varint_size
from ._types import Hash, SubnetworkID, TxID

__all__ = [
    "MAX_TX_IN_PER_MESSAGE",
    "MAX_TX_OUT_PER_MESSAGE",
    "MsgTx",
    "Outpoint",
    "TxIn",
    "TxOut",
]

MAX_TX_IN_PER_MESSAGE: Final = MAX_MESSAGE_PAYLOAD // (9 + 32) + 1
"""The most inputs a tx may claim: 818,401 (the reference's maxTxInPerMessage)."""

MAX_TX_OUT_PER_MESSAGE: Final = MAX_MESSAGE_PAYLOAD // 9 + 1
"""The most outputs a tx may claim: 3,728,271 (the reference's maxTxOutPerMessage)."""

MAX_SCRIPT_SIZE: Final = MAX_MESSAGE_PAYLOAD
"""The longest signature script or public key script accepted on decode."""

_MAX_SEQUENCE: Final = (1 << 64) - 1


class Outpoint(NamedTuple):
    """A reference to an output of an earlier transaction."""

    tx_id: TxID
    index: int  # type: ignore[assignment]  # shadows tuple.index, as named by the reference

    def __str__(self) -> str:
        return f"{self.tx_id}:{self.index}"


class TxIn(NamedTuple):
    """A transaction input: the outpoint it spends, its signature script, its sequence."""

    previous_outpoint: Outpoint
    signature_script: bytes = b""
    sequence: int = _MAX_SEQUENCE


class TxOut(NamedTuple):
    """A transaction output: a value and the script that locks it."""

    value: int
    script_pub_key: bytes = b""


_new = object.__new__
_set = object.__setattr__
_new_bytes = bytes.__new__
_tuple_new = tuple.__new__
_sha256 = hashlib.sha256

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_HEAD = struct.Struct("<iB")  # version, first byte of the input count
_IN = struct.Struct("<32sIB")  # outpoint, first byte of the script length
_OUT = struct.Struct("<QB")  # value, first byte of the script length
_TAIL = struct.Struct("<Q20s")  # lock time, subnetwork ID
_SUBNET = struct.Struct("<Q32sB")  # gas, payload hash, first byte of the payload length
_IN_NO_SCRIPT = struct.Struct("<IBQ")  # index, empty script, sequence (for the TxID)
_VALUE_LEN = struct.Struct("<QB")

_NATIVE: Final = SubnetworkID.NATIVE
_COINBASE: Final = SubnetworkID.COINBASE
_NATIVE_RAW: Final = bytes(20)
_BUILTIN_RAW: Final = frozenset({bytes(SubnetworkID.COINBASE), bytes(SubnetworkID.REGISTRY)})


def _truncated(command: str, pos: int, end: int) -> TruncatedPayloadError:
    """The reference's EOF wording: ``EOF`` when nothing was left, else ``unexpected EOF``."""
    text = "EOF" if pos >= end else "unexpected EOF"
    return TruncatedPayloadError(f"payload ended early: {text}", command=command)


def _varint_slow(data: bytes, pos: int, first: int, command: str) -> tuple[int, int]:
    """Finish reading a varint whose first byte (at ``pos - 1``) is 0xfd..0xff."""
    if first == 0xFD:
        value = _U16.unpack_from(data, pos)[0]
        pos += 2
        minimum = 0xFD
    elif first == 0xFE:
        value = _U32.unpack_from(data, pos)[0]
        pos += 4
        minimum = 0x10000
    else:
        value = _U64.unpack_from(data, pos)[0]
        pos += 8
        minimum = 0x100000000
    if value < minimum:
        raise NonCanonicalVarIntError(
            f"non-canonical varint {value:x} - discriminant {first:x} must encode "
            f"a value greater than {minimum:x}",
            command=command,
        )
    return value, pos


def _over(what: str, count: int, limit: int, command: str) -> CountOverLimitError:
    return CountOverLimitError(
        f"{what} [count {count}, max {limit}]", count=count, limit=limit, command=command
    )


def _long_varint(
    data: bytes, pos: int, first: int, limit: int, what: str, command: str
) -> tuple[int, int]:
    """A varint of three or more bytes, refused when over ``limit``."""
    value, pos = _varint_slow(data, pos, first, command)
    if value > limit:
        raise _over(what, value, limit, command)
    return value, pos


_SIG_SCRIPT: Final = "transaction input signature script is larger than the max allowed size"
_PK_SCRIPT: Final = "transaction output public key script is larger than the max allowed size"
_TOO_MANY_INPUTS: Final = "too many input transactions to fit into max message size"
_TOO_MANY_OUTPUTS: Final = "too many output transactions to fit into max message size"
_VARINT_TAIL: Final = {0xFD: 2, 0xFE: 4, 0xFF: 8}


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """Read a varint already known to be valid and canonical."""
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    if first == 0xFD:
        return _U16.unpack_from(data, pos + 1)[0], pos + 3
    if first == 0xFE:
        return _U32.unpack_from(data, pos + 1)[0], pos + 5
    return _U64.unpack_from(data, pos + 1)[0], pos + 9


_PENDING: Final[Any] = type("_Pending", (), {"__slots__": (), "__repr__": lambda _: "<pending>"})()
"""What the ``tx_in`` and ``tx_out`` slots of a decoded transaction hold until first read."""


def _build_body(
    raw: bytes,
    *,
    _unpack_in: Callable[[bytes, int], tuple[bytes, int, int]] = _IN.unpack_from,
    _unpack_out: Callable[[bytes, int], tuple[int, int]] = _OUT.unpack_from,
    _unpack_u64: Callable[[bytes, int], tuple[int]] = _U64.unpack_from,
) -> tuple[tuple[TxIn, ...], tuple[TxOut, ...]]:
    """The inputs and outputs of a transaction's validated encoding ``raw``.

    One pass from the input count (after the 4-byte version); the structs
    are bound as defaults because this runs once per transaction read.
    """
    count = raw[4]
    pos = 5
    if count >= 0xFD:
        count, pos = _varint_at(raw, 4)
    inputs: list[TxIn] = []
    append_in = inputs.append
    for _ in range(count):
        raw_id, index, n = _unpack_in(raw, pos)
        pos += 37
        if n >= 0xFD:
            n, pos = _varint_at(raw, pos - 1)
        end = pos + n
        append_in(
            _tuple_new(
                TxIn,
                (
                    _tuple_new(Outpoint, (_new_bytes(TxID, raw_id), index)),
                    raw[pos:end],
                    _unpack_u64(raw, end)[0],
                ),
            )
        )
        pos = end + 8
    count = raw[pos]
    pos += 1
    if count >= 0xFD:
        count, pos = _varint_at(raw, pos - 1)
    outputs: list[TxOut] = []
    append_out = outputs.append
    for _ in range(count):
        value, n = _unpack_out(raw, pos)
        pos += 9
        if n >= 0xFD:
            n, pos = _varint_at(raw, pos - 1)
        append_out(_tuple_new(TxOut, (value, raw[pos : pos + n])))
        pos += n
    return tuple(inputs), tuple(outputs)


def decode_tx_at(data: bytes, pos: int, command: str = "tx") -> tuple[MsgTx, int]:
    """Decode one transaction starting at ``pos``; return it and the offset after it.

    The layout is walked and every count and length checked against the
    reference's limit (before anything is built for it) and against what is
    left of ``data``; the inputs and outputs themselves are built from the
    kept wire bytes the first time they are read.  Any truncation sends the
    bytes through :func:`_diagnose`, which reads them field by field as the
    reference does, so the error says ``EOF`` or ``unexpected EOF`` exactly
    where the reference would.  The payload length of a non-native
    transaction has no limit of its own in the reference (which allocates
    whatever it claims); here it can only be as long as what is left.
    """
    start = pos
    end = len(data)
    try:
        version, count = _HEAD.unpack_from(data, pos)
        pos += 5
        if count >= 0xFD:
            count, pos = _long_varint(
                data,
                pos,
                count,
                MAX_TX_IN_PER_MESSAGE,
                _TOO_MANY_INPUTS,
                command,
            )
        for _ in range(count):
            n = data[pos + 36]
            pos += 37
            if n >= 0xFD:
                n, pos = _long_varint(data, pos, n, MAX_SCRIPT_SIZE, _SIG_SCRIPT, command)
            pos += n + 8
        if pos >= end:
            raise IndexError
        count = data[pos]
        pos += 1
        if count >= 0xFD:
            count, pos = _long_varint(
                data,
                pos,
                count,
                MAX_TX_OUT_PER_MESSAGE,
                _TOO_MANY_OUTPUTS,
                command,
            )
        for _ in range(count):
            n = data[pos + 8]
            pos += 9
            if n >= 0xFD:
                n, pos = _long_varint(data, pos, n, MAX_SCRIPT_SIZE, _PK_SCRIPT, command)
            pos += n
        lock_time, raw_subnetwork = _TAIL.unpack_from(data, pos)
        pos += 28
        if raw_subnetwork == _NATIVE_RAW:
            subnetwork_id = _NATIVE
            gas = 0
            payload_hash = None
            payload = None
            encodable = True
        else:
            subnetwork_id = _new_bytes(SubnetworkID, raw_subnetwork)
            gas, raw_hash, n = _SUBNET.unpack_from(data, pos)
            pos += 41
            if n >= 0xFD:
                n, pos = _varint_slow(data, pos, n, command)
            if pos + n > end:
                raise IndexError
            payload_hash = _new_bytes(Hash, raw_hash)
            payload = data[pos : pos + n]
            pos += n
            # The reference decodes a built-in transaction with gas but refuses to encode it.
            encodable = gas == 0 or raw_subnetwork not in _BUILTIN_RAW
    except (IndexError, struct.error):
        raise _diagnose(data, start, command) from None
    raw = data if (start == 0 and pos == end) else data[start:pos]
    tx = _new(_MsgTxFill)
    tx.version = version
    tx.lock_time = lock_time
    tx.subnetwork_id = subnetwork_id
    tx.gas = gas
    tx.payload_hash = payload_hash
    tx.payload = payload
    tx._tx_id = None
    tx._tx_hash = None
    if encodable:
        # Built from ``_raw`` when first read (see _BodyField).
        tx.tx_in = _PENDING
        tx.tx_out = _PENDING
        tx._raw = raw
    else:
        tx.tx_in, tx.tx_out = _build_body(raw)
        tx._raw = None
    tx.__class__ = MsgTx  # type: ignore[assignment]
    return tx, pos  # type: ignore[return-value]


def tx_end(
    data: bytes, pos: int, command: str = "tx", unencodable: list[int] | None = None
) -> int:
    """Where the transaction starting at ``pos`` ends: :func:`decode_tx_at`'s walk and
    checks, building nothing (a block keeps its transactions as bytes until read).

    A transaction the reference decodes but refuses to encode (a built-in one with gas)
    has its start appended to ``unencodable``."""
    start = pos
    end = len(data)
    try:
        count = data[pos + 4]
        pos += 5
        if count >= 0xFD:
            count, pos = _long_varint(
                data, pos, count, MAX_TX_IN_PER_MESSAGE, _TOO_MANY_INPUTS, command
            )
        for _ in range(count):
            n = data[pos + 36]
            pos += 37
            if n >= 0xFD:
                n, pos = _long_varint(data, pos, n, MAX_SCRIPT_SIZE, _SIG_SCRIPT, command)
            pos += n + 8
        if pos >= end:
            raise IndexError
        count = data[pos]
        pos += 1
        if count >= 0xFD:
            count, pos = _long_varint(
                data, pos, count, MAX_TX_OUT_PER_MESSAGE, _TOO_MANY_OUTPUTS, command
            )
        for _ in range(count):
            n = data[pos + 8]
            pos += 9
            if n >= 0xFD:
                n, pos = _long_varint(data, pos, n, MAX_SCRIPT_SIZE, _PK_SCRIPT, command)
            pos += n
        raw_subnetwork = _TAIL.unpack_from(data, pos)[1]
        pos += 28
        if raw_subnetwork != _NATIVE_RAW:
            gas, _, n = _SUBNET.unpack_from(data, pos)
            if gas and raw_subnetwork in _BUILTIN_RAW and unencodable is not None:
                unencodable.append(start)
            pos += 41
            if n >= 0xFD:
                n, pos = _varint_slow(data, pos, n, command)
            if pos + n > end:
                raise IndexError
            pos += n
    except (IndexError, struct.error):
        raise _diagnose(data, start, command) from None
    return pos


def _diagnose(data: bytes, pos: int, command: str) -> ProtocolError:
    """The reference's error for a transaction at ``pos`` that ends early.

    Reads the transaction one field at a time, as the reference's decoder
    does: a read that finds no bytes left is ``EOF``, one cut short is
    ``unexpected EOF``.  Limits are checked in the same order as on the fast
    path, so the first failure is reported whichever path finds it.
    """
    end = len(data)

    def need(size: int) -> int:
        nonlocal pos
        if pos + size > end:
            raise _truncated(command, pos, end)
        pos += size
        return pos - size

    def varint(limit: int, what: str) -> int:
        first = data[need(1)]
        if first < 0xFD:
            value = first
        else:
            value = _varint_slow(data, need(_VARINT_TAIL[first]), first, command)[0]
        if value > limit:
            raise _over(what, value, limit, command)
        return value

    try:
        need(4)
        for _ in range(varint(MAX_TX_IN_PER_MESSAGE, _TOO_MANY_INPUTS)):
            need(32)
            need(4)
            need(varint(MAX_SCRIPT_SIZE, _SIG_SCRIPT))
            need(8)
        for _ in range(varint(MAX_TX_OUT_PER_MESSAGE, _TOO_MANY_OUTPUTS)):
            need(8)
            need(varint(MAX_SCRIPT_SIZE, _PK_SCRIPT))
        need(8)
        if data[need(20) : pos] != _NATIVE_RAW:
            need(8)
            need(32)
            need(varint(1 << 64, "payload"))
    except ProtocolError as exc:
        return exc
    raise AssertionError("_diagnose was given a whole transaction")  # pragma: no cover


class _BodyField:
    """The ``tx_in`` or ``tx_out`` attribute of :class:`MsgTx`, over its slot.

    A decoded transaction holds :data:`_PENDING` in both slots; the first
    read of either builds both from ``_raw`` and stores them, so later reads
    cost a slot read and one identity check.  Stores go straight to the slot.
    """

    __slots__ = ("_get", "_put")

    def __init__(self, slot: Any) -> None:
        self._get = slot.__get__
        self._put = slot.__set__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self._get(obj, owner)
        if value is _PENDING:
            inputs, outputs = _build_body(obj._raw)
            _TX_IN_SLOT.__set__(obj, inputs)
            _TX_OUT_SLOT.__set__(obj, outputs)
            value = self._get(obj, owner)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        self._put(obj, value)


_FULL = 0
_EXCLUDE_PAYLOAD = 1
_EXCLUDE_SCRIPTS_AND_PAYLOAD = 2


@builtin_message
@dataclass(frozen=True, slots=True)
class MsgTx(Message):
    """``tx``: a transaction.

    ``payload`` and ``payload_hash`` are ``None`` for a native-subnetwork
    transaction (they are not on the wire; decoding reads nothing after the
    subnetwork ID, so trailing bytes are ignored as in the reference).  For
    other subnetworks a decoded ``payload`` is bytes, possibly empty.

    Encoding refuses what the reference refuses: a native transaction with
    gas, a payload or a payload hash, and a built-in (coinbase, registry)
    transaction with gas.  A non-native transaction without a payload hash
    (the reference crashes on it) is refused too.

    :meth:`tx_id` and :meth:`tx_hash` are computed as the reference does and
    cached; so is the encoding.
    """

    command: ClassVar[str] = "tx"
    version: int = 1
    tx_in: Sequence[TxIn] = ()
    tx_out: Sequence[TxOut] = ()
    lock_time: int = 0
    subnetwork_id: SubnetworkID = SubnetworkID.NATIVE
    gas: int = 0
    payload_hash: Hash | None = None
    payload: bytes | None = None
    _tx_id: TxID | None = field(default=None, init=False, repr=False, compare=False)
    _tx_hash: Hash | None = field(default=None, init=False, repr=False, compare=False)
    _raw: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def summary(self) -> str:
        """A short description for the debug log."""
        # Counted from the kept bytes: a huge transaction is not built just to be logged.
        return f"id {self.tx_id()}, {self.serialize_size()} bytes"

    def __post_init__(self) -> None:
        check_int(self.version, -(1 << 31), (1 << 31) - 1, "version")
        check_int(self.lock_time, 0, (1 << 64) - 1, "lock_time")
        check_int(self.gas, 0, (1 << 64) - 1, "gas")
        inputs = []
        for item in self.tx_in:
            outpoint, script, sequence = item
            tx_id, index = outpoint
            if type(tx_id) is not TxID:
                tx_id = TxID(tx_id)
            check_int(index, 0, 0xFFFFFFFF, "outpoint index")
            check_int(sequence, 0, _MAX_SEQUENCE, "sequence")
            inputs.append(
                TxIn(Outpoint(tx_id, index), as_bytes(script, "signature_script"), sequence)
            )
        _set(self, "tx_in", tuple(inputs))
        outputs = []
        for out in self.tx_out:
            value, script = out
            check_int(value, 0, (1 << 64) - 1, "output value")
            outputs.append(TxOut(value, as_bytes(script, "script_pub_key")))
        _set(self, "tx_out", tuple(outputs))
        if type(self.subnetwork_id) is not SubnetworkID:
            _set(self, "subnetwork_id", SubnetworkID(self.subnetwork_id))
        if self.payload_hash is not None and type(self.payload_hash) is not Hash:
            _set(self, "payload_hash", Hash(self.payload_hash))
        if self.payload is not None:
            _set(self, "payload", as_bytes(self.payload, "payload"))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return MAX_MESSAGE_PAYLOAD

    def is_coinbase(self) -> bool:
        """True when the transaction belongs to the coinbase subnetwork."""
        return self.subnetwork_id == _COINBASE

    def _serialize(self, mode: int, strict: bool) -> bytes:
        """The transaction's bytes, leaving out what ``mode`` says.

        With ``strict`` the reference's encode errors are raised; without it
        the bytes stop where the reference's encoder stops on such an error
        (its TxID and TxHash hash whatever was written before the error).
        """
        version = self.version
        tx_in = self.tx_in
        tx_out = self.tx_out
        out = bytearray(_I32.pack(version))
        n = len(tx_in)
        if n < 0xFD:
            out.append(n)
        else:
            put_varint(out, n)
        u32 = _U32.pack
        u64 = _U64.pack
        if mode == _EXCLUDE_SCRIPTS_AND_PAYLOAD:
            no_script = _IN_NO_SCRIPT.pack
            for (tx_id, index), _, sequence in tx_in:
                out += tx_id
                out += no_script(index, 0, sequence)
        else:
            for (tx_id, index), script, sequence in tx_in:
                out += tx_id
                out += u32(index)
                n = len(script)
                if n < 0xFD:
                    out.append(n)
                else:
                    put_varint(out, n)
                out += script
                out += u64(sequence)
        n = len(tx_out)
        if n < 0xFD:
            out.append(n)
        else:
            put_varint(out, n)
        value_len = _VALUE_LEN.pack
        for value, script in tx_out:
            n = len(script)
            if n < 0xFD:
                out += value_len(value, n)
            else:
                out += u64(value)
                put_varint(out, n)
            out += script
        out += u64(self.lock_time)
        subnetwork_id = self.subnetwork_id
        out += subnetwork_id
        if subnetwork_id != _NATIVE:
            if self.gas != 0 and subnetwork_id.is_builtin:
                if strict:
                    raise EncodeError(
                        "Transactions from built-in should have 0 gas", command=self.command
                    )
                return bytes(out)
            if self.payload_hash is None:
                raise EncodeError(
                    "Transactions from a non-native subnetwork need a payload hash "
                    "(the reference crashes on a nil one)",
                    command=self.command,
                )
            out += u64(self.gas)
            out += self.payload_hash
            payload = self.payload
            if mode == _FULL and payload:
                put_varint(out, len(payload))
                out += payload
            else:
                out.append(0)
        elif strict:
            if self.payload is not None:
                raise EncodeError(
                    "Transactions from native subnetwork should have <nil> payload",
                    command=self.command,
                )
            if self.payload_hash is not None:
                raise EncodeError(
                    "Transactions from native subnetwork should have <nil> payload hash",
                    command=self.command,
                )
            if self.gas != 0:
                raise EncodeError(
                    "Transactions from native subnetwork should have 0 gas", command=self.command
                )
        return bytes(out)

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        raw = self._raw
        if raw is None:
            raw = self._serialize(_FULL, True)
            _set(self, "_raw", raw)
        return raw

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        if type(payload) is not bytes:
            payload = bytes(payload)
        return decode_tx_at(payload, 0, cls.command)[0]  # type: ignore[return-value]

    def _hashed_bytes(self, mode: int) -> bytes:
        """What the TxHash (``_EXCLUDE_PAYLOAD``) or TxID (``_FULL`` or
        ``_EXCLUDE_SCRIPTS_AND_PAYLOAD``) hashes.

        Cut out of the cached encoding when there is one (re-using its slices),
        else serialized the reference's way, errors included.
        """
        raw = self._raw
        if raw is None:
            try:
                raw = self.encode_payload()
            except EncodeError:
                return self._serialize(mode, False)
        if mode == _FULL:
            return raw
        parts: list[bytes] = []
        copied = 0  # raw[:copied] is in parts already
        if mode == _EXCLUDE_SCRIPTS_AND_PAYLOAD:
            count, pos = _varint_at(raw, 4)
            for _ in range(count):
                pos += 36
                n, after = _varint_at(raw, pos)
                if n:
                    parts.append(raw[copied:pos])
                    parts.append(b"\x00")
                    copied = after + n
                    pos = copied + 8
                else:
                    pos = after + 8
        payload = self.payload
        if payload:
            cut = (
                len(raw) - len(payload) - (1 if len(payload) < 0xFD else varint_size(len(payload)))
            )
            parts.append(raw[copied:cut])
            parts.append(b"\x00")
        elif not parts:
            return raw
        else:
            parts.append(raw[copied:])
        return b"".join(parts)

    def tx_hash(self) -> Hash:
        """Double SHA-256 of the transaction without its payload (the reference's TxHash).

        Cached.  For a transaction the reference refuses to encode (a built-in
        one with gas, say) this hashes what the reference's encoder wrote
        before refusing, so the value is the reference's.
        """
        cached = self._tx_hash
        if cached is None:
            data = self._hashed_bytes(_EXCLUDE_PAYLOAD)
            cached = _new_bytes(Hash, _sha256(_sha256(data).digest()).digest())
            _set(self, "_tx_hash", cached)
        return cached

    def tx_id(self) -> TxID:
        """The transaction ID: double SHA-256 without signature scripts and payload.

        For a coinbase transaction nothing is left out.  Cached; computed like
        :meth:`tx_hash` for transactions the reference refuses to encode.
        """
        cached = self._tx_id
        if cached is None:
            mode = _FULL if self.subnetwork_id == _COINBASE else _EXCLUDE_SCRIPTS_AND_PAYLOAD
            data = self._hashed_bytes(mode)
            cached = _new_bytes(TxID, _sha256(_sha256(data).digest()).digest())
            _set(self, "_tx_id", cached)
        return cached

    def serialize_size(self) -> int:
        """The size of the encoded transaction in bytes."""
        raw = self._raw
        if raw is not None:
            return len(raw)
        n = 32 + varint_size(len(self.tx_in)) + varint_size(len(self.tx_out))
        if self.subnetwork_id != _NATIVE:
            payload = self.payload or b""
            n += 8 + 32 + varint_size(len(payload)) + len(payload)
        for _, script, _ in self.tx_in:
            n += 44 + varint_size(len(script)) + len(script)
        for _, script in self.tx_out:
            n += 8 + varint_size(len(script)) + len(script)
        return n


_TX_IN_SLOT: Final[Any] = MsgTx.__dict__["tx_in"]
_TX_OUT_SLOT: Final[Any] = MsgTx.__dict__["tx_out"]
setattr(MsgTx, "tx_in", _BodyField(_TX_IN_SLOT))  # noqa: B010
setattr(MsgTx, "tx_out", _BodyField(_TX_OUT_SLOT))  # noqa: B010


class _MsgTxFill(Message):
    """A mutable twin of :class:`MsgTx` (same slots), used only while decoding.

    Plain attribute stores are much cheaper than the frozen dataclass's
    ``object.__setattr__`` calls; the finished object's class is then set to
    :class:`MsgTx`, which CPython allows because the two layouts are identical.
    """

    __slots__ = MsgTx.__slots__

    version: int
    tx_in: tuple[TxIn, ...]  # or _PENDING (see _BodyField)
    tx_out: tuple[TxOut, ...]
    lock_time: int
    subnetwork_id: SubnetworkID
    gas: int
    payload_hash: Hash | None
    payload: bytes | None
    _tx_id: TxID | None
    _tx_hash: Hash | None
    _raw: bytes | None
