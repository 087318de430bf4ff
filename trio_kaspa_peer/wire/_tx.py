"""Transactions: ``MsgTx`` and its inputs and outputs, with TxID and TxHash.

A transaction is ``version (i32) | inputs | outputs | lock_time (u64) |
subnetwork_id (20 bytes)``, followed -- only for a non-native subnetwork --
by ``gas (u64) | payload_hash (32 bytes) | payload (var bytes)``.  For a
native transaction nothing is read after the subnetwork ID: bytes that follow
inside a ``tx`` frame are ignored, as the reference ignores them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, NamedTuple, Self

from ._codec import MAX_MESSAGE_PAYLOAD, check_int, put_var_bytes, put_varint, varint_size
from ._errors import (
    CountOverLimitError,
    EncodeError,
    NonCanonicalVarIntError,
    TruncatedPayloadError,
)
from ._message import PROTOCOL_VERSION, Message, register_message
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
"""The most inputs a tx may claim (the reference's maxTxInPerMessage)."""

MAX_TX_OUT_PER_MESSAGE: Final = MAX_MESSAGE_PAYLOAD // 9 + 1
"""The most outputs a tx may claim (the reference's maxTxOutPerMessage)."""

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
_OUTPOINT = struct.Struct("<32sI")
_LOCK_TIME = struct.Struct("<Q")


def _truncated(command: str) -> TruncatedPayloadError:
    return TruncatedPayloadError("payload ended early: unexpected EOF", command=command)


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


def decode_tx_at(data: bytes, pos: int, command: str = "tx") -> tuple[MsgTx, int]:
    """Decode one transaction starting at ``pos``; return it and the offset after it.

    ``struct.error`` and ``IndexError`` from reading past the end are turned
    into :class:`TruncatedPayloadError`; every count is checked against its
    limit, and every script length against what is left, before slicing.
    """
    end = len(data)
    try:
        version = _I32.unpack_from(data, pos)[0]
        pos += 4
        count = data[pos]
        pos += 1
        if count >= 0xFD:
            count, pos = _varint_slow(data, pos, count, command)
            if count > MAX_TX_IN_PER_MESSAGE:
                raise CountOverLimitError(
                    f"too many input transactions to fit into max message size "
                    f"[count {count}, max {MAX_TX_IN_PER_MESSAGE}]",
                    count=count,
                    limit=MAX_TX_IN_PER_MESSAGE,
                    command=command,
                )
        tx_in: list[TxIn] = []
        append = tx_in.append
        unpack_u64 = _U64.unpack_from
        unpack_outpoint = _OUTPOINT.unpack_from
        for _ in range(count):
            raw_id, index = unpack_outpoint(data, pos)
            pos += 36
            n = data[pos]
            pos += 1
            if n >= 0xFD:
                n, pos = _varint_slow(data, pos, n, command)
            script_end = pos + n
            if script_end > end:
                raise _truncated(command)
            script = data[pos:script_end]
            sequence = unpack_u64(data, script_end)[0]
            pos = script_end + 8
            append(
                _tuple_new(
                    TxIn,
                    (_tuple_new(Outpoint, (_new_bytes(TxID, raw_id), index)), script, sequence),
                )
            )
        count = data[pos]
        pos += 1
        if count >= 0xFD:
            count, pos = _varint_slow(data, pos, count, command)
            if count > MAX_TX_OUT_PER_MESSAGE:
                raise CountOverLimitError(
                    f"too many output transactions to fit into max message size "
                    f"[count {count}, max {MAX_TX_OUT_PER_MESSAGE}]",
                    count=count,
                    limit=MAX_TX_OUT_PER_MESSAGE,
                    command=command,
                )
        tx_out: list[TxOut] = []
        append_out = tx_out.append
        for _ in range(count):
            value = unpack_u64(data, pos)[0]
            pos += 8
            n = data[pos]
            pos += 1
            if n >= 0xFD:
                n, pos = _varint_slow(data, pos, n, command)
            script_end = pos + n
            if script_end > end:
                raise _truncated(command)
            append_out(_tuple_new(TxOut, (value, data[pos:script_end])))
            pos = script_end
        lock_time = unpack_u64(data, pos)[0]
        pos += 8
        if pos + 20 > end:
            raise _truncated(command)
        raw_subnetwork = data[pos : pos + 20]
        pos += 20
        if raw_subnetwork == _NATIVE_RAW:
            subnetwork_id = SubnetworkID.NATIVE
            gas = 0
            payload_hash = None
            payload = None
        else:
            subnetwork_id = _new_bytes(SubnetworkID, raw_subnetwork)
            gas = unpack_u64(data, pos)[0]
            pos += 8
            if pos + 32 > end:
                raise _truncated(command)
            payload_hash = _new_bytes(Hash, data[pos : pos + 32])
            pos += 32
            n = data[pos]
            pos += 1
            if n >= 0xFD:
                n, pos = _varint_slow(data, pos, n, command)
            if pos + n > end:
                raise _truncated(command)
            payload = data[pos : pos + n]
            pos += n
    except (IndexError, struct.error):
        raise _truncated(command) from None
    tx = _new(MsgTx)
    _set_version(tx, version)
    _set_tx_in(tx, tuple(tx_in))
    _set_tx_out(tx, tuple(tx_out))
    _set_lock_time(tx, lock_time)
    _set_subnetwork_id(tx, subnetwork_id)
    _set_gas(tx, gas)
    _set_payload_hash(tx, payload_hash)
    _set_payload(tx, payload)
    _set_tx_id(tx, None)
    _set_tx_hash(tx, None)
    return tx, pos


_NATIVE_RAW: Final = bytes(20)
_FULL = 0
_EXCLUDE_PAYLOAD = 1
_EXCLUDE_SCRIPTS_AND_PAYLOAD = 2


@register_message
@dataclass(frozen=True, slots=True)
class MsgTx(Message):
    """``tx``: a transaction.

    ``payload`` and ``payload_hash`` are ``None`` for a native-subnetwork
    transaction (they are not on the wire); for other subnetworks
    ``payload`` is bytes (possibly empty).  :meth:`tx_id` and
    :meth:`tx_hash` are computed as the reference does and cached.
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
            inputs.append(TxIn(Outpoint(tx_id, index), bytes(script), sequence))
        _set(self, "tx_in", tuple(inputs))
        outputs = []
        for out in self.tx_out:
            value, script = out
            check_int(value, 0, (1 << 64) - 1, "output value")
            outputs.append(TxOut(value, bytes(script)))
        _set(self, "tx_out", tuple(outputs))
        if type(self.subnetwork_id) is not SubnetworkID:
            _set(self, "subnetwork_id", SubnetworkID(self.subnetwork_id))
        if self.payload_hash is not None and type(self.payload_hash) is not Hash:
            _set(self, "payload_hash", Hash(self.payload_hash))
        if self.payload is not None:
            _set(self, "payload", bytes(self.payload))

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        return MAX_MESSAGE_PAYLOAD

    def is_coinbase(self) -> bool:
        """True when the transaction belongs to the coinbase subnetwork."""
        return self.subnetwork_id == SubnetworkID.COINBASE

    def _serialize(self, mode: int) -> bytes:
        out = bytearray(_I32.pack(self.version))
        put_varint(out, len(self.tx_in))
        u32 = _U32.pack
        u64 = _U64.pack
        exclude_scripts = mode == _EXCLUDE_SCRIPTS_AND_PAYLOAD
        for (tx_id, index), script, sequence in self.tx_in:
            out += tx_id
            out += u32(index)
            if exclude_scripts:
                out.append(0)
            else:
                n = len(script)
                if n < 0xFD:
                    out.append(n)
                else:
                    put_varint(out, n)
                out += script
            out += u64(sequence)
        put_varint(out, len(self.tx_out))
        for value, script in self.tx_out:
            out += u64(value)
            n = len(script)
            if n < 0xFD:
                out.append(n)
            else:
                put_varint(out, n)
            out += script
        out += u64(self.lock_time)
        subnetwork_id = self.subnetwork_id
        out += subnetwork_id
        if subnetwork_id != SubnetworkID.NATIVE:
            if subnetwork_id.is_builtin and self.gas != 0:
                raise EncodeError(
                    "Transactions from built-in should have 0 gas", command=self.command
                )
            if self.payload_hash is None:
                raise EncodeError(
                    "Transactions from a non-native subnetwork need a payload hash",
                    command=self.command,
                )
            out += u64(self.gas)
            out += self.payload_hash
            if mode == _FULL:
                put_var_bytes(out, self.payload or b"")
            else:
                out.append(0)
        elif self.payload is not None:
            raise EncodeError(
                "Transactions from native subnetwork should have <nil> payload",
                command=self.command,
            )
        elif self.payload_hash is not None:
            raise EncodeError(
                "Transactions from native subnetwork should have <nil> payload hash",
                command=self.command,
            )
        elif self.gas != 0:
            raise EncodeError(
                "Transactions from native subnetwork should have 0 gas", command=self.command
            )
        return bytes(out)

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        return self._serialize(_FULL)

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        return decode_tx_at(payload, 0, cls.command)[0]  # type: ignore[return-value]

    def tx_hash(self) -> Hash:
        """Double SHA-256 of the transaction without its payload (the reference's TxHash)."""
        cached = self._tx_hash
        if cached is None:
            data = self._serialize(_EXCLUDE_PAYLOAD)
            cached = _new_bytes(Hash, _sha256(_sha256(data).digest()).digest())
            _set(self, "_tx_hash", cached)
        return cached

    def tx_id(self) -> TxID:
        """The transaction ID: double SHA-256 without signature scripts and payload.

        For a coinbase transaction nothing is left out.
        """
        cached = self._tx_id
        if cached is None:
            mode = _FULL if self.is_coinbase() else _EXCLUDE_SCRIPTS_AND_PAYLOAD
            data = self._serialize(mode)
            cached = _new_bytes(TxID, _sha256(_sha256(data).digest()).digest())
            _set(self, "_tx_id", cached)
        return cached

    def serialize_size(self) -> int:
        """The size of the encoded transaction in bytes."""
        n = 32 + varint_size(len(self.tx_in)) + varint_size(len(self.tx_out))
        if self.subnetwork_id != SubnetworkID.NATIVE:
            payload = self.payload or b""
            n += 8 + 32 + varint_size(len(payload)) + len(payload)
        for _, script, _ in self.tx_in:
            n += 44 + varint_size(len(script)) + len(script)
        for _, script in self.tx_out:
            n += 8 + varint_size(len(script)) + len(script)
        return n


# Slot descriptors' setters: the fastest way to fill a frozen slotted instance while decoding.
(
    _set_version,
    _set_tx_in,
    _set_tx_out,
    _set_lock_time,
    _set_subnetwork_id,
    _set_gas,
    _set_payload_hash,
    _set_payload,
    _set_tx_id,
    _set_tx_hash,
) = (
    MsgTx.__dict__[name].__set__
    for name in (
        "version",
        "tx_in",
        "tx_out",
        "lock_time",
        "subnetwork_id",
        "gas",
        "payload_hash",
        "payload",
        "_tx_id",
        "_tx_hash",
    )
)
